// Package cicontext turns the CI environment (the GitHub event payload and
// GITHUB_* variables) into what a deploy needs to know: which deployment to
// target, the branch and pull request, and the commit being deployed.
package cicontext

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
	EventName string
	Action    string // the pull_request action, e.g. "opened"
	Mode      Mode

	RepoName  string // owner/repo, the Dagster+ repoName
	ServerURL string // https://github.com
	Branch    string // head branch of the pull request, or the pushed branch

	PullRequestNumber int // 0 outside pull requests
	PullRequestURL    string
	PullRequestStatus string // OPEN, CLOSED or MERGED (pull requests only)

	Commit Commit

	RunID      string
	RunAttempt string

	// eventAuthorAvatar is the event's avatar when the event's user is
	// demonstrably the deployed commit's author (a push whose head_commit
	// names the sender as its author), else "".
	eventAuthorAvatar string
}

// RepoURL is the repository's web address.
func (c *Context) RepoURL() string { return c.ServerURL + "/" + c.RepoName }

// BranchURL is the web address of the branch.
func (c *Context) BranchURL() string { return c.RepoURL() + "/tree/" + c.Branch }

// GitURL is the web address of the deployed commit's tree; it becomes the
// location document's git.url.
func (c *Context) GitURL() string { return c.RepoURL() + "/tree/" + c.Commit.SHA }

// RunURL is the address of the workflow run, or "" when unknown.
func (c *Context) RunURL() string {
	if c.RunID == "" {
		return ""
	}
	return c.RepoURL() + "/actions/runs/" + c.RunID
}

// GitLog reads a commit's metadata from a git checkout (ReadGitLog), or
// from elsewhere when it sets Commit.From (FromAPI: the GitHub API). It
// returns an error when the directory is no checkout or the commit is
// absent (a shallow clone of another ref); the event's values then stay.
type GitLog func(dir, sha string) (Commit, error)

// Supported lists, for error messages, what the action handles.
const Supported = "pull_request (opened, synchronize, reopened, ready_for_review, closed), push to the default branch, and workflow_dispatch"

// FromGitHub reads the GitHub Actions context. getenv is os.Getenv in
// production; workspace is the checkout gitLog reads (may be "").
//
// The commit's avatar: the API's author avatar when gitLog's commit came
// from the API (FromAPI), whatever it is. For a commit read from git,
// whose author has no avatar there: the avatar a GitHub noreply author
// email names (NoreplyAvatarURL), else the event's avatar when the event's
// user is demonstrably the author (a push whose head_commit is the
// deployed commit and names the sender's login as its author's username;
// never a pull request's opener), else none. Without git and the API, a
// push uses the same rule with head_commit's author email, and a pull
// request, described by its title and opener, the opener's avatar.
func FromGitHub(getenv func(string) string, workspace string, gitLog GitLog) (*Context, error) {
	eventName := getenv("GITHUB_EVENT_NAME")
	if eventName == "" {
		return nil, errors.New("GITHUB_EVENT_NAME is not set: this does not look like a GitHub Actions run; outside Actions use the `branch-deployment create-or-update` and `deployment add-location` commands")
	}
	path := getenv("GITHUB_EVENT_PATH")
	if path == "" {
		return nil, errors.New("GITHUB_EVENT_PATH is not set: the runner passes the event payload's path in it; cannot tell which pull request or push triggered this run")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the event payload GITHUB_EVENT_PATH=%s: %w", path, err)
	}
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("parsing the event payload %s: %w", path, err)
	}

	c := &Context{
		EventName:  eventName,
		ServerURL:  strings.TrimSuffix(orDefault(getenv("GITHUB_SERVER_URL"), "https://github.com"), "/"),
		RepoName:   orDefault(ev.Repository.FullName, getenv("GITHUB_REPOSITORY")),
		RunID:      getenv("GITHUB_RUN_ID"),
		RunAttempt: orDefault(getenv("GITHUB_RUN_ATTEMPT"), "1"),
	}
	if c.RepoName == "" {
		return nil, fmt.Errorf("the event payload %s has no repository.full_name and GITHUB_REPOSITORY is not set", path)
	}

	switch eventName {
	case "pull_request":
		err = c.fromPullRequest(&ev)
	case "push":
		err = c.fromPush(&ev, getenv)
	case "workflow_dispatch":
		c.Mode = ModeFull
		c.Branch = orDefault(strings.TrimPrefix(ev.Ref, "refs/heads/"), getenv("GITHUB_REF_NAME"))
		c.Commit = Commit{SHA: getenv("GITHUB_SHA"), AuthorName: ev.Sender.Login, AvatarURL: ev.Sender.AvatarURL, From: FromEvent}
		switch def := ev.Repository.DefaultBranch; {
		case c.Commit.SHA == "":
			err = errors.New("GITHUB_SHA is not set for this workflow_dispatch run")
		case def != "" && c.Branch != def:
			err = fmt.Errorf("workflow_dispatch from branch %q is not supported: it would deploy that branch to the full deployment; run the workflow from the default branch %q (pull requests get branch deployments)", c.Branch, def)
		}
	case "pull_request_target":
		err = errors.New("event pull_request_target is not supported: it runs with write access and secrets while building the pull request's code, which lets any fork run code with your registry and Dagster+ credentials; trigger the workflow on pull_request instead (supported: " + Supported + ")")
	default:
		err = fmt.Errorf("event %q is not supported; trigger the workflow on %s", eventName, Supported)
	}
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("the event payload %s: %w", path, err)
	}

	// The commit's own metadata comes from the checkout when it has the
	// commit (or from the API, as gitLog decides), else the payload's
	// values stay.
	if gitLog != nil && workspace != "" && c.Commit.SHA != "" {
		if gc, err := gitLog(workspace, c.Commit.SHA); err == nil {
			if gc.From == "" {
				gc.From = FromGit
			}
			if gc.From != FromAPI && gc.AvatarURL == "" {
				gc.AvatarURL = c.authorAvatar(gc.AuthorEmail)
			}
			c.Commit = gc
		}
	}
	return c, nil
}

