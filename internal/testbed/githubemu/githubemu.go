// Package githubemu is a stateful emulator of the parts of GitHub's REST and
// GraphQL APIs the action uses, served the way GitHub Enterprise Server serves
// them (REST under /api/v3/, GraphQL at /api/graphql), with GitHub's token
// checks, comment authorship rules, comment size limit, primary and secondary
// rate limits, Link-header pagination and error bodies. The real go-github
// client is tested against it.
//
// Endpoints:
//
//	GET    /api/v3/repos/{o}/{r}/issues/{n}/comments   list, oldest first, Link pagination
//	POST   /api/v3/repos/{o}/{r}/issues/{n}/comments   create (201)
//	GET    /api/v3/repos/{o}/{r}/issues/comments/{id}  get one
//	PATCH  /api/v3/repos/{o}/{r}/issues/comments/{id}  edit: author or admin only
//	DELETE /api/v3/repos/{o}/{r}/issues/comments/{id}  delete (204): author or admin only
//	GET    /api/v3/repos/{o}/{r}/commits/{sha}
//	GET    /api/v3/repos/{o}/{r}/pulls/{n}
//	GET    /api/v3/user                                403 for installation tokens
//	GET    /api/v3/rate_limit                          not counted against the limit
//	POST   /api/graphql                                query { viewer { login } } only
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
	"unicode/utf8"
)

// MaxCommentLength is GitHub's limit on an issue comment's body, in Unicode
// code points.
const MaxCommentLength = 65536

// DefaultRateLimit is the primary rate limit per identity and per hour that
// the emulator starts with (GitHub's limit for users and App installations).
const DefaultRateLimit = 5000

// Documentation URLs GitHub puts in its error bodies.
const (
	docRateLimit          = "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
	docSecondaryRateLimit = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	docComments           = "https://docs.github.com/rest/issues/comments"
	docCreateComment      = "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
	docUpdateComment      = "https://docs.github.com/rest/issues/comments#update-an-issue-comment"
	docDeleteComment      = "https://docs.github.com/rest/issues/comments#delete-an-issue-comment"
	docGetPull            = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"
	docGetUser            = "https://docs.github.com/rest/users/users#get-the-authenticated-user"
	docREST               = "https://docs.github.com/rest"
	docGraphQL            = "https://docs.github.com/graphql"
)

// Comment is a stored issue comment.
type Comment struct {
	ID        int64     `json:"id"`
	Body      string    `json:"body"`
	User      string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	number int // the issue or pull request it is on
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

// PullRequest is a stored pull request, served by GET /repos/{o}/{r}/pulls/{n}.
type PullRequest struct {
	// State is "open" or "closed"; empty means "open", and a merged pull
	// request is always "closed" (GitHub never reports an open merged one).
	State   string
	Merged  bool
	Draft   bool
	Title   string
	HeadRef string // branch name, e.g. "feature-x"
	HeadSHA string
	BaseRef string // empty means "main"
	// UpdatedAt is the pull request's updated_at; zero means the time
	// SetPullRequest was called.
	UpdatedAt time.Time
	// MergedAt and ClosedAt default to UpdatedAt when Merged or closed.
	MergedAt, ClosedAt time.Time
}

// identity is a GitHub account: a user or an App's bot user.
type identity struct {
	login          string
	id             int64
	installationID int64 // non-zero for installation (bot) tokens
	admin          bool  // may edit and delete anyone's comments
}

func (i *identity) bot() bool { return i.installationID != 0 }

func (i *identity) typ() string {
	if i.bot() {
		return "Bot"
	}
	return "User"
}

// budget is one identity's primary rate limit for one resource.
type budget struct {
	used  int
	reset time.Time
}

type fault struct {
	status     int
	secondary  bool
	retryAfter time.Duration
}

// Server is the emulator. It implements http.Handler.
type Server struct {
	mu         sync.Mutex
	tokens     map[string]string // token → login
	users      map[string]*identity
	comments   map[string][]*Comment
	commits    map[string]Commit      // "owner/repo@sha" → commit
	pulls      map[string]PullRequest // key(owner, repo, number) → pull request
	nextID     int64
	nextUserID int64
	calls      []Call
	faults     []fault
	rateLimit  int
	rateReset  time.Time // zero: an hour after an identity's first request
	budgets    map[string]*budget
	now        func() time.Time
	requestID  int
}

// New returns an emulator that accepts the given token for the user login. A
// login ending in "[bot]" is an App installation's bot (as GITHUB_TOKEN's
// "github-actions[bot]" is).
func New(token, login string) *Server {
	s := &Server{
		tokens:     map[string]string{},
		users:      map[string]*identity{},
		comments:   map[string][]*Comment{},
		commits:    map[string]Commit{},
		pulls:      map[string]PullRequest{},
		budgets:    map[string]*budget{},
		nextID:     1000,
		nextUserID: 100,
		rateLimit:  DefaultRateLimit,
		now:        time.Now,
	}
	s.AddToken(token, login)
	return s
}

// AddToken accepts another token, as another user (a PAT or an App). A login
// ending in "[bot]" is an App installation's bot.
func (s *Server) AddToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = login
	s.who(login)
}

