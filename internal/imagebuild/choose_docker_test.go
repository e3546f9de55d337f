//go:build docker

package imagebuild

import (
	"strings"
	"testing"
	"time"
)

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
