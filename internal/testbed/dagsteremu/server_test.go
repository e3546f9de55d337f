package dagsteremu_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

type gqlResponse struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message   string `json:"message"`
		Locations []struct {
			Line, Column int
		} `json:"locations"`
	} `json:"errors"`
}

type call struct {
	path       string
	deployment string // Dagster-Cloud-Deployment header
	token      string // "" means the default token; "-" means none
	query      string
	vars       map[string]any
}

// do posts a GraphQL request to the emulator and returns the status, the raw
// body and the decoded response (when the body is JSON).
func do(t *testing.T, srv http.Handler, c call) (int, string, gqlResponse) {
	t.Helper()
	if c.path == "" {
		c.path = "/graphql"
	}
	body, err := json.Marshal(map[string]any{"query": c.query, "variables": c.vars})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, c.path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	switch c.token {
	case "":
		req.Header.Set("Dagster-Cloud-Api-Token", dagsteremu.DefaultToken)
	case "-":
	default:
		req.Header.Set("Dagster-Cloud-Api-Token", c.token)
	}
	if c.deployment != "" {
		req.Header.Set("Dagster-Cloud-Deployment", c.deployment)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	raw := rec.Body.String()
	var resp gqlResponse
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal([]byte(raw), &resp); err != nil {
			t.Fatalf("decoding %q: %v", raw, err)
		}
	}
	return rec.Code, raw, resp
}

func mustOK(t *testing.T, code int, raw string, resp gqlResponse) {
	t.Helper()
	if code != http.StatusOK || len(resp.Errors) > 0 {
		t.Fatalf("status %d, body %s", code, raw)
	}
}

const createMutation = `mutation Create($branchData: CreateOrUpdateBranchDeploymentInput!, $commit: DeploymentCommitInput!, $base: String) {
  createOrUpdateBranchDeployment(branchData: $branchData, commit: $commit, baseDeploymentName: $base) {
    __typename
    ... on DagsterCloudDeployment { deploymentId deploymentName }
    ... on Error { message }
  }
}`

func branchVars(status string) map[string]any {
	return map[string]any{
		"branchData": map[string]any{
			"repoName": "acme/data", "branchName": "feature/x",
			"branchUrl": "https://github.com/acme/data/tree/feature/x", "pullRequestUrl": "https://github.com/acme/data/pull/7",
			"pullRequestStatus": status, "pullRequestNumber": "7",
		},
		"commit": map[string]any{
			"commitHash": "abc123", "timestamp": 1716390000.5, "commitMessage": "msg", "commitUrl": nil,
			"authorName": "Jane", "authorEmail": "jane@example.com", "authorAvatarUrl": nil,
		},
	}
}

