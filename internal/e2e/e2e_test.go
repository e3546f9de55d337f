//go:build docker

// Package e2e runs the built binary as GitHub runs a Docker action, against
// a real dockerd, a real docker-registry and the API emulators.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/githubemu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

var binary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dbd-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := testbed.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binary = filepath.Join(dir, "dagster-branch-deploy")
	cmd := exec.Command("go", "build", "-o", binary, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the binary: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func newScenario(t *testing.T) (*scenario.Scenario, context.Context) {
	t.Helper()
	testbed.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	s, err := scenario.New(ctx, t.TempDir(), "quickstart")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, ctx
}

func runAction(t *testing.T, ctx context.Context, s *scenario.Scenario, eventName, eventFile string, edit func(map[string]any), inputs map[string]string) *scenario.Result {
	t.Helper()
	path, err := s.Event(eventFile, edit)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(ctx, binary, eventName, path, inputs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s run exited %d\n--- stdout ---\n%s\n--- stderr ---\n%s", eventFile, res.ExitCode, res.Stdout, res.Stderr)
	secrets := map[string]string{
		"dagster_cloud_api_token": scenario.DagsterToken,
		"registry_password":       scenario.RegistryPassword,
		"github_token":            scenario.GitHubToken,
	}
	for k, v := range inputs {
		if _, ok := secrets[k]; ok {
			secrets[k] = v
		}
	}
	var values []string
	for _, v := range secrets {
		if v != "" {
			values = append(values, v)
		}
	}
	for _, line := range strings.Split(inputs["build_secrets"], "\n") {
		if _, v, ok := strings.Cut(line, "="); ok {
			values = append(values, v)
		}
	}
	assertNoSecrets(t, s, res, values)
	return res
}

// assertNoSecrets checks that no secret appears anywhere but in the
// add-mask commands that hide them, and that each was masked.
func assertNoSecrets(t *testing.T, s *scenario.Scenario, res *scenario.Result, secrets []string) {
	t.Helper()
	var visible []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			visible = append(visible, line)
		}
	}
	outputs, _ := json.Marshal(res.Outputs)
	var comments []string
	for _, c := range s.GitHub.Comments("Codertocat", "Hello-World", 2) {
		comments = append(comments, c.Body)
	}
	places := map[string]string{
		"stdout":   strings.Join(visible, "\n"),
		"stderr":   res.Stderr,
		"summary":  res.Summary,
		"outputs":  string(outputs),
		"comments": strings.Join(comments, "\n"),
	}
	for where, text := range places {
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("secret %.6s… appears in %s", secret, where)
			}
		}
	}
	for _, secret := range secrets {
		if !strings.Contains(res.Stdout, "::add-mask::"+secret) {
			t.Errorf("secret %.6s… was not masked", secret)
		}
	}
}

func ourComments(s *scenario.Scenario) []githubemu.Comment {
	var out []githubemu.Comment
	for _, c := range s.GitHub.Comments("Codertocat", "Hello-World", 2) {
		if strings.Contains(c.Body, platform.Marker("dagster_cloud.yaml")) {
			out = append(out, c)
		}
	}
	return out
}

func errorAnnotations(stdout string) []string {
	var out []string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "::error") {
			out = append(out, line)
		}
	}
	return out
}

