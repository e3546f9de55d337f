package github

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
)

// Commit SHAs for the seeds and the environment (the fixtures' head commit, and a merge commit).
const (
	fuzzHeadSHA  = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	fuzzMergeSHA = "f00df00df00df00df00df00df00df00df00df00d"
)

// fuzzEventNames are the events FuzzFromGitHub picks from with its eventChoice argument.
var fuzzEventNames = []string{"pull_request", "push", "workflow_dispatch", "merge_group"}

// fuzzSHAPattern is a full commit SHA: SHA-1 or SHA-256, in hex.
var fuzzSHAPattern = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

// brokenEventJSON are hand-written payloads: broken JSON, wrong types, odd values.
var brokenEventJSON = []string{
	``,
	`null`,
	`[]`,
	`"pull_request"`,
	`{`,
	`{"action": "opened"`,
	`{"action": "opened", "pull_request": {"head": {"ref": "b", "sha": "` + fuzzHeadSHA + `"}}}`,
	`{"action": "closed", "pull_request": {"merged": true, "head": {"ref": "b", "sha": "` + fuzzHeadSHA + `"}}}`,
	`{"action": "opened", "pull_request": null}`,
	`{"action": "opened", "pull_request": {"head": null}}`,
	`{"action": "opened", "pull_request": {"head": {"ref": "", "sha": ""}}}`,
	`{"action": "opened", "pull_request": {"number": 1e999, "head": {"ref": "b", "sha": "x"}}}`,
	`{"action": "opened", "pull_request": {"number": -1, "updated_at": "not a time", "head": {"ref": "b", "sha": "x"}}}`,
	`{"action": 7}`,
	`{"ref": "refs/heads/main", "after": "", "repository": {"default_branch": "main"}}`,
	`{"ref": "refs/heads/main", "after": "` + fuzzHeadSHA + `", "head_commit": null}`,
	`{"ref": "refs/heads/main", "after": "` + fuzzHeadSHA + `", "head_commit": {"timestamp": "2024-13-45T99:99:99Z", "author": null}}`,
	`{"ref": "refs/tags/v1", "deleted": true}`,
	`{"ref": "refs/heads/other", "repository": {"default_branch": "main"}}`,
	`{"ref": "", "repository": {"full_name": "", "default_branch": ""}}`,
	`{"repository": {"full_name": "o/r", "default_branch": "master"}, "ref": "refs/heads/master"}`,
	`{"repository": "o/r"}`,
	`{"repository": {"full_name": "\u0000\ud800"}}`,
	"{\"action\": \"opened\xff\xfe\"}",
	`{"action": "opened", "action": "closed"}`,
	`{"sender": {"login": ["x"]}}`,
	`{"action": "opened", "pull_request": {"head": {"ref": "b", "sha": "` + fuzzHeadSHA + `", "repo": null}}}`,
	`{"action": "opened", "pull_request": {"head": {"ref": "b", "sha": "` + fuzzHeadSHA + `", "repo": "o/r"}}}`,
	`{"action": "converted_to_draft", "pull_request": {"draft": true, "user": {"login": "dependabot[bot]"}, "head": {"ref": "b", "sha": "` + fuzzHeadSHA + `", "repo": {"full_name": "x/r"}}}}`,
	`{"action": "checks_requested", "merge_group": {"head_sha": "` + fuzzHeadSHA + `", "head_ref": "refs/heads/gh-readonly-queue/main/pr-1-x"}}`,
	`{"action": "destroyed", "merge_group": {"head_sha": "", "head_ref": "", "head_commit": null}}`,
	`{"merge_group": null}`,
	`{"merge_group": {"head_commit": {"id": "` + fuzzMergeSHA + `", "timestamp": 5}}}`,
}

// fuzzEnv is the environment the runner gives the action; the payload is at path.
func fuzzEnv(event, path string) func(string) string {
	m := map[string]string{
		"GITHUB_EVENT_NAME":  event,
		"GITHUB_EVENT_PATH":  path,
		"GITHUB_SERVER_URL":  "https://github.com",
		"GITHUB_REPOSITORY":  "Codertocat/Hello-World",
		"GITHUB_SHA":         fuzzMergeSHA,
		"GITHUB_REF":         "refs/heads/master",
		"GITHUB_REF_NAME":    "master",
		"GITHUB_RUN_ID":      "42",
		"GITHUB_RUN_ATTEMPT": "1",
	}
	return func(k string) string { return m[k] }
}

// FuzzFromGitHub feeds arbitrary bytes to FromGitHub as the event payload of a pull_request,
// push or workflow_dispatch run, with the rest of the environment as the runner sets it. Run it
// with
//
//	go test -run '^$' -fuzz '^FuzzFromGitHub$' -fuzztime 60s -fuzzminimizetime 5s ./internal/cicontext/
//
// (minimizing a new 25 kB input for the default 60 s stalls short runs). A plain go test runs
// the seeds: the payloads in testdata/events (read here, so that the seeds follow the files), the
// broken ones above and testdata/fuzz/FuzzFromGitHub.
func FuzzFromGitHub(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "events", "*.json"))
	if err != nil || len(files) < 3 {
		f.Fatalf("event payloads in testdata/events: %v, %v", files, err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for i := range fuzzEventNames {
			f.Add(raw, uint8(i))
		}
	}
	for _, s := range brokenEventJSON {
		for i := range fuzzEventNames {
			f.Add([]byte(s), uint8(i))
		}
	}
	// One payload file per process, rewritten for each input: the inputs of a process run one at
	// a time, and a t.TempDir per input made fuzzing six times slower.
	path := filepath.Join(f.TempDir(), "event.json")
	f.Fuzz(func(t *testing.T, payload []byte, eventChoice uint8) {
		event := fuzzEventNames[int(eventChoice)%len(fuzzEventNames)]
		if err := os.WriteFile(path, payload, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := ReadContext(fuzzEnv(event, path), "", nil)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("FromGitHub returned an error with an empty message (%T)", err)
			}
			if c != nil {
				t.Fatalf("FromGitHub returned both a context and the error %v", err)
			}
			return
		}
		if c == nil {
			t.Fatal("FromGitHub returned neither a context nor an error")
		}
		switch c.Mode {
		case cicontext.ModeBranch, cicontext.ModeClose, cicontext.ModeFull, cicontext.ModeMergeQueue:
		default:
			t.Errorf("cicontext.Mode = %q, want one of %q, %q, %q, %q", c.Mode, cicontext.ModeBranch, cicontext.ModeClose, cicontext.ModeFull, cicontext.ModeMergeQueue)
		}
		if (c.Mode == cicontext.ModeMergeQueue) != (event == "merge_group") {
			t.Errorf("mode %q for event %s", c.Mode, event)
		}
		if c.EventName != event {
			t.Errorf("EventName = %q, want %q", c.EventName, event)
		}
		if c.RepoName == "" {
			t.Error("RepoName is empty")
		}
		if c.Commit.SHA == "" {
			t.Error("Commit.SHA is empty")
		}
		if !fuzzSHAPattern.MatchString(c.Commit.SHA) {
			t.Errorf("Commit.SHA %q is not a full hex SHA", c.Commit.SHA)
		}
	})
}
