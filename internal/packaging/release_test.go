package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// versionFlag is the linker flag that stamps the version (internal/cli.Version).
const versionFlag = "-X github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cli.Version="

// TestVersionStamping keeps the Dockerfile and the release workflow stamping the variable that
// --version prints.
func TestVersionStamping(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join(root(t), "internal", "cli", "version.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^var Version = "dev"$`).Match(src) {
		t.Error(`internal/cli/version.go does not declare var Version = "dev"`)
	}
	for _, f := range []string{"Dockerfile", ".github/workflows/release.yml"} {
		data, err := os.ReadFile(filepath.Join(root(t), f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), versionFlag+"${VERSION}") {
			t.Errorf("%s does not stamp the version with %s${VERSION}", f, versionFlag)
		}
	}
}

// TestDockerfileTargets checks the stages the workflows, action.yml and the README name: the
// action's image is the last stage (what GitHub builds for `image: Dockerfile`), and the gitlab
// stage has no entrypoint.
func TestDockerfileTargets(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	stage := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if strings.EqualFold(f[0], "FROM") {
			cur = ""
			if len(f) >= 4 && strings.EqualFold(f[len(f)-2], "AS") {
				cur = f[len(f)-1]
			}
			stages = append(stages, cur)
			continue
		}
		stage[cur] = append(stage[cur], line)
	}
	if len(stages) == 0 || stages[len(stages)-1] != "action" {
		t.Errorf("the last stage is %q, want action (the default target): %v", stages[len(stages)-1], stages)
	}
	if !slices.Contains(stages, "gitlab") {
		t.Fatalf("no gitlab stage: %v", stages)
	}
	gitlab := strings.Join(stage["gitlab"], "\n")
	for _, want := range []string{"ENTRYPOINT []", "/usr/local/bin/dagster-branch-deploy", "/etc/ssl/certs/ca-certificates.crt", "/bin/busybox"} {
		if !strings.Contains(gitlab, want) {
			t.Errorf("the gitlab stage lacks %q", want)
		}
	}
}

// TestReleasePublishes checks what the README promises a release publishes.
func TestReleasePublishes(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(root(t), ".github/workflows/release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Jobs map[string]struct {
			Steps []struct {
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				With map[string]string `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{} // target → tags
	var runs strings.Builder
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			runs.WriteString(s.Run + "\n")
			if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
				if s.With["platforms"] != "linux/amd64,linux/arm64" || !strings.Contains(s.With["build-args"], "VERSION=") {
					t.Errorf("image build %q: platforms %q, build-args %q", s.With["target"], s.With["platforms"], s.With["build-args"])
				}
				targets[s.With["target"]] = s.With["tags"]
			}
		}
	}
	// The builds push the version's tags only; the major tags move last (TestReleaseWorkflow).
	if tags := targets["action"]; tags != "${{ env.IMAGE }}:${{ env.VERSION }}" {
		t.Errorf("action image tags %q", tags)
	}
	if tags := targets["gitlab"]; tags != "${{ env.IMAGE }}:${{ env.VERSION }}-gitlab" {
		t.Errorf("gitlab image tags %q", tags)
	}
	script := runs.String()
	for _, want := range []string{"for arch in amd64 arm64", "CGO_ENABLED=0", "-trimpath", "sha256sum", "SHA256SUMS", "gh release create",
		"--verify-tag", "dagster-branch-deploy-linux-amd64", "dagster-branch-deploy-linux-arm64",
		`imagetools create --tag "${IMAGE}:${MAJOR}" "${IMAGE}@${ACTION_DIGEST}"`,
		`imagetools create --tag "${IMAGE}:${MAJOR}-gitlab" "${IMAGE}@${GITLAB_DIGEST}"`} {
		if !strings.Contains(script, want) {
			t.Errorf("release.yml's scripts lack %q", want)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-gitlab", "dagster-branch-deploy-linux-amd64", "SHA256SUMS"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("the README does not mention %q", want)
		}
	}
}
