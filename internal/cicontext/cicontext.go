// Package cicontext is what a deploy needs to know from the CI system:
// which deployment to target, the branch and pull (or merge) request, and
// the commit being deployed, with its metadata read from the checkout's git
// repository. Each platform (internal/github, internal/gitlab) fills a
// Context from its own variables; Validate checks what it read.
package cicontext

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Mode says what a run does with the Dagster+ deployment.
type Mode string

const (
	// ModeBranch builds the locations and deploys them to the pull request's
	// branch deployment.
	ModeBranch Mode = "branch"
	// ModeClose only marks the branch deployment CLOSED or MERGED.
	ModeClose Mode = "close"
	// ModeFull builds the locations and deploys them to a full deployment
	// (the input `deployment`, prod by default).
	ModeFull Mode = "full"
	// ModeMergeQueue checks a merge queue's candidate commit (GitHub's
	// merge_group): the locations are built, never pushed or deployed.
	ModeMergeQueue Mode = "merge-queue"
)

// Pull request statuses, as the PullRequestStatus enum of the Dagster+ API.
const (
	StatusOpen   = "OPEN"
	StatusClosed = "CLOSED"
	StatusMerged = "MERGED"
)

// Commit is the metadata of the commit being deployed.
type Commit struct {
	SHA       string
	Timestamp time.Time
	// Message is the whole commit message, without surrounding white
	// space; Title is its subject.
	Message     string
	AuthorName  string
	AuthorEmail string
	// AvatarURL is the avatar of the commit's author on GitHub, or ""
	// when it is not known (sent as null, as upstream does without a
	// token).
	AvatarURL string
	// From says where the metadata came from: FromEvent, FromGit or
	// FromAPI ("" is taken as FromGit for a GitLog's answer).
	From string
}

// Where a Commit's metadata came from.
const (
	// FromEvent: the webhook payload (the pull request's title, time and
	// opener, or a push's head_commit), when neither git nor the API
	// could tell.
	FromEvent = "event"
	// FromGit: the checkout's git repository (ReadGitLog), as upstream's
	// `git log -1`. Git knows no avatars.
	FromGit = "git"
	// FromAPI: the GitHub API's commit, whose author avatar is right (or
	// absent, when the author has no GitHub account).
	FromAPI = "api"
)

// Context is everything the pipeline needs from the CI system.
type Context struct {
	EventName string // the event or pipeline source, for messages
	Action    string // the pull_request action, e.g. "opened"
	Mode      Mode

	RepoName string // the Dagster+ repoName: owner/repo, or a GitLab project's full path
	Branch   string // head branch of the pull request, or the pushed branch

	// Request is what the platform calls a pull request ("pull request",
	// "merge request"), for messages.
	Request           string
	PullRequestNumber int // 0 outside pull requests; a merge request's IID
	PullRequestURL    string
	PullRequestStatus string // OPEN, CLOSED or MERGED (pull requests only)

	// What the event says of the request's origin, for the pipeline's
	// event policy (inputs fork_pull_requests, dependabot_pull_requests,
	// draft_pull_requests).
	//
	// HeadRepo is the repository (or GitLab project) the request's head
	// branch is in: "" when the platform does not say, or its fork was
	// deleted. Fork says it is not RepoName: such runs get no secrets and
	// a read-only token on GitHub.
	HeadRepo string
	Fork     bool
	// Dependabot says Dependabot opened the request or triggered the run:
	// GitHub gives such runs no secrets and a read-only token.
	Dependabot bool
	// Draft says the request is a draft.
	Draft bool

	Commit Commit

	RunID      string // a number: later runs have larger ones
	RunAttempt string // a number: a re-run keeps RunID

	// Web addresses, as the platform makes them.
	RepoURL   string // the repository
	BranchURL string // the branch
	CommitURL string // the deployed commit
	TreeURL   string // the deployed commit's tree: the location document's git.url
	RunURL    string // the CI run, "" when unknown
}

