// Package gitlabemu is a stateful emulator of the parts of GitLab's REST API
// v4 the action uses, served under /api/v4/ as GitLab serves it, with
// GitLab's authentication (PRIVATE-TOKEN, OAuth Bearer and JOB-TOKEN
// headers), note authorship rules, note size limit, offset pagination
// headers, optional RateLimit-* headers and error bodies. The real
// gitlab.com/gitlab-org/api/client-go client is tested against it.
//
// Endpoints (:id is a project's numeric ID or its URL-encoded full path):
//
//	GET    /api/v4/user                                            the token's user (401 for job tokens)
//	GET    /api/v4/projects/:id
//	GET    /api/v4/projects/:id/merge_requests/:iid
//	GET    /api/v4/projects/:id/merge_requests/:iid/notes          list; sort (default desc), order_by, page, per_page
//	POST   /api/v4/projects/:id/merge_requests/:iid/notes          create (201)
//	GET    /api/v4/projects/:id/merge_requests/:iid/notes/:note_id
//	PUT    /api/v4/projects/:id/merge_requests/:iid/notes/:note_id edit: author or maintainer only
//	DELETE /api/v4/projects/:id/merge_requests/:iid/notes/:note_id delete (204): author or maintainer only
//	GET    /api/v4/projects/:id/repository/commits/:sha
//
// Authentication as GitLab does it: an unknown PRIVATE-TOKEN or Bearer
// token is refused with 401 everywhere. A CI/CD job token (JOB-TOKEN
// header) authenticates only the endpoints GitLab lists for job tokens
// (packages, releases, deployments, environments, …), none of which is
// served here, so on these endpoints it counts for nothing: the request is
// anonymous. Anonymous requests may read a public project, its merge
// requests and commits; a private project is "404 Project Not Found"; notes
// and /user need authentication ("401 Unauthorized"), as GitLab's notes API
// authenticates every request.
package gitlabemu

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxNoteLength is GitLab's limit on a note's body, in characters.
const MaxNoteLength = 1_000_000

// Merge request states, as the API spells them.
const (
	StateOpened = "opened"
	StateClosed = "closed"
	StateMerged = "merged"
	StateLocked = "locked" // while a merge is in progress
)

// Project is a stored project.
type Project struct {
	ID            int64  // 0: the next free ID
	Path          string // full path, e.g. "group/subgroup/project"
	Public        bool   // anonymous (and job-token) requests may read it
	DefaultBranch string // "" means "main"
}

// MergeRequest is a stored merge request.
type MergeRequest struct {
	IID          int64
	State        string // StateOpened ("" means opened), StateClosed, StateMerged or StateLocked
	Title        string
	SourceBranch string
	TargetBranch string // "" means the project's default branch
	SHA          string // the source branch's head
	Author       string // username; "" means "someone"
	// HeadPipelineID is the ID of the latest pipeline of SHA, 0 for none.
	HeadPipelineID int64
	// UpdatedAt is the merge request's updated_at; zero means the time
	// SetMergeRequest was called.
	UpdatedAt time.Time
}

// Commit is a stored commit, served by GET /projects/:id/repository/commits/:sha.
type Commit struct {
	SHA, Message, AuthorName, AuthorEmail string
	AuthoredDate, CommittedDate           time.Time
}

