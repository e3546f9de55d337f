package serverless_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/serverless"
)

var update = flag.Bool("update", false, "rewrite testdata/*.Dockerfile.golden")

// goldenLayouts are the dependency layouts with a golden Dockerfile each
// (testdata/<name>.Dockerfile.golden).
var goldenLayouts = []struct {
	name   string
	layout serverless.Layout
}{
	{"requirements", serverless.Layout{RequirementsTxt: true}},
	{"setup", serverless.Layout{SetupPy: true}},
	{"pyproject", serverless.Layout{PyprojectToml: true, PythonVersion: "3.12"}},
	{"setup-and-requirements", serverless.Layout{SetupPy: true, RequirementsTxt: true}},
	// No dependency files: only with a custom base image that has them.
	{"none", serverless.Layout{BaseImage: "127.0.0.1:5000/dagster-base:1"}},
	{"hooks", serverless.Layout{RequirementsTxt: true, PreInstallHook: true, PostInstallHook: true}},
	{"env", serverless.Layout{PyprojectToml: true, EnvVars: []serverless.EnvVar{
		{Name: "DAGSTER_ENV", Value: "branch"},
		{Name: "GREETING", Value: `say "hi" to C:\temp at $HOME`},
		{Name: "EMPTY", Value: ""},
	}}},
	{"custom-base", serverless.Layout{BaseImage: "ghcr.io/acme/dagster-base:3.12@sha256:" + strings.Repeat("a", 64),
		SetupPy: true, PyprojectToml: true, RequirementsTxt: true, PreInstallHook: true, PostInstallHook: true,
		EnvVars: []serverless.EnvVar{{Name: "PIP_INDEX_URL", Value: "https://pypi.example.com/simple"}}}},
}

func TestDockerfileGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenLayouts {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := serverless.Dockerfile(tc.layout)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".Dockerfile.golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Dockerfile for %s differs from %s (run go test -update if intended):\n%s", tc.name, path, got)
			}
			checkDockerfile(t, tc.layout, got)
		})
	}
}

// checkDockerfile parses the Dockerfile with BuildKit's parser and checks
// its structure: one stage FROM the expected base, the ENV values read back
// literally, the dependency files copied before the code, and the steps of
// the layout in upstream's order.
func checkDockerfile(t *testing.T, l serverless.Layout, df []byte) {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		t.Fatalf("BuildKit cannot parse the Dockerfile: %v", err)
	}
	args := func(n *parser.Node) []string {
		var out []string
		for a := n.Next; a != nil; a = a.Next {
			out = append(out, a.Value)
		}
		return out
	}
	nodes := res.AST.Children
	if len(nodes) == 0 || !strings.EqualFold(nodes[0].Value, "from") {
		t.Fatalf("the Dockerfile must start with FROM")
	}
	wantBase := l.BaseImage
	if wantBase == "" {
		v := l.PythonVersion
		if v == "" {
			v = serverless.DefaultPythonVersion
		}
		wantBase = "python:" + v + "-slim"
	}
	if got := args(nodes[0]); len(got) != 1 || got[0] != wantBase {
		t.Errorf("FROM %q, want %s", got, wantBase)
	}

	lex := shell.NewLex('\\')
	var envs []serverless.EnvVar
	var steps []string
	for _, n := range nodes[1:] {
		a := args(n)
		switch strings.ToLower(n.Value) {
		case "env":
			// BuildKit's parser gives each pair as name, value, separator.
			if len(a)%3 != 0 {
				t.Fatalf("ENV arguments %q", a)
			}
			for i := 0; i < len(a); i += 3 {
				if a[i+2] != "=" {
					t.Errorf("ENV %s is not in the NAME=VALUE form", a[i])
				}
				v, _, err := lex.ProcessWord(a[i+1], emptyEnv{})
				if err != nil {
					t.Fatalf("ENV %s: %v", a[i], err)
				}
				envs = append(envs, serverless.EnvVar{Name: a[i], Value: v})
			}
			steps = append(steps, "ENV")
		case "copy", "workdir", "run":
			steps = append(steps, strings.ToUpper(n.Value)+" "+strings.Join(a, " "))
		default:
			t.Errorf("unexpected instruction %s", n.Original)
		}
	}
	if !reflect.DeepEqual(envs, l.EnvVars) && (len(envs) != 0 || len(l.EnvVars) != 0) {
		t.Errorf("ENV read back as %q, want %q", envs, l.EnvVars)
	}

	// The order of upstream's template.
	var want []string
	for range l.EnvVars {
		want = append(want, "ENV")
	}
	var early []string
	if l.PreInstallHook {
		early = append(early, serverless.PreInstallHook)
	}
	for _, f := range []struct {
		ok   bool
		name string
	}{{l.SetupPy, "setup.py"}, {l.PyprojectToml, "pyproject.toml"}, {l.RequirementsTxt, "requirements.txt"}} {
		if f.ok {
			early = append(early, f.name)
		}
	}
	if len(early) > 0 && (l.PreInstallHook || l.SetupPy || l.PyprojectToml) {
		want = append(want, "WORKDIR /", "COPY "+strings.Join(early, " ")+" /")
		if l.PreInstallHook {
			want = append(want, "RUN chmod +x ./dagster_cloud_pre_install.sh && ./dagster_cloud_pre_install.sh")
		}
		if l.SetupPy || l.PyprojectToml {
			want = append(want, "RUN pip install .")
		}
	}
	want = append(want, "WORKDIR /opt/dagster/app", "COPY . /opt/dagster/app")
	if l.RequirementsTxt {
		want = append(want, "RUN pip install -r requirements.txt")
	}
	if l.PostInstallHook {
		want = append(want, "RUN chmod +x ./dagster_cloud_post_install.sh && ./dagster_cloud_post_install.sh")
	}
	if len(steps) == 0 || !strings.HasPrefix(steps[len(steps)-1], "RUN dagster-cloud --version ||") {
		t.Errorf("the last step must check dagster-cloud: %q", steps)
	} else {
		steps = steps[:len(steps)-1]
	}
	if !slices.Equal(steps, want) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
}

