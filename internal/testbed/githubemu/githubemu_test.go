package githubemu

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v66/github"
)

const (
	botToken   = "ghs_bot"   // New's token: GITHUB_TOKEN, github-actions[bot]
	janeToken  = "ghp_jane"  // a user's PAT
	adminToken = "ghp_admin" // a repository admin's PAT
	appToken   = "ghs_app"   // an App installation token
	marker     = "<!-- dagster-branch-deploy:x -->"
)

func newEmu(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	emu := New(botToken, "github-actions[bot]")
	emu.AddToken(janeToken, "jane")
	emu.AddAdminToken(adminToken, "octo-admin")
	emu.AddInstallationToken(appToken, "my-app[bot]")
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv
}

func client(t *testing.T, srv *httptest.Server, tok string) *github.Client {
	t.Helper()
	c, err := github.NewClient(nil).WithAuthToken(tok).WithEnterpriseURLs(srv.URL+"/api/v3/", srv.URL+"/api/v3/")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(resp *github.Response) int {
	if resp == nil || resp.Response == nil {
		return 0
	}
	return resp.StatusCode
}

func errMessage(err error) string {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		return er.Message
	}
	return ""
}

func TestCommentAuthorship(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		token      string
		target     string // "own": the bot's comment; "attacker": mallory's
		op         string // "edit", "delete"
		unknown    bool
		wantStatus int
		wantMsg    string
	}{
		{"author edits", botToken, "own", "edit", false, 200, ""},
		{"author deletes", botToken, "own", "delete", false, 204, ""},
		{"other user edits", janeToken, "own", "edit", false, 403, "Resource not accessible by personal access token"},
		{"other user deletes", janeToken, "own", "delete", false, 403, "Resource not accessible by personal access token"},
		{"installation edits attacker's", botToken, "attacker", "edit", false, 403, "Resource not accessible by integration"},
		{"installation deletes attacker's", botToken, "attacker", "delete", false, 403, "Resource not accessible by integration"},
		{"other app edits", appToken, "own", "edit", false, 403, "Resource not accessible by integration"},
		{"admin edits attacker's", adminToken, "attacker", "edit", false, 200, ""},
		{"admin deletes attacker's", adminToken, "attacker", "delete", false, 204, ""},
		{"admin edits bot's", adminToken, "own", "edit", false, 200, ""},
		{"edit unknown id", botToken, "own", "edit", true, 404, "Not Found"},
		{"delete unknown id", adminToken, "own", "delete", true, 404, "Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			emu, srv := newEmu(t)
			ctx := context.Background()
			own, _, err := client(t, srv, botToken).Issues.CreateComment(ctx, "o", "r", 7, &github.IssueComment{Body: github.String("ours " + marker)})
			if err != nil {
				t.Fatal(err)
			}
			attacker := emu.AddComment("o", "r", 7, "mallory", "pwned "+marker)
			id := own.GetID()
			if tc.target == "attacker" {
				id = attacker
			}
			if tc.unknown {
				id = 999999
			}
			before := emu.Comments("o", "r", 7)
			c := client(t, srv, tc.token)
			var resp *github.Response
			switch tc.op {
			case "edit":
				var got *github.IssueComment
				got, resp, err = c.Issues.EditComment(ctx, "o", "r", id, &github.IssueComment{Body: github.String("edited")})
				if err == nil && (got.GetBody() != "edited" || got.GetID() != id) {
					t.Errorf("edited comment = %+v", got)
				}
			case "delete":
				resp, err = c.Issues.DeleteComment(ctx, "o", "r", id)
			}
			if got := status(resp); got != tc.wantStatus {
				t.Fatalf("status = %d, want %d (err %v)", got, tc.wantStatus, err)
			}
			after := emu.Comments("o", "r", 7)
			if tc.wantStatus >= 300 {
				var er *github.ErrorResponse
				if !errors.As(err, &er) || er.Message != tc.wantMsg || !strings.HasPrefix(er.DocumentationURL, "https://docs.github.com/") {
					t.Errorf("err = %#v, want message %q", err, tc.wantMsg)
				}
				if len(after) != len(before) || after[0].Body != before[0].Body || after[1].Body != before[1].Body {
					t.Errorf("a refused request changed the comments: %+v", after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch tc.op {
			case "edit":
				for _, cm := range after {
					if cm.ID == id && cm.Body != "edited" {
						t.Errorf("stored body = %q", cm.Body)
					}
				}
			case "delete":
				if len(after) != 1 || after[0].ID == id {
					t.Errorf("after delete: %+v", after)
				}
				if _, resp, _ := c.Issues.GetComment(ctx, "o", "r", id); status(resp) != 404 {
					t.Errorf("deleted comment: GET status %d", status(resp))
				}
			}
		})
	}
}

func TestDeleteIsNoContent(t *testing.T) {
	t.Parallel()
	emu, srv := newEmu(t)
	id := emu.AddComment("o", "r", 1, "jane", "hi")
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/v3/repos/o/r/issues/comments/"+itoa(id), nil)
	req.Header.Set("Authorization", "Bearer "+janeToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 204 || len(b) != 0 {
		t.Errorf("DELETE: %d %q", resp.StatusCode, b)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestBodySizeLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"ascii at limit", strings.Repeat("a", 65536), true},
		{"ascii over limit", strings.Repeat("a", 65537), false},
		{"2-byte runes at limit", strings.Repeat("é", 65536), true},
		{"4-byte runes at limit", strings.Repeat("😀", 65536), true},
		{"2-byte runes over limit", strings.Repeat("é", 65537), false},
		{"mixed over limit", strings.Repeat("é", 65535) + "ab", false},
	}
	for _, tc := range tests {
		for _, op := range []string{"create", "edit"} {
			t.Run(tc.name+"/"+op, func(t *testing.T) {
				t.Parallel()
				emu, srv := newEmu(t)
				c := client(t, srv, botToken)
				ctx := context.Background()
				var resp *github.Response
				var err error
				var id int64
				if op == "create" {
					_, resp, err = c.Issues.CreateComment(ctx, "o", "r", 3, &github.IssueComment{Body: github.String(tc.body)})
				} else {
					first, _, cerr := c.Issues.CreateComment(ctx, "o", "r", 3, &github.IssueComment{Body: github.String("short")})
					if cerr != nil {
						t.Fatal(cerr)
					}
					id = first.GetID()
					_, resp, err = c.Issues.EditComment(ctx, "o", "r", id, &github.IssueComment{Body: github.String(tc.body)})
				}
				stored := emu.Comments("o", "r", 3)
				if tc.ok {
					if err != nil {
						t.Fatalf("err = %v", err)
					}
					if len(stored) != 1 || stored[0].Body != tc.body {
						t.Errorf("stored %d comments", len(stored))
					}
					return
				}
				if status(resp) != 422 {
					t.Fatalf("status = %d, want 422 (err %v)", status(resp), err)
				}
				var er *github.ErrorResponse
				if !errors.As(err, &er) {
					t.Fatalf("err = %T %v", err, err)
				}
				want := github.Error{Resource: "IssueComment", Code: "custom", Field: "body", Message: "body is too long (maximum is 65536 characters)"}
				if er.Message != "Validation Failed" || len(er.Errors) != 1 || er.Errors[0] != want || !strings.HasPrefix(er.DocumentationURL, "https://docs.github.com/rest/issues/comments") {
					t.Errorf("error = %+v", er)
				}
				switch op {
				case "create":
					if len(stored) != 0 {
						t.Errorf("a refused comment was stored")
					}
				case "edit":
					if len(stored) != 1 || stored[0].Body != "short" {
						t.Errorf("a refused edit changed the comment")
					}
				}
			})
		}
	}
}

func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	emu, srv := newEmu(t)
	ctx := context.Background()
	c := client(t, srv, botToken)
	start := time.Now()
	for i := 1; i <= 2; i++ {
		_, resp, err := c.Issues.ListComments(ctx, "o", "r", 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Rate.Limit != 5000 || resp.Rate.Remaining != 5000-i {
			t.Errorf("request %d: rate = %+v", i, resp.Rate)
		}
		if reset := resp.Rate.Reset.Time; reset.Before(start.Add(59*time.Minute)) || reset.After(start.Add(61*time.Minute)) {
			t.Errorf("reset = %v", reset)
		}
		if h := resp.Header; h.Get("X-RateLimit-Used") != itoa(int64(i)) || h.Get("X-RateLimit-Resource") != "core" {
			t.Errorf("headers = %v", h)
		}
	}
	// Budgets are per identity: jane's is untouched.
	if _, resp, err := client(t, srv, janeToken).Issues.ListComments(ctx, "o", "r", 1, nil); err != nil || resp.Rate.Remaining != 4999 {
		t.Errorf("jane: %v %+v", err, resp.Rate)
	}
	// A bad token gets 401 with the unauthenticated limit's headers.
	_, resp, err := client(t, srv, "nope").Issues.ListComments(ctx, "o", "r", 1, nil)
	if status(resp) != 401 || errMessage(err) != "Bad credentials" || resp.Rate.Limit != 60 || resp.Rate.Remaining != 59 {
		t.Errorf("bad token: %d %v %+v", status(resp), err, resp.Rate)
	}
	// GET /rate_limit is free and reports both resources.
	limits, resp, err := c.RateLimit.Get(ctx)
	if err != nil || limits.Core.Limit != 5000 || limits.Core.Remaining != 4998 || limits.GraphQL.Remaining != 5000 || resp.Rate.Remaining != 4998 {
		t.Errorf("rate_limit: %v %+v %+v", err, limits, resp.Rate)
	}
	_ = emu
}

func TestRateLimitExhaustion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, token, wantMsg string
	}{
		{"installation", botToken, "API rate limit exceeded for installation ID "},
		{"app", appToken, "API rate limit exceeded for installation ID "},
		{"user", janeToken, "API rate limit exceeded for user ID "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			emu, srv := newEmu(t)
			reset := time.Now().Add(10 * time.Minute).Truncate(time.Second)
			emu.SetRateLimit(3, reset)
			ctx := context.Background()
			c := client(t, srv, tc.token)
			for i := 1; i <= 3; i++ {
				_, resp, err := c.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: github.String("x")})
				if err != nil || resp.Rate.Remaining != 3-i || resp.Rate.Limit != 3 || !resp.Rate.Reset.Time.Equal(reset) {
					t.Fatalf("request %d: %v %+v", i, err, resp.Rate)
				}
			}
			// go-github itself refuses once it saw Remaining: 0 ...
			calls := len(emu.Calls())
			_, _, err := c.Issues.ListComments(ctx, "o", "r", 1, nil)
			var rl *github.RateLimitError
			if !errors.As(err, &rl) || len(emu.Calls()) != calls {
				t.Fatalf("err = %T %v, want go-github's own *github.RateLimitError", err, err)
			}
			// ... and the server refuses a client that did not.
			_, resp, err := client(t, srv, tc.token).Issues.ListComments(ctx, "o", "r", 1, nil)
			if !errors.As(err, &rl) {
				t.Fatalf("err = %T %v, want *github.RateLimitError", err, err)
			}
			if status(resp) != 403 || rl.Rate.Remaining != 0 || rl.Rate.Limit != 3 || !rl.Rate.Reset.Time.Equal(reset) || !strings.HasPrefix(rl.Message, tc.wantMsg) {
				t.Errorf("rate limit error = %+v (status %d)", rl, status(resp))
			}
			var body struct {
				Message          string `json:"message"`
				DocumentationURL string `json:"documentation_url"`
			}
			if calls := emu.Calls(); calls[len(calls)-1].Status != 403 {
				t.Errorf("last call = %+v", calls[len(calls)-1])
			}
			// A raw request sees GitHub's body.
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v3/repos/o/r/issues/1/comments", nil)
			req.Header.Set("Authorization", "token "+tc.token)
			raw, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Body.Close()
			if err := json.NewDecoder(raw.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if raw.StatusCode != 403 || raw.Header.Get("X-RateLimit-Remaining") != "0" || raw.Header.Get("X-RateLimit-Used") != "3" ||
				!strings.HasPrefix(body.Message, tc.wantMsg) || body.DocumentationURL != "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting" {
				t.Errorf("raw: %d %v %+v", raw.StatusCode, raw.Header, body)
			}
			// Others are not limited, and nothing was stored.
			if _, _, err := client(t, srv, adminToken).Issues.ListComments(ctx, "o", "r", 1, nil); err != nil {
				t.Errorf("admin: %v", err)
			}
			if n := len(emu.Comments("o", "r", 1)); n != 3 {
				t.Errorf("%d comments", n)
			}
		})
	}
}