// Note is a stored merge request note.
type Note struct {
	ID        int64
	Body      string
	Author    string // username
	System    bool   // a system note ("added 1 commit")
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Call is one request the emulator served.
type Call struct {
	Method, Path string // Path as sent, still escaped
	Status       int
}

type user struct {
	id         int64
	username   string
	name       string
	bot        bool
	maintainer bool // may edit and delete anyone's notes
}

type mrKey struct {
	project int64
	iid     int64
}

type fault struct{ status int }

// Server is the emulator. It implements http.Handler.
type Server struct {
	mu        sync.Mutex
	users     map[string]*user  // username → user
	tokens    map[string]string // PRIVATE-TOKEN or Bearer token → username
	jobTokens map[string]int64  // CI_JOB_TOKEN → the job's project
	projects  map[int64]*Project
	mrs       map[mrKey]*MergeRequest
	notes     map[mrKey][]*Note
	commits   map[string]Commit // "<project id>@<sha>" → commit
	calls     []Call
	faults    []fault
	nextID    int64 // notes
	nextUser  int64
	nextProj  int64
	requestID int
	now       func() time.Time

	rateLimit int // per identity and minute; 0: no limit and no headers
	budgets   map[string]*budget
}

type budget struct {
	used  int
	reset time.Time
}

// New returns an empty emulator.
func New() *Server {
	return &Server{
		users:     map[string]*user{},
		tokens:    map[string]string{},
		jobTokens: map[string]int64{},
		projects:  map[int64]*Project{},
		mrs:       map[mrKey]*MergeRequest{},
		notes:     map[mrKey][]*Note{},
		commits:   map[string]Commit{},
		budgets:   map[string]*budget{},
		nextID:    5000,
		nextUser:  100,
		nextProj:  1,
		now:       time.Now,
	}
}

// AddProject stores a project and returns its ID.
func (s *Server) AddProject(p Project) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ID == 0 {
		for s.projects[s.nextProj] != nil {
			s.nextProj++
		}
		p.ID = s.nextProj
	}
	if p.DefaultBranch == "" {
		p.DefaultBranch = "main"
	}
	s.projects[p.ID] = &p
	return p.ID
}

// AddToken accepts token (PRIVATE-TOKEN or Bearer) as username's personal
// access token with the api scope; username may write notes and edit and
// delete its own.
func (s *Server) AddToken(token, username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = username
	s.who(username)
}

// AddMaintainerToken accepts token as username, a maintainer: GitLab lets
// maintainers edit and delete anyone's notes. Mark the action's token with
// it to test that the action itself declines to touch notes it did not
// write.
func (s *Server) AddMaintainerToken(token, username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = username
	s.who(username).maintainer = true
}

// AddProjectAccessToken accepts token as a project access token of
// project: its user is a bot, "project_<id>_bot_<n>", whose username it
// returns. maintainer gives it the Maintainer role.
func (s *Server) AddProjectAccessToken(token string, project int64, maintainer bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := fmt.Sprintf("project_%d_bot_%d", project, len(s.users)+1)
	u := s.who(name)
	u.bot, u.maintainer = true, maintainer
	u.name = fmt.Sprintf("project-%d-token", project)
	s.tokens[token] = name
	return name
}

// AddJobToken accepts token as a CI/CD job token of a job in project. It
// authenticates none of the emulated endpoints (see the package doc).
func (s *Server) AddJobToken(token string, project int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobTokens[token] = project
}

// SetMergeRequest stores (or replaces) a merge request of project.
func (s *Server) SetMergeRequest(project int64, mr MergeRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mr.State == "" {
		mr.State = StateOpened
	}
	if mr.Author == "" {
		mr.Author = "someone"
	}
	s.who(mr.Author)
	if mr.UpdatedAt.IsZero() {
		mr.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
	}
	s.mrs[mrKey{project, mr.IID}] = &mr
}

// AddCommit stores a commit of project.
func (s *Server) AddCommit(project int64, c Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits[fmt.Sprintf("%d@%s", project, c.SHA)] = c
}

// AddNote stores a note by username (who needs no token) on a merge
// request and returns its ID. No size limit applies.
func (s *Server) AddNote(project, iid int64, username, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.who(username)
	return s.add(mrKey{project, iid}, body, username, false).ID
}

// AddSystemNote stores a system note ("added 1 commit") by username.
func (s *Server) AddSystemNote(project, iid int64, username, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.who(username)
	return s.add(mrKey{project, iid}, body, username, true).ID
}

// Seed adds n notes by another user to a merge request, to exercise
// pagination.
func (s *Server) Seed(project, iid int64, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.who("someone")
	for i := 0; i < n; i++ {
		s.add(mrKey{project, iid}, fmt.Sprintf("unrelated note %d", i), "someone", false)
	}
}

// Notes returns a copy of a merge request's notes, oldest first.
func (s *Server) Notes(project, iid int64) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Note
	for _, n := range s.notes[mrKey{project, iid}] {
		out = append(out, *n)
	}
	return out
}

// UserID returns username's user ID (creating the user).
func (s *Server) UserID(username string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.who(username).id
}

// FailNext makes the next request answer with status and GitLab's body
// for it.
func (s *Server) FailNext(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{status: status})
}

