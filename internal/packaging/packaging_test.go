// Package packaging tests what ships besides the code: action.yml, the
// workflows, the examples and the README's tables.
package packaging

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

func root(t *testing.T) string {
	t.Helper()
	r, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// workflowFiles are the workflows and the example workflows.
func workflowFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{".github/workflows", "examples"} {
		err := filepath.WalkDir(filepath.Join(root(t), dir), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".yml") {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 8 {
		t.Fatalf("found only %d workflow files: %v", len(files), files)
	}
	return files
}

// TestActionlint lints every workflow and example with actionlint. The ci
// workflow runs this repository's action with `uses: ./`, so actionlint
// also checks action.yml and the inputs given to it.
func TestActionlint(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files := workflowFiles(t)
	errs, err := l.LintFiles(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
	}
	// Prove the linter looks: a broken workflow must fail.
	bad := []byte("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
	errs, err = l.Lint("bad.yml", bad, nil)
	if err != nil || len(errs) == 0 {
		t.Errorf("actionlint found nothing wrong in a broken workflow (err %v)", err)
	}
}

type actionMeta struct {
	Inputs map[string]struct {
		Description string  `yaml:"description"`
		Default     *string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
	} `yaml:"outputs"`
	Branding map[string]string `yaml:"branding"`
	Runs     struct {
		Using string `yaml:"using"`
		Image string `yaml:"image"`
	} `yaml:"runs"`
}

func readAction(t *testing.T) actionMeta {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var m actionMeta
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// workflow is the part of a workflow these checks read.
type workflow struct {
	On struct {
		WorkflowCall struct {
			Inputs  map[string]any `yaml:"inputs"`
			Secrets map[string]any `yaml:"secrets"`
		} `yaml:"workflow_call"`
	} `yaml:"on"`
	Jobs map[string]struct {
		Uses    string            `yaml:"uses"`
		With    map[string]any    `yaml:"with"`
		Secrets map[string]string `yaml:"secrets"`
		Steps   []struct {
			Uses string         `yaml:"uses"`
			With map[string]any `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func readWorkflow(t *testing.T, path string) workflow {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(raw, &w); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return w
}

// TestExamplesUseRealInputs checks what actionlint cannot for a remote
// action: every `with:` given to this action, or to the reusable workflow,
// names an input they declare.
func TestExamplesUseRealInputs(t *testing.T) {
	t.Parallel()
	action := readAction(t)
	reusable := readWorkflow(t, filepath.Join(root(t), ".github/workflows/deploy.yml"))
	var uses int
	for _, path := range workflowFiles(t) {
		w := readWorkflow(t, path)
		for job, j := range w.Jobs {
			if strings.Contains(j.Uses, "/.github/workflows/deploy.yml@") {
				uses++
				for k := range j.With {
					if _, ok := reusable.On.WorkflowCall.Inputs[k]; !ok {
						t.Errorf("%s job %s: the reusable workflow has no input %q", path, job, k)
					}
				}
				for k := range j.Secrets {
					if _, ok := reusable.On.WorkflowCall.Secrets[k]; !ok {
						t.Errorf("%s job %s: the reusable workflow has no secret %q", path, job, k)
					}
				}
			}
			for _, step := range j.Steps {
				if step.Uses != "./" && !strings.HasPrefix(step.Uses, "dagster-branch-deploy/dagster-branch-deploy@") {
					continue
				}
				uses++
				for k := range step.With {
					if _, ok := action.Inputs[k]; !ok {
						t.Errorf("%s job %s: action.yml has no input %q", path, job, k)
					}
				}
			}
		}
	}
	if uses < 8 {
		t.Errorf("only %d uses of the action or the reusable workflow found", uses)
	}
	// The reusable workflow mirrors the action: every action input is an
	// input or a secret of it, and is passed on.
	var step map[string]any
	for _, j := range reusable.Jobs {
		for _, s := range j.Steps {
			if strings.HasPrefix(s.Uses, "dagster-branch-deploy/dagster-branch-deploy@") {
				step = s.With
			}
		}
	}
	for name := range action.Inputs {
		_, isInput := reusable.On.WorkflowCall.Inputs[name]
		_, isSecret := reusable.On.WorkflowCall.Secrets[name]
		if name == "github_token" {
			continue // the called workflow's own token is the right one
		}
		if !isInput && !isSecret {
			t.Errorf("the reusable workflow does not mirror action input %s", name)
		}
		if _, ok := step[name]; !ok {
			t.Errorf("the reusable workflow does not pass input %s to the action", name)
		}
	}
}

func TestExampleProjectsAreValid(t *testing.T) {
	t.Parallel()
	matches, _ := filepath.Glob(filepath.Join(root(t), "examples", "*", "dagster_cloud.yaml"))
	if len(matches) == 0 {
		t.Fatal("no example dagster_cloud.yaml")
	}
	for _, m := range matches {
		if _, err := config.Load(m); err != nil {
			t.Error(err)
		}
	}
}

// TestActionMetadata checks what users see of action.yml.
func TestActionMetadata(t *testing.T) {
	t.Parallel()
	m := readAction(t)
	if m.Runs.Using != "docker" {
		t.Errorf("runs.using = %q", m.Runs.Using)
	}
	if m.Branding["icon"] == "" || m.Branding["color"] == "" {
		t.Error("no branding")
	}
	for name, in := range m.Inputs {
		if in.Description == "" || in.Default == nil {
			t.Errorf("input %s needs a description and a default", name)
		}
	}
	for name, out := range m.Outputs {
		if out.Description == "" {
			t.Errorf("output %s needs a description", name)
		}
	}
}

// tableNames returns the first-column names of the README table under
// heading, splitting cells that list several names.
func tableNames(t *testing.T, readme, heading string) []string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	section := readme[i+len(heading)+2:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	code := regexp.MustCompile("`([a-z_]+)`")
	var names []string
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range code.FindAllStringSubmatch(first, -1) {
			names = append(names, m[1])
		}
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// TestReadmeTablesMatchActionYAML keeps the README's input and output
// tables equal to action.yml.
func TestReadmeTablesMatchActionYAML(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	m := readAction(t)
	var inputs, outputs []string
	for k := range m.Inputs {
		inputs = append(inputs, k)
	}
	for k := range m.Outputs {
		outputs = append(outputs, k)
	}
	sort.Strings(inputs)
	sort.Strings(outputs)
	if got := tableNames(t, readme, "## Inputs"); !slices.Equal(got, inputs) {
		t.Errorf("README inputs table:\n got %v\nwant %v", got, inputs)
	}
	if got := tableNames(t, readme, "## Outputs"); !slices.Equal(got, outputs) {
		t.Errorf("README outputs table:\n got %v\nwant %v", got, outputs)
	}
}