func branchDeployment(t *testing.T, s *scenario.Scenario) dagsteremu.Deployment {
	t.Helper()
	var found []dagsteremu.Deployment
	for _, d := range s.Dagster.Deployments() {
		if d.BranchName == "changes" {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("branch deployments for branch changes: %+v", found)
	}
	return found[0]
}

func TestPullRequestLifecycle(t *testing.T) {
	s, ctx := newScenario(t)
	s.GitHub.Seed("Codertocat", "Hello-World", 2, 120) // the comment lands past page 1

	// 1. opened: both locations built, pushed, deployed and loaded.
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, nil)
	if res.ExitCode != 0 {
		t.Fatalf("opened run failed: %s", errorAnnotations(res.Stdout))
	}
	dep := branchDeployment(t, s)
	if dep.RepoName != "Codertocat/Hello-World" || dep.PullRequestStatus != "OPEN" || dep.PullRequestNumber != "2" ||
		dep.PullRequestURL != "https://github.com/Codertocat/Hello-World/pull/2" || dep.BaseDeploymentName != "prod" {
		t.Errorf("branch deployment = %+v", dep)
	}
	if dep.Commit.CommitHash != s.HeadSHA || dep.Commit.CommitMessage != "Add quickstart code locations" || dep.Commit.AuthorEmail != "jane@example.com" {
		t.Errorf("commit metadata (want it from git log of the head commit) = %+v", dep)
	}
	if res.Outputs["deployment"] != dep.Name || res.Outputs["status"] != "success" ||
		res.Outputs["deployment_url"] != s.DagsterURL+"/"+dep.Name+"/locations" {
		t.Errorf("outputs = %v", res.Outputs)
	}
	var images map[string]string
	if err := json.Unmarshal([]byte(res.Outputs["images"]), &images); err != nil {
		t.Fatalf("images output %q: %v", res.Outputs["images"], err)
	}
	repo := "acme/quickstart"
	tagRE := regexp.MustCompile(`^` + regexp.QuoteMeta(s.Registry.Addr+"/"+repo) + `:` + s.HeadSHA[:12] + `-\d+-1-(quickstart_etl|ml_models)@(sha256:[0-9a-f]{64})$`)
	for _, loc := range []string{"quickstart_etl", "ml_models"} {
		m := tagRE.FindStringSubmatch(images[loc])
		if m == nil || m[1] != loc {
			t.Fatalf("image of %s = %q, want %s", loc, images[loc], tagRE)
		}
		ref := strings.TrimSuffix(images[loc], "@"+m[2])
		tag := ref[strings.LastIndex(ref, ":")+1:]
		digest, err := s.Registry.ManifestDigest(ctx, repo, tag)
		if err != nil || digest != m[2] {
			t.Errorf("registry digest of %s = %q, %v; output says %s", tag, digest, err, m[2])
		}
		labels, err := s.Registry.ImageLabels(ctx, repo, tag)
		if err != nil {
			t.Fatal(err)
		}
		if labels["org.opencontainers.image.revision"] != s.HeadSHA || labels["org.opencontainers.image.source"] != "https://github.com/Codertocat/Hello-World" || labels["branch"] != "changes" {
			t.Errorf("labels of %s = %v", loc, labels)
		}
		var doc map[string]any
		var status string
		for _, l := range dep.Locations {
			if l.Name == loc {
				doc, status = l.Document, l.LoadStatus
			}
		}
		if doc == nil {
			t.Fatalf("location %s not in the emulator: %+v", loc, dep.Locations)
		}
		if _, has := doc["build"]; has || doc["image"] != ref || status != "LOADED" {
			t.Errorf("document of %s = %v (status %s)", loc, doc, status)
		}
		if git, _ := doc["git"].(map[string]any); git["commit_hash"] != s.HeadSHA || git["url"] != "https://github.com/Codertocat/Hello-World/tree/"+s.HeadSHA {
			t.Errorf("git of %s = %v", loc, doc["git"])
		}
	}
	comments := ourComments(s)
	if len(comments) != 1 {
		t.Fatalf("%d comments after the first run", len(comments))
	}
	for _, want := range []string{dep.Name, "| `quickstart_etl` | ✅ loaded |", "| `ml_models` | ✅ loaded |", s.HeadSHA[:12]} {
		if !strings.Contains(comments[0].Body, want) {
			t.Errorf("comment lacks %q:\n%s", want, comments[0].Body)
		}
	}
	if !strings.Contains(res.Summary, "| `quickstart_etl` | ✅ loaded |") {
		t.Errorf("summary:\n%s", res.Summary)
	}
	if !strings.Contains(res.Stdout, "::group::Build quickstart_etl") {
		t.Error("no log group per location")
	}

	// 2. synchronize: a new commit updates the same deployment and comment.
	if err := s.Commit("Tune the model"); err != nil {
		t.Fatal(err)
	}
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", nil, nil)
	if res.ExitCode != 0 {
		t.Fatalf("synchronize run failed: %s", errorAnnotations(res.Stdout))
	}
	dep2 := branchDeployment(t, s)
	if dep2.Name != dep.Name || dep2.Commit.CommitHash != s.HeadSHA || dep2.Commit.CommitMessage != "Tune the model" {
		t.Errorf("after synchronize: %+v", dep2)
	}
	comments = ourComments(s)
	if len(comments) != 1 || !strings.Contains(comments[0].Body, s.HeadSHA[:12]) {
		t.Fatalf("after synchronize, comments = %+v", comments)
	}
	tags, err := s.Registry.Tags(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	// Two runs of two locations, plus the pull request branch's build
	// cache per location (they share the repository), and the inputs tags
	// of reuse.
	if n := len(withoutInputsTags(tags)); n != 6 || !slices.Contains(tags, "buildcache-changes-ml_models") || !slices.Contains(tags, "buildcache-changes-quickstart_etl") {
		t.Errorf("tags after two runs = %v", tags)
	}

	// 3. closed: marked CLOSED, nothing built.
	res = runAction(t, ctx, s, "pull_request", "pull_request.closed.json", nil, nil)
	if res.ExitCode != 0 {
		t.Fatalf("closed run failed: %s", errorAnnotations(res.Stdout))
	}
	if d := branchDeployment(t, s); d.PullRequestStatus != "CLOSED" {
		t.Errorf("status after close = %s", d.PullRequestStatus)
	}
	if res.Outputs["status"] != "closed" || res.Outputs["deployment"] != dep.Name {
		t.Errorf("close outputs = %v", res.Outputs)
	}
	if strings.Contains(res.Stdout, "::group::Build") {
		t.Error("the close run built images")
	}
	if after, _ := s.Registry.Tags(ctx, repo); len(after) != len(tags) {
		t.Errorf("the close run pushed: tags %v → %v", tags, after)
	}
	comments = ourComments(s)
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "marked **closed**") {
		t.Fatalf("after close, comments = %+v", comments)
	}
}

