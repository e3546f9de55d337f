package dagster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

// fakeClock is advanced only by the client's sleeps, so timeouts are
// deterministic and tests never really sleep.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRecorder) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func (l *logRecorder) Count(substr string) int {
	n := 0
	for _, line := range l.Lines() {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

type harness struct {
	emu    *dagsteremu.Server
	url    string
	client *dagster.Client
	clock  *fakeClock
	logs   *logRecorder
}

const testToken = "test-token-5ecret"

func newHarness(t *testing.T, emuOpts []dagsteremu.Option, clientOpts ...dagster.Option) *harness {
	t.Helper()
	emu := dagsteremu.New(append([]dagsteremu.Option{dagsteremu.WithTokens(testToken), dagsteremu.WithOrganization("acme")}, emuOpts...)...)
	ts := httptest.NewServer(emu)
	t.Cleanup(ts.Close)
	h := &harness{
		emu:   emu,
		url:   ts.URL,
		clock: &fakeClock{now: time.Date(2026, 5, 22, 15, 4, 5, 0, time.UTC)},
		logs:  &logRecorder{},
	}
	opts := append([]dagster.Option{
		dagster.WithHTTPClient(ts.Client()),
		dagster.WithSleep(h.clock.Sleep),
		dagster.WithClock(h.clock.Now),
		dagster.WithLogf(h.logs.Logf),
		dagster.WithPollInterval(time.Second),
	}, clientOpts...)
	h.client = dagster.New(ts.URL+"/", testToken, opts...)
	return h
}

func (h *harness) requests(op string) []dagsteremu.Request {
	var out []dagsteremu.Request
	for _, r := range h.emu.Requests() {
		if op == "" || r.Operation == op {
			out = append(out, r)
		}
	}
	return out
}

var (
	testBranch = dagster.BranchData{
		RepoName: "acme/data-platform", BranchName: "feature/new-assets",
		BranchURL:         "https://github.com/acme/data-platform/tree/feature/new-assets",
		PullRequestURL:    "https://github.com/acme/data-platform/pull/42",
		PullRequestStatus: "OPEN", PullRequestNumber: "42",
	}
	testCommit = dagster.Commit{
		CommitHash: "3f2c1a9e", Timestamp: 1716390000, CommitMessage: "Add new assets",
		AuthorName: "Jane Doe", AuthorEmail: "jane@example.com",
	}
)

func locationDoc(name string) map[string]any {
	return map[string]any{
		"location_name": name,
		"code_source":   map[string]any{"package_name": name + ".definitions"},
		"image":         "123456789012.dkr.ecr.us-west-2.amazonaws.com/quickstart:3f2c1a9",
		"git":           map[string]any{"commit_hash": "3f2c1a9e", "url": "https://github.com/acme/data-platform/tree/3f2c1a9e"},
	}
}

func TestURLs(t *testing.T) {
	t.Parallel()
	if got := dagster.OrgURL("acme"); got != "https://acme.dagster.cloud" {
		t.Errorf("OrgURL = %q", got)
	}
	c := dagster.New("https://acme.dagster.cloud/", "t")
	if got := c.DeploymentURL("8f1d2c3b4a59"); got != "https://acme.dagster.cloud/8f1d2c3b4a59" {
		t.Errorf("DeploymentURL = %q", got)
	}
}

func TestCreateOrUpdateBranchDeployment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, nil)

	first, err := h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, "")
	if err != nil {
		t.Fatal(err)
	}
	if first.Name != h.emu.BranchDeploymentName(testBranch.RepoName, testBranch.BranchName) || first.ID != 2 {
		t.Errorf("first = %+v", first)
	}

	// Same key: same deployment, updated metadata. GitHub's lower-case state is accepted.
	update := testBranch
	update.PullRequestStatus = "closed"
	commit := testCommit
	commit.CommitHash = "9999"
	second, err := h.client.CreateOrUpdateBranchDeployment(ctx, update, commit, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("second = %+v, want %+v", second, first)
	}
	d, ok := h.emu.Deployment(first.Name)
	if !ok || d.PullRequestStatus != "CLOSED" || d.Commit.CommitHash != "9999" || d.Updates != 2 || d.BaseDeploymentName != "prod" {
		t.Errorf("emulator state = %+v", d)
	}

	// Another branch: another deployment.
	other := testBranch
	other.BranchName = "fix/other"
	third, err := h.client.CreateOrUpdateBranchDeployment(ctx, other, testCommit, "")
	if err != nil {
		t.Fatal(err)
	}
	if third.Name == first.Name || third.ID == first.ID {
		t.Errorf("third = %+v", third)
	}

	// Every key is sent; empty optional values are null.
	reqs := h.requests("CliCreateOrUpdateBranchDeployment")
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	wantVars := map[string]any{
		"branchData": map[string]any{
			"repoName": "acme/data-platform", "branchName": "feature/new-assets",
			"branchUrl":         "https://github.com/acme/data-platform/tree/feature/new-assets",
			"pullRequestUrl":    "https://github.com/acme/data-platform/pull/42",
			"pullRequestStatus": "OPEN", "pullRequestNumber": "42",
		},
		"commit": map[string]any{
			"commitHash": "3f2c1a9e", "timestamp": float64(1716390000), "commitMessage": "Add new assets",
			"commitUrl": nil, "authorName": "Jane Doe", "authorEmail": "jane@example.com", "authorAvatarUrl": nil,
		},
		"baseDeploymentName":    nil,
		"snapshotBaseCondition": nil,
	}
	if !reflect.DeepEqual(reqs[0].Variables, wantVars) {
		t.Errorf("variables\n got %#v\nwant %#v", reqs[0].Variables, wantVars)
	}
	if reqs[0].Path != "/graphql" || reqs[0].Deployment != "" || reqs[0].Headers.Get("Dagster-Cloud-Deployment") != "" {
		t.Errorf("not at organization scope: %+v", reqs[0])
	}
}

