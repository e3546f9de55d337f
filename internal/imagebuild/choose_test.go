package imagebuild

import (
	"context"
	"strings"
	"testing"
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
