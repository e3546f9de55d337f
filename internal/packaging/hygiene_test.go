package packaging

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// ownActionOnMain is how the reusable workflow calls the action on main; each release
// rewrites it to the release's tag (TestReleaseWorkflow).
var ownActionOnMain = regexp.MustCompile(`^dagster-branch-deploy/dagster-branch-deploy@v[0-9]+$`)

func readRepoFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestWorkflowsPinActions: this repository's own workflows pin every action by commit SHA
// with the version in a comment, which Dependabot keeps current. (The examples are for
// users to copy and use tags; see TestExamplesCheckOutWithoutCredentials.)
func TestWorkflowsPinActions(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(root(t), ".github/workflows/*.yml"))
	if len(files) < 3 {
		t.Fatalf("found %d workflows", len(files))
	}
	exempt := func(u string) bool { return ownActionOnMain.MatchString(u) }
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pinProblems(filepath.Base(f), raw, exempt) {
			t.Error(p)
		}
	}
	// The check bites: a tag, and a SHA without its version.
	if p := pinProblems("x.yml", []byte("jobs: {a: {steps: [{uses: actions/checkout@v4}]}}\n"), exempt); len(p) != 1 {
		t.Errorf("an action pinned by tag gave %q", p)
	}
	if p := pinProblems("x.yml", []byte("jobs:\n  a:\n    steps:\n      - uses: actions/checkout@34e114876b0b11c390a56381ad16ebd13914f8d5\n"), exempt); len(p) != 1 {
		t.Errorf("a SHA without a version comment gave %q", p)
	}
}

var dockerBuild = regexp.MustCompile(`\bdocker (buildx )?build\b`)

// buildsImages reports whether a job builds an image from its checkout, which would then
// contain .git/config and any credential checkout left there.
func buildsImages(j ghJob) bool {
	for _, s := range j.Steps {
		if s.action() == "docker/build-push-action" || s.Uses == "./" || s.action() == "dagster-branch-deploy/dagster-branch-deploy" ||
			dockerBuild.MatchString(s.Run) {
			return true
		}
	}
	return false
}

// checkoutProblems lists the checkouts of a workflow that keep the job's token in
// .git/config: every checkout must say persist-credentials, and only a job that builds no
// image may keep it (one that pushes tags).
func checkoutProblems(name string, w ghWorkflow, mayPersist bool) []string {
	var problems []string
	for _, job := range sortedKeys(w.Jobs) {
		j := w.Jobs[job]
		for _, s := range j.Steps {
			if s.action() != "actions/checkout" {
				continue
			}
			switch v := s.with("persist-credentials"); {
			case v == "false":
			case v == "true" && mayPersist && !buildsImages(j):
			default:
				problems = append(problems, fmt.Sprintf("%s job %s: %s needs `persist-credentials: false` (has %q)", name, job, s.Uses, v))
			}
		}
	}
	return problems
}

