package dagster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// BranchData identifies a branch deployment and describes its pull request.
// RepoName and BranchName are the deployment's key within the organization.
// Empty optional fields are sent as JSON null.
type BranchData struct {
	RepoName          string `json:"repoName"`
	BranchName        string `json:"branchName"`
	BranchURL         string `json:"branchUrl"`
	PullRequestURL    string `json:"pullRequestUrl"`
	PullRequestStatus string `json:"pullRequestStatus"` // OPEN, CLOSED or MERGED
	PullRequestNumber string `json:"pullRequestNumber"`
}

// Commit is the commit metadata shown for a branch deployment. Timestamp is
// in Unix seconds. Empty optional fields are sent as JSON null.
type Commit struct {
	CommitHash      string  `json:"commitHash"`
	Timestamp       float64 `json:"timestamp"`
	CommitMessage   string  `json:"commitMessage"`
	CommitURL       string  `json:"commitUrl"`
	AuthorName      string  `json:"authorName"`
	AuthorEmail     string  `json:"authorEmail"`
	AuthorAvatarURL string  `json:"authorAvatarUrl"`
}

// Deployment identifies a Dagster+ deployment.
type Deployment struct {
	ID   int
	Name string
}

// pullRequestStatuses are the values of the PullRequestStatus enum.
var pullRequestStatuses = map[string]bool{"OPEN": true, "CLOSED": true, "MERGED": true}

// variables returns the branchData input object. Like the dagster-cloud CLI,
// it sends every key, with null for unset values. The pull request status is
// upper-cased (GitHub reports "open"/"closed"), since the enum is upper case.
func (b BranchData) variables() (map[string]any, error) {
	var missing []string
	if strings.TrimSpace(b.RepoName) == "" {
		missing = append(missing, "repository name")
	}
	if strings.TrimSpace(b.BranchName) == "" {
		missing = append(missing, "branch name")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("branch data is missing the %s", strings.Join(missing, " and "))
	}
	status := strings.ToUpper(strings.TrimSpace(b.PullRequestStatus))
	if status != "" && !pullRequestStatuses[status] {
		return nil, fmt.Errorf("invalid pull request status %q: must be OPEN, CLOSED or MERGED", b.PullRequestStatus)
	}
	return map[string]any{
		"repoName":          b.RepoName,
		"branchName":        b.BranchName,
		"branchUrl":         nullable(b.BranchURL),
		"pullRequestUrl":    nullable(b.PullRequestURL),
		"pullRequestStatus": nullable(status),
		"pullRequestNumber": nullable(b.PullRequestNumber),
	}, nil
}

// variables returns the commit input object, with null for unset values.
func (c Commit) variables() (map[string]any, error) {
	if strings.TrimSpace(c.CommitHash) == "" {
		return nil, errors.New("commit data is missing the commit hash")
	}
	return map[string]any{
		"commitHash":      c.CommitHash,
		"timestamp":       c.Timestamp,
		"commitMessage":   nullable(c.CommitMessage),
		"commitUrl":       nullable(c.CommitURL),
		"authorName":      nullable(c.AuthorName),
		"authorEmail":     nullable(c.AuthorEmail),
		"authorAvatarUrl": nullable(c.AuthorAvatarURL),
	}, nil
}

// nullable maps "" to JSON null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateOrUpdateBranchDeployment creates the branch deployment for
// (b.RepoName, b.BranchName), or updates its commit and pull request metadata
// when it exists, and returns it. Closing a pull request is the same call
// with PullRequestStatus CLOSED or MERGED. baseDeploymentName may be empty
// (Dagster+ then uses "prod"). The call is made at organization scope.
func (c *Client) CreateOrUpdateBranchDeployment(ctx context.Context, b BranchData, commit Commit, baseDeploymentName string) (Deployment, error) {
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
		"baseDeploymentName":    nullable(baseDeploymentName),
		"snapshotBaseCondition": nil,
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

func typenameOrUnknown(t string) string {
	if t == "" {
		return "an unexpected result"
	}
	return t
}

// BranchState is what Dagster+ has recorded for the branch deployment of a
// repository and branch.
type BranchState struct {
	// Exists is false when Dagster+ has no deployment of that name yet.
	Exists bool
	// Name is the deployment name Dagster+ gives (or would give) the branch
	// deployment. It is set even when Exists is false.
	Name string
	// CommitHash and CommitTime are the commit last sent with
	// createOrUpdateBranchDeployment; "" and the zero time when unknown.
	CommitHash string
	CommitTime time.Time
	// PullRequestStatus is OPEN, CLOSED, MERGED or "" when unknown.
	PullRequestStatus string
}

// BranchDeploymentState reads, without creating or changing anything, the
// branch deployment of (repoName, branchName): whether it exists, its name,
// the commit it was last updated with and the status of its pull request.
// Both calls are made at organization scope.
func (c *Client) BranchDeploymentState(ctx context.Context, repoName, branchName string) (BranchState, error) {
	if strings.TrimSpace(repoName) == "" || strings.TrimSpace(branchName) == "" {
		return BranchState{}, errors.New("read branch deployment: the repository name and branch name must not be empty")
	}
	where := repoName + "@" + branchName
	var nameData struct {
		Name *string `json:"getBranchDeploymentName"`
	}
	if err := c.execute(ctx, "", opGetBranchDeploymentName,
		map[string]any{"repoName": repoName, "branchName": branchName}, &nameData); err != nil {
		return BranchState{}, fmt.Errorf("read branch deployment for %s: %w", where, err)
	}
	if nameData.Name == nil || *nameData.Name == "" {
		return BranchState{}, fmt.Errorf("read branch deployment for %s: %s: Dagster+ returned no deployment name",
			where, opGetBranchDeploymentName)
	}
	name := *nameData.Name

	var data struct {
		Result struct {
			Typename       string `json:"__typename"`
			DeploymentName string `json:"deploymentName"`
			LatestCommit   *struct {
				CommitHash string   `json:"commitHash"`
				Timestamp  *float64 `json:"timestamp"`
			} `json:"latestCommit"`
			GitMetadata *struct {
				PullRequestStatus *string `json:"pullRequestStatus"`
			} `json:"branchDeploymentGitMetadata"`
			Message string `json:"message"`
		} `json:"deploymentByName"`
	}
	if err := c.execute(ctx, "", opDeploymentByName, map[string]any{"name": name}, &data); err != nil {
		return BranchState{}, fmt.Errorf("read branch deployment %s for %s: %w", name, where, err)
	}
	r := data.Result
	switch r.Typename {
	case "DeploymentNotFoundError":
		return BranchState{Name: name}, nil
	case "DagsterCloudDeployment":
	default:
		return BranchState{}, fmt.Errorf("read branch deployment %s for %s: %w", name, where,
			&ResultError{Operation: opDeploymentByName, Typename: typenameOrUnknown(r.Typename), Message: r.Message})
	}
	st := BranchState{Exists: true, Name: name}
	if r.DeploymentName != "" {
		st.Name = r.DeploymentName
	}
	if lc := r.LatestCommit; lc != nil {
		st.CommitHash = lc.CommitHash
		if lc.Timestamp != nil && *lc.Timestamp > 0 {
			st.CommitTime = unixSeconds(*lc.Timestamp)
		}
	}
	if g := r.GitMetadata; g != nil && g.PullRequestStatus != nil {
		st.PullRequestStatus = *g.PullRequestStatus
	}
	return st, nil
}

// unixSeconds converts fractional Unix seconds to a UTC time, to the
// microsecond.
func unixSeconds(ts float64) time.Time {
	sec, frac := math.Modf(ts)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}