func TestInvalidDocumentsReturnErrors(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New()
	tests := []struct {
		name, query string
		vars        map[string]any
		want        string
	}{
		{"unknown field", `query Q { nope }`, nil, `Cannot query field "nope" on type "CloudQuery"`},
		{"syntax error", `query Q { agents { status }`, nil, "Expected Name"},
		{"missing selection", `query Q { agents }`, nil, `must have a selection of subfields`},
		{"undefined variable", `query Q { deploymentByName(name: $n) { __typename } }`, nil, `Variable "$n" is not defined`},
		{"lowercase enum variable", createMutation, branchVars("open"), `Variable '$branchData' got invalid value "open" at "branchData.pullRequestStatus"; Value "open" does not exist in 'PullRequestStatus' enum. Did you mean the enum value 'OPEN'?`},
		{"unknown enum variable", createMutation, branchVars("DRAFT"), `Variable '$branchData' got invalid value at "branchData.pullRequestStatus"; DRAFT is not a valid PullRequestStatus`},
		{"missing required variable", createMutation, map[string]any{"commit": branchVars("OPEN")["commit"]}, `Variable '$branchData' must be defined`},
		{"wrong variable type", createMutation, func() map[string]any {
			v := branchVars("OPEN")
			v["commit"].(map[string]any)["timestamp"] = "yesterday"
			return v
		}(), `Variable '$commit' got invalid value at "commit.timestamp"; cannot use string as Float`},
		{"unknown input field", createMutation, func() map[string]any {
			v := branchVars("OPEN")
			v["branchData"].(map[string]any)["color"] = "red"
			return v
		}(), `Variable '$branchData' got invalid value at "branchData.color"; unknown field`},
		{"lowercase enum literal", `mutation M { markCliEvent(eventType: deploy, durationSeconds: 1) }`, nil, `Value "deploy" does not exist in "CliEventType!" enum`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, raw, resp := do(t, srv, call{query: tt.query, vars: tt.vars})
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200 (body %s)", code, raw)
			}
			if len(resp.Errors) == 0 || resp.Data != nil || !strings.Contains(raw, `"data":null`) {
				t.Fatalf("want errors and null data, got %s", raw)
			}
			if !strings.Contains(resp.Errors[0].Message, tt.want) {
				t.Errorf("error %q does not contain %q", resp.Errors[0].Message, tt.want)
			}
		})
	}
	// Validation errors carry locations.
	_, raw, resp := do(t, srv, call{query: "query Q {\n  nope\n}"})
	if len(resp.Errors) != 1 || len(resp.Errors[0].Locations) != 1 || resp.Errors[0].Locations[0].Line != 2 {
		t.Errorf("want one error located at line 2, got %s", raw)
	}
	// No state change happened.
	if n := len(srv.Deployments()); n != 1 {
		t.Errorf("deployments = %d, want 1", n)
	}
}

func TestSelectionSetExecution(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New(dagsteremu.WithOrganization("acme"))
	code, raw, resp := do(t, srv, call{query: createMutation, vars: branchVars("OPEN")})
	mustOK(t, code, raw, resp)
	name := srv.BranchDeploymentName("acme/data", "feature/x")

	tests := []struct {
		name, query, want string
		deployment        string
	}{
		{
			name: "aliases, inline fragments, fragment spreads and __typename",
			query: `query Q($n: String!) {
  d: deploymentByName(name: $n) {
    kind: __typename
    ... on DagsterCloudDeployment { id: deploymentId ...More }
    ... on PythonError { message stack }
  }
}
fragment More on DagsterCloudDeployment {
  deploymentType
  branchDeploymentGitMetadata { pullRequestStatus repoName }
  parentDeployment { deploymentName isBranchDeployment }
  id: deploymentId
}`,
			want: `{"data":{"d":{"kind":"DagsterCloudDeployment","id":2,"deploymentType":"BRANCH","branchDeploymentGitMetadata":{"pullRequestStatus":"OPEN","repoName":"acme/data"},"parentDeployment":{"deploymentName":"prod","isBranchDeployment":false}}}}`,
		},
		{
			name:  "interface fragment and not-found member",
			query: `query Q { deploymentByName(name: "nope") { __typename ... on Error { message } ... on DagsterCloudDeployment { deploymentId } } }`,
			want:  `{"data":{"deploymentByName":{"__typename":"DeploymentNotFoundError","message":"Deployment \"nope\" not found"}}}`,
		},
		{
			name:  "skip and include",
			query: `query Q($yes: Boolean!) { currentDeployment { deploymentName @skip(if: $yes) agentType @include(if: $yes) deploymentType @include(if: false) } }`,
			want:  `{"data":{"currentDeployment":{"agentType":"HYBRID"}}}`, deployment: "prod",
		},
		{
			name:  "scalar root fields and GenericScalar",
			query: `query Q { getBranchDeploymentName(repoName: "acme/data", branchName: "feature/x") organizationSettings { settings } }`,
			want:  `{"data":{"getBranchDeploymentName":"` + name + `","organizationSettings":{"settings":{}}}}`,
		},
		{
			name:  "lists of objects",
			query: `query Q { agents { status errors { error { message } } metadata { key } } }`,
			want:  `{"data":{"agents":[{"status":"RUNNING","errors":[],"metadata":[{"key":"type"}]}]}}`, deployment: name,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]any{"n": name, "yes": true}
			if !strings.Contains(tt.query, "$n") {
				delete(vars, "n")
			}
			if !strings.Contains(tt.query, "$yes") {
				delete(vars, "yes")
			}
			code, raw, resp := do(t, srv, call{query: tt.query, vars: vars, deployment: tt.deployment})
			mustOK(t, code, raw, resp)
			if raw != tt.want {
				t.Errorf("got  %s\nwant %s", raw, tt.want)
			}
		})
	}
}