// authorAvatar is the avatar of the author of the deployed commit, known
// without the API: from a GitHub noreply email, else the event's avatar
// when the event's user is demonstrably the author, else "". Upstream
// sends the API's avatar of the commit's author, or null; the avatar of
// whoever opened the pull request or pushed is not the author's.
func (c *Context) authorAvatar(email string) string {
	return orDefault(NoreplyAvatarURL(email), c.eventAuthorAvatar)
}

var (
	// <id>+<login>@users.noreply.github.com, GitHub's noreply address
	// since July 2017 (bots' logins end in [bot]).
	noreplyWithID = regexp.MustCompile(`^([1-9][0-9]*)\+[A-Za-z0-9][A-Za-z0-9-]*(\[bot\])?$`)
	// <login>@users.noreply.github.com, the older form.
	noreplyLogin = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)
)

// NoreplyAvatarURL is the GitHub avatar of the owner of a GitHub noreply
// email address: https://avatars.githubusercontent.com/u/<id>?v=4 for
// <id>+<login>@users.noreply.github.com, https://github.com/<login>.png
// for <login>@users.noreply.github.com, and "" for any other address.
func NoreplyAvatarURL(email string) string {
	local, domain, ok := strings.Cut(strings.TrimSpace(email), "@")
	if !ok || !strings.EqualFold(domain, "users.noreply.github.com") {
		return ""
	}
	if m := noreplyWithID.FindStringSubmatch(local); m != nil {
		return "https://avatars.githubusercontent.com/u/" + m[1] + "?v=4"
	}
	if noreplyLogin.MatchString(local) {
		return "https://github.com/" + local + ".png"
	}
	return ""
}

var (
	commitSHA = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	repoName  = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
)

// validate checks the identifiers that reach git, image tags, API paths and
// URLs: a payload is input like any other, and a forged one must not smuggle
// a git option, a path or a second line into them.
func (c *Context) validate() error {
	if !commitSHA.MatchString(c.Commit.SHA) {
		return fmt.Errorf("commit %q is not a commit SHA (40 or 64 lower-case hex digits)", c.Commit.SHA)
	}
	if !repoName.MatchString(c.RepoName) || strings.Contains(c.RepoName, "..") {
		return fmt.Errorf("repository %q is not an owner/name", c.RepoName)
	}
	// git check-ref-format refuses control characters in branch names.
	if strings.IndexFunc(c.Branch, unicode.IsControl) >= 0 || c.Branch == "" {
		return fmt.Errorf("branch %q is not a valid branch name", c.Branch)
	}
	if c.PullRequestNumber < 0 {
		return fmt.Errorf("pull request number %d is not valid", c.PullRequestNumber)
	}
	for name, v := range map[string]string{"GITHUB_RUN_ID": c.RunID, "GITHUB_RUN_ATTEMPT": c.RunAttempt} {
		if strings.Trim(v, "0123456789") != "" {
			return fmt.Errorf("%s %q is not a number", name, v)
		}
	}
	return nil
}

