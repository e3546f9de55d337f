//go:build !docker

package e2e

import "testing"

// TestDockerBackedTestsSkipped stands in for the end-to-end tests, which all need the test
// Docker daemon and docker-registry and are built only with -tags docker.
func TestDockerBackedTestsSkipped(t *testing.T) {
	t.Skip("Docker-backed tests are built only with -tags docker; scripts/test.sh runs them (it starts a private dockerd)")
}
