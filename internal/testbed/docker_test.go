package testbed

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

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
		name, host, skipEnv string
		wantFatal           []string
		wantSkip            []string
	}{
		{name: "unset", host: "", wantFatal: []string{"DOCKER_HOST is not set", "scripts/dockerd.sh start", "scripts/test.sh", EnvSkipDocker + "=1"}},
		{name: "no daemon", host: "unix://" + sock, wantFatal: []string{"DOCKER_HOST=unix://" + sock + " does not answer", "scripts/dockerd.sh"}},
		{name: "bad scheme", host: "ssh://somewhere", wantFatal: []string{"unsupported DOCKER_HOST scheme"}},
		{name: "unset, skipping", host: "", skipEnv: "1", wantSkip: []string{EnvSkipDocker + "=1", "DOCKER_HOST is not set"}},
		{name: "no daemon, skipping", host: "unix://" + sock, skipEnv: "1", wantSkip: []string{"does not answer"}},
		{name: "unset, skip env not 1", host: "", skipEnv: "true", wantFatal: []string{"DOCKER_HOST is not set"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tc.host)
			t.Setenv(EnvSkipDocker, tc.skipEnv)
			howToOnce = sync.Once{} // every case checks the full instructions
			host, f := runDocker(t)
			if host != "" {
				t.Errorf("Docker returned %q", host)
			}
			got, want := f.fatal, tc.wantFatal
			if tc.wantSkip != nil {
				got, want = f.skip, tc.wantSkip
				if f.fatal != "" {
					t.Errorf("Docker failed instead of skipping: %s", f.fatal)
				}
			} else if f.skip != "" {
				t.Errorf("Docker skipped instead of failing: %s", f.skip)
			}
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("message lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestDockerInstructionsOnce(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	t.Setenv(EnvSkipDocker, "")
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

func TestDockerWithDaemon(t *testing.T) {
	host := Docker(t) // fails (or skips) with the instructions when there is no test daemon
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := PingDocker(ctx, host); err != nil {
		t.Fatal(err)
	}
}
