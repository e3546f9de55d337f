package imagebuild

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContextSymlinksAreSentAsLinks: a symlink inside a build context
// (to a host file, or to an ancestor directory) is sent as a link, never
// followed, so the builder cannot read what it points to.
func TestContextSymlinksAreSentAsLinks(t *testing.T) {
	t.Parallel()
	host := t.TempDir()
	secret := filepath.Join(host, "id_rsa")
	if err := os.WriteFile(secret, []byte("PRIVATE KEY MATERIAL"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY . /\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{"key": secret, "up": "..", "home": host}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(ctx, name)); err != nil {
			t.Fatal(err)
		}
	}
	bc, err := prepareContext(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := bc.tar()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if strings.Contains(string(body), "PRIVATE KEY") {
			t.Errorf("%s carries the host file's content", h.Name)
		}
		if strings.HasPrefix(h.Name, "up/") || strings.HasPrefix(h.Name, "home/") {
			t.Errorf("%s: a linked directory was followed", h.Name)
		}
		if h.Typeflag == tar.TypeSymlink {
			seen[h.Name] = h.Linkname
		}
	}
	for name, target := range links {
		if seen[name] != target {
			t.Errorf("%s: sent as %q, want a link to %q", name, seen[name], target)
		}
	}
}
