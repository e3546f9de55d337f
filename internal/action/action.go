// Package action is the deploy pipeline: it joins the CI context, the
// project config, the image builds, the Dagster+ deploy and the report. The
// CI system (GitHub Actions, GitLab CI) is behind platform.Platform.
package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/report"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/secrets"
)

// Env is what the pipeline reads and writes outside itself.
type Env struct {
	// NewPlatform returns the CI platform, writing its job log to log (the
	// pipeline's redacting writer over Stdout) and its secret masks to
	// Stdout as they are.
	NewPlatform func(log io.Writer) platform.Platform
	Stdout      io.Writer // the job's raw output
	HTTPClient  *http.Client
	// NewDocker connects to the Docker daemon; nil means the real one.
	NewDocker func(ctx context.Context, log io.Writer) (Docker, error)
	// DagsterOptions are extra client options (tests shorten the polling).
	DagsterOptions []dagster.Option
	// Now is the clock of the report; nil means time.Now. Builds call it
	// from several goroutines.
	Now func() time.Time
	// ProgressEvery is how often a line tells what running builds do; 0
	// means 30 s.
	ProgressEvery time.Duration
	// Registry answers reuse's registry questions; nil means the real
	// registries.
	Registry Registry
}

// Run runs the pipeline. It prints its failure through the platform (an
// annotation at the file and line when there is one) and returns it; the
// error is safe to print: secrets are scrubbed from it.
func Run(ctx context.Context, env Env) error {
	// add-mask lines go out as they are; everything else the run prints
	// passes through the redacting writer, so a secret the CI system does
	// not mask (an encoding of it, or on a platform without masking) never
	// reaches the log.
	sec := secrets.New(nil)
	log := sec.Writer(env.Stdout)
	defer log.Flush()
	plat := env.NewPlatform(log)
	sec.OnAdd(plat.Log().Mask)
	err := run(ctx, env, plat, sec, log)
	if err != nil {
		e := fail(sec, err)
		file := e.File
		if file != "" {
			file = filepath.ToSlash(relative(plat.Workspace(), file))
		}
		_ = log.Flush()
		plat.Log().Fail(e.Title, e.Msg, file, e.Line)
		return e
	}
	return nil
}

