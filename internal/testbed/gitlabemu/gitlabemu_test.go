package gitlabemu

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	gogitlab "gitlab.com/gitlab-org/api/client-go"
)

const (
	janeToken  = "glpat-jane"  // a developer's personal access token
	maintToken = "glpat-maint" // a maintainer's
	botToken   = "glpat-bot"   // a project access token (Developer)
	jobToken   = "glcbt-job"   // a CI/CD job token
	marker     = "<!-- dagster-branch-deploy:x -->"
)

type fixture struct {
	emu      *Server
	srv      *httptest.Server
	private  int64 // acme/private
	public   int64 // acme/open
	bot      string
	attacker int64 // mallory's note on !1 of the private project
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	emu := New()
	f := &fixture{emu: emu}
	f.private = emu.AddProject(Project{Path: "acme/data/private"})
	f.public = emu.AddProject(Project{Path: "acme/open", Public: true})
	emu.AddToken(janeToken, "jane")
	emu.AddMaintainerToken(maintToken, "maud")
	f.bot = emu.AddProjectAccessToken(botToken, f.private, false)
	emu.AddJobToken(jobToken, f.private)
	for _, p := range []int64{f.private, f.public} {
		emu.SetMergeRequest(p, MergeRequest{IID: 1, Title: "Add assets", SourceBranch: "feature/x", SHA: strings.Repeat("a", 40), HeadPipelineID: 777})
	}
	f.attacker = emu.AddNote(f.private, 1, "mallory", "fake\n"+marker)
	f.srv = httptest.NewServer(emu)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) client(t *testing.T, token string) *gogitlab.Client {
	t.Helper()
	opts := []gogitlab.ClientOptionFunc{gogitlab.WithBaseURL(URL(f.srv.URL)), gogitlab.WithoutRetries()}
	var c *gogitlab.Client
	var err error
	switch token {
	case jobToken:
		c, err = gogitlab.NewJobClient(token, opts...)
	case "":
		c, err = gogitlab.NewAuthSourceClient(gogitlab.Unauthenticated{}, opts...)
	default:
		c, err = gogitlab.NewClient(token, opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(resp *gogitlab.Response, err error) int {
	if errors.Is(err, gogitlab.ErrNotFound) {
		return 404
	}
	if resp == nil || resp.Response == nil {
		return 0
	}
	return resp.StatusCode
}

// errMessage is the "message" (or "error") of an error's JSON body.
func errMessage(err error) string {
	var er *gogitlab.ErrorResponse
	if !errors.As(err, &er) {
		return ""
	}
	var body map[string]string
	if json.Unmarshal(er.Body, &body) != nil {
		return ""
	}
	if m, ok := body["message"]; ok {
		return m
	}
	return body["error"]
}

func TestNoteAuthorship(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, token, target, op string // target: "own" (jane's note) or "attacker" (mallory's)
		want                    int
	}{
		{"author edits", janeToken, "own", "edit", 200},
		{"author deletes", janeToken, "own", "delete", 204},
		{"another user edits", botToken, "own", "edit", 403},
		{"another user deletes", botToken, "own", "delete", 403},
		{"bot edits the attacker's", botToken, "attacker", "edit", 403},
		{"maintainer edits another's", maintToken, "attacker", "edit", 200},
		{"maintainer deletes another's", maintToken, "own", "delete", 204},
		{"job token edits", jobToken, "own", "edit", 401},
		{"anonymous deletes", "", "own", "delete", 401},
		{"unknown token", "glpat-wrong", "own", "edit", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			id := f.emu.AddNote(f.private, 1, "jane", "mine")
			if tc.target == "attacker" {
				id = f.attacker
			}
			c := f.client(t, tc.token)
			var resp *gogitlab.Response
			var err error
			if tc.op == "edit" {
				_, resp, err = c.Notes.UpdateMergeRequestNote(f.private, 1, id, &gogitlab.UpdateMergeRequestNoteOptions{Body: gogitlab.Ptr("edited")})
			} else {
				resp, err = c.Notes.DeleteMergeRequestNote(f.private, 1, id)
			}
			if got := status(resp, err); got != tc.want {
				t.Fatalf("status %d (%v), want %d", got, err, tc.want)
			}
			wantMsg := map[int]string{401: "401 Unauthorized", 403: "403 Forbidden"}[tc.want]
			if wantMsg != "" && errMessage(err) != wantMsg {
				t.Errorf("message %q, want %q", errMessage(err), wantMsg)
			}
		})
	}
}

// TestJobToken: GitLab takes no job token on these endpoints, so a job
// token's request is anonymous: it reads a public project's merge request,
// not a private one's, and never notes or /user.
func TestJobToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, token := range []string{jobToken, ""} {
		c := f.client(t, token)
		mr, resp, err := c.MergeRequests.GetMergeRequest(f.public, 1, nil)
		if err != nil || mr.IID != 1 || resp.StatusCode != 200 {
			t.Errorf("%q: public MR = %+v, %v", token, mr, err)
		}
		if _, resp, err := c.MergeRequests.GetMergeRequest(f.private, 1, nil); status(resp, err) != 404 {
			t.Errorf("%q: private MR: %v", token, err)
		}
		if _, resp, err := c.Notes.ListMergeRequestNotes(f.public, 1, nil); status(resp, err) != 401 || errMessage(err) != "401 Unauthorized" {
			t.Errorf("%q: list notes: %v", token, err)
		}
		if _, resp, err := c.Notes.CreateMergeRequestNote(f.public, 1, &gogitlab.CreateMergeRequestNoteOptions{Body: gogitlab.Ptr("x")}); status(resp, err) != 401 {
			t.Errorf("%q: create note: %v", token, err)
		}
		if _, resp, err := c.Users.CurrentUser(); status(resp, err) != 401 {
			t.Errorf("%q: /user: %v", token, err)
		}
	}
	// The private project's 404 body is GitLab's.
	resp, err := http.Get(URL(f.srv.URL) + "/projects/" + strconv.FormatInt(f.private, 10) + "/merge_requests/1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || strings.TrimSpace(string(b)) != `{"message":"404 Project Not Found"}` {
		t.Errorf("private project: %d %s", resp.StatusCode, b)
	}
	if n := len(f.emu.Notes(f.public, 1)); n != 0 {
		t.Errorf("%d notes written without a token", n)
	}
}