// SetRateLimit limits every identity (a token, or the client's address
// when anonymous) to limit requests a minute, restarting the count, and
// turns on GitLab's RateLimit-* headers; over the limit a request is
// answered 429 with Retry-After. 0 turns limiting and the headers off.
func (s *Server) SetRateLimit(limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit = limit
	s.budgets = map[string]*budget{}
}

// SetClock replaces the emulator's clock.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Calls returns the requests served so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// URL is the CI_API_V4_URL of an emulator served at base.
func URL(base string) string { return strings.TrimSuffix(base, "/") + "/api/v4" }

func (s *Server) who(username string) *user {
	if u, ok := s.users[username]; ok {
		return u
	}
	s.nextUser++
	u := &user{id: s.nextUser, username: username, name: username}
	if username != "" {
		u.name = strings.ToUpper(username[:1]) + username[1:]
	}
	s.users[username] = u
	return u
}

func (s *Server) add(k mrKey, body, username string, system bool) *Note {
	s.nextID++
	now := s.now().UTC().Truncate(time.Millisecond)
	n := &Note{ID: s.nextID, Body: body, Author: username, System: system, CreatedAt: now, UpdatedAt: now}
	s.notes[k] = append(s.notes[k], n)
	return n
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.EscapedPath(), Status: rec.status})
	}()
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

// caller is who sent a request: nil for anonymous requests (and job
// tokens, which these endpoints do not take).
type caller struct {
	u   *user
	key string // rate limit key
}

// authenticate reads the request's credentials; ok is false when a
// personal, project or OAuth token was sent and is not known.
func (s *Server) authenticate(r *http.Request) (c caller, ok bool) {
	token := r.Header.Get("Private-Token")
	if token == "" {
		if t, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
			token = t
		}
	}
	if token == "" {
		// A JOB-TOKEN, valid or not, is not looked at by endpoints that
		// do not allow job tokens: the request is anonymous.
		host := r.RemoteAddr
		if h, _, found := strings.Cut(host, ":"); found {
			host = h
		}
		return caller{key: "ip:" + host}, true
	}
	name, known := s.tokens[token]
	if !known {
		return caller{key: "bad-token"}, false
	}
	return caller{u: s.users[name], key: "user:" + name}, true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requestID++
	w.Header().Set("X-Request-Id", fmt.Sprintf("01EMU%021d", s.requestID))
	who, ok := s.authenticate(r)
	if s.rateLimit > 0 && s.rate(w, who.key) {
		return
	}
	rest, found := strings.CutPrefix(r.URL.EscapedPath(), "/api/v4/")
	if !found {
		apiError(w, http.StatusNotFound, "error", "404 Not Found")
		return
	}
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		apiError(w, f.status, "message", fmt.Sprintf("%d %s", f.status, http.StatusText(f.status)))
		return
	}
	if !ok {
		apiError(w, http.StatusUnauthorized, "message", "401 Unauthorized")
		return
	}
	var parts []string
	for _, p := range strings.Split(strings.Trim(rest, "/"), "/") {
		u, err := url.PathUnescape(p)
		if err != nil {
			apiError(w, http.StatusBadRequest, "error", "400 Bad Request")
			return
		}
		parts = append(parts, u)
	}
	s.route(w, r, who.u, parts)
}

