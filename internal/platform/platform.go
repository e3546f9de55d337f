// Package platform is the seam between the deploy pipeline and the CI
// system it runs in. A Platform (internal/github for GitHub Actions,
// internal/gitlab for GitLab CI) reads the run's context and inputs, owns
// the job log's conventions (workflow commands, collapsible sections),
// masking, outputs and summary, and the one review comment of the pull or
// merge request. The pipeline (internal/action) knows only this interface.
package platform

import (
	"context"
	"io"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
)

// Platform is one CI system, for one run.
type Platform interface {
	// Name is the CI system's name, for messages ("GitHub Actions").
	Name() string
	// Getenv reads the job's environment.
	Getenv(key string) string
	// Input reads one of the action's inputs (action.yml's names), ""
	// when it is not set.
	Input(name string) string
	// Secrets are the platform's own secret values (its API and registry
	// tokens), to mask and scrub like the inputs' secrets.
	Secrets() []string
	// Workspace is the directory of the repository's checkout.
	Workspace() string
	// Context reads what the run deploys: the event, the branch and
	// request, and the commit, whose metadata it reads from the checkout
	// at projectDir (or from the platform's API).
	Context(ctx context.Context, projectDir string) (*cicontext.Context, error)

	// Log is the job log.
	Log() Log

	// Outputs publishes the run's results for later steps or jobs.
	Outputs(outs []Output) error
	// Summary publishes the report as the job's summary; a platform
	// without one does nothing.
	Summary(markdown string) error

	// Review returns the pull or merge request's comment of the action,
	// or nil and the reason it cannot be written (no token).
	Review(ctx context.Context, c *cicontext.Context, key string) (Review, string)
	// Request reads the pull or merge request's state now.
	Request(ctx context.Context, number int) (RequestState, error)

	// Registry is what the platform offers for registry logins.
	Registry() Registry
	// ContainerPath maps a path on the CI host to where the action sees
	// it (a Docker action sees the runner's files at other paths).
	ContainerPath(path string) string
	// AgentSocket is where the action reaches the job's ssh-agent
	// ($SSH_AUTH_SOCK, mapped as ContainerPath maps paths): "" when none
	// is set, an error that says what works when the action cannot see it
	// (a Docker action sees only some of the runner's directories).
	AgentSocket() (string, error)
}

// Log is a job log. Every method prints text as data: a value from the
// configuration, the event or an API answer cannot become a command of the
// CI system.
type Log interface {
	Info(msg string)
	// Warn prints a warning, at a file and line of the checkout when file
	// is not "" (line 0: the file as a whole).
	Warn(msg, file string, line int)
	Notice(msg string)
	// Group starts a collapsible section; EndGroup ends it.
	Group(title string)
	EndGroup()
	// Verbatim runs f while the log takes what is written to Writer as
	// text only (a build step's output), and returns f's error.
	Verbatim(f func() error) error
	// Writer is where tools' own output (the daemon's build log) goes.
	Writer() io.Writer
	// Mask hides a secret value in the log where the CI system can.
	Mask(secret string)
	// Fail prints the run's failure: at a file and line when file is not
	// "" (line 0: the file as a whole).
	Fail(title, msg, file string, line int)
}

// Output is one result of the run.
type Output struct {
	Name  string // action.yml's output name, e.g. "deployment_url"
	Value string
}

// Review is the request's one comment of the action.
type Review interface {
	// Trailer is what ends the comment (hidden stamp and marker lines):
	// the report renders it last, within the platform's size limit.
	Trailer() string
	// Write makes body the comment's text; body ends with Trailer(). It
	// returns a *SupersededError, and writes nothing, when the comment
	// shows a newer run.
	Write(ctx context.Context, body string) error
	// MaxBytes is the largest body the platform takes.
	MaxBytes() int
}

// RequestState is a pull or merge request as the platform has it now.
type RequestState struct {
	Open    bool
	Merged  bool
	HeadSHA string
}

// Registry is what a platform offers registry logins: its own registry's
// credentials come from the environment (registryauth reads them); these
// are the rest.
type Registry struct {
	Token string // GitHub: the token for ghcr.io
	Actor string // GitHub: the user the token belongs to
	// IDToken returns an OIDC token of the job for audience, for keyless
	// cloud logins; nil when the platform has none. OIDCName names its
	// issuer in messages ("GitHub", "GitLab").
	IDToken  func(ctx context.Context, audience string) (string, error)
	OIDCName string
}
