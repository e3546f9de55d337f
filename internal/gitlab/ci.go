// Package gitlab is GitLab CI as the pipeline's platform (platform.Platform):
// the job's predefined variables for the context, INPUT_* variables for the
// inputs, a plain job log with collapsible sections, a dotenv report for the
// outputs, and the merge request's note through GitLab's REST API v4
// (gitlab.com/gitlab-org/api/client-go).
//
// # Pipelines
//
// A job deploys in three kinds of pipeline (Supported):
//
//   - A merge request pipeline (CI_PIPELINE_SOURCE=merge_request_event:
//     detached, merged results and merge train pipelines) deploys the merge
//     request's branch deployment (ModeBranch, OPEN). The repository is
//     CI_PROJECT_PATH, the project's full path (two groups may hold projects
//     of the same name; upstream's CI_PROJECT_NAME would mix them up). The
//     branch is CI_MERGE_REQUEST_SOURCE_BRANCH_NAME, the request
//     CI_MERGE_REQUEST_PROJECT_URL/-/merge_requests/CI_MERGE_REQUEST_IID.
//     The commit is CI_MERGE_REQUEST_SOURCE_BRANCH_SHA when set: in a merged
//     results pipeline CI_COMMIT_SHA is a merge commit that no branch holds.
//     Otherwise it is CI_COMMIT_SHA.
//   - A pipeline on the default branch (CI_COMMIT_BRANCH == CI_DEFAULT_BRANCH)
//     deploys to the full deployment (ModeFull), when its source is push (a
//     push or merge), web ("Run pipeline"), api, trigger (a trigger token),
//     pipeline (a multi-project pipeline) or parent_pipeline (a child
//     pipeline): each runs the default branch's code because someone changed
//     it or asked for a run, as GitHub's push and workflow_dispatch. A
//     schedule is refused: a timer redeploying production is a surprise
//     that a template's rules should rule out. Tags, other branches and
//     other sources are refused.
//   - The environment's stop job (Options.Close) marks the branch deployment
//     MERGED or CLOSED, as GitLab says the merge request is now.
//
// The commit's time, message and author come from the checkout (go-git),
// else from the API, else from CI_COMMIT_TIMESTAMP, CI_COMMIT_MESSAGE and
// CI_COMMIT_AUTHOR ("Name <email>") when they describe the deployed commit
// (not in merged results pipelines, where the merge request's title
// stands in), else, for the stop job, from the merge request.
//
// # The stop job's merge request
//
// GitLab runs the stop job (environment:action: stop, named by the deploy
// job's environment:on_stop) when the merge request is merged or closed,
// when the environment's auto_stop_in expires, or by hand. It runs in the
// pipeline of the environment's last deployment, so in a merge request
// pipeline it has CI_MERGE_REQUEST_IID. The merge request's IID is read
// from, in this order, all that are set having to agree:
//
//   - CI_MERGE_REQUEST_IID;
//   - DAGSTER_MR_IID, a variable the template may set on the stop job;
//   - CI_ENVIRONMENT_NAME ending in "mr-<iid>" (e.g. "dagster/mr-42"), when
//     the template names the environment so.
//
// The stop job then reads the merge request from the API: merged gives
// MERGED, closed gives CLOSED, and one still open (an auto_stop_in expiry or
// a hand-run stop) is an error, as nothing should be closed. The branch is
// the merge request's source branch and the commit its head.
//
// # Tokens
//
// The API is CI_API_V4_URL. Notes need GITLAB_TOKEN (the gitlab_token input
// first): a project access token with the api scope and the Reporter role
// or higher, whose bot user writes the note. GitLab takes no CI_JOB_TOKEN on
// the notes, merge request or user endpoints (they are not among those its
// docs list for job tokens; a job token sent there counts for nothing).
// With only CI_JOB_TOKEN, Review returns nil and says which variable to add,
// and the merge request is read with the job token, anonymously in effect:
// that works for a public project only, and the error says to add
// GITLAB_TOKEN otherwise.
//
// # Run ID and attempt
//
// RunID is CI_PIPELINE_ID: instance-wide and increasing, so a later pipeline
// of a merge request has a larger one. RunAttempt is CI_JOB_ID: GitLab has no
// attempt number, and retrying a job creates a new job with a larger ID in
// the same pipeline, so a retry outranks the attempt it replaces in the
// note's stamp (platform.Stamp orders by RunID, then RunAttempt) and pushes
// images under its own tag (<sha>-<pipeline>-<job>), as a GitHub re-run
// does. The stop job is the exception: it belongs to an old pipeline (that
// of the environment's last deployment), yet closing is the latest thing
// that happened to the merge request. Its note is stamped with the larger of
// its pipeline's ID and the merge request's head pipeline's (from the API),
// and attempt CloseAttempt, above any job ID: no run of those pipelines
// overwrites the closed note, and a pipeline after a reopen does.
//
// # Outputs
//
// With Options.Dotenv, Outputs writes DAGSTER_DEPLOYMENT,
// DAGSTER_DEPLOYMENT_URL, DAGSTER_STATUS and DAGSTER_IMAGES (from the outputs
// deployment, deployment_url, status and images) as a dotenv report, for
// `artifacts: reports: dotenv:`; see writeDotenv for GitLab's rules and how
// they are kept.
package gitlab

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
)

