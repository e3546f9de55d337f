package github

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"time"
)

const (
	headSHA  = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	mergeSHA = "f00df00df00df00df00df00df00df00df00df00d"
)

func env(event, path string) func(string) string {
	m := map[string]string{
		"GITHUB_EVENT_NAME":  event,
		"GITHUB_EVENT_PATH":  path,
		"GITHUB_SERVER_URL":  "https://github.com",
		"GITHUB_REPOSITORY":  "Codertocat/Hello-World",
		"GITHUB_SHA":         mergeSHA,
		"GITHUB_RUN_ID":      "42",
		"GITHUB_RUN_ATTEMPT": "2",
		"GITHUB_REF_NAME":    "master",
	}
	return func(k string) string { return m[k] }
}

func fixture(name string) string { return filepath.Join("..", "..", "testdata", "events", name) }

// editedFixture writes a copy of a fixture with old replaced by new.
func editedFixture(t *testing.T, name, old, new string) string {
	t.Helper()
	raw, err := os.ReadFile(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), old, new, 1)
	if edited == string(raw) {
		t.Fatalf("%s has no %s to replace", name, old)
	}
	path := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFromGitHubEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, event, file string
		mode              cicontext.Mode
		status, branch    string
		sha, msg          string
		pr                int
		wantErr           string
	}{
		{name: "opened", event: "pull_request", file: "pull_request.opened.json", mode: cicontext.ModeBranch, status: cicontext.StatusOpen, branch: "changes", sha: headSHA, msg: "Update the README with new information.", pr: 2},
		{name: "synchronize", event: "pull_request", file: "pull_request.synchronize.json", mode: cicontext.ModeBranch, status: cicontext.StatusOpen, branch: "changes", sha: headSHA, pr: 2},
		{name: "reopened", event: "pull_request", file: "pull_request.reopened.json", mode: cicontext.ModeBranch, status: cicontext.StatusOpen, branch: "changes", sha: headSHA, pr: 2},
		{name: "closed unmerged", event: "pull_request", file: "pull_request.closed.json", mode: cicontext.ModeClose, status: cicontext.StatusClosed, branch: "changes", sha: headSHA, pr: 2},
		{name: "push default branch", event: "push", file: "push.default-branch.json", mode: cicontext.ModeFull, branch: "master", sha: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", msg: "Initial commit"},
		{name: "workflow_dispatch", event: "workflow_dispatch", file: "push.default-branch.json", mode: cicontext.ModeFull, branch: "master", sha: mergeSHA},
		{name: "tag push", event: "push", file: "push.tag-deleted.json", wantErr: "push of tag simple-tag is not supported"},
		{name: "other event", event: "issues", file: "pull_request.opened.json", wantErr: `event "issues" is not supported`},
		{name: "pull_request_target", event: "pull_request_target", file: "pull_request.opened.json", wantErr: "pull_request_target is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ReadContext(env(tc.event, fixture(tc.file)), "", nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "workflow_dispatch") {
					t.Errorf("error %q does not name the supported events", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Mode != tc.mode || c.PullRequestStatus != tc.status || c.Branch != tc.branch || c.Commit.SHA != tc.sha || c.PullRequestNumber != tc.pr {
				t.Errorf("got mode=%s status=%s branch=%s sha=%s pr=%d", c.Mode, c.PullRequestStatus, c.Branch, c.Commit.SHA, c.PullRequestNumber)
			}
			if tc.msg != "" && c.Commit.Message != tc.msg {
				t.Errorf("message = %q, want %q", c.Commit.Message, tc.msg)
			}
			if c.RepoName != "Codertocat/Hello-World" {
				t.Errorf("repo = %q", c.RepoName)
			}
			if c.RunURL != "https://github.com/Codertocat/Hello-World/actions/runs/42" {
				t.Errorf("run url = %q", c.RunURL)
			}
		})
	}
}

