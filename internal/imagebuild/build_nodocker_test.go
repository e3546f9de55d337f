package imagebuild

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/registry"
)

// Builder tests that need no daemon, and helpers shared with the Docker-backed tests in
// build_test.go and buildkit_test.go (built only with -tags docker): this file is built in both
// configurations.

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// useBuilder makes b use BuildKit or the classic builder without asking the daemon.
func useBuilder(b *Builder, buildKit bool) *Builder {
	c := builderChoice{buildKit: buildKit}
	if !buildKit {
		c.reason = "the test asks for it"
	}
	b.state.choice = &c
	return b
}

func TestBuildContextErrorBeforeDaemon(t *testing.T) {
	t.Parallel()
	b := NewBuilder(nil, nil) // must fail before touching the daemon
	dir := filepath.Join(t.TempDir(), "absent")
	_, err := b.Build(context.Background(), Spec{ContextDir: dir, Tags: []string{"x:y"}})
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "build.directory") {
		t.Fatalf("error = %v, want one naming %s and build.directory", err, dir)
	}
}

func TestLoginAnonymousIsNoop(t *testing.T) {
	t.Parallel()
	b := NewBuilder(nil, nil) // a nil client proves the daemon is not called
	if err := b.Login(context.Background(), registry.AuthConfig{ServerAddress: "ghcr.io"}, ""); err != nil {
		t.Fatal(err)
	}
}