func TestCreateOrUpdateBranchDeploymentRejectsBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	noRepo := testBranch
	noRepo.RepoName = ""
	badStatus := testBranch
	badStatus.PullRequestStatus = "draft"
	noHash := testCommit
	noHash.CommitHash = ""
	tests := []struct {
		name   string
		branch dagster.BranchData
		commit dagster.Commit
		want   string
	}{
		{"no repo", noRepo, testCommit, "missing the repository name"},
		{"bad status", badStatus, testCommit, `invalid pull request status "draft"`},
		{"no commit hash", testBranch, noHash, "missing the commit hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.CreateOrUpdateBranchDeployment(context.Background(), tt.branch, tt.commit, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if n := len(h.emu.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestCreateOrUpdateBranchDeploymentResultErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []dagsteremu.Option{dagsteremu.WithDeploymentLimit(1)})
	ctx := context.Background()
	if _, err := h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, ""); err != nil {
		t.Fatal(err)
	}
	other := testBranch
	other.BranchName = "other"
	_, err := h.client.CreateOrUpdateBranchDeployment(ctx, other, testCommit, "")
	var re *dagster.ResultError
	if !errors.As(err, &re) || re.Typename != "DeploymentLimitError" || re.Operation != "CliCreateOrUpdateBranchDeployment" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "deployment limit") {
		t.Errorf("message lacks a hint: %v", err)
	}
	_, err = h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, "staging")
	if !errors.As(err, &re) || re.Typename != "DeploymentNotFoundError" {
		t.Errorf("unknown base: %v", err)
	}
}

func TestDeployAndWaitForLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, []dagsteremu.Option{dagsteremu.WithLoadPolls(4)})
	dep, err := h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, "")
	if err != nil {
		t.Fatal(err)
	}
	names, err := h.client.DeployLocations(ctx, dep.Name, []map[string]any{locationDoc("zeta"), locationDoc("alpha")})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alpha", "zeta"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names = %v", names)
	}
	results, err := h.client.WaitForLoad(ctx, dep.Name, []string{"zeta", "alpha", "zeta"},
		dagster.WaitOptions{LocationLoadTimeout: time.Hour, AgentHeartbeatTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	want := []dagster.LocationResult{{Name: "zeta", Loaded: true}, {Name: "alpha", Loaded: true}}
	if !reflect.DeepEqual(results, want) {
		t.Errorf("results = %+v", results)
	}
	// 4 LOADING polls, then LOADED: 4 sleeps of the poll interval.
	if got := h.clock.Sleeps(); !reflect.DeepEqual(got, []time.Duration{time.Second, time.Second, time.Second, time.Second}) {
		t.Errorf("sleeps = %v", got)
	}
	if n := h.logs.Count("Still waiting for agent to sync changes to zeta, alpha"); n != 1 {
		t.Errorf("%d still-waiting lines in %q", n, h.logs.Lines())
	}
	if n := h.logs.Count("Agent synced changes to zeta, alpha"); n != 1 {
		t.Errorf("no success line in %q", h.logs.Lines())
	}
	// The agents were checked once (RUNNING at once).
	if n := len(h.requests("CliAgentStatus")); n != 1 {
		t.Errorf("%d agent status requests", n)
	}
	d, _ := h.emu.Deployment(dep.Name)
	if len(d.Locations) != 2 || d.Locations[0].Document["image"] != locationDoc("zeta")["image"] {
		t.Errorf("emulator locations = %+v", d.Locations)
	}
}

func TestAddOrUpdateLocation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []dagsteremu.Option{dagsteremu.WithLoadPolls(0)})
	name, err := h.client.AddOrUpdateLocation(context.Background(), "prod", locationDoc("quickstart_etl"))
	if err != nil || name != "quickstart_etl" {
		t.Fatalf("name %q, err %v", name, err)
	}
	results, err := h.client.WaitForLoad(context.Background(), "prod", []string{"quickstart_etl"},
		dagster.WaitOptions{LocationLoadTimeout: time.Minute})
	if err != nil || !results[0].Loaded {
		t.Fatalf("results %+v, err %v", results, err)
	}
	if n := len(h.requests("CliAgentStatus")); n != 0 {
		t.Errorf("agents checked without a heartbeat timeout: %d", n)
	}
}

func TestWaitForLoadReportsLoadErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, nil)
	h.emu.FailLocation("broken", "ModuleNotFoundError: No module named 'broken'")
	if _, err := h.client.DeployLocations(ctx, "prod", []map[string]any{locationDoc("good"), locationDoc("broken")}); err != nil {
		t.Fatal(err)
	}
	results, err := h.client.WaitForLoad(ctx, "prod", []string{"good", "broken"},
		dagster.WaitOptions{LocationLoadTimeout: time.Hour, AgentHeartbeatTimeout: time.Minute})
	var le *dagster.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	if !reflect.DeepEqual(le.Results, results) || len(results) != 2 {
		t.Errorf("results %+v vs %+v", le.Results, results)
	}
	if results[0] != (dagster.LocationResult{Name: "good", Loaded: true}) {
		t.Errorf("good = %+v", results[0])
	}
	wantText := "ModuleNotFoundError: No module named 'broken'\n" +
		"  File \"/opt/dagster/app/broken/definitions.py\", line 1, in <module>\n" +
		"    from .assets import *\n" +
		"The above exception was caused by the following exception:\n" +
		"dagster._core.errors.DagsterImportError: Encountered ImportError while importing code location broken\n" +
		"  File \"/usr/local/lib/python3.11/site-packages/dagster/_core/code_pointer.py\", line 138, in load_python_module"
	if !results[1].Loaded || results[1].Error != wantText {
		t.Errorf("broken error:\n%s\nwant:\n%s", results[1].Error, wantText)
	}
	if !strings.HasPrefix(err.Error(), "code location broken failed to load:\nModuleNotFoundError") {
		t.Errorf("message: %v", err)
	}
}

