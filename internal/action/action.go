// Package action is the GitHub Action: it joins the CI context, the project
// config, the image builds, the Dagster+ deploy and the report.
package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/report"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/secrets"
)

// Env is what the action reads and writes outside itself.
type Env struct {
	Actions    *githubactions.Action // inputs, outputs, summary, log commands
	Getenv     func(string) string
	Log        io.Writer // the job log (stdout)
	HTTPClient *http.Client
	// NewDocker connects to the Docker daemon; nil means the real one.
	NewDocker func(ctx context.Context, log io.Writer) (Docker, error)
	// DagsterOptions are extra client options (tests shorten the polling).
	DagsterOptions []dagster.Option
}

// Run runs the action. The error it returns is safe to print: secrets are
// scrubbed from it.
func Run(ctx context.Context, env Env) error {
	a := env.Actions
	sec := secrets.New(a.AddMask)
	in, inErr := ReadInputs(a.GetInput, env.Getenv)
	// Mask before anything is printed, even when the inputs are bad.
	sec.Add(in.Secrets()...)
	if inErr != nil {
		return fail(sec, inErr)
	}
	workspace := env.Getenv("GITHUB_WORKSPACE")
	projectDir := in.ProjectDir
	if !filepath.IsAbs(projectDir) && workspace != "" {
		projectDir = filepath.Join(workspace, projectDir)
	}
	ci, err := cicontext.FromGitHub(env.Getenv, projectDir, commitReader(ctx, env, in))
	if err != nil {
		return fail(sec, err)
	}
	p := &pipeline{env: env, in: in, ci: ci, sec: sec, projectDir: projectDir, workspace: workspace,
		yamlPath: filepath.Join(projectDir, in.YAMLPath)}
	p.rep = &report.Report{
		Branch:    ci.Mode != cicontext.ModeFull,
		CommitSHA: ci.Commit.SHA,
		CommitURL: ci.RepoURL() + "/commit/" + ci.Commit.SHA,
		RunURL:    ci.RunURL(),
	}
	err = p.run(ctx)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("the run was cancelled: %w", err)
		}
		p.rep.Failure = sec.Redact(err.Error())
	}
	// The comment and outputs are written even when the job was cancelled,
	// so that the PR does not keep saying "building".
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	p.finish(finishCtx)
	cancel()
	if err != nil {
		return fail(sec, err)
	}
	return nil
}

// commitReader reads the deployed commit's metadata from the checkout, or
// else from the GitHub API (the action's image has no git, and a checkout
// may not hold the pull request's head).
func commitReader(ctx context.Context, env Env, in Inputs) cicontext.GitLog {
	return func(dir, sha string) (cicontext.Commit, error) {
		c, err := cicontext.ReadGitLog(dir, sha)
		if err == nil || in.GitHubToken == "" {
			return c, err
		}
		gh, err := report.NewGitHubClient(env.Getenv("GITHUB_API_URL"), in.GitHubToken, env.HTTPClient)
		if err == nil {
			c, err = report.Commit(ctx, gh, env.Getenv("GITHUB_REPOSITORY"), sha)
		}
		if err != nil {
			env.Actions.Warningf("Commit %s: using the event's title and time, since neither git nor the GitHub API could tell its message: %s", sha, err)
		}
		return c, err
	}
}