func TestPushDeploysToFullDeployment(t *testing.T) {
	s, ctx := newScenario(t)
	res := runAction(t, ctx, s, "push", "push.default-branch.json", nil, map[string]string{"location_names": "quickstart_etl"})
	if res.ExitCode != 0 {
		t.Fatalf("push run failed: %s", errorAnnotations(res.Stdout))
	}
	prod, ok := s.Dagster.Deployment("prod")
	if !ok || len(prod.Locations) != 1 || prod.Locations[0].Name != "quickstart_etl" {
		t.Fatalf("prod = %+v", prod)
	}
	for _, d := range s.Dagster.Deployments() {
		if d.BranchName != "" {
			t.Errorf("a push made a branch deployment: %+v", d)
		}
	}
	if res.Outputs["deployment"] != "prod" || len(s.GitHub.Comments("Codertocat", "Hello-World", 2)) != 0 {
		t.Errorf("outputs = %v", res.Outputs)
	}
	// One location alone in its registry: no location suffix.
	var images map[string]string
	_ = json.Unmarshal([]byte(res.Outputs["images"]), &images)
	if !regexp.MustCompile(`:` + s.HeadSHA[:12] + `-\d+-1@sha256:`).MatchString(images["quickstart_etl"]) {
		t.Errorf("image = %q", images["quickstart_etl"])
	}
}

