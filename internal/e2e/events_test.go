//go:build docker

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// The end-to-end tests of the event policy (forks, Dependabot, merge
// queues, drafts), delete_on_close, dry_run and the hygiene checks: the
// built binary against a real dockerd and docker-registry and the
// emulators, each run's effect read back from the registry and the
// Dagster+ and GitHub emulators.

const quickstartRepo = "acme/quickstart"

// world is what a run can change: the registry's tags, Dagster+'s
// deployments, and the pull request's comments.
type world struct {
	tags        []string
	deployments string
	comments    []string
}

func snapshot(t *testing.T, ctx context.Context, s *scenario.Scenario) world {
	t.Helper()
	tags, err := s.Registry.Tags(ctx, quickstartRepo)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	deps, err := json.Marshal(s.Dagster.Deployments())
	if err != nil {
		t.Fatal(err)
	}
	var comments []string
	for _, c := range s.GitHub.Comments("Codertocat", "Hello-World", 2) {
		comments = append(comments, c.Body)
	}
	return world{tags: tags, deployments: string(deps), comments: comments}
}

// unchanged checks that nothing a run can change changed since before.
func unchanged(t *testing.T, ctx context.Context, s *scenario.Scenario, before world) {
	t.Helper()
	after := snapshot(t, ctx, s)
	if !slices.Equal(before.tags, after.tags) {
		t.Errorf("registry tags changed: %v → %v", before.tags, after.tags)
	}
	if before.deployments != after.deployments {
		t.Errorf("Dagster+ changed:\n%s\n→\n%s", before.deployments, after.deployments)
	}
	if !slices.Equal(before.comments, after.comments) {
		t.Errorf("the comments changed:\n%q\n→\n%q", before.comments, after.comments)
	}
}

// noMutationsSince checks that Dagster+ got no mutation after its first n
// requests.
func noMutationsSince(t *testing.T, s *scenario.Scenario, n int) {
	t.Helper()
	for _, r := range s.Dagster.Requests()[n:] {
		if strings.Contains(r.Query, "mutation ") {
			t.Errorf("Dagster+ mutation %s", r.Operation)
		}
	}
}

func notices(stdout string) []string {
	var out []string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "::notice") {
			out = append(out, line)
		}
	}
	return out
}

func forkPR(ev map[string]any) {
	head := ev["pull_request"].(map[string]any)["head"].(map[string]any)
	head["label"] = "octocat:changes"
	head["repo"].(map[string]any)["full_name"] = "octocat/Hello-World"
}

func dependabotPR(ev map[string]any) {
	ev["pull_request"].(map[string]any)["user"].(map[string]any)["login"] = "dependabot[bot]"
}

// noSecretsInputs are the inputs of a run that gets no secrets: the
// workflow's secrets are empty (registry_username, from a variable, is not).
var noSecretsInputs = map[string]string{"dagster_cloud_api_token": "", "registry_password": ""}

