package github

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
)

// Supported lists, for error messages, the events the action handles.
const Supported = "pull_request (opened, synchronize, reopened, ready_for_review, converted_to_draft, closed), push to the default branch, workflow_dispatch, and merge_group"

// Dependabot is the login of GitHub's Dependabot, as the author of its pull
// requests and the GITHUB_ACTOR of the runs it triggers.
const Dependabot = "dependabot[bot]"

// ReadContext reads the GitHub Actions run: the event payload and the
// GITHUB_* variables. getenv is os.Getenv in production; workspace is the
// checkout gitLog reads (may be "").
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
func ReadContext(getenv func(string) string, workspace string, gitLog cicontext.GitLog) (*cicontext.Context, error) {
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

	r := &reader{ev: &ev, getenv: getenv, c: &cicontext.Context{
		Request:    "pull request",
		EventName:  eventName,
		RepoName:   orDefault(ev.Repository.FullName, getenv("GITHUB_REPOSITORY")),
		RunID:      getenv("GITHUB_RUN_ID"),
		RunAttempt: orDefault(getenv("GITHUB_RUN_ATTEMPT"), "1"),
	}}
	c := r.c
	if c.RepoName == "" {
		return nil, fmt.Errorf("the event payload %s has no repository.full_name and GITHUB_REPOSITORY is not set", path)
	}

	switch eventName {
	case "pull_request":
		err = r.pullRequest()
	case "push":
		err = r.push()
	case "merge_group":
		err = r.mergeGroup()
	case "workflow_dispatch":
		c.Mode = cicontext.ModeFull
		c.Branch = orDefault(strings.TrimPrefix(ev.Ref, "refs/heads/"), getenv("GITHUB_REF_NAME"))
		c.Commit = cicontext.Commit{SHA: getenv("GITHUB_SHA"), AuthorName: ev.Sender.Login, AvatarURL: ev.Sender.AvatarURL, From: cicontext.FromEvent}
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
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("the event payload %s: %w", path, err)
	}
	// The commit's own metadata comes from the checkout when it has the
	// commit (or from the API, as gitLog decides), else the payload's
	// values stay. A run that can deploy nothing (a fork's or Dependabot's
	// pull request, a merge queue, a conversion to a draft) needs none of
	// it, and asks nothing: such a run, when skipped, calls no API at all.
	if c.Mode != cicontext.ModeMergeQueue && !c.Fork && !c.Dependabot && c.Action != "converted_to_draft" {
		c.Merge(gitLog, workspace, r.authorAvatar)
	}

	server := strings.TrimSuffix(orDefault(getenv("GITHUB_SERVER_URL"), "https://github.com"), "/")
	c.RepoURL = server + "/" + c.RepoName
	c.BranchURL = c.RepoURL + "/tree/" + pathEscape(c.Branch)
	c.CommitURL = c.RepoURL + "/commit/" + c.Commit.SHA
	c.TreeURL = c.RepoURL + "/tree/" + c.Commit.SHA
	if c.RunID != "" {
		c.RunURL = c.RepoURL + "/actions/runs/" + c.RunID
	}
	return c, nil
}

