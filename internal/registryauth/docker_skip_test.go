//go:build !docker

package registryauth_test

import "testing"

// TestDockerBackedTestsSkipped stands in for the tests built only with -tags docker
// (push_test.go: logins through the cloud emulators, each ending in a real push through the test
// Docker daemon).
func TestDockerBackedTestsSkipped(t *testing.T) {
	t.Skip("Docker-backed tests are built only with -tags docker; scripts/test.sh runs them (it starts a private dockerd)")
}