func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestEventsForkPR: a fork's pull request is skipped with a notice, exit 0
// and status skipped, and nothing is sent anywhere: no build, no registry,
// no Dagster+ or GitHub API call, no comment. With fork_pull_requests:
// build its images are built and still nothing is pushed, deployed or
// commented; its close is skipped.
func TestEventsForkPR(t *testing.T) {
	s, ctx := newScenario(t)
	before := snapshot(t, ctx, s)

	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", forkPR, noSecretsInputs)
	if res.ExitCode != 0 || len(errorAnnotations(res.Stdout)) != 0 {
		t.Fatalf("exit %d: %q", res.ExitCode, errorAnnotations(res.Stdout))
	}
	if n := notices(res.Stdout); len(n) != 1 || !strings.Contains(n[0], "Pull request #2 comes from a fork (octocat/Hello-World), whose runs get no secrets and a read-only token: nothing is built, pushed or deployed (fork_pull_requests: skip") {
		t.Errorf("notices = %q", n)
	}
	if res.Outputs["status"] != "skipped" || res.Outputs["deployment"] != "" {
		t.Errorf("outputs = %v", res.Outputs)
	}
	if !strings.Contains(res.Summary, "### ⏭️ Dagster+ branch deployment skipped") {
		t.Errorf("summary:\n%s", res.Summary)
	}
	if strings.Contains(res.Stdout, "::group::Build") {
		t.Error("a skipped run built")
	}
	if r := s.Dagster.Requests(); len(r) != 0 {
		t.Errorf("%d Dagster+ requests", len(r))
	}
	if c := s.GitHub.Calls(); len(c) != 0 {
		t.Errorf("GitHub API calls: %+v", c)
	}
	unchanged(t, ctx, s, before)

	// build: the images are built, and still nothing leaves the runner.
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", forkPR, with(noSecretsInputs, "fork_pull_requests", "build"))
	if res.ExitCode != 0 {
		t.Fatalf("fork build run failed: %q", errorAnnotations(res.Stdout))
	}
	if res.Outputs["status"] != "built" || !strings.Contains(res.Stdout, "::group::Build quickstart_etl") || !strings.Contains(res.Stdout, "::group::Build ml_models") {
		t.Errorf("outputs %v; the images were not built:\n%s", res.Outputs, res.Stdout)
	}
	if !strings.Contains(res.Summary, "| `ml_models` | 🏗️ built |") {
		t.Errorf("summary:\n%s", res.Summary)
	}
	if len(s.Dagster.Requests()) != 0 || len(s.GitHub.Calls()) != 0 {
		t.Errorf("Dagster+ requests %d, GitHub calls %+v", len(s.Dagster.Requests()), s.GitHub.Calls())
	}
	unchanged(t, ctx, s, before)

	// Closing a fork's pull request: nothing to close.
	res = runAction(t, ctx, s, "pull_request", "pull_request.closed.json", forkPR, with(noSecretsInputs, "fork_pull_requests", "build"))
	if res.ExitCode != 0 || res.Outputs["status"] != "skipped" || !strings.Contains(res.Stdout, "no branch deployment to close or delete") {
		t.Errorf("close: exit %d, outputs %v", res.ExitCode, res.Outputs)
	}
	if len(s.Dagster.Requests()) != 0 {
		t.Errorf("%d Dagster+ requests", len(s.Dagster.Requests()))
	}
	unchanged(t, ctx, s, before)
}

// TestEventsDependabotPR: Dependabot's pull request is skipped as a fork's
// is; with dependabot_pull_requests: fail it fails with one error that says
// why, and still sends nothing.
func TestEventsDependabotPR(t *testing.T) {
	s, ctx := newScenario(t)
	before := snapshot(t, ctx, s)

	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", dependabotPR, noSecretsInputs)
	if res.ExitCode != 0 || res.Outputs["status"] != "skipped" {
		t.Fatalf("exit %d, outputs %v, errors %q", res.ExitCode, res.Outputs, errorAnnotations(res.Stdout))
	}
	if n := notices(res.Stdout); len(n) != 1 || !strings.Contains(n[0], "Pull request #2 is Dependabot's, whose runs get no secrets") {
		t.Errorf("notices = %q", n)
	}
	if len(s.Dagster.Requests()) != 0 || len(s.GitHub.Calls()) != 0 || strings.Contains(res.Stdout, "::group::Build") {
		t.Errorf("Dagster+ requests %d, GitHub calls %+v", len(s.Dagster.Requests()), s.GitHub.Calls())
	}
	unchanged(t, ctx, s, before)

	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", dependabotPR, with(noSecretsInputs, "dependabot_pull_requests", "fail"))
	errs := errorAnnotations(res.Stdout)
	if res.ExitCode != 1 || len(errs) != 1 || !strings.Contains(errs[0], "is Dependabot's") || !strings.Contains(errs[0], "dependabot_pull_requests: fail") {
		t.Errorf("exit %d, errors %q", res.ExitCode, errs)
	}
	if res.Outputs["status"] != "failed" {
		t.Errorf("outputs = %v", res.Outputs)
	}
	if len(s.Dagster.Requests()) != 0 || len(s.GitHub.Calls()) != 0 {
		t.Errorf("Dagster+ requests %d, GitHub calls %+v", len(s.Dagster.Requests()), s.GitHub.Calls())
	}
	unchanged(t, ctx, s, before)
}