func TestBranchDeploymentLifecycle(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New(dagsteremu.WithOrganization("acme"), dagsteremu.WithTokens("tok-1", "tok-2"))
	var names []string
	for i, status := range []string{"OPEN", "OPEN", "MERGED"} {
		vars := branchVars(status)
		vars["commit"].(map[string]any)["commitHash"] = []string{"c1", "c2", "c3"}[i]
		code, raw, resp := do(t, srv, call{query: createMutation, vars: vars, token: []string{"tok-1", "tok-2", "tok-1"}[i]})
		mustOK(t, code, raw, resp)
		r := resp.Data["createOrUpdateBranchDeployment"].(map[string]any)
		if r["__typename"] != "DagsterCloudDeployment" || r["deploymentId"] != float64(2) {
			t.Fatalf("result %v", r)
		}
		names = append(names, r["deploymentName"].(string))
	}
	if names[0] != names[1] || names[1] != names[2] || len(names[0]) != 12 {
		t.Fatalf("names %v: want one stable 12-character name", names)
	}
	d, ok := srv.Deployment(names[0])
	if !ok {
		t.Fatal("deployment not found")
	}
	want := dagsteremu.Deployment{
		Name: names[0], ID: 2, Type: "BRANCH", RepoName: "acme/data", BranchName: "feature/x",
		BranchURL: "https://github.com/acme/data/tree/feature/x", PullRequestURL: "https://github.com/acme/data/pull/7",
		PullRequestNumber: "7", PullRequestStatus: "MERGED", BaseDeploymentName: "prod",
		Commit: dagsteremu.Commit{CommitHash: "c3", Timestamp: 1716390000.5, CommitMessage: "msg",
			AuthorName: "Jane", AuthorEmail: "jane@example.com"},
		Updates: 3, Locations: []dagsteremu.Location{},
	}
	if !equalJSON(t, d, want) {
		t.Errorf("deployment = %+v\nwant %+v", d, want)
	}

	// Another branch gets another deployment; an unknown base deployment is an error result.
	vars := branchVars("OPEN")
	vars["branchData"].(map[string]any)["branchName"] = "other"
	vars["base"] = "staging"
	_, _, resp := do(t, srv, call{query: createMutation, vars: vars, token: "tok-1"})
	if got := resp.Data["createOrUpdateBranchDeployment"].(map[string]any)["__typename"]; got != "DeploymentNotFoundError" {
		t.Errorf("unknown base: typename %v", got)
	}
	delete(vars, "base")
	_, _, resp = do(t, srv, call{query: createMutation, vars: vars, token: "tok-1"})
	if got := resp.Data["createOrUpdateBranchDeployment"].(map[string]any)["deploymentId"]; got != float64(3) {
		t.Errorf("second branch deployment id = %v, want 3", got)
	}
	if n := len(srv.Deployments()); n != 3 {
		t.Errorf("deployments = %d, want 3", n)
	}

	dump, err := srv.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"tok-1", "tok-2"} {
		if strings.Contains(string(dump), secret) {
			t.Errorf("JSON() contains token %q", secret)
		}
	}
	if !strings.Contains(string(dump), names[0]) {
		t.Errorf("JSON() lacks deployment %s:\n%s", names[0], dump)
	}
}

func TestDeploymentLimit(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New(dagsteremu.WithDeploymentLimit(1))
	do(t, srv, call{query: createMutation, vars: branchVars("OPEN")})
	vars := branchVars("OPEN")
	vars["branchData"].(map[string]any)["branchName"] = "second"
	_, raw, resp := do(t, srv, call{query: createMutation, vars: vars})
	if got := resp.Data["createOrUpdateBranchDeployment"].(map[string]any)["__typename"]; got != "DeploymentLimitError" {
		t.Errorf("typename %v (%s)", got, raw)
	}
}

