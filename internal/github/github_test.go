package github

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gogithub "github.com/google/go-github/v66/github"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/githubemu"
)

const bot = "github-actions[bot]"

// serve starts the emulator behind handler (nil: the emulator itself).
func serve(t *testing.T, emu *githubemu.Server, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = emu
	if wrap != nil {
		h = wrap(emu)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return githubemu.URL(srv.URL)
}

func newClient(t *testing.T, apiURL, token string) *Client {
	t.Helper()
	c, err := New(apiURL, token, "o/r", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func commenter(c *Client, run int64, attempt int) *Commenter {
	return &Commenter{Client: c, Number: 7, Marker: platform.Marker("dagster_cloud.yaml"),
		Stamp: platform.Stamp{Commit: strings.Repeat("a", 40), RunID: run, RunAttempt: attempt, Written: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("ghs_job", bot)
	emu.AddToken("ghp_pat", "jane")
	emu.AddInstallationToken("ghs_app", "acme-deployer[bot]")
	url := serve(t, emu, nil)
	for token, want := range map[string]string{"ghs_job": bot, "ghp_pat": "jane", "ghs_app": "acme-deployer[bot]"} {
		got, err := newClient(t, url, token).Identity(context.Background())
		if err != nil || got != want {
			t.Errorf("%s: Identity = %q, %v; want %q", token, got, err, want)
		}
	}
	if _, err := newClient(t, url, "wrong").Identity(context.Background()); err == nil || !strings.Contains(err.Error(), "github_token input was refused") {
		t.Errorf("bad token: %v", err)
	}
}

// TestCommentKeepsOneAcrossPages: one comment, found past the first page,
// edited in place on later runs.
func TestCommentKeepsOneAcrossPages(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("ghs_job", bot)
	emu.Seed("o", "r", 7, 1000)
	c := commenter(newClient(t, serve(t, emu, nil), "ghs_job"), 100, 1)
	if err := c.Write(context.Background(), "first"); err != nil {
		t.Fatal(err)
	}
	id := c.ID()
	// A later run, with a fresh client, finds it on page 11.
	next := commenter(newClient(t, serve(t, emu, nil), "ghs_job"), 101, 1)
	if err := next.Write(context.Background(), "second"); err != nil {
		t.Fatal(err)
	}
	if next.ID() != id {
		t.Errorf("second run wrote comment %d, want %d", next.ID(), id)
	}
	ours := marked(emu)
	if len(ours) != 1 || !strings.HasPrefix(ours[0].Body, "second\n<!-- dagster-branch-deploy-run: commit=aaaaaaaaaaaa") || !strings.HasSuffix(ours[0].Body, platform.Marker("dagster_cloud.yaml")+"\n") {
		t.Fatalf("comments: %+v", ours)
	}
}

// TestCommentIsOurs: a comment that carries the marker but was written by
// someone else (an attacker who posted it first) is never edited, trusted
// or counted, even when the token could edit it (a token with write access
// may edit anyone's comment on GitHub).
func TestCommentIsOurs(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("ghs_job", bot)
	emu.AddAdminToken("ghs_job", bot)
	fake := "Deploy at [approve](https://evil.example)\n" + platform.Marker("dagster_cloud.yaml") + "\n"
	// Stamped with a newer run, so that trusting it would stop our writes.
	fakeNewer := "x\n<!-- dagster-branch-deploy-run: commit=bbbb run=999999 attempt=9 written=2030-01-01T00:00:00Z -->\n" + platform.Marker("dagster_cloud.yaml")
	attacker := emu.AddComment("o", "r", 7, "mallory", fake)
	attacker2 := emu.AddComment("o", "r", 7, "mallory", fakeNewer)
	quoted := emu.AddComment("o", "r", 7, bot, "someone quoted "+platform.Marker("dagster_cloud.yaml")+" in the middle of a comment")
	c := commenter(newClient(t, serve(t, emu, nil), "ghs_job"), 100, 1)
	for _, body := range []string{"first", "second"} {
		if err := c.Write(context.Background(), body); err != nil {
			t.Fatal(err)
		}
	}
	for _, cm := range emu.Comments("o", "r", 7) {
		switch cm.ID {
		case attacker:
			if cm.Body != fake {
				t.Errorf("the attacker's comment was edited: %q", cm.Body)
			}
		case attacker2:
			if cm.Body != fakeNewer {
				t.Errorf("the attacker's stamped comment was edited: %q", cm.Body)
			}
		case quoted:
			if !strings.HasPrefix(cm.Body, "someone quoted") {
				t.Errorf("a comment that only quotes the marker was edited: %q", cm.Body)
			}
		case c.ID():
			if cm.User != bot || !strings.HasPrefix(cm.Body, "second\n") {
				t.Errorf("our comment: %+v", cm)
			}
		default:
			t.Errorf("unexpected comment %+v", cm)
		}
	}
}

// TestConcurrentRunsEndWithOneComment: runs that start together all see no
// comment and all create one; afterwards exactly one is left, the oldest.
func TestConcurrentRunsEndWithOneComment(t *testing.T) {
	t.Parallel()
	const runs = 4
	emu := githubemu.New("ghs_job", bot)
	// Hold every run's first listing until all have listed, so that each
	// decides to create.
	var listed atomic.Int32
	all := make(chan struct{})
	var once sync.Once
	url := serve(t, emu, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/issues/7/comments") || listed.Load() >= runs {
				next.ServeHTTP(w, r)
				return
			}
			// Answer from the state now, but only once every run has
			// listed: then all of them saw no comment.
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			if listed.Add(1) == runs {
				once.Do(func() { close(all) })
			}
			select {
			case <-all:
			case <-time.After(10 * time.Second):
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	})
	var wg sync.WaitGroup
	errs := make([]error, runs)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = commenter(newClient(t, url, "ghs_job"), 100, 1).Write(context.Background(), "run")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	creates := 0
	for _, call := range emu.Calls() {
		if call.Method == http.MethodPost && strings.HasSuffix(call.Path, "/comments") {
			creates++
		}
	}
	if creates != runs {
		t.Errorf("%d runs created %d comments; the test wants every run to create one", runs, creates)
	}
	if ours := marked(emu); len(ours) != 1 {
		t.Errorf("%d comments left: %+v", len(ours), ours)
	}
}

// TestNeverOlderOverNewer: a run does not overwrite a comment written by a
// later run, or by a later attempt of the same run.
func TestNeverOlderOverNewer(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("ghs_job", bot)
	url := serve(t, emu, nil)
	if err := commenter(newClient(t, url, "ghs_job"), 200, 2).Write(context.Background(), "newer"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run     int64
		attempt int
		wrote   bool
	}{{199, 5, false}, {200, 1, false}, {200, 2, true}, {200, 3, true}, {201, 1, true}} {
		before := marked(emu)[0].Body
		err := commenter(newClient(t, url, "ghs_job"), tc.run, tc.attempt).Write(context.Background(), "from run")
		var se *platform.SupersededError
		if tc.wrote != (err == nil) || !tc.wrote && !errors.As(err, &se) {
			t.Errorf("run %d attempt %d: err = %v", tc.run, tc.attempt, err)
		}
		if after := marked(emu)[0].Body; !tc.wrote && after != before {
			t.Errorf("run %d attempt %d overwrote a newer comment", tc.run, tc.attempt)
		}
	}
	// A comment of an older version of the action (no stamp) is taken over.
	emu2 := githubemu.New("ghs_job", bot)
	emu2.AddComment("o", "r", 7, bot, "old\n"+platform.Marker("dagster_cloud.yaml")+"\n")
	if err := commenter(newClient(t, serve(t, emu2, nil), "ghs_job"), 1, 1).Write(context.Background(), "new"); err != nil {
		t.Fatal(err)
	}
	if ours := marked(emu2); len(ours) != 1 || !strings.HasPrefix(ours[0].Body, "new\n") {
		t.Errorf("comments: %+v", ours)
	}
}

// TestCommentReadsBeforeEachEdit: a run that already wrote its comment
// still does not overwrite what a newer run wrote since.
func TestCommentReadsBeforeEachEdit(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("ghs_job", bot)
	url := serve(t, emu, nil)
	old := commenter(newClient(t, url, "ghs_job"), 10, 1)
	if err := old.Write(context.Background(), "building"); err != nil {
		t.Fatal(err)
	}
	if err := commenter(newClient(t, url, "ghs_job"), 11, 1).Write(context.Background(), "newer run"); err != nil {
		t.Fatal(err)
	}
	var se *platform.SupersededError
	if err := old.Write(context.Background(), "old run finished"); !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	if b := marked(emu)[0].Body; !strings.HasPrefix(b, "newer run\n") {
		t.Errorf("body = %q", b)
	}
}

func TestCommentErrors(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("ghs_job", bot)
	url := serve(t, emu, nil)
	if err := commenter(newClient(t, url, "wrong"), 1, 1).Write(context.Background(), "b"); err == nil || !strings.Contains(err.Error(), "github_token input was refused") {
		t.Errorf("bad token: %v", err)
	}
	emu.FailNext(http.StatusForbidden) // the identity lookup
	emu.FailNext(http.StatusForbidden) // its REST fallback
	emu.FailNext(http.StatusForbidden) // the comment
	if err := commenter(newClient(t, url, "ghs_job"), 1, 1).Write(context.Background(), "b"); err == nil || !strings.Contains(err.Error(), "pull-requests: write") {
		t.Errorf("403: %v", err)
	}
	if err := commenter(newClient(t, url, "ghs_job"), 1, 1).Write(context.Background(), strings.Repeat("é", githubemu.MaxCommentLength)); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("too long: %v", err)
	}
	emu.SetRateLimit(1, time.Now().Add(time.Hour))
	err := commenter(newClient(t, url, "ghs_job"), 1, 1).Write(context.Background(), "b")
	var rl *gogithub.RateLimitError
	if !errors.As(err, &rl) || !strings.Contains(err.Error(), "rate limit for this token is used up until") {
		t.Errorf("rate limit: %v", err)
	}
}

func TestPullRequestAndCommit(t *testing.T) {
	t.Parallel()
	emu := githubemu.New("tok", "jane")
	when := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	emu.AddCommit("o", "r", githubemu.Commit{SHA: "abc123", Message: "Add assets\n\nBody", AuthorName: "Jane", AuthorEmail: "jane@example.com", AvatarURL: "https://a/j", Date: when})
	emu.SetPullRequest("o", "r", 7, githubemu.PullRequest{HeadSHA: "abc123", HeadRef: "feature"})
	emu.SetPullRequest("o", "r", 8, githubemu.PullRequest{HeadSHA: "def456", Merged: true})
	c := newClient(t, serve(t, emu, nil), "tok")
	got, err := c.Commit(context.Background(), "abc123")
	if err != nil || got.Message != "Add assets\n\nBody" || got.AuthorName != "Jane" || !got.Timestamp.Equal(when) || got.AvatarURL != "https://a/j" {
		t.Errorf("Commit = %+v, %v", got, err)
	}
	if _, err := c.Commit(context.Background(), "missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing commit: %v", err)
	}
	if pr, err := c.PullRequest(context.Background(), 7); err != nil || !pr.Open || pr.Merged || pr.HeadSHA != "abc123" {
		t.Errorf("PR 7 = %+v, %v", pr, err)
	}
	if pr, err := c.PullRequest(context.Background(), 8); err != nil || pr.Open || !pr.Merged {
		t.Errorf("PR 8 = %+v, %v", pr, err)
	}
}

// marked returns the comments that end with the marker.
func marked(emu *githubemu.Server) []githubemu.Comment {
	var out []githubemu.Comment
	for _, cm := range emu.Comments("o", "r", 7) {
		if platform.EndsWithMarker(cm.Body, platform.Marker("dagster_cloud.yaml")) {
			out = append(out, cm)
		}
	}
	return out
}
