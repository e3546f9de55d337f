//go:build docker

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// The Serverless project on GitLab: the binary as a merge request
// pipeline's job runs it (scenario's GitLab mode), and the component
// itself in gitlab-ci-local.

// slGitLabSource is the images' org.opencontainers.image.source on GitLab.
const slGitLabSource = scenario.GitLabServerURL + "/" + scenario.GitLabProjectPath

// TestServerlessGitLabMergeRequest: a merge request pipeline deploys the
// Serverless project as on GitHub: images in the Serverless registry
// tagged branch-<location>-<sha12>-<pipeline>-<job>, pushed with the token
// Dagster+ hands out (the job's CI_REGISTRY_* credentials are for the
// project's own registry, another host), the generated Dockerfile run
// FROM the base image, the branch deployment, the note, the dotenv report,
// and the 900 s heartbeat default.
func TestServerlessGitLabMergeRequest(t *testing.T) {
	s, ctx := newServerlessScenario(t, scenario.Options{GitLab: true, Serverless: &scenario.Serverless{AllowCustomBase: true}})
	base := pushServerlessBase(t, ctx, s)
	vars := glVars(t, s, scenario.MergeRequestPipeline, scenario.GitLabMR, "", "")
	res := runGitLab(t, ctx, s, []string{"deploy", "--dotenv", "deploy.env"}, vars,
		map[string]string{"base_image": base, "python_version": "3.12"})
	glAssertNoSecrets(t, s, map[string]string{"stdout": res.Stdout, "stderr": res.Stderr, "dotenv": res.DotenvRaw}, slSecrets())
	if res.ExitCode != 0 {
		t.Fatal("the merge request pipeline's deploy failed")
	}
	dep := glBranchDeployment(t, s, scenario.GitLabSourceBranch)
	if dep.RepoName != scenario.GitLabProjectPath || dep.PullRequestStatus != "OPEN" || dep.PullRequestNumber != "7" || dep.Commit.CommitHash != s.HeadSHA {
		t.Errorf("branch deployment = %+v", dep)
	}
	env := res.Dotenv
	if env["DAGSTER_DEPLOYMENT"] != dep.Name || env["DAGSTER_STATUS"] != "success" || env["DAGSTER_DEPLOYMENT_URL"] != s.DagsterURL+"/"+dep.Name+"/locations" {
		t.Errorf("dotenv = %v", env)
	}
	run := vars["CI_PIPELINE_ID"] + "-" + vars["CI_JOB_ID"]
	images := slCheckImages(t, ctx, s, env["DAGSTER_IMAGES"], "branch", run, slGitLabSource, scenario.GitLabSourceBranch)
	slCheckContents(t, ctx, s, images, "")
	slCheckDeployed(t, dep, images)
	slCheckLog(t, res.Stdout, base)
	notes := glNotes(s, scenario.GitLabMR)
	if len(notes) != 1 {
		t.Fatalf("notes = %+v", notes)
	}
	for _, want := range []string{dep.Name, "| `etl` | ✅ loaded |", "| `analytics` | ✅ loaded |", "| `ml_models` | ✅ loaded |"} {
		if !strings.Contains(notes[0].Body, want) {
			t.Errorf("the note lacks %q:\n%s", want, notes[0].Body)
		}
	}
}

// TestServerlessGitLabCILocal runs the component of
// gitlab/templates/deploy.yml in gitlab-ci-local for the Serverless project:
// one merge request pipeline, with the Serverless inputs base_image and
// python_version and no registry variables; the template leaves
// agent_heartbeat_timeout empty, so the job waits Serverless' 900 s.
func TestServerlessGitLabCILocal(t *testing.T) {
	bin := gitlabCILocal(t)
	s, ctx := newServerlessScenario(t, scenario.Options{GitLab: true, Serverless: &scenario.Serverless{AllowCustomBase: true}})
	base := pushServerlessBase(t, ctx, s)
	template, err := os.ReadFile(filepath.Join(s.RepoRoot, "gitlab", "templates", "deploy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	builds := filepath.Join(s.Workspace, ".gitlab-ci-local", "builds")
	// The README's Serverless include, with the overrides glclWrapper
	// explains (no docker:dind service; the directory the job runs in).
	wrapper := `include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/deploy@` + s.HeadSHA + `
    inputs:
      organization_id: ` + scenario.Organization + `
      dagster_cloud_url: ` + s.DagsterURL + `
      location_load_timeout: 60
      python_version: "3.12"
      base_image: ` + base + `

dagster-branch-deploy:
  services: []
  variables:
    CI_PROJECT_DIR: ` + builds + `/dagster-branch-deploy
dagster-deploy:
  services: []
  variables:
    CI_PROJECT_DIR: ` + builds + `/dagster-deploy
dagster-branch-stop:
  variables:
    CI_PROJECT_DIR: ` + builds + `/dagster-branch-stop

workflow:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS
      when: never
    - if: $CI_COMMIT_BRANCH
`
	writeFile(t, filepath.Join(s.Workspace, ".gitlab-ci.yml"), wrapper)
	if err := os.MkdirAll(filepath.Join(s.Workspace, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.Workspace, "templates", "deploy.yml"), string(template))
	g := &glcl{s: s, bin: bin, home: t.TempDir(), path: filepath.Dir(binary) + string(os.PathListSeparator) + os.Getenv("PATH")}

	out, ok := g.run(t, ctx, glVars(t, s, scenario.MergeRequestPipeline, scenario.GitLabMR, "", ""), []string{"CI_COMMIT_BRANCH"})
	for _, secret := range slSecrets() {
		if strings.Contains(out, secret) {
			t.Errorf("secret %.6s… of the Serverless registry appears in the job log", secret)
		}
	}
	if !ok || !passed(out, "dagster-branch-deploy") {
		t.Fatal("the merge request pipeline failed")
	}
	if jobs := started(out); !slices.Equal(jobs, []string{"dagster-branch-deploy"}) {
		t.Errorf("the pipeline started %q", jobs)
	}
	for _, want := range []string{
		"Deployment prod is on Dagster+ Serverless",
		"using credentials from the token Dagster+ hands out for its Serverless registry",
		"no Dockerfile, so one is generated (FROM " + base,
		"up to 15m0s for an agent to answer",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the job log lacks %q", want)
		}
	}
	dep := glBranchDeployment(t, s, scenario.GitLabSourceBranch)
	env := g.dotenv(t, "dagster-branch-deploy")
	if env["DAGSTER_DEPLOYMENT"] != dep.Name || env["DAGSTER_STATUS"] != "success" {
		t.Errorf("dotenv = %v", env)
	}
	images := slCheckImages(t, ctx, s, env["DAGSTER_IMAGES"], "branch", `\d+-\d+`, slGitLabSource, scenario.GitLabSourceBranch)
	slCheckContents(t, ctx, s, images, "")
	slCheckDeployed(t, dep, images)
	if notes := glNotes(s, scenario.GitLabMR); len(notes) != 1 || !strings.Contains(notes[0].Body, "| `etl` | ✅ loaded |") {
		t.Errorf("notes = %+v", notes)
	}
}