// Error is a failure, ready to show: Msg has no secrets; File and Line
// point into the repository when the failure is about a file there.
type Error struct {
	Msg   string
	File  string
	Line  int
	Title string
	Err   error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func fail(sec *secrets.Set, err error) error {
	e := &Error{Msg: sec.Redact(err.Error()), Title: "dagster-branch-deploy failed", Err: err}
	var ce *config.Error
	var ces config.Errors
	switch {
	case errors.As(err, &ces) && len(ces) > 0:
		e.File, e.Line = ces[0].File, ces[0].Line
	case errors.As(err, &ce):
		e.File, e.Line = ce.File, ce.Line
	}
	var ie *InputError
	if errors.As(err, &ie) {
		e.Title = "Invalid input " + ie.Input
	}
	return e
}

type pipeline struct {
	env        Env
	in         Inputs
	ci         *cicontext.Context
	sec        *secrets.Set
	rep        *report.Report
	projectDir string
	workspace  string
	yamlPath   string
	client     *dagster.Client
	resolver   *registryauth.Resolver
	commentID  int64
}

func (p *pipeline) logf(format string, args ...any) {
	p.env.Actions.Infof("%s", p.sec.Redact(fmt.Sprintf(format, args...)))
}

func (p *pipeline) run(ctx context.Context) error {
	// Building without pushing (push: false) needs no Dagster+ access.
	buildOnly := !p.in.Push && p.ci.Mode != cicontext.ModeClose
	if !buildOnly {
		if err := p.in.CheckDagster(); err != nil {
			return err
		}
	}
	base := p.in.URL
	if base == "" {
		base = dagster.OrgURL(p.in.Organization)
	}
	opts := append([]dagster.Option{
		dagster.WithHTTPClient(p.env.HTTPClient),
		dagster.WithLogf(func(f string, a ...any) { p.logf(f, a...) }),
	}, p.env.DagsterOptions...)
	p.client = dagster.New(base, p.in.APIToken, opts...)

	cfg, err := config.Load(p.yamlPath)
	if p.ci.Mode == cicontext.ModeClose {
		// Closing needs no config; when it reads, the rows name the locations.
		if err == nil {
			for _, l := range cfg.Locations {
				p.rep.Set(l.Name, report.Closed, "")
			}
		}
		return p.close(ctx)
	}
	if err != nil {
		return err
	}
	locs, err := cfg.Select(p.in.LocationNames)
	if err != nil {
		return err
	}
	if buildOnly {
		_, err := p.buildAll(ctx, locs)
		if err == nil {
			p.logf("push is false: the images were built, not pushed, and nothing was deployed.")
		}
		return err
	}
	// A wrong URL or token fails now, not after the builds.
	if err := p.client.CheckConnection(ctx); err != nil {
		return err
	}
	return p.deploy(ctx, locs)
}

func (p *pipeline) close(ctx context.Context) error {
	p.logf("Pull request #%d was %s: marking its branch deployment %s.", p.ci.PullRequestNumber, strings.ToLower(p.ci.PullRequestStatus), p.ci.PullRequestStatus)
	p.rep.PullRequestStatus = p.ci.PullRequestStatus
	dep, err := p.client.CreateOrUpdateBranchDeployment(ctx, p.branchData(), p.commit(), p.in.Deployment)
	if err != nil {
		return fmt.Errorf("marking the branch deployment %s: %w", p.ci.PullRequestStatus, err)
	}
	p.setDeployment(dep.Name)
	p.logf("Branch deployment %s marked %s.", dep.Name, p.ci.PullRequestStatus)
	return nil
}

func (p *pipeline) deploy(ctx context.Context, locs []config.Location) error {
	images, err := p.buildAll(ctx, locs)
	if err != nil {
		return err
	}

	name := p.in.Deployment
	if p.ci.Mode == cicontext.ModeBranch {
		dep, err := p.client.CreateOrUpdateBranchDeployment(ctx, p.branchData(), p.commit(), p.in.Deployment)
		if err != nil {
			return fmt.Errorf("creating or updating the branch deployment: %w", err)
		}
		name = dep.Name
		p.logf("Branch deployment %s (base deployment %s) is up to date with commit %s.", name, p.in.Deployment, p.ci.Commit.Short(12))
	}
	p.setDeployment(name)

	docs := make([]map[string]any, len(locs))
	names := make([]string, len(locs))
	for i, l := range locs {
		docs[i] = l.Document(images[l.Name], p.ci.Commit.SHA, p.ci.GitURL())
		names[i] = l.Name
	}
	if _, err := p.client.DeployLocations(ctx, name, docs); err != nil {
		for _, n := range names {
			p.rep.Set(n, report.Failed, "")
		}
		return fmt.Errorf("deploying code locations %s to %s: %w", strings.Join(names, ", "), name, err)
	}
	for _, n := range names {
		p.rep.Set(n, report.Deployed, "")
	}
	p.logf("Deployed code locations %s to %s. View them at %s", strings.Join(names, ", "), name, p.rep.LocationsURL())
	p.comment(ctx)

	if p.in.LocationLoadTimeout == 0 {
		p.logf("location_load_timeout is 0: not waiting for the locations to load.")
		return nil
	}
	p.logf("Waiting up to %s for the agent to load %s...", p.in.LocationLoadTimeout, strings.Join(names, ", "))
	results, err := p.client.WaitForLoad(ctx, name, names, dagster.WaitOptions{
		LocationLoadTimeout:   p.in.LocationLoadTimeout,
		AgentHeartbeatTimeout: p.in.AgentHeartbeatTimeout,
	})
	for _, r := range results {
		switch {
		case r.Error != "":
			p.rep.Set(r.Name, report.Failed, p.sec.Redact(r.Error))
		case r.Loaded:
			p.rep.Set(r.Name, report.Loaded, "")
		}
	}
	if err != nil {
		return fmt.Errorf("waiting for code locations to load in %s: %w", name, err)
	}
	p.logf("All code locations loaded.")
	return nil
}

func (p *pipeline) setDeployment(name string) {
	p.rep.Deployment = name
	p.rep.DeploymentURL = p.client.DeploymentURL(name)
}

func (p *pipeline) branchData() dagster.BranchData {
	return dagster.BranchData{
		RepoName:          p.ci.RepoName,
		BranchName:        p.ci.Branch,
		BranchURL:         p.ci.BranchURL(),
		PullRequestURL:    p.ci.PullRequestURL,
		PullRequestStatus: p.ci.PullRequestStatus,
		PullRequestNumber: p.ci.PullRequestID(),
	}
}

func (p *pipeline) commit() dagster.Commit {
	c := p.ci.Commit
	var ts float64
	if !c.Timestamp.IsZero() {
		ts = float64(c.Timestamp.Unix())
	}
	return dagster.Commit{
		CommitHash:      c.SHA,
		Timestamp:       ts,
		CommitMessage:   c.Title(),
		CommitURL:       p.ci.RepoURL() + "/commit/" + c.SHA,
		AuthorName:      c.AuthorName,
		AuthorEmail:     c.AuthorEmail,
		AuthorAvatarURL: c.AvatarURL,
	}
}

// finish writes the comment, the job summary and the outputs. Failures here
// are warnings: the deploy's own result stands.
func (p *pipeline) finish(ctx context.Context) {
	a := p.env.Actions
	p.comment(ctx)
	for _, o := range [][2]string{
		{"deployment", p.rep.Deployment},
		{"deployment_url", p.rep.LocationsURL()},
		{"images", p.rep.ImagesJSON()},
		{"status", p.rep.Status()},
	} {
		a.SetOutput(o[0], p.sec.Redact(o[1]))
	}
	if p.env.Getenv("GITHUB_STEP_SUMMARY") != "" {
		a.AddStepSummary(p.sec.Redact(p.rep.Summary()))
	}
}

// comment creates or updates the pull request's comment.
func (p *pipeline) comment(ctx context.Context) {
	if !p.in.PRComment || p.ci.PullRequestNumber == 0 {
		return
	}
	a := p.env.Actions
	if p.in.GitHubToken == "" {
		a.Warningf("Not commenting on the pull request: github_token is empty (leave it at its default ${{ github.token }}, or set pr_comment: false).")
		return
	}
	gh, err := report.NewGitHubClient(p.env.Getenv("GITHUB_API_URL"), p.in.GitHubToken, p.env.HTTPClient)
	if err != nil {
		a.Warningf("Not commenting on the pull request: %s", p.sec.Redact(err.Error()))
		return
	}
	owner, repo, _ := strings.Cut(p.ci.RepoName, "/")
	c := &report.Commenter{Client: gh, Owner: owner, Repo: repo}
	key, err := filepath.Rel(p.workspaceOr("."), p.yamlPath)
	if err != nil {
		key = p.yamlPath
	}
	marker := report.Marker(filepath.ToSlash(key))
	body := p.sec.Redact(p.rep.Comment(marker))
	if p.commentID != 0 {
		if err := c.Edit(ctx, p.commentID, body); err == nil {
			return
		}
	}
	id, err := c.Upsert(ctx, p.ci.PullRequestNumber, marker, body)
	if err != nil {
		a.Warningf("Could not write the pull request comment (the deploy itself is not affected): %s", p.sec.Redact(err.Error()))
		return
	}
	p.commentID = id
}

func (p *pipeline) workspaceOr(def string) string {
	if p.workspace != "" {
		return p.workspace
	}
	return def
}
