// Package githubemu is a stateful emulator of the GitHub REST API's issue
// comment endpoints, served the way GitHub Enterprise Server serves them
// (under /api/v3/), with token checks, Link-header pagination and GitHub's
// error bodies. The real go-github client is tested against it.
package githubemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Comment is a stored issue comment.
type Comment struct {
	ID        int64     `json:"id"`
	Body      string    `json:"body"`
	User      string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Call is one request the emulator served.
type Call struct {
	Method, Path string
	Status       int
}

// Commit is a stored commit, served by GET /repos/{o}/{r}/commits/{sha}.
type Commit struct {
	SHA, Message, AuthorName, AuthorEmail, AuthorLogin, AvatarURL string
	Date                                                          time.Time
}

// Server is the emulator. It implements http.Handler.
type Server struct {
	mu       sync.Mutex
	tokens   map[string]string // token → user login
	comments map[string][]*Comment
	commits  map[string]Commit // "owner/repo@sha" → commit
	nextID   int64
	calls    []Call
	faults   []int
	base     string // public base URL, for Link headers; set from the request
}

// New returns an emulator that accepts the given token for the user login.
func New(token, login string) *Server {
	return &Server{tokens: map[string]string{token: login}, comments: map[string][]*Comment{}, commits: map[string]Commit{}, nextID: 1000}
}

// AddToken accepts another token, as another user (a PAT or an App).
func (s *Server) AddToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = login
}

// Seed adds n comments by other users to an issue, to exercise pagination.
func (s *Server) Seed(owner, repo string, number, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.add(key(owner, repo, number), fmt.Sprintf("unrelated comment %d", i), "someone")
	}
}

// AddCommit stores a commit of owner/repo.
func (s *Server) AddCommit(owner, repo string, c Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits[owner+"/"+repo+"@"+c.SHA] = c
}

// FailNext makes the next request answer with status.
func (s *Server) FailNext(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, status)
}

// Comments returns a copy of an issue's comments, oldest first.
func (s *Server) Comments(owner, repo string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments[key(owner, repo, number)] {
		out = append(out, *c)
	}
	return out
}

// Calls returns the requests served so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

func key(owner, repo string, number int) string { return fmt.Sprintf("%s/%s#%d", owner, repo, number) }

