package action

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func getter(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestReadInputs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		inputs  map[string]string
		env     map[string]string
		check   func(t *testing.T, in Inputs)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, in Inputs) {
				want := Inputs{Deployment: "prod", ProjectDir: ".", YAMLPath: "dagster_cloud.yaml", PRComment: true,
					LocationLoadTimeout: 3600 * time.Second, AgentHeartbeatTimeout: 120 * time.Second, HeartbeatDefault: true,
					PythonVersion: "3.11", Dockerfile: "Dockerfile", Platform: "linux/amd64", Cache: true, Push: true, MaxParallel: DefaultMaxParallel(), Reuse: true,
					ForkPullRequests: "skip", DependabotPullRequests: "skip", MergeGroup: "build", DraftPullRequests: "deploy"}
				if !reflect.DeepEqual(in, want) {
					t.Errorf("got %+v", in)
				}
			},
		},
		{
			name:   "env fallbacks",
			inputs: map[string]string{"organization_id": "  "},
			env:    map[string]string{"DAGSTER_CLOUD_ORGANIZATION": "acme", "DAGSTER_CLOUD_API_TOKEN": "tok", "DAGSTER_CLOUD_URL": "https://acme.eu.dagster.cloud/", "GITHUB_TOKEN": "ghs"},
			check: func(t *testing.T, in Inputs) {
				if in.Organization != "acme" || in.APIToken != "tok" || in.URL != "https://acme.eu.dagster.cloud" || in.GitHubToken != "ghs" {
					t.Errorf("got %+v", in)
				}
			},
		},
		{
			name:   "inputs win over env",
			inputs: map[string]string{"organization_id": "mine", "dagster_cloud_api_token": "input-tok"},
			env:    map[string]string{"DAGSTER_CLOUD_ORGANIZATION": "acme", "DAGSTER_CLOUD_API_TOKEN": "env-tok"},
			check: func(t *testing.T, in Inputs) {
				if in.Organization != "mine" || in.APIToken != "input-tok" {
					t.Errorf("got %+v", in)
				}
			},
		},
		{
			name:   "values",
			inputs: map[string]string{"location_names": "a,\nb", "pr_comment": "False", "location_load_timeout": "0", "agent_heartbeat_timeout": "5m", "image_tag": "v1.2.3"},
			check: func(t *testing.T, in Inputs) {
				if !slices.Equal(in.LocationNames, []string{"a", "b"}) || in.PRComment || in.LocationLoadTimeout != 0 || in.AgentHeartbeatTimeout != 5*time.Minute || in.ImageTag != "v1.2.3" {
					t.Errorf("got %+v", in)
				}
			},
		},
		{name: "bad bool", inputs: map[string]string{"pr_comment": "yes please"}, wantErr: "input pr_comment"},
		{name: "bad timeout", inputs: map[string]string{"location_load_timeout": "-3"}, wantErr: "input location_load_timeout"},
		{name: "bad tag", inputs: map[string]string{"image_tag": "feature/x"}, wantErr: "input image_tag"},
		{
			// Checked later (CheckRegistryPair), after the event policy: a
			// fork's run gets no registry_password from a secret.
			name:   "half credentials",
			inputs: map[string]string{"registry_username": "me"},
			check: func(t *testing.T, in Inputs) {
				var ie *InputError
				if err := in.CheckRegistryPair(); !errors.As(err, &ie) || !strings.Contains(err.Error(), "registry_password") {
					t.Errorf("CheckRegistryPair() = %v", err)
				}
			},
		},
		{
			name: "event policies",
			inputs: map[string]string{"fork_pull_requests": "Build", "dependabot_pull_requests": "fail", "merge_group": "skip",
				"draft_pull_requests": "SKIP", "delete_on_close": "true", "dry_run": "True"},
			check: func(t *testing.T, in Inputs) {
				if in.ForkPullRequests != "build" || in.DependabotPullRequests != "fail" || in.MergeGroup != "skip" || in.DraftPullRequests != "skip" || !in.DeleteOnClose || !in.DryRun {
					t.Errorf("got %+v", in)
				}
				if err := in.CheckRegistryPair(); err != nil {
					t.Error(err)
				}
			},
		},
		{name: "bad fork policy", inputs: map[string]string{"fork_pull_requests": "deploy"}, wantErr: `input fork_pull_requests: "deploy" is not one of skip, fail, build`},
		{name: "bad merge_group", inputs: map[string]string{"merge_group": "fail"}, wantErr: `input merge_group: "fail" is not one of build, skip`},
		{name: "bad draft policy", inputs: map[string]string{"draft_pull_requests": "build"}, wantErr: "input draft_pull_requests"},
		{name: "bad dry_run", inputs: map[string]string{"dry_run": "maybe"}, wantErr: "input dry_run"},
		{
			name: "build inputs",
			inputs: map[string]string{"build_args": "PYTHON=3.12\n\n# comment\nEXTRA=a=b", "labels": "team=data", "build_secrets": "pip_token=s3cr3t-value",
				"ssh": "default\ngithub=/tmp/key", "cache": "false", "push": "false", "target": "runtime", "dockerfile": "docker/Dockerfile"},
			check: func(t *testing.T, in Inputs) {
				if !reflect.DeepEqual(in.BuildArgs, map[string]string{"PYTHON": "3.12", "EXTRA": "a=b"}) || in.Labels["team"] != "data" ||
					in.BuildSecrets["pip_token"] != "s3cr3t-value" || !slices.Equal(in.SSH, []string{"default", "github=/tmp/key"}) ||
					in.Cache || in.Push || in.Target != "runtime" || in.Dockerfile != "docker/Dockerfile" {
					t.Errorf("got %+v", in)
				}
				if !slices.Contains(in.Secrets(), "s3cr3t-value") {
					t.Error("build secrets are not among the secrets to mask")
				}
			},
		},
		{name: "bad secret line", inputs: map[string]string{"build_secrets": "just-a-secret-value"}, wantErr: "line 1 is not KEY=VALUE"},
		{name: "half WIF", inputs: map[string]string{"gcp_workload_identity_provider": "projects/1/locations/global/workloadIdentityPools/p/providers/gh"}, wantErr: "gcp_service_account"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, err := ReadInputs(getter(tc.inputs), getter(tc.env))
			if tc.wantErr != "" {
				var ie *InputError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want an InputError with %q", err, tc.wantErr)
				}
				if v := tc.inputs["build_secrets"]; v != "" && strings.Contains(err.Error(), v) {
					t.Errorf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, in)
		})
	}
}

