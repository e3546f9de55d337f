package dagster_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

func TestAgentType(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		opts       []dagsteremu.Option
		faults     []dagsteremu.Fault
		deployment string
		want       string
		wantErr    string
	}{
		{name: "hybrid", deployment: "prod", want: dagster.AgentTypeHybrid},
		{name: "serverless", opts: []dagsteremu.Option{dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: "r/x"})},
			deployment: "prod", want: dagster.AgentTypeServerless},
		{name: "no deployment", wantErr: "no deployment given"},
		{name: "unknown deployment", deployment: "nope", wantErr: `reading the agent type of deployment nope: DeploymentInfoQuery: Dagster+ API at`},
		{name: "unknown agent type", deployment: "prod",
			faults:  []dagsteremu.Fault{{Operation: "DeploymentInfoQuery", Body: `{"data":{"currentDeployment":{"agentType":"EDGE"}}}`}},
			wantErr: `Dagster+ returned agentType "EDGE", which this action does not know`},
		{name: "retried like any query", deployment: "prod",
			faults: []dagsteremu.Fault{{Operation: "DeploymentInfoQuery", Status: 503}}, want: dagster.AgentTypeHybrid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.opts)
			for _, f := range tc.faults {
				h.emu.InjectFault(f)
			}
			got, err := h.client.AgentType(ctx, tc.deployment)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("AgentType = %q, %v; want %q", got, err, tc.want)
			}
			reqs := h.requests("DeploymentInfoQuery")
			last := reqs[len(reqs)-1]
			if last.Deployment != tc.deployment || last.Path != "/"+tc.deployment+"/graphql" ||
				last.Headers.Get("Dagster-Cloud-Deployment") != tc.deployment {
				t.Errorf("request = %+v", last)
			}
		})
	}
}

const (
	ecrURL    = "123456789012.dkr.ecr.us-west-2.amazonaws.com/dagster-cloud-serverless-acme"
	localURL  = "127.0.0.1:5000/dagster-serverless"
	regSecret = "ecr-s3cret-password"
)

func TestServerlessRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	serverless := func(r dagsteremu.ServerlessRegistry, more ...dagsteremu.Option) []dagsteremu.Option {
		return append([]dagsteremu.Option{dagsteremu.WithServerless(r)}, more...)
	}
	tenSeconds := func(n int) []time.Duration { return repeat(10*time.Second, n) }
	for _, tc := range []struct {
		name       string
		opts       []dagsteremu.Option
		setup      func(*dagsteremu.Server)
		faults     []dagsteremu.Fault
		deployment string
		want       dagster.ServerlessRegistry
		wantErr    string
		check      func(t *testing.T, err error)
		wantSleeps []time.Duration
		wantOps    []string // operations requested, in order
		wantLogs   []string
	}{
		{
			name:       "ECR registry: no registryIsHarbor query",
			opts:       serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret, Region: "us-west-2"}),
			deployment: "prod",
			want:       dagster.ServerlessRegistry{URL: ecrURL, Region: "us-west-2", Username: "AWS", Password: regSecret},
			wantOps:    []string{"CliGetEcrInfo"},
		},
		{
			name: "local registry with an htpasswd user, custom base allowed",
			opts: serverless(dagsteremu.ServerlessRegistry{URL: localURL, Username: "testuser", Password: regSecret,
				AllowCustomBase: true}),
			deployment: "prod",
			want: dagster.ServerlessRegistry{URL: localURL, Region: dagsteremu.DefaultServerlessRegion, Username: "testuser",
				Password: regSecret, AllowCustomBase: true, HarborKnown: true},
			wantOps: []string{"CliGetEcrInfo", "CliServerlessRegistryIsHarbor"},
		},
		{
			name:       "Harbor",
			opts:       serverless(dagsteremu.ServerlessRegistry{URL: "harbor.example.com/dagster/acme-prod", Password: regSecret, IsHarbor: true}),
			deployment: "prod",
			want: dagster.ServerlessRegistry{URL: "harbor.example.com/dagster/acme-prod", Region: dagsteremu.DefaultServerlessRegion,
				Username: "AWS", Password: regSecret, IsHarbor: true, HarborKnown: true},
			wantOps: []string{"CliGetEcrInfo", "CliServerlessRegistryIsHarbor"},
		},
		{
			name: "server without registryIsHarbor",
			opts: serverless(dagsteremu.ServerlessRegistry{URL: localURL, Password: regSecret, IsHarbor: true},
				dagsteremu.WithReferenceSchemaOnly()),
			deployment: "prod",
			want: dagster.ServerlessRegistry{URL: localURL, Region: dagsteremu.DefaultServerlessRegion, Username: "AWS",
				Password: regSecret},
			wantOps:  []string{"CliGetEcrInfo", "CliServerlessRegistryIsHarbor"},
			wantLogs: []string{`Dagster+ does not know Serverless.registryIsHarbor (Cannot query field "registryIsHarbor" on type "Serverless".`},
		},
		{
			name:    "organization scope",
			opts:    serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}),
			want:    dagster.ServerlessRegistry{URL: ecrURL, Region: dagsteremu.DefaultServerlessRegion, Username: "AWS", Password: regSecret},
			wantOps: []string{"CliGetEcrInfo"},
		},
		{
			name: "activating: available on the 4th attempt",
			opts: serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret},
				dagsteremu.WithServerlessPending(3)),
			deployment: "prod",
			want:       dagster.ServerlessRegistry{URL: ecrURL, Region: dagsteremu.DefaultServerlessRegion, Username: "AWS", Password: regSecret},
			wantSleeps: tenSeconds(3),
			wantOps: []string{"CliGetEcrInfo", "CliServerlessStatus", "CliGetEcrInfo", "CliServerlessStatus",
				"CliGetEcrInfo", "CliServerlessStatus", "CliGetEcrInfo"},
			wantLogs: []string{
				"Could not load registry information - your serverless deployment may still be activating " +
					"(Dagster+ gave no registry URL and no credentials for deployment prod, Serverless agent status PROVISIONING). " +
					"Retrying in 10s (attempt 1 of 6)...",
				"Retrying in 10s (attempt 3 of 6)...",
			},
		},
		{
			name: "still activating after 6 attempts",
			opts: serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret},
				dagsteremu.WithServerlessPending(6)),
			deployment: "prod",
			wantErr: "No serverless registry information found - your serverless deployment may still be activating: " +
				"Dagster+ gave no registry URL or credentials for deployment prod in 6 attempts over 50s",
			check: func(t *testing.T, err error) {
				var ne *dagster.RegistryNotAvailableError
				if !errors.As(err, &ne) || ne.Attempts != 6 || ne.Waited != 50*time.Second {
					t.Errorf("err = %#v", err)
				}
			},
			wantSleeps: tenSeconds(5),
		},
		{
			name:       "Serverless not enabled (a Hybrid organization)",
			deployment: "prod",
			wantErr: "Dagster+ Serverless is not enabled for this organization (Serverless agent status INACTIVE), " +
				"so Dagster+ hands out no image registry for deployment prod",
			check: func(t *testing.T, err error) {
				var ne *dagster.ServerlessNotEnabledError
				if !errors.As(err, &ne) || ne.Status != "INACTIVE" {
					t.Errorf("err = %#v", err)
				}
			},
			wantOps: []string{"CliGetEcrInfo", "CliServerlessStatus"},
		},
		{
			name:       "provisioning failed",
			opts:       serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}),
			setup:      func(s *dagsteremu.Server) { s.SetServerlessStatus("PROVISION_ERROR", "CloudFormation stack failed\n") },
			deployment: "prod",
			wantErr: "Dagster+ gave no serverless registry for deployment prod: the organization's Serverless agent is in state " +
				"PROVISION_ERROR: CloudFormation stack failed. Retrying will not help",
			check: func(t *testing.T, err error) {
				var se *dagster.ServerlessStatusError
				var re *dagster.ResultError
				if !errors.As(err, &se) || !errors.As(err, &re) || re.Typename != "PythonError" {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:       "status unreadable: retried as activating, status asked once",
			opts:       serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}, dagsteremu.WithServerlessPending(1)),
			faults:     []dagsteremu.Fault{{Operation: "CliServerlessStatus", Body: `{"errors":[{"message":"Unauthorized for status"}]}`}},
			deployment: "prod",
			want:       dagster.ServerlessRegistry{URL: ecrURL, Region: dagsteremu.DefaultServerlessRegion, Username: "AWS", Password: regSecret},
			wantSleeps: tenSeconds(1),
			wantOps:    []string{"CliGetEcrInfo", "CliServerlessStatus", "CliGetEcrInfo"},
			wantLogs:   []string{"Could not read the Serverless agent status of deployment prod", "Unauthorized for status"},
		},
		{
			name: "URL without credentials is not available",
			opts: serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}),
			faults: []dagsteremu.Fault{{Operation: "CliGetEcrInfo", Times: 1,
				Body: `{"data":{"serverless":{"awsRegion":"us-west-2","awsAuthToken":null,"registryAllowCustomBase":false,"registryUrl":"` + ecrURL + `"}}}`}},
			deployment: "prod",
			want:       dagster.ServerlessRegistry{URL: ecrURL, Region: dagsteremu.DefaultServerlessRegion, Username: "AWS", Password: regSecret},
			wantSleeps: tenSeconds(1),
			wantLogs:   []string{"Dagster+ gave no credentials for deployment prod, Serverless agent status ACTIVE"},
		},
		{
			name: "token not base64",
			opts: serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}),
			faults: []dagsteremu.Fault{{Operation: "CliGetEcrInfo",
				Body: `{"data":{"serverless":{"awsRegion":"us-west-2","awsAuthToken":"%%` + regSecret + `","registryAllowCustomBase":false,"registryUrl":"` + ecrURL + `"}}}`}},
			deployment: "prod",
			wantErr:    "Dagster+ returned a serverless registry token (awsAuthToken) that is not base64 of <user>:<password>: it is not valid base64",
		},
		{
			name: "token without a colon",
			opts: serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}),
			faults: []dagsteremu.Fault{{Operation: "CliGetEcrInfo",
				Body: `{"data":{"serverless":{"awsRegion":"us-west-2","awsAuthToken":"` + base64.StdEncoding.EncodeToString([]byte(regSecret)) +
					`","registryAllowCustomBase":false,"registryUrl":"` + ecrURL + `"}}}`}},
			deployment: "prod",
			wantErr:    `the decoded token has no ":"`,
			check: func(t *testing.T, err error) {
				var te *dagster.RegistryTokenError
				if !errors.As(err, &te) {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name: "unreadable answer does not quote the token",
			opts: serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}),
			faults: []dagsteremu.Fault{{Operation: "CliGetEcrInfo",
				Body: `{"data":{"serverless":{"awsRegion":7,"awsAuthToken":"` + base64.StdEncoding.EncodeToString([]byte("AWS:"+regSecret)) +
					`","registryUrl":"` + ecrURL + `"}}}`}},
			deployment: "prod",
			wantErr:    "CliGetEcrInfo: Dagster+ returned a serverless answer this client cannot read",
		},
		{
			name: "registryIsHarbor failing otherwise is an error",
			opts: serverless(dagsteremu.ServerlessRegistry{URL: localURL, Password: regSecret}),
			faults: []dagsteremu.Fault{{Operation: "CliServerlessRegistryIsHarbor",
				Body: `{"errors":[{"message":"Internal Server Error"}]}`}},
			deployment: "prod",
			wantErr: "reading whether the serverless registry " + localURL + " of deployment prod is Harbor: " +
				"CliServerlessRegistryIsHarbor: Dagster+ API at",
		},
		{
			name:       "GraphQL errors for the registry query",
			opts:       serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}),
			deployment: "nope",
			wantErr:    `reading the serverless registry of deployment nope: CliGetEcrInfo: Dagster+ API at`,
			check: func(t *testing.T, err error) {
				var ge *dagster.GraphQLError
				if !errors.As(err, &ge) {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name: "registry query refused, status INACTIVE",
			faults: []dagsteremu.Fault{{Operation: "CliGetEcrInfo",
				Body: `{"errors":[{"message":"Serverless is not available for this organization"}],"data":null}`}},
			deployment: "prod",
			wantErr:    "Dagster+ Serverless is not enabled for this organization (Serverless agent status INACTIVE)",
			wantOps:    []string{"CliGetEcrInfo", "CliServerlessStatus"},
		},
		{
			name:       "unauthorized",
			opts:       serverless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}, dagsteremu.WithTokens("other")),
			deployment: "prod",
			check: func(t *testing.T, err error) {
				var he *dagster.HTTPError
				if !errors.As(err, &he) || !he.Unauthorized() {
					t.Errorf("err = %#v", err)
				}
			},
			wantErr: "dagster_cloud_api_token",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.opts)
			if tc.setup != nil {
				tc.setup(h.emu)
			}
			for _, f := range tc.faults {
				h.emu.InjectFault(f)
			}
			got, err := h.client.ServerlessRegistry(ctx, tc.deployment)
			for _, line := range h.logs.Lines() {
				if strings.Contains(line, regSecret) {
					t.Errorf("log line holds the registry password: %s", line)
				}
			}
			if err != nil && strings.Contains(err.Error(), regSecret) {
				t.Errorf("error holds the registry password: %v", err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v\nwant %q", err, tc.wantErr)
				}
				if tc.check != nil {
					tc.check(t, err)
				}
			} else if err != nil {
				t.Fatalf("ServerlessRegistry: %v", err)
			} else if got != tc.want {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
			if sleeps := h.clock.Sleeps(); !slices.Equal(sleeps, tc.wantSleeps) {
				t.Errorf("sleeps = %v, want %v", sleeps, tc.wantSleeps)
			}
			if tc.wantOps != nil {
				var ops []string
				for _, r := range h.emu.Requests() {
					ops = append(ops, r.Operation)
					if r.Deployment != tc.deployment {
						t.Errorf("%s sent to deployment %q, want %q", r.Operation, r.Deployment, tc.deployment)
					}
				}
				if !slices.Equal(ops, tc.wantOps) {
					t.Errorf("operations = %v, want %v", ops, tc.wantOps)
				}
			}
			for _, want := range tc.wantLogs {
				if h.logs.Count(want) == 0 {
					t.Errorf("no log line contains %q; logs:\n%s", want, strings.Join(h.logs.Lines(), "\n"))
				}
			}
		})
	}
}

