//go:build !docker

package imagebuild

import "testing"

// TestDockerBackedTestsSkipped stands in for the tests built only with -tags docker, which build
// and push through the test Docker daemon.
func TestDockerBackedTestsSkipped(t *testing.T) {
	t.Skip("Docker-backed tests are built only with -tags docker; scripts/test.sh runs them (it starts a private dockerd)")
}