func TestPullRequestFields(t *testing.T) {
	t.Parallel()
	c, err := ReadContext(env("pull_request", fixture("pull_request.opened.json")), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.PullRequestURL != "https://github.com/Codertocat/Hello-World/pull/2" || c.PullRequestID() != "2" {
		t.Errorf("pr url/id = %q %q", c.PullRequestURL, c.PullRequestID())
	}
	if c.BranchURL != "https://github.com/Codertocat/Hello-World/tree/changes" {
		t.Errorf("branch url = %q", c.BranchURL)
	}
	if c.Commit.AvatarURL != "https://avatars1.githubusercontent.com/u/21031067?v=4" {
		t.Errorf("avatar = %q", c.Commit.AvatarURL)
	}
	if c.Commit.SHA == mergeSHA {
		t.Error("used GITHUB_SHA (the merge commit) instead of pull_request.head.sha")
	}
	if !c.Commit.Timestamp.Equal(time.Date(2019, 5, 15, 15, 20, 33, 0, time.UTC)) {
		t.Errorf("timestamp = %v", c.Commit.Timestamp)
	}
}

func TestMergedPullRequest(t *testing.T) {
	t.Parallel()
	path := editedFixture(t, "pull_request.closed.json", `"merged": false`, `"merged": true`)
	c, err := ReadContext(env("pull_request", path), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != cicontext.ModeClose || c.PullRequestStatus != cicontext.StatusMerged {
		t.Errorf("mode=%s status=%s, want close/MERGED", c.Mode, c.PullRequestStatus)
	}
}

func TestBadEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		getenv  func(string) string
		wantErr string
	}{
		{"no event name", env("", fixture("pull_request.opened.json")), "GITHUB_EVENT_NAME is not set"},
		{"no event path", env("pull_request", ""), "GITHUB_EVENT_PATH is not set"},
		{"missing payload", env("pull_request", "/nonexistent/event.json"), "/nonexistent/event.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ReadContext(tc.getenv, "", nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestOtherBranches(t *testing.T) {
	t.Parallel()
	path := editedFixture(t, "push.default-branch.json", `"ref": "refs/heads/master"`, `"ref": "refs/heads/feature"`)
	for event, want := range map[string]string{
		"push":              `push to branch "feature" is not supported`,
		"workflow_dispatch": `workflow_dispatch from branch "feature" is not supported`,
	} {
		if _, err := ReadContext(env(event, path), "", nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", event, err, want)
		}
	}
}

func TestGitLogPreferredOverPayload(t *testing.T) {
	t.Parallel()
	want := cicontext.Commit{SHA: headSHA, Timestamp: time.Unix(1700000000, 0).UTC(), Message: "from git", AuthorName: "Jane", AuthorEmail: "jane@example.com"}
	c, err := ReadContext(env("pull_request", fixture("pull_request.opened.json")), "/ws", func(dir, sha string) (cicontext.Commit, error) {
		if dir != "/ws" || sha != headSHA {
			t.Errorf("git log called with %q %q", dir, sha)
		}
		return want, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Commit.Message != "from git" || c.Commit.AuthorEmail != "jane@example.com" || !c.Commit.Timestamp.Equal(want.Timestamp) || c.Commit.From != cicontext.FromGit {
		t.Errorf("commit = %+v", c.Commit)
	}
	// The pull request's opener need not be the commit's author: their
	// avatar is not the author's.
	if c.Commit.AvatarURL != "" {
		t.Errorf("avatar = %q, want none (null, as upstream without a token)", c.Commit.AvatarURL)
	}

	// A checkout without the commit keeps the payload's metadata.
	c, err = ReadContext(env("pull_request", fixture("pull_request.opened.json")), "/ws", func(string, string) (cicontext.Commit, error) {
		return cicontext.Commit{}, errors.New("unknown revision")
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Commit.Message != "Update the README with new information." || c.Commit.From != cicontext.FromEvent ||
		c.Commit.AvatarURL != "https://avatars1.githubusercontent.com/u/21031067?v=4" {
		t.Errorf("commit = %+v", c.Commit)
	}
}

// TestCommitAvatar: the avatar sent is the commit author's, as upstream's
// (the API's author avatar, or null), never the pull request opener's or
// the pusher's unless they are demonstrably the author.
func TestCommitAvatar(t *testing.T) {
	t.Parallel()
	const (
		senderAvatar = "https://avatars1.githubusercontent.com/u/21031067?v=4" // Codertocat in the fixtures
		apiAvatar    = "https://avatars.githubusercontent.com/u/583231?v=4"
	)
	pushSHA := "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	pushByOther := func(t *testing.T) string {
		return editedFixture(t, "push.default-branch.json", `"username": "Codertocat"
    },
    "committer"`, `"username": "octocat"
    },
    "committer"`)
	}
	git := func(email string) cicontext.GitLog {
		return func(_, sha string) (cicontext.Commit, error) {
			return cicontext.Commit{SHA: sha, AuthorName: "Jane", AuthorEmail: email, Message: "m", From: cicontext.FromGit}, nil
		}
	}
	tests := []struct {
		name, event string
		path        func(t *testing.T) string
		gitLog      cicontext.GitLog
		want        string
	}{
		{"PR, git, plain email: null", "pull_request", func(*testing.T) string { return fixture("pull_request.opened.json") },
			git("jane@example.com"), ""},
		{"PR, git, noreply email with id", "pull_request", func(*testing.T) string { return fixture("pull_request.opened.json") },
			git("583231+octocat@users.noreply.github.com"), "https://avatars.githubusercontent.com/u/583231?v=4"},
		{"PR, git, old noreply email", "pull_request", func(*testing.T) string { return fixture("pull_request.opened.json") },
			git("octocat@users.noreply.github.com"), "https://github.com/octocat.png"},
		{"PR, API avatar", "pull_request", func(*testing.T) string { return fixture("pull_request.opened.json") },
			func(_, sha string) (cicontext.Commit, error) {
				return cicontext.Commit{SHA: sha, AuthorEmail: "jane@example.com", AvatarURL: apiAvatar, From: cicontext.FromAPI}, nil
			}, apiAvatar},
		{"PR, API without an author account: null, no guess", "pull_request", func(*testing.T) string { return fixture("pull_request.opened.json") },
			func(_, sha string) (cicontext.Commit, error) {
				return cicontext.Commit{SHA: sha, AuthorEmail: "583231+octocat@users.noreply.github.com", From: cicontext.FromAPI}, nil
			}, ""},
		{"PR, event only: the opener, who is the author named", "pull_request", func(*testing.T) string { return fixture("pull_request.opened.json") },
			nil, senderAvatar},
		{"push by the author, git, plain email: the sender's", "push", func(*testing.T) string { return fixture("push.default-branch.json") },
			git("jane@example.com"), senderAvatar},
		{"push by the author, git, noreply email: from the email", "push", func(*testing.T) string { return fixture("push.default-branch.json") },
			git("1+someone@users.noreply.github.com"), "https://avatars.githubusercontent.com/u/1?v=4"},
		{"push by another user, git, plain email: null", "push", pushByOther, git("jane@example.com"), ""},
		{"push by another user, event only: from head_commit's noreply email", "push", pushByOther, nil,
			"https://avatars.githubusercontent.com/u/21031067?v=4"},
		{"workflow_dispatch, git: not the sender's", "workflow_dispatch", func(*testing.T) string { return fixture("push.default-branch.json") },
			git("jane@example.com"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ReadContext(env(tc.event, tc.path(t)), "/ws", tc.gitLog)
			if err != nil {
				t.Fatal(err)
			}
			if c.Commit.AvatarURL != tc.want {
				t.Errorf("avatar = %q, want %q (commit %+v)", c.Commit.AvatarURL, tc.want, c.Commit)
			}
			if tc.event == "push" && c.Commit.SHA != pushSHA {
				t.Errorf("sha = %s", c.Commit.SHA)
			}
		})
	}
}

func TestNoreplyAvatarURL(t *testing.T) {
	t.Parallel()
	for email, want := range map[string]string{
		"21031067+Codertocat@users.noreply.github.com":      "https://avatars.githubusercontent.com/u/21031067?v=4",
		"21031067+Codertocat@Users.NoReply.GitHub.com":      "https://avatars.githubusercontent.com/u/21031067?v=4",
		"49699333+dependabot[bot]@users.noreply.github.com": "https://avatars.githubusercontent.com/u/49699333?v=4",
		"octocat@users.noreply.github.com":                  "https://github.com/octocat.png",
		"mona-lisa@users.noreply.github.com":                "https://github.com/mona-lisa.png",
		"jane@example.com":                                  "",
		"":                                                  "",
		"octocat@users.noreply.github.com.evil.example":     "",
		"octocat@noreply.github.com":                        "",
		"x/../y@users.noreply.github.com":                   "",
		"+octocat@users.noreply.github.com":                 "",
		"12+@users.noreply.github.com":                      "",
		"-octocat@users.noreply.github.com":                 "",
		"octo cat@users.noreply.github.com":                 "",
	} {
		if got := NoreplyAvatarURL(email); got != want {
			t.Errorf("NoreplyAvatarURL(%q) = %q, want %q", email, got, want)
		}
	}
}

// TestTitle: Title is git's %s (the first paragraph, its lines joined by
// spaces), stripped as upstream strips git's output.
// TestHostileIdentifiers: identifiers from a forged payload never reach
// git, tags, API paths or URLs.
func TestHostileIdentifiers(t *testing.T) {
	t.Parallel()
	var gitCalled bool
	gitLog := func(string, string) (cicontext.Commit, error) {
		gitCalled = true
		return cicontext.Commit{}, errors.New("no git")
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"option as head sha", `"sha": "` + headSHA + `"`, `"sha": "--output=/tmp/x"`, `commit "--output=/tmp/x" is not a commit SHA`},
		{"short sha", `"sha": "` + headSHA + `"`, `"sha": "ec26c3e"`, "is not a commit SHA"},
		{"path in sha", `"sha": "` + headSHA + `"`, `"sha": "../../../../etc/passwd"`, "is not a commit SHA"},
		{"newline in branch", `"ref": "changes"`, `"ref": "changes\n::error::forged"`, "is not a valid branch name"},
		{"repository with a path", `"name": "Hello-World",
    "full_name": "Codertocat/Hello-World"`, `"full_name": "Codertocat/../evil"`, "is not an owner/name"},
		{"repository with markup", `"name": "Hello-World",
    "full_name": "Codertocat/Hello-World"`, `"full_name": "a/b)[x](https://evil"`, "is not an owner/name"},
	}
	for _, tc := range tests {
		path := editedFixture(t, "pull_request.opened.json", tc.old, tc.new)
		_, err := ReadContext(env("pull_request", path), t.TempDir(), gitLog)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if gitCalled {
		t.Error("git ran with an unchecked value")
	}
	// A 64-digit (SHA-256 repository) commit is fine.
	sha256 := strings.Repeat("ab", 32)
	path := editedFixture(t, "pull_request.opened.json", `"sha": "`+headSHA+`"`, `"sha": "`+sha256+`"`)
	if c, err := ReadContext(env("pull_request", path), "", nil); err != nil || c.Commit.SHA != sha256 {
		t.Errorf("SHA-256 commit: %v, %+v", err, c)
	}
}

// payload writes a fixture of testdata/events with edit applied to its
// JSON, and returns its path.
func payload(t *testing.T, name string, edit func(ev map[string]any)) string {
	t.Helper()
	out, err := testbed.EventFixture(name, edit)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pullRequest(ev map[string]any) map[string]any { return ev["pull_request"].(map[string]any) }

// TestPullRequestOrigin reads what the event policy needs: a fork (the
// head repository is not the base one, or was deleted), Dependabot (the
// pull request's author or the run's actor), a draft, and the draft
// actions; payloads are the real fixtures, edited as GitHub sends them.
func TestPullRequestOrigin(t *testing.T) {
	t.Parallel()
	fork := func(ev map[string]any) {
		head := pullRequest(ev)["head"].(map[string]any)
		head["label"] = "octocat:changes"
		head["repo"].(map[string]any)["full_name"] = "octocat/Hello-World"
		head["repo"].(map[string]any)["fork"] = true
	}
	tests := []struct {
		name, file string
		edit       func(map[string]any)
		actor      string
		mode       cicontext.Mode
		action     string
		headRepo   string
		fork, bot  bool
		draft      bool
		wantErr    string
	}{
		{name: "same repository", file: "pull_request.opened.json", mode: cicontext.ModeBranch, action: "opened", headRepo: "Codertocat/Hello-World"},
		{name: "same repository, other case", file: "pull_request.opened.json", mode: cicontext.ModeBranch, action: "opened", headRepo: "codertocat/hello-world",
			edit: func(ev map[string]any) {
				pullRequest(ev)["head"].(map[string]any)["repo"].(map[string]any)["full_name"] = "codertocat/hello-world"
			}},
		{name: "fork", file: "pull_request.opened.json", edit: fork, mode: cicontext.ModeBranch, action: "opened", headRepo: "octocat/Hello-World", fork: true},
		{name: "fork closed", file: "pull_request.closed.json", edit: fork, mode: cicontext.ModeClose, action: "closed", headRepo: "octocat/Hello-World", fork: true},
		{name: "deleted fork", file: "pull_request.synchronize.json", mode: cicontext.ModeBranch, action: "synchronize", fork: true,
			edit: func(ev map[string]any) { pullRequest(ev)["head"].(map[string]any)["repo"] = nil }},
		{name: "Dependabot's pull request", file: "pull_request.opened.json", mode: cicontext.ModeBranch, action: "opened", headRepo: "Codertocat/Hello-World", bot: true,
			edit: func(ev map[string]any) {
				pullRequest(ev)["user"].(map[string]any)["login"] = "dependabot[bot]"
				pullRequest(ev)["head"].(map[string]any)["ref"] = "dependabot/go_modules/golang.org/x/net-0.33.0"
			}},
		{name: "run by Dependabot", file: "pull_request.synchronize.json", actor: "dependabot[bot]", mode: cicontext.ModeBranch, action: "synchronize", headRepo: "Codertocat/Hello-World", bot: true},
		{name: "a look-alike login", file: "pull_request.opened.json", mode: cicontext.ModeBranch, action: "opened", headRepo: "Codertocat/Hello-World",
			edit: func(ev map[string]any) { pullRequest(ev)["user"].(map[string]any)["login"] = "dependabot" }},
		{name: "draft", file: "pull_request.opened.json", mode: cicontext.ModeBranch, action: "opened", headRepo: "Codertocat/Hello-World", draft: true,
			edit: func(ev map[string]any) { pullRequest(ev)["draft"] = true }},
		{name: "converted to draft", file: "pull_request.synchronize.json", mode: cicontext.ModeBranch, action: "converted_to_draft", headRepo: "Codertocat/Hello-World", draft: true,
			edit: func(ev map[string]any) { ev["action"] = "converted_to_draft"; pullRequest(ev)["draft"] = true }},
		{name: "ready for review", file: "pull_request.synchronize.json", mode: cicontext.ModeBranch, action: "ready_for_review", headRepo: "Codertocat/Hello-World",
			edit: func(ev map[string]any) { ev["action"] = "ready_for_review"; pullRequest(ev)["draft"] = false }},
		{name: "an unhandled action", file: "pull_request.opened.json", wantErr: "converted_to_draft, closed]",
			edit: func(ev map[string]any) { ev["action"] = "labeled" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := map[string]string{"GITHUB_ACTOR": tc.actor}
			base := env("pull_request", payload(t, tc.file, tc.edit))
			getenv := func(k string) string {
				if v, ok := m[k]; ok {
					return v
				}
				return base(k)
			}
			asked := false
			c, err := ReadContext(getenv, t.TempDir(), func(string, string) (cicontext.Commit, error) {
				asked = true
				return cicontext.Commit{}, errors.New("no git here")
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Mode != tc.mode || c.Action != tc.action || c.HeadRepo != tc.headRepo || c.Fork != tc.fork || c.Dependabot != tc.bot || c.Draft != tc.draft {
				t.Errorf("mode %s action %s head repo %q fork %v dependabot %v draft %v", c.Mode, c.Action, c.HeadRepo, c.Fork, c.Dependabot, c.Draft)
			}
			if c.RepoName != "Codertocat/Hello-World" || c.Commit.SHA != headSHA || c.PullRequestNumber != 2 {
				t.Errorf("repo %s commit %s number %d", c.RepoName, c.Commit.SHA, c.PullRequestNumber)
			}
			// A run that can deploy nothing asks neither git nor the API.
			if asked == (tc.fork || tc.bot || tc.action == "converted_to_draft") {
				t.Errorf("commit metadata asked: %v", asked)
			}
		})
	}
}

// TestMergeGroup reads a merge queue's check: the group's head commit on
// the queue's branch, never pushed or deployed.
func TestMergeGroup(t *testing.T) {
	t.Parallel()
	const groupSHA = "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d"
	asked := false
	gitLog := func(string, string) (cicontext.Commit, error) {
		asked = true
		return cicontext.Commit{}, errors.New("no")
	}
	c, err := ReadContext(env("merge_group", fixture("merge_group.checks_requested.json")), t.TempDir(), gitLog)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != cicontext.ModeMergeQueue || c.Action != "checks_requested" || c.PullRequestNumber != 0 ||
		c.Branch != "gh-readonly-queue/master/pr-2-f95f852bd8fca8fcc58a9a2d6c842781e32a215e" || c.Commit.SHA != groupSHA {
		t.Errorf("got mode %s action %s branch %s sha %s pr %d", c.Mode, c.Action, c.Branch, c.Commit.SHA, c.PullRequestNumber)
	}
	if c.Commit.Message != "Update the README with new information. (#2)" || c.Commit.AuthorName != "Codertocat" ||
		c.Commit.Timestamp.Format(time.RFC3339) != "2019-05-15T15:21:10Z" || c.Commit.AvatarURL != "https://avatars.githubusercontent.com/u/21031067?v=4" {
		t.Errorf("commit = %+v", c.Commit)
	}
	if asked {
		t.Error("a merge queue's check asked git or the API for the commit")
	}
	if c.CommitURL != "https://github.com/Codertocat/Hello-World/commit/"+groupSHA {
		t.Errorf("commit url %s", c.CommitURL)
	}

	// Without head_sha, GITHUB_SHA (the runner sets it to the group's head).
	path := payload(t, "merge_group.checks_requested.json", func(ev map[string]any) {
		mg := ev["merge_group"].(map[string]any)
		delete(mg, "head_sha")
		delete(mg, "head_commit")
		ev["action"] = "destroyed"
	})
	c, err = ReadContext(env("merge_group", path), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Commit.SHA != mergeSHA || c.Action != "destroyed" {
		t.Errorf("sha %s action %s", c.Commit.SHA, c.Action)
	}

	path = payload(t, "merge_group.checks_requested.json", func(ev map[string]any) { delete(ev, "merge_group") })
	if _, err := ReadContext(env("merge_group", path), "", nil); err == nil || !strings.Contains(err.Error(), "no merge_group object") {
		t.Errorf("err = %v", err)
	}
}