// TestFailures checks that each kind of bad input fails the run with one
// error annotation saying what is wrong, deploys nothing, and tells the PR.
func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		event     string
		file      string
		setup     func(t *testing.T, s *scenario.Scenario)
		inputs    map[string]string
		env       map[string]string
		want      []string // in the ::error annotation
		noComment bool     // the failure happens before a comment can be written
		builds    bool     // the failure comes after images were built
	}{
		{
			name:   "missing token",
			inputs: map[string]string{"dagster_cloud_api_token": ""},
			want:   []string{"dagster_cloud_api_token", "DAGSTER_CLOUD_API_TOKEN"},
		},
		{
			name: "invalid dagster_cloud.yaml",
			setup: func(t *testing.T, s *scenario.Scenario) {
				writeFile(t, filepath.Join(s.Workspace, "dagster_cloud.yaml"), "locations:\n  - location_name: a\n    code_source: {package_name: a}\n    bulid: {}\n")
			},
			want: []string{"file=dagster_cloud.yaml,line=4", `unknown key "bulid"`},
		},
		{
			name:   "unknown location name",
			inputs: map[string]string{"location_names": "quickstart_etl,nope"},
			want:   []string{`"nope"`, "location_names"},
		},
		{
			name: "failing Dockerfile",
			setup: func(t *testing.T, s *scenario.Scenario) {
				writeFile(t, filepath.Join(s.Workspace, "ml_models", "Dockerfile"), "FROM scratch\nCOPY missing.txt /\n")
			},
			want:   []string{"ml_models", "nothing was deployed", "missing.txt"},
			builds: true,
		},
		{
			// The worst case of a hostile pull request: a committed symlink
			// that makes a build context of the runner's home.
			name: "build context outside the workspace",
			setup: func(t *testing.T, s *scenario.Scenario) {
				home := t.TempDir()
				writeFile(t, filepath.Join(home, "id_rsa"), "-----BEGIN OPENSSH PRIVATE KEY-----\n")
				writeFile(t, filepath.Join(home, "Dockerfile"), "FROM scratch\nCOPY . /\n")
				if err := os.RemoveAll(filepath.Join(s.Workspace, "ml_models")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(home, filepath.Join(s.Workspace, "ml_models")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"file=dagster_cloud.yaml,line=15", `build.directory "./ml_models" resolves to`, "a build context must be inside the project directory"},
		},
		{
			name:   "registry refuses the password",
			inputs: map[string]string{"registry_password": "wrong-password-123"},
			want:   []string{"refused the credentials", "registry_username"},
		},
		{
			name:   "Dagster+ rejects the token",
			inputs: map[string]string{"dagster_cloud_api_token": "not-a-valid-token-999"},
			want:   []string{"dagster_cloud_api_token"},
		},
		{
			name:      "unsupported event",
			event:     "push",
			file:      "push.tag-deleted.json",
			want:      []string{"push of tag simple-tag is not supported", "workflow_dispatch"},
			noComment: true,
		},
		{
			name: "docker daemon unreachable",
			env:  map[string]string{"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
			want: []string{"DOCKER_HOST", "unix:///nonexistent/docker.sock"},
		},
		{
			name: "location fails to load",
			setup: func(t *testing.T, s *scenario.Scenario) {
				s.Dagster.FailLocation("ml_models", "ModuleNotFoundError: No module named 'ml_models'")
			},
			want:   []string{"ml_models", "ModuleNotFoundError"},
			builds: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := newScenario(t)
			if tc.setup != nil {
				tc.setup(t, s)
			}
			event, file := "pull_request", "pull_request.opened.json"
			if tc.event != "" {
				event, file = tc.event, tc.file
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			res := runAction(t, ctx, s, event, file, nil, tc.inputs)
			if res.ExitCode == 0 {
				t.Fatal("the run succeeded")
			}
			errs := errorAnnotations(res.Stdout)
			if len(errs) != 1 {
				t.Fatalf("want one ::error annotation, got %d: %q", len(errs), errs)
			}
			final := errs[0]
			for _, w := range tc.want {
				if !strings.Contains(final, w) {
					t.Errorf("the error annotation lacks %q: %s", w, final)
				}
			}
			if built := strings.Contains(res.Stdout, "::group::Build"); built != tc.builds {
				t.Errorf("images built: %v, want %v", built, tc.builds)
			}
			if res.Outputs["status"] != "" && res.Outputs["status"] != "failed" {
				t.Errorf("status output = %q", res.Outputs["status"])
			}
			comments := ourComments(s)
			for _, c := range comments {
				t.Logf("PR comment:\n%s", c.Body)
			}
			if tc.noComment {
				return
			}
			if len(comments) != 1 || !strings.Contains(comments[0].Body, "Deploy failed") {
				t.Errorf("the PR was not told: %+v", comments)
			}
			if tc.name != "location fails to load" {
				for _, d := range s.Dagster.Deployments() {
					if len(d.Locations) > 0 {
						t.Errorf("something was deployed: %+v", d)
					}
				}
			}
		})
	}
}

// TestSIGTERMDuringBuild: a job cancelled mid-build (the runner sends
// SIGTERM) ends promptly, pushes and deploys nothing, and leaves the
// comment in a final state that says so.
func TestSIGTERMDuringBuild(t *testing.T) {
	s, _ := newScenario(t)
	s.StopSignal = syscall.SIGTERM
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("needs a static /bin/busybox (scripts/setup.sh installs it): %v", err)
	}
	if err := os.WriteFile(filepath.Join(s.Workspace, "ml_models", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.Workspace, "ml_models", "Dockerfile"), "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"300\"]\n")
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second) // well into the sleep
	defer cancel()
	start := time.Now()
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, map[string]string{"location_names": "ml_models"})
	if took := time.Since(start); took > 90*time.Second {
		t.Errorf("the run took %s to end after SIGTERM", took)
	}
	if res.ExitCode == 0 {
		t.Fatal("a cancelled run exited 0")
	}
	if !strings.Contains(res.Stdout, "::group::Build ml_models") {
		t.Fatalf("the signal came before the build started; lengthen the wait:\n%s", res.Stdout)
	}
	comments := ourComments(s)
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "the run was cancelled") || strings.Contains(comments[0].Body, "⏳") {
		t.Errorf("comment: %+v", comments)
	}
	if res.Outputs["status"] != "failed" {
		t.Errorf("status = %q", res.Outputs["status"])
	}
	bg := context.Background()
	if tags, _ := s.Registry.Tags(bg, "acme/quickstart"); len(tags) != 0 {
		t.Errorf("pushed after SIGTERM: %v", tags)
	}
	for _, d := range s.Dagster.Deployments() {
		if len(d.Locations) > 0 {
			t.Errorf("deployed after SIGTERM: %+v", d)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCommentProblemsDoNotFailTheDeploy checks that the comment is optional:
// a failing GitHub API is a warning, and pr_comment: false writes none.
func TestCommentProblemsDoNotFailTheDeploy(t *testing.T) {
	s, ctx := newScenario(t)
	for i := 0; i < 10; i++ {
		s.GitHub.FailNext(http.StatusInternalServerError)
	}
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, map[string]string{"location_load_timeout": "0"})
	if res.ExitCode != 0 || len(errorAnnotations(res.Stdout)) != 0 {
		t.Fatalf("a failing comment failed the run: %s", errorAnnotations(res.Stdout))
	}
	if !strings.Contains(res.Stdout, "::warning::Could not write the pull request comment") {
		t.Error("no warning about the comment")
	}
	if res.Outputs["status"] != "success" {
		t.Errorf("status = %q", res.Outputs["status"])
	}
	// With location_load_timeout 0 nothing waits: the locations are deployed, not loaded.
	if !strings.Contains(res.Summary, "🚀 deployed") {
		t.Errorf("summary:\n%s", res.Summary)
	}

	calls := len(s.GitHub.Calls())
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", nil, map[string]string{"pr_comment": "false"})
	if res.ExitCode != 0 {
		t.Fatalf("run failed: %s", errorAnnotations(res.Stdout))
	}
	if n := len(s.GitHub.Calls()); n != calls {
		t.Errorf("pr_comment: false still called the GitHub API (%d calls)", n-calls)
	}
}