// pathEscape escapes each segment of a branch name for a URL path, keeping
// its slashes (feature/x stays feature/x, a # or ? does not end the path).
func pathEscape(branch string) string {
	parts := strings.Split(branch, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// reader reads one event into a Context.
type reader struct {
	ev     *event
	getenv func(string) string
	c      *cicontext.Context
	// eventAuthorAvatar is the event's avatar when the event's user is
	// demonstrably the deployed commit's author (a push whose head_commit
	// names the sender as its author), else "".
	eventAuthorAvatar string
}

// authorAvatar is the avatar of the author of the deployed commit, known
// without the API: from a GitHub noreply email, else the event's avatar
// when the event's user is demonstrably the author, else "". Upstream
// sends the API's avatar of the commit's author, or null; the avatar of
// whoever opened the pull request or pushed is not the author's.
func (r *reader) authorAvatar(email string) string {
	return orDefault(NoreplyAvatarURL(email), r.eventAuthorAvatar)
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

func (r *reader) pullRequest() error {
	ev, c := r.ev, r.c
	pr := ev.PullRequest
	if pr == nil {
		return errors.New("the pull_request event payload has no pull_request object")
	}
	c.Action = ev.Action
	switch ev.Action {
	// converted_to_draft changes no code: the pipeline leaves the branch
	// deployment as it is (see draft_pull_requests).
	case "opened", "synchronize", "reopened", "ready_for_review", "converted_to_draft":
		c.Mode, c.PullRequestStatus = cicontext.ModeBranch, cicontext.StatusOpen
	case "closed":
		c.Mode, c.PullRequestStatus = cicontext.ModeClose, cicontext.StatusClosed
		if pr.Merged {
			c.PullRequestStatus = cicontext.StatusMerged
		}
	default:
		return fmt.Errorf("pull_request action %q is not handled; list only `types: [opened, synchronize, reopened, ready_for_review, converted_to_draft, closed]` under `on.pull_request` in the workflow", ev.Action)
	}
	// A fork's head branch is in another repository (or in none, when the
	// fork was deleted: head.repo is null); Dependabot's runs are its pull
	// requests' and those it triggers. Neither gets secrets.
	base := c.RepoName
	if pr.Base.Repo != nil && pr.Base.Repo.FullName != "" {
		base = pr.Base.Repo.FullName
	}
	switch head := strings.TrimSpace(string(pr.Head.Repo)); head {
	case "":
		// No head.repo at all (GitHub always sends one): the same repository.
	case "null":
		c.Fork = true
	default:
		var repo repoName
		if err := json.Unmarshal(pr.Head.Repo, &repo); err != nil {
			return fmt.Errorf("the pull_request payload's head.repo: %w", err)
		}
		c.HeadRepo = repo.FullName
		c.Fork = !strings.EqualFold(c.HeadRepo, base)
	}
	c.Dependabot = pr.User.Login == Dependabot || r.getenv("GITHUB_ACTOR") == Dependabot
	c.Draft = pr.Draft
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
	c.Commit = cicontext.Commit{
		SHA:        pr.Head.SHA,
		Timestamp:  updated,
		Message:    pr.Title,
		AuthorName: pr.User.Login,
		AvatarURL:  pr.User.AvatarURL,
		From:       cicontext.FromEvent,
	}
	return nil
}

func (r *reader) push() error {
	ev, c := r.ev, r.c
	ref := ev.Ref
	if ref == "" {
		ref = r.getenv("GITHUB_REF")
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
	c.Mode = cicontext.ModeFull
	c.Branch = branch
	sha := orDefault(ev.After, r.getenv("GITHUB_SHA"))
	c.Commit = cicontext.Commit{SHA: sha, AvatarURL: ev.Sender.AvatarURL, AuthorName: ev.Sender.Login, From: cicontext.FromEvent}
	if hc := ev.HeadCommit; hc != nil {
		// The pusher is the author only when head_commit says so: its
		// author's GitHub username is the sender's login.
		if hc.ID == sha && hc.Author.Username != "" && strings.EqualFold(hc.Author.Username, ev.Sender.Login) {
			r.eventAuthorAvatar = ev.Sender.AvatarURL
		}
		ts, _ := time.Parse(time.RFC3339, hc.Timestamp)
		c.Commit.Timestamp = ts
		c.Commit.Message = strings.TrimSpace(hc.Message)
		c.Commit.AuthorName = orDefault(hc.Author.Name, c.Commit.AuthorName)
		c.Commit.AuthorEmail = hc.Author.Email
		c.Commit.AvatarURL = r.authorAvatar(hc.Author.Email)
	}
	return nil
}

// mergeGroup reads a merge queue's merge_group event: its commit is the
// group's head_sha (what actions/checkout checks out, also GITHUB_SHA), on
// the queue's temporary branch gh-readonly-queue/<base>/pr-<n>-<sha>.
func (r *reader) mergeGroup() error {
	ev, c := r.ev, r.c
	mg := ev.MergeGroup
	if mg == nil {
		return errors.New("the merge_group event payload has no merge_group object")
	}
	c.Mode = cicontext.ModeMergeQueue
	c.Action = orDefault(ev.Action, "checks_requested")
	c.Branch = strings.TrimPrefix(orDefault(mg.HeadRef, r.getenv("GITHUB_REF")), "refs/heads/")
	sha := orDefault(mg.HeadSHA, r.getenv("GITHUB_SHA"))
	c.Commit = cicontext.Commit{SHA: sha, AuthorName: ev.Sender.Login, From: cicontext.FromEvent}
	if hc := mg.HeadCommit; hc != nil && (hc.ID == "" || hc.ID == sha) {
		ts, _ := time.Parse(time.RFC3339, hc.Timestamp)
		c.Commit.Timestamp = ts
		c.Commit.Message = strings.TrimSpace(hc.Message)
		c.Commit.AuthorName = orDefault(hc.Author.Name, c.Commit.AuthorName)
		c.Commit.AuthorEmail = hc.Author.Email
		c.Commit.AvatarURL = NoreplyAvatarURL(hc.Author.Email)
	}
	return nil
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
		Draft     bool   `json:"draft"`
		User      user   `json:"user"`
		Head      struct {
			Ref  string          `json:"ref"`
			SHA  string          `json:"sha"`
			Repo json.RawMessage `json:"repo"` // null when the fork was deleted
		} `json:"head"`
		Base struct {
			Repo *repoName `json:"repo"`
		} `json:"base"`
	} `json:"pull_request"`
	HeadCommit *commitPayload `json:"head_commit"`
	MergeGroup *struct {
		HeadSHA    string         `json:"head_sha"`
		HeadRef    string         `json:"head_ref"`
		BaseRef    string         `json:"base_ref"`
		HeadCommit *commitPayload `json:"head_commit"`
	} `json:"merge_group"`
	Repository struct {
		FullName      string `json:"full_name"`
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
	Sender user `json:"sender"`
}

// commitPayload is a push's head_commit, or a merge group's.
type commitPayload struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	Author    struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Username string `json:"username"` // the author's GitHub login, when GitHub knows the email
	} `json:"author"`
}

type repoName struct {
	FullName string `json:"full_name"`
}

type user struct {
	Login     string `json:"login"`
	AvatarURL string `json:"avatar_url"`
}
