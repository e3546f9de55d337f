package testbed

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// These tests check Docker without a daemon, so they are built without -tags docker too;
// TestDockerWithDaemon is in docker_daemon_test.go.

// fakeTB records Fatalf/Skipf and stops the goroutine the way testing.T does.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runDocker calls Docker with a fake TB in its own goroutine and returns what happened.
func runDocker(t *testing.T) (host string, f *fakeTB) {
	f = &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		host = Docker(f)
	}()
	<-done
	return host, f
}

func TestDockerWithoutDaemon(t *testing.T) {
	// Not parallel: it changes the environment.
	t.Cleanup(func() { howToOnce = sync.Once{} }) // leave the instructions for real failures
	sock := filepath.Join(t.TempDir(), "docker.sock")
	tests := []struct {
		name, host string
		wantFatal  []string
	}{
		{name: "unset", host: "", wantFatal: []string{"DOCKER_HOST is not set", "scripts/dockerd.sh start", "scripts/test.sh", "without -tags docker"}},
		{name: "no daemon", host: "unix://" + sock, wantFatal: []string{"DOCKER_HOST=unix://" + sock + " does not answer", "scripts/dockerd.sh"}},
		{name: "bad scheme", host: "ssh://somewhere", wantFatal: []string{"unsupported DOCKER_HOST scheme"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tc.host)
			howToOnce = sync.Once{} // every case checks the full instructions
			host, f := runDocker(t)
			if host != "" {
				t.Errorf("Docker returned %q", host)
			}
			if f.skip != "" {
				t.Errorf("Docker skipped instead of failing: %s", f.skip)
			}
			for _, w := range tc.wantFatal {
				if !strings.Contains(f.fatal, w) {
					t.Errorf("message lacks %q:\n%s", w, f.fatal)
				}
			}
		})
	}
}

func TestDockerInstructionsOnce(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	howToOnce = sync.Once{}
	t.Cleanup(func() { howToOnce = sync.Once{} })
	_, first := runDocker(t)
	_, second := runDocker(t)
	if !strings.Contains(first.fatal, "scripts/dockerd.sh") {
		t.Errorf("first failure lacks the instructions:\n%s", first.fatal)
	}
	if strings.Contains(second.fatal, "scripts/dockerd.sh") || !strings.Contains(second.fatal, "see the first such failure") {
		t.Errorf("second failure should point at the first:\n%s", second.fatal)
	}
}