// GitLog reads a commit's metadata from a git checkout (ReadGitLog), or
// from elsewhere when it sets Commit.From (FromAPI: the platform's API). It
// returns an error when the directory is no checkout or the commit is
// absent (a shallow clone of another ref); the event's values then stay.
type GitLog func(dir, sha string) (Commit, error)

var (
	commitSHA = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	// owner/repo on GitHub; group/subgroup/.../project on GitLab.
	repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
)

// Validate checks the identifiers that reach git, image tags, API paths and
// URLs: a payload or a CI variable is input like any other, and a forged one
// must not smuggle a git option, a path or a second line into them.
func (c *Context) Validate() error {
	if !commitSHA.MatchString(c.Commit.SHA) {
		return fmt.Errorf("commit %q is not a commit SHA (40 or 64 lower-case hex digits)", c.Commit.SHA)
	}
	if !repoName.MatchString(c.RepoName) || strings.Contains(c.RepoName, "..") {
		return fmt.Errorf("repository %q is not an owner/name (or a GitLab group/project path)", c.RepoName)
	}
	// git check-ref-format refuses control characters in branch names.
	if strings.IndexFunc(c.Branch, unicode.IsControl) >= 0 || c.Branch == "" {
		return fmt.Errorf("branch %q is not a valid branch name", c.Branch)
	}
	if c.PullRequestNumber < 0 {
		return fmt.Errorf("pull request number %d is not valid", c.PullRequestNumber)
	}
	for name, v := range map[string]string{"run ID": c.RunID, "run attempt": c.RunAttempt} {
		if strings.Trim(v, "0123456789") != "" {
			return fmt.Errorf("%s %q is not a number", name, v)
		}
	}
	return nil
}

// Merge lays the metadata git (or the platform's API) gave about the
// deployed commit over what the event said: the checkout knows the
// commit's own author, time and message. avatar derives the author's
// avatar when the reader knows none (git never does); it may be nil.
func (c *Context) Merge(gitLog GitLog, workspace string, avatar func(email string) string) {
	if gitLog == nil || workspace == "" || c.Commit.SHA == "" {
		return
	}
	gc, err := gitLog(workspace, c.Commit.SHA)
	if err != nil {
		return
	}
	if gc.From == "" {
		gc.From = FromGit
	}
	if gc.From != FromAPI && gc.AvatarURL == "" && avatar != nil {
		gc.AvatarURL = avatar(gc.AuthorEmail)
	}
	c.Commit = gc
}

// Title is the commit's subject, what git's %s gives and upstream sends as
// the commit message: the message's first paragraph (after any blank
// lines), its lines joined by single spaces, each without trailing white
// space; then trimmed, as upstream strips git's output.
func (c Commit) Title() string {
	lines := strings.Split(c.Message, "\n")
	i := 0
	for i < len(lines) && isBlankLine(lines[i]) {
		i++
	}
	var subject []string
	for ; i < len(lines) && !isBlankLine(lines[i]); i++ {
		subject = append(subject, strings.TrimRight(lines[i], gitSpace))
	}
	return strings.TrimSpace(strings.Join(subject, " "))
}

// gitSpace is what git's isspace() takes for white space.
const gitSpace = " \t\r\n"

func isBlankLine(s string) bool { return strings.Trim(s, gitSpace) == "" }

// Short is the commit SHA cut to n characters.
func (c Commit) Short(n int) string {
	if len(c.SHA) <= n {
		return c.SHA
	}
	return c.SHA[:n]
}

// RequestRef names the request in messages: "pull request #7",
// "merge request !7".
func (c *Context) RequestRef() string {
	switch c.Request {
	case "", "pull request":
		return fmt.Sprintf("pull request #%d", c.PullRequestNumber)
	case "merge request":
		return fmt.Sprintf("merge request !%d", c.PullRequestNumber)
	}
	return fmt.Sprintf("%s %d", c.Request, c.PullRequestNumber)
}

// PullRequestID is the pull request number as the API's string, or "".
func (c *Context) PullRequestID() string {
	if c.PullRequestNumber == 0 {
		return ""
	}
	return strconv.Itoa(c.PullRequestNumber)
}
