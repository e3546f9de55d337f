package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error, in order of lines
	}{
		{"empty", "", []string{"f.yaml: the file is empty"}},
		{"bad yaml", "locations:\n  - location_name: a\n    code_source: {package_name: a\n", []string{"f.yaml:2: invalid YAML: did not find expected"}},
		{"not a mapping", "- a\n", []string{"f.yaml:1: the top level must be a mapping"}},
		{"invalid UTF-8", "locations:\n  - location_name: caf\xe9\n", []string{"f.yaml:2: invalid UTF-8 at byte 23 of the line"}},
		{"newline in a name", "locations:\n  - location_name: \"a\\n::error::forged\"\n    code_source: {package_name: a}\n    build: {registry: r.example/a}\n",
			[]string{"f.yaml:2: `location_name` contains the control character U+000A at position 2"}},
		{"escape in a registry", "locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: \"r.example/a\\e[2J\"}\n",
			[]string{"f.yaml:4: `location \"a\" build.registry` contains the control character U+001B"}},
		{"no locations", "defaults: {}\n", []string{"f.yaml:1: missing required key `locations`"}},
		{"unknown top key", "location:\n  - location_name: a\n", []string{`f.yaml:1: unknown key "location" in the top level`, "missing required key `locations`"}},
		{"unknown location key", `locations:
  - location_name: a
    code_source: {package_name: a}
    build: {registry: r.example/a}
    bulid: {}
`, []string{`f.yaml:5: unknown key "bulid" in location "a"`}},
		{"duplicate names", `locations:
  - location_name: a
    code_source: {package_name: a}
    build: {registry: r.example/a}
  - location_name: a
    code_source: {package_name: b}
    build: {registry: r.example/a}
`, []string{`f.yaml:5: duplicate location name "a" (first defined at line 2)`}},
		{"two code sources", `locations:
  - location_name: a
    code_source:
      package_name: a
      python_file: a.py
    build: {registry: r.example/a}
`, []string{"f.yaml:4: location \"a\": code_source sets package_name and python_file"}},
		{"no code source", `locations:
  - location_name: a
    build: {registry: r.example/a}
`, []string{"f.yaml:2: location \"a\" has no `code_source`"}},
		{"empty code source", `locations:
  - location_name: a
    code_source: {}
    build: {registry: r.example/a}
`, []string{"f.yaml:3: location \"a\": code_source needs exactly one of"}},
		{"registry with tag", `locations:
  - location_name: a
    code_source: {package_name: a}
    build: {registry: "r.example:5000/a:latest"}
`, []string{"f.yaml:4: `location \"a\" build.registry` \"r.example:5000/a:latest\" must be an image repository without a tag"}},
		{"registry host only", `locations:
  - location_name: a
    code_source: {package_name: a}
    build: {registry: "localhost:5000"}
`, []string{"f.yaml:4: `location \"a\" build.registry` \"localhost:5000\" is a registry host; add the image repository's path"}},
		{"missing name", `locations:
  - code_source: {package_name: a}
    build: {registry: r.example/a}
`, []string{"f.yaml:2: location is missing the required key `location_name`"}},
		{"unknown build key", `locations:
  - location_name: a
    code_source: {package_name: a}
    build: {registry: r.example/a, dockerfil: x}
`, []string{`f.yaml:4: unknown key "dockerfil" in location "a" build`}},
		{"bad build overrides", `locations:
  - location_name: a
    code_source: {package_name: a}
    build:
      registry: r.example/a
      build_args: [A=1]
      labels: {a: [1]}
      cache: maybe
`, []string{"f.yaml:6: `location \"a\" build.build_args` must be a mapping", "f.yaml:7: `location \"a\" build.labels.a` must be a single value", "f.yaml:8: `location \"a\" build.cache` must be true or false"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("f.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			got := err.Error()
			for _, w := range tc.want {
				i := strings.Index(got, w)
				if i < 0 {
					t.Fatalf("error %q does not contain %q", got, w)
				}
				got = got[i+len(w):]
			}
		})
	}
}

const twoLocations = `defaults:
  build:
    registry: 127.0.0.1:5000/shared
locations:
  - location_name: etl
    code_source:
      package_name: etl.definitions
    working_directory: ./src/
    build:
      directory: ./etl
      registry: 127.0.0.1:5000/etl
    container_context:
      k8s:
        env_vars: [A=1]
  - location_name: ml
    code_source:
      module_name: ml.defs
  - location_name: prebuilt
    code_source:
      python_file: defs.py
    image: ghcr.io/acme/prebuilt:1.0
`

