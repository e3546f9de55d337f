package dagster

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Operations of DeleteBranchDeployment, named as the dagster-cloud CLI names
// them (gql.py GET_DEPLOYMENT_BY_NAME_QUERY, DELETE_DEPLOYMENT_MUTATION).
const (
	opDeploymentByNameQuery = "DeploymentByNameQuery"
	opDeleteDeployment      = "CliDeleteDeployment"
)

// NotBranchDeploymentError is returned by DeleteBranchDeployment for a
// deployment that exists but is not a branch deployment; nothing was
// deleted.
type NotBranchDeploymentError struct {
	Name string
	Type string // the deploymentType Dagster+ reported, e.g. PRODUCTION
}

func (e *NotBranchDeploymentError) Error() string {
	return fmt.Sprintf("Deployment %s is not a branch deployment", e.Name)
}

// DeploymentNotFoundError is returned by DeleteBranchDeployment when
// deploymentByName does not resolve to a deployment.
type DeploymentNotFoundError struct {
	Name     string
	Typename string // what deploymentByName resolved to instead
}

func (e *DeploymentNotFoundError) Error() string {
	return fmt.Sprintf("Unable to find deployment %s (Dagster+ returned %s)", e.Name, e.Typename)
}

// DeleteBranchDeployment deletes the branch deployment called name and
// returns its deploymentId, the way `dagster-cloud branch-deployment delete`
// does: it looks the deployment up with deploymentByName, refuses one whose
// deploymentType is not BRANCH, and then calls deleteDeployment. Both
// requests are made at the scope given (the dagster-cloud CLI sends them to
// the URL of the deployment being deleted, so scope is usually name; ""
// means the organization scope).
func (c *Client) DeleteBranchDeployment(ctx context.Context, scope, name string) (int, error) {
	if strings.TrimSpace(name) == "" {
		return 0, errors.New("delete branch deployment: no deployment name given")
	}
	var found struct {
		Result struct {
			Typename       string `json:"__typename"`
			DeploymentName string `json:"deploymentName"`
			DeploymentID   *int   `json:"deploymentId"`
			DeploymentType string `json:"deploymentType"`
		} `json:"deploymentByName"`
	}
	if err := c.execute(ctx, scope, opDeploymentByNameQuery, map[string]any{"deploymentName": name}, &found); err != nil {
		return 0, fmt.Errorf("delete branch deployment %s: %w", name, err)
	}
	r := found.Result
	if r.Typename != "DagsterCloudDeployment" || r.DeploymentID == nil {
		return 0, &DeploymentNotFoundError{Name: name, Typename: typenameOrUnknown(r.Typename)}
	}
	if r.DeploymentType != "BRANCH" {
		return 0, &NotBranchDeploymentError{Name: name, Type: r.DeploymentType}
	}

	var deleted struct {
		Result struct {
			Typename     string   `json:"__typename"`
			DeploymentID int      `json:"deploymentId"`
			Message      string   `json:"message"`
			Stack        []string `json:"stack"`
		} `json:"deleteDeployment"`
	}
	if err := c.execute(ctx, scope, opDeleteDeployment, map[string]any{"deploymentId": *r.DeploymentID}, &deleted); err != nil {
		return 0, fmt.Errorf("delete branch deployment %s: %w", name, err)
	}
	d := deleted.Result
	if d.Typename != "DagsterCloudDeployment" {
		msg := d.Message
		if d.Typename == "PythonError" && len(d.Stack) > 0 {
			msg = formatPythonError(pythonError{Message: d.Message, Stack: d.Stack})
		}
		return 0, fmt.Errorf("Unable to delete deployment %s: %w", name,
			&ResultError{Operation: opDeleteDeployment, Typename: typenameOrUnknown(d.Typename), Message: msg})
	}
	return d.DeploymentID, nil
}