func TestServerlessRegistryRedactsPassword(t *testing.T) {
	t.Parallel()
	r := dagster.ServerlessRegistry{URL: ecrURL, Username: "AWS", Password: regSecret}
	for _, s := range []string{r.String(), fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s", r, r, r, r)} {
		if strings.Contains(s, regSecret) || !strings.Contains(s, "[REDACTED]") {
			t.Errorf("formatted registry = %s", s)
		}
	}
	if got := r.Host(); got != "123456789012.dkr.ecr.us-west-2.amazonaws.com" {
		t.Errorf("Host = %q", got)
	}
	if got := (dagster.ServerlessRegistry{URL: localURL}).Host(); got != "127.0.0.1:5000" {
		t.Errorf("Host = %q", got)
	}
}

// TestServerlessRegistryHTTP drives the client with a hand-written server:
// two answers without a registry (the first with a partial one), then a
// registry; checks the requests' scope and body.
func TestServerlessRegistryHTTP(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var ops []string
	ecrAnswers := []string{
		`{"data":{"serverless":{"awsRegion":"us-east-1","awsAuthToken":null,"registryAllowCustomBase":null,"registryUrl":"` + ecrURL + `"}}}`,
		`{"data":{"serverless":{"awsRegion":"us-east-1","awsAuthToken":null,"registryAllowCustomBase":null,"registryUrl":null}}}`,
		`{"data":{"serverless":{"awsRegion":"us-east-1","awsAuthToken":"` +
			base64.StdEncoding.EncodeToString([]byte("AWS:pa:ss")) + `","registryAllowCustomBase":true,"registryUrl":"` + ecrURL + `/"}}}`,
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req struct {
			Query     string         `json:"query"`
			Variables map[string]any `json:"variables"`
		}
		if err := json.Unmarshal(b, &req); err != nil || req.Variables == nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if r.URL.Path != "/br-1234/graphql" || r.Header.Get("Dagster-Cloud-Deployment") != "br-1234" ||
			r.Header.Get("Dagster-Cloud-Api-Token") != "tok" {
			http.Error(w, "wrong scope", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(req.Query, "query CliGetEcrInfo"):
			ops = append(ops, "CliGetEcrInfo")
			n := 0
			for _, o := range ops {
				if o == "CliGetEcrInfo" {
					n++
				}
			}
			_, _ = io.WriteString(w, ecrAnswers[min(n, len(ecrAnswers))-1])
		case strings.Contains(req.Query, "query CliServerlessStatus"):
			ops = append(ops, "CliServerlessStatus")
			_, _ = io.WriteString(w, `{"data":{"serverless":{"status":"UPDATING","error":null}}}`)
		default:
			ops = append(ops, "other")
			_, _ = io.WriteString(w, `{"errors":[{"message":"unexpected"}]}`)
		}
	}))
	t.Cleanup(ts.Close)
	clock := &fakeClock{now: time.Date(2026, 5, 22, 15, 4, 5, 0, time.UTC)}
	logs := &logRecorder{}
	c := dagster.New(ts.URL, "tok", dagster.WithHTTPClient(ts.Client()), dagster.WithSleep(clock.Sleep),
		dagster.WithClock(clock.Now), dagster.WithLogf(logs.Logf))
	got, err := c.ServerlessRegistry(context.Background(), "br-1234")
	if err != nil {
		t.Fatal(err)
	}
	want := dagster.ServerlessRegistry{URL: ecrURL, Region: "us-east-1", Username: "AWS", Password: "pa:ss", AllowCustomBase: true}
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	wantOps := []string{"CliGetEcrInfo", "CliServerlessStatus", "CliGetEcrInfo", "CliServerlessStatus", "CliGetEcrInfo"}
	if !slices.Equal(ops, wantOps) {
		t.Errorf("ops = %v, want %v", ops, wantOps)
	}
	if n := logs.Count("Retrying in 10s"); n != 2 {
		t.Errorf("%d wait lines, want 2:\n%s", n, strings.Join(logs.Lines(), "\n"))
	}
	if logs.Count("gave no credentials for deployment br-1234, Serverless agent status UPDATING") != 1 ||
		logs.Count("gave no registry URL and no credentials for deployment br-1234") != 1 {
		t.Errorf("logs:\n%s", strings.Join(logs.Lines(), "\n"))
	}
}

func TestServerlessRegistryCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	h := newHarness(t, []dagsteremu.Option{
		dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: ecrURL, Password: regSecret}),
		dagsteremu.WithServerlessPending(6),
	}, dagster.WithSleep(func(context.Context, time.Duration) error {
		cancel()
		return context.Canceled
	}))
	_, err := h.client.ServerlessRegistry(ctx, "prod")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for the serverless registry of deployment prod") {
		t.Fatalf("err = %v", err)
	}
}
