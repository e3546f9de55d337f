package action

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

const serverlessRepo = "123456789012.dkr.ecr.us-west-2.amazonaws.com/acme-serverless"

// serverlessProject writes a project of two locations without a registry:
// etl with a requirements.txt (a Dockerfile is generated), ml with its own
// Dockerfile.
func serverlessProject(t *testing.T, h *harness) {
	t.Helper()
	ws := h.env["GITHUB_WORKSPACE"]
	writeTestFile(t, filepath.Join(ws, "dagster_cloud.yaml"), `locations:
  - location_name: etl
    code_source: {package_name: etl}
    build: {directory: ./etl}
  - location_name: ml
    code_source: {package_name: ml}
    build: {directory: ./ml}
`)
	for name, content := range map[string]string{"etl/requirements.txt": "dagster-cloud\n", "ml/Dockerfile": "FROM scratch\n", "ml/setup.py": ""} {
		path := filepath.Join(ws, name)
		mkdirAll(t, filepath.Dir(path))
		writeTestFile(t, path, content)
	}
}

// TestServerlessBuildsForTheServerlessRegistry: on a Serverless
// organization, locations without build.registry go to the registry
// Dagster+ hands out, with its token; a location without a Dockerfile gets
// upstream's serverless Dockerfile, one with its own uses it; images are
// linux/amd64, tagged per deployment, location and run; the heartbeat
// default is 900 s.
func TestServerlessBuildsForTheServerlessRegistry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"env_vars": `{"MODE": "branch", "TOKEN": "baked-secret-1234"}`, "agent_heartbeat_timeout": ""},
		dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: serverlessRepo, Password: "ecr-password-5678"}))
	delete(h.env, "INPUT_AGENT_HEARTBEAT_TIMEOUT")
	serverlessProject(t, h)
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if len(h.docker.specs) != 2 {
		t.Fatalf("%d builds", len(h.docker.specs))
	}
	etl, ml := h.docker.spec(t, "etl"), h.docker.spec(t, "ml")
	if etl.Tags[0] != serverlessRepo+":branch-etl-ec26c3e57ca3-9-1" || ml.Tags[0] != serverlessRepo+":branch-ml-ec26c3e57ca3-9-1" {
		t.Errorf("tags %v, %v", etl.Tags, ml.Tags)
	}
	gen := string(etl.DockerfileContent)
	if etl.Dockerfile != "" || !strings.Contains(gen, "\nFROM python:3.11-slim\n") || !strings.Contains(gen, "requirements.txt") || !strings.Contains(gen, "ENV MODE=\"branch\"") {
		t.Errorf("etl Dockerfile %q:\n%s", etl.Dockerfile, gen)
	}
	if ml.DockerfileContent != nil || ml.Dockerfile != "Dockerfile" {
		t.Errorf("ml does not build its own Dockerfile: %q %q", ml.Dockerfile, ml.DockerfileContent)
	}
	if etl.Platform != "linux/amd64" || ml.Platform != "linux/amd64" {
		t.Errorf("platforms %s, %s", etl.Platform, ml.Platform)
	}
	if len(h.docker.logins) != 1 || h.docker.logins[0].Username != "AWS" || h.docker.logins[0].Password != "ecr-password-5678" {
		t.Errorf("logins %+v", h.docker.logins)
	}
	if !strings.Contains(h.out.String(), "up to 15m0s for an agent to answer") {
		t.Errorf("log:\n%s", h.out.String())
	}
	for _, secret := range []string{"ecr-password-5678"} {
		if strings.Contains(stripMasks(h.out.String()), secret) || strings.Contains(h.comment(t), secret) {
			t.Errorf("%s leaks", secret)
		}
	}
	var branch dagsteremu.Deployment
	for _, d := range h.dagster.Deployments() {
		if d.Type == "BRANCH" {
			branch = d
		}
	}
	if len(branch.Locations) != 2 || branch.Locations[0].Document["image"] != serverlessRepo+":branch-etl-ec26c3e57ca3-9-1@sha256:"+strings.Repeat("a", 64) &&
		branch.Locations[0].Document["image"] != serverlessRepo+":branch-etl-ec26c3e57ca3-9-1" {
		t.Errorf("deployed %+v", branch.Locations)
	}
}

