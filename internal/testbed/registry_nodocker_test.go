package testbed

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The registry tests that need neither dockerd nor the docker-registry binary, and the helpers
// they share with registry_test.go (built only with -tags docker).

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestStartRegistryMissingBinary(t *testing.T) {
	old := registryBinary
	registryBinary = filepath.Join(t.TempDir(), "docker-registry")
	defer func() { registryBinary = old }()
	_, err := StartRegistry(testCtx(t), t.TempDir(), "u", "p")
	if err == nil || !strings.Contains(err.Error(), "Debian package docker-registry") {
		t.Fatalf("error = %v, want one naming the docker-registry package", err)
	}
}