// TestEventsMergeGroup: a merge queue's check builds the images of the
// group's head commit in the daemon (labelled with it) and pushes and
// deploys nothing; merge_group: skip builds nothing.
func TestEventsMergeGroup(t *testing.T) {
	s, ctx := newScenario(t)
	before := snapshot(t, ctx, s)

	res := runAction(t, ctx, s, "merge_group", "merge_group.checks_requested.json", nil, nil)
	if res.ExitCode != 0 || res.Outputs["status"] != "built" {
		t.Fatalf("exit %d, outputs %v, errors %q", res.ExitCode, res.Outputs, errorAnnotations(res.Stdout))
	}
	if n := notices(res.Stdout); len(n) != 1 || !strings.Contains(n[0], "Merge queue commit "+s.HeadSHA[:12]+" (merge_group): the images are built") {
		t.Errorf("notices = %q", n)
	}
	if len(s.Dagster.Requests()) != 0 || len(s.GitHub.Calls()) != 0 {
		t.Errorf("Dagster+ requests %d, GitHub calls %+v", len(s.Dagster.Requests()), s.GitHub.Calls())
	}
	unchanged(t, ctx, s, before)
	// The images are in the daemon, built from the group's commit.
	docker, err := imagebuild.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, loc := range []string{"quickstart_etl", "ml_models"} {
		prefix := "::group::Build " + loc + " → "
		i := strings.Index(res.Stdout, prefix)
		if i < 0 {
			t.Fatalf("no build of %s:\n%s", loc, res.Stdout)
		}
		ref, _, _ := strings.Cut(res.Stdout[i+len(prefix):], "\n")
		if !strings.Contains(ref, ":"+s.HeadSHA[:12]+"-") {
			t.Errorf("%s: image %s is not tagged with the group's commit", loc, ref)
		}
		img, err := docker.ImageInspect(ctx, ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if l := img.Config.Labels; l["org.opencontainers.image.revision"] != s.HeadSHA || !strings.HasPrefix(l["branch"], "gh-readonly-queue/master/pr-2-") {
			t.Errorf("%s: labels %v", ref, l)
		}
	}

	res = runAction(t, ctx, s, "merge_group", "merge_group.checks_requested.json", nil, map[string]string{"merge_group": "skip"})
	if res.ExitCode != 0 || res.Outputs["status"] != "skipped" || strings.Contains(res.Stdout, "::group::Build") {
		t.Errorf("skip: exit %d, outputs %v", res.ExitCode, res.Outputs)
	}
	unchanged(t, ctx, s, before)
}

// TestEventsDraft: with draft_pull_requests: skip a draft is skipped until
// ready_for_review deploys it; converted_to_draft then leaves the branch
// deployment, the registry and the comment as they are.
func TestEventsDraft(t *testing.T) {
	s, ctx := newScenario(t)
	inputs := map[string]string{"draft_pull_requests": "skip", "location_names": "ml_models"}
	draft := func(action string, isDraft bool) func(map[string]any) {
		return func(ev map[string]any) {
			ev["action"] = action
			ev["pull_request"].(map[string]any)["draft"] = isDraft
		}
	}
	before := snapshot(t, ctx, s)
	calls := len(s.GitHub.Calls())
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", draft("opened", true), inputs)
	if res.ExitCode != 0 || res.Outputs["status"] != "skipped" || strings.Contains(res.Stdout, "::group::Build") {
		t.Fatalf("draft: exit %d, outputs %v", res.ExitCode, res.Outputs)
	}
	if n := notices(res.Stdout); len(n) != 1 || !strings.Contains(n[0], "Pull request #2 is a draft and draft_pull_requests is skip") {
		t.Errorf("notices = %q", n)
	}
	if len(s.Dagster.Requests()) != 0 {
		t.Errorf("%d Dagster+ requests", len(s.Dagster.Requests()))
	}
	for _, c := range s.GitHub.Calls()[calls:] {
		if c.Method != "GET" {
			t.Errorf("GitHub call %+v", c)
		}
	}
	unchanged(t, ctx, s, before)

	// Ready for review: deployed.
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", draft("ready_for_review", false), inputs)
	if res.ExitCode != 0 || res.Outputs["status"] != "success" {
		t.Fatalf("ready_for_review: exit %d, outputs %v, errors %q", res.ExitCode, res.Outputs, errorAnnotations(res.Stdout))
	}
	dep := branchDeployment(t, s)
	if dep.Commit.CommitHash != s.HeadSHA || len(dep.Locations) != 1 {
		t.Errorf("branch deployment = %+v", dep)
	}
	if c := ourComments(s); len(c) != 1 || !strings.Contains(c[0].Body, "✅ loaded") {
		t.Errorf("comments = %+v", c)
	}

	// Converted to a draft: left as it is.
	deployed := snapshot(t, ctx, s)
	n := len(s.Dagster.Requests())
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", draft("converted_to_draft", true), inputs)
	if res.ExitCode != 0 || res.Outputs["status"] != "skipped" {
		t.Fatalf("converted_to_draft: exit %d, outputs %v", res.ExitCode, res.Outputs)
	}
	if n := notices(res.Stdout); len(n) != 1 || !strings.Contains(n[0], "was converted to a draft: its branch deployment is left as it is") {
		t.Errorf("notices = %q", n)
	}
	if len(s.Dagster.Requests()) != n {
		t.Errorf("converted_to_draft sent %d Dagster+ requests", len(s.Dagster.Requests())-n)
	}
	unchanged(t, ctx, s, deployed)

	// A new commit to the draft: skipped too.
	if err := s.Commit("Work in progress"); err != nil {
		t.Fatal(err)
	}
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", draft("synchronize", true), inputs)
	if res.ExitCode != 0 || res.Outputs["status"] != "skipped" || strings.Contains(res.Stdout, "::group::Build") {
		t.Errorf("draft synchronize: exit %d, outputs %v", res.ExitCode, res.Outputs)
	}
	unchanged(t, ctx, s, deployed)
}

// TestEventsDeleteOnClose: with delete_on_close the close run deletes the
// branch deployment from Dagster+ (checking first that it is one), says so
// in the comment and outputs, and builds and pushes nothing.
func TestEventsDeleteOnClose(t *testing.T) {
	s, ctx := newScenario(t)
	inputs := map[string]string{"delete_on_close": "true", "location_names": "quickstart_etl"}
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, inputs)
	if res.ExitCode != 0 {
		t.Fatalf("opened: %q", errorAnnotations(res.Stdout))
	}
	dep := branchDeployment(t, s)
	before := snapshot(t, ctx, s)
	n := len(s.Dagster.Requests())

	res = runAction(t, ctx, s, "pull_request", "pull_request.closed.json", nil, inputs)
	if res.ExitCode != 0 {
		t.Fatalf("closed: %q", errorAnnotations(res.Stdout))
	}
	if _, ok := s.Dagster.Deployment(dep.Name); ok {
		t.Errorf("branch deployment %s still exists", dep.Name)
	}
	for _, d := range s.Dagster.Deployments() {
		if d.Type == "BRANCH" {
			t.Errorf("a branch deployment is left: %+v", d)
		}
	}
	if prod, ok := s.Dagster.Deployment("prod"); !ok || prod.Type != "PRODUCTION" {
		t.Errorf("prod = %+v, %v", prod, ok)
	}
	var ops []string
	for _, r := range s.Dagster.Requests()[n:] {
		ops = append(ops, r.Operation)
	}
	if !slices.Contains(ops, "DeploymentByNameQuery") || ops[len(ops)-1] != "CliDeleteDeployment" || slices.Contains(ops, "CliCreateOrUpdateBranchDeployment") {
		t.Errorf("operations = %v", ops)
	}
	if res.Outputs["status"] != "deleted" || res.Outputs["deployment"] != dep.Name || res.Outputs["deployment_url"] != "" {
		t.Errorf("outputs = %v", res.Outputs)
	}
	c := ourComments(s)
	if len(c) != 1 || !strings.Contains(c[0].Body, "the branch deployment was **deleted** and nothing was built") || !strings.Contains(c[0].Body, "🗑️ deleted") {
		t.Errorf("comments = %+v", c)
	}
	if strings.Contains(res.Stdout, "::group::Build") {
		t.Error("the close run built")
	}
	if after := snapshot(t, ctx, s); !slices.Equal(after.tags, before.tags) {
		t.Errorf("the close pushed: %v → %v", before.tags, after.tags)
	}
}

