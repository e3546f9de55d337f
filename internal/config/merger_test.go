package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestDefaultsMerger: `defaults:` is merged into each location as
// dagster-cloud's DagsterCloudConfigDefaultsMerger (config/merger.py and
// config/list_merge_strategies.py) does. One case per rule; each gives the
// defaults' container_context (or other keys), the location's, and the
// container_context (or keys) of the document.
func TestDefaultsMerger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		defaults  string // YAML under defaults:
		location  string // YAML of the location's extra keys
		want      string // JSON of the document's keys named in it
		wantError string
	}{
		{"_merge_dict: a key only in the defaults is taken",
			"agent_queue: q\nworking_directory: ./src",
			"{}",
			`{"agent_queue":"q","working_directory":"./src"}`, ""},
		{"_merge_dict: a scalar of the location replaces the default",
			"agent_queue: q",
			"{agent_queue: own}",
			`{"agent_queue":"own"}`, ""},
		{"_merge_dict: mappings merge deeply, the location winning",
			"container_context: {k8s: {namespace: data, service_account_name: sa, resources: {limits: {cpu: 1}}}}",
			"{container_context: {k8s: {namespace: own, resources: {limits: {memory: 1Gi}}}}}",
			`{"container_context":{"k8s":{"namespace":"own","resources":{"limits":{"cpu":1,"memory":"1Gi"}},"service_account_name":"sa"}}}`, ""},
		{"_merge_dict: a location's scalar replaces a default mapping",
			"container_context: {k8s: {namespace: data}}",
			"{container_context: {k8s: off}}",
			`{"container_context":{"k8s":false}}`, ""},
		{"_merge_dict: a location's mapping onto a default scalar is an error (check.invariant)",
			"container_context: {k8s: x}",
			"{container_context: {k8s: {namespace: n}}}",
			``, `location "a": container_context.k8s is a mapping but defaults.container_context.k8s (line 2) is a string`},
		{"_merge_dict: a location's list onto a default mapping is an error (check.invariant)",
			"container_context: {k8s: {env_vars: {A: 1}}}",
			"{container_context: {k8s: {env_vars: [A=1]}}}",
			``, `container_context.k8s.env_vars is a list but defaults.container_context.k8s.env_vars (line 2) is a mapping`},
		{"remove_none_recursively: null values in the location do not erase defaults",
			"agent_queue: q\ncontainer_context: {k8s: {namespace: data}}",
			"{agent_queue: ~, container_context: {k8s: {namespace: null, labels: [a, ~]}}}",
			`{"agent_queue":"q","container_context":{"k8s":{"labels":["a"],"namespace":"data"}}}`, ""},
		{"remove_none_recursively: null values in the defaults are dropped",
			"container_context: {k8s: {namespace: ~, labels: [~, b]}}",
			"{}",
			`{"container_context":{"k8s":{"labels":["b"]}}}`, ""},
		{"deduplicate: other lists are the defaults' then the location's, without repeats",
			"container_context: {k8s: {labels: [a, 1, {x: 1}]}}",
			"{container_context: {k8s: {labels: [b, a, true, 1.0, {x: 1}, c]}}}",
			`{"container_context":{"k8s":{"labels":["a",1,{"x":1},"b","c"]}}}`, ""},
		{"equal_sign_list_merger: container_context.k8s.env_vars by name",
			"container_context: {k8s: {env_vars: [A=1, B=2, C]}}",
			"{container_context: {k8s: {env_vars: [B=own, C=3, D=4]}}}",
			`{"container_context":{"k8s":{"env_vars":["A=1","B=own","C=3","D=4"]}}}`, ""},
		{"equal_sign_list_merger: container_context.docker.env_vars by name",
			"container_context: {docker: {env_vars: [A=1, B=2]}}",
			"{container_context: {docker: {env_vars: [B, E=5]}}}",
			`{"container_context":{"docker":{"env_vars":["A=1","B","E=5"]}}}`, ""},
		{"equal_sign_list_merger: container_context.ecs.env_vars by name",
			"container_context: {ecs: {env_vars: [A=1, B=2]}}",
			"{container_context: {ecs: {env_vars: [A=own]}}}",
			`{"container_context":{"ecs":{"env_vars":["B=2","A=own"]}}}`, ""},
		{"equal_sign_list_merger: a default value holding = is named by the text before the first =",
			"container_context: {k8s: {env_vars: [OPTS=-Dx=y, B=2]}}",
			"{container_context: {k8s: {env_vars: [B=3]}}}",
			`{"container_context":{"k8s":{"env_vars":["OPTS=-Dx=y","B=3"]}}}`, ""},
		{"equal_sign_list_merger: entries must be strings",
			"container_context: {k8s: {env_vars: [A=1]}}",
			"{container_context: {k8s: {env_vars: [{name: B}]}}}",
			``, `every entry of container_context.k8s.env_vars must be a string (NAME=value)`},
		{"named_object_list_merger: container_context.k8s.volumes by name",
			"container_context: {k8s: {volumes: [{name: a, emptyDir: {}}, {name: b, emptyDir: {}}]}}",
			"{container_context: {k8s: {volumes: [{name: b, secret: {secretName: s}}, {name: c, emptyDir: {}}]}}}",
			`{"container_context":{"k8s":{"volumes":[{"emptyDir":{},"name":"a"},{"name":"b","secret":{"secretName":"s"}},{"emptyDir":{},"name":"c"}]}}}`, ""},
		{"named_object_list_merger: container_context.k8s.volume_mounts by name",
			"container_context: {k8s: {volume_mounts: [{name: a, mountPath: /a}]}}",
			"{container_context: {k8s: {volume_mounts: [{name: a, mountPath: /own}]}}}",
			`{"container_context":{"k8s":{"volume_mounts":[{"mountPath":"/own","name":"a"}]}}}`, ""},
		{"named_object_list_merger: container_context.k8s.image_pull_secrets by name",
			"container_context: {k8s: {image_pull_secrets: [{name: reg}]}}",
			"{container_context: {k8s: {image_pull_secrets: [{name: other}]}}}",
			`{"container_context":{"k8s":{"image_pull_secrets":[{"name":"reg"},{"name":"other"}]}}}`, ""},
		{"named_object_list_merger: container_context.ecs.secrets by name",
			"container_context: {ecs: {secrets: [{name: A, valueFrom: arn:1}, {name: B, valueFrom: arn:2}]}}",
			"{container_context: {ecs: {secrets: [{name: A, valueFrom: arn:own}]}}}",
			`{"container_context":{"ecs":{"secrets":[{"name":"B","valueFrom":"arn:2"},{"name":"A","valueFrom":"arn:own"}]}}}`, ""},
		{"named_object_list_merger: container_context.ecs.volumes by name",
			"container_context: {ecs: {volumes: [{name: v, host: {}}]}}",
			"{container_context: {ecs: {volumes: [{name: w, host: {}}]}}}",
			`{"container_context":{"ecs":{"volumes":[{"host":{},"name":"v"},{"host":{},"name":"w"}]}}}`, ""},
		{"named_object_list_merger: container_context.ecs.run_sidecar_containers by name",
			"container_context: {ecs: {run_sidecar_containers: [{name: dd, image: datadog:1}]}}",
			"{container_context: {ecs: {run_sidecar_containers: [{name: dd, image: datadog:2}]}}}",
			`{"container_context":{"ecs":{"run_sidecar_containers":[{"image":"datadog:2","name":"dd"}]}}}`, ""},
		{"named_object_list_merger: container_context.ecs.server_sidecar_containers by name",
			"container_context: {ecs: {server_sidecar_containers: [{name: dd, image: datadog:1}]}}",
			"{container_context: {ecs: {server_sidecar_containers: [{name: fl, image: fluent:1}]}}}",
			`{"container_context":{"ecs":{"server_sidecar_containers":[{"image":"datadog:1","name":"dd"},{"image":"fluent:1","name":"fl"}]}}}`, ""},
		{"named_object_list_merger: an item named twice keeps its first place and last value",
			"container_context: {k8s: {volumes: [{name: a, x: 1}, {name: b}, {name: a, x: 2}]}}",
			"{container_context: {k8s: {volumes: [{name: c}]}}}",
			`{"container_context":{"k8s":{"volumes":[{"name":"a","x":2},{"name":"b"},{"name":"c"}]}}}`, ""},
		{"named_object_list_merger: an item without a name is an error (KeyError)",
			"container_context: {k8s: {volumes: [{name: a}]}}",
			"{container_context: {k8s: {volumes: [{emptyDir: {}}]}}}",
			``, `this item of container_context.k8s.volumes has no ` + "`name`"},
		{"keyed_object_list_merger: container_context.ecs.run_ecs_tags by key",
			"container_context: {ecs: {run_ecs_tags: [{key: team, value: data}, {key: env, value: prod}]}}",
			"{container_context: {ecs: {run_ecs_tags: [{key: env, value: branch}]}}}",
			`{"container_context":{"ecs":{"run_ecs_tags":[{"key":"team","value":"data"},{"key":"env","value":"branch"}]}}}`, ""},
		{"keyed_object_list_merger: container_context.ecs.server_ecs_tags by key",
			"container_context: {ecs: {server_ecs_tags: [{key: team, value: data}]}}",
			"{container_context: {ecs: {server_ecs_tags: [{key: cost, value: x}]}}}",
			`{"container_context":{"ecs":{"server_ecs_tags":[{"key":"team","value":"data"},{"key":"cost","value":"x"}]}}}`, ""},
		{"replace: container_context.k8s.run_k8s_config.container_config.args",
			"container_context: {k8s: {run_k8s_config: {container_config: {args: [a, b], image_pull_policy: Always}}}}",
			"{container_context: {k8s: {run_k8s_config: {container_config: {args: [c]}}}}}",
			`{"container_context":{"k8s":{"run_k8s_config":{"container_config":{"args":["c"],"image_pull_policy":"Always"}}}}}`, ""},
		{"replace: container_context.k8s.run_k8s_config.container_config.command",
			"container_context: {k8s: {run_k8s_config: {container_config: {command: [a]}}}}",
			"{container_context: {k8s: {run_k8s_config: {container_config: {command: [b, a]}}}}}",
			`{"container_context":{"k8s":{"run_k8s_config":{"container_config":{"command":["b","a"]}}}}}`, ""},
		{"replace: container_context.k8s.server_k8s_config.container_config.args",
			"container_context: {k8s: {server_k8s_config: {container_config: {args: [a]}}}}",
			"{container_context: {k8s: {server_k8s_config: {container_config: {args: [a, b]}}}}}",
			`{"container_context":{"k8s":{"server_k8s_config":{"container_config":{"args":["a","b"]}}}}}`, ""},
		{"replace: container_context.k8s.server_k8s_config.container_config.command",
			"container_context: {k8s: {server_k8s_config: {container_config: {command: [x]}}}}",
			"{container_context: {k8s: {server_k8s_config: {container_config: {command: [y]}}}}}",
			`{"container_context":{"k8s":{"server_k8s_config":{"container_config":{"command":["y"]}}}}}`, ""},
		{"deduplicate: a list of mappings at a path without a rule (k8s.run_k8s_config.pod_spec_config.tolerations) is not merged by identity",
			"container_context: {k8s: {run_k8s_config: {pod_spec_config: {tolerations: [{key: a}]}}}}",
			"{container_context: {k8s: {run_k8s_config: {pod_spec_config: {tolerations: [{key: a}, {key: b}]}}}}}",
			`{"container_context":{"k8s":{"run_k8s_config":{"pod_spec_config":{"tolerations":[{"key":"a"},{"key":"b"}]}}}}}`, ""},
		{"the reported bug: a location's own k8s keeps the default env_vars",
			"agent_queue: q1\ncontainer_context: {k8s: {env_vars: [A=1]}}",
			"{container_context: {k8s: {namespace: n, env_vars: [B=2]}}}",
			`{"agent_queue":"q1","container_context":{"k8s":{"env_vars":["A=1","B=2"],"namespace":"n"}}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := "defaults:\n" + indentBy("  ", tc.defaults) + "\nlocations:\n  - {<<: " + tc.location + ", location_name: a, code_source: {package_name: a}, image: i}\n"
			f, err := Parse("f.yaml", []byte(doc))
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("err = %v, want %q", err, tc.wantError)
				}
				var es Errors
				var e *Error
				if !strings.HasPrefix(err.Error(), "f.yaml:") || !errors.As(err, &es) && !errors.As(err, &e) {
					t.Errorf("err %v (%T) is not at a file:line", err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, doc)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			body, _ := json.Marshal(f.Locations[0].Document("", "", ""))
			var full map[string]any
			_ = json.Unmarshal(body, &full)
			for k := range want {
				got[k] = full[k]
			}
			if !reflect.DeepEqual(got, want) {
				gotJSON, _ := json.Marshal(got)
				t.Errorf("got  %s\nwant %s", gotJSON, tc.want)
			}
		})
	}
}

func indentBy(prefix, s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// TestDefaultsMergerScope: without `defaults:`, a location's document is
// its entry as written (merger.py is not run, nulls stay); defaults.build
// never reaches the document.
func TestDefaultsMergerScope(t *testing.T) {
	t.Parallel()
	f, err := Parse("f.yaml", []byte("locations:\n  - location_name: a\n    code_source: {package_name: a}\n    image: i\n    container_context: {k8s: {namespace: ~}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Locations[0].Document("", "", "")["container_context"]; !reflect.DeepEqual(got, map[string]any{"k8s": map[string]any{"namespace": nil}}) {
		t.Errorf("container_context = %#v", got)
	}
	f, err = Parse("f.yaml", []byte("defaults:\n  build: {registry: r.example/a, directory: ./d}\nlocations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {directory: ./own}\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := f.Locations[0]
	if _, has := l.Document("x", "", "")["build"]; has {
		t.Error("build in the document")
	}
	if l.Build.Registry != "r.example/a" || l.Build.Directory != "./own" || l.Build.DirectoryLine != 6 {
		t.Errorf("build = %+v", l.Build)
	}
}
