package action

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/registry"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/github"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/githubemu"
)

// fakeDocker records builds and pushes; the e2e tests use the real daemon.
type fakeDocker struct {
	mu       sync.Mutex
	specs    []imagebuild.Spec
	pushes   []string
	buildErr error
	pushErr  error
	onBuild  func()
	// buildErrFor fails the build of the named location (its location
	// label) when set, instead of buildErr.
	buildErrFor map[string]error
	// pushErrFor, when set, decides a push's error by reference.
	pushErrFor func(ref string) error
	// built holds the labels of the image each tag names; registry
	// receives what is pushed.
	built    map[string]map[string]string
	registry *fakeRegistry
	logins   []registry.AuthConfig
}

func (f *fakeDocker) Build(_ context.Context, s imagebuild.Spec) (string, error) {
	f.mu.Lock()
	f.specs = append(f.specs, s)
	if f.built == nil {
		f.built = map[string]map[string]string{}
	}
	for _, tag := range s.Tags {
		f.built[tag] = s.Labels
	}
	onBuild, err := f.onBuild, f.buildErr
	if f.buildErrFor != nil {
		err = f.buildErrFor[s.Labels["dev.dagster.location"]]
	}
	f.mu.Unlock()
	if onBuild != nil {
		onBuild()
	}
	return "sha256:image", err
}

// WithLog returns the fake writing a line per build step to log, as the
// daemon's output would.
func (f *fakeDocker) WithLog(log io.Writer) Docker { return &loggingDocker{fakeDocker: f, log: log} }

type loggingDocker struct {
	*fakeDocker
	log io.Writer
}

func (d *loggingDocker) Build(ctx context.Context, s imagebuild.Spec) (string, error) {
	name := s.Labels["dev.dagster.location"]
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(d.log, "#%d [%s] step %d\n", i, name, i)
	}
	return d.fakeDocker.Build(ctx, s)
}

// spec is the build of the named location (builds run concurrently, in no
// order).
func (f *fakeDocker) spec(t *testing.T, location string) imagebuild.Spec {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.specs {
		if s.Labels["dev.dagster.location"] == location {
			return s
		}
	}
	t.Fatalf("no build of %s in %d builds", location, len(f.specs))
	return imagebuild.Spec{}
}

func (f *fakeDocker) Login(_ context.Context, a registry.AuthConfig, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins = append(f.logins, a)
	return nil
}

func (f *fakeDocker) Push(_ context.Context, ref string, _ registry.AuthConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes = append(f.pushes, ref)
	if f.pushErr != nil {
		return "", f.pushErr
	}
	if f.pushErrFor != nil {
		if err := f.pushErrFor(ref); err != nil {
			return "", err
		}
	}
	if f.registry != nil {
		f.registry.put(ref, imagebuild.RemoteInfo{Digest: "sha256:" + strings.Repeat("a", 64), Labels: f.built[ref]})
	}
	return "sha256:" + strings.Repeat("a", 64), nil
}

// fakeRegistry is the registries reuse talks to: what was pushed, by
// reference; base images do not resolve.
type fakeRegistry struct {
	mu     sync.Mutex
	images map[string]imagebuild.RemoteInfo
	tagged []string
	// looked are the references looked up; lookupErr fails every lookup.
	looked    []string
	lookupErr error
}

func (r *fakeRegistry) put(ref string, info imagebuild.RemoteInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[ref] = info
}

func (r *fakeRegistry) DistributionInspect(_ context.Context, ref, _ string) (registry.DistributionInspect, error) {
	return registry.DistributionInspect{}, errors.New(ref + ": not in the fake registry")
}

func (r *fakeRegistry) RemoteImage(_ context.Context, ref string, _ registry.AuthConfig) (imagebuild.RemoteInfo, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.looked = append(r.looked, ref)
	if r.lookupErr != nil {
		return imagebuild.RemoteInfo{}, false, r.lookupErr
	}
	info, ok := r.images[ref]
	return info, ok, nil
}

func (r *fakeRegistry) TagRemote(_ context.Context, src, dst string, _ registry.AuthConfig) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	info, ok := r.images[src]
	if !ok {
		return "", errors.New(src + ": not found")
	}
	r.images[dst] = info
	r.tagged = append(r.tagged, dst)
	return info.Digest, nil
}

type harness struct {
	registry *fakeRegistry
	env      map[string]string
	out      bytes.Buffer
	docker   *fakeDocker
	dagster  *dagsteremu.Server
	github   *githubemu.Server
	now      func() time.Time // the run's clock and Dagster+ client's; nil: the real one
	// progressEvery is Env.ProgressEvery.
	progressEvery time.Duration
}

// agentToken has the shape of a real Dagster+ agent token.
const agentToken = "agent:acme:3f9a0c2e7b41d8a6c5e09f1b2d7a4c68"

const yamlDoc = `defaults:
  build: {registry: r.example/acme/app, build_args: {A: from-yaml}}
locations:
  - location_name: etl
    code_source: {package_name: etl}
    build: {directory: ./etl, dockerfile: docker/Dockerfile, target: runtime}
  - location_name: ml
    code_source: {package_name: ml}
    build: {directory: ./ml, cache: false}
`

