package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NewClient's messages when no daemon answers: these tests need no Docker, so they are built
// without -tags docker too (TestNewClientNegotiates, in build_test.go, needs the test daemon).

func TestNewClientUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nonexistent", "docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	t.Setenv("DOCKER_API_VERSION", "")
	_, err := NewClient(testCtx(t, 30*time.Second))
	if err == nil {
		t.Fatal("NewClient succeeded against a nonexistent socket")
	}
	for _, want := range []string{"DOCKER_HOST=unix://" + sock, "Is the Docker daemon running", "/var/run/docker.sock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestNewClientDefaultHost(t *testing.T) {
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		t.Skip("/var/run/docker.sock exists here; this test checks the message when it does not")
	}
	t.Setenv("DOCKER_HOST", "")
	_, err := NewClient(testCtx(t, 30*time.Second))
	if err == nil {
		t.Fatal("NewClient succeeded without a daemon")
	}
	if want := "the default unix:///var/run/docker.sock (DOCKER_HOST is not set)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q:\n%v", want, err)
	}
}
