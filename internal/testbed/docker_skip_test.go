//go:build !docker

package testbed

import "testing"

// TestDockerBackedTestsSkipped stands in for the tests built only with -tags docker: the ones
// that need the test Docker daemon or the docker-registry binary.
func TestDockerBackedTestsSkipped(t *testing.T) {
	t.Skip("Docker-backed tests are built only with -tags docker; scripts/test.sh runs them (it starts a private dockerd)")
}
