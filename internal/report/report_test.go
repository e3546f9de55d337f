package report

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/githubemu"
)

func sample() *Report {
	t0 := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	return &Report{
		Deployment:    "8f1d2c3b4a59",
		DeploymentURL: "https://acme.dagster.cloud/8f1d2c3b4a59",
		Branch:        true,
		CommitSHA:     "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		CommitURL:     "https://github.com/o/r/commit/ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		RunURL:        "https://github.com/o/r/actions/runs/42",
		Locations: []Location{
			{Name: "etl", State: Loaded, Image: "r.example/etl:abc", Digest: "sha256:0123", Updated: t0},
			{Name: "ml", State: Building, Image: "r.example/ml:abc", Updated: t0},
		},
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Report)
		want string
	}{
		{"building", func(*Report) {}, "building"},
		{"pushed, not deployed yet", func(r *Report) { r.SetAll(Pushed) }, "building"},
		{"built only", func(r *Report) { r.SetAll(Built) }, "built"},
		{"success", func(r *Report) { r.SetAll(Loaded) }, "success"},
		{"location failed", func(r *Report) { r.Set("ml", Failed, "boom") }, "failed"},
		{"run failed", func(r *Report) { r.SetAll(Loaded); r.Failure = "x" }, "failed"},
		{"merged", func(r *Report) { r.PullRequestStatus = "MERGED"; r.SetAll(Closed) }, "merged"},
		{"closed", func(r *Report) { r.PullRequestStatus = "CLOSED"; r.SetAll(Closed) }, "closed"},
	}
	for _, tc := range tests {
		r := sample()
		tc.mod(r)
		if got := r.Status(); got != tc.want {
			t.Errorf("%s: Status() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCommentContents(t *testing.T) {
	t.Parallel()
	r := sample()
	r.Set("ml", Failed, "step 2/3 failed:\nboom ``` <script>")
	r.Failure = "building ml: boom | here"
	c := r.Comment(Marker("dagster_cloud.yaml"))
	for _, want := range []string{
		"### ❌ Dagster+ branch deployment [`8f1d2c3b4a59`](https://acme.dagster.cloud/8f1d2c3b4a59/locations)",
		"[`ec26c3e57ca3`](https://github.com/o/r/commit/ec26c3e57ca3a959ca5aad62de7213c562f8c821)",
		"| `etl` | ✅ loaded | `r.example/etl:abc@sha256:0123` | Nov 26, 2026 09:30 UTC |",
		"| `ml` | ❌ failed | `r.example/ml:abc` |",
		"**Deploy failed:** building ml: boom \\| here ([see the run log](https://github.com/o/r/actions/runs/42))",
		"<summary><code>ml</code>: step 2/3 failed</summary>",
		"<!-- dagster-branch-deploy:dagster_cloud.yaml -->",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(c, "<script>") && !strings.Contains(c, "```text\nstep 2/3 failed:\nboom") {
		t.Error("raw HTML outside the code block")
	}
	if strings.Contains(c, "boom ```") {
		t.Error("error text can close its code fence")
	}
	if r.ImagesJSON() != `{"etl":"r.example/etl:abc@sha256:0123","ml":"r.example/ml:abc"}` {
		t.Errorf("images = %s", r.ImagesJSON())
	}

	closed := sample()
	closed.PullRequestStatus = "MERGED"
	closed.SetAll(Closed)
	if s := closed.Summary(); !strings.Contains(s, "marked **merged**") || !strings.Contains(s, "🔒 closed") {
		t.Errorf("closed summary:\n%s", s)
	}
}

func newCommenter(t *testing.T, emu *githubemu.Server, token string) *Commenter {
	t.Helper()
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	gh, err := NewGitHubClient(githubemu.URL(srv.URL), token, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return &Commenter{Client: gh, Owner: "o", Repo: "r"}
}

func TestUpsertKeepsOneCommentAcrossPages(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("ghs_token", "github-actions[bot]")
	emu.Seed("o", "r", 7, 230) // our comment lands on page 3 of 100
	c := newCommenter(t, emu, "ghs_token")
	ctx := context.Background()
	marker := Marker("dagster_cloud.yaml")

	id1, err := c.Upsert(ctx, 7, marker, "first\n"+marker)
	if err != nil {
		t.Fatal(err)
	}
	emu.Seed("o", "r", 7, 5)
	id2, err := c.Upsert(ctx, 7, marker, "second\n"+marker)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 {
		t.Errorf("second run made a new comment %d (first %d)", id2, id1)
	}
	var ours []githubemu.Comment
	for _, cm := range emu.Comments("o", "r", 7) {
		if strings.Contains(cm.Body, marker) {
			ours = append(ours, cm)
		}
	}
	if len(ours) != 1 || !strings.HasPrefix(ours[0].Body, "second") {
		t.Fatalf("our comments = %+v", ours)
	}
	var gets int
	for _, call := range emu.Calls() {
		if call.Method == http.MethodGet {
			gets++
		}
	}
	// 3 pages of 100 on each run: ours is comment 231.
	if gets != 6 {
		t.Errorf("pagination: %d GETs, want 6", gets)
	}

	// A different token (a PAT of another user) finds the same comment.
	emu.AddToken("ghp_pat", "jane")
	other := newCommenter(t, emu, "ghp_pat")
	id3, err := other.Upsert(ctx, 7, marker, "third\n"+marker)
	if err != nil {
		t.Fatal(err)
	}
	if id3 != id1 {
		t.Errorf("a PAT created a second comment")
	}
}

func TestUpsertErrors(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("good", "bot")
	bad := newCommenter(t, emu, "wrong")
	_, err := bad.Upsert(context.Background(), 1, Marker("x"), "b")
	if err == nil || !strings.Contains(err.Error(), "github_token") || !strings.Contains(err.Error(), "401") {
		t.Errorf("err = %v", err)
	}
	good := newCommenter(t, emu, "good")
	emu.FailNext(http.StatusForbidden)
	_, err = good.Upsert(context.Background(), 1, Marker("x"), "b")
	if err == nil || !strings.Contains(err.Error(), "pull-requests: write") {
		t.Errorf("err = %v", err)
	}
}

func TestCommitFromAPI(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("tok", "bot")
	when := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	emu.AddCommit("o", "r", githubemu.Commit{SHA: "abc123", Message: "Add assets\n\nBody", AuthorName: "Jane", AuthorEmail: "jane@example.com", AvatarURL: "https://a/j", Date: when})
	c := newCommenter(t, emu, "tok")
	got, err := Commit(context.Background(), c.Client, "o/r", "abc123")
	if err != nil {
		t.Fatal(err)
	}
	if got.Message != "Add assets\n\nBody" || got.AuthorName != "Jane" || got.AuthorEmail != "jane@example.com" || !got.Timestamp.Equal(when) || got.AvatarURL != "https://a/j" {
		t.Errorf("commit = %+v", got)
	}
	if _, err := Commit(context.Background(), c.Client, "o/r", "missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("err = %v", err)
	}
}