// TestWorkflowsCheckOutWithoutCredentials: no job that builds an image keeps the token in
// .git/config.
func TestWorkflowsCheckOutWithoutCredentials(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(root(t), ".github/workflows/*.yml"))
	for _, f := range files {
		w, err := parseWorkflow(mustRead(t, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range checkoutProblems(filepath.Base(f), w, true) {
			t.Error(p)
		}
	}
	// The check bites: the release's images job keeping the credential.
	release := strings.Replace(string(readRelease(t)), "          ref: ${{ github.sha }}\n          persist-credentials: false\n",
		"          ref: ${{ github.sha }}\n          persist-credentials: true\n", 2)
	w, _ := parseWorkflow([]byte(release))
	if p := checkoutProblems("release.yml", w, true); len(p) != 1 || !strings.Contains(p[0], "job images") {
		t.Errorf("a credential kept where images are built gave %q", p)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// quickStart returns the README's quick start workflow.
func quickStart(t *testing.T) []byte {
	t.Helper()
	readme := string(readRepoFile(t, "README.md"))
	i := strings.Index(readme, "\n## Quick start\n")
	if i < 0 {
		t.Fatal("README has no Quick start")
	}
	rest := readme[i:]
	start := strings.Index(rest, "```yaml\n")
	if start < 0 {
		t.Fatal("the Quick start has no yaml block")
	}
	rest = rest[start+len("```yaml\n"):]
	end := strings.Index(rest, "```")
	if end < 0 {
		t.Fatal("the Quick start's yaml block does not end")
	}
	return []byte(rest[:end])
}

// TestExamplesCheckOutWithoutCredentials: the examples and the README's quick start, which
// users copy, check out with persist-credentials: false, and all with the same
// actions/checkout ref. They use tags (readable, and no SHA to go stale in a copy);
// this repository's own workflows use SHAs.
func TestExamplesCheckOutWithoutCredentials(t *testing.T) {
	t.Parallel()
	sources := map[string][]byte{"README.md (Quick start)": quickStart(t)}
	for _, f := range workflowFiles(t) {
		if strings.Contains(f, string(filepath.Separator)+"examples"+string(filepath.Separator)) {
			sources[f] = mustRead(t, f)
		}
	}
	refs := map[string][]string{}
	checkouts := 0
	for name, raw := range sources {
		w, err := parseWorkflow(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range checkoutProblems(name, w, false) {
			t.Error(p)
		}
		for _, j := range w.Jobs {
			for _, s := range j.Steps {
				if s.action() == "actions/checkout" {
					checkouts++
					refs[s.Uses] = append(refs[s.Uses], name)
				}
			}
		}
	}
	if checkouts < 6 {
		t.Errorf("only %d checkouts in the examples and the quick start", checkouts)
	}
	if len(refs) != 1 {
		t.Errorf("the examples use different actions/checkout refs: %v", refs)
	}
}

// reusableProblems lists what the reusable workflow lacks: the AWS keys and registry_username
// as secrets, timeout-minutes and environment wired to the job, the action's defaults, and
// a checkout without credentials.
func reusableProblems(raw []byte, action actionMeta) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var call struct {
		On struct {
			WorkflowCall struct {
				Inputs map[string]struct {
					Type    string `yaml:"type"`
					Default any    `yaml:"default"`
				} `yaml:"inputs"`
				Secrets map[string]any `yaml:"secrets"`
			} `yaml:"workflow_call"`
		} `yaml:"on"`
	}
	if err := yaml.Unmarshal(raw, &call); err != nil {
		return []string{err.Error()}
	}
	w, err := parseWorkflow(raw)
	if err != nil {
		return []string{err.Error()}
	}
	inputs, secrets := call.On.WorkflowCall.Inputs, call.On.WorkflowCall.Secrets
	for _, s := range []string{"aws_access_key_id", "aws_secret_access_key", "registry_username", "dagster_cloud_api_token", "registry_password"} {
		if _, ok := secrets[s]; !ok {
			add("the reusable workflow has no secret %s", s)
		}
	}
	if inputs["timeout-minutes"].Type != "number" || inputs["environment"].Type != "string" {
		add("the reusable workflow lacks the inputs timeout-minutes (number) and environment (string)")
	}
	// Every input of the action is the workflow's, as an input or a
	// secret (but github_token: the called job's own token comments).
	for name := range action.Inputs {
		_, isInput := inputs[name]
		_, isSecret := secrets[name]
		if name != "github_token" && !isInput && !isSecret {
			add("the reusable workflow has no input or secret %s, an input of the action", name)
		}
	}
	// The action's defaults, as the README says.
	for name, in := range action.Inputs {
		wi, ok := inputs[name]
		if !ok || in.Default == nil {
			continue
		}
		if got := strings.ToLower(fmt.Sprint(wi.Default)); got != strings.ToLower(*in.Default) {
			add("the reusable workflow's input %s defaults to %s, the action's to %s", name, got, *in.Default)
		}
	}
	if len(w.Jobs) != 1 {
		add("the reusable workflow has %d jobs, want 1", len(w.Jobs))
	}
	for name, j := range w.Jobs {
		if fmt.Sprint(j.TimeoutMinutes) != "${{ inputs.timeout-minutes }}" {
			add("job %s: timeout-minutes is %v, not the input", name, j.TimeoutMinutes)
		}
		if fmt.Sprint(j.Environment) != "${{ inputs.environment }}" {
			add("job %s: environment is %v, not the input", name, j.Environment)
		}
		calls := 0
		for _, s := range j.Steps {
			if s.action() != "dagster-branch-deploy/dagster-branch-deploy" {
				continue
			}
			calls++
			if s.Env["AWS_ACCESS_KEY_ID"] != "${{ secrets.aws_access_key_id }}" || s.Env["AWS_SECRET_ACCESS_KEY"] != "${{ secrets.aws_secret_access_key }}" {
				add("job %s: the action does not get the AWS keys from the secrets in its env (%v)", name, s.Env)
			}
			if !strings.Contains(s.with("registry_username"), "secrets.registry_username") {
				add("job %s: registry_username is %q, without the secret", name, s.with("registry_username"))
			}
			// Each input or secret reaches the action under its name.
			for in := range action.Inputs {
				if in == "github_token" {
					continue
				}
				w := s.with(in)
				if !strings.Contains(w, "inputs."+in+" ") && !strings.Contains(w, "inputs."+in+"}") && !strings.Contains(w, "secrets."+in+" ") && !strings.Contains(w, "secrets."+in+"}") {
					add("job %s: the action's input %s is %q, not the workflow's input or secret of that name", name, in, w)
				}
			}
		}
		if calls != 1 {
			add("job %s calls the action %d times", name, calls)
		}
	}
	problems = append(problems, checkoutProblems("deploy.yml", w, false)...)
	problems = append(problems, pinProblems("deploy.yml", raw, func(u string) bool { return ownActionOnMain.MatchString(u) })...)
	return problems
}

func TestReusableWorkflow(t *testing.T) {
	t.Parallel()
	raw := string(readRepoFile(t, ".github/workflows/deploy.yml"))
	action := readAction(t)
	for _, p := range reusableProblems([]byte(raw), action) {
		t.Error(p)
	}
	for _, c := range []struct{ old, new, want string }{
		{"      aws_secret_access_key: {required: false}\n", "", "no secret aws_secret_access_key"},
		{"      registry_username: {required: false} # wins over the input of that name\n", "", "no secret registry_username"},
		{"${{ secrets.registry_username || inputs.registry_username }}", "${{ inputs.registry_username }}", "registry_username is"},
		{"    timeout-minutes: ${{ inputs.timeout-minutes }}\n", "", "timeout-minutes is <nil>"},
		{"    environment: ${{ inputs.environment }}\n", "    environment: production\n", "environment is production"},
		{"AWS_ACCESS_KEY_ID: ${{ secrets.aws_access_key_id }}", "AWS_ACCESS_KEY_ID: ${{ secrets.aws_secret_access_key }}", "AWS keys"},
		{"default: 3600}", "default: 600}", "location_load_timeout defaults to 600"},
		{"          persist-credentials: false\n", "", "needs `persist-credentials: false`"},
		{"      dry_run: {type: boolean, required: false, default: false}\n", "", "no input or secret dry_run"},
		{"          fork_pull_requests: ${{ inputs.fork_pull_requests }}\n", "", "the action's input fork_pull_requests is \"\""},
		{"merge_group: {type: string, required: false, default: build}", "merge_group: {type: string, required: false, default: skip}", "merge_group defaults to skip"},
	} {
		if !strings.Contains(raw, c.old) {
			t.Errorf("deploy.yml no longer contains %q; update this case", c.old)
			continue
		}
		problems := reusableProblems([]byte(strings.ReplaceAll(raw, c.old, c.new)), action)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }) {
			t.Errorf("deploy.yml without %q passed (want %q); problems: %q", c.old, c.want, problems)
		}
	}
}

// TestDependabot: weekly updates of the Go modules and of the actions, minor and patch
// grouped.
func TestDependabot(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Version int `yaml:"version"`
		Updates []struct {
			Ecosystem string `yaml:"package-ecosystem"`
			Directory string `yaml:"directory"`
			Schedule  struct {
				Interval string `yaml:"interval"`
			} `yaml:"schedule"`
			Groups map[string]struct {
				UpdateTypes []string `yaml:"update-types"`
			} `yaml:"groups"`
		} `yaml:"updates"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, ".github/dependabot.yml"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Version != 2 {
		t.Errorf("version %d", cfg.Version)
	}
	var ecosystems []string
	for _, u := range cfg.Updates {
		ecosystems = append(ecosystems, u.Ecosystem)
		if u.Directory != "/" || u.Schedule.Interval != "weekly" {
			t.Errorf("%s: directory %q, interval %q", u.Ecosystem, u.Directory, u.Schedule.Interval)
		}
		grouped := false
		for _, g := range u.Groups {
			types := slices.Clone(g.UpdateTypes)
			slices.Sort(types)
			grouped = grouped || slices.Equal(types, []string{"minor", "patch"})
		}
		if !grouped {
			t.Errorf("%s: no group of minor and patch updates", u.Ecosystem)
		}
	}
	slices.Sort(ecosystems)
	if !slices.Equal(ecosystems, []string{"github-actions", "gomod"}) {
		t.Errorf("ecosystems %v", ecosystems)
	}
}

// apache20SHA256 is the SHA-256 of the Apache License 2.0 as apache.org publishes it.
const apache20SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

// TestProjectFiles: the license is Apache-2.0's text word for word, with our copyright line
// in its appendix; SECURITY.md and CHANGELOG.md exist.
func TestProjectFiles(t *testing.T) {
	t.Parallel()
	const ours = "   Copyright 2026 The dagster-branch-deploy Authors\n"
	license := string(readRepoFile(t, "LICENSE"))
	if strings.Count(license, ours) != 1 {
		t.Errorf("LICENSE lacks the line %q", ours)
	}
	sum := sha256.Sum256([]byte(strings.Replace(license, ours, "   Copyright [yyyy] [name of copyright owner]\n", 1)))
	if got := hex.EncodeToString(sum[:]); got != apache20SHA256 {
		t.Errorf("LICENSE is not the Apache License 2.0 text (sha256 %s without our copyright line)", got)
	}
	if changelog := string(readRepoFile(t, "CHANGELOG.md")); !strings.Contains(changelog, "\n## [Unreleased]\n") {
		t.Error("CHANGELOG.md has no Unreleased section")
	}
	if !strings.Contains(string(readRepoFile(t, "SECURITY.md")), "Report a vulnerability") {
		t.Error("SECURITY.md does not say how to report a vulnerability")
	}
}

// TestDockerfileCrossCompiles: the images' Go binary is compiled on the build machine for
// the target platform, not under emulation.
func TestDockerfileCrossCompiles(t *testing.T) {
	t.Parallel()
	dockerfile := string(readRepoFile(t, "Dockerfile"))
	for _, want := range []string{"FROM --platform=$BUILDPLATFORM golang:", "ARG TARGETOS TARGETARCH", "GOOS=$TARGETOS GOARCH=$TARGETARCH go build"} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}