func TestInvalidLocationError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, nil)
	doc := locationDoc("a")
	doc["build"] = map[string]any{"directory": "."}
	_, err := h.client.DeployLocations(ctx, "prod", []map[string]any{doc})
	var re *dagster.ResultError
	if !errors.As(err, &re) || re.Typename != "InvalidLocationError" ||
		!reflect.DeepEqual(re.Errors, []string{`Received unexpected config entry "build" at path root:locations[0].`}) {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "Error in location config:\nReceived unexpected config entry \"build\"") {
		t.Errorf("message: %v", err)
	}
	_, err = h.client.AddOrUpdateLocation(ctx, "prod", doc)
	if !errors.As(err, &re) || re.Typename != "InvalidLocationError" ||
		!reflect.DeepEqual(re.Errors, []string{`Received unexpected config entry "build" at the root.`}) {
		t.Fatalf("add: err = %v", err)
	}
	// Unknown deployment: the emulator answers with a PythonError.
	_, err = h.client.DeployLocations(ctx, "nope", []map[string]any{locationDoc("a")})
	if !errors.As(err, &re) || re.Typename != "PythonError" || !strings.Contains(err.Error(), `Deployment "nope" not found`) {
		t.Errorf("unknown deployment: %v", err)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	fixedNow := time.Date(2026, 5, 22, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		faults     []dagsteremu.Fault
		wantSleeps []time.Duration
		wantReqs   int
		wantErr    string // "" means success
		check      func(t *testing.T, err error)
		wantLogs   []string // substrings the log must contain
	}{
		{
			name:       "502 twice then success",
			faults:     []dagsteremu.Fault{{Status: 502, Times: 2}},
			wantSleeps: []time.Duration{time.Second, 2 * time.Second}, wantReqs: 3,
		},
		{
			name:       "Retry-After seconds",
			faults:     []dagsteremu.Fault{{Status: 503, RetryAfter: "7"}},
			wantSleeps: []time.Duration{7 * time.Second}, wantReqs: 2,
		},
		{
			name:       "Retry-After HTTP date",
			faults:     []dagsteremu.Fault{{Status: 429, RetryAfter: fixedNow.Add(12 * time.Second).Format(http.TimeFormat)}},
			wantSleeps: []time.Duration{12 * time.Second}, wantReqs: 2,
		},
		{
			name:       "504 and 409 are retried",
			faults:     []dagsteremu.Fault{{Status: 504}, {Status: 409}},
			wantSleeps: []time.Duration{time.Second, 2 * time.Second}, wantReqs: 3,
		},
		{
			name:       "gives up after three retries",
			faults:     []dagsteremu.Fault{{Status: 503, Body: "upstream unavailable", Times: 4}},
			wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, wantReqs: 4,
			wantErr: "gave up after 3 retries: HTTP 503 Service Unavailable: upstream unavailable",
			check: func(t *testing.T, err error) {
				var re *dagster.RetryError
				var he *dagster.HTTPError
				if !errors.As(err, &re) || re.Retries != 3 || !errors.As(err, &he) || he.StatusCode != 503 {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:     "non-JSON 200 body",
			faults:   []dagsteremu.Fault{{Body: "<html><body>Welcome to nginx!</body></html>"}},
			wantReqs: 1,
			wantErr:  "returned an unexpected (non-GraphQL) response with HTTP 200: <html><body>Welcome to nginx!</body></html>",
			check: func(t *testing.T, err error) {
				var he *dagster.HTTPError
				if !errors.As(err, &he) || he.StatusCode != 200 {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:     "HTTP 500 is not retried",
			faults:   []dagsteremu.Fault{{Status: 500, Body: "Internal Server Error", Times: 4}},
			wantReqs: 1, wantErr: "returned HTTP 500 Internal Server Error: Internal Server Error",
		},
		{
			name:     "502 with GraphQL errors is not retried",
			faults:   []dagsteremu.Fault{{Status: 502, Body: `{"errors":[{"message":"boom"}]}`, Times: 4}},
			wantReqs: 1, wantErr: "returned GraphQL errors: boom",
		},
		{
			name: "top-level errors",
			faults: []dagsteremu.Fault{{Body: `{"errors":[{"message":"Internal Server Error (Trace ID: 2303036773343745328)",` +
				`"locations":[{"line":22,"column":13}],"path":["eventLogs","getEventRecords"]},{"message":"second"}],"data":null}`}},
			wantReqs: 1,
			wantErr:  "returned GraphQL errors: Internal Server Error (Trace ID: 2303036773343745328) (at eventLogs.getEventRecords); second",
			check: func(t *testing.T, err error) {
				var ge *dagster.GraphQLError
				if !errors.As(err, &ge) || len(ge.Messages) != 2 || ge.Operation != "CliAgentStatus" {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:       "maintenance then success",
			faults:     []dagsteremu.Fault{{Body: `{"maintenance":{"message":"Upgrading","timeout":60,"retry_interval":5}}`, Times: 2}},
			wantSleeps: []time.Duration{5 * time.Second, 5 * time.Second}, wantReqs: 3,
		},
		{
			// The last sleep is shortened so that the wait ends at the timeout.
			name:       "maintenance outlasting its timeout",
			faults:     []dagsteremu.Fault{{Body: `{"maintenance":{"message":"Upgrading","timeout":8,"retry_interval":5}}`, Times: 5}},
			wantSleeps: []time.Duration{5 * time.Second, 3 * time.Second}, wantReqs: 3,
			wantErr: "CliAgentStatus: Dagster+ is under scheduled maintenance: Upgrading. The API at ",
			check: func(t *testing.T, err error) {
				var me *dagster.MaintenanceError
				if !errors.As(err, &me) || me.Waited != 8*time.Second || me.Attempts != 3 || me.Message != "Upgrading" ||
					me.Operation != "CliAgentStatus" || !strings.HasSuffix(me.URL, "/prod/graphql") {
					t.Errorf("err = %#v", err)
				}
				if !strings.HasSuffix(err.Error(), "/prod/graphql still reported it after waiting 8s (3 attempts): "+
					"re-run the job when the maintenance has ended") {
					t.Errorf("message: %v", err)
				}
			},
			wantLogs: []string{
				"Dagster+ is under scheduled maintenance (Upgrading): request CliAgentStatus to ",
				"Retrying in 5s; will keep waiting at most 8s more for the maintenance to end...",
				"Retrying in 3s; will keep waiting at most 3s more for the maintenance to end...",
			},
		},
		{
			// The dagster-cloud CLI waits 16 hours by default.
			name:       "maintenance without a timeout waits 10 minutes",
			faults:     []dagsteremu.Fault{{Body: `{"maintenance":{"message":"Database upgrade"}}`, Times: 100}},
			wantSleeps: repeat(30*time.Second, 20), wantReqs: 21,
			wantErr: "Dagster+ is under scheduled maintenance: Database upgrade. The API at ",
			check: func(t *testing.T, err error) {
				var me *dagster.MaintenanceError
				if !errors.As(err, &me) || me.Waited != 10*time.Minute || dagster.DefaultMaintenanceWait != 10*time.Minute {
					t.Errorf("err = %#v", err)
				}
				if !strings.Contains(err.Error(), "after waiting 10m0s (21 attempts): re-run the job when the maintenance has ended") {
					t.Errorf("message: %v", err)
				}
			},
			wantLogs: []string{"Retrying in 30s; will keep waiting at most 10m0s more", "Retrying in 30s; will keep waiting at most 30s more"},
		},
		{
			name: "maintenance timeout capped at 30 minutes and interval at 60 s",
			faults: []dagsteremu.Fault{{Body: `{"maintenance":{"message":"Migration","timeout":86400,"retry_interval":600}}`,
				Times: 100}},
			wantSleeps: repeat(time.Minute, 30), wantReqs: 31,
			wantErr: "after waiting 30m0s (31 attempts)",
			check: func(t *testing.T, err error) {
				var me *dagster.MaintenanceError
				if !errors.As(err, &me) || me.Waited != dagster.MaxMaintenanceWait {
					t.Errorf("err = %#v", err)
				}
			},
			wantLogs: []string{"Retrying in 1m0s; will keep waiting at most 30m0s more"},
		},
		{
			name:       "maintenance without a message",
			faults:     []dagsteremu.Fault{{Body: `{"maintenance":{"timeout":1,"retry_interval":5}}`, Times: 3}},
			wantSleeps: []time.Duration{time.Second}, wantReqs: 2,
			wantErr: "Dagster+ is under scheduled maintenance: no details given. The API at ",
		},
		// The dagster-cloud CLI fails on `"errors" in result`, whatever the
		// value, and never retries it.
		{
			name:     "errors: [] fails",
			faults:   []dagsteremu.Fault{{Body: `{"errors":[],"data":{"agents":[]}}`, Times: 4}},
			wantReqs: 1, wantErr: `returned GraphQL errors: the response has "errors": [], and a response with an "errors" key fails`,
			check: func(t *testing.T, err error) {
				var ge *dagster.GraphQLError
				if !errors.As(err, &ge) || len(ge.Messages) != 1 {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:     "errors: null fails",
			faults:   []dagsteremu.Fault{{Body: `{"data":{"agents":[]},"errors":null}`, Times: 4}},
			wantReqs: 1, wantErr: `the response has "errors": null`,
		},
		{
			name:     "errors that are not a list fail",
			faults:   []dagsteremu.Fault{{Body: `{"data":{"agents":[]},"errors":"Something went wrong"}`, Times: 4}},
			wantReqs: 1, wantErr: `the response has "errors": "Something went wrong"`,
		},
		{
			name:     "errors object on a 503 is not retried",
			faults:   []dagsteremu.Fault{{Status: 503, RetryAfter: "5", Body: `{"errors":{"message":"overloaded"}}`, Times: 4}},
			wantReqs: 1, wantErr: `the response has "errors": {"message":"overloaded"}`,
		},
		// The CLI sleeps the backoff when Retry-After is falsy (0, or a
		// date that has passed) or not whole seconds.
		{
			name:       "Retry-After 0 falls back to the backoff",
			faults:     []dagsteremu.Fault{{Status: 503, RetryAfter: "0", Times: 3}},
			wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, wantReqs: 4,
			wantLogs: []string{"(HTTP 503 Service Unavailable). Retrying in 1s (retry 1 of 3;"},
		},
		{
			name:       "Retry-After of a past date falls back to the backoff",
			faults:     []dagsteremu.Fault{{Status: 429, RetryAfter: fixedNow.Add(-time.Minute).Format(http.TimeFormat), Times: 2}},
			wantSleeps: []time.Duration{time.Second, 2 * time.Second}, wantReqs: 3,
		},
		{
			name:       "Retry-After that is not whole seconds falls back to the backoff",
			faults:     []dagsteremu.Fault{{Status: 503, RetryAfter: "1.5"}, {Status: 503, RetryAfter: "-4"}},
			wantSleeps: []time.Duration{time.Second, 2 * time.Second}, wantReqs: 3,
		},
		// The CLI takes a maintenance timeout or retry_interval of 0 for
		// unset: `timeout or DEFAULT_MAINTENANCE_TIMEOUT`.
		{
			name:       "maintenance timeout 0 waits the default",
			faults:     []dagsteremu.Fault{{Body: `{"maintenance":{"message":"Upgrading","timeout":0,"retry_interval":60}}`, Times: 100}},
			wantSleeps: repeat(time.Minute, 10), wantReqs: 11,
			wantErr: "after waiting 10m0s (11 attempts)",
			check: func(t *testing.T, err error) {
				var me *dagster.MaintenanceError
				if !errors.As(err, &me) || me.Waited != dagster.DefaultMaintenanceWait {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:       "maintenance retry_interval 0 waits the default 30 s",
			faults:     []dagsteremu.Fault{{Body: `{"maintenance":{"message":"Upgrading","timeout":60,"retry_interval":0}}`, Times: 2}},
			wantSleeps: []time.Duration{30 * time.Second, 30 * time.Second}, wantReqs: 3,
		},
		{
			name:       "maintenance timeout and retry_interval 0 both default",
			faults:     []dagsteremu.Fault{{Body: `{"maintenance":{"timeout":0,"retry_interval":0}}`, Times: 3}},
			wantSleeps: repeat(30*time.Second, 3), wantReqs: 4,
			wantLogs: []string{"Retrying in 30s; will keep waiting at most 10m0s more for the maintenance to end..."},
		},
		{
			name:       "Retry-After at the 60 s cap is honoured",
			faults:     []dagsteremu.Fault{{Status: 503, RetryAfter: "60"}},
			wantSleeps: []time.Duration{time.Minute}, wantReqs: 2,
			wantLogs: []string{"(HTTP 503 Service Unavailable). Retrying in 1m0s as asked by its Retry-After header " +
				"(retry 1 of 3; 2m0s left of the 2m0s retry budget)..."},
		},
		{
			// The dagster-cloud CLI would sleep for the hour.
			name:     "Retry-After of an hour fails at once",
			faults:   []dagsteremu.Fault{{Status: 503, RetryAfter: "3600", Body: "try later", Times: 4}},
			wantReqs: 1,
			wantErr:  "CliAgentStatus: Dagster+ API at ",
			check: func(t *testing.T, err error) {
				var ra *dagster.RetryAfterError
				if !errors.As(err, &ra) || ra.RetryAfter != time.Hour || ra.StatusCode != 503 || ra.Operation != "CliAgentStatus" ||
					!ra.At.Equal(fixedNow.Add(time.Hour)) || ra.Max != time.Minute || !strings.HasSuffix(ra.URL, "/prod/graphql") {
					t.Fatalf("err = %#v", err)
				}
				want := "/prod/graphql answered HTTP 503 Service Unavailable and asked to be retried after 1h0m0s " +
					"(at 2026-05-22T16:04:05Z), longer than the 1m0s this action waits for a retry, so the request " +
					"was not retried: re-run the job after 2026-05-22T16:04:05Z"
				if !strings.HasSuffix(err.Error(), want) {
					t.Errorf("message:\n%v\nwant suffix:\n%s", err, want)
				}
				var he *dagster.HTTPError
				if !errors.As(err, &he) || he.Body != "try later" {
					t.Errorf("does not unwrap to the HTTP error: %#v", err)
				}
			},
		},
		{
			name:     "Retry-After HTTP date two hours ahead fails at once",
			faults:   []dagsteremu.Fault{{Status: 429, RetryAfter: fixedNow.Add(2 * time.Hour).Format(http.TimeFormat)}},
			wantReqs: 1,
			wantErr:  "answered HTTP 429 Too Many Requests and asked to be retried after 2h0m0s (at 2026-05-22T17:04:05Z)",
		},
		{
			name:     "Retry-After one second past the cap fails at once",
			faults:   []dagsteremu.Fault{{Status: 503, RetryAfter: "61"}},
			wantReqs: 1,
			wantErr:  "asked to be retried after 1m1s (at 2026-05-22T15:05:06Z)",
		},
		{
			// 50 s, 50 s, then the third sleep would end at 150 s > 2 min.
			name:       "Retry-After 50 until the retry budget is spent",
			faults:     []dagsteremu.Fault{{Status: 503, RetryAfter: "50", Body: "overloaded", Times: 10}},
			wantSleeps: []time.Duration{50 * time.Second, 50 * time.Second}, wantReqs: 3,
			wantErr: "CliAgentStatus: Dagster+ API at ",
			check: func(t *testing.T, err error) {
				var be *dagster.RetryBudgetError
				if !errors.As(err, &be) || be.Attempts != 3 || be.Elapsed != 100*time.Second || be.Budget != 2*time.Minute ||
					be.NextWait != 50*time.Second || be.Operation != "CliAgentStatus" {
					t.Fatalf("err = %#v", err)
				}
				want := "/prod/graphql: gave up after 3 attempts in 1m40s: the 2m0s retry budget was spent " +
					"(the next retry was due in 50s); last error: HTTP 503 Service Unavailable: overloaded. " +
					"Dagster+ may be degraded: re-run the job later"
				if !strings.HasSuffix(err.Error(), want) {
					t.Errorf("message:\n%v\nwant suffix:\n%s", err, want)
				}
				var he *dagster.HTTPError
				if !errors.As(err, &he) || he.StatusCode != 503 {
					t.Errorf("does not unwrap to the HTTP error: %#v", err)
				}
			},
			wantLogs: []string{"Retrying in 50s as asked by its Retry-After header (retry 2 of 3; 1m10s left of the 2m0s retry budget)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			for _, f := range tt.faults {
				h.emu.InjectFault(f)
			}
			// CliAgentStatus is the simplest call: WaitForLoad checks the agent first.
			_, err := h.client.WaitForLoad(context.Background(), "prod", []string{"x"},
				dagster.WaitOptions{LocationLoadTimeout: time.Nanosecond, AgentHeartbeatTimeout: time.Hour})
			if tt.wantErr == "" {
				// The only remaining error is the (intended) load timeout.
				if err == nil || !strings.Contains(err.Error(), "Timed out") {
					t.Fatalf("err = %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
			if got := h.clock.Sleeps(); !reflect.DeepEqual(got, tt.wantSleeps) && !(len(got) == 0 && len(tt.wantSleeps) == 0) {
				t.Errorf("sleeps = %v, want %v", got, tt.wantSleeps)
			}
			if got := len(h.requests("CliAgentStatus")); got != tt.wantReqs {
				t.Errorf("%d requests, want %d", got, tt.wantReqs)
			}
			if retries := h.logs.Count("Retrying in"); retries != len(tt.wantSleeps) {
				t.Errorf("%d retry log lines, want %d: %q", retries, len(tt.wantSleeps), h.logs.Lines())
			}
			for _, want := range tt.wantLogs {
				if h.logs.Count(want) == 0 {
					t.Errorf("no log line contains %q in %q", want, h.logs.Lines())
				}
			}
			if strings.Contains(fmt.Sprint(err, h.logs.Lines()), testToken) {
				t.Error("token leaked")
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// TestRetryBudgetCountsAttemptTime checks that the time spent in attempts,
// not only the sleeps, counts against the retry budget: each attempt here
// takes 55 s of fake time.
func TestRetryBudgetCountsAttemptTime(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 5, 22, 15, 4, 5, 0, time.UTC)}
	var mu sync.Mutex
	attempts := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		mu.Unlock()
		clock.mu.Lock()
		clock.now = clock.now.Add(55 * time.Second)
		clock.mu.Unlock()
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	t.Cleanup(ts.Close)
	logs := &logRecorder{}
	c := dagster.New(ts.URL, testToken, dagster.WithHTTPClient(ts.Client()), dagster.WithSleep(clock.Sleep),
		dagster.WithClock(clock.Now), dagster.WithLogf(logs.Logf))
	// 55 s + 1 s + 55 s + 2 s = 113 s; the third attempt ends at 168 s.
	_, err := c.AddOrUpdateLocation(context.Background(), "prod", locationDoc("a"))
	var be *dagster.RetryBudgetError
	if !errors.As(err, &be) || be.Attempts != 3 || be.Elapsed != 168*time.Second || be.NextWait != 4*time.Second {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "gave up after 3 attempts in 2m48s: the 2m0s retry budget was spent") {
		t.Errorf("message: %v", err)
	}
	if got := clock.Sleeps(); !reflect.DeepEqual(got, []time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("sleeps = %v", got)
	}
	if attempts != 3 || logs.Count("Retrying in") != 2 {
		t.Errorf("%d attempts, logs %q", attempts, logs.Lines())
	}
}

func TestWithRetryBudget(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, dagster.WithRetryBudget(5*time.Second))
	h.emu.InjectFault(dagsteremu.Fault{Status: 502, Times: 4})
	_, err := h.client.AddOrUpdateLocation(context.Background(), "prod", locationDoc("a"))
	var be *dagster.RetryBudgetError
	if !errors.As(err, &be) || be.Attempts != 3 || be.Budget != 5*time.Second || be.Operation != "CliAddOrUpdateLocation" {
		t.Fatalf("err = %v", err)
	}
	if got := h.clock.Sleeps(); !reflect.DeepEqual(got, []time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("sleeps = %v", got)
	}
	if !strings.Contains(err.Error(), "gave up after 3 attempts in 3s: the 5s retry budget was spent (the next retry was due in 4s)") {
		t.Errorf("message: %v", err)
	}
}

func TestBodySnippetIsTruncated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.emu.InjectFault(dagsteremu.Fault{Status: 500, Body: strings.Repeat("x", 5000)})
	_, err := h.client.AddOrUpdateLocation(context.Background(), "prod", locationDoc("a"))
	var he *dagster.HTTPError
	if !errors.As(err, &he) || len(he.Body) > 600 || !strings.Contains(he.Body, "truncated") {
		t.Errorf("err = %v", err)
	}
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tokenHints := []string{"dagster_cloud_api_token", "DAGSTER_CLOUD_API_TOKEN", "agent token or user token"}

	t.Run("HTTP 401", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, []dagsteremu.Option{dagsteremu.WithTokens("another-token")})
		_, err := h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, "")
		var he *dagster.HTTPError
		if !errors.As(err, &he) || he.StatusCode != 401 || !he.Unauthorized() {
			t.Fatalf("err = %#v", err)
		}
		for _, hint := range tokenHints {
			if !strings.Contains(err.Error(), hint) {
				t.Errorf("message lacks %q: %v", hint, err)
			}
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("message contains the token: %v", err)
		}
		if n := len(h.emu.Requests()); n != 1 {
			t.Errorf("401 was retried: %d requests", n)
		}
	})
	t.Run("UnauthorizedError typename", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, []dagsteremu.Option{dagsteremu.WithTokens("another-token"), dagsteremu.WithUnauthorizedAsTypename()})
		_, err := h.client.AddOrUpdateLocation(ctx, "prod", locationDoc("a"))
		var re *dagster.ResultError
		if !errors.As(err, &re) || re.Typename != "UnauthorizedError" || !re.Unauthorized() || re.Message == "" {
			t.Fatalf("err = %#v", err)
		}
		for _, hint := range tokenHints {
			if !strings.Contains(err.Error(), hint) {
				t.Errorf("message lacks %q: %v", hint, err)
			}
		}
		// createOrUpdateBranchDeployment selects no message on UnauthorizedError.
		_, err = h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, "")
		if !errors.As(err, &re) || re.Typename != "UnauthorizedError" || !strings.Contains(err.Error(), "dagster_cloud_api_token") {
			t.Errorf("create: %v", err)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("message contains the token: %v", err)
		}
	})
	t.Run("token echoed by the server is redacted", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		h.emu.InjectFault(dagsteremu.Fault{Status: 403, Body: "token " + testToken + " is not valid here"})
		_, err := h.client.AddOrUpdateLocation(ctx, "prod", locationDoc("a"))
		var he *dagster.HTTPError
		if !errors.As(err, &he) || strings.Contains(err.Error(), testToken) || strings.Contains(he.Body, testToken) ||
			!strings.Contains(err.Error(), "[REDACTED]") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no token", func(t *testing.T) {
		t.Parallel()
		c := dagster.New("http://127.0.0.1:1", "")
		_, err := c.AddOrUpdateLocation(ctx, "prod", locationDoc("a"))
		if err == nil || !strings.Contains(err.Error(), "DAGSTER_CLOUD_API_TOKEN") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestWaitForLoadTimeouts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("no agent heartbeat", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil, dagster.WithPollInterval(3*time.Second))
		h.emu.SetAgentRunning(false)
		if _, err := h.client.DeployLocations(ctx, "prod", []map[string]any{locationDoc("a")}); err != nil {
			t.Fatal(err)
		}
		results, err := h.client.WaitForLoad(ctx, "prod", []string{"a"},
			dagster.WaitOptions{LocationLoadTimeout: time.Hour, AgentHeartbeatTimeout: 30 * time.Second})
		if err == nil || !strings.HasPrefix(err.Error(), "No Dagster Cloud agent is actively heartbeating. Make sure that you have a Dagster Cloud agent running.") ||
			!strings.Contains(err.Error(), "agent_heartbeat_timeout") {
			t.Fatalf("err = %v", err)
		}
		if len(results) != 1 || results[0].Loaded {
			t.Errorf("results = %+v", results)
		}
		// Polled every 3 s until more than 30 s had passed.
		if n := len(h.clock.Sleeps()); n != 11 {
			t.Errorf("%d sleeps", n)
		}
		if n := len(h.requests("CliAgentStatus")); n != 11 {
			t.Errorf("%d agent status requests", n)
		}
	})
	t.Run("load timeout", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, []dagsteremu.Option{dagsteremu.WithLoadPolls(1000)})
		if _, err := h.client.DeployLocations(ctx, "prod", []map[string]any{locationDoc("a"), locationDoc("b")}); err != nil {
			t.Fatal(err)
		}
		_, err := h.client.WaitForLoad(ctx, "prod", []string{"a", "b"},
			dagster.WaitOptions{LocationLoadTimeout: 10 * time.Second, AgentHeartbeatTimeout: time.Minute})
		want := "Timed out after 10s waiting for code locations a, b to load in deployment prod (raise location_load_timeout"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("err = %v", err)
		}
		if n := len(h.requests("CliLocationsQuery")); n != 11 {
			t.Errorf("%d location queries", n)
		}
		if n := h.logs.Count("Still waiting"); n != 3 {
			t.Errorf("%d still-waiting lines", n)
		}
	})
	t.Run("zero load timeout does not wait", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		results, err := h.client.WaitForLoad(ctx, "prod", []string{"a"}, dagster.WaitOptions{AgentHeartbeatTimeout: time.Minute})
		if err != nil || len(results) != 1 || results[0].Loaded {
			t.Errorf("results %+v, err %v", results, err)
		}
		if n := len(h.emu.Requests()); n != 0 {
			t.Errorf("%d requests", n)
		}
	})
	t.Run("context cancelled while waiting", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, []dagsteremu.Option{dagsteremu.WithLoadPolls(1000)})
		h.client = dagster.New(h.url, testToken, dagster.WithPollInterval(time.Millisecond))
		if _, err := h.client.DeployLocations(ctx, "prod", []map[string]any{locationDoc("a")}); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		_, err := h.client.WaitForLoad(cctx, "prod", []string{"a"}, dagster.WaitOptions{LocationLoadTimeout: time.Hour})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestHeadersAndPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, []dagsteremu.Option{dagsteremu.WithLoadPolls(0)}, dagster.WithUserAgent("dagster-branch-deploy/test"))
	dep, err := h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.DeployLocations(ctx, dep.Name, []map[string]any{locationDoc("a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.WaitForLoad(ctx, dep.Name, []string{"a"},
		dagster.WaitOptions{LocationLoadTimeout: time.Minute, AgentHeartbeatTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	ops := dagster.Operations()
	reqs := h.emu.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, want := range []struct{ op, deployment, path string }{
		{"CliCreateOrUpdateBranchDeployment", "", "/graphql"},
		{"CliDeployLocations", dep.Name, "/" + dep.Name + "/graphql"},
		{"CliAgentStatus", dep.Name, "/" + dep.Name + "/graphql"},
		{"CliLocationsQuery", dep.Name, "/" + dep.Name + "/graphql"},
	} {
		r := reqs[i]
		if r.Operation != want.op || r.Deployment != want.deployment || r.Path != want.path {
			t.Errorf("request %d: %s %q %s, want %+v", i, r.Operation, r.Deployment, r.Path, want)
		}
		if r.Query != ops[want.op] {
			t.Errorf("request %d: query is not the embedded operation text", i)
		}
		for k, v := range map[string]string{
			"Dagster-Cloud-Api-Token":  testToken,
			"Content-Type":             "application/json",
			"Dagster-Cloud-Scope":      "deployment",
			"User-Agent":               "dagster-branch-deploy/test",
			"Dagster-Cloud-Deployment": want.deployment,
		} {
			if got := r.Headers.Get(k); got != v {
				t.Errorf("request %d: %s = %q, want %q", i, k, got, v)
			}
		}
		if _, ok := r.Headers["Dagster-Cloud-Deployment"]; ok && want.deployment == "" {
			t.Errorf("request %d: deployment header at organization scope", i)
		}
	}
	if got := reqs[1].Variables; !reflect.DeepEqual(got, map[string]any{"document": map[string]any{"locations": []any{locationDoc("a")}}}) {
		// locationDoc's nested maps compare equal after the JSON round trip.
		t.Errorf("deploy variables = %#v", got)
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("connection refused is retried", func(t *testing.T) {
		t.Parallel()
		ts := httptest.NewServer(http.NotFoundHandler())
		url := ts.URL
		ts.Close()
		clock := &fakeClock{now: time.Now()}
		logs := &logRecorder{}
		c := dagster.New(url, testToken, dagster.WithSleep(clock.Sleep), dagster.WithClock(clock.Now), dagster.WithLogf(logs.Logf))
		_, err := c.AddOrUpdateLocation(ctx, "prod", locationDoc("a"))
		var re *dagster.RetryError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "gave up after 3 retries") {
			t.Fatalf("err = %v", err)
		}
		if got := clock.Sleeps(); !reflect.DeepEqual(got, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}) {
			t.Errorf("sleeps = %v", got)
		}
		if n := logs.Count("Retrying in"); n != 3 {
			t.Errorf("%d retry lines", n)
		}
	})
	t.Run("read timeout retried for queries", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil, dagster.WithRequestTimeout(50*time.Millisecond))
		h.emu.InjectFault(dagsteremu.Fault{Delay: 5 * time.Second, Operation: "CliAgentStatus"})
		_, err := h.client.WaitForLoad(ctx, "prod", []string{"x"},
			dagster.WaitOptions{LocationLoadTimeout: time.Nanosecond, AgentHeartbeatTimeout: time.Hour})
		if err == nil || !strings.Contains(err.Error(), "Timed out") {
			t.Fatalf("err = %v", err)
		}
		if n := len(h.requests("CliAgentStatus")); n != 2 {
			t.Errorf("%d agent status requests, want 2", n)
		}
	})
	t.Run("read timeout not retried for mutations", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil, dagster.WithRequestTimeout(50*time.Millisecond))
		h.emu.InjectFault(dagsteremu.Fault{Delay: 5 * time.Second, Operation: "CliDeployLocations"})
		_, err := h.client.DeployLocations(ctx, "prod", []map[string]any{locationDoc("a")})
		if err == nil || !strings.Contains(err.Error(), "not retried") {
			t.Fatalf("err = %v", err)
		}
		if n := len(h.requests("CliDeployLocations")); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

func TestBranchDeploymentState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, nil)
	name := h.emu.BranchDeploymentName(testBranch.RepoName, testBranch.BranchName)

	// Before the first createOrUpdateBranchDeployment: it does not exist.
	st, err := h.client.BranchDeploymentState(ctx, testBranch.RepoName, testBranch.BranchName)
	if err != nil {
		t.Fatal(err)
	}
	if want := (dagster.BranchState{Name: name}); st != want {
		t.Errorf("before create: %+v, want %+v", st, want)
	}
	if n := len(h.emu.Deployments()); n != 1 {
		t.Errorf("reading created a deployment: %d deployments", n)
	}

	// After creating it with commit X at time T.
	if _, err := h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, ""); err != nil {
		t.Fatal(err)
	}
	st, err = h.client.BranchDeploymentState(ctx, testBranch.RepoName, testBranch.BranchName)
	if err != nil {
		t.Fatal(err)
	}
	want := dagster.BranchState{Exists: true, Name: name, CommitHash: "3f2c1a9e",
		CommitTime: time.Unix(1716390000, 0).UTC(), PullRequestStatus: "OPEN"}
	if st != want {
		t.Errorf("after create: %+v, want %+v", st, want)
	}

	// After closing the pull request with another commit (fractional timestamp).
	closed := testBranch
	closed.PullRequestStatus = "closed"
	commit := testCommit
	commit.CommitHash, commit.Timestamp = "9999abcd", 1716393600.25
	if _, err := h.client.CreateOrUpdateBranchDeployment(ctx, closed, commit, ""); err != nil {
		t.Fatal(err)
	}
	st, err = h.client.BranchDeploymentState(ctx, testBranch.RepoName, testBranch.BranchName)
	if err != nil {
		t.Fatal(err)
	}
	want = dagster.BranchState{Exists: true, Name: name, CommitHash: "9999abcd",
		CommitTime: time.Unix(1716393600, 250_000_000).UTC(), PullRequestStatus: "CLOSED"}
	if st != want {
		t.Errorf("after close: %+v, want %+v", st, want)
	}

	// Both operations are sent at organization scope, with the embedded text.
	ops := dagster.Operations()
	for _, op := range []string{"CliGetBranchDeploymentName", "CliDeploymentByName"} {
		reqs := h.requests(op)
		if len(reqs) != 3 {
			t.Fatalf("%s: %d requests", op, len(reqs))
		}
		r := reqs[0]
		if r.Path != "/graphql" || r.Deployment != "" || r.Query != ops[op] {
			t.Errorf("%s: not the organization-scoped embedded operation: %+v", op, r)
		}
	}
	if got := h.requests("CliGetBranchDeploymentName")[0].Variables; !reflect.DeepEqual(got,
		map[string]any{"repoName": "acme/data-platform", "branchName": "feature/new-assets"}) {
		t.Errorf("variables = %#v", got)
	}
	if got := h.requests("CliDeploymentByName")[0].Variables; !reflect.DeepEqual(got, map[string]any{"name": name}) {
		t.Errorf("variables = %#v", got)
	}
}

func TestBranchDeploymentStateErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("empty branch", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		if _, err := h.client.BranchDeploymentState(ctx, "acme/data-platform", " "); err == nil {
			t.Error("no error")
		}
		if n := len(h.emu.Requests()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, []dagsteremu.Option{dagsteremu.WithTokens("another-token"), dagsteremu.WithUnauthorizedAsTypename()})
		// getBranchDeploymentName is a plain String!: the emulator answers
		// it with a top-level error.
		_, err := h.client.BranchDeploymentState(ctx, testBranch.RepoName, testBranch.BranchName)
		var ge *dagster.GraphQLError
		if !errors.As(err, &ge) || ge.Operation != "CliGetBranchDeploymentName" {
			t.Errorf("err = %v", err)
		}
	})
	for _, tt := range []struct {
		name, body, want string
	}{
		{"PythonError", `{"data":{"deploymentByName":{"__typename":"PythonError","message":"KeyError: 'x'"}}}`,
			"CliDeploymentByName: Dagster+ returned PythonError: KeyError: 'x'"},
		{"UnauthorizedError", `{"data":{"deploymentByName":{"__typename":"UnauthorizedError","message":"no access"}}}`,
			"CliDeploymentByName: Dagster+ returned UnauthorizedError: no access. Dagster+ rejected the API token"},
		{"no typename", `{"data":{"deploymentByName":{}}}`, "Dagster+ returned an unexpected result"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.emu.InjectFault(dagsteremu.Fault{Operation: "CliDeploymentByName", Body: tt.body})
			st, err := h.client.BranchDeploymentState(ctx, testBranch.RepoName, testBranch.BranchName)
			var re *dagster.ResultError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.want) || st != (dagster.BranchState{}) {
				t.Errorf("state %+v, err = %v\nwant it to contain %q", st, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "read branch deployment "+
				h.emu.BranchDeploymentName(testBranch.RepoName, testBranch.BranchName)+" for acme/data-platform@feature/new-assets: ") {
				t.Errorf("message: %v", err)
			}
		})
	}
}

