package dagster_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

// TestServerAheadOperations validates the operations that select fields the
// reference schema lacks: they must validate against the reference schema
// plus the documented extension (dagsteremu's schema_ext.graphql), and must
// not validate against the reference schema alone (once they do, the
// reference schema has caught up: move them to operations/).
func TestServerAheadOperations(t *testing.T) {
	t.Parallel()
	ops := dagster.ServerAheadOperations()
	if got, want := slices.Sorted(maps.Keys(ops)), []string{"CliServerlessRegistryIsHarbor"}; !slices.Equal(got, want) {
		t.Errorf("ahead operations = %v, want %v", got, want)
	}
	for name := range ops {
		if _, ok := dagster.Operations()[name]; ok {
			t.Errorf("%s is also in Operations()", name)
		}
	}

	root, err := testbed.RepoRoot()
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
	realSrc := &ast.Source{Name: path, Input: string(b)}
	ext := &ast.Source{Name: "schema_ext.graphql", Input: dagsteremu.SchemaExtensionSDL()}
	realExtended, err := gqlparser.LoadSchema(realSrc, ext)
	if err != nil {
		t.Fatal(err)
	}
	emuExtended, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: dagsteremu.SchemaSDL()}, ext)
	if err != nil {
		t.Fatal(err)
	}
	real := testbed.RealSchema(t)
	for name, text := range ops {
		for _, s := range []struct {
			name   string
			schema *ast.Schema
		}{{"reference schema + extension", realExtended}, {"emulator schema + extension", emuExtended}} {
			doc, errs := gqlparser.LoadQueryWithRules(s.schema, text, nil)
			if len(errs) > 0 {
				t.Errorf("%s does not validate against the %s: %v", name, s.name, errs)
				continue
			}
			if len(doc.Operations) != 1 || doc.Operations[0].Name != name {
				t.Errorf("%s: the document must hold exactly one operation named like its file", name)
			}
		}
		if _, errs := gqlparser.LoadQueryWithRules(real, text, nil); len(errs) == 0 {
			t.Errorf("%s validates against the reference schema now: move it to operations/", name)
		}
	}
}