// rate counts a request against key's budget, sets GitLab's RateLimit-*
// headers, and answers 429 when the budget is spent.
func (s *Server) rate(w http.ResponseWriter, key string) (refused bool) {
	now := s.now()
	b := s.budgets[key]
	if b == nil || !now.Before(b.reset) {
		b = &budget{reset: now.Truncate(time.Minute).Add(time.Minute)}
		s.budgets[key] = b
	}
	b.used++
	h := w.Header()
	h.Set("RateLimit-Name", "throttle_authenticated_api")
	h.Set("RateLimit-Limit", strconv.Itoa(s.rateLimit))
	h.Set("RateLimit-Observed", strconv.Itoa(b.used))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(s.rateLimit-b.used, 0)))
	h.Set("RateLimit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
	h.Set("RateLimit-ResetTime", b.reset.UTC().Format(http.TimeFormat))
	if b.used <= s.rateLimit {
		return false
	}
	h.Set("Retry-After", strconv.FormatInt(int64(b.reset.Sub(now)/time.Second)+1, 10))
	h.Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = io.WriteString(w, "Retry later\n")
	return true
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, who *user, parts []string) {
	if len(parts) == 1 && parts[0] == "user" {
		if r.Method != http.MethodGet {
			apiError(w, http.StatusMethodNotAllowed, "error", "405 Not Allowed")
			return
		}
		if who == nil {
			apiError(w, http.StatusUnauthorized, "message", "401 Unauthorized")
			return
		}
		writeJSON(w, http.StatusOK, s.renderUser(r, who))
		return
	}
	if len(parts) < 2 || parts[0] != "projects" {
		apiError(w, http.StatusNotFound, "error", "404 Not Found")
		return
	}
	if len(parts) >= 5 && parts[2] == "merge_requests" && parts[4] == "notes" && who == nil {
		// The notes API authenticates every request first.
		apiError(w, http.StatusUnauthorized, "message", "401 Unauthorized")
		return
	}
	p := s.project(parts[1])
	if p == nil || !p.Public && who == nil {
		apiError(w, http.StatusNotFound, "message", "404 Project Not Found")
		return
	}
	parts = parts[2:]
	switch {
	case len(parts) == 0:
		if !get(w, r) {
			return
		}
		writeJSON(w, http.StatusOK, s.renderProject(r, p))
	case len(parts) == 3 && parts[0] == "repository" && parts[1] == "commits":
		if !get(w, r) {
			return
		}
		s.commit(w, p, parts[2])
	case len(parts) >= 2 && parts[0] == "merge_requests":
		iid, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			apiError(w, http.StatusBadRequest, "error", "merge_request_iid is invalid")
			return
		}
		k := mrKey{p.ID, iid}
		mr := s.mrs[k]
		if mr == nil {
			apiError(w, http.StatusNotFound, "message", "404 Merge Request Not Found")
			return
		}
		switch {
		case len(parts) == 2:
			if !get(w, r) {
				return
			}
			writeJSON(w, http.StatusOK, s.renderMR(r, p, mr))
		case len(parts) == 3 && parts[2] == "notes":
			switch r.Method {
			case http.MethodGet:
				s.list(w, r, p, mr)
			case http.MethodPost:
				body, ok := readBody(w, r, "Note")
				if !ok {
					return
				}
				n := s.add(k, body, who.username, false)
				writeJSON(w, http.StatusCreated, s.renderNote(r, p, mr, n))
			default:
				apiError(w, http.StatusMethodNotAllowed, "error", "405 Not Allowed")
			}
		case len(parts) == 4 && parts[2] == "notes":
			id, err := strconv.ParseInt(parts[3], 10, 64)
			if err != nil {
				apiError(w, http.StatusBadRequest, "error", "note_id is invalid")
				return
			}
			s.note(w, r, who, p, mr, id)
		default:
			apiError(w, http.StatusNotFound, "error", "404 Not Found")
		}
	default:
		apiError(w, http.StatusNotFound, "error", "404 Not Found")
	}
}

func get(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet {
		apiError(w, http.StatusMethodNotAllowed, "error", "405 Not Allowed")
		return false
	}
	return true
}

// project finds a project by ID or by full path (case-insensitive, as
// GitLab's lookup).
func (s *Server) project(id string) *Project {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return s.projects[n]
	}
	for _, p := range s.projects {
		if strings.EqualFold(p.Path, id) {
			return p
		}
	}
	return nil
}