// AddAdminToken accepts token as login and gives login admin (or write)
// access to every repository: it may edit and delete anyone's comments.
//
// Real GitHub lets anyone with write access to the repository edit and delete
// others' comments, and an Actions GITHUB_TOKEN with issues or pull-requests
// write permission has it. Mark the action's token with AddAdminToken to test
// that the action itself declines to touch comments it did not write.
func (s *Server) AddAdminToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = login
	s.who(login).admin = true
}

// AddInstallationToken accepts token as an App installation token whose bot
// user is botLogin (e.g. "my-app[bot]"): its comments are by a "Bot", GET
// /user refuses it, and GraphQL's viewer is the bot.
func (s *Server) AddInstallationToken(token, botLogin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = botLogin
	id := s.who(botLogin)
	if id.installationID == 0 {
		id.installationID = 40000000 + id.id
	}
}

// AddComment stores a comment by login (who needs no token) on an issue or
// pull request and returns its ID. No size limit applies.
func (s *Server) AddComment(owner, repo string, number int, login, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.who(login)
	return s.add(owner, repo, number, body, login).ID
}

// Seed adds n comments by other users to an issue, to exercise pagination.
func (s *Server) Seed(owner, repo string, number, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.who("someone")
	for i := 0; i < n; i++ {
		s.add(owner, repo, number, fmt.Sprintf("unrelated comment %d", i), "someone")
	}
}

// AddCommit stores a commit of owner/repo.
func (s *Server) AddCommit(owner, repo string, c Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits[owner+"/"+repo+"@"+c.SHA] = c
}

// SetPullRequest stores (or replaces) pull request number of owner/repo.
func (s *Server) SetPullRequest(owner, repo string, number int, pr PullRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr.UpdatedAt.IsZero() {
		pr.UpdatedAt = s.now().UTC().Truncate(time.Second)
	}
	if pr.Merged {
		pr.State = "closed"
		if pr.MergedAt.IsZero() {
			pr.MergedAt = pr.UpdatedAt
		}
	}
	if pr.State == "" {
		pr.State = "open"
	}
	if pr.State == "closed" && pr.ClosedAt.IsZero() {
		pr.ClosedAt = pr.UpdatedAt
	}
	if pr.BaseRef == "" {
		pr.BaseRef = "main"
	}
	s.pulls[key(owner, repo, number)] = pr
}

// FailNext makes the next request answer with status.
func (s *Server) FailNext(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{status: status})
}