func TestUserAndProjects(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u, _, err := f.client(t, botToken).Users.CurrentUser()
	if err != nil || u.Username != f.bot || !u.Bot || u.ID != f.emu.UserID(f.bot) || !strings.HasPrefix(f.bot, "project_") {
		t.Errorf("bot = %+v, %v", u, err)
	}
	if u, _, err := f.client(t, janeToken).Users.CurrentUser(); err != nil || u.Username != "jane" || u.Bot {
		t.Errorf("jane = %+v, %v", u, err)
	}
	for _, id := range []any{f.private, "acme/data/private", "ACME/Data/Private"} {
		p, _, err := f.client(t, janeToken).Projects.GetProject(id, nil)
		if err != nil || p.ID != f.private || p.PathWithNamespace != "acme/data/private" || p.WebURL != f.srv.URL+"/acme/data/private" {
			t.Errorf("project %v = %+v, %v", id, p, err)
		}
	}
	if _, resp, err := f.client(t, janeToken).Projects.GetProject("acme/nope", nil); status(resp, err) != 404 {
		t.Errorf("missing project: %v", err)
	}
}

func TestMergeRequestAndCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	when := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.emu.SetMergeRequest(f.private, MergeRequest{IID: 2, State: StateMerged, Title: "T", SourceBranch: "b", SHA: strings.Repeat("b", 40), Author: "jane", UpdatedAt: when})
	f.emu.AddCommit(f.private, Commit{SHA: strings.Repeat("b", 40), Message: "Subject\n\nBody", AuthorName: "Jane", AuthorEmail: "jane@example.com", CommittedDate: when})
	c := f.client(t, janeToken)
	mr, _, err := c.MergeRequests.GetMergeRequest("acme/data/private", 2, nil)
	if err != nil || mr.State != "merged" || mr.SourceBranch != "b" || mr.SHA != strings.Repeat("b", 40) || mr.Author.Username != "jane" ||
		mr.MergedAt == nil || !mr.MergedAt.Equal(when) || mr.HeadPipeline != nil || mr.WebURL != f.srv.URL+"/acme/data/private/-/merge_requests/2" {
		t.Errorf("MR 2 = %+v, %v", mr, err)
	}
	if mr, _, err := c.MergeRequests.GetMergeRequest(f.private, 1, nil); err != nil || mr.State != "opened" || mr.HeadPipeline == nil || mr.HeadPipeline.ID != 777 {
		t.Errorf("MR 1 = %+v, %v", mr, err)
	}
	if _, resp, err := c.MergeRequests.GetMergeRequest(f.private, 99, nil); status(resp, err) != 404 {
		t.Errorf("missing MR: %v", err)
	}
	cm, _, err := c.Commits.GetCommit(f.private, strings.Repeat("b", 40), nil)
	if err != nil || cm.Message != "Subject\n\nBody" || cm.Title != "Subject" || cm.AuthorEmail != "jane@example.com" || !cm.CommittedDate.Equal(when) {
		t.Errorf("commit = %+v, %v", cm, err)
	}
	if _, resp, err := c.Commits.GetCommit(f.private, strings.Repeat("c", 40), nil); status(resp, err) != 404 {
		t.Errorf("missing commit: %v", err)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.emu.Seed(f.private, 1, 249) // with the attacker's: 250
	c := f.client(t, janeToken)
	opt := &gogitlab.ListMergeRequestNotesOptions{ListOptions: gogitlab.ListOptions{PerPage: 100, Page: 1}, Sort: gogitlab.Ptr("asc"), OrderBy: gogitlab.Ptr("created_at")}
	var ids []int64
	pages := 0
	for {
		page, resp, err := c.Notes.ListMergeRequestNotes(f.private, 1, opt)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if resp.TotalItems != 250 || resp.TotalPages != 3 || resp.ItemsPerPage != 100 || resp.CurrentPage != opt.Page {
			t.Errorf("page %d headers: %+v", opt.Page, resp)
		}
		if resp.NextPage != 0 && !strings.Contains(resp.NextLink, "page="+strconv.FormatInt(resp.NextPage, 10)) {
			t.Errorf("next link %q, next page %d", resp.NextLink, resp.NextPage)
		}
		for _, n := range page {
			ids = append(ids, n.ID)
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if pages != 3 || len(ids) != 250 {
		t.Fatalf("%d pages, %d notes", pages, len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("not oldest first at %d: %v", i, ids[i-1:i+1])
		}
	}
	// GitLab's default: 20 a page, newest first.
	page, resp, err := c.Notes.ListMergeRequestNotes(f.private, 1, nil)
	if err != nil || len(page) != 20 || resp.ItemsPerPage != 20 || resp.NextPage != 2 || page[0].ID != ids[len(ids)-1] {
		t.Errorf("default listing: %d notes, %+v, %v", len(page), resp, err)
	}
	// per_page is capped at 100; a page past the end is empty.
	page, resp, err = c.Notes.ListMergeRequestNotes(f.private, 1, &gogitlab.ListMergeRequestNotesOptions{ListOptions: gogitlab.ListOptions{PerPage: 500, Page: 9}})
	if err != nil || len(page) != 0 || resp.ItemsPerPage != 100 || resp.NextPage != 0 {
		t.Errorf("past the end: %d notes, %+v, %v", len(page), resp, err)
	}
}

func TestNoteLimitsAndErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.client(t, janeToken)
	max := strings.Repeat("é", MaxNoteLength)
	n, _, err := c.Notes.CreateMergeRequestNote(f.private, 1, &gogitlab.CreateMergeRequestNoteOptions{Body: &max})
	if err != nil || n.Author.Username != "jane" || n.NoteableIID != 1 || n.NoteableType != "MergeRequest" {
		t.Fatalf("note of the largest size: %+v, %v", n, err)
	}
	tooLong := max + "x"
	_, resp, err := c.Notes.CreateMergeRequestNote(f.private, 1, &gogitlab.CreateMergeRequestNoteOptions{Body: &tooLong})
	if status(resp, err) != 400 || errMessage(err) != `400 Bad request - Note {:note=>["is too long (maximum is 1000000 characters)"]}` {
		t.Errorf("too long: %v", err)
	}
	_, resp, err = c.Notes.UpdateMergeRequestNote(f.private, 1, n.ID, &gogitlab.UpdateMergeRequestNoteOptions{Body: &tooLong})
	if status(resp, err) != 400 || !strings.Contains(errMessage(err), "Failed to save note") {
		t.Errorf("too long edit: %v", err)
	}
	_, resp, err = c.Notes.CreateMergeRequestNote(f.private, 1, &gogitlab.CreateMergeRequestNoteOptions{})
	if status(resp, err) != 400 || errMessage(err) != "body is missing" {
		t.Errorf("no body: %v", err)
	}
	if _, resp, err := c.Notes.GetMergeRequestNote(f.private, 1, 1); status(resp, err) != 404 {
		t.Errorf("missing note: %v", err)
	}
	sys := f.emu.AddSystemNote(f.private, 1, "jane", "added 1 commit")
	if _, resp, err := c.Notes.UpdateMergeRequestNote(f.private, 1, sys, &gogitlab.UpdateMergeRequestNoteOptions{Body: gogitlab.Ptr("x")}); status(resp, err) != 403 {
		t.Errorf("system note edit: %v", err)
	}
	f.emu.FailNext(http.StatusBadGateway)
	if _, resp, err := c.Users.CurrentUser(); status(resp, err) != 502 || errMessage(err) != "502 Bad Gateway" {
		t.Errorf("fault: %v", err)
	}
	resp2, err := http.Get(f.srv.URL + "/api/v4/nothing/here")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.NewDecoder(resp2.Body).Decode(&body)
	resp2.Body.Close()
	if resp2.StatusCode != 404 || body["error"] != "404 Not Found" {
		t.Errorf("unknown route: %d %v", resp2.StatusCode, body)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.emu.SetRateLimit(2)
	get := func() *http.Response {
		req, _ := http.NewRequest(http.MethodGet, URL(f.srv.URL)+"/user", nil)
		req.Header.Set("PRIVATE-TOKEN", janeToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		return resp
	}
	for i := 1; i <= 2; i++ {
		resp := get()
		if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Limit") != "2" || resp.Header.Get("RateLimit-Remaining") != strconv.Itoa(2-i) ||
			resp.Header.Get("RateLimit-Observed") != strconv.Itoa(i) || resp.Header.Get("RateLimit-Reset") == "" {
			t.Errorf("request %d: %d %v", i, resp.StatusCode, resp.Header)
		}
	}
	resp := get()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || string(b) != "Retry later\n" {
		t.Errorf("over the limit: %d %v %q", resp.StatusCode, resp.Header, b)
	}
	f.emu.SetRateLimit(0)
	if resp := get(); resp.StatusCode != 200 || resp.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("limit off: %d %v", resp.StatusCode, resp.Header)
	}
}
