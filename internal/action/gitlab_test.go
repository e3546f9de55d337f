package action

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/gitlab"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/gitlabemu"
)

// glHarness runs the pipeline on the GitLab CI platform against the
// Dagster+ and GitLab emulators, with the fake Docker.
type glHarness struct {
	env     map[string]string
	out     strings.Builder
	docker  *fakeDocker
	dagster *dagsteremu.Server
	gitlab  *gitlabemu.Server
	project int64
	dotenv  string
}

const (
	glSHA    = "4f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"
	glMerge  = "9999999999999999999999999999999999999999"
	glBot    = "project_42_bot"
	glToken  = "glpat-0123456789abcdefghij"
	glJobTok = "glcbt-64_job_token_value_0123"
)

func newGLHarness(t *testing.T, vars map[string]string) *glHarness {
	t.Helper()
	h := &glHarness{docker: &fakeDocker{}, dagster: dagsteremu.New(dagsteremu.WithTokens("dg-token-1234")), gitlab: gitlabemu.New()}
	h.project = h.gitlab.AddProject(gitlabemu.Project{ID: 42, Path: "acme/data/platform", DefaultBranch: "main"})
	h.gitlab.AddProjectAccessToken(glToken, h.project, false)
	h.gitlab.SetMergeRequest(h.project, gitlabemu.MergeRequest{IID: 7, SourceBranch: "feature/x", SHA: glSHA, HeadPipelineID: 1000})
	dsrv, gsrv := httptest.NewServer(h.dagster), httptest.NewServer(h.gitlab)
	t.Cleanup(dsrv.Close)
	t.Cleanup(gsrv.Close)
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(ws, "dagster_cloud.yaml"), "locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    build: {registry: registry.gitlab.example/acme/data/platform/etl}\n")
	h.dotenv = filepath.Join(dir, "deploy.env")
	h.env = map[string]string{
		"GITLAB_CI": "true", "CI_PROJECT_DIR": ws, "CI_PROJECT_ID": "42", "CI_PROJECT_PATH": "acme/data/platform",
		"CI_PROJECT_URL": "https://gitlab.example/acme/data/platform", "CI_API_V4_URL": gitlabemu.URL(gsrv.URL),
		"CI_PIPELINE_ID": "1000", "CI_PIPELINE_URL": "https://gitlab.example/acme/data/platform/-/pipelines/1000", "CI_JOB_ID": "5000",
		"CI_DEFAULT_BRANCH": "main", "CI_JOB_TOKEN": glJobTok, "GITLAB_TOKEN": glToken,
		"CI_COMMIT_TIMESTAMP": "2026-12-01T10:00:00+00:00", "CI_COMMIT_MESSAGE": "Add the etl location", "CI_COMMIT_AUTHOR": "Sam Smith <sam@example.com>",
		"INPUT_ORGANIZATION_ID": "acme", "INPUT_DAGSTER_CLOUD_API_TOKEN": "dg-token-1234", "INPUT_DAGSTER_CLOUD_URL": dsrv.URL,
		"INPUT_LOCATION_LOAD_TIMEOUT": "30", "DOCKER_CONFIG": filepath.Join(dir, "docker-config"),
	}
	for k, v := range vars {
		if v == "" {
			delete(h.env, k)
			continue
		}
		h.env[k] = v
	}
	return h
}

func mrPipeline() map[string]string {
	return map[string]string{
		"CI_PIPELINE_SOURCE": "merge_request_event", "CI_COMMIT_SHA": glMerge, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": glSHA,
		"CI_MERGE_REQUEST_IID": "7", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/x",
		"CI_MERGE_REQUEST_PROJECT_URL": "https://gitlab.example/acme/data/platform", "CI_COMMIT_REF_NAME": "feature/x",
	}
}

func (h *glHarness) run(ctx context.Context, opts gitlab.Options) error {
	getenv := func(k string) string { return h.env[k] }
	return Run(ctx, Env{
		NewPlatform: func(log io.Writer) platform.Platform {
			return gitlab.NewCI(getenv, &h.out, log, nil, opts)
		},
		Stdout:         &h.out,
		NewDocker:      func(context.Context, io.Writer) (Docker, error) { return h.docker, nil },
		DagsterOptions: []dagster.Option{dagster.WithPollInterval(time.Millisecond)},
	})
}

