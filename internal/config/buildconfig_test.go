package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSingleLocationFile: a file without `locations:` is one location's
// keys, as dagster-cloud's get_location_document takes it.
func TestSingleLocationFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, given string // given: the name passed to ParseLocationFile
		wantName, wantErr string
	}{
		{"plain", "location_name: etl\ncode_source: {package_name: etl}\nimage: ghcr.io/a/etl:1\n", "", "etl", ""},
		{"with a build", "location_name: etl\ncode_source: {package_name: etl}\nbuild: {registry: r.example/etl, directory: ./etl}\n", "", "etl", ""},
		{"the same name given", "location_name: etl\ncode_source: {package_name: etl}\nimage: i\n", "etl", "etl", ""},
		{"name given, none in the file", "code_source: {package_name: etl}\nimage: i\n", "etl", "etl", ""},
		{"names differ", "location_name: etl\ncode_source: {package_name: etl}\nimage: i\n", "ml", "", "f.yaml:1: the location name given (ml) and the file's location_name (etl) differ"},
		{"no name at all", "code_source: {package_name: etl}\nimage: i\n", "", "", "f.yaml:1: location is missing the required key `location_name`"},
		{"unknown key", "location_name: etl\ncode_source: {package_name: etl}\nimage: i\nbulid: {}\n", "", "", `f.yaml:4: unknown key "bulid" in location "etl"`},
		{"defaults are not a location key", "location_name: etl\ncode_source: {package_name: etl}\ndefaults: {}\n", "", "", `f.yaml:3: unknown key "defaults" in location "etl"`},
		{"a list file ignores the name", "locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    image: i\n", "ml", "etl", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseLocationFile("f.yaml", []byte(tc.yaml), tc.given)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Locations) != 1 || f.Locations[0].Name != tc.wantName || f.Locations[0].Line != 1 && f.SingleLocation {
				t.Fatalf("locations = %+v", f.Locations)
			}
			if f.SingleLocation == strings.HasPrefix(tc.yaml, "locations:") {
				t.Errorf("SingleLocation = %v", f.SingleLocation)
			}
			if got := f.Locations[0].Document("img", "", "")["location_name"]; got != tc.wantName {
				t.Errorf("document location_name = %v", got)
			}
		})
	}
	// Load reads one too.
	path := filepath.Join(t.TempDir(), "location.yaml")
	if err := os.WriteFile(path, []byte("location_name: etl\ncode_source: {package_name: etl}\nimage: i\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := Load(path); err != nil || !f.SingleLocation || f.Locations[0].NeedsBuild {
		t.Fatalf("Load: %+v, %v", f, err)
	}
	if f, err := LoadLocationFile(path, "etl"); err != nil || f.Locations[0].Name != "etl" {
		t.Fatalf("LoadLocationFile: %+v, %v", f, err)
	}
}

