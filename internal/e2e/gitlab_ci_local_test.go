//go:build docker

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/gitlabemu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// gitlabCILocalVersion is the gitlab-ci-local scripts/setup.sh installs.
const gitlabCILocalVersion = "4.70.0"

// gitlabCILocal finds gitlab-ci-local: $GITLAB_CI_LOCAL, else where
// scripts/setup.sh installs it, else on PATH. Without it, or in another
// version, the test fails with what to run: it never skips.
func gitlabCILocal(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p := os.Getenv("GITLAB_CI_LOCAL"); p != "" {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/opt/dagster-branch-deploy/node/node_modules/.bin/gitlab-ci-local")
	if dir, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "dagster-branch-deploy", "node", "node_modules", ".bin", "gitlab-ci-local"))
	}
	if p, err := exec.LookPath("gitlab-ci-local"); err == nil {
		candidates = append(candidates, p)
	}
	var seen []string
	for _, p := range candidates {
		out, err := exec.Command(p, "--version").Output()
		if err != nil {
			seen = append(seen, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		if v := strings.TrimSpace(string(out)); v != gitlabCILocalVersion {
			seen = append(seen, fmt.Sprintf("%s: version %s", p, v))
			continue
		}
		return p
	}
	t.Fatalf("this test runs the GitLab CI template with gitlab-ci-local %s, which is not installed (%s).\n"+
		"scripts/setup.sh installs it (as root into /opt/dagster-branch-deploy/node): bash scripts/setup.sh; or set GITLAB_CI_LOCAL to one.",
		gitlabCILocalVersion, strings.Join(seen, "; "))
	return ""
}

// glclWrapper is the test project's .gitlab-ci.yml. It includes the
// template as a CI/CD component of the project itself, pinned to the
// checked-out commit (GitLab's documented way to test a component in its
// own project; gitlab-ci-local then reads templates/deploy.yml from the
// working tree), with the inputs a user would pass. What it overrides, for
// gitlab-ci-local's shell executor:
//
//   - the deploy jobs' `services:` (docker:dind): the test machine cannot
//     pull images, and the jobs build with the test's own dockerd instead,
//     named by DOCKER_HOST (passed with --variable, over the template's
//     tcp://docker:2376, whose TLS variables are unset with
//     --unset-variable);
//   - CI_PROJECT_DIR of each job: gitlab-ci-local 4.70.0 sets it to
//     /builds/<project path> for every job with an `image:`, even when
//     --force-shell-executor runs the job on the shell in
//     .gitlab-ci-local/builds/<job> (--shell-isolation), so the wrapper
//     names the directory the job really runs in.
//
// `image:` itself is not overridden: --force-shell-executor runs every job
// on the shell regardless, with the freshly built binary on PATH where the
// image would have it. The wrapper adds what the README tells users to
// add: its workflow rules (so the pipelines below show that they let the
// template's jobs run), and smoke-test, its example of a job that reads
// the deploy job's dotenv report.
const glclWrapper = `# Test-only: see internal/e2e/gitlab_ci_local_test.go.
include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/deploy@{{SHA}}
    inputs:
      organization_id: {{ORG}}
      dagster_cloud_url: {{URL}}
      location_load_timeout: 60
      auto_stop_in: 1 week
      python_version: "3.12"
      base_image: registry.example/acme/dagster-base:1

dagster-branch-deploy:
  services: []
  variables:
    CI_PROJECT_DIR: {{BUILDS}}/dagster-branch-deploy
dagster-deploy:
  services: []
  variables:
    CI_PROJECT_DIR: {{BUILDS}}/dagster-deploy
dagster-branch-stop:
  variables:
    CI_PROJECT_DIR: {{BUILDS}}/dagster-branch-stop

# The README's workflow rules: merge request pipelines for merge requests,
# branch pipelines otherwise.
workflow:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS
      when: never
    - if: $CI_COMMIT_BRANCH

# A later job that reads the deploy job's dotenv report, as in the README.
smoke-test:
  stage: .post
  needs: [dagster-branch-deploy]
  rules: [{if: $CI_PIPELINE_SOURCE == "merge_request_event"}]
  script: [echo "$DAGSTER_STATUS $DAGSTER_DEPLOYMENT_URL"]
`

// glcl runs gitlab-ci-local in a scenario's workspace.
type glcl struct {
	s    *scenario.Scenario
	bin  string
	home string
	path string // PATH: the binary under test first
}

// glclDerived are the variables of scenario.GitLabVars that gitlab-ci-local
// sets itself (from the checkout's origin: server and project; from its own
// pipeline and job counters; from the job's environment: keyword) or the
// template sets (GIT_STRATEGY). They are not passed, so that the jobs see
// what gitlab-ci-local and the template make of them.
var glclDerived = map[string]bool{
	"CI_SERVER_URL": true, "CI_SERVER_HOST": true, "CI_SERVER_FQDN": true,
	"CI_PROJECT_PATH": true, "CI_PROJECT_NAME": true, "CI_PROJECT_NAMESPACE": true, "CI_PROJECT_URL": true,
	"CI_PROJECT_DIR": true, "CI_BUILDS_DIR": true,
	"CI_PIPELINE_ID": true, "CI_PIPELINE_IID": true, "CI_PIPELINE_URL": true,
	"CI_JOB_ID": true, "CI_JOB_URL": true, "CI_JOB_NAME": true,
	"CI_ENVIRONMENT_NAME": true, "CI_ENVIRONMENT_SLUG": true, "CI_ENVIRONMENT_ACTION": true, "CI_ENVIRONMENT_TIER": true,
	"GIT_STRATEGY": true,
}

// run runs gitlab-ci-local with the predefined variables of vars (less
// glclDerived), the project's CI/CD variables, DOCKER_HOST, and args; it
// returns the output and whether it exited 0.
func (g *glcl) run(t *testing.T, ctx context.Context, vars map[string]string, unset []string, args ...string) (string, bool) {
	t.Helper()
	all := scenario.GitLabCICDVariables()
	for k, v := range vars {
		if !glclDerived[k] {
			all[k] = v
		}
	}
	all["DOCKER_HOST"] = os.Getenv("DOCKER_HOST")
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// What the wrapper and these flags set over gitlab-ci-local's own
	// predefined variables is meant to be: no warning about it.
	flags := []string{"--no-color", "--home", g.home, "--force-shell-executor", "--shell-isolation",
		"--ignore-predefined-vars", strings.Join(append(keys, "CI_PROJECT_DIR"), ",")}
	for _, k := range keys {
		flags = append(flags, "--variable", k+"="+all[k])
	}
	// The template's Docker-in-Docker TLS settings; the test's dockerd is a
	// unix socket.
	unset = append(unset, "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS_CERTDIR")
	for _, k := range unset {
		flags = append(flags, "--unset-variable", k)
	}
	cmd := exec.CommandContext(ctx, g.bin, append(flags, args...)...)
	cmd.Dir = g.s.Workspace
	// Nothing of this process's environment but PATH: no GITHUB_* of a CI
	// that runs the tests, no DOCKER_* but the --variable above.
	cmd.Env = []string{"PATH=" + g.path, "HOME=" + g.home, "DOCKER_CONFIG=" + filepath.Join(g.home, ".docker"), "NO_COLOR=1"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("gitlab-ci-local %s (%s, %s):\n%s", strings.Join(args, " "), vars["CI_PIPELINE_SOURCE"], time.Since(start).Round(time.Millisecond), out.String())
	secrets := []string{scenario.DagsterToken, scenario.GitLabToken, scenario.GitLabJobToken}
	for _, secret := range secrets {
		if strings.Contains(out.String(), secret) {
			t.Errorf("secret %.6s… appears in the job log", secret)
		}
	}
	if err != nil && ctx.Err() != nil {
		t.Fatalf("gitlab-ci-local: %v", ctx.Err())
	}
	return out.String(), err == nil
}

// passed tells whether gitlab-ci-local reported job as passed. (A failed
// job that may fail, such as the manual stop job, leaves the exit code 0.)
func passed(out, job string) bool {
	return regexp.MustCompile(`(?m)^\s*PASS\s+` + regexp.QuoteMeta(job) + `\s*$`).MatchString(out)
}

// started lists the jobs gitlab-ci-local started.
func started(out string) []string {
	var jobs []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(\S+)\s+starting shell`).FindAllStringSubmatch(out, -1) {
		jobs = append(jobs, m[1])
	}
	return jobs
}

// jobs lists the pipeline's jobs (--list-json) and returns each one's when.
func (g *glcl) jobs(t *testing.T, ctx context.Context, vars map[string]string, unset ...string) map[string]string {
	t.Helper()
	out, ok := g.run(t, ctx, vars, unset, "--list-json")
	if !ok {
		t.Fatal("gitlab-ci-local --list-json failed")
	}
	start := strings.Index(out, "\n[")
	if start < 0 {
		t.Fatalf("no JSON list in the output")
	}
	var list []struct{ Name, When string }
	if err := json.Unmarshal([]byte(out[start:]), &list); err != nil {
		t.Fatalf("--list-json: %v", err)
	}
	when := map[string]string{}
	for _, j := range list {
		when[j.Name] = j.When
	}
	return when
}

// dotenv reads the dotenv report job exported as an artifact.
func (g *glcl) dotenv(t *testing.T, job string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(g.s.Workspace, ".gitlab-ci-local", "artifacts", job, ".gitlab-ci-reports", "dotenv", "deploy.env"))
	if err != nil {
		t.Fatalf("the dotenv report of %s: %v", job, err)
	}
	env, err := scenario.ParseDotenv(raw)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestGitLabCILocal runs the template of gitlab/templates/deploy.yml, as a
// CI/CD component with inputs, in gitlab-ci-local: its rules in merge
// request, default-branch, scheduled and tag pipelines; a merge request
// pipeline and a default-branch pipeline as GitLab would run them (every
// job the rules start); and the stop job of a merged and of a closed merge
// request. The jobs run the built binary against the test's dockerd, a
// real docker-registry as $CI_REGISTRY (pushed to with CI_REGISTRY_USER and
// the job token) and the Dagster+ and GitLab API emulators.
func TestGitLabCILocal(t *testing.T) {
	bin := gitlabCILocal(t)
	testbed.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s, err := scenario.NewGitLab(ctx, t.TempDir(), "quickstart")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	template, err := os.ReadFile(filepath.Join(s.RepoRoot, "gitlab", "templates", "deploy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	wrapper := strings.NewReplacer("{{SHA}}", s.HeadSHA, "{{ORG}}", scenario.Organization, "{{URL}}", s.DagsterURL,
		"{{BUILDS}}", filepath.Join(s.Workspace, ".gitlab-ci-local", "builds")).Replace(glclWrapper)
	writeFile(t, filepath.Join(s.Workspace, ".gitlab-ci.yml"), wrapper)
	if err := os.MkdirAll(filepath.Join(s.Workspace, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.Workspace, "templates", "deploy.yml"), string(template))
	g := &glcl{s: s, bin: bin, home: t.TempDir(), path: filepath.Dir(binary) + string(os.PathListSeparator) + os.Getenv("PATH")}

	mrVars := func(iid int) map[string]string { return glVars(t, s, scenario.MergeRequestPipeline, iid, "", "") }
	branchVars := func() map[string]string { return glVars(t, s, scenario.DefaultBranchPipeline, 0, "", "") }
	// In merge request pipelines GitLab sets no CI_COMMIT_BRANCH;
	// gitlab-ci-local always does.
	mrUnset := []string{"CI_COMMIT_BRANCH"}

	t.Run("rules", func(t *testing.T) {
		want := func(name string, got, want map[string]string) {
			t.Helper()
			for job, w := range want {
				if got[job] != w && !(got[job] == "" && w == "never") { // a job not in the pipeline never runs
					t.Errorf("%s: %s is %q, want %q (all: %v)", name, job, got[job], w, got)
				}
			}
		}
		all := map[string]string{"dagster-branch-deploy": "never", "dagster-branch-stop": "never", "dagster-deploy": "never"}
		mr := map[string]string{"dagster-branch-deploy": "on_success", "dagster-branch-stop": "manual", "dagster-deploy": "never"}
		want("merge request pipeline", g.jobs(t, ctx, mrVars(scenario.GitLabMR), mrUnset...), mr)
		push := map[string]string{"dagster-branch-deploy": "never", "dagster-branch-stop": "never", "dagster-deploy": "on_success"}
		want("push to the default branch", g.jobs(t, ctx, branchVars()), push)
		for _, source := range []string{"web", "api", "trigger", "pipeline", "parent_pipeline"} {
			v := branchVars()
			v["CI_PIPELINE_SOURCE"] = source
			want(source+" pipeline on the default branch", g.jobs(t, ctx, v), push)
		}
		v := branchVars()
		v["CI_PIPELINE_SOURCE"] = "schedule"
		want("scheduled pipeline", g.jobs(t, ctx, v), all)
		v = branchVars()
		v["CI_COMMIT_BRANCH"], v["CI_COMMIT_REF_NAME"] = "feature", "feature"
		want("push to another branch", g.jobs(t, ctx, v), all)
		v = branchVars()
		v["CI_COMMIT_TAG"], v["CI_COMMIT_REF_NAME"] = "v1.0.0", "v1.0.0"
		want("tag pipeline", g.jobs(t, ctx, v, "CI_COMMIT_BRANCH"), all)
	})

	// The inputs reach the jobs as INPUT_* variables, the environments are
	// per merge request, and the stop job's is the deploy job's.
	preview, ok := g.run(t, ctx, mrVars(scenario.GitLabMR), mrUnset, "--preview")
	if !ok {
		t.Fatal("gitlab-ci-local --preview failed")
	}
	for _, want := range []string{
		"INPUT_ORGANIZATION_ID: " + scenario.Organization, "INPUT_DAGSTER_CLOUD_URL: " + s.DagsterURL, "INPUT_LOCATION_LOAD_TIMEOUT: '60'",
		"name: dagster/mr-$CI_MERGE_REQUEST_IID", "on_stop: dagster-branch-stop", "auto_stop_in: 1 week", "action: stop", "GIT_STRATEGY: none",
		"dotenv: deploy.env", "image:\n    name: ghcr.io/dagster-branch-deploy/dagster-branch-deploy:v1-gitlab",
		// The Serverless inputs (a Hybrid organization ignores them), and
		// the heartbeat timeout left empty: the binary's default per agent
		// type.
		"INPUT_PYTHON_VERSION: '3.12'", "INPUT_BASE_IMAGE: registry.example/acme/dagster-base:1", "INPUT_AGENT_HEARTBEAT_TIMEOUT: ''",
	} {
		if !strings.Contains(preview, want) {
			t.Errorf("the expanded configuration lacks %q", want)
		}
	}

	// Two Dagster projects in one repository: the component included twice,
	// with its own name and project_dir each.
	two := fmt.Sprintf(`include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/deploy@%[1]s
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/deploy@%[1]s
    inputs: {name: etl, project_dir: quickstart_etl, deployment: staging}
`, s.HeadSHA)
	writeFile(t, filepath.Join(s.Workspace, ".gitlab-ci-two.yml"), two)
	preview, ok = g.run(t, ctx, mrVars(scenario.GitLabMR), mrUnset, "--file", ".gitlab-ci-two.yml", "--preview")
	if !ok {
		t.Fatal("gitlab-ci-local --preview of two includes failed")
	}
	for _, want := range []string{"\ndagster-branch-deploy:\n", "\netl-branch-deploy:\n", "\netl-branch-stop:\n", "\netl-deploy:\n",
		"on_stop: etl-branch-stop", "name: etl/mr-$CI_MERGE_REQUEST_IID", "INPUT_PROJECT_DIR: quickstart_etl", "name: etl/staging"} {
		if !strings.Contains(preview, want) {
			t.Errorf("the configuration with two includes lacks %q", want)
		}
	}

	tagRE := regexp.MustCompile(`^` + regexp.QuoteMeta(s.Registry.Addr+"/"+glRepo+":"+s.HeadSHA[:12]) + `-\d+-\d+(-(ml_models|quickstart_etl))?@sha256:[0-9a-f]{64}$`)
	checkImages := func(t *testing.T, env map[string]string, n int) {
		t.Helper()
		var images map[string]string
		if err := json.Unmarshal([]byte(env["DAGSTER_IMAGES"]), &images); err != nil || len(images) != n {
			t.Fatalf("DAGSTER_IMAGES %q: %v", env["DAGSTER_IMAGES"], err)
		}
		for loc, ref := range images {
			if !tagRE.MatchString(ref) {
				t.Errorf("image of %s = %q, want %s", loc, ref, tagRE)
				continue
			}
			named, _, _ := strings.Cut(ref, "@")
			tag := named[strings.LastIndex(named, ":")+1:]
			if _, err := s.Registry.ManifestDigest(ctx, glRepo, tag); err != nil {
				t.Errorf("%s is not in the registry: %v", tag, err)
			}
		}
	}

	t.Run("merge request pipeline", func(t *testing.T) {
		out, ok := g.run(t, ctx, mrVars(scenario.GitLabMR), mrUnset)
		if !ok || !passed(out, "dagster-branch-deploy") {
			t.Fatal("the merge request pipeline failed")
		}
		if jobs := started(out); !slices.Equal(jobs, []string{"dagster-branch-deploy", "smoke-test"}) {
			t.Errorf("the pipeline started %q, want the merge request job and smoke-test", jobs)
		}
		// agent_heartbeat_timeout left empty: Hybrid's 120 s.
		if !strings.Contains(out, "up to 2m0s for an agent to answer") {
			t.Error("the job does not wait Hybrid's default 120 s for an agent")
		}
		dep := glBranchDeployment(t, s, scenario.GitLabSourceBranch)
		project := scenario.GitLabServerURL + "/" + scenario.GitLabProjectPath
		if dep.RepoName != scenario.GitLabProjectPath || dep.PullRequestStatus != "OPEN" || dep.PullRequestNumber != "7" ||
			dep.PullRequestURL != project+"/-/merge_requests/7" || dep.Commit.CommitHash != s.HeadSHA ||
			dep.Commit.CommitMessage != "Add quickstart code locations" || len(dep.Locations) != 2 {
			t.Errorf("branch deployment = %+v", dep)
		}
		env := g.dotenv(t, "dagster-branch-deploy")
		if env["DAGSTER_DEPLOYMENT"] != dep.Name || env["DAGSTER_STATUS"] != "success" || env["DAGSTER_DEPLOYMENT_URL"] != s.DagsterURL+"/"+dep.Name+"/locations" {
			t.Errorf("dotenv = %v", env)
		}
		checkImages(t, env, 2)
		// smoke-test, which needs the deploy job, has its dotenv report as
		// variables.
		want := "success " + env["DAGSTER_DEPLOYMENT_URL"]
		if !passed(out, "smoke-test") || !regexp.MustCompile(`(?m)^\s*smoke-test\s+> `+regexp.QuoteMeta(want)+`\s*$`).MatchString(out) {
			t.Errorf("smoke-test did not print %q", want)
		}
		notes := glNotes(s, scenario.GitLabMR)
		if len(notes) != 1 || !strings.Contains(notes[0].Body, "| `ml_models` | ✅ loaded |") || !strings.Contains(notes[0].Body, dep.Name) {
			t.Errorf("notes = %+v", notes)
		}
	})

	t.Run("default branch pipeline", func(t *testing.T) {
		out, ok := g.run(t, ctx, branchVars(), nil)
		if !ok || !passed(out, "dagster-deploy") {
			t.Fatal("the default-branch pipeline failed")
		}
		if jobs := started(out); !slices.Equal(jobs, []string{"dagster-deploy"}) {
			t.Errorf("the pipeline started %q, want the default branch's job alone", jobs)
		}
		prod, found := s.Dagster.Deployment("prod")
		if !found || len(prod.Locations) != 2 {
			t.Fatalf("prod = %+v", prod)
		}
		env := g.dotenv(t, "dagster-deploy")
		if env["DAGSTER_DEPLOYMENT"] != "prod" || env["DAGSTER_STATUS"] != "success" {
			t.Errorf("dotenv = %v", env)
		}
		checkImages(t, env, 2)
	})

	// GitLab runs the stop job in the pipeline of the environment's last
	// deployment, a merge request pipeline, when the merge request is merged
	// or closed. Here the job is run by name, as gitlab-ci-local runs a
	// manual job.
	stop := func(t *testing.T, iid int, branch, state, status string) {
		t.Helper()
		s.SetMergeRequest(iid, branch, state)
		out, ok := g.run(t, ctx, mrVars(iid), mrUnset, "dagster-branch-stop")
		if !ok || !passed(out, "dagster-branch-stop") {
			t.Fatal("the stop job failed")
		}
		// The binary checks that the environment's name (mr-<iid>) agrees
		// with CI_MERGE_REQUEST_IID.
		if env := fmt.Sprintf("environment: { name: dagster/mr-%d }", iid); !strings.Contains(out, env) {
			t.Errorf("the stop job's environment is not %q", env)
		}
		if d := glBranchDeployment(t, s, branch); d.PullRequestStatus != status {
			t.Errorf("after the stop job: %s, want %s", d.PullRequestStatus, status)
		}
		notes := glNotes(s, int64(iid))
		if len(notes) != 1 || !strings.Contains(notes[0].Body, "marked **"+strings.ToLower(status)+"**") {
			t.Errorf("notes = %+v", notes)
		}
	}
	t.Run("stop job, merged", func(t *testing.T) {
		stop(t, scenario.GitLabMR, scenario.GitLabSourceBranch, gitlabemu.StateMerged, "MERGED")
	})
	t.Run("stop job, closed", func(t *testing.T) {
		const iid, branch = 8, "feature/closed-later"
		s.SetMergeRequest(iid, branch, gitlabemu.StateOpened)
		if out, ok := g.run(t, ctx, mrVars(iid), mrUnset); !ok || !passed(out, "dagster-branch-deploy") {
			t.Fatal("the merge request pipeline of !8 failed")
		}
		if d := glBranchDeployment(t, s, branch); d.PullRequestStatus != "OPEN" {
			t.Fatalf("!8's branch deployment: %+v", d)
		}
		stop(t, iid, branch, gitlabemu.StateClosed, "CLOSED")
	})
}
