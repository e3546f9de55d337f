package cli

import (
	"runtime/debug"
	"strings"
)

// Version is the release this binary was built as. Release builds stamp it:
//
//	go build -ldflags "-X github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cli.Version=v1.2.3"
//
// (the Dockerfile's build stage does that with --build-arg VERSION, the release workflow for
// the static binaries). Unstamped builds keep "dev".
var Version = "dev"

// versionString is what --version prints after "dagster-branch-deploy version ": the stamped
// Version, or for an unstamped build "dev" with what the Go toolchain recorded about the
// checkout it was built from (see describeVersion).
func versionString() string {
	info, _ := debug.ReadBuildInfo() // nil when the binary has none
	return describeVersion(Version, info)
}

// describeVersion formats version and the build info of an unstamped build:
//
//   - a stamped version (anything but "" and "dev") is returned as it is;
//   - `go install github.com/dagster-branch-deploy/dagster-branch-deploy@v1.2.3` records the
//     module version and no VCS settings: that version is returned;
//   - a build in a git checkout gives "dev (revision 0123456789ab, modified)": the commit
//     (vcs.revision, 12 characters) and whether the tree had uncommitted changes
//     (vcs.modified);
//   - anything else (no build info, -buildvcs=false, a Docker build without .git) is "dev".
func describeVersion(version string, info *debug.BuildInfo) string {
	if version != "" && version != "dev" {
		return version
	}
	if info == nil {
		return "dev"
	}
	var revision string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision == "" {
		if v := info.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		return "dev"
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	details := []string{"revision " + revision}
	if modified {
		details = append(details, "modified")
	}
	return "dev (" + strings.Join(details, ", ") + ")"
}