func TestRateLimitWindowResets(t *testing.T) {
	t.Parallel()
	emu, srv := newEmu(t)
	emu.SetRateLimit(1, time.Now().Add(-time.Second)) // the window is already over
	c := client(t, srv, botToken)
	_, resp, err := c.Issues.ListComments(context.Background(), "o", "r", 1, nil)
	if err != nil || resp.Rate.Remaining != 0 || resp.Rate.Reset.Time.Before(time.Now().Add(59*time.Minute)) {
		t.Errorf("%v %+v", err, resp.Rate)
	}
}

func TestSecondaryRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter time.Duration
		wantStatus int
		wantAbuse  bool
		wantHeader string
	}{
		{"403 with Retry-After", 0, 30 * time.Second, 403, true, "30"},
		{"403 rounds up", http.StatusForbidden, 1500 * time.Millisecond, 403, true, "2"},
		{"429", http.StatusTooManyRequests, 60 * time.Second, 429, false, "60"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			emu, srv := newEmu(t)
			emu.FailNextSecondaryRateLimit(tc.status, tc.retryAfter)
			ctx := context.Background()
			_, resp, err := client(t, srv, botToken).Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: github.String("x")})
			if status(resp) != tc.wantStatus || resp.Header.Get("Retry-After") != tc.wantHeader || resp.Header.Get("X-RateLimit-Remaining") == "0" {
				t.Fatalf("status %d, headers %v", status(resp), resp.Header)
			}
			var abuse *github.AbuseRateLimitError
			if tc.wantAbuse {
				if !errors.As(err, &abuse) {
					t.Fatalf("err = %T %v, want *github.AbuseRateLimitError", err, err)
				}
				if abuse.RetryAfter == nil || *abuse.RetryAfter != time.Duration(mustAtoi(t, tc.wantHeader))*time.Second ||
					!strings.HasPrefix(abuse.Message, "You have exceeded a secondary rate limit") {
					t.Errorf("abuse error = %+v", abuse)
				}
			} else if errors.As(err, &abuse) || !strings.HasPrefix(errMessage(err), "You have exceeded a secondary rate limit") {
				t.Errorf("err = %T %v", err, err)
			}
			if len(emu.Comments("o", "r", 1)) != 0 {
				t.Errorf("a refused comment was stored")
			}
			// Only once: a fresh client (go-github's own blocks until
			// Retry-After) gets through.
			if _, _, err := client(t, srv, botToken).Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: github.String("x")}); err != nil {
				t.Errorf("after: %v", err)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

type gqlResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func postGraphQL(t *testing.T, url, tok, body string) gqlResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := gqlResponse{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&out.body); err != nil {
		t.Fatalf("body: %v", err)
	}
	return out
}

