//go:build docker

package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/gitlabemu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// The tests in this file run the built binary as a GitLab CI job's script
// runs it (`dagster-branch-deploy deploy --dotenv deploy.env`, `close`):
// with the predefined variables of merge request, merged results and
// default-branch pipelines and of the stop job (scenario.GitLabVars), the
// project's masked CI/CD variables, and the template's INPUT_* variables,
// against a real dockerd and docker-registry and the Dagster+ and GitLab
// API emulators. gitlab_ci_local_test.go runs the template itself.

const glRepo = "acme/quickstart" // the locations' registry path (testdata/projects/quickstart)

func newGitLabScenario(t *testing.T) (*scenario.Scenario, context.Context) {
	t.Helper()
	testbed.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	s, err := scenario.NewGitLab(ctx, t.TempDir(), "quickstart")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, ctx
}

// glVars is scenario.GitLabVars, failing the test on error.
func glVars(t *testing.T, s *scenario.Scenario, kind scenario.GitLabPipeline, iid int, merge, target string) map[string]string {
	t.Helper()
	v, err := s.GitLabVars(kind, iid, merge, target)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// runGitLab runs the binary with args in a job with vars and inputs, logs
// what it printed, and checks that no secret shows in the log, the dotenv
// report or the merge requests' notes.
func runGitLab(t *testing.T, ctx context.Context, s *scenario.Scenario, args []string, vars, inputs map[string]string) *scenario.Result {
	t.Helper()
	res, err := s.RunGitLab(ctx, binary, args, vars, inputs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%s, pipeline %s, job %s) exited %d\n--- stdout ---\n%s\n--- stderr ---\n%s\n--- dotenv ---\n%s",
		strings.Join(args, " "), vars["CI_PIPELINE_SOURCE"], vars["CI_PIPELINE_ID"], vars["CI_JOB_ID"], res.ExitCode, res.Stdout, res.Stderr, res.DotenvRaw)
	secrets := []string{scenario.DagsterToken, scenario.GitLabToken, scenario.GitLabJobToken}
	if p := inputs["registry_password"]; p != "" {
		secrets = append(secrets, p)
	}
	glAssertNoSecrets(t, s, map[string]string{"stdout": res.Stdout, "stderr": res.Stderr, "dotenv": res.DotenvRaw}, secrets)
	return res
}

// glAssertNoSecrets checks that none of secrets is in places or in a note.
func glAssertNoSecrets(t *testing.T, s *scenario.Scenario, places map[string]string, secrets []string) {
	t.Helper()
	for _, iid := range []int64{scenario.GitLabMR, 8} {
		for _, n := range s.GitLab.Notes(s.GitLabProject, iid) {
			places["note on !"+strconv.FormatInt(iid, 10)] += n.Body
		}
	}
	for where, text := range places {
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("secret %.6s… appears in the %s", secret, where)
			}
		}
	}
}

// glNotes are the action's notes on merge request iid: written by the
// token's bot, with the marker.
func glNotes(s *scenario.Scenario, iid int64) []gitlabemu.Note {
	var out []gitlabemu.Note
	for _, n := range s.GitLab.Notes(s.GitLabProject, iid) {
		if n.Author == s.GitLabBot && platform.EndsWithMarker(n.Body, platform.Marker("dagster_cloud.yaml")) {
			out = append(out, n)
		}
	}
	return out
}