func TestParseAndDocument(t *testing.T) {
	t.Parallel()
	f, err := Parse("dagster_cloud.yaml", []byte(twoLocations))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Locations) != 3 {
		t.Fatalf("got %d locations", len(f.Locations))
	}
	etl, ml, pre := f.Locations[0], f.Locations[1], f.Locations[2]
	if !reflect.DeepEqual(etl.Build, Build{Directory: "./etl", Registry: "127.0.0.1:5000/etl", DirectoryLine: 10}) || etl.Line != 5 || !etl.NeedsBuild {
		t.Errorf("etl = %+v", etl)
	}
	if !reflect.DeepEqual(ml.Build, Build{Directory: ".", Registry: "127.0.0.1:5000/shared"}) || !ml.NeedsBuild {
		t.Errorf("ml does not take defaults.build: %+v", ml.Build)
	}
	if pre.NeedsBuild || pre.Image != "ghcr.io/acme/prebuilt:1.0" {
		t.Errorf("prebuilt = %+v", pre)
	}
	doc := etl.Document("127.0.0.1:5000/etl:abc", "abc123", "https://github.com/o/r/tree/abc123")
	want := map[string]any{
		"location_name":     "etl",
		"code_source":       map[string]any{"package_name": "etl.definitions"},
		"working_directory": "./src/",
		"container_context": map[string]any{"k8s": map[string]any{"env_vars": []any{"A=1"}}},
		"image":             "127.0.0.1:5000/etl:abc",
		"git":               map[string]any{"commit_hash": "abc123", "url": "https://github.com/o/r/tree/abc123"},
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("document =\n%#v\nwant\n%#v", doc, want)
	}
	if _, ok := etl.Document("x", "", "")["build"]; ok {
		t.Error("document has a build key")
	}
	// The prebuilt location keeps its own image when none is given.
	if got := pre.Document("", "abc", "")["image"]; got != "ghcr.io/acme/prebuilt:1.0" {
		t.Errorf("prebuilt image = %v", got)
	}
}

func TestBuildOverrides(t *testing.T) {
	t.Parallel()
	f, err := Parse("dagster_cloud.yaml", []byte(`defaults:
  build:
    registry: r.example/app
    build_args: {PYTHON: "3.12", MODE: prod}
    cache: false
locations:
  - location_name: a
    code_source: {package_name: a}
    build:
      directory: ./a
      dockerfile: docker/Dockerfile.prod
      target: runtime
      platform: linux/arm64
      build_args: {MODE: branch}
      labels: {team: data}
      cache: true
  - location_name: b
    code_source: {package_name: b}
`))
	if err != nil {
		t.Fatal(err)
	}
	on, off := true, false
	want := Build{Directory: "./a", Registry: "r.example/app", Dockerfile: "docker/Dockerfile.prod", Target: "runtime", Platform: "linux/arm64",
		BuildArgs: map[string]string{"PYTHON": "3.12", "MODE": "branch"}, Labels: map[string]string{"team": "data"}, Cache: &on, DirectoryLine: 10, DockerfileLine: 11}
	if got := f.Locations[0].Build; !reflect.DeepEqual(got, want) {
		t.Errorf("a: got %+v, want %+v", got, want)
	}
	wantB := Build{Directory: ".", Registry: "r.example/app", BuildArgs: map[string]string{"PYTHON": "3.12", "MODE": "prod"}, Cache: &off}
	if got := f.Locations[1].Build; !reflect.DeepEqual(got, wantB) {
		t.Errorf("b: got %+v, want %+v", got, wantB)
	}
	if _, has := f.Locations[0].Document("img", "", "")["build"]; has {
		t.Error("build overrides leak into the location document")
	}
}

func TestDefaultsApplyToDocuments(t *testing.T) {
	t.Parallel()
	f, err := Parse("dagster_cloud.yaml", []byte(`defaults:
  working_directory: ./src
  agent_queue: gpu
  container_context: {k8s: {namespace: data}}
  build: {registry: r.example/app}
locations:
  - location_name: a
    code_source: {package_name: a}
  - location_name: b
    code_source: {package_name: b}
    agent_queue: cpu
`))
	if err != nil {
		t.Fatal(err)
	}
	a := f.Locations[0].Document("r.example/app:1", "", "")
	if a["working_directory"] != "./src" || a["agent_queue"] != "gpu" || a["image"] != "r.example/app:1" || a["container_context"] == nil {
		t.Errorf("a = %v", a)
	}
	if _, has := a["build"]; has {
		t.Error("defaults.build leaked into the document")
	}
	if b := f.Locations[1].Document("x", "", ""); b["agent_queue"] != "cpu" {
		t.Errorf("the location's own key lost to the default: %v", b)
	}

	// A default image without a default registry: locations without a
	// build section are deployed with it, unbuilt.
	f, err = Parse("dagster_cloud.yaml", []byte(`defaults:
  image: ghcr.io/acme/base:1
locations:
  - location_name: a
    code_source: {package_name: a}
`))
	if err != nil {
		t.Fatal(err)
	}
	if l := f.Locations[0]; l.NeedsBuild || l.Image != "ghcr.io/acme/base:1" || l.Document("", "", "")["image"] != "ghcr.io/acme/base:1" {
		t.Errorf("location = %+v", l)
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	f, err := Parse("dagster_cloud.yaml", []byte(twoLocations))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Select([]string{"ml", "etl"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "etl" || got[1].Name != "ml" {
		t.Errorf("selected %v", got)
	}
	all, _ := f.Select(nil)
	if len(all) != 3 {
		t.Errorf("empty selection gave %d", len(all))
	}
	_, err = f.Select([]string{"etl", "nope"})
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "etl, ml, prebuilt") {
		t.Errorf("err = %v", err)
	}
}

func TestSplitList(t *testing.T) {
	t.Parallel()
	tests := map[string][]string{
		"":                nil,
		"a":               {"a"},
		"a, b,,c":         {"a", "b", "c"},
		"a\n b \r\n\nc\n": {"a", "b", "c"},
	}
	for in, want := range tests {
		if got := SplitList(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SplitList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "dagster_cloud.yaml"))
	if err == nil || !strings.Contains(err.Error(), "project_dir") {
		t.Fatalf("err = %v", err)
	}
}
