// Package github is the action's use of the GitHub REST and GraphQL APIs:
// the pull request comment, the identity the token writes as, the pull
// request's current state and a commit's metadata. It works against
// github.com and GitHub Enterprise Server (GITHUB_API_URL).
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	gogithub "github.com/google/go-github/v66/github"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
)

// Client talks to one repository.
type Client struct {
	gh          *gogithub.Client
	graphqlURL  string
	Owner, Repo string

	login string // the token's identity, once known
}

// New returns a client for repository ("owner/name") at apiURL
// (GITHUB_API_URL; "" means github.com), authenticating with token.
func New(apiURL, token, repository string, hc *http.Client) (*Client, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	owner, repo, ok := strings.Cut(repository, "/")
	if !ok || owner == "" || repo == "" {
		return nil, fmt.Errorf("repository %q is not owner/name", repository)
	}
	gh := gogithub.NewClient(hc).WithAuthToken(token)
	graphqlURL := "https://api.github.com/graphql"
	apiURL = strings.TrimSuffix(apiURL, "/")
	if apiURL != "" && apiURL != "https://api.github.com" {
		var err error
		if gh, err = gh.WithEnterpriseURLs(apiURL, apiURL); err != nil {
			return nil, fmt.Errorf("GITHUB_API_URL %q: %w", apiURL, err)
		}
		// GitHub Enterprise Server serves GraphQL at /api/graphql beside
		// the REST API's /api/v3.
		graphqlURL = strings.TrimSuffix(gh.BaseURL.String(), "/")
		graphqlURL = strings.TrimSuffix(graphqlURL, "/v3") + "/graphql"
	}
	return &Client{gh: gh, graphqlURL: graphqlURL, Owner: owner, Repo: repo}, nil
}

// Identity is the login the token writes as: a user for a personal access
// token, "<app>[bot]" for an App installation token, "github-actions[bot]"
// for the job's GITHUB_TOKEN. It asks GraphQL's viewer, which every token
// may read without extra permissions, and falls back to REST /user (which
// installation tokens may not read).
func (c *Client) Identity(ctx context.Context) (string, error) {
	if c.login != "" {
		return c.login, nil
	}
	req, err := c.gh.NewRequest(http.MethodPost, c.graphqlURL, map[string]string{"query": "query { viewer { login } }"})
	if err != nil {
		return "", err
	}
	var out struct {
		Data struct {
			Viewer struct {
				Login string `json:"login"`
			} `json:"viewer"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	_, gqlErr := c.gh.Do(ctx, req, &out)
	if gqlErr == nil && out.Data.Viewer.Login != "" {
		c.login = out.Data.Viewer.Login
		return c.login, nil
	}
	if gqlErr == nil && len(out.Errors) > 0 {
		gqlErr = errors.New(out.Errors[0].Message)
	}
	if isStatus(gqlErr, http.StatusUnauthorized) {
		return "", explain(gqlErr)
	}
	u, _, err := c.gh.Users.Get(ctx, "")
	if err == nil && u.GetLogin() != "" {
		c.login = u.GetLogin()
		return c.login, nil
	}
	if gqlErr == nil {
		gqlErr = errors.New("no login in the answer")
	}
	return "", fmt.Errorf("finding out which user the github_token writes as (GraphQL viewer: %v; REST /user: %w)", gqlErr, explain(err))
}

// PullRequest is the current state of a pull request.
type PullRequest struct {
	Open    bool
	Merged  bool
	HeadSHA string
}

// PullRequest reads pull request number as GitHub has it now.
func (c *Client) PullRequest(ctx context.Context, number int) (PullRequest, error) {
	pr, _, err := c.gh.PullRequests.Get(ctx, c.Owner, c.Repo, number)
	if err != nil {
		return PullRequest{}, fmt.Errorf("reading pull request %s/%s#%d: %w", c.Owner, c.Repo, number, explain(err))
	}
	return PullRequest{Open: pr.GetState() == "open", Merged: pr.GetMerged(), HeadSHA: pr.GetHead().GetSHA()}, nil
}

// Commit reads a commit's message, author and time, for when the checkout
// cannot tell (no git in the action's image, or a shallow clone without
// the pull request's head).
func (c *Client) Commit(ctx context.Context, sha string) (cicontext.Commit, error) {
	rc, _, err := c.gh.Repositories.GetCommit(ctx, c.Owner, c.Repo, sha, nil)
	if err != nil {
		return cicontext.Commit{}, fmt.Errorf("reading commit %s of %s/%s from the GitHub API: %w", sha, c.Owner, c.Repo, explain(err))
	}
	cm := rc.GetCommit()
	return cicontext.Commit{
		SHA:         sha,
		Timestamp:   cm.GetCommitter().GetDate().Time.UTC(), // as git's %ct
		Message:     strings.TrimSpace(cm.GetMessage()),
		AuthorName:  cm.GetAuthor().GetName(),
		AuthorEmail: cm.GetAuthor().GetEmail(),
		AvatarURL:   rc.GetAuthor().GetAvatarURL(),
	}, nil
}

func isStatus(err error, status int) bool {
	var er *gogithub.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == status
}

// explain adds what to do to the errors a misconfigured workflow gets.
func explain(err error) error {
	var rl *gogithub.RateLimitError
	var abuse *gogithub.AbuseRateLimitError
	var er *gogithub.ErrorResponse
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rl):
		return fmt.Errorf("%w (GitHub's API rate limit for this token is used up until %s)", err, rl.Rate.Reset.UTC().Format(time.RFC3339))
	case errors.As(err, &abuse):
		wait := "a few minutes"
		if abuse.RetryAfter != nil {
			wait = abuse.RetryAfter.String()
		}
		return fmt.Errorf("%w (GitHub's secondary rate limit: it asks to wait %s)", err, wait)
	case errors.As(err, &er) && er.Response != nil:
		switch er.Response.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w (the github_token input was refused; leave it at its default ${{ github.token }} or pass a valid token)", err)
		case http.StatusForbidden, http.StatusNotFound:
			return fmt.Errorf("%w (the token may lack permission: add `permissions: {pull-requests: write}` to the job, or set pr_comment: false)", err)
		}
	}
	return err
}