// FailNextSecondaryRateLimit makes the next request hit a secondary rate
// limit: status (0 means 403, which go-github turns into
// *github.AbuseRateLimitError; go-github v66 reports a 429 as a plain
// *github.ErrorResponse), a Retry-After header of retryAfter (rounded up to
// whole seconds; none if zero) and GitHub's message.
func (s *Server) FailNextSecondaryRateLimit(status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		status = http.StatusForbidden
	}
	s.faults = append(s.faults, fault{status: status, secondary: true, retryAfter: retryAfter})
}

// SetRateLimit sets every identity's primary rate limit to limit requests
// (per resource: REST "core" and "graphql" are counted apart), restarts the
// count, and makes the window end at reset (zero: an hour after each
// identity's next request). When a window ends the count restarts and a new
// one-hour window begins.
func (s *Server) SetRateLimit(limit int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit = limit
	s.rateReset = reset
	s.budgets = map[string]*budget{}
}

// Comments returns a copy of an issue's comments, oldest first.
func (s *Server) Comments(owner, repo string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.sorted(key(owner, repo, number)) {
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

// who returns login's identity, creating it. Logins ending in "[bot]" are
// App installations' bots.
func (s *Server) who(login string) *identity {
	if id, ok := s.users[login]; ok {
		return id
	}
	s.nextUserID++
	id := &identity{login: login, id: s.nextUserID}
	if login == "github-actions[bot]" {
		id.id = 41898282 // its ID on github.com
	}
	if strings.HasSuffix(login, "[bot]") {
		id.installationID = 40000000 + s.nextUserID
	}
	s.users[login] = id
	return id
}

func (s *Server) add(owner, repo string, number int, body, user string) *Comment {
	s.nextID++
	now := s.now().UTC().Truncate(time.Second)
	c := &Comment{ID: s.nextID, Body: body, User: user, CreatedAt: now, UpdatedAt: now, number: number}
	k := key(owner, repo, number)
	s.comments[k] = append(s.comments[k], c)
	return c
}

// sorted returns an issue's comments, oldest (lowest ID) first.
func (s *Server) sorted(k string) []*Comment {
	all := s.comments[k]
	sort.SliceStable(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return all
}

// find returns comment id of owner/repo and the issue key it is under.
func (s *Server) find(owner, repo string, id int64) (string, int, *Comment) {
	for k, cs := range s.comments {
		if !strings.HasPrefix(k, owner+"/"+repo+"#") {
			continue
		}
		for i, c := range cs {
			if c.ID == id {
				return k, i, c
			}
		}
	}
	return "", -1, nil
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

func token(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return t
	}
	if t, ok := strings.CutPrefix(auth, "token "); ok {
		return t
	}
	return ""
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requestID++
	w.Header().Set("X-GitHub-Request-Id", fmt.Sprintf("0000:%04X:%06X:%06X:00000000", s.requestID, s.requestID, s.requestID))
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")

	graphql := r.URL.Path == "/api/graphql"
	path, rest := strings.CutPrefix(r.URL.Path, "/api/v3/")
	resource := "core"
	if graphql {
		resource = "graphql"
	}
	login, authed := s.tokens[token(r)]
	var who *identity
	if authed {
		who = s.who(login)
	}
	// Every response carries the rate limit headers; /rate_limit is free.
	exhausted := s.rate(w, who, resource, !(rest && strings.Trim(path, "/") == "rate_limit"))

	if !rest && !graphql {
		apiError(w, http.StatusNotFound, "Not Found (the emulator serves the REST API under /api/v3/ and GraphQL at /api/graphql)", docREST)
		return
	}
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		if f.secondary {
			if f.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.FormatInt(int64((f.retryAfter+time.Second-1)/time.Second), 10))
			}
			apiError(w, f.status, fmt.Sprintf("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID %s.", w.Header().Get("X-GitHub-Request-Id")), docSecondaryRateLimit)
			return
		}
		apiError(w, f.status, http.StatusText(f.status), docComments)
		return
	}
	if !authed {
		doc := docREST
		if graphql {
			doc = docGraphQL
		}
		apiError(w, http.StatusUnauthorized, "Bad credentials", doc)
		return
	}
	if exhausted {
		msg := fmt.Sprintf("API rate limit exceeded for user ID %d.", who.id)
		if who.bot() {
			msg = fmt.Sprintf("API rate limit exceeded for installation ID %d.", who.installationID)
		}
		if graphql {
			// GitHub answers an exhausted GraphQL budget with 200 and an error.
			writeJSON(w, http.StatusOK, map[string]any{"errors": []any{map[string]any{
				"type": "RATE_LIMITED", "code": "graphql_rate_limit",
				"message": strings.Replace(msg, "exceeded", "already exceeded", 1),
			}}})
			return
		}
		apiError(w, http.StatusForbidden, msg, docRateLimit)
		return
	}
	if graphql {
		s.graphql(w, r, who)
		return
	}
	s.rest(w, r, who, strings.Split(strings.Trim(path, "/"), "/"))
}

