package build

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestDecideBuilder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		api, os, env string
		buildKit     bool
		reason       string // substring of the reason; "" for BuildKit
		err          string
	}{
		{api: "1.41", os: "linux", buildKit: true},
		{api: "1.51", os: "linux", env: "1", buildKit: true},
		{api: "1.39", os: "", env: "true", buildKit: true},
		{api: "1.38", os: "linux", reason: `API version "1.38" is older than 1.39`},
		{api: "", os: "linux", reason: `API version "" is older`},
		{api: "1.41", os: "windows", reason: "runs on windows"},
		{api: "1.41", os: "linux", env: "0", reason: "DOCKER_BUILDKIT=0 is set"},
		{api: "1.41", os: "linux", env: "false", reason: "DOCKER_BUILDKIT=false is set"},
		{api: "1.38", os: "linux", env: "1", reason: "older than 1.39"},
		{api: "1.41", os: "linux", env: "yes please", err: `DOCKER_BUILDKIT="yes please" is not a boolean`},
	}
	for _, tc := range tests {
		c, err := decideBuilder(tc.api, tc.os, tc.env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("decideBuilder(%q, %q, %q) error = %v, want %q", tc.api, tc.os, tc.env, err, tc.err)
			}
			continue
		}
		if err != nil || c.buildKit != tc.buildKit || !strings.Contains(c.reason, tc.reason) || (c.buildKit && c.reason != "") {
			t.Errorf("decideBuilder(%q, %q, %q) = %+v, %v; want BuildKit %v, reason with %q", tc.api, tc.os, tc.env, c, err, tc.buildKit, tc.reason)
		}
	}
}

// TestBuilderChoosesBuildKitOnThisDaemon checks that the test daemon (20.10, API 1.41, Linux)
// gets BuildKit, that the choice is logged once, and that DOCKER_BUILDKIT=0 gives the classic
// builder.
func TestBuilderChoosesBuildKitOnThisDaemon(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env      string
		buildKit bool
		logLine  string
	}{
		{"", true, "Builder: BuildKit (Docker Engine "},
		{"0", false, "Builder: classic, because DOCKER_BUILDKIT=0 is set (Docker Engine "},
	} {
		t.Run("DOCKER_BUILDKIT="+tc.env, func(t *testing.T) {
			t.Parallel()
			_, b, log := dockerBuilder(t)
			b.getenv = func(k string) string {
				if k == "DOCKER_BUILDKIT" {
					return tc.env
				}
				return ""
			}
			ctx := testCtx(t, time.Minute)
			for range 2 {
				got, err := b.UsesBuildKit(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.buildKit {
					t.Errorf("UsesBuildKit = %v, want %v", got, tc.buildKit)
				}
			}
			if n := strings.Count(log.String(), "Builder: "); n != 1 || !strings.Contains(log.String(), tc.logLine) {
				t.Errorf("log has %d builder lines, want 1 with %q:\n%s", n, tc.logLine, log)
			}
		})
	}
}

func TestSecretsAndSSHNeedBuildKit(t *testing.T) {
	t.Parallel()
	for _, s := range []Spec{
		{Secrets: map[string][]byte{"token": []byte("s3cr3t")}},
		{SSH: []string{"default"}},
	} {
		b := useBuilder(NewBuilder(nil, nil), false) // a nil client proves the daemon is not called
		s.ContextDir, s.Tags = fixture(t, "simple"), []string{"x:y"}
		_, err := b.Build(context.Background(), s)
		if err == nil || !strings.Contains(err.Error(), "build secrets and SSH forwarding need BuildKit") ||
			!strings.Contains(err.Error(), "because the test asks for it") {
			t.Errorf("Build(%+v) error = %v", s, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error holds the secret: %v", err)
		}
	}
}