// TestEventsDryRun: a dry run checks the token, the registry credentials
// and the registry, builds the images, prints the plan to the log and the
// summary, and leaves the registry, Dagster+ and the comment unchanged; a
// wrong registry password fails it as it would fail a deploy.
func TestEventsDryRun(t *testing.T) {
	s, ctx := newScenario(t)
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, nil)
	if res.ExitCode != 0 {
		t.Fatalf("opened: %q", errorAnnotations(res.Stdout))
	}
	dep := branchDeployment(t, s)
	if err := s.Commit("Try a change"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, ctx, s)
	n := len(s.Dagster.Requests())

	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", nil, map[string]string{"dry_run": "true"})
	if res.ExitCode != 0 {
		t.Fatalf("dry run: %q", errorAnnotations(res.Stdout))
	}
	unchanged(t, ctx, s, before)
	noMutationsSince(t, s, n)
	var ops []string
	for _, r := range s.Dagster.Requests()[n:] {
		ops = append(ops, r.Operation)
	}
	if !slices.Contains(ops, "CliOrganizationSettings") || !slices.Contains(ops, "CliDeploymentByName") {
		t.Errorf("operations %v: the token and the branch deployment were not read", ops)
	}
	if res.Outputs["status"] != "dry-run" || res.Outputs["deployment"] != dep.Name {
		t.Errorf("outputs = %v", res.Outputs)
	}
	host := s.Registry.Addr
	for _, want := range []string{
		"Registry " + host + ": using credentials from",
		"Registry " + host + " answers.",
		"::group::Build quickstart_etl",
		"Dry run plan:",
		"  Location quickstart_etl: image " + host + "/acme/quickstart:" + s.HeadSHA[:12],
		"  Dagster+ operation 1, CliCreateOrUpdateBranchDeployment: update branch deployment " + dep.Name + " (now at commit " + dep.Commit.CommitHash[:12] + ", OPEN) to commit " + s.HeadSHA[:12],
		"  Dagster+ operation 2, CliDeployLocations: deploy quickstart_etl = " + host + "/acme/quickstart:" + s.HeadSHA[:12],
		"Dry run: nothing was pushed, deployed or commented.",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	for _, want := range []string{"### 🧪 Dagster+ branch deployment", "(dry run)", "**Dry run:** nothing was pushed, deployed or commented.",
		"1. `CliCreateOrUpdateBranchDeployment`:", "2. `CliDeployLocations`:", "| `ml_models` | 🏗️ built | `" + host + "/acme/quickstart:" + s.HeadSHA[:12]} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}

	// The close, planned: nothing deleted.
	n = len(s.Dagster.Requests())
	res = runAction(t, ctx, s, "pull_request", "pull_request.closed.json", nil, map[string]string{"dry_run": "true", "delete_on_close": "true"})
	if res.ExitCode != 0 || res.Outputs["status"] != "dry-run" || !strings.Contains(res.Stdout, "CliDeleteDeployment: delete branch deployment "+dep.Name) {
		t.Errorf("close dry run: exit %d, outputs %v\n%s", res.ExitCode, res.Outputs, res.Stdout)
	}
	unchanged(t, ctx, s, before)
	noMutationsSince(t, s, n)

	// A wrong registry password fails the dry run, before any build.
	n = len(s.Dagster.Requests())
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", nil, map[string]string{"dry_run": "true", "registry_password": "wrong-password-123"})
	if errs := errorAnnotations(res.Stdout); res.ExitCode == 0 || len(errs) != 1 || !strings.Contains(errs[0], "refused the credentials") {
		t.Errorf("exit %d, errors %q", res.ExitCode, errs)
	}
	if strings.Contains(res.Stdout, "::group::Build") || res.Outputs["status"] != "failed" {
		t.Errorf("built after a refused login, or outputs %v", res.Outputs)
	}
	unchanged(t, ctx, s, before)
	noMutationsSince(t, s, n)
}

