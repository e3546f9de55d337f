package testbed

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// RepoRoot is the module root: the nearest directory above the working
// directory that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// RealSchema loads the published Dagster+ schema from
// <repo root>/../shared/reference/dagster-plus-schema.graphql. The project
// may not copy that file, so a test that needs it is skipped where it is
// absent.
func RealSchema(t testing.TB) *ast.Schema {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "..", "shared", "reference", "dagster-plus-schema.graphql")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("the real Dagster+ schema is not at %s", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := gqlparser.LoadSchema(&ast.Source{Name: path, Input: string(b)})
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	return s
}
