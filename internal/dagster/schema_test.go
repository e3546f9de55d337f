package dagster_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

func validateOperations(t *testing.T, schema *ast.Schema) {
	t.Helper()
	ops := dagster.Operations()
	// Every operation the client sends is validated; this list makes a new
	// one a conscious addition.
	want := []string{"CliAddOrUpdateLocation", "CliAgentStatus", "CliCreateOrUpdateBranchDeployment",
		"CliDeleteDeployment", "CliDeployLocations", "CliDeploymentByName", "CliGetBranchDeploymentName",
		"CliGetEcrInfo", "CliLocationsQuery", "CliOrganizationSettings", "CliServerlessStatus",
		"DeploymentByNameQuery", "DeploymentInfoQuery"}
	got := slices.Sorted(maps.Keys(ops))
	if !slices.Equal(got, want) {
		t.Errorf("operations = %v, want %v", got, want)
	}
	for name, text := range ops {
		doc, errs := gqlparser.LoadQueryWithRules(schema, text, nil)
		if len(errs) > 0 {
			t.Errorf("%s does not validate: %v", name, errs)
			continue
		}
		if len(doc.Operations) != 1 || doc.Operations[0].Name != name {
			t.Errorf("%s: the document must hold exactly one operation named like its file", name)
		}
	}
}

// TestOperationsValidateAgainstRealSchema validates every operation the
// client sends against the published Dagster+ schema.
func TestOperationsValidateAgainstRealSchema(t *testing.T) {
	t.Parallel()
	validateOperations(t, testbed.RealSchema(t))
}

// TestOperationsValidateAgainstEmulatorSchema validates every operation
// against the emulator's subset schema, so the emulator can serve them.
func TestOperationsValidateAgainstEmulatorSchema(t *testing.T) {
	t.Parallel()
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "dagsteremu", Input: dagsteremu.SchemaSDL()})
	if err != nil {
		t.Fatal(err)
	}
	validateOperations(t, schema)
}