func (s *Server) add(k, body, user string) *Comment {
	s.nextID++
	now := time.Now().UTC().Truncate(time.Second)
	c := &Comment{ID: s.nextID, Body: body, User: user, CreatedAt: now, UpdatedAt: now}
	s.comments[k] = append(s.comments[k], c)
	return c
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	defer func() { s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Status: rec.status}) }()
	s.serve(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/api/v3/")
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found (the emulator serves the REST API under /api/v3/)")
		return
	}
	if len(s.faults) > 0 {
		status := s.faults[0]
		s.faults = s.faults[1:]
		apiError(w, status, http.StatusText(status))
		return
	}
	auth := r.Header.Get("Authorization")
	tok, _ := strings.CutPrefix(auth, "Bearer ")
	if t, ok := strings.CutPrefix(auth, "token "); ok {
		tok = t
	}
	login, ok := s.tokens[tok]
	if !ok {
		apiError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	// repos/{owner}/{repo}/commits/{sha}
	if len(parts) == 5 && parts[0] == "repos" && parts[3] == "commits" && r.Method == http.MethodGet {
		s.commit(w, parts[1], parts[2], parts[4])
		return
	}
	// repos/{owner}/{repo}/issues/{number}/comments
	// repos/{owner}/{repo}/issues/comments/{id}
	if len(parts) != 6 || parts[0] != "repos" || parts[3] != "issues" {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	owner, repo := parts[1], parts[2]
	if parts[4] == "comments" {
		id, err := strconv.ParseInt(parts[5], 10, 64)
		if err != nil || r.Method != http.MethodPatch {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		s.edit(w, r, owner, repo, id)
		return
	}
	number, err := strconv.Atoi(parts[4])
	if err != nil || parts[5] != "comments" {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	k := key(owner, repo, number)
	switch r.Method {
	case http.MethodGet:
		s.list(w, r, k)
	case http.MethodPost:
		var in struct {
			Body *string `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == nil {
			apiError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"body\" wasn't supplied.")
			return
		}
		c := s.add(k, *in.Body, login)
		writeJSON(w, http.StatusCreated, s.render(r, owner, repo, c))
	default:
		apiError(w, http.StatusNotFound, "Not Found")
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, k string) {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 30
	}
	if per > 100 {
		per = 100
	}
	page, _ := strconv.Atoi(q.Get("page"))
	if page <= 0 {
		page = 1
	}
	all := s.comments[k]
	sort.SliceStable(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	start := (page - 1) * per
	end := min(start+per, len(all))
	owner, repo, _ := strings.Cut(strings.SplitN(k, "#", 2)[0], "/")
	out := []map[string]any{}
	if start < len(all) {
		for _, c := range all[start:end] {
			out = append(out, s.render(r, owner, repo, c))
		}
	}
	last := (len(all) + per - 1) / per
	var links []string
	link := func(p int, rel string) {
		u := *r.URL
		u.Scheme, u.Host = scheme(r), r.Host
		v := u.Query()
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(per))
		u.RawQuery = v.Encode()
		links = append(links, fmt.Sprintf("<%s>; rel=%q", u.String(), rel))
	}
	if page < last {
		link(page+1, "next")
		link(last, "last")
	}
	if page > 1 {
		link(1, "first")
		link(page-1, "prev")
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) edit(w http.ResponseWriter, r *http.Request, owner, repo string, id int64) {
	for k, cs := range s.comments {
		if !strings.HasPrefix(k, owner+"/"+repo+"#") {
			continue
		}
		for _, c := range cs {
			if c.ID != id {
				continue
			}
			var in struct {
				Body *string `json:"body"`
			}
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == nil {
				apiError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"body\" wasn't supplied.")
				return
			}
			c.Body = *in.Body
			c.UpdatedAt = time.Now().UTC().Truncate(time.Second)
			writeJSON(w, http.StatusOK, s.render(r, owner, repo, c))
			return
		}
	}
	apiError(w, http.StatusNotFound, "Not Found")
}

func (s *Server) commit(w http.ResponseWriter, owner, repo, sha string) {
	c, ok := s.commits[owner+"/"+repo+"@"+sha]
	if !ok {
		apiError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+sha)
		return
	}
	person := map[string]any{"name": c.AuthorName, "email": c.AuthorEmail, "date": c.Date.UTC().Format(time.RFC3339)}
	writeJSON(w, http.StatusOK, map[string]any{
		"sha":    c.SHA,
		"commit": map[string]any{"message": c.Message, "author": person, "committer": person},
		"author": map[string]any{"login": c.AuthorLogin, "avatar_url": c.AvatarURL},
	})
}

func (s *Server) render(r *http.Request, owner, repo string, c *Comment) map[string]any {
	base := scheme(r) + "://" + r.Host
	return map[string]any{
		"id":         c.ID,
		"node_id":    "IC_" + strconv.FormatInt(c.ID, 10),
		"url":        fmt.Sprintf("%s/api/v3/repos/%s/%s/issues/comments/%d", base, owner, repo, c.ID),
		"html_url":   fmt.Sprintf("%s/%s/%s/pull/0#issuecomment-%d", base, owner, repo, c.ID),
		"body":       c.Body,
		"user":       map[string]any{"login": c.User, "type": "User"},
		"created_at": c.CreatedAt.Format(time.RFC3339),
		"updated_at": c.UpdatedAt.Format(time.RFC3339),
	}
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest/issues/comments",
	})
}

// URL is the GITHUB_API_URL to give a client for an emulator served at base.
func URL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base + "/api/v3"
	}
	u.Path = "/api/v3"
	return u.String()
}
