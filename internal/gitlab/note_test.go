package gitlab

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/gitlabemu"
)

const (
	projectID   = 42
	projectPath = "acme/data/platform"
	botToken    = "glpat-bot" // the project access token, Maintainer: it could edit anyone's note
	jobToken    = "glcbt-job"
	iid         = 7
)

var key = platform.Marker("dagster_cloud.yaml")

// newEmu returns an emulator with the project, merge request !7 and the
// project access token; bot is the token's user.
func newEmu(t *testing.T, public bool) (emu *gitlabemu.Server, bot string) {
	t.Helper()
	emu = gitlabemu.New()
	emu.AddProject(gitlabemu.Project{ID: projectID, Path: projectPath, Public: public})
	bot = emu.AddProjectAccessToken(botToken, projectID, true)
	emu.AddJobToken(jobToken, projectID)
	emu.SetMergeRequest(projectID, gitlabemu.MergeRequest{IID: iid, Title: "Add assets", SourceBranch: "feature/x", SHA: shaA, HeadPipelineID: 1500})
	return emu, bot
}

// serve starts the emulator behind wrap (nil: the emulator itself) and
// returns its CI_API_V4_URL.
func serve(t *testing.T, emu *gitlabemu.Server, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = emu
	if wrap != nil {
		h = wrap(emu)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return gitlabemu.URL(srv.URL)
}

func newClient(t *testing.T, apiURL, token string) *Client {
	t.Helper()
	c, err := NewClient(apiURL, token, false, "42", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func commenter(c *Client, run int64, attempt int) *Commenter {
	return &Commenter{Client: c, IID: iid, Marker: key,
		Stamp: platform.Stamp{Commit: shaA, RunID: run, RunAttempt: attempt, Written: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}}
}

// marked returns the notes that end with the marker.
func marked(emu *gitlabemu.Server) []gitlabemu.Note {
	var out []gitlabemu.Note
	for _, n := range emu.Notes(projectID, iid) {
		if platform.EndsWithMarker(n.Body, key) {
			out = append(out, n)
		}
	}
	return out
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	emu, bot := newEmu(t, false)
	emu.AddToken("glpat-jane", "jane")
	url := serve(t, emu, nil)
	for token, want := range map[string]string{botToken: bot, "glpat-jane": "jane"} {
		u, err := newClient(t, url, token).Identity(context.Background())
		if err != nil || u.Username != want || u.ID != emu.UserID(want) {
			t.Errorf("%s: Identity = %+v, %v; want %q", token, u, err, want)
		}
	}
	if _, err := newClient(t, url, "glpat-wrong").Identity(context.Background()); err == nil || !strings.Contains(err.Error(), "GitLab refused") {
		t.Errorf("bad token: %v", err)
	}
}

// TestNoteKeepsOneAcrossPages: one note, found past ten pages of others,
// edited in place by later runs.
func TestNoteKeepsOneAcrossPages(t *testing.T) {
	t.Parallel()
	emu, bot := newEmu(t, false)
	emu.Seed(projectID, iid, 1000)
	url := serve(t, emu, nil)
	first := commenter(newClient(t, url, botToken), 100, 1)
	if err := first.Write(context.Background(), "first"); err != nil {
		t.Fatal(err)
	}
	id := first.ID()
	emu.Seed(projectID, iid, 50) // more notes after ours
	next := commenter(newClient(t, url, botToken), 101, 1)
	if err := next.Write(context.Background(), "second"); err != nil {
		t.Fatal(err)
	}
	if next.ID() != id {
		t.Errorf("the second run wrote note %d, want %d", next.ID(), id)
	}
	ours := marked(emu)
	if len(ours) != 1 || ours[0].Author != bot || !strings.HasPrefix(ours[0].Body, "second\n<!-- dagster-branch-deploy-run: commit="+shaA+" run=101 attempt=1 ") ||
		!strings.HasSuffix(ours[0].Body, key+"\n") {
		t.Fatalf("notes: %+v", ours)
	}
	// The same body again changes nothing.
	calls := len(emu.Calls())
	if err := next.Write(context.Background(), "second"); err != nil {
		t.Fatal(err)
	}
	for _, c := range emu.Calls()[calls:] {
		if c.Method != http.MethodGet {
			t.Errorf("unchanged body: %s %s", c.Method, c.Path)
		}
	}
}

// TestNoteIsOurs: notes that carry the marker but were written by someone
// else (an attacker who posted first, even stamped by a newer run), system
// notes, and notes that only quote the marker are never edited, trusted or
// counted, although the token, a maintainer's, could edit them.
func TestNoteIsOurs(t *testing.T) {
	t.Parallel()
	emu, bot := newEmu(t, false)
	fake := "Deploy at [approve](https://evil.example)\n" + key + "\n"
	fakeNewer := "x\n<!-- dagster-branch-deploy-run: commit=bbbb run=999999 attempt=9 written=2030-01-01T00:00:00Z -->\n" + key
	attacker := emu.AddNote(projectID, iid, "mallory", fake)
	attacker2 := emu.AddNote(projectID, iid, "mallory", fakeNewer)
	system := emu.AddSystemNote(projectID, iid, bot, "changed the description\n"+key)
	quoted := emu.AddNote(projectID, iid, bot, "someone quoted "+key+" in the middle of a note")
	c := commenter(newClient(t, serve(t, emu, nil), botToken), 100, 1)
	for _, body := range []string{"first", "second"} {
		if err := c.Write(context.Background(), body); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range emu.Notes(projectID, iid) {
		switch n.ID {
		case attacker:
			if n.Body != fake {
				t.Errorf("the attacker's note was edited: %q", n.Body)
			}
		case attacker2:
			if n.Body != fakeNewer {
				t.Errorf("the attacker's stamped note was edited: %q", n.Body)
			}
		case system:
			if !strings.HasPrefix(n.Body, "changed the description") {
				t.Errorf("a system note was edited: %q", n.Body)
			}
		case quoted:
			if !strings.HasPrefix(n.Body, "someone quoted") {
				t.Errorf("a note that only quotes the marker was edited: %q", n.Body)
			}
		case c.ID():
			if n.Author != bot || !strings.HasPrefix(n.Body, "second\n") {
				t.Errorf("our note: %+v", n)
			}
		default:
			t.Errorf("unexpected note %+v", n)
		}
	}
}

// TestConcurrentRunsEndWithOneNote: runs that start together all see no
// note and all create one; afterwards exactly one is left, the oldest.
func TestConcurrentRunsEndWithOneNote(t *testing.T) {
	t.Parallel()
	const runs = 4
	emu, _ := newEmu(t, false)
	var listed atomic.Int32
	all := make(chan struct{})
	var once sync.Once
	url := serve(t, emu, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/merge_requests/7/notes") || listed.Load() >= runs {
				next.ServeHTTP(w, r)
				return
			}
			// Answer from the state now, but only once every run has
			// listed: then all of them saw no note.
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
			errs[i] = commenter(newClient(t, url, botToken), 100, 1).Write(context.Background(), "run")
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
		if call.Method == http.MethodPost && strings.HasSuffix(call.Path, "/notes") {
			creates++
		}
	}
	if creates != runs {
		t.Errorf("%d runs created %d notes; the test wants every run to create one", runs, creates)
	}
	if ours := marked(emu); len(ours) != 1 {
		t.Errorf("%d notes left: %+v", len(ours), ours)
	}
}

// TestNeverOlderOverNewer: a run does not overwrite a note written by a
// later pipeline, or by a later job (a retry) of the same pipeline.
func TestNeverOlderOverNewer(t *testing.T) {
	t.Parallel()
	emu, bot := newEmu(t, false)
	url := serve(t, emu, nil)
	if err := commenter(newClient(t, url, botToken), 200, 5002).Write(context.Background(), "newer"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run   int64
		job   int
		wrote bool
	}{{199, 9999, false}, {200, 5001, false}, {200, 5002, true}, {200, 5003, true}, {201, 1, true}} {
		before := marked(emu)[0].Body
		err := commenter(newClient(t, url, botToken), tc.run, tc.job).Write(context.Background(), "from run")
		var se *platform.SupersededError
		if tc.wrote != (err == nil) || !tc.wrote && !errors.As(err, &se) {
			t.Errorf("pipeline %d job %d: err = %v", tc.run, tc.job, err)
		}
		if after := marked(emu)[0].Body; !tc.wrote && after != before {
			t.Errorf("pipeline %d job %d overwrote a newer note", tc.run, tc.job)
		}
	}
	// A note of an older version of the action (no stamp) is taken over.
	emu2, _ := newEmu(t, false)
	emu2.AddNote(projectID, iid, bot, "old\n"+key+"\n")
	if err := commenter(newClient(t, serve(t, emu2, nil), botToken), 1, 1).Write(context.Background(), "new"); err != nil {
		t.Fatal(err)
	}
	if ours := marked(emu2); len(ours) != 1 || !strings.HasPrefix(ours[0].Body, "new\n") {
		t.Errorf("notes: %+v", ours)
	}
}

// TestNoteReadsBeforeEachEdit: a run that already wrote its note still does
// not overwrite what a newer run wrote since, and finds the note again when
// it was deleted.
func TestNoteReadsBeforeEachEdit(t *testing.T) {
	t.Parallel()
	emu, bot := newEmu(t, false)
	url := serve(t, emu, nil)
	old := commenter(newClient(t, url, botToken), 10, 1)
	if err := old.Write(context.Background(), "building"); err != nil {
		t.Fatal(err)
	}
	if err := commenter(newClient(t, url, botToken), 11, 1).Write(context.Background(), "newer run"); err != nil {
		t.Fatal(err)
	}
	var se *platform.SupersededError
	if err := old.Write(context.Background(), "old run finished"); !errors.As(err, &se) || !strings.Contains(err.Error(), "run 11") {
		t.Fatalf("err = %v", err)
	}
	if b := marked(emu)[0].Body; !strings.HasPrefix(b, "newer run\n") {
		t.Errorf("body = %q", b)
	}

	emu2, _ := newEmu(t, false)
	emu2.AddMaintainerToken("glpat-maud", "maud")
	url2 := serve(t, emu2, nil)
	c := commenter(newClient(t, url2, botToken), 10, 1)
	if err := c.Write(context.Background(), "one"); err != nil {
		t.Fatal(err)
	}
	gone := c.ID()
	maud := newClient(t, url2, "glpat-maud")
	if _, err := maud.gl.Notes.DeleteMergeRequestNote(projectID, iid, gone); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(context.Background(), "two"); err != nil {
		t.Fatal(err)
	}
	if ours := marked(emu2); len(ours) != 1 || ours[0].ID == gone || ours[0].Author != bot || !strings.HasPrefix(ours[0].Body, "two\n") {
		t.Errorf("notes: %+v", ours)
	}
}

func TestNoteErrors(t *testing.T) {
	t.Parallel()
	emu, _ := newEmu(t, false)
	url := serve(t, emu, nil)
	if err := commenter(newClient(t, url, "glpat-wrong"), 1, 1).Write(context.Background(), "b"); err == nil || !strings.Contains(err.Error(), "GitLab refused the GITLAB_TOKEN") {
		t.Errorf("bad token: %v", err)
	}
	emu.FailNext(http.StatusForbidden) // GET /user
	emu.FailNext(http.StatusForbidden) // the note
	if err := commenter(newClient(t, url, botToken), 1, 1).Write(context.Background(), "b"); err == nil || !strings.Contains(err.Error(), "api scope") {
		t.Errorf("403: %v", err)
	}
	// GitLab counts characters: 1,000,002 bytes of "é" are 500,001 of them.
	huge := strings.Repeat("é", MaxNoteBytes/2+1)
	if err := commenter(newClient(t, url, botToken), 1, 1).Write(context.Background(), huge); err != nil {
		t.Errorf("500,001 characters: %v", err)
	}
	if err := commenter(newClient(t, url, botToken), 1, 1).Write(context.Background(), strings.Repeat("x", gitlabemu.MaxNoteLength)); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("too long: %v", err)
	}
	if _, err := NewClient("gitlab.example.com/api/v4", "t", false, "42", nil); err == nil || !strings.Contains(err.Error(), "CI_API_V4_URL") {
		t.Errorf("bad URL: %v", err)
	}
}

// TestUnknownIdentity: when GET /user fails (not for a bad token), the note
// is created and the identity learned from it; duplicates are still found.
func TestUnknownIdentity(t *testing.T) {
	t.Parallel()
	emu, bot := newEmu(t, false)
	url := serve(t, emu, nil)
	if err := commenter(newClient(t, url, botToken), 5, 1).Write(context.Background(), "earlier"); err != nil {
		t.Fatal(err)
	}
	emu.FailNext(http.StatusForbidden) // GET /user
	c := commenter(newClient(t, url, botToken), 6, 1)
	if err := c.Write(context.Background(), "later"); err != nil {
		t.Fatal(err)
	}
	if ours := marked(emu); len(ours) != 1 || ours[0].Author != bot || !strings.HasPrefix(ours[0].Body, "later\n") || ours[0].ID != c.ID() {
		t.Errorf("notes: %+v", ours)
	}
}

// TestReviewThroughCI: the platform's Review writes with GITLAB_TOKEN (the
// gitlab_token input first) and stamps pipeline and job; with only
// CI_JOB_TOKEN it says which variable to add.
func TestReviewThroughCI(t *testing.T) {
	t.Parallel()
	emu, bot := newEmu(t, false)
	url := serve(t, emu, nil)
	ctx := context.Background()
	c := &cicontext.Context{Mode: cicontext.ModeBranch, PullRequestNumber: iid, RunID: "300", RunAttempt: "9001", Commit: cicontext.Commit{SHA: shaA}}
	for _, env := range []map[string]string{
		{"GITLAB_TOKEN": botToken},
		{"INPUT_GITLAB_TOKEN": botToken, "GITLAB_TOKEN": "glpat-wrong"},
	} {
		env["CI_API_V4_URL"], env["CI_PROJECT_ID"], env["CI_JOB_TOKEN"] = url, "42", jobToken
		p := NewCI(mapEnv(env), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{})
		r, why := p.Review(ctx, c, "dagster_cloud.yaml")
		if r == nil {
			t.Fatalf("no review: %s", why)
		}
		if r.MaxBytes() != 1_000_000 || !strings.HasSuffix(r.Trailer(), "\n"+key) || !strings.Contains(r.Trailer(), "run=300 attempt=9001") {
			t.Errorf("trailer %q, max %d", r.Trailer(), r.MaxBytes())
		}
		if err := r.Write(ctx, "deployed\n"+r.Trailer()); err != nil {
			t.Fatal(err)
		}
	}
	if ours := marked(emu); len(ours) != 1 || ours[0].Author != bot || strings.Count(ours[0].Body, key) != 1 {
		t.Errorf("notes: %+v", ours)
	}

	for name, env := range map[string]map[string]string{
		"job token only":              {"CI_JOB_TOKEN": jobToken},
		"GITLAB_TOKEN is the job's":   {"CI_JOB_TOKEN": jobToken, "GITLAB_TOKEN": jobToken},
		"no token at all":             {},
		"gitlab_token is the job's":   {"CI_JOB_TOKEN": jobToken, "INPUT_GITLAB_TOKEN": jobToken},
		"white space around GITLAB_T": {"CI_JOB_TOKEN": jobToken, "GITLAB_TOKEN": " \n"},
	} {
		env["CI_API_V4_URL"], env["CI_PROJECT_ID"] = url, "42"
		p := NewCI(mapEnv(env), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{})
		r, why := p.Review(ctx, c, "dagster_cloud.yaml")
		if r != nil || !strings.Contains(why, "GITLAB_TOKEN") || !strings.Contains(why, "api scope") || !strings.Contains(why, "pr_comment: false") {
			t.Errorf("%s: review %v, reason %q", name, r, why)
		}
	}
}

// TestCloseStamp: the stop job's note outranks every run of its pipeline and
// of the merge request's head pipeline, and a pipeline after a reopen
// outranks it.
func TestCloseStamp(t *testing.T) {
	t.Parallel()
	emu, _ := newEmu(t, false)
	emu.SetMergeRequest(projectID, gitlabemu.MergeRequest{IID: iid, State: gitlabemu.StateMerged, SourceBranch: "feature/x", SHA: shaA, HeadPipelineID: 1500})
	url := serve(t, emu, nil)
	ctx := context.Background()
	// The head pipeline's deploy job wrote last.
	if err := commenter(newClient(t, url, botToken), 1500, 880000).Write(ctx, "deployed"); err != nil {
		t.Fatal(err)
	}
	env := mrEnv(t)
	env["CI_API_V4_URL"], env["GITLAB_TOKEN"] = url, botToken
	env["CI_PIPELINE_ID"], env["CI_JOB_ID"] = "1400", "870001" // the stop job of an older deployment's pipeline
	p := NewCI(mapEnv(env), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{Close: true})
	c, err := p.Context(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	r, why := p.Review(ctx, c, "dagster_cloud.yaml")
	if r == nil {
		t.Fatal(why)
	}
	if err := r.Write(ctx, "merged"); err != nil {
		t.Fatalf("the stop job's note: %v", err)
	}
	// A late job of the head pipeline does not put "deployed" back.
	var se *platform.SupersededError
	if err := commenter(newClient(t, url, botToken), 1500, 990000).Write(ctx, "deployed late"); !errors.As(err, &se) {
		t.Errorf("late job: %v", err)
	}
	if err := commenter(newClient(t, url, botToken), 1600, 1).Write(ctx, "reopened"); err != nil {
		t.Errorf("a pipeline after a reopen: %v", err)
	}
	if b := marked(emu)[0].Body; !strings.HasPrefix(b, "reopened\n") {
		t.Errorf("body %q", b)
	}
}
