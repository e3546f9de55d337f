package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocationDocument(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	multi := write("multi.yaml", `
defaults: {working_directory: ignored}
x-common: &common
  working_directory: src
  container_context: {k8s: {env_vars: [A=1]}}
locations:
  - location_name: a
    <<: *common
    code_source: {package_name: a.defs}
    build: {directory: a, registry: r.example/a}
  - location_name: b
    code_source: {module_name: b.defs}
    image: r.example/b:old
    1: one
`)
	single := write("single.yaml", "location_name: solo\ncode_source:\n  python_file: solo.py\nbuild:\n  directory: .\n")
	tests := []struct {
		name    string
		arg     string
		lf      locationFlags
		changed []string
		want    string
		err     string
	}{
		{name: "file entry, flags override, build removed, defaults ignored",
			lf:      locationFlags{file: multi, name: "a", image: "r.example/a:v1", commitHash: "abc", gitURL: "https://x/abc", moduleName: "a.mod"},
			changed: []string{"location-file", "location-name", "image", "commit-hash", "git-url", "module-name"},
			want:    `{"code_source":{"module_name":"a.mod","package_name":"a.defs"},"container_context":{"k8s":{"env_vars":["A=1"]}},"git":{"commit_hash":"abc","url":"https://x/abc"},"image":"r.example/a:v1","location_name":"a","working_directory":"src"}`},
		{name: "argument names the location; non-string keys become strings",
			arg: "b", lf: locationFlags{file: multi}, changed: []string{"location-file"},
			want: `{"1":"one","code_source":{"module_name":"b.defs"},"git":{},"image":"r.example/b:old","location_name":"b"}`},
		{name: "single-location file",
			lf: locationFlags{file: single, image: "i"}, changed: []string{"location-file", "image"},
			want: `{"code_source":{"python_file":"solo.py"},"git":{},"image":"i","location_name":"solo"}`},
		{name: "flags only",
			arg: "c", lf: locationFlags{pythonFile: "./src//c.py", workingDirectory: "src", attribute: "defs", executablePath: "/venv/bin/dagster", image: ""},
			changed: []string{"python-file", "working-directory", "attribute", "executable-path", "image"},
			want:    `{"attribute":"defs","code_source":{"python_file":"src/c.py"},"executable_path":"/venv/bin/dagster","git":{},"image":"","location_name":"c","working_directory":"src"}`},
		{name: "no file, no name", err: "No location name provided."},
		{name: "several locations, no name", lf: locationFlags{file: multi}, err: "If specifying a file with multiple locations, must specify a location name."},
		{name: "unknown name", lf: locationFlags{file: multi, name: "zz"}, err: "No location with name zz defined in location file."},
		{name: "name mismatch", arg: "other", lf: locationFlags{file: single}, err: "Name provided via argument and in location file does not match, other =/= solo."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed := func(f string) bool {
				for _, c := range tc.changed {
					if c == f {
						return true
					}
				}
				return false
			}
			doc, err := locationDocument(tc.arg, tc.lf, changed)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(doc)
			if string(b) != tc.want {
				t.Errorf("document =\n%s\nwant\n%s", b, tc.want)
			}
		})
	}
}

func TestDeploymentScope(t *testing.T) {
	t.Parallel()
	tests := []struct{ url, dep, base, scope, err string }{
		{"https://acme.dagster.cloud/prod", "", "https://acme.dagster.cloud", "prod", ""},
		{"https://acme.dagster.cloud/prod/", "", "https://acme.dagster.cloud", "prod", ""},
		{"https://dagster.cloud/acme/prod", "", "https://dagster.cloud/acme", "prod", ""},
		{"https://acme.dagster.cloud/prod", "prod", "https://acme.dagster.cloud", "prod", ""},
		{"https://acme.dagster.cloud", "prod", "https://acme.dagster.cloud", "prod", ""},
		{"https://dagster.cloud/acme", "feature", "https://dagster.cloud/acme", "feature", ""},
		{"https://acme.dagster.cloud", "", "", "", "names no deployment"},
		{"acme", "", "", "", "is not a URL"},
	}
	for _, tc := range tests {
		base, scope, err := deploymentScope(tc.url, tc.dep)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("deploymentScope(%q, %q) error = %v, want %q", tc.url, tc.dep, err, tc.err)
			}
			continue
		}
		if err != nil || base != tc.base || scope != tc.scope {
			t.Errorf("deploymentScope(%q, %q) = %q, %q, %v; want %q, %q", tc.url, tc.dep, base, scope, err, tc.base, tc.scope)
		}
	}
}

func TestPyRepr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"abc": "'abc'", "it's": `"it's"`, `a'b"c`: `'a\'b"c'`, "a\nb": `'a\nb'`, `back\slash`: `'back\\slash'`,
	} {
		if got := pyRepr(in); got != want {
			t.Errorf("pyRepr(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPurePath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a.py": "a.py", "./a.py": "a.py", "src//a.py": "src/a.py", "src/": "src", "/abs/./a.py": "/abs/a.py", "../a.py": "../a.py", ".": ".",
	} {
		if got := purePath(in); got != want {
			t.Errorf("purePath(%q) = %q, want %q", in, got, want)
		}
	}
}