// rate counts a request of who (nil: unauthenticated) against its resource
// budget if count, sets the X-RateLimit-* headers, and reports whether the
// budget was already exhausted. Unauthenticated requests show GitHub's 60 per
// hour but are never refused for it.
func (s *Server) rate(w http.ResponseWriter, who *identity, resource string, count bool) (exhausted bool) {
	now := s.now()
	limit, k := s.rateLimit, resource
	if who == nil {
		limit = 60
	} else {
		k = who.login + "\x00" + resource
	}
	b, ok := s.budgets[k]
	if !ok {
		b = &budget{reset: s.rateReset}
		if b.reset.IsZero() || who == nil {
			b.reset = now.Add(time.Hour)
		}
		s.budgets[k] = b
	}
	if !now.Before(b.reset) {
		b.used = 0
		b.reset = now.Add(time.Hour)
	}
	switch {
	case count && who != nil && b.used >= limit:
		exhausted = true
	case count && b.used < limit:
		b.used++
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(limit-b.used, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(min(b.used, limit)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", resource)
	return exhausted
}

func (s *Server) rest(w http.ResponseWriter, r *http.Request, who *identity, parts []string) {
	switch {
	case len(parts) == 1 && parts[0] == "user" && r.Method == http.MethodGet:
		s.user(w, r, who)
		return
	case len(parts) == 1 && parts[0] == "rate_limit" && r.Method == http.MethodGet:
		s.rateLimitStatus(w, who)
		return
	case len(parts) < 4 || parts[0] != "repos":
		apiError(w, http.StatusNotFound, "Not Found", docREST)
		return
	}
	owner, repo := parts[1], parts[2]
	switch {
	// repos/{owner}/{repo}/commits/{sha}
	case len(parts) == 5 && parts[3] == "commits" && r.Method == http.MethodGet:
		s.commit(w, owner, repo, parts[4])
	// repos/{owner}/{repo}/pulls/{number}
	case len(parts) == 5 && parts[3] == "pulls" && r.Method == http.MethodGet:
		n, err := strconv.Atoi(parts[4])
		if err != nil {
			apiError(w, http.StatusNotFound, "Not Found", docGetPull)
			return
		}
		s.pull(w, r, owner, repo, n)
	// repos/{owner}/{repo}/issues/comments/{id}
	case len(parts) == 6 && parts[3] == "issues" && parts[4] == "comments":
		id, err := strconv.ParseInt(parts[5], 10, 64)
		if err != nil {
			apiError(w, http.StatusNotFound, "Not Found", docComments)
			return
		}
		s.comment(w, r, who, owner, repo, id)
	// repos/{owner}/{repo}/issues/{number}/comments
	case len(parts) == 6 && parts[3] == "issues" && parts[5] == "comments":
		number, err := strconv.Atoi(parts[4])
		if err != nil {
			apiError(w, http.StatusNotFound, "Not Found", docComments)
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.list(w, r, owner, repo, number)
		case http.MethodPost:
			body, ok := readBody(w, r, docCreateComment)
			if !ok {
				return
			}
			c := s.add(owner, repo, number, body, who.login)
			writeJSON(w, http.StatusCreated, s.render(r, owner, repo, c))
		default:
			apiError(w, http.StatusNotFound, "Not Found", docComments)
		}
	default:
		apiError(w, http.StatusNotFound, "Not Found", docREST)
	}
}

// readBody decodes a comment's {"body": ...} and checks its length, answering
// 422 as GitHub does when it cannot.
func readBody(w http.ResponseWriter, r *http.Request, doc string) (string, bool) {
	var in struct {
		Body *string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON", doc)
		return "", false
	}
	if in.Body == nil {
		apiError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"body\" wasn't supplied.", doc)
		return "", false
	}
	if utf8.RuneCountInString(*in.Body) > MaxCommentLength {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"message": "Validation Failed",
			"errors": []any{map[string]any{
				"resource": "IssueComment",
				"code":     "custom",
				"field":    "body",
				"message":  fmt.Sprintf("body is too long (maximum is %d characters)", MaxCommentLength),
			}},
			"documentation_url": doc,
		})
		return "", false
	}
	return *in.Body, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, owner, repo string, number int) {
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
	all := s.sorted(key(owner, repo, number))
	start := (page - 1) * per
	end := min(start+per, len(all))
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

// comment serves GET, PATCH and DELETE of one comment. Editing and deleting
// need the comment's author or an admin.
func (s *Server) comment(w http.ResponseWriter, r *http.Request, who *identity, owner, repo string, id int64) {
	doc := docComments
	switch r.Method {
	case http.MethodPatch:
		doc = docUpdateComment
	case http.MethodDelete:
		doc = docDeleteComment
	case http.MethodGet:
	default:
		apiError(w, http.StatusNotFound, "Not Found", doc)
		return
	}
	k, i, c := s.find(owner, repo, id)
	if c == nil {
		apiError(w, http.StatusNotFound, "Not Found", doc)
		return
	}
	if r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, s.render(r, owner, repo, c))
		return
	}
	if c.User != who.login && !who.admin {
		msg := "Resource not accessible by personal access token"
		if who.bot() {
			msg = "Resource not accessible by integration"
		}
		apiError(w, http.StatusForbidden, msg, doc)
		return
	}
	if r.Method == http.MethodDelete {
		s.comments[k] = append(s.comments[k][:i:i], s.comments[k][i+1:]...)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body, ok := readBody(w, r, doc)
	if !ok {
		return
	}
	c.Body = body
	c.UpdatedAt = s.now().UTC().Truncate(time.Second)
	writeJSON(w, http.StatusOK, s.render(r, owner, repo, c))
}