func query(q string) string {
	b, _ := json.Marshal(map[string]any{"query": q, "variables": map[string]any{}})
	return string(b)
}

func TestGraphQLViewer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, token, body string
		wantStatus        int
		wantData          string // JSON of "data", or "" when none
		wantError         string // substring of errors[0].message or of message
	}{
		{"user token", janeToken, query("query { viewer { login } }"), 200, `{"viewer":{"login":"jane"}}`, ""},
		{"GITHUB_TOKEN", botToken, query("{ viewer { login __typename } }"), 200, `{"viewer":{"__typename":"Bot","login":"github-actions[bot]"}}`, ""},
		{"installation token", appToken, query("query Who {\n  viewer {\n    login\n    __typename\n  }\n}"), 200, `{"viewer":{"__typename":"Bot","login":"my-app[bot]"}}`, ""},
		{"databaseId and aliases", botToken, query("query($a: Int) { me: viewer { name: login databaseId } __typename }"), 200, `{"__typename":"Query","me":{"databaseId":41898282,"name":"github-actions[bot]"}}`, ""},
		{"user typename", adminToken, query("{viewer{login,__typename}} # comment"), 200, `{"viewer":{"__typename":"User","login":"octo-admin"}}`, ""},
		{"bad token", "nope", query("{ viewer { login } }"), 401, "", "Bad credentials"},
		{"no token", "", query("{ viewer { login } }"), 401, "", "Bad credentials"},
		{"unknown viewer field", janeToken, query("{ viewer { login email2 } }"), 200, "", "Field 'email2' doesn't exist on type 'User'"},
		{"unknown root field", janeToken, query("{ repository(owner: \"o\", name: \"r\") { id } }"), 200, "", "Field 'repository' doesn't exist on type 'Query'"},
		{"viewer without selection", janeToken, query("{ viewer }"), 200, "", "Field must have selections"},
		{"mutation", janeToken, query("mutation { addComment(input: {}) { clientMutationId } }"), 200, "", "not a mutation"},
		{"fragment", janeToken, query("{ viewer { ...F } } fragment F on User { login }"), 200, "", "fragments"},
		{"parse error", janeToken, query("{ viewer { login }"), 200, "", "Unexpected end of document"},
		{"parse error position", janeToken, query("{ viewer { } }"), 200, "", `Parse error on "}" (RCURLY) at [1, 12]`},
		{"no query", janeToken, `{"variables":{}}`, 200, "", "A query attribute must be specified"},
		{"bad JSON", janeToken, `{"query":`, 400, "", "Problems parsing JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, srv := newEmu(t)
			got := postGraphQL(t, srv.URL+"/api/graphql", tc.token, tc.body)
			if got.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %v", got.status, tc.wantStatus, got.body)
			}
			if got.header.Get("X-RateLimit-Limit") == "" {
				t.Errorf("no rate limit headers")
			}
			if tc.wantData != "" {
				b, _ := json.Marshal(got.body["data"])
				if string(b) != tc.wantData || got.body["errors"] != nil {
					t.Errorf("body = %v, want data %s", got.body, tc.wantData)
				}
				if got.header.Get("X-RateLimit-Resource") != "graphql" || got.header.Get("X-RateLimit-Remaining") != "4999" {
					t.Errorf("headers = %v", got.header)
				}
				return
			}
			var msg string
			if errs, ok := got.body["errors"].([]any); ok && len(errs) > 0 {
				msg, _ = errs[0].(map[string]any)["message"].(string)
				if _, hasData := got.body["data"]; hasData {
					t.Errorf("errors with data: %v", got.body)
				}
			} else {
				msg, _ = got.body["message"].(string)
			}
			if !strings.Contains(msg, tc.wantError) {
				t.Errorf("body = %v, want error %q", got.body, tc.wantError)
			}
		})
	}
}