// glBranchDeployment is the one branch deployment of branch.
func glBranchDeployment(t *testing.T, s *scenario.Scenario, branch string) dagsteremu.Deployment {
	t.Helper()
	var found []dagsteremu.Deployment
	for _, d := range s.Dagster.Deployments() {
		if d.Type == "BRANCH" && d.BranchName == branch {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("branch deployments of %s: %+v", branch, found)
	}
	return found[0]
}

// glCheckImages checks the DAGSTER_IMAGES of a dotenv report against the
// registry: every location of want was pushed under a tag of sha, pipeline
// and job (with the location's name when several share the registry), the
// digest matches, and the image's labels name sha, the project and branch.
// It returns the images by location.
func glCheckImages(t *testing.T, ctx context.Context, s *scenario.Scenario, dotenv, vars map[string]string, sha, branch string, want ...string) map[string]string {
	t.Helper()
	var images map[string]string
	if err := json.Unmarshal([]byte(dotenv["DAGSTER_IMAGES"]), &images); err != nil {
		t.Fatalf("DAGSTER_IMAGES %q: %v", dotenv["DAGSTER_IMAGES"], err)
	}
	if len(images) != len(want) {
		t.Errorf("DAGSTER_IMAGES has %d images, want %v: %v", len(images), want, images)
	}
	for _, loc := range want {
		suffix := ""
		if len(want) > 1 {
			suffix = "-" + loc
		}
		tag := sha[:12] + "-" + vars["CI_PIPELINE_ID"] + "-" + vars["CI_JOB_ID"] + suffix
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(s.Registry.Addr+"/"+glRepo+":"+tag) + `@(sha256:[0-9a-f]{64})$`)
		m := re.FindStringSubmatch(images[loc])
		if m == nil {
			t.Errorf("image of %s = %q, want %s", loc, images[loc], re)
			continue
		}
		if digest, err := s.Registry.ManifestDigest(ctx, glRepo, tag); err != nil || digest != m[1] {
			t.Errorf("registry digest of %s = %q, %v; DAGSTER_IMAGES says %s", tag, digest, err, m[1])
		}
		labels, err := s.Registry.ImageLabels(ctx, glRepo, tag)
		if err != nil {
			t.Fatal(err)
		}
		// A reused image (the same inputs as an earlier commit's) keeps the
		// labels of the commit it was built from: an ancestor of sha.
		if rev := labels["org.opencontainers.image.revision"]; rev != sha && !isAncestor(s.Workspace, rev, sha) || labels["branch"] != branch ||
			labels["org.opencontainers.image.source"] != scenario.GitLabServerURL+"/"+scenario.GitLabProjectPath {
			t.Errorf("labels of %s = %v", loc, labels)
		}
	}
	return images
}

// isAncestor reports whether rev is a commit of repo's history up to sha.
func isAncestor(repo, rev, sha string) bool {
	if len(rev) != 40 || strings.HasPrefix(rev, "-") {
		return false
	}
	return exec.Command("git", "-C", repo, "merge-base", "--is-ancestor", rev, sha).Run() == nil
}

// withoutInputsTags drops the inputs-<digest> tags reuse pushes.
func withoutInputsTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		if !strings.HasPrefix(t, "inputs-") {
			out = append(out, t)
		}
	}
	return out
}

