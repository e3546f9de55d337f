package cicontext

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
		mode              Mode
		status, branch    string
		sha, msg          string
		pr                int
		wantErr           string
	}{
		{name: "opened", event: "pull_request", file: "pull_request.opened.json", mode: ModeBranch, status: StatusOpen, branch: "changes", sha: headSHA, msg: "Update the README with new information.", pr: 2},
		{name: "synchronize", event: "pull_request", file: "pull_request.synchronize.json", mode: ModeBranch, status: StatusOpen, branch: "changes", sha: headSHA, pr: 2},
		{name: "reopened", event: "pull_request", file: "pull_request.reopened.json", mode: ModeBranch, status: StatusOpen, branch: "changes", sha: headSHA, pr: 2},
		{name: "closed unmerged", event: "pull_request", file: "pull_request.closed.json", mode: ModeClose, status: StatusClosed, branch: "changes", sha: headSHA, pr: 2},
		{name: "push default branch", event: "push", file: "push.default-branch.json", mode: ModeFull, branch: "master", sha: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", msg: "Initial commit"},
		{name: "workflow_dispatch", event: "workflow_dispatch", file: "push.default-branch.json", mode: ModeFull, branch: "master", sha: mergeSHA},
		{name: "tag push", event: "push", file: "push.tag-deleted.json", wantErr: "push of tag simple-tag is not supported"},
		{name: "other event", event: "issues", file: "pull_request.opened.json", wantErr: `event "issues" is not supported`},
		{name: "pull_request_target", event: "pull_request_target", file: "pull_request.opened.json", wantErr: "pull_request_target is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := FromGitHub(env(tc.event, fixture(tc.file)), "", nil)
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
			if c.RunURL() != "https://github.com/Codertocat/Hello-World/actions/runs/42" {
				t.Errorf("run url = %q", c.RunURL())
			}
		})
	}
}

func TestPullRequestFields(t *testing.T) {
	t.Parallel()
	c, err := FromGitHub(env("pull_request", fixture("pull_request.opened.json")), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.PullRequestURL != "https://github.com/Codertocat/Hello-World/pull/2" || c.PullRequestID() != "2" {
		t.Errorf("pr url/id = %q %q", c.PullRequestURL, c.PullRequestID())
	}
	if c.BranchURL() != "https://github.com/Codertocat/Hello-World/tree/changes" {
		t.Errorf("branch url = %q", c.BranchURL())
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
	c, err := FromGitHub(env("pull_request", path), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeClose || c.PullRequestStatus != StatusMerged {
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
			_, err := FromGitHub(tc.getenv, "", nil)
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
		if _, err := FromGitHub(env(event, path), "", nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", event, err, want)
		}
	}
}

func TestGitLogPreferredOverPayload(t *testing.T) {
	t.Parallel()
	want := Commit{SHA: headSHA, Timestamp: time.Unix(1700000000, 0).UTC(), Message: "from git", AuthorName: "Jane", AuthorEmail: "jane@example.com"}
	c, err := FromGitHub(env("pull_request", fixture("pull_request.opened.json")), "/ws", func(dir, sha string) (Commit, error) {
		if dir != "/ws" || sha != headSHA {
			t.Errorf("git log called with %q %q", dir, sha)
		}
		return want, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Commit.Message != "from git" || c.Commit.AuthorEmail != "jane@example.com" || !c.Commit.Timestamp.Equal(want.Timestamp) {
		t.Errorf("commit = %+v", c.Commit)
	}
	if c.Commit.AvatarURL == "" {
		t.Error("avatar from the event was dropped")
	}

	// A checkout without the commit keeps the payload's metadata.
	c, err = FromGitHub(env("pull_request", fixture("pull_request.opened.json")), "/ws", func(string, string) (Commit, error) {
		return Commit{}, errors.New("unknown revision")
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Commit.Message != "Update the README with new information." {
		t.Errorf("message = %q", c.Commit.Message)
	}
}

func TestReadGitLog(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (apt-get install git): ", err)
	}
	dir := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=@1700000000 +0000", "GIT_COMMITTER_DATE=@1700000000 +0000",
			"GIT_AUTHOR_NAME=Jane Doe", "GIT_AUTHOR_EMAIL=jane@example.com", "GIT_COMMITTER_NAME=Jane Doe", "GIT_COMMITTER_EMAIL=jane@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q")
	run("commit", "-q", "--allow-empty", "-m", "Add assets\n\nLonger body.")
	sha := run("rev-parse", "HEAD")
	c, err := ReadGitLog(dir, sha)
	if err != nil {
		t.Fatal(err)
	}
	if c.SHA != sha || c.AuthorName != "Jane Doe" || c.AuthorEmail != "jane@example.com" || c.Timestamp.Unix() != 1700000000 || c.Title() != "Add assets" {
		t.Errorf("commit = %+v", c)
	}
	if _, err := ReadGitLog(dir, headSHA); err == nil {
		t.Error("expected an error for a commit that is not in the checkout")
	}
}

// TestHostileIdentifiers: identifiers from a forged payload never reach
// git, tags, API paths or URLs.
func TestHostileIdentifiers(t *testing.T) {
	t.Parallel()
	var gitCalled bool
	gitLog := func(string, string) (Commit, error) { gitCalled = true; return Commit{}, errors.New("no git") }
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
		_, err := FromGitHub(env("pull_request", path), t.TempDir(), gitLog)
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
	if c, err := FromGitHub(env("pull_request", path), "", nil); err != nil || c.Commit.SHA != sha256 {
		t.Errorf("SHA-256 commit: %v, %+v", err, c)
	}
}

// TestReadGitLogTakesNoOptions: even unchecked, a value that looks like an
// option is taken as a revision by git.
func TestReadGitLogTakesNoOptions(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "written")
	if _, err := ReadGitLog(dir, "--output="+out); err == nil {
		t.Fatal("git log accepted an option as a revision")
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("git took the revision for --output and wrote a file")
	}
}
