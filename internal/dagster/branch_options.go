package dagster

import (
	"context"
	"fmt"
)

// Values of the SnapshotBaseDeploymentCondition enum: when Dagster+
// snapshots the base deployment to highlight a branch deployment's changes.
const (
	SnapshotOnCreate = "ON_CREATE"
	SnapshotOnUpdate = "ON_UPDATE"
)

// BranchOptions are the optional arguments of createOrUpdateBranchDeployment.
type BranchOptions struct {
	// BaseDeploymentName is the deployment the branch deployment is
	// compared with; "" lets Dagster+ use prod.
	BaseDeploymentName string
	// SnapshotBaseCondition is SnapshotOnCreate, SnapshotOnUpdate or ""
	// (no snapshot: the branch is compared with the live base deployment).
	SnapshotBaseCondition string
}

// CreateOrUpdateBranchDeploymentWithOptions is CreateOrUpdateBranchDeployment
// with every optional argument of the mutation, as `dagster-cloud
// branch-deployment create-or-update` sends them.
func (c *Client) CreateOrUpdateBranchDeploymentWithOptions(ctx context.Context, b BranchData, commit Commit, o BranchOptions) (Deployment, error) {
	switch o.SnapshotBaseCondition {
	case "", SnapshotOnCreate, SnapshotOnUpdate:
	default:
		return Deployment{}, fmt.Errorf("create or update branch deployment: invalid snapshot base condition %q: must be %s or %s",
			o.SnapshotBaseCondition, SnapshotOnCreate, SnapshotOnUpdate)
	}
	branchVars, err := b.variables()
	if err != nil {
		return Deployment{}, fmt.Errorf("create or update branch deployment: %w", err)
	}
	commitVars, err := commit.variables()
	if err != nil {
		return Deployment{}, fmt.Errorf("create or update branch deployment: %w", err)
	}
	vars := map[string]any{
		"branchData":            branchVars,
		"commit":                commitVars,
		"baseDeploymentName":    nullable(o.BaseDeploymentName),
		"snapshotBaseCondition": nullable(o.SnapshotBaseCondition),
	}
	var data struct {
		Result struct {
			Typename       string `json:"__typename"`
			DeploymentID   int    `json:"deploymentId"`
			DeploymentName string `json:"deploymentName"`
			Message        string `json:"message"`
		} `json:"createOrUpdateBranchDeployment"`
	}
	if err := c.execute(ctx, "", opCreateOrUpdateBranchDeployment, vars, &data); err != nil {
		return Deployment{}, fmt.Errorf("create or update branch deployment for %s@%s: %w", b.RepoName, b.BranchName, err)
	}
	r := data.Result
	if r.Typename != "DagsterCloudDeployment" || r.DeploymentName == "" {
		return Deployment{}, fmt.Errorf("create or update branch deployment for %s@%s: %w", b.RepoName, b.BranchName,
			&ResultError{Operation: opCreateOrUpdateBranchDeployment, Typename: typenameOrUnknown(r.Typename), Message: r.Message})
	}
	return Deployment{ID: r.DeploymentID, Name: r.DeploymentName}, nil
}
