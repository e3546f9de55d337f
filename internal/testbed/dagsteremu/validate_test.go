package dagsteremu

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestValidateLocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want []string // nil: valid
	}{
		{"minimal", `{"location_name":"a","code_source":{"package_name":"a"}}`, nil},
		{"full hybrid document", `{"location_name":"a","code_source":{"module_name":"a.defs"},"working_directory":"./src",
			"executable_path":"/venv/bin/python","attribute":"defs","image":"r/img:t","git":{"commit_hash":"abc","url":"https://x"},
			"container_context":{"k8s":{"namespace":"dagster"}},"agent_queue":"q"}`, nil},
		{"image null", `{"location_name":"a","code_source":{"python_file":"a.py"},"image":null}`, nil},
		{"empty git", `{"location_name":"a","code_source":{"autoload_defs_module_name":"a"},"git":{}}`, nil},
		{"pex metadata", `{"location_name":"a","code_source":{"package_name":"a"},"pex_metadata":{"pex_tag":"t","python_version":"3.11"}}`, nil},
		{"defs state info", `{"location_name":"a","code_source":{"package_name":"a"},"defs_state_info":{"info_mapping":{"k":{"version":"v","create_timestamp":1.5},"n":null}}}`, nil},
		{"build key", `{"location_name":"a","code_source":{"package_name":"a"},"build":{"directory":"."}}`,
			[]string{`Received unexpected config entry "build" at the root.`}},
		{"missing name and code source", `{"image":"x"}`,
			[]string{`Missing required config entry "code_source" at the root.`, `Missing required config entry "location_name" at the root.`}},
		{"name not a string", `{"location_name":5,"code_source":{"package_name":"a"}}`,
			[]string{`Invalid scalar at path root:location_name. Value "5" of type "<class 'int'>" is not valid for expected type "String".`}},
		{"empty name", `{"location_name":" ","code_source":{"package_name":"a"}}`,
			[]string{`Invalid location name " " at path root:location_name: location names must not be empty.`}},
		{"two code sources", `{"location_name":"a","code_source":{"package_name":"a","module_name":"b"}}`,
			[]string{`You can only specify a single field at path root:code_source. You specified ['module_name', 'package_name']. The available fields are ['autoload_defs_module_name', 'module_name', 'package_name', 'python_file'].`}},
		{"no code source", `{"location_name":"a","code_source":{}}`,
			[]string{`Must specify a field at path root:code_source if more than one field is defined. Defined fields: ['autoload_defs_module_name', 'module_name', 'package_name', 'python_file'].`}},
		{"unknown code source", `{"location_name":"a","code_source":{"jar":"x"}}`,
			[]string{`Received unexpected config entry "jar" at path root:code_source.`}},
		{"git extra key", `{"location_name":"a","code_source":{"package_name":"a"},"git":{"commit_hash":"a","branch":"main"}}`,
			[]string{`Received unexpected config entry "branch" at path root:git.`}},
		{"git not a dict", `{"location_name":"a","code_source":{"package_name":"a"},"git":"abc"}`,
			[]string{`Value at path root:git must be dict. Got abc of type "<class 'str'>".`}},
		{"pex tag missing", `{"location_name":"a","code_source":{"package_name":"a"},"pex_metadata":{"python_version":"3.11"}}`,
			[]string{`Missing required config entry "pex_tag" at path root:pex_metadata.`}},
		{"image not a string", `{"location_name":"a","code_source":{"package_name":"a"},"image":["x"]}`,
			[]string{`Invalid scalar at path root:image. Value "[x]" of type "<class 'list'>" is not valid for expected type "String".`}},
		{"working directory null", `{"location_name":"a","code_source":{"package_name":"a"},"working_directory":null}`,
			[]string{`Value at path root:working_directory must not be None.`}},
		{"container context unknown agent", `{"location_name":"a","code_source":{"package_name":"a"},"container_context":{"nomad":{}}}`,
			[]string{`Received unexpected config entry "nomad" at path root:container_context.`}},
		{"pex_bundle not accepted", `{"location_name":"a","code_source":{"package_name":"a"},"pex_bundle":true}`,
			[]string{`Received unexpected config entry "pex_bundle" at the root.`}},
		{"not a dict", `"a"`, []string{`Value at the root must be dict. Got a of type "<class 'str'>".`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc any
			if err := json.Unmarshal([]byte(tt.doc), &doc); err != nil {
				t.Fatal(err)
			}
			if got := validateLocation(doc, "root"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLocationsFromDocument(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		doc       string
		wantNames []string
		wantErrs  []string
	}{
		{"list", `{"locations":[{"location_name":"a","code_source":{"package_name":"a"}},{"location_name":"b","code_source":{"python_file":"b.py"}}]}`,
			[]string{"a", "b"}, nil},
		{"legacy map", `{"locations":{"b":{"python_file":"b.py","image":"i"},"a":{"package_name":"a"}}}`, []string{"a", "b"}, nil},
		{"entry error has its index", `{"locations":[{"location_name":"a","code_source":{"package_name":"a"}},{"location_name":"b"}]}`,
			nil, []string{`Missing required config entry "code_source" at path root:locations[1].`}},
		{"duplicate", `{"locations":[{"location_name":"a","code_source":{"package_name":"a"}},{"location_name":"a","code_source":{"package_name":"a"}}]}`,
			nil, []string{`Duplicate location name "a" at path root:locations[1].`}},
		{"extra root key", `{"locations":[],"defaults":{}}`, nil, []string{`Received unexpected config entry "defaults" at the root.`}},
		{"missing locations", `{}`, nil, []string{`Missing required config entry "locations" at the root.`}},
		{"locations not a list", `{"locations":"a"}`, nil, []string{`Value at path root:locations must be list. Got a of type "<class 'str'>".`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc any
			if err := json.Unmarshal([]byte(tt.doc), &doc); err != nil {
				t.Fatal(err)
			}
			docs, errs := locationsFromDocument(doc)
			if !reflect.DeepEqual(errs, tt.wantErrs) {
				t.Errorf("errors %q, want %q", errs, tt.wantErrs)
			}
			var names []string
			for _, d := range docs {
				names = append(names, d["location_name"].(string))
			}
			if !reflect.DeepEqual(names, tt.wantNames) {
				t.Errorf("names %q, want %q", names, tt.wantNames)
			}
		})
	}
}