const workspaceQuery = `query W { workspaceOrError { __typename
  ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename
    ... on RepositoryLocation { name }
    ... on PythonError { message stack errorChain { isExplicitLink error { message stack } } } } } }
  ... on PythonError { message } } }`

const deployMutation = `mutation D($document: GenericScalar!) { deployLocations(document: $document) { __typename
  ... on DeployLocationsSuccess { locations { locationName } }
  ... on InvalidLocationError { errors }
  ... on PythonError { message } } }`

func location(name string) map[string]any {
	return map[string]any{
		"location_name": name,
		"code_source":   map[string]any{"package_name": name + ".definitions"},
		"image":         "registry.example.com/img:tag",
		"git":           map[string]any{"commit_hash": "abc", "url": "https://example.com/abc"},
	}
}

func entries(t *testing.T, resp gqlResponse) map[string]map[string]any {
	t.Helper()
	ws := resp.Data["workspaceOrError"].(map[string]any)
	if ws["__typename"] != "Workspace" {
		t.Fatalf("workspaceOrError = %v", ws)
	}
	out := map[string]map[string]any{}
	for _, e := range ws["locationEntries"].([]any) {
		m := e.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func TestLocationLoading(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New(dagsteremu.WithLoadPolls(1))
	srv.FailLocation("broken", "ModuleNotFoundError: No module named 'broken'")
	doc := map[string]any{"locations": []any{location("good"), location("broken")}}
	code, raw, resp := do(t, srv, call{path: "/prod/graphql", query: deployMutation, vars: map[string]any{"document": doc}})
	mustOK(t, code, raw, resp)
	if want := `{"data":{"deployLocations":{"__typename":"DeployLocationsSuccess","locations":[{"locationName":"good"},{"locationName":"broken"}]}}}`; raw != want {
		t.Fatalf("deploy: %s", raw)
	}

	// Poll 1: LOADING, no locationOrLoadError.
	_, raw, resp = do(t, srv, call{path: "/prod/graphql", query: workspaceQuery})
	for name, e := range entries(t, resp) {
		if e["loadStatus"] != "LOADING" || e["locationOrLoadError"] != nil {
			t.Errorf("poll 1: %s = %v (%s)", name, e, raw)
		}
	}
	// Poll 2: LOADED, one with an error.
	_, raw, resp = do(t, srv, call{path: "/prod/graphql", query: workspaceQuery})
	got := entries(t, resp)
	if e := got["good"]; e["loadStatus"] != "LOADED" || e["locationOrLoadError"].(map[string]any)["__typename"] != "RepositoryLocation" {
		t.Errorf("good = %v", e)
	}
	bad := got["broken"]["locationOrLoadError"].(map[string]any)
	if got["broken"]["loadStatus"] != "LOADED" || bad["__typename"] != "PythonError" ||
		!strings.Contains(bad["message"].(string), "No module named 'broken'") || len(bad["errorChain"].([]any)) != 1 {
		t.Errorf("broken = %s", raw)
	}
	d, _ := srv.Deployment("prod")
	if len(d.Locations) != 2 || d.Locations[1].LoadStatus != "LOADED" ||
		!strings.Contains(d.Locations[1].Error, "The above exception was caused by the following exception:") {
		t.Errorf("state = %+v", d.Locations)
	}
	if d.Locations[0].Document["image"] != "registry.example.com/img:tag" {
		t.Errorf("document not stored: %v", d.Locations[0].Document)
	}

	// Redeploying starts over; with no agent nothing loads.
	srv.SetAgentRunning(false)
	do(t, srv, call{path: "/prod/graphql", query: deployMutation, vars: map[string]any{"document": map[string]any{"locations": []any{location("good")}}}})
	for range 3 {
		_, _, resp = do(t, srv, call{path: "/prod/graphql", query: workspaceQuery})
	}
	if e := entries(t, resp)["good"]; e["loadStatus"] != "LOADING" {
		t.Errorf("without agent: %v", e)
	}
	_, _, resp = do(t, srv, call{path: "/prod/graphql", query: `query A { agents { status } }`})
	if got := resp.Data["agents"].([]any)[0].(map[string]any)["status"]; got != "NOT_RUNNING" {
		t.Errorf("agent status %v", got)
	}
}

func TestAddOrUpdateLocationValidation(t *testing.T) {
	t.Parallel()
	const mutation = `mutation A($document: GenericScalar!) { addOrUpdateLocationFromDocument(document: $document) { __typename
  ... on WorkspaceEntry { locationName }
  ... on InvalidLocationError { message errors }
  ... on PythonError { message } } }`
	srv := dagsteremu.New()
	_, raw, resp := do(t, srv, call{path: "/prod/graphql", query: mutation, vars: map[string]any{"document": location("ok")}})
	if want := `{"data":{"addOrUpdateLocationFromDocument":{"__typename":"WorkspaceEntry","locationName":"ok"}}}`; raw != want {
		t.Errorf("valid document: %s", raw)
	}
	doc := location("bad")
	doc["build"] = map[string]any{"directory": "."}
	_, raw, resp = do(t, srv, call{path: "/prod/graphql", query: mutation, vars: map[string]any{"document": doc}})
	r := resp.Data["addOrUpdateLocationFromDocument"].(map[string]any)
	if r["__typename"] != "InvalidLocationError" || len(r["errors"].([]any)) != 1 ||
		r["errors"].([]any)[0] != `Received unexpected config entry "build" at the root.` {
		t.Errorf("invalid document: %s", raw)
	}
	if d, _ := srv.Deployment("prod"); len(d.Locations) != 1 {
		t.Errorf("invalid document was stored: %+v", d.Locations)
	}
}

func TestScopeAndRouting(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New(dagsteremu.WithOrganization("acme"))
	const current = `query C { currentDeployment { deploymentName } }`
	tests := []struct {
		name, path, header string
		want               string // deployment name, or an error substring prefixed by "error:"
	}{
		{"path", "/prod/graphql", "", "prod"},
		{"header overrides path", "/nope/graphql", "prod", "prod"},
		{"header at org scope", "/graphql", "prod", "prod"},
		{"legacy org path", "/acme/graphql", "prod", "prod"},
		{"legacy org and deployment path", "/acme/prod/graphql", "", "prod"},
		{"org scope", "/graphql", "", "error:needs a deployment"},
		{"unknown deployment", "/nope/graphql", "", `error:Deployment "nope" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, raw, resp := do(t, srv, call{path: tt.path, deployment: tt.header, query: current})
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, raw)
			}
			if msg, isErr := strings.CutPrefix(tt.want, "error:"); isErr {
				if len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0].Message, msg) {
					t.Errorf("want error %q, got %s", msg, raw)
				}
				return
			}
			mustOK(t, code, raw, resp)
			if got := resp.Data["currentDeployment"].(map[string]any)["deploymentName"]; got != tt.want {
				t.Errorf("deployment %v, want %s", got, tt.want)
			}
		})
	}

	// Unknown deployment: union results become PythonError.
	_, raw, resp := do(t, srv, call{path: "/nope/graphql", query: workspaceQuery})
	if ws := resp.Data["workspaceOrError"].(map[string]any); ws["__typename"] != "PythonError" ||
		!strings.Contains(ws["message"].(string), "not found") {
		t.Errorf("workspace on unknown deployment: %s", raw)
	}

	// The request log records the resolved deployment.
	reqs := srv.Requests()
	if len(reqs) != len(tests)+1 || reqs[1].Deployment != "prod" || reqs[1].Path != "/nope/graphql" || reqs[1].Operation != "C" {
		t.Errorf("requests: %+v", reqs[1])
	}

	for _, p := range []string{"/", "/a/b/c/graphql", "/other/prod/graphql", "/graphql/x"} {
		if code, _, _ := do(t, srv, call{path: p, query: current}); code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, code)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/graphql", nil)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", rec.Code)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	const query = `query Q { workspaceOrError { __typename ... on PythonError { message } } agents { status } }`
	srv := dagsteremu.New(dagsteremu.WithTokens("good"))
	for _, token := range []string{"-", "bad", dagsteremu.DefaultToken} {
		code, raw, _ := do(t, srv, call{path: "/prod/graphql", token: token, query: query})
		if code != http.StatusUnauthorized || strings.HasPrefix(raw, "{") || strings.Contains(raw, token) && token != "-" {
			t.Errorf("token %q: status %d body %q, want a non-JSON 401", token, code, raw)
		}
	}
	code, raw, resp := do(t, srv, call{path: "/prod/graphql", token: "good", query: query})
	mustOK(t, code, raw, resp)

	typed := dagsteremu.New(dagsteremu.WithUnauthorizedAsTypename())
	const mutation = `mutation A($document: GenericScalar!) { addOrUpdateLocationFromDocument(document: $document) { __typename ... on UnauthorizedError { message } } }`
	code, raw, resp = do(t, typed, call{path: "/prod/graphql", token: "bad", query: mutation, vars: map[string]any{"document": location("x")}})
	if code != http.StatusOK || resp.Data["addOrUpdateLocationFromDocument"].(map[string]any)["__typename"] != "UnauthorizedError" {
		t.Errorf("typename mode: %d %s", code, raw)
	}
	// A field whose type cannot hold UnauthorizedError gives a top-level error.
	_, raw, resp = do(t, typed, call{path: "/prod/graphql", token: "bad", query: `query Q { agents { status } }`})
	if len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0].Message, "Unauthorized") {
		t.Errorf("agents in typename mode: %s", raw)
	}
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New()
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	post := func(op string) (*http.Response, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"query": "query " + op + " { agents { status } }"})
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/prod/graphql", bytes.NewReader(body))
		req.Header.Set("Dagster-Cloud-Api-Token", dagsteremu.DefaultToken)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	srv.InjectFault(dagsteremu.Fault{Status: 502, Times: 2})
	srv.InjectFault(dagsteremu.Fault{Status: 429, RetryAfter: "7", Operation: "Other"})
	srv.InjectFault(dagsteremu.Fault{Body: "<html>oops</html>"})
	srv.InjectFault(dagsteremu.Fault{Body: `{"maintenance":{"message":"upgrade","timeout":60,"retry_interval":5}}`})
	if n := srv.PendingFaults(); n != 5 {
		t.Errorf("pending = %d", n)
	}
	for i, want := range []struct {
		status      int
		contentType string
		body        string
	}{
		{502, "text/plain", "502 Bad Gateway"},
		{502, "text/plain", "502 Bad Gateway"},
		{200, "text/plain", "<html>oops</html>"},
		{200, "application/json", "maintenance"},
		{200, "application/json", `"RUNNING"`},
	} {
		resp, body := post("Q")
		if resp.StatusCode != want.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), want.contentType) ||
			!strings.Contains(body, want.body) {
			t.Errorf("request %d: %d %s %q", i, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	resp, _ := post("Other")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("operation fault: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if n := srv.PendingFaults(); n != 0 {
		t.Errorf("pending = %d", n)
	}
	if n := len(srv.Requests()); n != 6 {
		t.Errorf("logged %d requests, want 6", n)
	}

	// A delay-only fault slows the response down but serves it.
	srv.InjectFault(dagsteremu.Fault{Delay: 20 * time.Millisecond})
	start := time.Now()
	resp, body := post("Q")
	if resp.StatusCode != 200 || !strings.Contains(body, "RUNNING") || time.Since(start) < 20*time.Millisecond {
		t.Errorf("delayed: %d %q after %s", resp.StatusCode, body, time.Since(start))
	}
}

func TestStateEndpoint(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/_emulator/state", nil))
	var state struct {
		Deployments []dagsteremu.Deployment `json:"deployments"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &state); err != nil || len(state.Deployments) != 1 ||
		state.Deployments[0].Name != "prod" || state.Deployments[0].Type != "PRODUCTION" {
		t.Errorf("state: %v %s", err, rec.Body)
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// TestDeploymentCommitAndGitMetadata checks latestCommit (the commit last
// sent by createOrUpdateBranchDeployment) and branchDeploymentGitMetadata,
// both null for a full deployment.
func TestDeploymentCommitAndGitMetadata(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New()
	const byName = `query ByName($name: String!) {
  deploymentByName(name: $name) {
    __typename
    ... on DagsterCloudDeployment {
      deploymentName
      latestCommit { commitHash timestamp commitMessage commitUrl }
      branchDeploymentGitMetadata { repoName branchName pullRequestStatus pullRequestNumber }
    }
    ... on Error { message }
  }
}`
	get := func(name string) map[string]any {
		t.Helper()
		code, raw, resp := do(t, srv, call{query: byName, vars: map[string]any{"name": name}})
		mustOK(t, code, raw, resp)
		return resp.Data["deploymentByName"].(map[string]any)
	}

	prod := get("prod")
	if prod["__typename"] != "DagsterCloudDeployment" || prod["latestCommit"] != nil || prod["branchDeploymentGitMetadata"] != nil {
		t.Errorf("prod = %v", prod)
	}
	if got := get("nope"); got["__typename"] != "DeploymentNotFoundError" || got["message"] == "" {
		t.Errorf("unknown = %v", got)
	}

	var name string
	for i, status := range []string{"OPEN", "CLOSED"} {
		vars := branchVars(status)
		vars["commit"].(map[string]any)["commitHash"] = []string{"c1", "c2"}[i]
		code, raw, resp := do(t, srv, call{query: createMutation, vars: vars})
		mustOK(t, code, raw, resp)
		name = resp.Data["createOrUpdateBranchDeployment"].(map[string]any)["deploymentName"].(string)
		got := get(name)
		want := map[string]any{
			"__typename": "DagsterCloudDeployment", "deploymentName": name,
			"latestCommit": map[string]any{"commitHash": []string{"c1", "c2"}[i], "timestamp": 1716390000.5,
				"commitMessage": "msg", "commitUrl": nil},
			"branchDeploymentGitMetadata": map[string]any{"repoName": "acme/data", "branchName": "feature/x",
				"pullRequestStatus": status, "pullRequestNumber": "7"},
		}
		if !equalJSON(t, got, want) {
			t.Errorf("after %s:\n got %v\nwant %v", status, got, want)
		}
	}
}

// TestFaultForOneOperation checks that a fault naming an operation leaves
// other operations alone, and that a delayed fault then serves its body.
func TestFaultForOneOperation(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New()
	const other = `query Other { agents { status } }`
	const named = `query Named { agents { status } }`
	srv.InjectFault(dagsteremu.Fault{Operation: "Named", Delay: 20 * time.Millisecond, Body: `{"data": {"agents": [`})
	code, raw, resp := do(t, srv, call{path: "/prod/graphql", query: other})
	mustOK(t, code, raw, resp)
	if srv.PendingFaults() != 1 {
		t.Fatalf("the fault was consumed by another operation")
	}
	// do would fail decoding the malformed body: serve it by hand.
	body, _ := json.Marshal(map[string]any{"query": named})
	req := httptest.NewRequest(http.MethodPost, "/prod/graphql", bytes.NewReader(body))
	req.Header.Set("Dagster-Cloud-Api-Token", dagsteremu.DefaultToken)
	rec := httptest.NewRecorder()
	start := time.Now()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"data": {"agents": [` ||
		rec.Header().Get("Content-Type") != "application/json" || time.Since(start) < 20*time.Millisecond {
		t.Errorf("named: %d %q %q after %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, time.Since(start))
	}
	if srv.PendingFaults() != 0 {
		t.Errorf("%d faults pending", srv.PendingFaults())
	}
}
