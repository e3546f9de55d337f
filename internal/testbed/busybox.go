package testbed

import (
	"os"
	"path/filepath"
	"testing"
)

// BusyboxContext writes a build context holding Debian's static
// /bin/busybox (as ./busybox) and dockerfile, for test images that need a
// shell without pulling a base image. It fails the test when busybox-static
// is not installed.
func BusyboxContext(t testing.TB, dockerfile string) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("needs a static /bin/busybox (scripts/setup.sh installs it; or apt-get install -y busybox-static): %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