// TestGitLabMergeRequestPipeline: a merged-results MR pipeline deploys the
// MR's head commit (not the merge commit) to the branch deployment keyed by
// the project's full path, writes one MR note and the dotenv outputs, and
// prints no GitHub workflow command.
func TestGitLabMergeRequestPipeline(t *testing.T) {
	t.Parallel()
	h := newGLHarness(t, mrPipeline())
	if err := h.run(context.Background(), gitlab.Options{Dotenv: h.dotenv}); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	var branch dagsteremu.Deployment
	for _, d := range h.dagster.Deployments() {
		if d.Type == "BRANCH" {
			branch = d
		}
	}
	if branch.RepoName != "acme/data/platform" || branch.BranchName != "feature/x" || branch.Commit.CommitHash != glSHA ||
		branch.PullRequestNumber != "7" || branch.PullRequestURL != "https://gitlab.example/acme/data/platform/-/merge_requests/7" || len(branch.Locations) != 1 {
		t.Errorf("branch deployment = %+v", branch)
	}
	if len(h.docker.specs) != 1 || !strings.Contains(h.docker.specs[0].Tags[0], glSHA[:12]) {
		t.Errorf("built %+v", h.docker.specs)
	}
	notes := h.gitlab.Notes(h.project, 7)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "✅ loaded") || !platform.EndsWithMarker(notes[0].Body, platform.Marker("dagster_cloud.yaml")) {
		t.Fatalf("notes = %+v", notes)
	}
	env := readFile(t, h.dotenv)
	for _, want := range []string{"DAGSTER_DEPLOYMENT=" + branch.Name + "\n", "DAGSTER_STATUS=success\n", "DAGSTER_DEPLOYMENT_URL=" + h.env["INPUT_DAGSTER_CLOUD_URL"] + "/" + branch.Name + "/locations\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("dotenv lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(h.out.String(), "::") {
		t.Errorf("a GitHub workflow command in a GitLab log:\n%s", h.out.String())
	}
	for _, secret := range []string{glToken, glJobTok, "dg-token-1234"} {
		if strings.Contains(h.out.String(), secret) || strings.Contains(env, secret) || strings.Contains(notes[0].Body, secret) {
			t.Errorf("%s leaks", secret)
		}
	}

	// A second pipeline updates the same note.
	h.env["CI_PIPELINE_ID"], h.env["CI_JOB_ID"] = "1001", "5001"
	if err := h.run(context.Background(), gitlab.Options{}); err != nil {
		t.Fatal(err)
	}
	if notes := h.gitlab.Notes(h.project, 7); len(notes) != 1 {
		t.Errorf("%d notes after a second pipeline", len(notes))
	}
}