// TestCheckBuildable: a location without a registry parses (dagster-cloud
// needs none); building it is what fails, at its build section's line.
func TestCheckBuildable(t *testing.T) {
	t.Parallel()
	f, err := Parse("f.yaml", []byte(`locations:
  - location_name: a
    code_source: {package_name: a}
    build:
      directory: ./a
  - location_name: b
    code_source: {package_name: b}
  - location_name: c
    code_source: {package_name: c}
    image: ghcr.io/acme/c:1
  - location_name: d
    code_source: {package_name: d}
    build: {registry: r.example/d}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a": "f.yaml:5: location \"a\" has no `build.registry`; set it to the image repository to push to",
		"b": "f.yaml:6: location \"b\" has no `build.registry`",
		"c": "",
		"d": "",
	}
	for _, l := range f.Locations {
		err := f.CheckBuildable(l)
		if want[l.Name] == "" {
			if err != nil {
				t.Errorf("%s: %v", l.Name, err)
			}
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), want[l.Name]) {
			t.Errorf("%s: err = %v, want %q", l.Name, err, want[l.Name])
		}
	}
	if !f.Locations[0].NeedsBuild || !f.Locations[1].NeedsBuild || f.Locations[2].NeedsBuild {
		t.Errorf("NeedsBuild changed meaning: %+v", f.Locations)
	}
}

// TestBuildOptionsDeprecated: build options in dagster_cloud.yaml still
// work, with a warning each that says where they belong.
func TestBuildOptionsDeprecated(t *testing.T) {
	t.Parallel()
	f, err := Parse("dagster_cloud.yaml", []byte(`defaults:
  build:
    registry: r.example/app
    cache: false
locations:
  - location_name: etl
    code_source: {package_name: etl}
    build:
      dockerfile: docker/Dockerfile
      build_args: {A: "1"}
`))
	if err != nil {
		t.Fatal(err)
	}
	off := false
	if b := f.Locations[0].Build; b.Dockerfile != "docker/Dockerfile" || b.BuildArgs["A"] != "1" || !reflect.DeepEqual(b.Cache, &off) {
		t.Errorf("build = %+v", b)
	}
	var got []string
	for _, w := range f.Warnings {
		got = append(got, w.Error())
	}
	want := []string{
		"dagster_cloud.yaml:4: `defaults.build.cache` in dagster_cloud.yaml is deprecated: upstream dagster-cloud rejects unknown build keys; move it to dagster_branch_deploy.yaml under `defaults.cache`",
		"dagster_cloud.yaml:9: `build.dockerfile` in dagster_cloud.yaml is deprecated: upstream dagster-cloud rejects unknown build keys; move it to dagster_branch_deploy.yaml under `locations.etl.dockerfile`",
		"dagster_cloud.yaml:10: `build.build_args` in dagster_cloud.yaml is deprecated: upstream dagster-cloud rejects unknown build keys; move it to dagster_branch_deploy.yaml under `locations.etl.build_args`",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A file without them has no warnings.
	if f, _ := Parse("dagster_cloud.yaml", []byte(twoLocations)); len(f.Warnings) != 0 {
		t.Errorf("warnings = %v", f.Warnings)
	}
}

const siblingTarget = `defaults:
  build: {registry: r.example/app, cache: true}
locations:
  - location_name: etl
    code_source: {package_name: etl}
    build: {directory: ./etl, target: old, build_args: {A: dcy, B: dcy}}
  - location_name: ml
    code_source: {package_name: ml}
`

// TestBuildConfig: dagster_branch_deploy.yaml's options reach
// Location.Build, in the documented order of precedence.
func TestBuildConfig(t *testing.T) {
	t.Parallel()
	f, err := Parse("p/dagster_cloud.yaml", []byte(siblingTarget))
	if err != nil {
		t.Fatal(err)
	}
	bc, err := ParseBuildConfig("p/dagster_branch_deploy.yaml", []byte(`defaults:
  dockerfile: docker/Dockerfile
  target: runtime
  platform: linux/amd64
  build_args: {A: def, C: def}
  labels: {team: data}
  cache: no
locations:
  etl:
    dockerfile: docker/Dockerfile.etl
    build_args: {B: loc}
  ml:
`), f)
	if err != nil {
		t.Fatal(err)
	}
	f.ApplyBuildConfig(bc)
	off := false
	etl, ml := f.Locations[0].Build, f.Locations[1].Build
	wantEtl := Build{
		Directory: "./etl", Registry: "r.example/app", DirectoryLine: 6,
		Dockerfile: "docker/Dockerfile.etl", DockerfileLine: 10, DockerfileFile: "p/dagster_branch_deploy.yaml",
		Target:    "old", // the location's own setting in dagster_cloud.yaml beats the new file's defaults
		Platform:  "linux/amd64",
		BuildArgs: map[string]string{"A": "dcy", "B": "loc", "C": "def"},
		Labels:    map[string]string{"team": "data"},
		Cache:     &off, // the new file's defaults beat dagster_cloud.yaml's defaults.build
	}
	if !reflect.DeepEqual(etl, wantEtl) {
		t.Errorf("etl =\n%+v\nwant\n%+v", etl, wantEtl)
	}
	wantMl := Build{
		Directory: ".", Registry: "r.example/app",
		Dockerfile: "docker/Dockerfile", DockerfileLine: 2, DockerfileFile: "p/dagster_branch_deploy.yaml",
		Target: "runtime", Platform: "linux/amd64",
		BuildArgs: map[string]string{"A": "def", "C": "def"}, Labels: map[string]string{"team": "data"}, Cache: &off,
	}
	if !reflect.DeepEqual(ml, wantMl) {
		t.Errorf("ml =\n%+v\nwant\n%+v", ml, wantMl)
	}
	// Applying nothing goes back to dagster_cloud.yaml alone.
	f.ApplyBuildConfig(nil)
	if b := f.Locations[1].Build; b.Dockerfile != "" || b.Cache == nil || !*b.Cache {
		t.Errorf("ml after ApplyBuildConfig(nil) = %+v", b)
	}
}

func TestBuildConfigErrors(t *testing.T) {
	t.Parallel()
	f, err := Parse("dagster_cloud.yaml", []byte(siblingTarget))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top key", "default: {}\n", []string{`b.yaml:1: unknown key "default" in the top level (allowed: defaults, locations)`}},
		{"unknown option", "defaults: {dockerfil: x}\n", []string{`b.yaml:1: unknown key "dockerfil" in defaults (allowed: dockerfile, target, platform, build_args, labels, cache)`}},
		{"dagster-cloud keys do not belong", "locations:\n  etl: {registry: r.example/x}\n", []string{`b.yaml:2: unknown key "registry" in locations.etl`}},
		{"unknown location", "locations:\n  etl: {}\n  nope: {target: x}\n", []string{`b.yaml:3: location "nope" is not defined in dagster_cloud.yaml (it defines etl, ml)`}},
		{"locations as a list", "locations:\n  - etl\n", []string{"b.yaml:2: `locations` must be a mapping of location names to their build options"}},
		{"wrong types", "defaults:\n  cache: maybe\n  target: 1\n  build_args: [A=1]\nlocations:\n  etl: {labels: {a: [1]}}\n", []string{
			"b.yaml:2: `defaults.cache` must be true or false",
			"b.yaml:3: `defaults.target` must be a string, but YAML 1.1",
			"b.yaml:4: `defaults.build_args` must be a mapping of names to values",
			"b.yaml:6: `locations.etl.labels.a` must be a single value",
		}},
		{"not a mapping", "- a\n", []string{"b.yaml:1: the top level must be a mapping"}},
		{"bad YAML", "defaults: {\n", []string{"b.yaml:1: invalid YAML"}},
		{"alias bomb", aliasBomb, []string{"b.yaml:8: alias *e: the file's aliases expand to more than 100000 nodes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseBuildConfig("b.yaml", []byte(tc.yaml), f)
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
	// Empty, comments only, null: an empty config. Anchors work.
	for _, ok := range []string{"", "# nothing\n", "~\n", "defaults: &d {target: t}\nlocations: {etl: *d, ml: {<<: *d, platform: p}}\n"} {
		if _, err := ParseBuildConfig("b.yaml", []byte(ok), f); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestLoadBuildConfig: a missing file is an empty config; the default path
// is next to dagster_cloud.yaml; a Dockerfile set there that escapes the
// project is blamed on that file's line.
func TestLoadBuildConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dcy := filepath.Join(dir, "dagster_cloud.yaml")
	if got := BuildConfigPath(dcy); got != filepath.Join(dir, "dagster_branch_deploy.yaml") {
		t.Errorf("BuildConfigPath = %s", got)
	}
	if err := os.WriteFile(dcy, []byte("locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    build: {registry: r.example/etl}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dcy)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := LoadBuildConfig(BuildConfigPath(dcy), f)
	if err != nil || bc == nil || bc.Locations != nil || !reflect.DeepEqual(bc.Defaults, Build{}) {
		t.Fatalf("missing file: %+v, %v", bc, err)
	}
	if err := os.WriteFile(BuildConfigPath(dcy), []byte("locations:\n  etl:\n    dockerfile: ../../etc/passwd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if bc, err = LoadBuildConfig(BuildConfigPath(dcy), f); err != nil {
		t.Fatal(err)
	}
	f.ApplyBuildConfig(bc)
	_, err = f.BuildPaths(f.Locations[0], dir, "Dockerfile")
	var ce *Error
	if !errors.As(err, &ce) || ce.File != BuildConfigPath(dcy) || ce.Line != 3 {
		t.Fatalf("err = %v, want %s:3", err, BuildConfigPath(dcy))
	}
}