// TestEventsGitCredentialWarning: a build context holding the checkout's
// .git/config with actions/checkout's Authorization header gets one
// warning at its build.directory line, without the header's value; a
// .dockerignore that excludes .git silences it.
func TestEventsGitCredentialWarning(t *testing.T) {
	s, ctx := newScenario(t)
	value := "basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:ghs_persistedByCheckout42"))
	cmd := exec.Command("git", "config", "--local", "http.https://github.com/.extraheader", "AUTHORIZATION: "+value)
	cmd.Dir = s.Workspace
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	yaml := strings.Replace(readFileE2E(t, filepath.Join(s.Workspace, "dagster_cloud.yaml")), "directory: ./ml_models", "directory: .", 1)
	writeFile(t, filepath.Join(s.Workspace, "dagster_cloud.yaml"), yaml)
	writeFile(t, filepath.Join(s.Workspace, "Dockerfile"), "FROM scratch\nCOPY ml_models/definitions.py /opt/dagster/app/ml_models/definitions.py\n")
	line := 0
	for i, l := range strings.Split(yaml, "\n") {
		if strings.Contains(l, "directory: .") && !strings.Contains(l, "quickstart") {
			line = i + 1
		}
	}
	inputs := map[string]string{"push": "false", "location_names": "ml_models"}
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, inputs)
	if res.ExitCode != 0 {
		t.Fatalf("%q", errorAnnotations(res.Stdout))
	}
	var warnings []string
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(l, "::warning") && strings.Contains(l, ".git/config") {
			warnings = append(warnings, l)
		}
	}
	want := "::warning file=dagster_cloud.yaml,line=" + strconv.Itoa(line) + "::The build context . of location ml_models holds .git/config with a credential (http.https://github.com/.extraheader)"
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], want) {
		t.Errorf("warnings = %q, want one starting %q", warnings, want)
	}
	for _, secret := range []string{value, "ghs_persistedByCheckout42", value[len("basic "):]} {
		if strings.Contains(res.Stdout, secret) || strings.Contains(res.Stderr, secret) || strings.Contains(res.Summary, secret) {
			t.Errorf("the header's value is shown")
		}
	}

	writeFile(t, filepath.Join(s.Workspace, ".dockerignore"), ".git\n")
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", nil, inputs)
	if res.ExitCode != 0 || strings.Contains(res.Stdout, "holds .git/config") {
		t.Errorf("exit %d; still warned with .git in .dockerignore", res.ExitCode)
	}
}

