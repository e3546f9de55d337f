package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAliasesAndMergeKeys: anchors, aliases and `<<` merge keys work
// wherever PyYAML's safe_load takes them, with PyYAML's precedence.
func TestAliasesAndMergeKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want map[string]map[string]any // location -> document keys to check
	}{
		{"alias as container_context", `locations:
  - location_name: a
    code_source: {package_name: a}
    image: i
    container_context: &cc {k8s: {namespace: data}}
  - location_name: b
    code_source: {package_name: b}
    image: j
    container_context: *cc
`, map[string]map[string]any{"b": {"container_context": map[string]any{"k8s": map[string]any{"namespace": "data"}}}}},
		{"alias of a whole location's value", `locations:
  - location_name: a
    code_source: &cs {package_name: shared}
    image: i
  - location_name: b
    code_source: *cs
    image: j
`, map[string]map[string]any{"b": {"code_source": map[string]any{"package_name": "shared"}}}},
		{"merge key in a location", `locations:
  - &base
    location_name: a
    code_source: {package_name: shared}
    image: ghcr.io/acme/base:1
    agent_queue: q
  - <<: *base
    location_name: b
  - <<: *base
    location_name: c
    agent_queue: own
`, map[string]map[string]any{
			"b": {"location_name": "b", "code_source": map[string]any{"package_name": "shared"}, "agent_queue": "q", "image": "ghcr.io/acme/base:1"},
			"c": {"agent_queue": "own"},
		}},
		{"explicit keys win over merged ones, wherever written", `locations:
  - location_name: a
    agent_queue: own
    <<: {agent_queue: merged, code_source: {package_name: a}, image: i}
`, map[string]map[string]any{"a": {"agent_queue": "own", "image": "i"}}},
		{"in a list of mappings, an earlier one wins", `locations:
  - location_name: a
    code_source: {package_name: a}
    image: i
    container_context:
      <<: [{x: first, y: first}, {x: second, y: second, z: second}]
      y: own
`, map[string]map[string]any{"a": {"container_context": map[string]any{"x": "first", "y": "own", "z": "second"}}}},
		{"later merge keys win over earlier ones", `locations:
  - location_name: a
    code_source: {package_name: a}
    image: i
    container_context: {<<: {x: 1}, <<: {x: 2}}
`, map[string]map[string]any{"a": {"container_context": map[string]any{"x": 2}}}},
		{"merges nest", `locations:
  - location_name: a
    code_source: {package_name: a}
    image: i
    container_context:
      one: &one {a: 1, b: 1}
      two: &two {<<: *one, b: 2, c: 2}
      three: {<<: *two, c: 3}
`, map[string]map[string]any{"a": {"container_context": map[string]any{
			"one": map[string]any{"a": 1, "b": 1}, "two": map[string]any{"a": 1, "b": 2, "c": 2}, "three": map[string]any{"a": 1, "b": 2, "c": 3}}}}},
		{"merge key in a build section", `locations:
  - location_name: a
    code_source: {package_name: a}
    build: &build {registry: r.example/app}
  - location_name: b
    code_source: {package_name: b}
    build: {<<: *build, directory: ./b}
`, nil},
		{"merge key in defaults", `defaults:
  <<: {agent_queue: q}
locations:
  - location_name: a
    code_source: {package_name: a}
    image: i
`, map[string]map[string]any{"a": {"agent_queue": "q"}}},
		{"anchor redefined: an alias takes the latest", `locations:
  - location_name: a
    code_source: {package_name: a}
    image: i
    container_context: {x: &v one, y: &v two, z: *v}
`, map[string]map[string]any{"a": {"container_context": map[string]any{"x": "one", "y": "two", "z": "two"}}}},
		{"quoted << is a plain key", `locations:
  - location_name: a
    code_source: {package_name: a}
    image: i
    container_context: {"<<": {a: 1}}
`, map[string]map[string]any{"a": {"container_context": map[string]any{"<<": map[string]any{"a": 1}}}}},
		{"many aliases of a small anchor are fine", manyAliases(2000), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse("dagster_cloud.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				locs, err := f.Select([]string{name})
				if err != nil {
					t.Fatal(err)
				}
				doc := locs[0].Document("", "", "")
				for k, v := range want {
					if !reflect.DeepEqual(doc[k], v) {
						t.Errorf("%s: %s = %#v, want %#v", name, k, doc[k], v)
					}
				}
			}
		})
	}
}

// manyAliases is a file with n locations that all merge the same base.
func manyAliases(n int) string {
	var b strings.Builder
	b.WriteString("locations:\n  - &base\n    location_name: l0\n    code_source: {package_name: a}\n    build: {registry: r.example/app}\n    container_context: {k8s: {env_vars: [A=1, B=2], namespace: n}}\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  - {<<: *base, location_name: l%d}\n", i)
	}
	return b.String()
}

// TestAliasErrors: problems in aliased and merged content point at the
// line where the user wrote them.
func TestAliasErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key in merged content, at its line", `locations:
  - location_name: a
    <<: &base
      code_source: {package_name: a}
      image: i
      bulid: {}