func (s *Server) commit(w http.ResponseWriter, owner, repo, sha string) {
	c, ok := s.commits[owner+"/"+repo+"@"+sha]
	if !ok {
		apiError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+sha, "https://docs.github.com/rest/commits/commits#get-a-commit")
		return
	}
	person := map[string]any{"name": c.AuthorName, "email": c.AuthorEmail, "date": c.Date.UTC().Format(time.RFC3339)}
	writeJSON(w, http.StatusOK, map[string]any{
		"sha":    c.SHA,
		"commit": map[string]any{"message": c.Message, "author": person, "committer": person},
		"author": map[string]any{"login": c.AuthorLogin, "avatar_url": c.AvatarURL},
	})
}

func (s *Server) pull(w http.ResponseWriter, r *http.Request, owner, repo string, number int) {
	pr, ok := s.pulls[key(owner, repo, number)]
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found", docGetPull)
		return
	}
	base := scheme(r) + "://" + r.Host
	stamp := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339)
	}
	var mergedAt, closedAt any
	if pr.Merged {
		mergedAt = stamp(pr.MergedAt)
	}
	if pr.State == "closed" {
		closedAt = stamp(pr.ClosedAt)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":         int64(number) + 500000,
		"node_id":    fmt.Sprintf("PR_%d", int64(number)+500000),
		"number":     number,
		"state":      pr.State,
		"title":      pr.Title,
		"draft":      pr.Draft,
		"merged":     pr.Merged,
		"url":        fmt.Sprintf("%s/api/v3/repos/%s/%s/pulls/%d", base, owner, repo, number),
		"html_url":   fmt.Sprintf("%s/%s/%s/pull/%d", base, owner, repo, number),
		"created_at": stamp(pr.UpdatedAt),
		"updated_at": stamp(pr.UpdatedAt),
		"merged_at":  mergedAt,
		"closed_at":  closedAt,
		"head":       map[string]any{"ref": pr.HeadRef, "sha": pr.HeadSHA, "label": owner + ":" + pr.HeadRef},
		"base":       map[string]any{"ref": pr.BaseRef, "label": owner + ":" + pr.BaseRef},
	})
}