// CloseAttempt is the stop job's attempt in its note's stamp: above any job
// ID (see the package doc; gitlab.com's job IDs are past 2^31 already).
const CloseAttempt = math.MaxInt

// Options are the job's role, as the template sets it.
type Options struct {
	Dotenv string // where Outputs writes the DAGSTER_* variables (a dotenv report artifact); "" writes none
	Close  bool   // the environment's stop job: Context reads the merge request's state from the API and returns ModeClose (MERGED or CLOSED)
}

// CI is GitLab CI as the pipeline's platform.
type CI struct {
	getenv func(string) string
	log    *jobLog
	opts   Options
	now    func() time.Time

	api    *Client // GITLAB_TOKEN's client; nil without one
	read   *Client // api, else a CI_JOB_TOKEN client, else nil
	noAPI  string  // why api is nil
	readEr error   // why read is nil

	closeHead int64 // the merge request's head pipeline, read by the stop job
}

var _ platform.Platform = (*CI)(nil)

// NewCI returns the GitLab CI platform. raw is the job's output as it is; log is the job log (the pipeline passes a redacting writer over the same output).
func NewCI(getenv func(string) string, raw, log io.Writer, hc *http.Client, opts Options) *CI {
	// raw is not needed: GitLab has no log commands (such as GitHub's
	// ::add-mask::) that must bypass the redacting writer.
	_ = raw
	p := &CI{getenv: getenv, opts: opts, now: time.Now}
	p.log = &jobLog{w: log, now: func() time.Time { return p.now() }}

	apiURL := getenv("CI_API_V4_URL")
	if apiURL == "" && getenv("CI_SERVER_URL") != "" {
		apiURL = strings.TrimSuffix(getenv("CI_SERVER_URL"), "/") + "/api/v4"
	}
	project := firstSet(getenv("CI_MERGE_REQUEST_PROJECT_ID"), getenv("CI_PROJECT_ID"), getenv("CI_PROJECT_PATH"))
	token, jobToken := p.token(), strings.TrimSpace(getenv("CI_JOB_TOKEN"))
	fix := "add a project access token with the api scope (Reporter role or higher) as a masked CI/CD variable GITLAB_TOKEN (or pass it as the gitlab_token input), or set pr_comment: false"
	switch {
	case token != "" && token == jobToken:
		p.noAPI = "GITLAB_TOKEN holds the job's CI_JOB_TOKEN, which cannot write merge request notes: " + fix
	case token != "":
		var err error
		if p.api, err = NewClient(apiURL, token, false, project, hc); err != nil {
			p.noAPI = err.Error()
		}
	default:
		p.noAPI = "GITLAB_TOKEN is not set, and CI_JOB_TOKEN cannot write merge request notes: " + fix
	}
	switch {
	case p.api != nil:
		p.read = p.api
	case jobToken != "":
		var err error
		if p.read, err = NewClient(apiURL, jobToken, true, project, hc); err != nil {
			p.readEr = err
		}
	default:
		p.readEr = errors.New("neither GITLAB_TOKEN nor CI_JOB_TOKEN is set")
	}
	return p
}