// TestGitLabMergeRequestLifecycle: a merge request pipeline deploys the
// source branch's head to the branch deployment of the project's full path,
// a merged results pipeline after a push deploys the new head (not the
// merge commit it runs on) to the same deployment, and the stop job marks
// it MERGED; one note follows it all, and each deploy writes the dotenv
// report.
func TestGitLabMergeRequestLifecycle(t *testing.T) {
	s, ctx := newGitLabScenario(t)
	s.GitLab.Seed(s.GitLabProject, scenario.GitLabMR, 45) // the note lands past the first page
	deploy := []string{"deploy", "--dotenv", "deploy.env"}
	projectURL := scenario.GitLabServerURL + "/" + scenario.GitLabProjectPath

	// 1. A merge request pipeline.
	vars := glVars(t, s, scenario.MergeRequestPipeline, scenario.GitLabMR, "", "")
	res := runGitLab(t, ctx, s, deploy, vars, nil)
	if res.ExitCode != 0 {
		t.Fatal("the merge request pipeline's deploy failed")
	}
	dep := glBranchDeployment(t, s, scenario.GitLabSourceBranch)
	if dep.RepoName != scenario.GitLabProjectPath || dep.PullRequestStatus != "OPEN" || dep.PullRequestNumber != "7" ||
		dep.PullRequestURL != projectURL+"/-/merge_requests/7" || dep.BaseDeploymentName != "prod" ||
		dep.BranchURL != projectURL+"/-/tree/"+scenario.GitLabSourceBranch {
		t.Errorf("branch deployment = %+v", dep)
	}
	if dep.Commit.CommitHash != s.HeadSHA || dep.Commit.CommitMessage != "Add quickstart code locations" ||
		dep.Commit.AuthorEmail != "jane@example.com" || dep.Commit.CommitURL != projectURL+"/-/commit/"+s.HeadSHA {
		t.Errorf("commit = %+v", dep.Commit)
	}
	for _, l := range dep.Locations {
		git, _ := l.Document["git"].(map[string]any)
		if l.LoadStatus != "LOADED" || git["commit_hash"] != s.HeadSHA || git["url"] != projectURL+"/-/tree/"+s.HeadSHA {
			t.Errorf("location %s: %s, git %v", l.Name, l.LoadStatus, git)
		}
	}
	if len(dep.Locations) != 2 {
		t.Errorf("locations: %+v", dep.Locations)
	}
	env := res.Dotenv
	if env["DAGSTER_DEPLOYMENT"] != dep.Name || env["DAGSTER_STATUS"] != "success" || env["DAGSTER_DEPLOYMENT_URL"] != s.DagsterURL+"/"+dep.Name+"/locations" {
		t.Errorf("dotenv = %v", env)
	}
	images := glCheckImages(t, ctx, s, env, vars, s.HeadSHA, scenario.GitLabSourceBranch, "ml_models", "quickstart_etl")
	notes := glNotes(s, scenario.GitLabMR)
	if len(notes) != 1 {
		t.Fatalf("%d notes after the first pipeline", len(notes))
	}
	for _, want := range []string{dep.Name, "| `quickstart_etl` | ✅ loaded |", "| `ml_models` | ✅ loaded |", s.HeadSHA[:12], vars["CI_PIPELINE_URL"], images["ml_models"]} {
		if !strings.Contains(notes[0].Body, want) {
			t.Errorf("note lacks %q:\n%s", want, notes[0].Body)
		}
	}
	if !strings.Contains(res.Stdout, "section_start:") || !strings.Contains(res.Stdout, "Build quickstart_etl") {
		t.Error("no collapsible log section per location")
	}
	if strings.Contains(res.Stdout, "::") {
		t.Error("a GitHub workflow command in a GitLab job log")
	}

	// 2. A push, then a merged results pipeline: it runs on a merge commit,
	// and deploys the source branch's new head.
	if err := s.Commit("Tune the model"); err != nil {
		t.Fatal(err)
	}
	merge, target, err := s.MergedResult()
	if err != nil {
		t.Fatal(err)
	}
	vars = glVars(t, s, scenario.MergedResultsPipeline, scenario.GitLabMR, merge, target)
	if vars["CI_COMMIT_SHA"] != merge || vars["CI_MERGE_REQUEST_SOURCE_BRANCH_SHA"] != s.HeadSHA || merge == s.HeadSHA {
		t.Fatalf("merged results variables: %v", vars)
	}
	res = runGitLab(t, ctx, s, deploy, vars, nil)
	if res.ExitCode != 0 {
		t.Fatal("the merged results pipeline's deploy failed")
	}
	dep2 := glBranchDeployment(t, s, scenario.GitLabSourceBranch)
	if dep2.Name != dep.Name || dep2.Commit.CommitHash != s.HeadSHA || dep2.Commit.CommitMessage != "Tune the model" {
		t.Errorf("after the merged results pipeline (merge commit %.12s): %+v", merge, dep2)
	}
	glCheckImages(t, ctx, s, res.Dotenv, vars, s.HeadSHA, scenario.GitLabSourceBranch, "ml_models", "quickstart_etl")
	if strings.Contains(res.Stdout+res.DotenvRaw, merge[:12]) {
		t.Errorf("the merge commit %.12s shows in the log or the dotenv report", merge)
	}
	notes = glNotes(s, scenario.GitLabMR)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, s.HeadSHA[:12]) || strings.Contains(notes[0].Body, merge[:12]) {
		t.Fatalf("after the merged results pipeline, notes = %+v", notes)
	}
	tags, err := s.Registry.Tags(ctx, glRepo)
	if err != nil {
		t.Fatal(err)
	}
	// Two pipelines of two locations, the merge request branch's build
	// cache per location, and the inputs tags of reuse.
	if n := len(withoutInputsTags(tags)); n != 6 || !slices.Contains(tags, "buildcache-changes-ml_models") || !slices.Contains(tags, "buildcache-changes-quickstart_etl") {
		t.Errorf("tags after two pipelines = %v", tags)
	}

	// 3. Merged: GitLab runs the environment's stop job.
	s.SetMergeRequest(scenario.GitLabMR, scenario.GitLabSourceBranch, gitlabemu.StateMerged)
	vars = glVars(t, s, scenario.StopJob, scenario.GitLabMR, "", "")
	res = runGitLab(t, ctx, s, []string{"close", "--dotenv", "deploy.env"}, vars, nil)
	if res.ExitCode != 0 {
		t.Fatal("the stop job failed")
	}
	if d := glBranchDeployment(t, s, scenario.GitLabSourceBranch); d.PullRequestStatus != "MERGED" || d.Name != dep.Name {
		t.Errorf("after the stop job: %+v", d)
	}
	if res.Dotenv["DAGSTER_STATUS"] != "merged" || res.Dotenv["DAGSTER_DEPLOYMENT"] != dep.Name {
		t.Errorf("stop job's dotenv = %v", res.Dotenv)
	}
	if strings.Contains(res.Stdout, "Build ") {
		t.Error("the stop job built images")
	}
	if after, _ := s.Registry.Tags(ctx, glRepo); len(after) != len(tags) {
		t.Errorf("the stop job pushed: %v → %v", tags, after)
	}
	notes = glNotes(s, scenario.GitLabMR)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "marked **merged**") {
		t.Fatalf("after the stop job, notes = %+v", notes)
	}
}

