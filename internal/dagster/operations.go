package dagster

import (
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"strings"
)

// Operation names, as declared in the embedded .graphql documents. They are
// the operation names the dagster-cloud CLI uses, so server-side logs and
// emulators see the same names.
const (
	opCreateOrUpdateBranchDeployment = "CliCreateOrUpdateBranchDeployment"
	opDeployLocations                = "CliDeployLocations"
	opAddOrUpdateLocation            = "CliAddOrUpdateLocation"
	opAgentStatus                    = "CliAgentStatus"
	opLocationsQuery                 = "CliLocationsQuery"
	opOrganizationSettings           = "CliOrganizationSettings"
	opGetBranchDeploymentName        = "CliGetBranchDeploymentName"
	opDeploymentByName               = "CliDeploymentByName"
)

// Names of the operations that change Dagster+, for a dry run's plan.
const (
	OperationCreateOrUpdateBranchDeployment = opCreateOrUpdateBranchDeployment
	OperationDeployLocations                = opDeployLocations
	OperationDeleteDeployment               = opDeleteDeployment
	// OperationDeploymentByNameQuery is what DeleteBranchDeployment asks
	// first, to check that the deployment is a branch deployment.
	OperationDeploymentByNameQuery = opDeploymentByNameQuery
)

//go:embed operations/*.graphql
var operationFiles embed.FS

// operations maps each operation name to its GraphQL text. The file name
// (without .graphql) is the operation name.
var operations = mustLoadOperations()

func mustLoadOperations() map[string]string {
	entries, err := fs.ReadDir(operationFiles, "operations")
	if err != nil {
		panic(fmt.Sprintf("dagster: reading embedded operations: %v", err))
	}
	ops := make(map[string]string, len(entries))
	for _, e := range entries {
		b, err := fs.ReadFile(operationFiles, path.Join("operations", e.Name()))
		if err != nil {
			panic(fmt.Sprintf("dagster: reading embedded operation %s: %v", e.Name(), err))
		}
		ops[strings.TrimSuffix(e.Name(), ".graphql")] = string(b)
	}
	for _, name := range []string{
		opCreateOrUpdateBranchDeployment, opDeployLocations, opAddOrUpdateLocation,
		opAgentStatus, opLocationsQuery, opOrganizationSettings,
		opGetBranchDeploymentName, opDeploymentByName,
	} {
		if _, ok := ops[name]; !ok {
			panic("dagster: missing embedded operation " + name)
		}
	}
	return ops
}

// Operations returns every GraphQL operation the client sends, keyed by
// operation name. The returned map is a copy.
func Operations() map[string]string {
	return maps.Clone(operations)
}

// isMutation reports whether an operation text is a mutation, using the same
// test as the dagster-cloud CLI (which decides read-timeout retries with it).
func isMutation(query string) bool {
	return strings.Contains(query, "mutation ")
}