func TestGraphQLErrorShape(t *testing.T) {
	t.Parallel()
	_, srv := newEmu(t)
	got := postGraphQL(t, srv.URL+"/api/graphql", janeToken, query("{\n  viewer { nope }\n}"))
	b, _ := json.Marshal(got.body)
	want := `{"errors":[{"extensions":{"code":"undefinedField","fieldName":"nope","typeName":"User"},"locations":[{"column":12,"line":2}],"message":"Field 'nope' doesn't exist on type 'User'","path":["query","viewer","nope"]}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	// GraphQL is served at /api/graphql only, not under the REST prefix.
	if got := postGraphQL(t, srv.URL+"/api/v3/graphql", janeToken, query("{ viewer { login } }")); got.status != 404 {
		t.Errorf("/api/v3/graphql: %d", got.status)
	}
}

func TestGraphQLRateLimit(t *testing.T) {
	t.Parallel()
	emu, srv := newEmu(t)
	emu.SetRateLimit(1, time.Time{})
	if got := postGraphQL(t, srv.URL+"/api/graphql", appToken, query("{ viewer { login } }")); got.status != 200 || got.body["data"] == nil {
		t.Fatalf("first: %v", got.body)
	}
	got := postGraphQL(t, srv.URL+"/api/graphql", appToken, query("{ viewer { login } }"))
	errs, _ := got.body["errors"].([]any)
	if got.status != 200 || len(errs) != 1 || got.header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("exhausted: %d %v", got.status, got.body)
	}
	if e := errs[0].(map[string]any); e["type"] != "RATE_LIMITED" || !strings.HasPrefix(e["message"].(string), "API rate limit already exceeded for installation ID") {
		t.Errorf("error = %v", e)
	}
	// The REST budget is separate.
	if _, _, err := client(t, srv, appToken).Issues.ListComments(context.Background(), "o", "r", 1, nil); err != nil {
		t.Errorf("REST: %v", err)
	}
}

func TestGetAuthenticatedUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, token string
		wantStatus  int
		wantLogin   string
		wantType    string
	}{
		{"user PAT", janeToken, 200, "jane", "User"},
		{"admin PAT", adminToken, 200, "octo-admin", "User"},
		{"installation token", appToken, 403, "", ""},
		{"GITHUB_TOKEN", botToken, 403, "", ""},
		{"bad token", "nope", 401, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, srv := newEmu(t)
			u, resp, err := client(t, srv, tc.token).Users.Get(context.Background(), "")
			if status(resp) != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", status(resp), tc.wantStatus, err)
			}
			switch tc.wantStatus {
			case 200:
				if err != nil || u.GetLogin() != tc.wantLogin || u.GetType() != tc.wantType || u.GetID() == 0 {
					t.Errorf("user = %+v, err %v", u, err)
				}
			case 403:
				if errMessage(err) != "Resource not accessible by integration" {
					t.Errorf("err = %v", err)
				}
			case 401:
				if errMessage(err) != "Bad credentials" {
					t.Errorf("err = %v", err)
				}
			}
		})
	}
}

func TestPullRequests(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name       string
		set        *PullRequest
		wantState  string
		wantMerged bool
	}{
		{"open", &PullRequest{HeadRef: "feature", HeadSHA: "abc123", UpdatedAt: when, Title: "Add assets"}, "open", false},
		{"closed", &PullRequest{State: "closed", HeadRef: "feature", HeadSHA: "abc123", UpdatedAt: when}, "closed", false},
		{"merged", &PullRequest{Merged: true, HeadRef: "feature", HeadSHA: "abc123", UpdatedAt: when}, "closed", true},
		{"unknown", nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			emu, srv := newEmu(t)
			if tc.set != nil {
				emu.SetPullRequest("o", "r", 12, *tc.set)
			}
			pr, resp, err := client(t, srv, botToken).PullRequests.Get(context.Background(), "o", "r", 12)
			if tc.set == nil {
				if status(resp) != 404 || errMessage(err) != "Not Found" {
					t.Errorf("unknown: %d %v", status(resp), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pr.GetNumber() != 12 || pr.GetState() != tc.wantState || pr.GetMerged() != tc.wantMerged ||
				pr.GetHead().GetRef() != "feature" || pr.GetHead().GetSHA() != "abc123" ||
				pr.GetHTMLURL() != srv.URL+"/o/r/pull/12" || !pr.GetUpdatedAt().Time.Equal(when) || pr.GetTitle() != tc.set.Title {
				t.Errorf("pr = %+v", pr)
			}
			if tc.wantMerged != (pr.MergedAt != nil) || (tc.wantState == "closed") != (pr.ClosedAt != nil) {
				t.Errorf("merged_at %v closed_at %v", pr.MergedAt, pr.ClosedAt)
			}
		})
	}
}

func TestListComments(t *testing.T) {
	t.Parallel()
	emu, srv := newEmu(t)
	ctx := context.Background()
	emu.SetPullRequest("o", "r", 5, PullRequest{HeadRef: "f", HeadSHA: "s"})
	emu.Seed("o", "r", 5, 3)
	c := client(t, srv, botToken)
	ours, _, err := c.Issues.CreateComment(ctx, "o", "r", 5, &github.IssueComment{Body: github.String("ours")})
	if err != nil {
		t.Fatal(err)
	}
	evil := emu.AddComment("o", "r", 5, "mallory", "evil "+marker)
	app, _, err := client(t, srv, appToken).Issues.CreateComment(ctx, "o", "r", 5, &github.IssueComment{Body: github.String("app")})
	if err != nil {
		t.Fatal(err)
	}

	var all []*github.IssueComment
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 2}}
	pages := 0
	for {
		cs, resp, err := c.Issues.ListComments(ctx, "o", "r", 5, opt)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, cs...)
		if resp.NextPage == 0 {
			if resp.PrevPage != 2 || resp.FirstPage != 1 {
				t.Errorf("last page links: %+v", resp)
			}
			break
		}
		if resp.LastPage != 3 {
			t.Errorf("last = %d", resp.LastPage)
		}
		opt.Page = resp.NextPage
	}
	if pages != 3 || len(all) != 6 {
		t.Fatalf("%d pages, %d comments", pages, len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].GetID() >= all[i].GetID() {
			t.Errorf("not oldest first: %d before %d", all[i-1].GetID(), all[i].GetID())
		}
	}
	want := map[int64][2]string{
		ours.GetID(): {"github-actions[bot]", "Bot"},
		evil:         {"mallory", "User"},
		app.GetID():  {"my-app[bot]", "Bot"},
	}
	for _, cm := range all {
		if cm.CreatedAt == nil || cm.UpdatedAt == nil || cm.CreatedAt.IsZero() || cm.User.GetID() == 0 {
			t.Errorf("comment %d lacks fields: %+v", cm.GetID(), cm)
		}
		if !strings.HasSuffix(cm.GetHTMLURL(), "/o/r/pull/5#issuecomment-"+itoa(cm.GetID())) {
			t.Errorf("html_url = %s", cm.GetHTMLURL())
		}
		w, ok := want[cm.GetID()]
		if !ok {
			w = [2]string{"someone", "User"}
		}
		if cm.User.GetLogin() != w[0] || cm.User.GetType() != w[1] {
			t.Errorf("comment %d by %s (%s), want %v", cm.GetID(), cm.User.GetLogin(), cm.User.GetType(), w)
		}
	}
	// Comments() agrees, oldest first.
	stored := emu.Comments("o", "r", 5)
	if len(stored) != 6 || stored[4].ID != evil || stored[4].User != "mallory" {
		t.Errorf("stored = %+v", stored)
	}
}

func TestFailNextAndCalls(t *testing.T) {
	t.Parallel()
	emu, srv := newEmu(t)
	emu.FailNext(http.StatusBadGateway)
	c := client(t, srv, botToken)
	_, resp, _ := c.Issues.ListComments(context.Background(), "o", "r", 1, nil)
	if status(resp) != 502 {
		t.Errorf("status = %d", status(resp))
	}
	if _, _, err := c.Issues.ListComments(context.Background(), "o", "r", 1, nil); err != nil {
		t.Errorf("second: %v", err)
	}
	calls := emu.Calls()
	if len(calls) != 2 || calls[0].Status != 502 || calls[1].Status != 200 || calls[1].Path != "/api/v3/repos/o/r/issues/1/comments" {
		t.Errorf("calls = %+v", calls)
	}
	if got := URL("http://127.0.0.1:1234"); got != "http://127.0.0.1:1234/api/v3" {
		t.Errorf("URL = %s", got)
	}
}
