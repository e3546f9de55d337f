package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzPath is the path FuzzParse passes to Parse; every error must start with it.
const fuzzPath = "fuzz/dagster_cloud.yaml"

// aliasBomb is the billion-laughs document in a place Parse decodes into Go values
// (defaults.container_context, which becomes part of every location document): expanded, it
// would be 9^9 strings.
const aliasBomb = `defaults:
  container_context:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
locations:
  - location_name: a
    code_source: {package_name: a}
    build: {registry: r.example/a}
`

// aliasBombInLocation is the same bomb in a location's own container_context.
const aliasBombInLocation = `locations:
  - location_name: a
    code_source: {package_name: a}
    build: {registry: r.example/a}
    container_context:
      a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
      b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
      c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
      d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
      e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
      f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
      g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
      h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
      i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

// trickyYAML are hand-written seeds for FuzzParse besides the repository's YAML files.
var trickyYAML = []string{
	"",
	"---\n",
	"--- \n...\n",
	"# only a comment\n",
	"~\n",
	"null\n",
	"[]\n",
	"locations:\n",
	"locations: ~\n",
	"locations: []\n",
	"locations: [~]\n",
	"locations: [[]]\n",
	"locations:\n  - location_name: ~\n",
	"locations:\n  - location_name: \"\"\n    code_source: {package_name: a}\n    build: {registry: r.example/a}\n",
	"locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: r.example/a}\n",
	"locations:\n  - location_name: a\n    code_source: {package_name: a}\n    image: ghcr.io/a/b:1\n",
	// Invalid UTF-8, a BOM, NUL, control characters.
	"locations:\n  - location_name: \xff\xfe\n    code_source: {package_name: a}\n    build: {registry: r.example/a}\n",
	"\xef\xbb\xbflocations:\n  - location_name: a\n",
	"locations:\n  - location_name: \"a\x00b\"\n",
	"\xc3\x28: \xa0\xa1\n",
	"locations:\n  - location_name: \"\\u0007\\x1b[31m\"\n    code_source: {package_name: a}\n    build: {registry: r.example/a}\n",
	// Tabs, which YAML does not allow for indentation.
	"locations:\n\t- location_name: a\n",
	"locations:\n  -\tlocation_name: a\n\t  code_source: {package_name: a}\n",
	// Deep nesting.
	strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n",
	strings.Repeat("{a: ", 3000) + "1" + strings.Repeat("}", 3000) + "\n",
	"locations:\n  - location_name: a\n    container_context: " + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + "\n",
	nestedBlock(300),
	// Duplicate keys.
	"locations: []\nlocations: []\n",
	"locations:\n  - location_name: a\n    location_name: b\n    code_source: {package_name: a}\n    build: {registry: r.example/a}\n",
	"defaults: {}\ndefaults: {build: {registry: r.example/a}}\nlocations: [{location_name: a, code_source: {package_name: a}}]\n",
	// Merge keys and anchors.
	"base: &base {code_source: {package_name: a}, build: {registry: r.example/a}}\nlocations:\n  - <<: *base\n    location_name: a\n",
	"defaults: &d {build: {registry: r.example/a}}\nlocations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: *d\n",
	"locations:\n  - &l {location_name: a, code_source: {package_name: a}, build: {registry: r.example/a}}\n  - *l\n",
	"locations: &l [*l]\n",
	"locations:\n  - location_name: *undefined\n",
	"a: &a [*a]\n",
	"locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build:\n      registry: r.example/a\n      build_args: {<<: {A: 1}, B: *x}\n",
	"defaults:\n  <<: {build: {registry: r.example/a}}\nlocations: [{location_name: a, code_source: {package_name: a}}]\n",
	// Huge numbers and odd scalars.
	"locations:\n  - location_name: 1e999999\n    code_source: {package_name: 0x" + strings.Repeat("f", 200) + "}\n    build: {registry: r.example/a, cache: 99999999999999999999999999}\n",
	"locations:\n  - location_name: 123456789012345678901234567890\n    code_source: {package_name: .inf}\n    build: {registry: r.example/a, cache: .nan}\n",
	"locations:\n  - location_name: !!binary aGVsbG8=\n    code_source: {package_name: !!int 1}\n    build: {registry: !!float 1.5}\n",
	"locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: r.example/a, cache: !!bool yes}\n",
	"locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: \"r.example:5000\"}\n",
	"locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: \"r.example/a@sha256:00\"}\n",
	"locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: \"/\"}\n",
	"locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: \":\"}\n",
	"locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: r.example/a, build_args: {A: [1]}, labels: [x]}\n",
	// Several documents, block scalars, tags, complex keys.
	"locations: []\n---\nlocations: [{}]\n",
	"locations:\n  - location_name: |\n      multi\n      line\n    code_source: {package_name: a}\n    build: {registry: r.example/a}\n",
	"!!map {? !!str locations : !!seq []}\n",
	"? [a, b]\n: c\nlocations: []\n",
	"%YAML 1.1\n---\nlocations: []\n",
	"%TAG ! tag:example.com,2000:\n---\nlocations: !foo []\n",
	aliasBomb,
	aliasBombInLocation,
	// Single-location files, YAML 1.1 scalars, merges into validated keys, defaults merging.
	"location_name: a\ncode_source: {package_name: a}\nimage: i\n",
	"code_source: {package_name: a}\n",
	"location_name: yes\ncode_source: {package_name: 0x1F}\nbuild: {registry: r.example/a, cache: on}\n",
	"locations:\n  - &a {location_name: a, code_source: {package_name: a}, image: i}\n  - {<<: [*a, {agent_queue: q}], location_name: b}\n",
	"defaults:\n  container_context: {k8s: {env_vars: [A=1], volumes: [{name: v}]}}\nlocations:\n  - {location_name: a, code_source: {package_name: a}, image: i, container_context: {k8s: {env_vars: [B=2], volumes: [{name: w}, {x: 1}]}}}\n",
	"defaults:\n  container_context: {k8s: x}\nlocations:\n  - {location_name: a, code_source: {package_name: a}, image: i, container_context: {k8s: {a: 1}}}\n",
	"locations:\n  - {location_name: a, code_source: {package_name: a}, image: i, container_context: {a: !!set {x, y}, b: .inf, c: !!omap [{k: v}], d: =, 1.5: !!binary aGk=}}\n",
	"locations:\n  - &l {location_name: a, code_source: {package_name: a}, image: i, container_context: {s: *l}}\n",
}

// nestedBlock is a block mapping nested depth levels deep under a location.
func nestedBlock(depth int) string {
	var b strings.Builder
	b.WriteString("locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: r.example/a}\n    container_context:\n")
	for i := range depth {
		b.WriteString(strings.Repeat(" ", 6+i) + "k:\n")
	}
	b.WriteString(strings.Repeat(" ", 6+depth) + "v: 1\n")
	return b.String()
}

// repoYAML returns the contents of the YAML files under testdata/projects and examples.
func repoYAML(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, dir := range []string{"../../testdata/projects", "../../examples"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out = append(out, data)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) < 3 {
		t.Fatalf("found only %d YAML files under testdata/projects and examples", len(out))
	}
	return out
}

// checkParse checks the properties Parse must have for any input.
func checkParse(t *testing.T, data []byte) {
	t.Helper()
	f, err := Parse(fuzzPath, data)
	if err != nil {
		msg := err.Error()
		if msg == "" {
			t.Fatalf("Parse returned an error with an empty message (%T)", err)
		}
		if !strings.HasPrefix(msg, fuzzPath) {
			t.Fatalf("error does not start with the path %s:\n%s", fuzzPath, msg)
		}
		var es Errors
		if errors.As(err, &es) {
			if len(es) == 0 {
				t.Fatal("Parse returned an empty Errors")
			}
			for _, e := range es {
				if e == nil || e.File != fuzzPath || !strings.HasPrefix(e.Error(), fuzzPath) {
					t.Fatalf("Errors holds %#v, want every entry for %s", e, fuzzPath)
				}
			}
		}
		if f != nil {
			t.Fatalf("Parse returned both a file and the error %v", err)
		}
		return
	}
	if f == nil {
		t.Fatal("Parse returned neither a file nor an error")
	}
	if f.Path != fuzzPath {
		t.Errorf("File.Path = %q, want %q", f.Path, fuzzPath)
	}
	if len(f.Locations) == 0 {
		t.Error("Parse succeeded with no locations")
	}
	for i, l := range f.Locations {
		if l.Name == "" || l.Line <= 0 {
			t.Errorf("location %d: Name %q, Line %d; want a name and a line > 0", i, l.Name, l.Line)
		}
	}
}

// FuzzParse feeds arbitrary bytes to Parse. Run it with
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s ./internal/config/
//
// A plain go test runs the seeds: the repository's YAML files, the hand-written ones above and
// testdata/fuzz/FuzzParse. The fuzzer reports an input that hangs Parse.
func FuzzParse(f *testing.F) {
	for _, data := range repoYAML(f) {
		f.Add(data)
	}
	for _, s := range trickyYAML {
		f.Add([]byte(s))
	}
	f.Fuzz(checkParse)
}

// TestParseAliasBombIsQuick checks that Parse refuses a billion-laughs document in well under a
// second instead of expanding it.
func TestParseAliasBombIsQuick(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{"defaults": aliasBomb, "location": aliasBombInLocation} {
		start := time.Now()
		f, err := Parse(fuzzPath, []byte(doc))
		elapsed := time.Since(start)
		if err == nil {
			t.Errorf("%s: Parse accepted the alias bomb (%d locations)", name, len(f.Locations))
		} else if !strings.Contains(err.Error(), "is it an alias bomb?") {
			t.Errorf("%s: error does not mention the aliasing: %v", name, err)
		}
		if elapsed > time.Second {
			t.Errorf("%s: Parse took %v on the alias bomb, want < 1s", name, elapsed)
		}
		t.Logf("%s: %v in %v", name, err, elapsed)
	}
}

// FuzzBuildConfig feeds arbitrary bytes to ParseBuildConfig: it returns a config or an
// error at the file's path, never both, and never panics or hangs.
func FuzzBuildConfig(f *testing.F) {
	for _, s := range []string{
		"", "~\n", "defaults: {dockerfile: d, cache: yes, build_args: {A: 1}}\n",
		"locations:\n  a: {target: t, labels: {x: y}}\n  b: ~\n",
		"defaults: &d {target: t}\nlocations: {a: *d, b: {<<: *d, platform: p}}\n",
		"locations: [a]\n", "defaults: {nope: 1}\n", aliasBomb,
	} {
		f.Add([]byte(s))
	}
	const dcy = "locations:\n  - {location_name: a, code_source: {package_name: a}, image: i}\n  - {location_name: b, code_source: {package_name: b}, image: i}\n"
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("dagster_cloud.yaml", []byte(dcy))
		if err != nil {
			t.Fatal(err)
		}
		bc, err := ParseBuildConfig(fuzzPath, data, file)
		if err != nil {
			if bc != nil || !strings.HasPrefix(err.Error(), fuzzPath) {
				t.Fatalf("config %v with error %v", bc, err)
			}
			return
		}
		if bc == nil {
			t.Fatal("neither a config nor an error")
		}
		file.ApplyBuildConfig(bc)
	})
}