`, []string{`f.yaml:6: unknown key "bulid" in location "a"`}},
		{"wrong type behind an alias, at the anchor's line", `locations:
  - location_name: a
    code_source: {package_name: a}
    image: &i [x]
    working_directory: *i
`, []string{"f.yaml:4: `working_directory` must be a string"}},
		{"merge of a scalar", `locations:
  - location_name: a
    <<: x
`, []string{"f.yaml:3: `<<` (a merge key) needs a mapping or a list of mappings to merge, but found a string"}},
		{"merge of a list holding a scalar", `locations:
  - location_name: a
    <<: [{code_source: {package_name: a}}, 1]
`, []string{"f.yaml:3: `<<` (a merge key) needs mappings to merge, but found an integer"}},
		{"recursive alias", `locations:
  - &l
    location_name: a
    code_source: {package_name: a}
    image: i
    container_context: {self: *l}
`, []string{"f.yaml:6: alias *l refers to the node that contains it"}},
		{"undefined alias", `locations:
  - location_name: *nope
`, []string{"f.yaml:2: invalid YAML: unknown anchor 'nope' referenced"}},
		{"unhashable key", `locations:
  - location_name: a
    code_source: {package_name: a}
    image: i
    container_context:
      ? {a: 1}
      : x
`, []string{"f.yaml:6: a mapping cannot be a mapping key (PyYAML: found unhashable key)"}},
		{"second document", "locations: []\n---\nlocations: []\n", []string{"f.yaml:2: a second YAML document starts here"}},
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

// TestDuplicateKeys: a key given twice keeps its last value, as PyYAML
// does, with a warning at the second.
func TestDuplicateKeys(t *testing.T) {
	t.Parallel()
	f, err := Parse("f.yaml", []byte(`locations:
  - location_name: a
    code_source: {package_name: a}
    image: first
    image: second
`))
	if err != nil {
		t.Fatal(err)
	}
	if l := f.Locations[0]; l.Image != "second" || l.Document("", "", "")["image"] != "second" {
		t.Errorf("image = %q, doc %v", l.Image, l.Document("", "", ""))
	}
	if len(f.Warnings) != 1 || f.Warnings[0].Line != 5 || !strings.Contains(f.Warnings[0].Msg, `duplicate key "image" (also at line 4): the last one wins`) {
		t.Errorf("warnings = %v", f.Warnings)
	}
	// 1, 1.0 and true are one key to Python.
	d := docWith(t, "{1: a, 1.0: b, true: c}")["container_context"]
	if !reflect.DeepEqual(d, map[string]any{"1": "c"}) {
		t.Errorf("container_context = %#v", d)
	}
}

// TestAliasBombs: expansion is bounded, whatever shape the bomb has, and the
// error names the alias that crossed the bound.
func TestAliasBombs(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1<<20)
	tests := []struct {
		name, yaml, want string
	}{
		{"billion laughs in defaults", aliasBomb, "fuzz/dagster_cloud.yaml:8: alias *e: the file's aliases expand to more than 100000 nodes: is it an alias bomb?"},
		{"billion laughs in a location", aliasBombInLocation, "fuzz/dagster_cloud.yaml:11: alias *e: the file's aliases expand to more than 100000 nodes"},
		{"through merge keys", "a: &a {a0: 1, a1: 1, a2: 1, a3: 1, a4: 1, a5: 1, a6: 1, a7: 1, a8: 1, a9: 1}\n" +
			"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
			"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e {<<: [*a], x: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}\n",
			"fuzz/dagster_cloud.yaml:5: alias *d: the file's aliases expand to more than 100000 nodes"},
		{"long text", "s: &s \"" + long + "\"\nl: [*s, *s, *s, *s, *s, *s, *s, *s, *s, *s, *s, *s]\n", "fuzz/dagster_cloud.yaml:2: alias *s: the file's aliases expand to more than 10 MiB of text: is it an alias bomb?"},
		{"wide", "a: &a [" + strings.Repeat("x,", 999) + "x]\nb: [" + strings.Repeat("*a,", 200) + "*a]\n", "fuzz/dagster_cloud.yaml:2: alias *a: the file's aliases expand to more than 100000 nodes"},
		{"defaults times locations", bigDefaults(), "the location documents (`defaults:` merged into each of the 500 locations) would exceed 1000000 nodes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := Parse(fuzzPath, []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			var ce *Error
			var ces Errors
			if !errors.As(err, &ce) && !errors.As(err, &ces) {
				t.Errorf("err is %T, want *Error or Errors", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// bigDefaults is a file whose defaults (4000 nodes, written without
// aliases) go into 500 locations.
func bigDefaults() string {
	var b strings.Builder
	b.WriteString("defaults:\n  image: i\n  container_context:\n    docker:\n      env_vars:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "        - V%d=1\n", i)
	}
	b.WriteString("locations:\n")
	for i := range 500 {
		fmt.Fprintf(&b, "  - {location_name: l%d, code_source: {package_name: a}}\n", i)
	}
	return b.String()
}
