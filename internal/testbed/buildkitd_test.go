//go:build docker

package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBuildkitdFromEnv(t *testing.T) {
	b := BuildkitdFromEnv(t) // fails with the instructions when there is no test buildkitd
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := PingBuildkitd(ctx, b.Host, b.CertPath); err != nil {
		t.Fatal(err)
	}
	// The TCP listener wants a client certificate.
	if err := PingBuildkitd(ctx, b.Host, ""); err == nil {
		t.Error("buildkitd answered on its TLS address without TLS")
	}
}

// TestBuildkitdScript starts a second buildkitd with scripts/buildkitd.sh on a given address,
// starts it again (a no-op), asks its status and stops it.
func TestBuildkitdScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("scripts/buildkitd.sh runs buildkitd as root (uid %d); run the tests as root, as scripts/test.sh does", os.Geteuid())
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "scripts", "buildkitd.sh")
	// A short path: buildkitd keeps unix sockets under it.
	dir, err := os.MkdirTemp("", "dbd-bk-")
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // may build buildkitd first
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("scripts/buildkitd.sh %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String(), err
	}
	t.Cleanup(func() {
		if _, err := run("stop", dir); err != nil {
			t.Error(err)
			return
		}
		_ = os.RemoveAll(dir)
	})
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("export BUILDKIT_HOST=tcp://%s BUILDKIT_CERT_PATH=%s/certs/client BUILDKIT_UNIX_HOST=unix://%s/buildkitd.sock\n", addr, dir, dir)
	for i := range 2 {
		out, err := run("start", dir, addr)
		if err != nil {
			if b, rerr := os.ReadFile(filepath.Join(dir, "buildkitd.log")); rerr == nil {
				t.Logf("buildkitd.log:\n%s", b)
			}
			t.Fatal(err)
		}
		if out != want {
			t.Fatalf("start #%d printed %q, want %q", i+1, out, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := PingBuildkitd(ctx, "tcp://"+addr, filepath.Join(dir, "certs", "client")); err != nil {
		t.Fatal(err)
	}
	if _, err := run("status", dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "buildkitd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run("stop", dir); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("buildkitd (pid %d) still runs after stop", pid)
	}
	if _, err := run("status", dir); err == nil {
		t.Error("status succeeded after stop")
	}
}