// TestServerlessHarborAndHeartbeat: with a Harbor registry each location
// has its own repository; heartbeat defaults to 900 s.
func TestServerlessHarborAndHeartbeat(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"location_load_timeout": "3000"}, dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: "harbor.example/acme-prod", Password: "harbor-password", IsHarbor: true}))
	delete(h.env, "INPUT_AGENT_HEARTBEAT_TIMEOUT")
	h.dagster.SetAgentRunning(false)
	serverlessProject(t, h)
	var ticks atomic.Int64
	h.now = func() time.Time { return time.Unix(ticks.Add(1), 0) } // called from several goroutines
	err := h.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "heartbeat") && !strings.Contains(err.Error(), "agent") {
		t.Fatalf("err = %v", err)
	}
	if tags := h.docker.spec(t, "etl").Tags; tags[0] != "harbor.example/acme-prod/etl:branch-etl-ec26c3e57ca3-9-1" {
		t.Errorf("tags %v", tags)
	}
	if !strings.Contains(h.out.String(), "15m0s") && !strings.Contains(err.Error(), "900") && !strings.Contains(err.Error(), "15m") {
		t.Errorf("not the Serverless heartbeat default: %v\n%s", err, h.out.String())
	}
}

// TestServerlessRefusals: a custom base image the organization does not
// allow, and a location with neither a Dockerfile nor dependency files,
// fail before any build; a registry that is not ready yet is waited for,
// then fails saying the deployment may still be activating.
func TestServerlessRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"base_image": "ghcr.io/acme/base:1"}, dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: serverlessRepo, Password: "p4ssword"}))
	serverlessProject(t, h)
	err := h.run(context.Background())
	var ie *InputError
	if !errors.As(err, &ie) || ie.Input != "base_image" || len(h.docker.specs) != 0 {
		t.Errorf("custom base: err = %v, %d builds", err, len(h.docker.specs))
	}

	h = newHarness(t, nil, dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: serverlessRepo, Password: "p4ssword"}))
	serverlessProject(t, h)
	writeTestFile(t, filepath.Join(h.env["GITHUB_WORKSPACE"], "etl", "requirements.txt"), "x")
	removeFile(t, filepath.Join(h.env["GITHUB_WORKSPACE"], "etl", "requirements.txt"))
	if err := h.run(context.Background()); err == nil || !strings.Contains(err.Error(), "location etl") || len(h.docker.specs) != 0 {
		t.Errorf("no dependencies: err = %v, %d builds", err, len(h.docker.specs))
	}

	h = newHarness(t, nil, dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: serverlessRepo, Password: "p4ssword"}), dagsteremu.WithServerlessPending(100))
	serverlessProject(t, h)
	h.now = func() time.Time { return time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC) }
	if err := h.run(context.Background()); err == nil || !strings.Contains(err.Error(), "may still be activating") || len(h.docker.specs) != 0 {
		t.Errorf("pending: err = %v", err)
	}
	if n := strings.Count(h.out.String(), "Retrying in 10s"); n != 5 {
		t.Errorf("%d visible waits:\n%s", n, h.out.String())
	}
}

// TestServerlessPEXNotice: a project set up for PEX fast deploys is told,
// once, that Docker deploys are used.
func TestServerlessPEXNotice(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: serverlessRepo, Password: "p4ssword"}))
	h.env["ENABLE_FAST_DEPLOYS"] = "true"
	serverlessProject(t, h)
	if err := h.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(h.out.String(), "::notice::"); n != 1 || !strings.Contains(h.out.String(), "PEX") {
		t.Errorf("%d notices:\n%s", n, h.out.String())
	}
}

// TestHybridUnchanged: on a Hybrid organization a location without a
// registry is still an error at its line.
func TestHybridUnchanged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	serverlessProject(t, h)
	err := h.run(context.Background())
	var ae *Error
	if !errors.As(err, &ae) || ae.Line != 4 || !strings.Contains(ae.Msg, "build.registry") {
		t.Errorf("err = %v", err)
	}
}

func stripMasks(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.HasPrefix(l, "::add-mask::") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