// readBody reads a note's body (JSON or form encoded) and checks it as
// GitLab does: required, at most MaxNoteLength characters.
func readBody(w http.ResponseWriter, r *http.Request, what string) (string, bool) {
	var body *string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var in struct {
			Body *string `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			apiError(w, http.StatusBadRequest, "error", "400 Bad Request")
			return "", false
		}
		body = in.Body
	} else if err := r.ParseForm(); err == nil && r.Form.Has("body") {
		b := r.Form.Get("body")
		body = &b
	}
	if body == nil || strings.TrimSpace(*body) == "" {
		apiError(w, http.StatusBadRequest, "error", "body is missing")
		return "", false
	}
	if utf8.RuneCountInString(*body) > MaxNoteLength {
		prefix := what
		if r.Method == http.MethodPut {
			prefix = "Failed to save note"
		}
		apiError(w, http.StatusBadRequest, "message",
			fmt.Sprintf(`400 Bad request - %s {:note=>["is too long (maximum is %d characters)"]}`, prefix, MaxNoteLength))
		return "", false
	}
	return *body, true
}

// list serves a merge request's notes with GitLab's offset pagination:
// page and per_page (default 20, at most 100), sort (asc or desc, default
// desc) and order_by (created_at, the default, or updated_at).
func (s *Server) list(w http.ResponseWriter, r *http.Request, p *Project, mr *MergeRequest) {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 20
	}
	per = min(per, 100)
	page, _ := strconv.Atoi(q.Get("page"))
	if page <= 0 {
		page = 1
	}
	sortDir := q.Get("sort")
	if sortDir == "" {
		sortDir = "desc"
	}
	orderBy := q.Get("order_by")
	if orderBy == "" {
		orderBy = "created_at"
	}
	if sortDir != "asc" && sortDir != "desc" || orderBy != "created_at" && orderBy != "updated_at" {
		apiError(w, http.StatusBadRequest, "error", "sort, order_by does not have a valid value")
		return
	}
	all := append([]*Note(nil), s.notes[mrKey{p.ID, mr.IID}]...)
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		ta, tb := a.CreatedAt, b.CreatedAt
		if orderBy == "updated_at" {
			ta, tb = a.UpdatedAt, b.UpdatedAt
		}
		if !ta.Equal(tb) {
			if sortDir == "asc" {
				return ta.Before(tb)
			}
			return ta.After(tb)
		}
		if sortDir == "asc" {
			return a.ID < b.ID
		}
		return a.ID > b.ID
	})
	start := (page - 1) * per
	end := min(start+per, len(all))
	out := []map[string]any{}
	if start < len(all) {
		for _, n := range all[start:end] {
			out = append(out, s.renderNote(r, p, mr, n))
		}
	}
	pages := max((len(all)+per-1)/per, 1)
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Total", strconv.Itoa(len(all)))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	next, prev := "", ""
	if page < pages {
		next = strconv.Itoa(page + 1)
	}
	if page > 1 && page <= pages {
		prev = strconv.Itoa(page - 1)
	}
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
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
	if prev != "" {
		link(page-1, "prev")
	}
	if next != "" {
		link(page+1, "next")
	}
	link(1, "first")
	link(pages, "last")
	h.Set("Link", strings.Join(links, ", "))
	writeJSON(w, http.StatusOK, out)
}

// note serves GET, PUT and DELETE of one note. Editing and deleting need
// the note's author or a maintainer; system notes cannot be edited.
func (s *Server) note(w http.ResponseWriter, r *http.Request, who *user, p *Project, mr *MergeRequest, id int64) {
	k := mrKey{p.ID, mr.IID}
	i := -1
	for j, n := range s.notes[k] {
		if n.ID == id {
			i = j
		}
	}
	if i < 0 {
		apiError(w, http.StatusNotFound, "message", "404 Not found")
		return
	}
	n := s.notes[k][i]
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.renderNote(r, p, mr, n))
		return
	case http.MethodPut, http.MethodDelete:
	default:
		apiError(w, http.StatusMethodNotAllowed, "error", "405 Not Allowed")
		return
	}
	if n.Author != who.username && !who.maintainer || n.System && r.Method == http.MethodPut {
		apiError(w, http.StatusForbidden, "message", "403 Forbidden")
		return
	}
	if r.Method == http.MethodDelete {
		s.notes[k] = append(s.notes[k][:i:i], s.notes[k][i+1:]...)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body, ok := readBody(w, r, "Note")
	if !ok {
		return
	}
	n.Body = body
	n.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
	writeJSON(w, http.StatusOK, s.renderNote(r, p, mr, n))
}

func (s *Server) commit(w http.ResponseWriter, p *Project, sha string) {
	c, ok := s.commits[fmt.Sprintf("%d@%s", p.ID, sha)]
	if !ok {
		apiError(w, http.StatusNotFound, "message", "404 Commit Not Found")
		return
	}
	title, _, _ := strings.Cut(c.Message, "\n")
	writeJSON(w, http.StatusOK, map[string]any{
		"id":              c.SHA,
		"short_id":        c.SHA[:min(8, len(c.SHA))],
		"title":           title,
		"message":         c.Message,
		"author_name":     c.AuthorName,
		"author_email":    c.AuthorEmail,
		"authored_date":   stamp(c.AuthoredDate),
		"committer_name":  c.AuthorName,
		"committer_email": c.AuthorEmail,
		"committed_date":  stamp(c.CommittedDate),
		"created_at":      stamp(c.CommittedDate),
		"parent_ids":      []string{},
	})
}

func stamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func base(r *http.Request) string { return scheme(r) + "://" + r.Host }

func (s *Server) renderUser(r *http.Request, u *user) map[string]any {
	return map[string]any{
		"id":         u.id,
		"username":   u.username,
		"name":       u.name,
		"state":      "active",
		"bot":        u.bot,
		"avatar_url": fmt.Sprintf("%s/uploads/-/system/user/avatar/%d/avatar.png", base(r), u.id),
		"web_url":    base(r) + "/" + u.username,
	}
}

func (s *Server) renderProject(r *http.Request, p *Project) map[string]any {
	visibility := "private"
	if p.Public {
		visibility = "public"
	}
	name := p.Path[strings.LastIndex(p.Path, "/")+1:]
	return map[string]any{
		"id":                  p.ID,
		"name":                name,
		"path":                name,
		"path_with_namespace": p.Path,
		"default_branch":      p.DefaultBranch,
		"visibility":          visibility,
		"web_url":             base(r) + "/" + p.Path,
	}
}

func (s *Server) renderMR(r *http.Request, p *Project, mr *MergeRequest) map[string]any {
	target := mr.TargetBranch
	if target == "" {
		target = p.DefaultBranch
	}
	var mergedAt, closedAt, headPipeline any
	switch mr.State {
	case StateMerged:
		mergedAt = stamp(mr.UpdatedAt)
	case StateClosed:
		closedAt = stamp(mr.UpdatedAt)
	}
	if mr.HeadPipelineID != 0 {
		headPipeline = map[string]any{
			"id": mr.HeadPipelineID, "iid": mr.HeadPipelineID % 1000, "project_id": p.ID, "sha": mr.SHA,
			"ref": fmt.Sprintf("refs/merge-requests/%d/head", mr.IID), "status": "success", "source": "merge_request_event",
			"web_url": fmt.Sprintf("%s/%s/-/pipelines/%d", base(r), p.Path, mr.HeadPipelineID),
		}
	}
	return map[string]any{
		"id":                mr.IID + 900000 + p.ID*1000,
		"iid":               mr.IID,
		"project_id":        p.ID,
		"source_project_id": p.ID,
		"target_project_id": p.ID,
		"title":             mr.Title,
		"state":             mr.State,
		"created_at":        stamp(mr.UpdatedAt),
		"updated_at":        stamp(mr.UpdatedAt),
		"merged_at":         mergedAt,
		"closed_at":         closedAt,
		"source_branch":     mr.SourceBranch,
		"target_branch":     target,
		"sha":               mr.SHA,
		"author":            s.renderUser(r, s.who(mr.Author)),
		"head_pipeline":     headPipeline,
		"web_url":           fmt.Sprintf("%s/%s/-/merge_requests/%d", base(r), p.Path, mr.IID),
	}
}

func (s *Server) renderNote(r *http.Request, p *Project, mr *MergeRequest, n *Note) map[string]any {
	return map[string]any{
		"id":            n.ID,
		"type":          nil,
		"body":          n.Body,
		"author":        s.renderUser(r, s.who(n.Author)),
		"created_at":    stamp(n.CreatedAt),
		"updated_at":    stamp(n.UpdatedAt),
		"system":        n.System,
		"noteable_id":   mr.IID + 900000 + p.ID*1000,
		"noteable_type": "MergeRequest",
		"project_id":    p.ID,
		"noteable_iid":  mr.IID,
		"resolvable":    false,
		"confidential":  false,
		"internal":      false,
	}
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError writes GitLab's error body: {"message": ...} from the API's
// own checks, {"error": ...} from parameter validation and unknown routes.
func apiError(w http.ResponseWriter, status int, key, msg string) {
	writeJSON(w, status, map[string]string{key: msg})
}