func newHarness(t *testing.T, inputs map[string]string, emuOpts ...dagsteremu.Option) *harness {
	t.Helper()
	dir := t.TempDir()
	emuOpts = append([]dagsteremu.Option{dagsteremu.WithTokens("dg-token-1234", agentToken)}, emuOpts...)
	reg := &fakeRegistry{images: map[string]imagebuild.RemoteInfo{}}
	h := &harness{docker: &fakeDocker{registry: reg}, registry: reg, dagster: dagsteremu.New(emuOpts...), github: githubemu.New("gh-token-1234", "bot")}
	dsrv, gsrv := httptest.NewServer(h.dagster), httptest.NewServer(h.github)
	t.Cleanup(dsrv.Close)
	t.Cleanup(gsrv.Close)
	event, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", "pull_request.opened.json"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"event.json": string(event), "ws/dagster_cloud.yaml": yamlDoc, "output": "", "summary": ""}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.env = map[string]string{
		"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": filepath.Join(dir, "event.json"),
		"GITHUB_WORKSPACE": filepath.Join(dir, "ws"), "GITHUB_OUTPUT": filepath.Join(dir, "output"),
		"GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary"), "GITHUB_RUN_ID": "9", "GITHUB_RUN_ATTEMPT": "1",
		"GITHUB_API_URL": githubemu.URL(gsrv.URL), "GITHUB_REPOSITORY": "Codertocat/Hello-World",
		"DOCKER_CONFIG":         filepath.Join(dir, "docker-config"),
		"INPUT_ORGANIZATION_ID": "acme", "INPUT_DAGSTER_CLOUD_API_TOKEN": "dg-token-1234",
		"INPUT_DAGSTER_CLOUD_URL": dsrv.URL, "INPUT_GITHUB_TOKEN": "gh-token-1234",
		"INPUT_LOCATION_LOAD_TIMEOUT": "30",
	}
	for k, v := range inputs {
		h.env["INPUT_"+strings.ToUpper(k)] = v
	}
	return h
}

func (h *harness) run(ctx context.Context) error {
	getenv := func(k string) string { return h.env[k] }
	opts := []dagster.Option{dagster.WithPollInterval(time.Millisecond)}
	if h.now != nil {
		opts = append(opts, dagster.WithClock(h.now), dagster.WithSleep(func(context.Context, time.Duration) error { return nil }))
	}
	return Run(ctx, Env{
		NewPlatform:    func(log io.Writer) platform.Platform { return github.NewActions(getenv, &h.out, log, nil) },
		Stdout:         &h.out,
		NewDocker:      func(context.Context, io.Writer) (Docker, error) { return h.docker, nil },
		DagsterOptions: opts,
		Now:            h.now,
		ProgressEvery:  h.progressEvery,
		Registry:       h.registry,
	})
}

func (h *harness) comment(t *testing.T) string {
	t.Helper()
	cs := h.github.Comments("Codertocat", "Hello-World", 2)
	if len(cs) != 1 {
		t.Fatalf("%d comments", len(cs))
	}
	return cs[0].Body
}

// TestPipelineBuildSpecs checks what the pipeline asks the builder for:
// inputs and per-location overrides, secrets, the registry cache and tags.
func TestPipelineBuildSpecs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"build_args": "A=from-input\nB=b", "build_secrets": "tok=build-secret-99", "labels": "team=data"})
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if len(h.docker.specs) != 2 {
		t.Fatalf("%d builds", len(h.docker.specs))
	}
	etl, ml := h.docker.spec(t, "etl"), h.docker.spec(t, "ml")
	if etl.Dockerfile != "docker/Dockerfile" || etl.Target != "runtime" || etl.Platform != "linux/amd64" || !strings.HasSuffix(etl.ContextDir, "ws/etl") {
		t.Errorf("etl spec = %+v", etl)
	}
	if etl.BuildArgs["A"] != "from-yaml" || etl.BuildArgs["B"] != "b" || string(etl.Secrets["tok"]) != "build-secret-99" || etl.Labels["team"] != "data" {
		t.Errorf("etl args %v, secrets %v, labels %v", etl.BuildArgs, etl.Secrets, etl.Labels)
	}
	// Two locations share the repository: their tags and caches are apart.
	// The pull request writes its branch's cache only, and reads it and
	// the default branch's.
	if etl.Tags[0] != "r.example/acme/app:ec26c3e57ca3-9-1-etl" || len(etl.Tags) != 2 || etl.Tags[1] != "r.example/acme/app:buildcache-changes-etl" || !etl.InlineCache ||
		!slices.Equal(etl.CacheFrom, []string{"r.example/acme/app:buildcache-changes-etl", "r.example/acme/app:buildcache-etl"}) {
		t.Errorf("etl tags %v, cache from %v", etl.Tags, etl.CacheFrom)
	}
	if ml.Dockerfile != "Dockerfile" || len(ml.Tags) != 1 || ml.CacheFrom != nil || ml.InlineCache {
		t.Errorf("ml (cache: false) = %+v", ml)
	}
	if len(h.docker.pushes) != 3 {
		t.Errorf("pushes = %v", h.docker.pushes)
	}
	if c := h.comment(t); !strings.Contains(c, "✅ loaded") {
		t.Errorf("comment:\n%s", c)
	}
}

func TestPipelineBuildOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"push": "false", "dagster_cloud_api_token": ""})
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if len(h.docker.pushes) != 0 || len(h.dagster.Requests()) != 0 {
		t.Errorf("push: false pushed %v or called Dagster+ %d times", h.docker.pushes, len(h.dagster.Requests()))
	}
	if !strings.Contains(readFile(t, h.env["GITHUB_OUTPUT"]), "status<<_GitHubActionsFileCommandDelimeter_\nbuilt\n") {
		t.Errorf("outputs:\n%s", readFile(t, h.env["GITHUB_OUTPUT"]))
	}
}

// TestPipelineScrubsSecretsFromFailures: a build that fails with a secret
// in its message (a RUN step that echoed it) leaks it nowhere.
func TestPipelineScrubsSecretsFromFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"build_secrets": "tok=build-secret-99"})
	h.docker.buildErr = errors.New(`step 2 failed: token is "build-secret-99"`)
	err := h.run(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	for where, text := range map[string]string{"error": err.Error(), "comment": h.comment(t), "summary": readFile(t, h.env["GITHUB_STEP_SUMMARY"]), "outputs": readFile(t, h.env["GITHUB_OUTPUT"])} {
		if strings.Contains(text, "build-secret-99") {
			t.Errorf("the secret is in the %s:\n%s", where, text)
		}
	}
	// The branch deployment is brought up to date while the images build;
	// no location is deployed after a failed build.
	for _, r := range h.dagster.Requests() {
		if r.Operation == "CliDeployLocations" || r.Operation == "CliAddOrUpdateLocation" {
			t.Errorf("deployed after a failed build: %s", r.Operation)
		}
	}
}

// TestPipelineCancelled: a cancelled job still tells the PR.
func TestPipelineCancelled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	h.docker.onBuild = cancel
	h.docker.buildErr = context.Canceled
	if err := h.run(ctx); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("err = %v", err)
	}
	if c := h.comment(t); !strings.Contains(c, "Deploy failed:** `the run was cancelled") {
		t.Errorf("comment:\n%s", c)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBuildConfigFile: build options in dagster_branch_deploy.yaml (which
// upstream's dagster-cloud never reads) apply per location; the same keys
// in dagster_cloud.yaml still work, with a deprecation warning at their line.
func TestBuildConfigFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	for _, want := range []string{
		"::warning file=dagster_cloud.yaml,line=2::`defaults.build.build_args` in dagster_cloud.yaml is deprecated",
		"::warning file=dagster_cloud.yaml,line=6::`build.dockerfile` in dagster_cloud.yaml is deprecated",
	} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("no warning %q in:\n%s", want, h.out.String())
		}
	}

	h = newHarness(t, nil)
	ws := h.env["GITHUB_WORKSPACE"]
	writeTestFile(t, filepath.Join(ws, "dagster_cloud.yaml"), `defaults:
  build: {registry: r.example/acme/app}
locations:
  - location_name: etl
    code_source: {package_name: etl}
    build: {directory: ./etl}
  - location_name: ml
    code_source: {package_name: ml}
    build: {directory: ./ml}
`)
	writeTestFile(t, filepath.Join(ws, "dagster_branch_deploy.yaml"), `defaults:
  build_args: {A: from-file}
  cache: false
locations:
  etl:
    dockerfile: docker/Dockerfile
    target: runtime
    cache: true
`)
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if strings.Contains(h.out.String(), "::warning file=") {
		t.Errorf("warnings:\n%s", h.out.String())
	}
	etl, ml := h.docker.spec(t, "etl"), h.docker.spec(t, "ml")
	if etl.Dockerfile != "docker/Dockerfile" || etl.Target != "runtime" || etl.BuildArgs["A"] != "from-file" || !etl.InlineCache {
		t.Errorf("etl = %+v", etl)
	}
	if ml.Dockerfile != "Dockerfile" || ml.Target != "" || ml.InlineCache || ml.BuildArgs["A"] != "from-file" {
		t.Errorf("ml = %+v", ml)
	}

	// A location the file does not define is an error at its line.
	h = newHarness(t, nil)
	writeTestFile(t, filepath.Join(h.env["GITHUB_WORKSPACE"], "dagster_branch_deploy.yaml"), "locations:\n  etl: {}\n  nope: {target: x}\n")
	err := h.run(context.Background())
	var ae *Error
	if !errors.As(err, &ae) || !strings.HasSuffix(ae.File, "dagster_branch_deploy.yaml") || ae.Line != 3 {
		t.Errorf("err = %v", err)
	}
}