// TestGitLabDefaultBranchAndStop: a default-branch pipeline deploys to the
// full deployment; the stop job marks the MR's branch deployment MERGED or
// CLOSED from the MR's state in the API and builds nothing.
func TestGitLabDefaultBranchAndStop(t *testing.T) {
	t.Parallel()
	h := newGLHarness(t, map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main", "CI_COMMIT_SHA": glSHA})
	if err := h.run(context.Background(), gitlab.Options{}); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if prod, _ := h.dagster.Deployment("prod"); len(prod.Locations) != 1 {
		t.Errorf("prod = %+v", prod)
	}

	for _, state := range []string{gitlabemu.StateMerged, gitlabemu.StateClosed} {
		h := newGLHarness(t, mrPipeline())
		if err := h.run(context.Background(), gitlab.Options{}); err != nil {
			t.Fatal(err)
		}
		h.gitlab.SetMergeRequest(h.project, gitlabemu.MergeRequest{IID: 7, State: state, SourceBranch: "feature/x", SHA: glSHA, HeadPipelineID: 1000})
		built := len(h.docker.specs)
		stop := map[string]string{"CI_PIPELINE_SOURCE": "", "CI_MERGE_REQUEST_IID": "", "CI_ENVIRONMENT_NAME": "dagster/mr-7", "CI_JOB_ID": "5002"}
		for k, v := range stop {
			if v == "" {
				delete(h.env, k)
			} else {
				h.env[k] = v
			}
		}
		if err := h.run(context.Background(), gitlab.Options{Close: true}); err != nil {
			t.Fatalf("%s: %v\n%s", state, err, h.out.String())
		}
		want := map[string]string{gitlabemu.StateMerged: "MERGED", gitlabemu.StateClosed: "CLOSED"}[state]
		for _, d := range h.dagster.Deployments() {
			if d.Type == "BRANCH" && d.PullRequestStatus != want {
				t.Errorf("%s: status %s", state, d.PullRequestStatus)
			}
		}
		if len(h.docker.specs) != built {
			t.Errorf("%s: the stop job built", state)
		}
		if notes := h.gitlab.Notes(h.project, 7); len(notes) != 1 || !strings.Contains(notes[0].Body, strings.ToLower(want)) {
			t.Errorf("%s: notes %+v", state, notes)
		}
	}
}

// TestGitLabJobTokenOnly: without GITLAB_TOKEN the deploy works, and one
// warning names the variable to add.
func TestGitLabJobTokenOnly(t *testing.T) {
	t.Parallel()
	vars := mrPipeline()
	vars["GITLAB_TOKEN"] = ""
	h := newGLHarness(t, vars)
	if err := h.run(context.Background(), gitlab.Options{}); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if n := strings.Count(h.out.String(), "Not commenting on the merge request: GITLAB_TOKEN is not set"); n != 1 {
		t.Errorf("warned %d times:\n%s", n, h.out.String())
	}
	if notes := h.gitlab.Notes(h.project, 7); len(notes) != 0 {
		t.Errorf("notes = %+v", notes)
	}
}

// TestGitLabEventPolicy: a merge request from a fork (its source project
// is not the merge request's) is skipped by default, with nothing sent
// anywhere; a draft (CI_MERGE_REQUEST_DRAFT) is skipped with
// draft_pull_requests: skip; the stop job deletes the branch deployment
// with delete_on_close.
func TestGitLabEventPolicy(t *testing.T) {
	t.Parallel()
	t.Run("fork", func(t *testing.T) {
		t.Parallel()
		vars := mrPipeline()
		vars["CI_MERGE_REQUEST_PROJECT_ID"], vars["CI_MERGE_REQUEST_SOURCE_PROJECT_ID"] = "42", "77"
		vars["CI_MERGE_REQUEST_SOURCE_PROJECT_PATH"] = "someone/platform"
		vars["INPUT_DAGSTER_CLOUD_API_TOKEN"] = ""
		h := newGLHarness(t, vars)
		if err := h.run(context.Background(), gitlab.Options{Dotenv: h.dotenv}); err != nil {
			t.Fatalf("%v\n%s", err, h.out.String())
		}
		if !strings.Contains(h.out.String(), "Merge request !7 comes from a fork (someone/platform), whose pipelines do not get the project's CI/CD variables: nothing is built, pushed or deployed") {
			t.Errorf("log:\n%s", h.out.String())
		}
		if !strings.Contains(readFile(t, h.dotenv), "DAGSTER_STATUS=skipped\n") {
			t.Errorf("dotenv:\n%s", readFile(t, h.dotenv))
		}
		if len(h.dagster.Requests()) != 0 || len(h.docker.specs) != 0 || len(h.gitlab.Notes(h.project, 7)) != 0 {
			t.Errorf("Dagster+ %d, builds %d, notes %d", len(h.dagster.Requests()), len(h.docker.specs), len(h.gitlab.Notes(h.project, 7)))
		}
	})
	t.Run("draft", func(t *testing.T) {
		t.Parallel()
		vars := mrPipeline()
		vars["CI_MERGE_REQUEST_DRAFT"] = "true"
		vars["INPUT_DRAFT_PULL_REQUESTS"] = "skip"
		h := newGLHarness(t, vars)
		if err := h.run(context.Background(), gitlab.Options{Dotenv: h.dotenv}); err != nil {
			t.Fatalf("%v\n%s", err, h.out.String())
		}
		if !strings.Contains(h.out.String(), "Merge request !7 is a draft and draft_pull_requests is skip: nothing is built or deployed; the first pipeline after it is marked ready deploys it") ||
			!strings.Contains(readFile(t, h.dotenv), "DAGSTER_STATUS=skipped\n") || len(h.dagster.Requests()) != 0 {
			t.Errorf("log:\n%s\ndotenv:\n%s", h.out.String(), readFile(t, h.dotenv))
		}
	})
	t.Run("delete on close", func(t *testing.T) {
		t.Parallel()
		h := newGLHarness(t, mrPipeline())
		if err := h.run(context.Background(), gitlab.Options{}); err != nil {
			t.Fatal(err)
		}
		h.gitlab.SetMergeRequest(h.project, gitlabemu.MergeRequest{IID: 7, State: gitlabemu.StateMerged, SourceBranch: "feature/x", SHA: glSHA, HeadPipelineID: 1000})
		delete(h.env, "CI_PIPELINE_SOURCE")
		h.env["CI_JOB_ID"], h.env["INPUT_DELETE_ON_CLOSE"] = "5002", "true"
		if err := h.run(context.Background(), gitlab.Options{Close: true, Dotenv: h.dotenv}); err != nil {
			t.Fatalf("%v\n%s", err, h.out.String())
		}
		for _, d := range h.dagster.Deployments() {
			if d.Type == "BRANCH" {
				t.Errorf("branch deployment left: %+v", d)
			}
		}
		if notes := h.gitlab.Notes(h.project, 7); len(notes) != 1 || !strings.Contains(notes[0].Body, "The merge request was merged at commit") || !strings.Contains(notes[0].Body, "was **deleted**") {
			t.Errorf("notes %+v", notes)
		}
		if !strings.Contains(readFile(t, h.dotenv), "DAGSTER_STATUS=deleted\n") {
			t.Errorf("dotenv:\n%s", readFile(t, h.dotenv))
		}
	})
}