func run(ctx context.Context, env Env, plat platform.Platform, sec *secrets.Set, log io.Writer) error {
	in, inErr := ReadInputs(plat.Input, plat.Getenv)
	// Mask before anything is printed, even when the inputs are bad.
	sec.Add(in.Secrets()...)
	sec.Add(plat.Secrets()...)
	sec.AddPair(in.RegistryUsername, in.RegistryPassword)
	if inErr != nil {
		return inErr
	}
	workspace := plat.Workspace()
	projectDir, yamlPath, err := in.Paths(workspace)
	if err != nil {
		return err
	}
	ci, err := plat.Context(ctx, projectDir)
	if err != nil {
		return err
	}
	p := &pipeline{env: env, plat: plat, log: plat.Log(), in: in, ci: ci, sec: sec, projectDir: projectDir, workspace: workspace, yamlPath: yamlPath, warned: map[string]bool{}}
	p.rep = &report.Report{
		Branch:    ci.Mode == cicontext.ModeBranch || ci.Mode == cicontext.ModeClose,
		CommitSHA: ci.Commit.SHA,
		CommitURL: ci.CommitURL,
		RunURL:    ci.RunURL,
		Request:   ci.Request,
		Now:       p.now,
	}
	// What the event allows, before anything is sent anywhere.
	v := eventPolicy(in, ci)
	switch v.policy {
	case PolicySkip:
		p.rep.Skipped = sec.Redact(v.reason)
		p.log.Notice(p.rep.Skipped + ".")
		p.finish(ctx) // outputs and the summary; no comment
		return nil
	case PolicyFail:
		err := errors.New(v.reason)
		p.rep.Failure = sec.Redact(err.Error())
		p.finish(ctx)
		return err
	case PolicyBuild:
		p.log.Notice(sec.Redact(v.reason) + ".")
		p.in.Push, p.policyBuild = false, true
	}
	if err := p.in.CheckRegistryPair(); err != nil {
		if !p.policyBuild {
			return err
		}
		// A password from a secret such a run does not get.
		p.logf("registry_username and registry_password are not both set (this run gets no secrets): building without them.")
		p.in.RegistryUsername, p.in.RegistryPassword = "", ""
	}
	if p.in.DryRun {
		p.logf("dry_run is true: everything is checked and the images are built, but nothing is pushed, deployed or commented.")
	}
	if in.PRComment && ci.PullRequestNumber != 0 && !p.policyBuild && !p.in.DryRun {
		var why string
		key := filepath.ToSlash(relative(p.workspaceOr("."), p.yamlPath))
		if p.review, why = plat.Review(ctx, ci, key); p.review == nil {
			p.log.Warn("Not commenting on the "+ci.Request+": "+sec.Redact(why), "", 0)
		}
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
	return err
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

func fail(sec *secrets.Set, err error) *Error {
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
	plat       platform.Platform
	log        platform.Log
	in         Inputs
	ci         *cicontext.Context
	sec        *secrets.Set
	rep        *report.Report
	cfg        *config.File
	projectDir string
	workspace  string
	yamlPath   string
	client     *dagster.Client
	resolver   *registryauth.Resolver
	review     platform.Review // nil: no comment
	serverless *serverlessRun  // nil: a Hybrid organization
	warned     map[string]bool // registries whose immutable tags were warned about
	// superseded says why a newer run owns the branch deployment and the
	// comment; this run then writes neither.
	superseded string
	// policyBuild says the event policy made this run build only (a fork's
	// or Dependabot's pull request, a merge queue).
	policyBuild bool
	// ssh are the ssh entries as the builder takes them (see containerSSH).
	ssh []string
}

// logf prints a line to the job log. Its values come from the
// configuration, the event and API answers: the platform's log keeps them
// data.
func (p *pipeline) logf(format string, args ...any) {
	p.log.Info(p.sec.Redact(fmt.Sprintf(format, args...)))
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
	if p.ci.Mode == cicontext.ModeClose && p.in.DryRun {
		return p.planClose(ctx)
	}
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
	// Build options that upstream's dagster_cloud.yaml schema forbids live
	// in a file beside it, which upstream never reads.
	bc, err := config.LoadBuildConfig(config.BuildConfigPath(p.yamlPath), cfg)
	if err != nil {
		return err
	}
	cfg.ApplyBuildConfig(bc)
	p.warnAt(append(cfg.Warnings, bc.Warnings...))
	p.cfg = cfg
	locs, err := cfg.Select(p.in.LocationNames)
	if err != nil {
		return err
	}
	if buildOnly {
		if p.in.DryRun {
			p.rep.DryRun = &report.DryRun{}
		}
		_, err := p.buildAll(ctx, locs)
		if err == nil {
			why := "push is false"
			if p.policyBuild {
				why = "This run only builds"
			}
			p.logf("%s: the images were built, not pushed, and nothing was deployed.", why)
		}
		return err
	}
	// A wrong URL or token fails now, not after the builds.
	if err := p.client.CheckConnection(ctx); err != nil {
		return err
	}
	if err := p.detectAgent(ctx, locs); err != nil {
		return err
	}
	if p.in.DryRun {
		return p.dryRun(ctx, locs)
	}
	return p.deploy(ctx, locs)
}

// pushes says whether builds push their images: not with push: false, a
// build-only event, or a dry run.
func (p *pipeline) pushes() bool { return p.in.Push && !p.in.DryRun }

func (p *pipeline) close(ctx context.Context) error {
	what := "marking its branch deployment " + p.ci.PullRequestStatus
	if p.in.DeleteOnClose {
		what = "deleting its branch deployment (delete_on_close)"
	}
	p.logf("%s was %s: %s.", upperFirst(p.ci.RequestRef()), strings.ToLower(p.ci.PullRequestStatus), what)
	p.rep.PullRequestStatus = p.ci.PullRequestStatus
	why, st, err := p.outdated(ctx)
	if err != nil {
		return err
	}
	if why != "" {
		p.superseded = why
		return p.supersede()
	}
	if p.in.DeleteOnClose {
		return p.deleteBranch(ctx, st)
	}
	// baseDeploymentName is null, as upstream's close sends it (the prerun
	// step's `dagster-cloud ci branch-deployment`, GitLab's
	// `--mark-closed`): closing does not re-base the deployment, and
	// Dagster+ keeps the base it has.
	dep, err := p.client.CreateOrUpdateBranchDeployment(ctx, p.branchData(), p.commit(), "")
	if err != nil {
		return fmt.Errorf("marking the branch deployment %s: %w", p.ci.PullRequestStatus, err)
	}
	p.setDeployment(dep.Name)
	p.logf("Branch deployment %s marked %s.", dep.Name, p.ci.PullRequestStatus)
	return nil
}

// deleteBranch deletes the closed request's branch deployment
// (delete_on_close), after Dagster+ confirms that the deployment of that
// name is a branch deployment; the report then says deleted.
func (p *pipeline) deleteBranch(ctx context.Context, st dagster.BranchState) error {
	if !st.Exists {
		p.rep.Deleted = true
		p.rep.Locations = nil
		p.logf("%s has no branch deployment in Dagster+: nothing to delete.", upperFirst(p.ci.RequestRef()))
		return nil
	}
	if _, err := p.client.DeleteBranchDeployment(ctx, st.Name, st.Name); err != nil {
		return fmt.Errorf("deleting branch deployment %s (delete_on_close): %w", st.Name, err)
	}
	p.rep.Deleted = true
	p.rep.Deployment, p.rep.DeploymentURL = st.Name, "" // gone: nothing to link to
	p.rep.SetAll(report.Deleted)
	p.logf("Branch deployment %s deleted.", st.Name)
	return nil
}

func (p *pipeline) deploy(ctx context.Context, locs []config.Location) error {
	pl, err := p.prepare(ctx, locs)
	if err != nil || p.superseded != "" {
		return err
	}
	// The branch deployment is brought up to date while the images build
	// (as dagster-cloud's ci init does before building); the deploy waits
	// for both.
	var branch chan branchResult
	if p.ci.Mode == cicontext.ModeBranch {
		branch = make(chan branchResult, 1)
		go func() { branch <- p.upsertBranch(ctx) }()
	}
	buildErr := p.execute(ctx, pl)
	name := p.in.Deployment
	if branch != nil {
		r := <-branch
		switch {
		case r.err != nil:
			return errors.Join(buildErr, r.err)
		case r.outdated != "":
			p.superseded = r.outdated
			return p.supersede()
		}
		name = r.name
		p.logf("Branch deployment %s (base deployment %s) is up to date with commit %s.", name, p.in.Deployment, p.ci.Commit.Short(12))
	}
	if buildErr != nil {
		return buildErr
	}
	if branch != nil {
		// A newer run of the request may have updated the branch deployment
		// while this run's images built: its locations must not be
		// replaced by this run's older ones. (What is left is the moment
		// between this read and the deploy, not a build's minutes.)
		// This run wrote its own commit there: any other commit now is
		// another run's, whatever its time (a force-push may go back to an
		// older commit), and the request's head decides.
		st, err := p.client.BranchDeploymentState(ctx, p.ci.RepoName, p.ci.Branch)
		if err != nil {
			return fmt.Errorf("reading the branch deployment before deploying to it: %w", err)
		}
		why, err := p.outdatedBy(ctx, st, st.CommitHash != p.ci.Commit.SHA)
		if err != nil {
			return err
		}
		if why != "" {
			p.superseded = why
			return p.supersede()
		}
	}
	images := pl.images
	p.setDeployment(name)

	docs := make([]map[string]any, len(locs))
	names := make([]string, len(locs))
	for i, l := range locs {
		docs[i] = l.Document(images[l.Name], p.ci.Commit.SHA, p.ci.TreeURL)
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
	p.logf("Waiting up to %s for the agent to load %s (and up to %s for an agent to answer)...", p.in.LocationLoadTimeout, strings.Join(names, ", "), p.in.AgentHeartbeatTimeout)
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

// outdated makes sure this run is still the pull request's latest
// before it writes the branch deployment: runs of one pull request may
// finish in any order, and the older one must not put its commit back over
// a newer one, nor reopen a deployment a later run closed. Dagster+ records
// the deployment's commit and time and its pull request status; when they
// say a newer run was here, GitHub's view of the pull request decides (a
// force-push may legitimately go back to an older commit). When this run is
// out of date, it returns why, and nothing may be written. It has no side
// effects, so that it can run while the images build.
//
// It also returns what Dagster+ has of the branch deployment.
func (p *pipeline) outdated(ctx context.Context) (string, dagster.BranchState, error) {
	st, err := p.client.BranchDeploymentState(ctx, p.ci.RepoName, p.ci.Branch)
	if err != nil {
		return "", st, fmt.Errorf("reading the branch deployment before updating it: %w", err)
	}
	why, err := p.outdatedBy(ctx, st, false)
	return why, st, err
}

// outdatedBy is outdated with what Dagster+ has of the branch deployment.
// With otherCommit, a commit there that is not this run's is in doubt
// whatever its time.
func (p *pipeline) outdatedBy(ctx context.Context, st dagster.BranchState, otherCommit bool) (string, error) {
	if !st.Exists {
		return "", nil
	}
	ours := p.ci.Commit
	var doubt string
	switch {
	case p.ci.Mode == cicontext.ModeClose:
		if st.PullRequestStatus != cicontext.StatusOpen {
			return "", nil
		}
		doubt = "it is open in Dagster+" // and the pull request may have been reopened since
	case st.PullRequestStatus == cicontext.StatusClosed || st.PullRequestStatus == cicontext.StatusMerged:
		doubt = fmt.Sprintf("a later run marked it %s", st.PullRequestStatus)
	case st.CommitHash != ours.SHA && !st.CommitTime.IsZero() && !ours.Timestamp.IsZero() && st.CommitTime.After(ours.Timestamp):
		doubt = fmt.Sprintf("it already shows commit %.12s of %s, newer than this run's commit %.12s of %s",
			st.CommitHash, st.CommitTime.UTC().Format(time.RFC3339), ours.SHA, ours.Timestamp.UTC().Format(time.RFC3339))
	case otherCommit:
		doubt = fmt.Sprintf("another run set it to commit %.12s while this run's images built", st.CommitHash)
	default:
		return "", nil
	}
	pr, err := p.plat.Request(ctx, p.ci.PullRequestNumber)
	if err != nil {
		if p.ci.Mode == cicontext.ModeClose {
			return "", nil // the event says the request closed
		}
		return fmt.Sprintf("branch deployment %s was not updated: %s, and %s could not say whether this run's commit %.12s is still the request's head (%s)",
			st.Name, doubt, p.plat.Name(), ours.SHA, err), nil
	}
	switch {
	case p.ci.Mode == cicontext.ModeClose && pr.Open:
		return fmt.Sprintf("branch deployment %s was not marked %s: %s is open again", st.Name, p.ci.PullRequestStatus, p.ci.RequestRef()), nil
	case p.ci.Mode != cicontext.ModeClose && !pr.Open:
		return fmt.Sprintf("branch deployment %s was not updated: %s is closed (%s)", st.Name, p.ci.RequestRef(), doubt), nil
	case p.ci.Mode != cicontext.ModeClose && pr.HeadSHA != ours.SHA:
		return fmt.Sprintf("branch deployment %s was not updated: %s is now at commit %.12s, not this run's %.12s (%s)", st.Name, p.ci.RequestRef(), pr.HeadSHA, ours.SHA, doubt), nil
	}
	return "", nil
}

// supersede ends an out-of-date run: it says so, and leaves the branch
// deployment and the comment to the newer run.
func (p *pipeline) supersede() error {
	p.rep.Superseded = p.superseded
	// Rows of locations that were never built would say "building" forever.
	kept := p.rep.Locations[:0]
	for _, l := range p.rep.Locations {
		if l.State != report.Building {
			kept = append(kept, l)
		}
	}
	p.rep.Locations = kept
	what := "changed nothing"
	if slices.ContainsFunc(p.rep.Locations, func(l report.Location) bool { return l.State == report.Pushed }) {
		what = "deployed nothing (its images were pushed)"
	}
	p.log.Notice(p.sec.Redact("This run is out of date and " + what + ": " + p.superseded + "."))
	return nil
}

// branchResult is what upsertBranch did.
type branchResult struct {
	name     string // the branch deployment
	outdated string // why this run is out of date and wrote nothing
	err      error
}

// upsertBranch creates or updates the pull request's branch deployment,
// unless a newer run has (outdated). It runs while the images build, so it
// touches neither the report nor the comment.
func (p *pipeline) upsertBranch(ctx context.Context) branchResult {
	why, _, err := p.outdated(ctx)
	if err != nil || why != "" {
		return branchResult{outdated: why, err: err}
	}
	dep, err := p.client.CreateOrUpdateBranchDeployment(ctx, p.branchData(), p.commit(), p.in.Deployment)
	if err != nil {
		return branchResult{err: fmt.Errorf("creating or updating the branch deployment: %w", err)}
	}
	return branchResult{name: dep.Name}
}

func (p *pipeline) setDeployment(name string) {
	p.rep.Deployment = name
	p.rep.DeploymentURL = p.client.DeploymentURL(name)
}

func (p *pipeline) branchData() dagster.BranchData {
	return dagster.BranchData{
		RepoName:          p.ci.RepoName,
		BranchName:        p.ci.Branch,
		BranchURL:         p.ci.BranchURL,
		PullRequestURL:    p.ci.PullRequestURL,
		PullRequestStatus: p.ci.PullRequestStatus,
		PullRequestNumber: p.ci.PullRequestID(),
	}
}

// commit is the commit input of createOrUpdateBranchDeployment: the
// message is the subject (git's %s, as upstream sends), the avatar the
// commit author's or null (see cicontext).
//
// commitUrl differs from upstream on purpose, for the deploy only. No
// upstream GitHub flow sends it: `ci init`/`ci branch-deployment` leave it
// null (their GitHub context computes a .../tree/<sha> address but never
// passes it on), `branch-deployment create-or-update` has no flag for it,
// and dg omits the key. The deploy (OPEN) sends <repo>/commit/<sha> all the
// same, because DeploymentCommitInput takes it and Dagster+ keeps it as the
// deployment's latestCommit.commitUrl, the address of the commit that
// Dagster+ can link to; it is a deliberate extra, not something upstream
// does, and that the UI renders it as the commit's link is inferred from
// the schema, not verified against Dagster+'s closed source. Marking the
// deployment CLOSED or MERGED sends null, as upstream does.
func (p *pipeline) commit() dagster.Commit {
	c := p.ci.Commit
	var ts float64
	if !c.Timestamp.IsZero() {
		ts = float64(c.Timestamp.Unix())
	}
	var url string
	if p.ci.Mode != cicontext.ModeClose {
		url = p.ci.CommitURL
	}
	return dagster.Commit{
		CommitHash:      c.SHA,
		Timestamp:       ts,
		CommitMessage:   c.Title(),
		CommitURL:       url,
		AuthorName:      c.AuthorName,
		AuthorEmail:     c.AuthorEmail,
		AuthorAvatarURL: c.AvatarURL,
	}
}

// finish writes the comment, the job summary and the outputs. Failures here
// are warnings: the deploy's own result stands.
func (p *pipeline) finish(ctx context.Context) {
	p.comment(ctx)
	var outs []platform.Output
	for _, o := range [][2]string{
		{"deployment", p.rep.Deployment},
		{"deployment_url", p.rep.LocationsURL()},
		{"images", p.rep.ImagesJSON()},
		{"status", p.rep.Status()},
	} {
		outs = append(outs, platform.Output{Name: o[0], Value: p.sec.Redact(o[1])})
	}
	if err := p.plat.Outputs(outs); err != nil {
		p.log.Warn(p.sec.Redact("Could not write the outputs: "+err.Error()), "", 0)
	}
	if err := p.plat.Summary(p.sec.Redact(p.rep.Summary())); err != nil {
		p.log.Warn(p.sec.Redact("Could not write the job summary: "+err.Error()), "", 0)
	}
}

// comment creates or updates the request's comment. A failure is a
// warning: the deploy's own result stands.
func (p *pipeline) comment(ctx context.Context) {
	if p.review == nil || p.superseded != "" {
		return
	}
	p.rep.MaxBytes = p.review.MaxBytes()
	body := p.sec.Redact(p.rep.Comment(p.review.Trailer()))
	err := p.review.Write(ctx, body)
	var se *platform.SupersededError
	switch {
	case errors.As(err, &se):
		p.superseded = se.Error()
		_ = p.supersede()
	case err != nil:
		p.log.Warn(p.sec.Redact("Could not write the "+p.ci.Request+" comment (the deploy itself is not affected): "+err.Error()), "", 0)
	}
}

// warnAt prints warnings about files of the checkout at their file and
// line.
func (p *pipeline) warnAt(ws []*config.Error) {
	for _, w := range ws {
		p.log.Warn(p.sec.Redact(w.Msg), filepath.ToSlash(relative(p.workspaceOr("."), w.File)), w.Line)
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// relative is path relative to dir when it is inside it.
func relative(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

func (p *pipeline) now() time.Time {
	if p.env.Now != nil {
		return p.env.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *pipeline) workspaceOr(def string) string {
	if p.workspace != "" {
		return p.workspace
	}
	return def
}