type emptyEnv struct{}

func (emptyEnv) Get(string) (string, bool) { return "", false }
func (emptyEnv) Keys() []string            { return nil }

func TestGoldenFilesAreAllUsed(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.Dockerfile.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".Dockerfile.golden")
		if !slices.ContainsFunc(goldenLayouts, func(g struct {
			name   string
			layout serverless.Layout
		}) bool {
			return g.name == name
		}) {
			t.Errorf("%s is not produced by any test", f)
		}
	}
}

func TestDockerfileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		layout  serverless.Layout
		wantErr string
	}{
		{"no dependencies and the default base", serverless.Layout{},
			"has no requirements.txt, setup.py or pyproject.toml"},
		{"bad python version", serverless.Layout{RequirementsTxt: true, PythonVersion: "3.11-slim"},
			`python_version "3.11-slim" is not a Python version`},
		{"bad base image", serverless.Layout{BaseImage: "Not An Image"}, `base_image "Not An Image" is not an image reference`},
		{"bad env name", serverless.Layout{RequirementsTxt: true, EnvVars: []serverless.EnvVar{{Name: "A B", Value: "x"}}},
			`"A B" is not an environment variable name`},
		{"multi-line env value", serverless.Layout{RequirementsTxt: true, EnvVars: []serverless.EnvVar{{Name: "KEY", Value: "line1\nsecret"}}},
			"the value of KEY has a line break"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := serverless.Dockerfile(tc.layout)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error quotes a value: %v", err)
			}
		})
	}
	var nd *serverless.NoDependenciesError
	if _, err := serverless.Dockerfile(serverless.Layout{}); !errors.As(err, &nd) {
		t.Errorf("err = %T, want *NoDependenciesError", err)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDetectLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		dirs  []string
		want  serverless.Layout
	}{
		{"empty", nil, nil, serverless.Layout{}},
		{"requirements", map[string]string{"requirements.txt": "dagster-cloud\n"}, nil, serverless.Layout{RequirementsTxt: true}},
		{"everything", map[string]string{
			"requirements.txt": "", "setup.py": "", "pyproject.toml": "",
			"dagster_cloud_pre_install.sh": "#!/bin/sh\n", "dagster_cloud_post_install.sh": "#!/bin/sh\n",
		}, nil, serverless.Layout{RequirementsTxt: true, SetupPy: true, PyprojectToml: true, PreInstallHook: true, PostInstallHook: true}},
		{"files in subdirectories do not count", map[string]string{"pkg/setup.py": "", "pkg/requirements.txt": ""}, nil, serverless.Layout{}},
		{"a directory named like a file does not count", nil, []string{"setup.py"}, serverless.Layout{}},
		{"dockerignored files do not count", map[string]string{
			"requirements.txt": "", "setup.py": "", "pyproject.toml": "",
			".dockerignore": "*.txt\nsetup.py\n!pyproject.toml\n",
		}, nil, serverless.Layout{PyprojectToml: true}},
		{"dockerignore re-include", map[string]string{
			"requirements.txt": "", "dagster_cloud_post_install.sh": "",
			".dockerignore": "*\n!requirements.txt\n",
		}, nil, serverless.Layout{RequirementsTxt: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			for _, d := range tc.dirs {
				if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			got, err := serverless.DetectLayout(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := serverless.DetectLayout(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestParseEnvVars(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		want    []serverless.EnvVar
		wantErr string
	}{
		{name: "empty", in: "  \n"},
		{name: "JSON object keeps order", in: `{"B": "2", "A": "x y", "N": 3.5, "T": true}`,
			want: []serverless.EnvVar{{"B", "2"}, {"A", "x y"}, {"N", "3.5"}, {"T", "true"}}},
		{name: "JSON duplicate keeps first position, last value", in: `{"A": "1", "B": "2", "A": "3"}`,
			want: []serverless.EnvVar{{"A", "3"}, {"B", "2"}}},
		{name: "lines", in: "# comment\nA=1\n\nB = two=2\r\nC=\n",
			want: []serverless.EnvVar{{"A", "1"}, {"B", " two=2"}, {"C", ""}}},
		{name: "JSON null", in: `{"A": null}`, wantErr: `the value of "A" must be a string, number or boolean`},
		{name: "JSON nested", in: `{"A": {"x": "secret"}}`, wantErr: `the value of "A" must be a string, number or boolean`},
		{name: "JSON trailing", in: `{"A": "1"} x`, wantErr: "more after its JSON object"},
		{name: "JSON broken", in: `{"A": "secret"`, wantErr: "not a valid JSON object"},
		{name: "line without =", in: "A=1\nsecret\n", wantErr: "line 2 is not NAME=VALUE"},
		{name: "bad name", in: `{"1A": "x"}`, wantErr: `"1A" is not an environment variable name`},
		{name: "multi-line value", in: `{"K": "a\nsecret"}`, wantErr: "the value of K has a line break"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := serverless.ParseEnvVars(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error quotes a value: %v", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCheckBaseImage(t *testing.T) {
	t.Parallel()
	if err := serverless.CheckBaseImage("", false); err != nil {
		t.Errorf("no base image: %v", err)
	}
	if err := serverless.CheckBaseImage("ghcr.io/acme/base:1", true); err != nil {
		t.Errorf("allowed: %v", err)
	}
	err := serverless.CheckBaseImage("ghcr.io/acme/base:1", false)
	var ce *serverless.CustomBaseNotAllowedError
	if !errors.As(err, &ce) || ce.BaseImage != "ghcr.io/acme/base:1" ||
		!strings.Contains(err.Error(), "Dagster+ does not allow custom base images for this organization") ||
		!strings.Contains(err.Error(), "nothing was built") {
		t.Errorf("not allowed: %v", err)
	}
	if err := serverless.CheckBaseImage("Bad Image", true); err == nil {
		t.Error("invalid reference accepted")
	}
}

func TestCheckPythonVersion(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"3.9", "3.11", "3.13", "3.11.7"} {
		if err := serverless.CheckPythonVersion(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "3", "py3.11", "3.11-slim", " 3.11", "latest"} {
		if err := serverless.CheckPythonVersion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
