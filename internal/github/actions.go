package github

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
)

// MaxCommentBytes bounds a comment: GitHub refuses bodies longer than
// 65,536 characters, and bytes are never fewer than characters.
const MaxCommentBytes = 65536

// Actions is GitHub Actions as the pipeline's platform: inputs from
// INPUT_*, the context from the event payload, workflow commands in the
// log, outputs and the step summary through the runner's files, and the
// pull request's comment through the REST API.
type Actions struct {
	getenv func(string) string
	a      *githubactions.Action // writes to the log
	masks  *githubactions.Action // writes ::add-mask:: to the raw output
	log    io.Writer
	hc     *http.Client
	api    *Client // nil without a token
	apiErr error   // why there is no client
}

// NewActions returns the GitHub Actions platform. raw is where
// ::add-mask:: commands go as they are; log is the job log (the pipeline
// passes a redacting writer over the same output).
func NewActions(getenv func(string) string, raw, log io.Writer, hc *http.Client) *Actions {
	p := &Actions{
		getenv: getenv,
		a:      githubactions.New(githubactions.WithWriter(log), githubactions.WithGetenv(getenv)),
		masks:  githubactions.New(githubactions.WithWriter(raw), githubactions.WithGetenv(getenv)),
		log:    log,
		hc:     hc,
	}
	token := p.token()
	if token == "" {
		p.apiErr = fmt.Errorf("github_token is empty (leave it at its default ${{ github.token }}, or set pr_comment: false)")
		return p
	}
	p.api, p.apiErr = New(getenv("GITHUB_API_URL"), token, getenv("GITHUB_REPOSITORY"), hc)
	return p
}

// token is the github_token input, else GITHUB_TOKEN.
func (p *Actions) token() string {
	if t := strings.TrimSpace(p.Input("github_token")); t != "" {
		return t
	}
	return strings.TrimSpace(p.getenv("GITHUB_TOKEN"))
}

func (p *Actions) Name() string             { return "GitHub Actions" }
func (p *Actions) Getenv(key string) string { return p.getenv(key) }

// Input reads INPUT_<NAME>, as the runner passes a Docker action's inputs.
func (p *Actions) Input(name string) string { return p.a.GetInput(name) }

func (p *Actions) Workspace() string { return p.getenv("GITHUB_WORKSPACE") }

// Secrets are the token the API and ghcr.io use (also GITHUB_TOKEN when
// the job passes it in the environment).
func (p *Actions) Secrets() []string { return []string{p.token(), p.getenv("GITHUB_TOKEN")} }

// Context reads the event payload; the commit's metadata comes from the
// checkout (go-git), else from the API.
func (p *Actions) Context(ctx context.Context, projectDir string) (*cicontext.Context, error) {
	return ReadContext(p.getenv, projectDir, func(dir, sha string) (cicontext.Commit, error) {
		c, gitErr := cicontext.ReadGitLog(dir, sha)
		if gitErr == nil || p.api == nil {
			return c, gitErr
		}
		c, err := p.api.Commit(ctx, sha)
		if err != nil {
			p.a.Warningf("Commit %s: using the event's title and time, since neither git (%s) nor the GitHub API (%s) could tell its message", sha, gitErr, err)
			return c, err
		}
		c.From = cicontext.FromAPI
		return c, nil
	})
}

func (p *Actions) Log() platform.Log { return (*actionsLog)(p) }

// Outputs writes the step's outputs to GITHUB_OUTPUT.
func (p *Actions) Outputs(outs []platform.Output) error {
	for _, o := range outs {
		p.a.SetOutput(o.Name, o.Value)
	}
	return nil
}

// Summary appends to GITHUB_STEP_SUMMARY when the runner set it.
func (p *Actions) Summary(markdown string) error {
	if p.getenv("GITHUB_STEP_SUMMARY") != "" {
		p.a.AddStepSummary(markdown)
	}
	return nil
}

// Review is the pull request's comment, written with the github_token.
func (p *Actions) Review(_ context.Context, c *cicontext.Context, key string) (platform.Review, string) {
	if p.api == nil {
		return nil, p.apiErr.Error()
	}
	runID, _ := strconv.ParseInt(c.RunID, 10, 64)
	attempt, _ := strconv.Atoi(c.RunAttempt)
	return &Commenter{Client: p.api, Number: c.PullRequestNumber, Marker: platform.Marker(key),
		Stamp: platform.Stamp{Commit: c.Commit.SHA, RunID: runID, RunAttempt: attempt}}, ""
}

// Request reads the pull request from the API.
func (p *Actions) Request(ctx context.Context, number int) (platform.RequestState, error) {
	if p.api == nil {
		return platform.RequestState{}, p.apiErr
	}
	pr, err := p.api.PullRequest(ctx, number)
	return platform.RequestState{Open: pr.Open, Merged: pr.Merged, HeadSHA: pr.HeadSHA}, err
}