// inflightServer serves emu and counts the requests whose handler has not
// returned yet.
func inflightServer(t *testing.T, emu http.Handler) (*httptest.Server, func() int32) {
	t.Helper()
	var mu sync.Mutex
	var n int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		defer func() {
			mu.Lock()
			n--
			mu.Unlock()
		}()
		emu.ServeHTTP(w, r)
	}))
	count := func() int32 {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	t.Cleanup(func() {
		// Close waits for running handlers: skip it when one is stuck (the
		// test has failed then) rather than hang the package.
		if count() == 0 {
			ts.Close()
		}
	})
	return ts, count
}

// waitIdle fails the test unless every handler returns within 5 s.
func waitIdle(t *testing.T, inflight func() int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for inflight() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d emulator handlers still running 5 s after the client gave up", inflight())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFaultsForOneOperation checks that the emulator fails, hangs or answers
// malformed JSON for one named operation only, as seen by the real client.
func TestFaultsForOneOperation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("fail", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		h.emu.InjectFault(dagsteremu.Fault{Operation: "CliDeploymentByName", Status: 502, Body: "bad gateway", Times: 4})
		_, err := h.client.BranchDeploymentState(ctx, testBranch.RepoName, testBranch.BranchName)
		var re *dagster.RetryError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "CliDeploymentByName: Dagster+ API at ") ||
			!strings.Contains(err.Error(), "gave up after 3 retries: HTTP 502 Bad Gateway: bad gateway") {
			t.Fatalf("err = %v", err)
		}
		if a, b := len(h.requests("CliGetBranchDeploymentName")), len(h.requests("CliDeploymentByName")); a != 1 || b != 4 {
			t.Errorf("requests: %d name, %d by name; want 1 and 4", a, b)
		}
		if n := h.emu.PendingFaults(); n != 0 {
			t.Errorf("%d faults pending", n)
		}
		// Other operations are not affected.
		if _, err := h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, ""); err != nil {
			t.Errorf("create: %v", err)
		}
	})

	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		body := `{"data": {"deploymentByName": {"__typename": "DagsterCloudDeployment", "deploymentName": "3f`
		h.emu.InjectFault(dagsteremu.Fault{Operation: "CliDeploymentByName", Body: body, Times: 4})
		_, err := h.client.BranchDeploymentState(ctx, testBranch.RepoName, testBranch.BranchName)
		var he *dagster.HTTPError
		if !errors.As(err, &he) || he.StatusCode != 200 || he.Body != body ||
			!strings.Contains(err.Error(), "CliDeploymentByName: Dagster+ API at ") ||
			!strings.Contains(err.Error(), "returned an unexpected (non-GraphQL) response with HTTP 200") {
			t.Fatalf("err = %v", err)
		}
		// Not retried, and the name query before it was answered normally.
		if a, b := len(h.requests("CliGetBranchDeploymentName")), len(h.requests("CliDeploymentByName")); a != 1 || b != 1 {
			t.Errorf("requests: %d name, %d by name; want 1 and 1", a, b)
		}
	})

	t.Run("hang until the request timeout", func(t *testing.T) {
		t.Parallel()
		emu := dagsteremu.New(dagsteremu.WithTokens(testToken))
		ts, inflight := inflightServer(t, emu)
		clock := &fakeClock{now: time.Now()}
		logs := &logRecorder{}
		c := dagster.New(ts.URL, testToken, dagster.WithHTTPClient(ts.Client()), dagster.WithSleep(clock.Sleep),
			dagster.WithClock(clock.Now), dagster.WithLogf(logs.Logf), dagster.WithRequestTimeout(100*time.Millisecond))
		emu.InjectFault(dagsteremu.Fault{Operation: "CliDeploymentByName", Delay: time.Hour})
		start := time.Now()
		// The hung query times out and is retried; the retry is answered.
		st, err := c.BranchDeploymentState(ctx, testBranch.RepoName, testBranch.BranchName)
		if err != nil || st.Exists || st.Name == "" {
			t.Fatalf("state %+v, err %v", st, err)
		}
		waitIdle(t, inflight)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
		if n := logs.Count("no response within 100ms"); n != 1 {
			t.Errorf("retry log lines: %q", logs.Lines())
		}
		var byName int
		for _, r := range emu.Requests() {
			if r.Operation == "CliDeploymentByName" {
				byName++
			}
		}
		if byName != 2 {
			t.Errorf("%d CliDeploymentByName requests, want 2", byName)
		}
	})

	t.Run("hang until the context is cancelled", func(t *testing.T) {
		t.Parallel()
		emu := dagsteremu.New(dagsteremu.WithTokens(testToken))
		ts, inflight := inflightServer(t, emu)
		c := dagster.New(ts.URL, testToken, dagster.WithHTTPClient(ts.Client()))
		emu.InjectFault(dagsteremu.Fault{Operation: "CliGetBranchDeploymentName", Delay: time.Hour})
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := c.BranchDeploymentState(cctx, testBranch.RepoName, testBranch.BranchName)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "CliGetBranchDeploymentName") {
			t.Fatalf("err = %v", err)
		}
		waitIdle(t, inflight)
	})
}