// token is the gitlab_token input, else GITLAB_TOKEN.
func (p *CI) token() string {
	if t := p.Input("gitlab_token"); t != "" {
		return t
	}
	return strings.TrimSpace(p.getenv("GITLAB_TOKEN"))
}

func (p *CI) Name() string             { return "GitLab CI" }
func (p *CI) Getenv(key string) string { return p.getenv(key) }

// Input reads INPUT_<NAME> (upper case, spaces as underscores), as on
// GitHub: the template sets the action's inputs as such variables.
func (p *CI) Input(name string) string {
	return strings.TrimSpace(p.getenv("INPUT_" + strings.ToUpper(strings.ReplaceAll(name, " ", "_"))))
}

// Workspace is CI_PROJECT_DIR, where the runner checks the project out.
func (p *CI) Workspace() string { return p.getenv("CI_PROJECT_DIR") }

// Secrets are the API token and the job's tokens (the job token is also
// the registry password).
func (p *CI) Secrets() []string {
	return []string{p.token(), p.getenv("GITLAB_TOKEN"), p.getenv("CI_JOB_TOKEN"), p.getenv("CI_REGISTRY_PASSWORD"), p.getenv("CI_DEPLOY_PASSWORD"), p.getenv("CI_DEPENDENCY_PROXY_PASSWORD")}
}

func (p *CI) Log() platform.Log { return p.log }

// Outputs writes the dotenv report when Options.Dotenv names one (a
// relative path is taken from CI_PROJECT_DIR, as artifacts paths are).
func (p *CI) Outputs(outs []platform.Output) error {
	if p.opts.Dotenv == "" {
		return nil
	}
	path := p.opts.Dotenv
	if !filepath.IsAbs(path) && p.Workspace() != "" {
		path = filepath.Join(p.Workspace(), path)
	}
	return writeDotenv(path, outs)
}

// Summary does nothing: GitLab has no job summary.
func (p *CI) Summary(string) error { return nil }

// Review is the merge request's note, written with GITLAB_TOKEN.
func (p *CI) Review(_ context.Context, c *cicontext.Context, key string) (platform.Review, string) {
	if p.api == nil {
		return nil, p.noAPI
	}
	runID, _ := strconv.ParseInt(c.RunID, 10, 64)
	attempt, _ := strconv.Atoi(c.RunAttempt)
	if c.Mode == cicontext.ModeClose {
		runID, attempt = max(runID, p.closeHead), CloseAttempt
	}
	return &Commenter{Client: p.api, IID: int64(c.PullRequestNumber), Marker: platform.Marker(key),
		Stamp: platform.Stamp{Commit: c.Commit.SHA, RunID: runID, RunAttempt: attempt, Written: p.now()}}, ""
}

// Request reads the merge request from the API.
func (p *CI) Request(ctx context.Context, number int) (platform.RequestState, error) {
	if p.read == nil {
		return platform.RequestState{}, p.readEr
	}
	mr, err := p.read.MergeRequest(ctx, int64(number))
	if err != nil {
		return platform.RequestState{}, err
	}
	return platform.RequestState{Open: mr.Open(), Merged: mr.State == "merged", HeadSHA: mr.SHA}, nil
}

// Registry offers the job's GitLab ID token (IDTokenVariable) for keyless
// cloud logins; registryauth reads GitLab's own registry's CI_REGISTRY_USER
// and CI_REGISTRY_PASSWORD from the environment.
func (p *CI) Registry() platform.Registry {
	return platform.Registry{IDToken: idToken(p.getenv), OIDCName: "GitLab"}
}

// ContainerPath is the identity: the job's image sees the runner's paths.
func (p *CI) ContainerPath(path string) string { return path }

// AgentSocket is SSH_AUTH_SOCK: the job's script started the agent where
// the binary runs.
func (p *CI) AgentSocket() (string, error) { return strings.TrimSpace(p.getenv("SSH_AUTH_SOCK")), nil }

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