func (c *Context) fromPullRequest(ev *event) error {
	pr := ev.PullRequest
	if pr == nil {
		return errors.New("the pull_request event payload has no pull_request object")
	}
	c.Action = ev.Action
	switch ev.Action {
	case "opened", "synchronize", "reopened", "ready_for_review":
		c.Mode, c.PullRequestStatus = ModeBranch, StatusOpen
	case "closed":
		c.Mode, c.PullRequestStatus = ModeClose, StatusClosed
		if pr.Merged {
			c.PullRequestStatus = StatusMerged
		}
	default:
		return fmt.Errorf("pull_request action %q is not handled; list only `types: [opened, synchronize, reopened, closed]` under `on.pull_request` in the workflow", ev.Action)
	}
	if pr.Head.Ref == "" || pr.Head.SHA == "" {
		return errors.New("the pull_request payload has no head.ref or head.sha")
	}
	c.Branch = pr.Head.Ref
	c.PullRequestNumber = pr.Number
	if c.PullRequestNumber == 0 {
		c.PullRequestNumber = ev.Number
	}
	c.PullRequestURL = pr.HTMLURL
	updated, _ := time.Parse(time.RFC3339, pr.UpdatedAt)
	// head.sha, never GITHUB_SHA: that is the merge commit of refs/pull/N/merge.
	// Without git and the API, the commit is described by the pull
	// request: its title, its last update and its opener, with the
	// opener's avatar (consistent with that author name). When git or the
	// API tells the commit, the opener's avatar is not kept: the opener
	// need not be the commit's author.
	c.Commit = Commit{
		SHA:        pr.Head.SHA,
		Timestamp:  updated,
		Message:    pr.Title,
		AuthorName: pr.User.Login,
		AvatarURL:  pr.User.AvatarURL,
		From:       FromEvent,
	}
	return nil
}

func (c *Context) fromPush(ev *event, getenv func(string) string) error {
	ref := ev.Ref
	if ref == "" {
		ref = getenv("GITHUB_REF")
	}
	switch {
	case strings.HasPrefix(ref, "refs/tags/"):
		return fmt.Errorf("push of tag %s is not supported; deploys run on %s", strings.TrimPrefix(ref, "refs/tags/"), Supported)
	case ev.Deleted:
		return fmt.Errorf("push that deleted %s is not supported; deploys run on %s", ref, Supported)
	}
	branch := strings.TrimPrefix(ref, "refs/heads/")
	if def := ev.Repository.DefaultBranch; def != "" && branch != def {
		return fmt.Errorf("push to branch %q is not supported: only a push to the default branch %q deploys (to the input `deployment`); pull requests get branch deployments. Supported: %s", branch, def, Supported)
	}
	c.Mode = ModeFull
	c.Branch = branch
	sha := orDefault(ev.After, getenv("GITHUB_SHA"))
	c.Commit = Commit{SHA: sha, AvatarURL: ev.Sender.AvatarURL, AuthorName: ev.Sender.Login, From: FromEvent}
	if hc := ev.HeadCommit; hc != nil {
		// The pusher is the author only when head_commit says so: its
		// author's GitHub username is the sender's login.
		if hc.ID == sha && hc.Author.Username != "" && strings.EqualFold(hc.Author.Username, ev.Sender.Login) {
			c.eventAuthorAvatar = ev.Sender.AvatarURL
		}
		ts, _ := time.Parse(time.RFC3339, hc.Timestamp)
		c.Commit.Timestamp = ts
		c.Commit.Message = strings.TrimSpace(hc.Message)
		c.Commit.AuthorName = orDefault(hc.Author.Name, c.Commit.AuthorName)
		c.Commit.AuthorEmail = hc.Author.Email
		c.Commit.AvatarURL = c.authorAvatar(hc.Author.Email)
	}
	return nil
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

// PullRequestID is the pull request number as the API's string, or "".
func (c *Context) PullRequestID() string {
	if c.PullRequestNumber == 0 {
		return ""
	}
	return strconv.Itoa(c.PullRequestNumber)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// event is the part of the webhook payloads the action reads.
type event struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	Ref         string `json:"ref"`
	After       string `json:"after"`
	Deleted     bool   `json:"deleted"`
	PullRequest *struct {
		Number    int    `json:"number"`
		HTMLURL   string `json:"html_url"`
		Title     string `json:"title"`
		UpdatedAt string `json:"updated_at"`
		Merged    bool   `json:"merged"`
		User      user   `json:"user"`
		Head      struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
	HeadCommit *struct {
		ID        string `json:"id"`
		Message   string `json:"message"`
		Timestamp string `json:"timestamp"`
		Author    struct {
			Name     string `json:"name"`
			Email    string `json:"email"`
			Username string `json:"username"` // the author's GitHub login, when GitHub knows the email
		} `json:"author"`
	} `json:"head_commit"`
	Repository struct {
		FullName      string `json:"full_name"`
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
	Sender user `json:"sender"`
}

type user struct {
	Login     string `json:"login"`
	AvatarURL string `json:"avatar_url"`
}
