//go:build docker

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// The tests in this file deploy testdata/projects/serverless to a Dagster+
// Serverless organization: the Dagster+ emulator reports agentType
// SERVERLESS and hands out a second local docker-registry as the Serverless
// registry (scenario.Serverless), whose only user is the one of the token it
// hands out. The project's locations have no build.registry; etl
// (requirements.txt) and analytics (pyproject.toml) have no Dockerfile, so
// the binary generates upstream's serverless one, FROM the base image the
// test pushes first (Docker Hub is not reachable: a static busybox with
// stand-ins for pip and dagster-cloud, so that the generated RUN steps run
// for real); ml_models has its own Dockerfile.

// slLocations are the project's locations.
var slLocations = []string{"etl", "analytics", "ml_models"}

// slPipLog is where the base image's pip stand-in records its calls.
const slPipLog = "var/log/pip-calls.txt"

// slBaseDockerfile is the base image: busybox's applets in /bin (a shell
// for the generated RUN steps), and on PATH a pip that records how it was
// called (working directory and arguments) and installs nothing, and a
// dagster-cloud that prints a version. /etc/base-id differs on every push,
// so that the daemon's build cache never holds the generated RUN steps:
// they run in every test.
const slBaseDockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY pip dagster-cloud /usr/local/bin/
COPY base-id /etc/base-id
ENV PATH=/usr/local/bin:/usr/bin:/bin
`

const slPipStub = `#!/bin/sh
# A stand-in for pip: records its working directory and arguments.
mkdir -p /var/log
echo "$(pwd): pip $*" >> /var/log/pip-calls.txt
`

const slDagsterCloudStub = `#!/bin/sh
echo "dagster-cloud, version 1.11.0 (test stand-in)"
`

func newServerlessScenario(t *testing.T, opts scenario.Options) (*scenario.Scenario, context.Context) {
	t.Helper()
	testbed.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	s, err := scenario.NewWith(ctx, t.TempDir(), "serverless", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, ctx
}

// pushServerlessBase builds the base image and pushes it to the Serverless
// registry (where the build pulls it with the token Dagster+ hands out),
// and returns its reference.
func pushServerlessBase(t *testing.T, ctx context.Context, s *scenario.Scenario) string {
	t.Helper()
	dir := testbed.BusyboxContext(t, slBaseDockerfile)
	id := fmt.Sprintf("%s %d\n", t.Name(), time.Now().UnixNano())
	for name, content := range map[string]string{"pip": slPipStub, "dagster-cloud": slDagsterCloudStub, "base-id": id} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ref := s.ServerlessRegistry.Addr + "/base/dagster-python:3.11-stub"
	start := time.Now()
	if err := scenario.BuildAndPush(ctx, s.ServerlessRegistry, dir, ref); err != nil {
		t.Fatal(err)
	}
	t.Logf("base image %s pushed in %s", ref, time.Since(start).Round(time.Millisecond))
	return ref
}

// slInputs are the inputs of a Serverless run: no registry credentials (the
// Serverless registry takes only the token Dagster+ hands out), and more.
func slInputs(more map[string]string) map[string]string {
	in := map[string]string{"registry_username": "", "registry_password": ""}
	for k, v := range more {
		in[k] = v
	}
	return in
}

// runServerless runs the binary for the event, logs what it printed and
// checks that no secret, the Serverless registry's password included,
// shows anywhere but in the add-mask commands, and that each was masked
// (the password only when handedOut: Dagster+ handed the registry out).
func runServerless(t *testing.T, ctx context.Context, s *scenario.Scenario, eventName, eventFile string, inputs map[string]string, handedOut bool) *scenario.Result {
	t.Helper()
	path, err := s.Event(eventFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := s.Run(ctx, binary, eventName, path, inputs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s run exited %d in %s\n--- stdout ---\n%s\n--- stderr ---\n%s", eventFile, res.ExitCode, time.Since(start).Round(time.Millisecond), res.Stdout, res.Stderr)
	if handedOut {
		assertNoSecrets(t, s, res, append([]string{scenario.DagsterToken, scenario.GitHubToken}, slSecrets()...))
		return res
	}
	assertNoSecrets(t, s, res, []string{scenario.DagsterToken, scenario.GitHubToken})
	if strings.Contains(res.Stdout+res.Stderr+res.Summary, scenario.ServerlessPassword) {
		t.Error("the Serverless registry's password appears in a run that was not handed it")
	}
	return res
}

// slSecrets are the Serverless registry's secrets: its password, and the
// token Dagster+ hands out (base64 of user:password).
func slSecrets() []string {
	token := dagsteremu.ServerlessRegistry{Username: scenario.ServerlessUser, Password: scenario.ServerlessPassword}.AuthToken()
	return []string{scenario.ServerlessPassword, token}
}

// slImage is one image of the images output, checked against the registry.
type slImage struct {
	ref    string // repository:tag, as deployed
	repo   string // the repository in the Serverless registry
	tag    string
	digest string
}

// slCheckImages checks the images output (or DAGSTER_IMAGES) of a run that
// built every location for the Serverless registry: each is
// <registryUrl>:<prefix>-<location>-<sha12>-<run>-<attempt>@<digest> (Harbor:
// <registryUrl>/<location>:…), the run part given as the regular
// expression run; the registry holds it with that digest, built for
// linux/amd64 and labelled with the commit, source and branch.
func slCheckImages(t *testing.T, ctx context.Context, s *scenario.Scenario, imagesJSON, prefix, run, source, branch string) map[string]slImage {
	t.Helper()
	var images map[string]string
	if err := json.Unmarshal([]byte(imagesJSON), &images); err != nil {
		t.Fatalf("images %q: %v", imagesJSON, err)
	}
	if len(images) != len(slLocations) {
		t.Errorf("images = %v, want one for each of %v", images, slLocations)
	}
	out := map[string]slImage{}
	for _, loc := range slLocations {
		repo := s.ServerlessRepo(loc)
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(s.ServerlessRegistry.Addr+"/"+repo+":") +
			`(` + regexp.QuoteMeta(prefix+"-"+loc+"-"+s.HeadSHA[:12]+"-") + run + `)@(sha256:[0-9a-f]{64})$`)
		m := re.FindStringSubmatch(images[loc])
		if m == nil {
			t.Errorf("image of %s = %q, want %s", loc, images[loc], re)
			continue
		}
		img := slImage{ref: strings.TrimSuffix(images[loc], "@"+m[2]), repo: repo, tag: m[1], digest: m[2]}
		out[loc] = img
		if d, err := s.ServerlessRegistry.ManifestDigest(ctx, repo, img.tag); err != nil || d != img.digest {
			t.Errorf("registry digest of %s:%s = %q, %v; the output says %s", repo, img.tag, d, err, img.digest)
		}
		cfg, err := s.ServerlessRegistry.ImageConfig(ctx, repo, img.tag)
		if err != nil {
			t.Fatal(err)
		}
		if cfg["os"] != "linux" || cfg["architecture"] != "amd64" {
			t.Errorf("%s is %v/%v, want linux/amd64", loc, cfg["os"], cfg["architecture"])
		}
		labels, err := s.ServerlessRegistry.ImageLabels(ctx, repo, img.tag)
		if err != nil {
			t.Fatal(err)
		}
		if labels["org.opencontainers.image.revision"] != s.HeadSHA || labels["org.opencontainers.image.source"] != source || labels["branch"] != branch {
			t.Errorf("labels of %s = %v", loc, labels)
		}
	}
	return out
}

// slImageEnv is the Env of an image's config.
func slImageEnv(t *testing.T, ctx context.Context, s *scenario.Scenario, img slImage) []string {
	t.Helper()
	cfg, err := s.ServerlessRegistry.ImageConfig(ctx, img.repo, img.tag)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	c, _ := cfg["config"].(map[string]any)
	for _, e := range c["Env"].([]any) {
		env = append(env, e.(string))
	}
	return env
}

// slCheckContents reads the images out of the registry and checks what the
// Dockerfiles put there: etl's generated one copies the code to
// /opt/dagster/app and runs `pip install -r requirements.txt` there;
// analytics' copies pyproject.toml to / and runs `pip install .` there
// before the code is copied; both build FROM the base (busybox is there)
// with env_vars as ENV (envVar, NAME=value; "" skips the check); ml_models' own Dockerfile (FROM scratch) copies one
// file and nothing else.
func slCheckContents(t *testing.T, ctx context.Context, s *scenario.Scenario, images map[string]slImage, envVar string) {
	t.Helper()
	files := map[string]map[string][]byte{}
	for loc, img := range images {
		f, err := scenario.ImageFiles(ctx, s.ServerlessRegistry, img.repo, img.tag)
		if err != nil {
			t.Fatal(err)
		}
		files[loc] = f
	}
	wantPip := map[string]string{
		"etl":       "/opt/dagster/app: pip install -r requirements.txt\n",
		"analytics": "/: pip install .\n",
	}
	wantCode := map[string][]string{
		"etl":       {"opt/dagster/app/requirements.txt", "opt/dagster/app/etl/__init__.py", "opt/dagster/app/etl/definitions.py"},
		"analytics": {"pyproject.toml", "opt/dagster/app/pyproject.toml", "opt/dagster/app/analytics/definitions.py"},
	}
	for loc, pip := range wantPip {
		f := files[loc]
		if f == nil {
			continue
		}
		if got := string(f[slPipLog]); got != pip {
			t.Errorf("%s: pip was called %q, want %q", loc, got, pip)
		}
		for _, p := range wantCode[loc] {
			if _, ok := f[p]; !ok {
				t.Errorf("%s: the image lacks /%s", loc, p)
			}
		}
		if _, ok := f["bin/busybox"]; !ok {
			t.Errorf("%s is not built FROM the base image", loc)
		}
		if env := slImageEnv(t, ctx, s, images[loc]); envVar != "" && !slices.Contains(env, envVar) {
			t.Errorf("%s: env_vars not baked in (want %s): %v", loc, envVar, env)
		}
		for p := range f {
			if strings.Contains(p, "Dockerfile") {
				t.Errorf("%s: the generated Dockerfile was shipped in the image as /%s", loc, p)
			}
		}
	}
	if f := files["ml_models"]; f != nil {
		var names []string
		for p := range f {
			names = append(names, p)
		}
		if !slices.Equal(names, []string{"opt/dagster/app/definitions.py"}) {
			t.Errorf("ml_models (its own Dockerfile, FROM scratch) holds %v", names)
		}
		if envVar != "" && slices.Contains(slImageEnv(t, ctx, s, images["ml_models"]), envVar) {
			t.Error("env_vars went into a location's own Dockerfile")
		}
	}
}

// slCheckDeployed checks that dep has every location, LOADED, deployed with
// its image and without its build section.
func slCheckDeployed(t *testing.T, dep dagsteremu.Deployment, images map[string]slImage) {
	t.Helper()
	if len(dep.Locations) != len(slLocations) {
		t.Errorf("%s has %d locations: %+v", dep.Name, len(dep.Locations), dep.Locations)
	}
	for _, l := range dep.Locations {
		img, ok := images[l.Name]
		if !ok {
			t.Errorf("%s: unexpected location %s", dep.Name, l.Name)
			continue
		}
		if _, has := l.Document["build"]; has || l.Document["image"] != img.ref || l.LoadStatus != "LOADED" {
			t.Errorf("%s: location %s = %v (%s), want image %s", dep.Name, l.Name, l.Document, l.LoadStatus, img.ref)
		}
	}
}

// slCheckLog checks what a successful Serverless run says: the agent
// type, the Serverless registry's token, a generated Dockerfile FROM base
// for etl and analytics and ml_models' own, and the Serverless heartbeat
// default (900 s).
func slCheckLog(t *testing.T, stdout, base string) {
	t.Helper()
	for _, want := range []string{
		"Deployment prod is on Dagster+ Serverless",
		"using credentials from the token Dagster+ hands out for its Serverless registry",
		"Location etl: no Dockerfile, so one is generated (FROM " + base + ", requirements.txt).",
		"Location analytics: no Dockerfile, so one is generated (FROM " + base + ", pyproject.toml).",
		"Location ml_models: building with its own Dockerfile Dockerfile.",
		"up to 15m0s for an agent to answer",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}

// TestServerlessPullRequestAndPush deploys the Serverless project from a
// pull request (opened) and then from a push to the default branch, with a
// custom base image the organization allows (ECR layout: one repository,
// the location in the tag).
func TestServerlessPullRequestAndPush(t *testing.T) {
	s, ctx := newServerlessScenario(t, scenario.Options{Serverless: &scenario.Serverless{AllowCustomBase: true}})
	base := pushServerlessBase(t, ctx, s)
	const envVar = "DAGSTER_DEPLOY_KIND=branch-or-prod"
	inputs := slInputs(map[string]string{"base_image": base, "env_vars": `{"DAGSTER_DEPLOY_KIND": "branch-or-prod"}`})
	source := "https://github.com/Codertocat/Hello-World"

	// 1. pull_request opened: a branch deployment.
	res := runServerless(t, ctx, s, "pull_request", "pull_request.opened.json", inputs, true)
	if res.ExitCode != 0 {
		t.Fatalf("the pull request run failed: %s", errorAnnotations(res.Stdout))
	}
	dep := branchDeployment(t, s)
	if dep.PullRequestStatus != "OPEN" || dep.BaseDeploymentName != "prod" || dep.Commit.CommitHash != s.HeadSHA {
		t.Errorf("branch deployment = %+v", dep)
	}
	if res.Outputs["status"] != "success" || res.Outputs["deployment"] != dep.Name || res.Outputs["deployment_url"] != s.DagsterURL+"/"+dep.Name+"/locations" {
		t.Errorf("outputs = %v", res.Outputs)
	}
	images := slCheckImages(t, ctx, s, res.Outputs["images"], "branch", `\d+-1`, source, "changes")
	runs := map[string]bool{}
	for _, img := range images {
		runs[img.tag[strings.LastIndex(img.tag[:len(img.tag)-2], "-")+1:]] = true
	}
	if len(runs) != 1 {
		t.Errorf("the images are of different runs: %v", runs)
	}
	slCheckContents(t, ctx, s, images, envVar)
	slCheckDeployed(t, dep, images)
	slCheckLog(t, res.Stdout, base)
	if !strings.Contains(res.Stdout, "version 1.11.0 (test stand-in)") {
		t.Error("the build log does not show the generated Dockerfile's `dagster-cloud --version`")
	}
	comments := ourComments(s)
	if len(comments) != 1 {
		t.Fatalf("%d comments", len(comments))
	}
	for _, want := range []string{dep.Name, "| `etl` | ✅ loaded |", "| `analytics` | ✅ loaded |", "| `ml_models` | ✅ loaded |", s.HeadSHA[:12]} {
		if !strings.Contains(comments[0].Body, want) {
			t.Errorf("the comment lacks %q:\n%s", want, comments[0].Body)
		}
	}

	// 2. push to the default branch: the full deployment, prod-… tags.
	res = runServerless(t, ctx, s, "push", "push.default-branch.json", inputs, true)
	if res.ExitCode != 0 {
		t.Fatalf("the push run failed: %s", errorAnnotations(res.Stdout))
	}
	if res.Outputs["status"] != "success" || res.Outputs["deployment"] != "prod" {
		t.Errorf("outputs = %v", res.Outputs)
	}
	// The push is of the same commit, so every location has the inputs of
	// an image the pull request run pushed: that image is tagged for prod,
	// not rebuilt, and keeps the labels of the build that made it (branch
	// "changes").
	prodImages := slCheckImages(t, ctx, s, res.Outputs["images"], "prod", `\d+-1`, source, "changes")
	for loc, img := range prodImages {
		if img.digest != images[loc].digest {
			t.Errorf("prod image of %s is %s, want the pull request's %s reused", loc, img.digest, images[loc].digest)
		}
		if !strings.Contains(res.Stdout, "Reused "+s.ServerlessRegistry.Addr+"/"+img.repo+":inputs-") {
			t.Errorf("the push run does not say it reused the image of %s", loc)
		}
	}
	slCheckContents(t, ctx, s, prodImages, envVar)
	prod, ok := s.Dagster.Deployment("prod")
	if !ok {
		t.Fatal("no prod deployment")
	}
	slCheckDeployed(t, prod, prodImages)
	slCheckLog(t, res.Stdout, base)
	if len(ourComments(s)) != 1 {
		t.Error("the push wrote a pull request comment")
	}
	tags, err := s.ServerlessRegistry.Tags(ctx, scenario.ServerlessRepository)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range images {
		if !slices.Contains(tags, img.tag) {
			t.Errorf("the branch image %s is gone after the push: %v", img.tag, tags)
		}
	}
	t.Logf("tags of %s: %v", scenario.ServerlessRepository, tags)
}

// TestServerlessHarborWhileActivating: a Harbor registry (each location its
// own repository under registryUrl) that Dagster+ does not hand out at
// first (twice "not available yet"): the run waits, visibly, 10 s each
// time as upstream, then deploys.
func TestServerlessHarborWhileActivating(t *testing.T) {
	s, ctx := newServerlessScenario(t, scenario.Options{Serverless: &scenario.Serverless{Harbor: true, AllowCustomBase: true, Pending: 2}})
	base := pushServerlessBase(t, ctx, s)
	start := time.Now()
	res := runServerless(t, ctx, s, "pull_request", "pull_request.opened.json", slInputs(map[string]string{"base_image": base}), true)
	took := time.Since(start)
	if res.ExitCode != 0 {
		t.Fatalf("the run failed: %s", errorAnnotations(res.Stdout))
	}
	for _, want := range []string{"Retrying in 10s (attempt 1 of 6)", "Retrying in 10s (attempt 2 of 6)", "may still be activating"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if strings.Contains(res.Stdout, "attempt 3 of 6") || took < 20*time.Second {
		t.Errorf("want two waits of 10 s; the run took %s", took)
	}
	if n := s.Dagster.ServerlessPending(); n != 0 {
		t.Errorf("%d pending answers left", n)
	}
	images := slCheckImages(t, ctx, s, res.Outputs["images"], "branch", `\d+-1`, "https://github.com/Codertocat/Hello-World", "changes")
	for loc, img := range images {
		if img.repo != scenario.ServerlessHarborPrefix+"/"+loc {
			t.Errorf("%s went to %s, want its own repository under the Harbor prefix", loc, img.repo)
		}
	}
	slCheckContents(t, ctx, s, images, "")
	slCheckDeployed(t, branchDeployment(t, s), images)
	slCheckLog(t, res.Stdout, base)
}

// TestServerlessRefusals: what a Serverless organization refuses fails the
// run before any build, with one error that says what to do, and deploys
// and pushes nothing: a custom base image the organization does not allow
// (registryAllowCustomBase false), a location without a Dockerfile and
// without dependency files, and an organization whose Serverless agent is
// not enabled.
func TestServerlessRefusals(t *testing.T) {
	s, ctx := newServerlessScenario(t, scenario.Options{Serverless: &scenario.Serverless{}})
	requirements := filepath.Join(s.Workspace, "etl", "requirements.txt")
	tests := []struct {
		name   string
		inputs map[string]string
		setup  func(t *testing.T)
		want   []string
		// notHandedOut: Dagster+ hands out no registry, so there is no
		// password to mask.
		notHandedOut bool
	}{
		{
			name:   "custom base not allowed",
			inputs: map[string]string{"base_image": s.ServerlessRegistry.Addr + "/base/dagster-python:3.11-stub"},
			want:   []string{"base_image", "does not allow custom base images", "registryAllowCustomBase is false", "remove base_image"},
		},
		{
			name: "no dependency files",
			setup: func(t *testing.T) {
				data, err := os.ReadFile(requirements)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(requirements); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { writeFile(t, requirements, string(data)) })
			},
			want: []string{"location etl", "has no requirements.txt, setup.py or pyproject.toml", "add a Dockerfile"},
		},
		{
			name: "Serverless not enabled",
			setup: func(t *testing.T) {
				s.Dagster.SetServerlessStatus("INACTIVE", "")
				t.Cleanup(func() { s.Dagster.SetServerlessStatus("", "") })
			},
			want:         []string{"Dagster+ Serverless is not enabled for this organization", "build.registry"},
			notHandedOut: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			res := runServerless(t, ctx, s, "pull_request", "pull_request.opened.json", slInputs(tc.inputs), !tc.notHandedOut)
			if res.ExitCode == 0 {
				t.Fatal("the run succeeded")
			}
			errs := errorAnnotations(res.Stdout)
			if len(errs) != 1 {
				t.Fatalf("want one ::error annotation, got %q", errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs[0], w) {
					t.Errorf("the error lacks %q: %s", w, errs[0])
				}
			}
			if strings.Contains(res.Stdout, "::group::Build") {
				t.Error("something was built")
			}
			if res.Outputs["status"] != "failed" {
				t.Errorf("status = %q", res.Outputs["status"])
			}
			if tags, err := s.ServerlessRegistry.Tags(ctx, scenario.ServerlessRepository); err == nil && len(tags) > 0 {
				t.Errorf("pushed %v", tags)
			}
			for _, d := range s.Dagster.Deployments() {
				if len(d.Locations) > 0 {
					t.Errorf("deployed: %+v", d)
				}
			}
			if c := ourComments(s); len(c) != 1 || !strings.Contains(c[0].Body, "Deploy failed") {
				t.Errorf("the pull request was not told: %+v", c)
			}
		})
	}
}