// TestGitLabStopClosedMergeRequest: the stop job of a closed merge request
// marks its branch deployment CLOSED. Its merge request comes from the
// environment's name alone (CI_ENVIRONMENT_NAME dagster/mr-8, as when
// CI_MERGE_REQUEST_IID is missing), and one still open is refused.
func TestGitLabStopClosedMergeRequest(t *testing.T) {
	s, ctx := newGitLabScenario(t)
	const iid, branch = 8, "feature/closed-later"
	s.SetMergeRequest(iid, branch, gitlabemu.StateOpened)
	res := runGitLab(t, ctx, s, []string{"deploy"}, glVars(t, s, scenario.MergeRequestPipeline, iid, "", ""), map[string]string{"location_names": "ml_models"})
	if res.ExitCode != 0 {
		t.Fatal("the merge request pipeline's deploy failed")
	}
	dep := glBranchDeployment(t, s, branch)
	if dep.PullRequestNumber != "8" || dep.PullRequestStatus != "OPEN" || len(dep.Locations) != 1 {
		t.Fatalf("branch deployment = %+v", dep)
	}

	stop := func() *scenario.Result {
		vars := glVars(t, s, scenario.StopJob, iid, "", "")
		vars["CI_MERGE_REQUEST_IID"] = "" // unset: the IID comes from CI_ENVIRONMENT_NAME
		if vars["CI_ENVIRONMENT_NAME"] != "dagster/mr-8" {
			t.Fatalf("CI_ENVIRONMENT_NAME = %q", vars["CI_ENVIRONMENT_NAME"])
		}
		return runGitLab(t, ctx, s, []string{"close"}, vars, nil)
	}
	// Still open (an auto_stop_in expiry, or a stop by hand): nothing changes.
	res = stop()
	if res.ExitCode == 0 || !strings.Contains(res.Stdout, "merge request !8 is opened, not merged or closed") {
		t.Errorf("the stop job of an open merge request exited %d", res.ExitCode)
	}
	if d := glBranchDeployment(t, s, branch); d.PullRequestStatus != "OPEN" {
		t.Errorf("an open merge request's deployment became %s", d.PullRequestStatus)
	}

	s.SetMergeRequest(iid, branch, gitlabemu.StateClosed)
	res = stop()
	if res.ExitCode != 0 {
		t.Fatal("the stop job failed")
	}
	if d := glBranchDeployment(t, s, branch); d.PullRequestStatus != "CLOSED" {
		t.Errorf("after the stop job: %s", d.PullRequestStatus)
	}
	notes := glNotes(s, iid)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "marked **closed**") {
		t.Fatalf("notes = %+v", notes)
	}
}

