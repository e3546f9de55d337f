package config

import (
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

// docWith parses a one-location file whose container_context is cc (a YAML
// flow or block value written after "container_context: ") and returns the
// location's document.
func docWith(t *testing.T, cc string) map[string]any {
	t.Helper()
	f, err := Parse("dagster_cloud.yaml", []byte("locations:\n  - location_name: a\n    code_source: {package_name: a}\n    image: ghcr.io/a/b:1\n    container_context: "+cc+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return f.Locations[0].Document("", "", "")
}

// TestYAML11Scalars: a plain scalar in the document means what PyYAML's
// safe_load makes of it (YAML 1.1), and a quoted one is a string.
func TestYAML11Scalars(t *testing.T) {
	t.Parallel()
	bigInt, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	tests := []struct {
		yaml string
		want any
	}{
		// Booleans: YAML 1.1's yes/no/on/off in three casings, not other casings.
		{"yes", true}, {"Yes", true}, {"YES", true}, {"no", false}, {"No", false}, {"NO", false},
		{"on", true}, {"On", true}, {"ON", true}, {"off", false}, {"Off", false}, {"OFF", false},
		{"true", true}, {"True", true}, {"TRUE", true}, {"false", false}, {"False", false}, {"FALSE", false},
		{"yEs", "yEs"}, {"y", "y"}, {"n", "n"}, {"tRUE", "tRUE"},
		// Null.
		{"~", nil}, {"null", nil}, {"Null", nil}, {"NULL", nil}, {"", nil}, {"nULL", "nULL"},
		// Integers.
		{"0", 0}, {"-0", 0}, {"12", 12}, {"+12", 12}, {"-12", -12}, {"1_000", 1000},
		{"0x1F", 31}, {"0x_1f", 31}, {"-0x10", -16}, {"0b101", 5}, {"0b1_0", 2},
		{"017", 15}, {"-017", -15}, {"0_17", 15}, {"00", 0},
		{"0o17", "0o17"}, {"08", "08"}, {"09", "09"}, {"0x", "0x"}, {"0xG", "0xG"},
		{"1:30", 90}, {"-1:30", -90}, {"1:00:00", 3600}, {"1:60", "1:60"},
		{"123456789012345678901234567890", bigInt},
		// Floats.
		{"1.5", 1.5}, {"-1.5", -1.5}, {"1.", 1.0}, {".5", 0.5}, {"1_0.5", 10.5},
		{"1.0e+3", 1000.0}, {"1.5E-2", 0.015}, {"1:30.5", 90.5},
		{"1e3", "1e3"}, {"1.0e3", "1.0e3"}, {"-.5", "-.5"}, {".", "."}, {"1.2.3", "1.2.3"},
		// Timestamps stay the strings they are.
		{"2001-12-14", "2001-12-14"}, {"2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"},
		{"2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 -5"},
		// Strings, quoted values and explicit tags.
		{"hello", "hello"}, {`"yes"`, "yes"}, {`'123'`, "123"}, {`"~"`, "~"}, {`""`, ""},
		{"!!str yes", "yes"}, {"!!str 0x1F", "0x1F"}, {"!!int '42'", 42}, {"!!float '1'", 1.0},
		{"!!float 1e3", 1000.0}, {"!!bool 'YeS'", true}, {"!!null whatever", nil},
		{"|-\n        yes", "yes"}, {">-\n        1", "1"},
		// Lists and mappings of them.
		{"[yes, 'no', 1, 1.5, ~]", []any{true, "no", 1, 1.5, nil}},
		{"!!omap [{a: 1}, {b: yes}]", []any{[]any{"a", 1}, []any{"b", true}}},
	}
	for _, tc := range tests {
		t.Run(tc.yaml, func(t *testing.T) {
			t.Parallel()
			cc := "{v: " + tc.yaml + "}"
			if strings.Contains(tc.yaml, "\n") {
				cc = "\n      v: " + tc.yaml + "\n"
			}
			got := docWith(t, cc)["container_context"].(map[string]any)["v"]
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s: got %#v (%T), want %#v (%T)", tc.yaml, got, got, tc.want, tc.want)
			}
		})
	}
}

// TestYAML11ContainerContext: the case that matters: privileged: yes is
// sent as JSON true.
func TestYAML11ContainerContext(t *testing.T) {
	t.Parallel()
	doc := docWith(t, "\n      docker:\n        container_kwargs: {privileged: yes, tty: on, user: \"no\", shm_size: 0x100000}\n")
	body, err := json.Marshal(doc["container_context"])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"docker":{"container_kwargs":{"privileged":true,"shm_size":1048576,"tty":true,"user":"no"}}}`; string(body) != want {
		t.Errorf("container_context = %s, want %s", body, want)
	}
}

// TestJSONKeys: mapping keys come out as json.dumps writes Python's keys.
func TestJSONKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		yaml string
		want map[string]any
	}{
		{"{yes: a, no: b}", map[string]any{"true": "a", "false": "b"}},
		{"{1: a, 0x10: b, 1:30: c}", map[string]any{"1": "a", "16": "b", "90": "c"}},
		{"{~: a}", map[string]any{"null": "a"}},
		{"{1.5: a, 1.: b, 1.0e+20: c, .inf: d}", map[string]any{"1.5": "a", "1.0": "b", "1e+20": "c", "Infinity": "d"}},
		{`{"1": a, '~': b}`, map[string]any{"1": "a", "~": "b"}},
		{"{=: a}", map[string]any{"=": "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.yaml, func(t *testing.T) {
			t.Parallel()
			if got := docWith(t, tc.yaml)["container_context"]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestYAML11Errors: what PyYAML cannot load, or json.dumps cannot send, is
// an error at its line.
func TestYAML11Errors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, cc, want string }{
		{"unknown tag", "{a: !foo x}", `f.yaml:5: could not determine a constructor for the tag "!foo"`},
		{"python tag", "{a: !!python/name:os.system ''}", `f.yaml:5: could not determine a constructor for the tag "!!python/name:os.system"`},
		{"bad int", "{a: !!int abc}", `f.yaml:5: "abc" is not an integer`},
		{"bad bool", "{a: !!bool maybe}", `f.yaml:5: "maybe" is not a boolean`},
		{"infinity", "{a: .inf}", "f.yaml:5: .inf is not a number JSON can carry"},
		{"nan", "{a: .NaN}", "f.yaml:5: .NaN is not a number JSON can carry"},
		{"huge float", "{a: !!float 1e999}", "f.yaml:5: 1e999 is not a number JSON can carry"},
		{"binary", "{a: !!binary aGVsbG8=}", "f.yaml:5: binary data (!!binary) cannot be sent as JSON"},
		{"set", "!!set {a, b}", "f.yaml:5: a set (!!set) cannot be sent as JSON"},
		{"value indicator", "{a: =}", "f.yaml:5: a plain `=` cannot be loaded by PyYAML"},
		{"tag on the wrong node", "{a: !!map x}", "f.yaml:5: expected a mapping node for the tag !!map, but found a scalar"},
		{"list key", "{? [a, b] : c}", "f.yaml:5: a sequence cannot be a mapping key (PyYAML: found unhashable key)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("f.yaml", []byte("locations:\n  - location_name: a\n    code_source: {package_name: a}\n    image: ghcr.io/a/b:1\n    container_context: "+tc.cc+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Outside the document (build options are never sent), a NaN is fine
	// as far as JSON goes.
	if _, err := Parse("f.yaml", []byte("locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: r.example/a, build_args: {A: .nan}}\n")); err != nil {
		t.Errorf("a NaN build arg: %v", err)
	}
}

// TestYAML11Strings: where dagster-cloud wants a string, a plain scalar of
// another YAML 1.1 type is an error (pydantic's str and the Dagster+ API
// refuse it); quoted, it is fine; null is absent for an optional key.
func TestYAML11Strings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string // want "" = no error
	}{
		{"boolean name", "location_name: yes\ncode_source: {package_name: a}\nimage: i\n", "f.yaml:1: `location_name` must be a string, but YAML 1.1 (PyYAML, which dagster-cloud uses) reads yes as a boolean; quote it: \"yes\""},
		{"quoted name", "location_name: \"yes\"\ncode_source: {package_name: a}\nimage: i\n", ""},
		{"integer queue", "location_name: a\ncode_source: {package_name: a}\nimage: i\nagent_queue: 1\n", "f.yaml:4: `agent_queue` must be a string, but YAML 1.1 (PyYAML, which dagster-cloud uses) reads 1 as an integer"},
		{"octal directory", "location_name: a\ncode_source: {package_name: a}\nbuild: {directory: 017}\n", "`location \"a\" build.directory` must be a string"},
		{"null optional keys", "location_name: a\ncode_source: {package_name: a, module_name: ~}\nimage: i\nworking_directory: ~\nagent_queue: null\ncontainer_context: ~\nattribute:\n", ""},
		{"null build", "location_name: a\ncode_source: {package_name: a}\nimage: i\nbuild: ~\n", ""},
		{"timestamp-like image", "location_name: a\ncode_source: {package_name: a}\nimage: 2024-01-01\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse("f.yaml", []byte(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if l := f.Locations[0]; l.NeedsBuild {
					t.Errorf("location = %+v, want it unbuilt", l)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestYAML11Cache: build.cache reads YAML 1.1 booleans.
func TestYAML11Cache(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{"yes": true, "on": true, "True": true, "no": false, "OFF": false, "false": false, "!!bool 'Yes'": true} {
		f, err := Parse("f.yaml", []byte("locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: r.example/a, cache: "+in+"}\n"))
		if err != nil {
			t.Errorf("cache: %s: %v", in, err)
			continue
		}
		if c := f.Locations[0].Build.Cache; c == nil || *c != want {
			t.Errorf("cache: %s = %v, want %v", in, c, want)
		}
	}
	for _, in := range []string{`"true"`, "1", "y", "maybe"} {
		if _, err := Parse("f.yaml", []byte("locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: r.example/a, cache: "+in+"}\n")); err == nil || !strings.Contains(err.Error(), "f.yaml:4: `location \"a\" build.cache` must be true or false") {
			t.Errorf("cache: %s: err = %v", in, err)
		}
	}
}

func TestPyFloatRepr(t *testing.T) {
	t.Parallel()
	for f, want := range map[float64]string{
		1: "1.0", 1.5: "1.5", -2.25: "-2.25", 100: "100.0", 1e15: "1000000000000000.0", 1e16: "1e+16",
		1.5e16: "1.5e+16", 0.0001: "0.0001", 0.00001: "1e-05", 1.25e-7: "1.25e-07", 0.1: "0.1",
		123456.789: "123456.789", math.Inf(1): "Infinity", math.Inf(-1): "-Infinity", 1e300: "1e+300",
	} {
		if got := pyFloatRepr(f); got != want {
			t.Errorf("pyFloatRepr(%v) = %q, want %q", f, got, want)
		}
	}
}