// Registry offers the github_token for ghcr.io and the job's OIDC tokens.
func (p *Actions) Registry() platform.Registry {
	return platform.Registry{Token: p.token(), Actor: p.getenv("GITHUB_ACTOR"), IDToken: registryauth.GitHubIDToken(p.getenv, p.hc)}
}

// ContainerPath maps a path on the runner to where a Docker action sees
// it: the runner mounts RUNNER_TEMP/_github_home at /github/home (and sets
// HOME to it), so a DOCKER_CONFIG or ssh socket that a job puts there names
// the runner's path.
func (p *Actions) ContainerPath(path string) string {
	temp := p.getenv("RUNNER_TEMP")
	if path == "" || temp == "" || p.getenv("HOME") != "/github/home" {
		return path
	}
	if rest, ok := strings.CutPrefix(path, temp+"/_github_home"); ok && (rest == "" || rest[0] == '/') {
		return "/github/home" + rest
	}
	return path
}

// inContainer says the action runs as GitHub runs a Docker action: HOME is
// the runner's temp home, mounted at /github/home.
func (p *Actions) inContainer() bool { return p.getenv("HOME") == "/github/home" }

// AgentSocket is SSH_AUTH_SOCK as the action sees it. A Docker action sees
// only the workspace (/github/workspace) and the runner's
// RUNNER_TEMP/_github_home (/github/home, its HOME) of the runner's files:
// an agent socket there is mapped like any path (ContainerPath); one
// elsewhere (ssh-agent's default under /tmp, where webfactory/ssh-agent
// puts it unless told otherwise) cannot be reached, and is refused with
// what works.
func (p *Actions) AgentSocket() (string, error) {
	sock := strings.TrimSpace(p.getenv("SSH_AUTH_SOCK"))
	if sock == "" || !p.inContainer() {
		return sock, nil
	}
	if mapped := p.ContainerPath(sock); mapped != sock {
		return mapped, nil
	}
	for _, dir := range []string{"/github/home", "/github/workspace"} {
		if sock == dir || strings.HasPrefix(sock, dir+"/") {
			return sock, nil
		}
	}
	if ws := p.getenv("GITHUB_WORKSPACE"); ws != "" && strings.HasPrefix(sock, strings.TrimSuffix(ws, "/")+"/") {
		return sock, nil
	}
	return "", fmt.Errorf("SSH_AUTH_SOCK is %s, a path on the runner that this Docker action cannot see: it sees only the workspace and ${{ runner.temp }}/_github_home (as /github/home). "+
		"Start the agent with its socket there, e.g. webfactory/ssh-agent with `ssh-auth-sock: ${{ runner.temp }}/_github_home/agent.sock`, "+
		"or `ssh-agent -a ${{ runner.temp }}/_github_home/agent.sock` and `ssh-add` and SSH_AUTH_SOCK set to that path; `ssh: default` then finds it", sock)
}

// actionsLog is the job log with workflow commands.
type actionsLog Actions

// Info prints a plain line, escaped as the toolkit escapes command data so
// that it stays one line and cannot start or hold a workflow command; the
// runner's legacy `##[command]` prefix, which it finds anywhere in a line,
// is broken up.
func (l *actionsLog) Info(msg string) { l.a.Infof("%s", Plain(msg)) }

// Plain makes text inert in a GitHub Actions log line.
func Plain(s string) string {
	s = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
	return strings.ReplaceAll(s, "##[", "##%5B")
}

// Warn, Notice and Fail are workflow commands, whose data go-githubactions
// escapes.
func (l *actionsLog) Warn(msg, file string, line int) {
	l.a.WithFieldsMap(position(file, line, "")).Warningf("%s", msg)
}

func (l *actionsLog) Notice(msg string) { l.a.Noticef("%s", msg) }

func (l *actionsLog) Fail(title, msg, file string, line int) {
	l.a.WithFieldsMap(position(file, line, title)).Errorf("%s", msg)
}

func position(file string, line int, title string) map[string]string {
	fields := map[string]string{}
	if title != "" {
		fields["title"] = title
	}
	if file != "" {
		fields["file"] = file
		if line > 0 {
			fields["line"] = strconv.Itoa(line)
		}
	}
	return fields
}

func (l *actionsLog) Group(title string) { l.a.Group(title) }
func (l *actionsLog) EndGroup()          { l.a.EndGroup() }
func (l *actionsLog) Writer() io.Writer  { return l.log }
func (l *actionsLog) Mask(secret string) { l.masks.AddMask(secret) }

// Verbatim runs f with workflow commands turned off, so that a line of
// the daemon's output (a build step's echo) cannot act as one
// (`::add-mask::`, `::stop-commands::`, a forged `::error`).
func (l *actionsLog) Verbatim(f func() error) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return f()
	}
	token := hex.EncodeToString(b[:])
	fmt.Fprintf(l.log, "::stop-commands::%s\n", token)
	defer fmt.Fprintf(l.log, "::%s::\n", token)
	return f()
}

// Commenter is the platform's Review.
var _ platform.Review = (*Commenter)(nil)

// MaxBytes is GitHub's comment limit.
func (c *Commenter) MaxBytes() int { return MaxCommentBytes }