// TestGitLabDefaultBranch: a push to the default branch deploys to the full
// deployment, pushing with INPUT_REGISTRY_USERNAME/PASSWORD (a registry
// that is not the project's $CI_REGISTRY); a scheduled pipeline is refused
// before anything is built.
func TestGitLabDefaultBranch(t *testing.T) {
	s, ctx := newGitLabScenario(t)
	vars := glVars(t, s, scenario.DefaultBranchPipeline, 0, "", "")
	vars["CI_REGISTRY"] = "registry.gitlab.example.com" // not the locations' registry
	inputs := map[string]string{"location_names": "quickstart_etl", "registry_username": scenario.GitLabRegistryUser, "registry_password": scenario.GitLabJobToken}
	res := runGitLab(t, ctx, s, []string{"deploy", "--dotenv", "deploy.env"}, vars, inputs)
	if res.ExitCode != 0 {
		t.Fatal("the default branch's deploy failed")
	}
	prod, ok := s.Dagster.Deployment("prod")
	if !ok || len(prod.Locations) != 1 || prod.Locations[0].Name != "quickstart_etl" {
		t.Fatalf("prod = %+v", prod)
	}
	for _, d := range s.Dagster.Deployments() {
		if d.Type == "BRANCH" {
			t.Errorf("a default-branch pipeline made a branch deployment: %+v", d)
		}
	}
	if res.Dotenv["DAGSTER_DEPLOYMENT"] != "prod" || res.Dotenv["DAGSTER_STATUS"] != "success" || res.Dotenv["DAGSTER_DEPLOYMENT_URL"] != s.DagsterURL+"/prod/locations" {
		t.Errorf("dotenv = %v", res.Dotenv)
	}
	glCheckImages(t, ctx, s, res.Dotenv, vars, s.HeadSHA, scenario.GitLabDefaultBranch, "quickstart_etl")
	if n := s.GitLab.Notes(s.GitLabProject, scenario.GitLabMR); len(n) != 0 {
		t.Errorf("a default-branch pipeline wrote notes: %+v", n)
	}
	tags, _ := s.Registry.Tags(ctx, glRepo)

	vars = glVars(t, s, scenario.DefaultBranchPipeline, 0, "", "")
	vars["CI_PIPELINE_SOURCE"] = "schedule"
	res = runGitLab(t, ctx, s, []string{"deploy"}, vars, inputs)
	if res.ExitCode == 0 || !strings.Contains(res.Stdout, "scheduled pipelines are not supported") {
		t.Errorf("a scheduled pipeline exited %d", res.ExitCode)
	}
	if after, _ := s.Registry.Tags(ctx, glRepo); len(after) != len(tags) || strings.Contains(res.Stdout, "Build ") {
		t.Errorf("a scheduled pipeline built or pushed: %v → %v", tags, after)
	}
}

// TestGitLabMergeRequestOverTLS is the merge request pipeline with the
// Docker daemon reached as the template's job reaches its docker:dind
// service: DOCKER_HOST=tcp://…, DOCKER_TLS_VERIFY=1, DOCKER_TLS_CERTDIR and
// DOCKER_CERT_PATH=$DOCKER_TLS_CERTDIR/client (a TLS-only dockerd of its
// own, testbed.StartTLSDocker). The images are built by that daemon.
func TestGitLabMergeRequestOverTLS(t *testing.T) {
	s, ctx := newGitLabScenario(t) // before the TLS variables: it checks the shared daemon
	d := testbed.StartTLSDocker(t)
	d.Setenv(t)
	t.Setenv("DOCKER_TLS_CERTDIR", d.CertDir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("TLS dockerd log tail (%s):\n%s", d.Dir, d.LogTail(40))
		}
	})
	vars := glVars(t, s, scenario.MergeRequestPipeline, scenario.GitLabMR, "", "")
	res := runGitLab(t, ctx, s, []string{"deploy", "--dotenv", "deploy.env"}, vars, nil)
	if res.ExitCode != 0 {
		t.Fatal("the merge request pipeline's deploy over TLS failed")
	}
	dep := glBranchDeployment(t, s, scenario.GitLabSourceBranch)
	if dep.Commit.CommitHash != s.HeadSHA || len(dep.Locations) != 2 || res.Dotenv["DAGSTER_STATUS"] != "success" {
		t.Errorf("branch deployment %+v, dotenv %v", dep, res.Dotenv)
	}
	images := glCheckImages(t, ctx, s, res.Dotenv, vars, s.HeadSHA, scenario.GitLabSourceBranch, "ml_models", "quickstart_etl")
	docker, err := imagebuild.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	if docker.DaemonHost() != d.Host {
		t.Fatalf("the test's client talks to %s, not %s", docker.DaemonHost(), d.Host)
	}
	for loc, ref := range images {
		tagged, _, _ := strings.Cut(ref, "@")
		if _, err := docker.ImageInspect(ctx, tagged); err != nil {
			t.Errorf("%s: %s is not on the TLS daemon: %v", loc, tagged, err)
		}
	}
	if notes := glNotes(s, scenario.GitLabMR); len(notes) != 1 || !strings.Contains(notes[0].Body, "✅ loaded") {
		t.Errorf("notes = %+v", notes)
	}
}
