package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribeVersion(t *testing.T) {
	const rev = "f230581abcdef0123456789abcdef0123456789a"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-11-30T10:00:00Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	devel := debug.Module{Path: "github.com/dagster-branch-deploy/dagster-branch-deploy", Version: "(devel)"}
	// Go 1.24+ records a pseudo-version for builds in a checkout; the revision says more.
	pseudo := debug.Module{Path: devel.Path, Version: "v0.0.0-20261130100000-f230581abcde+dirty"}
	installed := debug.Module{Path: devel.Path, Version: "v1.4.0"}
	for _, c := range []struct {
		name    string
		version string
		info    *debug.BuildInfo
		want    string
	}{
		{"stamped", "v1.2.3", &debug.BuildInfo{Main: devel, Settings: vcs("true")}, "v1.2.3"},
		{"stamped, no build info", "v1.2.3", nil, "v1.2.3"},
		{"no build info", "dev", nil, "dev"},
		{"empty version", "", nil, "dev"},
		{"checkout, clean", "dev", &debug.BuildInfo{Main: devel, Settings: vcs("false")}, "dev (revision f230581abcde)"},
		{"checkout, modified", "dev", &debug.BuildInfo{Main: pseudo, Settings: vcs("true")}, "dev (revision f230581abcde, modified)"},
		{"go install @version", "dev", &debug.BuildInfo{Main: installed}, "v1.4.0"},
		{"no vcs (Docker build without .git)", "dev", &debug.BuildInfo{Main: devel, Settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}}}, "dev"},
	} {
		if got := describeVersion(c.version, c.info); got != c.want {
			t.Errorf("%s: describeVersion(%q) = %q, want %q", c.name, c.version, got, c.want)
		}
	}
}

// TestVersionString checks the stamped variable, and that an unstamped build (this test
// binary, whose build info has no VCS settings) says "dev".
func TestVersionString(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v9.8.7"
	if got := versionString(); got != "v9.8.7" {
		t.Errorf("stamped: versionString() = %q", got)
	}
	Version = "dev"
	if got := versionString(); !strings.HasPrefix(got, "dev") {
		t.Errorf("unstamped: versionString() = %q, want dev…", got)
	}
}