// TestEventsSSHAgentInContainer runs the action's image as GitHub runs a
// Docker action, with an ssh-agent whose socket is under the runner's
// ${{ runner.temp }}/_github_home and SSH_AUTH_SOCK naming the runner's
// path: `ssh: default` reaches it (mapped to /github/home) and a
// RUN --mount=type=ssh step sees it. An agent under the runner's /tmp,
// which the container cannot see, is refused before any build.
func TestEventsSSHAgentInContainer(t *testing.T) {
	testbed.Docker(t)
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Fatalf("needs ssh-agent (openssh-client): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	docker, err := imagebuild.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := buildActionImage(t, ctx)
	s, err := scenario.New(ctx, t.TempDir(), "quickstart")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The runner's temp directory, its _github_home and the agent there.
	s.RunnerTemp = filepath.Join(s.Dir, "runner-temp")
	home := filepath.Join(s.RunnerTemp, "_github_home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(home, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = agent.Process.Kill(); _ = agent.Wait() }()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("needs a static /bin/busybox (scripts/setup.sh installs it): %v", err)
	}
	if err := os.WriteFile(filepath.Join(s.Workspace, "ml_models", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.Workspace, "ml_models", "Dockerfile"), "FROM scratch\nCOPY busybox /bin/busybox\n"+
		"RUN --mount=type=ssh [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox test -S \\\"$SSH_AUTH_SOCK\\\" && /bin/busybox echo forwarded > /ssh\"]\n")

	run := func(agentSock string) *scenario.Result {
		t.Helper()
		s.ContainerEnv = map[string]string{"SSH_AUTH_SOCK": agentSock}
		path, err := s.Event("pull_request.opened.json", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.RunContainer(ctx, docker, ref, "pull_request", path, map[string]string{"ssh": "default", "location_names": "ml_models", "push": "false"})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s", res.ExitCode, res.Stdout, res.Stderr)
		return res
	}
	// SSH_AUTH_SOCK as webfactory/ssh-agent exports it: the runner's path.
	res := run(sock)
	if res.ExitCode != 0 || res.Outputs["status"] != "built" {
		t.Fatalf("with the agent under the temp home: exit %d, errors %q", res.ExitCode, errorAnnotations(res.Stdout))
	}
	if !strings.Contains(res.Stdout, "::group::Build ml_models") {
		t.Error("no build")
	}

	res = run("/tmp/ssh-XXXXnotmounted/agent.4242")
	errs := errorAnnotations(res.Stdout)
	if res.ExitCode == 0 || len(errs) != 1 || !strings.Contains(errs[0], "title=Invalid input ssh") ||
		!strings.Contains(errs[0], "/tmp/ssh-XXXXnotmounted/agent.4242") || !strings.Contains(errs[0], "_github_home/agent.sock") {
		t.Errorf("exit %d, errors %q", res.ExitCode, errs)
	}
	if strings.Contains(res.Stdout, "::group::Build") {
		t.Error("built with an agent the container cannot see")
	}
}

func readFileE2E(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