// user serves GET /user, which installation tokens may not call.
func (s *Server) user(w http.ResponseWriter, r *http.Request, who *identity) {
	if who.bot() {
		apiError(w, http.StatusForbidden, "Resource not accessible by integration", docGetUser)
		return
	}
	out := s.renderUser(r, who)
	out["site_admin"] = false
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) rateLimitStatus(w http.ResponseWriter, who *identity) {
	res := map[string]any{}
	for _, resource := range []string{"core", "graphql"} {
		rec := &headerOnly{h: http.Header{}}
		s.rate(rec, who, resource, false)
		n := func(h string) int64 { v, _ := strconv.ParseInt(rec.h.Get(h), 10, 64); return v }
		res[resource] = map[string]any{
			"limit":     n("X-RateLimit-Limit"),
			"used":      n("X-RateLimit-Used"),
			"remaining": n("X-RateLimit-Remaining"),
			"reset":     n("X-RateLimit-Reset"),
			"resource":  resource,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"resources": res, "rate": res["core"]})
}

type headerOnly struct{ h http.Header }

func (h *headerOnly) Header() http.Header         { return h.h }
func (h *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerOnly) WriteHeader(int)             {}

func (s *Server) renderUser(r *http.Request, id *identity) map[string]any {
	base := scheme(r) + "://" + r.Host
	nodePrefix := "U_"
	if id.bot() {
		nodePrefix = "BOT_"
	}
	return map[string]any{
		"login":    id.login,
		"id":       id.id,
		"node_id":  nodePrefix + strconv.FormatInt(id.id, 10),
		"type":     id.typ(),
		"url":      base + "/api/v3/users/" + url.PathEscape(id.login),
		"html_url": base + "/" + strings.TrimSuffix(id.login, "[bot]"),
	}
}

func (s *Server) render(r *http.Request, owner, repo string, c *Comment) map[string]any {
	base := scheme(r) + "://" + r.Host
	kind := "issues"
	if _, ok := s.pulls[key(owner, repo, c.number)]; ok {
		kind = "pull"
	}
	return map[string]any{
		"id":         c.ID,
		"node_id":    "IC_" + strconv.FormatInt(c.ID, 10),
		"url":        fmt.Sprintf("%s/api/v3/repos/%s/%s/issues/comments/%d", base, owner, repo, c.ID),
		"html_url":   fmt.Sprintf("%s/%s/%s/%s/%d#issuecomment-%d", base, owner, repo, kind, c.number, c.ID),
		"issue_url":  fmt.Sprintf("%s/api/v3/repos/%s/%s/issues/%d", base, owner, repo, c.number),
		"body":       c.Body,
		"user":       s.renderUser(r, s.who(c.User)),
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

func apiError(w http.ResponseWriter, status int, msg, doc string) {
	writeJSON(w, status, map[string]string{
		"message":           msg,
		"documentation_url": doc,
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
