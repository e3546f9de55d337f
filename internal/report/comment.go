package report

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v66/github"
)

// Marker is the hidden HTML comment that identifies the action's comment on a
// pull request. key tells apart several projects deploying from one
// repository (it is the dagster_cloud.yaml path).
func Marker(key string) string {
	return "<!-- dagster-branch-deploy:" + strings.ReplaceAll(key, "--", "-") + " -->"
}

// NewGitHubClient returns a go-github client for apiURL (GITHUB_API_URL), so
// that GitHub Enterprise Server works.
func NewGitHubClient(apiURL, token string, hc *http.Client) (*github.Client, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	c := github.NewClient(hc).WithAuthToken(token)
	apiURL = strings.TrimSuffix(apiURL, "/")
	if apiURL != "" && apiURL != "https://api.github.com" {
		var err error
		if c, err = c.WithEnterpriseURLs(apiURL, apiURL); err != nil {
			return nil, fmt.Errorf("GITHUB_API_URL %q: %w", apiURL, err)
		}
	}
	return c, nil
}

// Commenter keeps one comment per pull request.
type Commenter struct {
	Client      *github.Client
	Owner, Repo string
}

// Upsert edits the pull request's comment that carries marker, or creates
// one. It finds the comment by the marker alone, not by its author, so that
// it works with a personal access token or an App token as well as with
// GITHUB_TOKEN. It returns the comment's ID.
func (c *Commenter) Upsert(ctx context.Context, number int, marker, body string) (int64, error) {
	id, err := c.find(ctx, number, marker)
	if err != nil {
		return 0, err
	}
	if id != 0 {
		return id, c.Edit(ctx, id, body)
	}
	created, _, err := c.Client.Issues.CreateComment(ctx, c.Owner, c.Repo, number, &github.IssueComment{Body: github.String(body)})
	if err != nil {
		return 0, fmt.Errorf("commenting on %s/%s#%d: %w", c.Owner, c.Repo, number, explain(err))
	}
	return created.GetID(), nil
}

// Edit replaces the body of comment id.
func (c *Commenter) Edit(ctx context.Context, id int64, body string) error {
	if _, _, err := c.Client.Issues.EditComment(ctx, c.Owner, c.Repo, id, &github.IssueComment{Body: github.String(body)}); err != nil {
		return fmt.Errorf("editing comment %d on %s/%s: %w", id, c.Owner, c.Repo, explain(err))
	}
	return nil
}

func (c *Commenter) find(ctx context.Context, number int, marker string) (int64, error) {
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		comments, resp, err := c.Client.Issues.ListComments(ctx, c.Owner, c.Repo, number, opt)
		if err != nil {
			return 0, fmt.Errorf("listing comments of %s/%s#%d: %w", c.Owner, c.Repo, number, explain(err))
		}
		for _, cm := range comments {
			if strings.Contains(cm.GetBody(), marker) {
				return cm.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opt.Page = resp.NextPage
	}
}

// explain adds what to do to the errors a misconfigured workflow gets.
func explain(err error) error {
	if er, ok := err.(*github.ErrorResponse); ok && er.Response != nil {
		switch er.Response.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w (the github_token input was refused; leave it at its default ${{ github.token }} or pass a valid token)", err)
		case http.StatusForbidden, http.StatusNotFound:
			return fmt.Errorf("%w (the token may lack permission: add `permissions: {pull-requests: write}` to the job, or set pr_comment: false)", err)
		}
	}
	return err
}
