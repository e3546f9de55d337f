package gitlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gogitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
)

// Client talks to one project through GitLab's REST API v4.
type Client struct {
	gl *gogitlab.Client
	// Project is the project the merge requests are in: its numeric ID
	// or its full path.
	Project string
	// Job says that the client sends only the job's CI_JOB_TOKEN, which
	// GitLab does not take on the merge request, note and user endpoints:
	// its requests are anonymous there, and read only public projects.
	Job bool

	mu   sync.Mutex
	user *gogitlab.User // the token's user, once known
}

// NewClient returns a client for project (an ID or a full path) at apiURL
// (CI_API_V4_URL, e.g. https://gitlab.com/api/v4). token is a personal,
// project or group access token (sent as PRIVATE-TOKEN); with job set it
// is a CI_JOB_TOKEN (sent as JOB-TOKEN).
func NewClient(apiURL, token string, job bool, project string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(apiURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the GitLab API address %q (CI_API_V4_URL) is not an http(s) URL", apiURL)
	}
	if project == "" {
		return nil, errors.New("no project to talk to: CI_PROJECT_ID and CI_PROJECT_PATH are not set")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	opts := []gogitlab.ClientOptionFunc{
		gogitlab.WithBaseURL(apiURL),
		gogitlab.WithHTTPClient(hc),
		gogitlab.WithUserAgent("dagster-branch-deploy"),
		gogitlab.WithCustomRetryMax(3),
		gogitlab.WithURLWarningLogger(slog.New(slog.DiscardHandler)),
	}
	var gl *gogitlab.Client
	if job {
		gl, err = gogitlab.NewJobClient(token, opts...)
	} else {
		gl, err = gogitlab.NewClient(token, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("GitLab API client for %s: %w", apiURL, err)
	}
	return &Client{gl: gl, Project: project, Job: job}, nil
}

// Identity is the user the token writes as: the token's owner for a
// personal access token, the token's bot user ("project_<id>_bot_…") for
// a project or group access token. GET /user answers for all of them.
func (c *Client) Identity(ctx context.Context) (*gogitlab.User, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.user != nil {
		return c.user, nil
	}
	u, _, err := c.gl.Users.CurrentUser(gogitlab.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("finding out which user the GitLab token writes as (GET /user): %w", c.explain(err))
	}
	if u.ID == 0 {
		return nil, errors.New("finding out which user the GitLab token writes as: GET /user answered no user ID")
	}
	c.user = u
	return u, nil
}

// learn records the token's user from a note it wrote, when GET /user
// could not tell.
func (c *Client) learn(u gogitlab.NoteAuthor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.user == nil && u.ID != 0 {
		c.user = &gogitlab.User{ID: u.ID, Username: u.Username, Name: u.Name}
	}
}

// MergeRequest is a merge request as GitLab has it now.
type MergeRequest struct {
	IID            int64
	State          string // opened, closed, merged or locked
	Title          string
	SourceBranch   string
	SHA            string // the source branch's head
	WebURL         string
	AuthorName     string
	UpdatedAt      time.Time
	HeadPipelineID int64 // the latest pipeline of SHA, 0 when unknown
}

// Open reports whether the merge request is still open (a merge in
// progress, "locked", counts as open).
func (m MergeRequest) Open() bool { return m.State == "opened" || m.State == "locked" }

// MergeRequest reads merge request iid of the project.
func (c *Client) MergeRequest(ctx context.Context, iid int64) (MergeRequest, error) {
	mr, _, err := c.gl.MergeRequests.GetMergeRequest(c.Project, iid, nil, gogitlab.WithContext(ctx))
	if err != nil {
		return MergeRequest{}, fmt.Errorf("reading merge request !%d of project %s: %w", iid, c.Project, c.explain(err))
	}
	out := MergeRequest{IID: mr.IID, State: mr.State, Title: mr.Title, SourceBranch: mr.SourceBranch, SHA: mr.SHA, WebURL: mr.WebURL}
	if mr.Author != nil {
		out.AuthorName = mr.Author.Name
	}
	if mr.UpdatedAt != nil {
		out.UpdatedAt = mr.UpdatedAt.UTC()
	}
	if mr.HeadPipeline != nil {
		out.HeadPipelineID = mr.HeadPipeline.ID
	}
	return out, nil
}

// Commit reads a commit's message, author and time, for when the checkout
// cannot tell (a shallow clone without it).
func (c *Client) Commit(ctx context.Context, sha string) (cicontext.Commit, error) {
	cm, _, err := c.gl.Commits.GetCommit(c.Project, sha, nil, gogitlab.WithContext(ctx))
	if err != nil {
		return cicontext.Commit{}, fmt.Errorf("reading commit %s of project %s from the GitLab API: %w", sha, c.Project, c.explain(err))
	}
	out := cicontext.Commit{
		SHA:         sha,
		Message:     strings.TrimSpace(cm.Message),
		AuthorName:  cm.AuthorName,
		AuthorEmail: cm.AuthorEmail,
	}
	if cm.CommittedDate != nil {
		out.Timestamp = cm.CommittedDate.UTC() // as git's %ct
	}
	return out, nil
}

// status is an API error's HTTP status, 0 when there is none. client-go
// answers a 404 with the bare ErrNotFound.
func status(err error) int {
	if errors.Is(err, gogitlab.ErrNotFound) {
		return http.StatusNotFound
	}
	var er *gogitlab.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// explain adds what to do to the errors a misconfigured pipeline gets.
func (c *Client) explain(err error) error {
	if err == nil {
		return nil
	}
	token := "the GITLAB_TOKEN variable (or gitlab_token input)"
	fix := "a project access token with the api scope and the Reporter role or higher, in a masked CI/CD variable GITLAB_TOKEN"
	switch status(err) {
	case http.StatusUnauthorized:
		if c.Job {
			return fmt.Errorf("%w (GitLab takes no CI_JOB_TOKEN here; add %s)", err, fix)
		}
		return fmt.Errorf("%w (GitLab refused %s: it must be a valid, unexpired access token; use %s)", err, token, fix)
	case http.StatusForbidden:
		return fmt.Errorf("%w (the token may not do this: use %s)", err, fix)
	case http.StatusNotFound:
		if c.Job {
			return fmt.Errorf("%w (GitLab takes no CI_JOB_TOKEN here, so only a public project can be read; add %s)", err, fix)
		}
		return fmt.Errorf("%w (not there, or the token cannot see project %s)", err, c.Project)
	case http.StatusTooManyRequests:
		return fmt.Errorf("%w (GitLab's API rate limit for this token is used up; try again in a minute)", err)
	}
	return err
}
