package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// This file models a GitHub Actions workflow as the checks of release_workflow_test.go and
// hygiene_test.go read it: jobs, their `needs:` graph and steps, and every `uses:` with the
// comment on its line.

// stringList is a YAML scalar or sequence of strings (`needs: check` or `needs: [a, b]`).
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = stringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

type ghStep struct {
	Name            string            `yaml:"name"`
	ID              string            `yaml:"id"`
	If              string            `yaml:"if"`
	Uses            string            `yaml:"uses"`
	Run             string            `yaml:"run"`
	With            map[string]any    `yaml:"with"`
	Env             map[string]string `yaml:"env"`
	ContinueOnError any               `yaml:"continue-on-error"`
}

// label names a step in messages.
func (s ghStep) label() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.ID != "":
		return s.ID
	case s.Uses != "":
		return s.Uses
	}
	return strings.SplitN(s.Run, "\n", 2)[0]
}

// action is the action a step uses without its ref ("docker/build-push-action").
func (s ghStep) action() string {
	a, _, _ := strings.Cut(s.Uses, "@")
	return a
}

// with returns a `with:` value as a string (YAML booleans and numbers as written).
func (s ghStep) with(key string) string {
	v, ok := s.With[key]
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

type ghJob struct {
	Name            string            `yaml:"name"`
	Needs           stringList        `yaml:"needs"`
	If              string            `yaml:"if"`
	Env             map[string]string `yaml:"env"`
	Outputs         map[string]string `yaml:"outputs"`
	Steps           []ghStep          `yaml:"steps"`
	ContinueOnError any               `yaml:"continue-on-error"`
	TimeoutMinutes  any               `yaml:"timeout-minutes"`
	Environment     any               `yaml:"environment"`
}

type ghWorkflow struct {
	Permissions any              `yaml:"permissions"`
	Jobs        map[string]ghJob `yaml:"jobs"`
}

func parseWorkflow(raw []byte) (ghWorkflow, error) {
	var w ghWorkflow
	err := yaml.Unmarshal(raw, &w)
	return w, err
}

// stepRef is a step by job and index.
type stepRef struct {
	job string
	idx int
}

func (w ghWorkflow) step(r stepRef) ghStep { return w.Jobs[r.job].Steps[r.idx] }

func (w ghWorkflow) describe(r stepRef) string {
	return fmt.Sprintf("job %s, step %q", r.job, w.step(r).label())
}

// steps returns every step for which keep is true, in a stable order.
func (w ghWorkflow) steps(keep func(ghStep) bool) []stepRef {
	var refs []stepRef
	for _, job := range sortedKeys(w.Jobs) {
		for i, s := range w.Jobs[job].Steps {
			if keep(s) {
				refs = append(refs, stepRef{job, i})
			}
		}
	}
	return refs
}

// needs reports whether job needs dep, directly or through other jobs.
func (w ghWorkflow) needs(job, dep string) bool {
	seen := map[string]bool{}
	var visit func(string) bool
	visit = func(j string) bool {
		for _, n := range w.Jobs[j].Needs {
			if n == dep {
				return true
			}
			if !seen[n] {
				seen[n] = true
				if visit(n) {
					return true
				}
			}
		}
		return false
	}
	return visit(job)
}

// precedes reports whether step a has finished, successfully, before step b starts: an
// earlier step of the same job, or a step of a job that b's job needs. (Whether a failure
// stops what follows is checked separately: no `if: always()` and no continue-on-error.)
func (w ghWorkflow) precedes(a, b stepRef) bool {
	if a.job == b.job {
		return a.idx < b.idx
	}
	return w.needs(b.job, a.job)
}

var (
	needsOutput = regexp.MustCompile(`^\$\{\{\s*needs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\s*\}\}$`)
	stepsOutput = regexp.MustCompile(`^\$\{\{\s*steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\s*\}\}$`)
)

// source follows an expression that is one step output, directly (`steps.<id>.outputs.<o>`
// within job) or through a job output (`needs.<job>.outputs.<o>`), to the step that sets
// it. ok is false for anything else.
func (w ghWorkflow) source(job, expr string) (ref stepRef, output string, ok bool) {
	expr = strings.TrimSpace(expr)
	if m := needsOutput.FindStringSubmatch(expr); m != nil {
		if !w.needs(job, m[1]) {
			return stepRef{}, "", false
		}
		return w.source(m[1], w.Jobs[m[1]].Outputs[m[2]])
	}
	if m := stepsOutput.FindStringSubmatch(expr); m != nil {
		for i, s := range w.Jobs[job].Steps {
			if s.ID == m[1] {
				return stepRef{job, i}, m[2], true
			}
		}
	}
	return stepRef{}, "", false
}

// usesRef is one `uses:` of a workflow, with its line and the comment after it.
type usesRef struct {
	line           int
	value, comment string
}

// allUses returns every `uses:` value of a workflow (job-level reusable workflow calls and
// steps) with the comment on its line, which yaml.v3 keeps in the node tree.
func allUses(raw []byte) ([]usesRef, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, err
	}
	var refs []usesRef
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "uses" && v.Kind == yaml.ScalarNode {
					refs = append(refs, usesRef{line: v.Line, value: v.Value, comment: v.LineComment})
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return refs, nil
}

var (
	fullSHA        = regexp.MustCompile(`^[0-9a-f]{40}$`)
	versionComment = regexp.MustCompile(`^# v[0-9]+\.[0-9]+\.[0-9]+$`)
)

// pinProblems lists every `uses:` of a workflow that is not pinned by a full commit SHA with
// the version in a comment (`owner/repo@<40 hex> # v1.2.3`). Local actions (`./`) and
// `docker://` images are not refs; exempt says which other refs may stay as they are.
func pinProblems(name string, raw []byte, exempt func(string) bool) []string {
	refs, err := allUses(raw)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	var problems []string
	for _, u := range refs {
		if strings.HasPrefix(u.value, "./") || strings.HasPrefix(u.value, "docker://") || (exempt != nil && exempt(u.value)) {
			continue
		}
		_, ref, _ := strings.Cut(u.value, "@")
		if !fullSHA.MatchString(ref) {
			problems = append(problems, fmt.Sprintf("%s:%d: %s is not pinned by a full commit SHA", name, u.line, u.value))
			continue
		}
		if !versionComment.MatchString(u.comment) {
			problems = append(problems, fmt.Sprintf("%s:%d: %s has no version comment like `# v1.2.3` (has %q)", name, u.line, u.value, u.comment))
		}
	}
	return problems
}

// scriptRun is a finished run of a step's script.
type scriptRun struct {
	exitCode int
	output   string
}

// runStepScript runs a step's `run:` script as GitHub runs it on Linux without a `shell:`
// (`bash -e {0}`), in dir, with env only (and PATH). Scripts that contain expressions are
// refused: the tests could not run them, and expressions in scripts are an injection risk.
func runStepScript(t *testing.T, s ghStep, dir string, env map[string]string, path string) (scriptRun, error) {
	t.Helper()
	if strings.Contains(s.Run, "${{") {
		return scriptRun{}, fmt.Errorf("step %q has an expression in its script; pass values through env", s.label())
	}
	script := filepath.Join(t.TempDir(), "step.sh")
	if err := os.WriteFile(script, []byte(s.Run), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-e", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + path, "LC_ALL=C"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return scriptRun{exitCode: exit.ExitCode(), output: string(out)}, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return scriptRun{output: string(out)}, nil
}

// fakeCommands writes executables into a new directory and returns it; each gets its script
// after "#!/bin/bash\n".
func fakeCommands(t *testing.T, commands map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range commands {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/bash\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