func TestCheckDagster(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   Inputs
		want string
	}{
		{Inputs{APIToken: "x"}, "DAGSTER_CLOUD_ORGANIZATION"},
		{Inputs{Organization: "acme"}, "DAGSTER_CLOUD_API_TOKEN"},
		{Inputs{URL: "http://x", APIToken: "t"}, ""},
	} {
		err := tc.in.CheckDagster()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckDagster(%+v) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestActionYAMLMatchesInputs checks action.yml against the code: every
// input it declares is read, and an input left empty (as when the runner's
// default is absent) behaves as action.yml's default.
func TestActionYAMLMatchesInputs(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Inputs map[string]struct {
			Description string `yaml:"description"`
			Default     string `yaml:"default"`
		} `yaml:"inputs"`
		Outputs map[string]any `yaml:"outputs"`
	}
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	record := func(k string) string { read[k] = true; return "" }
	empty, err := ReadInputs(record, getter(nil))
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range meta.Inputs {
		if !read[name] {
			t.Errorf("action.yml input %s is never read", name)
		}
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
		if in.Default == "" || strings.Contains(in.Default, "${{") {
			continue
		}
		withDefault, err := ReadInputs(getter(map[string]string{name: in.Default}), getter(nil))
		if err != nil {
			t.Errorf("action.yml default of %s (%q): %v", name, in.Default, err)
			continue
		}
		if !reflect.DeepEqual(withDefault, empty) {
			t.Errorf("input %s: its action.yml default %q gives %+v, but leaving it empty gives %+v", name, in.Default, withDefault, empty)
		}
	}
	for name := range read {
		if _, ok := meta.Inputs[name]; !ok {
			t.Errorf("the code reads input %s, which action.yml does not declare", name)
		}
	}
	for _, out := range []string{"deployment", "deployment_url", "images", "status"} {
		if _, ok := meta.Outputs[out]; !ok {
			t.Errorf("action.yml does not declare output %s", out)
		}
	}
}

// TestPathsRefuseSymlinkedConfigOutside: a committed dagster_cloud.yaml
// (or project directory) that is a symlink to a file outside the checkout,
// such as the runner's Docker config, is refused before it is read; one
// that points inside the checkout is fine.
func TestPathsRefuseSymlinkedConfigOutside(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	secret := filepath.Join(outside, "config.json")
	if err := os.WriteFile(secret, []byte(`{"auths":{"ghcr.io":{"auth":"c2VjcmV0"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ws, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "real", "dagster_cloud.yaml"), []byte("locations: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"secret.yaml": secret,                                     // absolute, outside
		"up.yaml":     "../" + filepath.Base(outside) + "/x.yaml", // relative, outside
		"ok.yaml":     "real/dagster_cloud.yaml",                  // inside
		"outdir":      outside,                                    // a project_dir outside
		"indir":       "real",                                     // a project_dir inside
	} {
		if err := os.Symlink(target, filepath.Join(ws, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		project, yaml string
		wantInput     string // "" when accepted
	}{
		{".", "secret.yaml", "dagster_cloud_yaml_path"},
		{".", "up.yaml", "dagster_cloud_yaml_path"},
		{".", "ok.yaml", ""},
		{"outdir", "config.json", "project_dir"},
		{"indir", "dagster_cloud.yaml", ""},
	} {
		_, _, err := Inputs{ProjectDir: tc.project, YAMLPath: tc.yaml}.Paths(ws)
		var ie *InputError
		switch {
		case tc.wantInput == "" && err != nil:
			t.Errorf("project_dir %q, dagster_cloud_yaml_path %q: %v", tc.project, tc.yaml, err)
		case tc.wantInput != "" && (!errors.As(err, &ie) || ie.Input != tc.wantInput || !strings.Contains(err.Error(), "outside")):
			t.Errorf("project_dir %q, dagster_cloud_yaml_path %q: error %v, want one of input %s saying it resolves outside", tc.project, tc.yaml, err, tc.wantInput)
		}
	}
}
