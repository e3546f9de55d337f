package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, IO{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }})
	return result{code, out.String(), errOut.String()}
}

func emulator(t *testing.T) (*dagsteremu.Server, map[string]string) {
	t.Helper()
	emu := dagsteremu.New(dagsteremu.WithTokens("cli-token-123"))
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, map[string]string{"DAGSTER_CLOUD_URL": srv.URL, "DAGSTER_CLOUD_API_TOKEN": "cli-token-123"}
}

func TestCreateOrUpdatePrintsOnlyTheName(t *testing.T) {
	t.Parallel()
	emu, env := emulator(t)
	args := []string{"branch-deployment", "create-or-update", "--git-repo-name", "acme/repo", "--branch-name", "feature/x",
		"--commit-hash", "abc123", "--timestamp", "1700000000", "--pull-request-id", "7", "--pull-request-status", "open",
		"--author-name", "Jane"}
	r := run(t, env, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	name := strings.TrimSpace(r.stdout)
	d, ok := emu.Deployment(name)
	if !ok || r.stdout != name+"\n" {
		t.Fatalf("stdout %q is not just the deployment name", r.stdout)
	}
	if d.RepoName != "acme/repo" || d.BranchName != "feature/x" || d.PullRequestStatus != "OPEN" || d.PullRequestNumber != "7" || d.Commit.AuthorName != "Jane" {
		t.Errorf("deployment = %+v", d)
	}
	// Closing through the dagster-cloud alias flags.
	r = run(t, env, "branch-deployment", "create-or-update", "--repo-name", "acme/repo", "--branch-name", "feature/x",
		"--commit-hash", "abc123", "--timestamp", "1700000000", "--pull-request-status", "MERGED")
	if r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Fatalf("second call: %+v", r)
	}
	if d, _ := emu.Deployment(name); d.PullRequestStatus != "MERGED" {
		t.Errorf("status = %s", d.PullRequestStatus)
	}
}

func TestCLIErrors(t *testing.T) {
	t.Parallel()
	_, env := emulator(t)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no command outside actions", nil, nil, "no command given"},
		{"no org", map[string]string{"DAGSTER_CLOUD_API_TOKEN": "x"}, []string{"branch-deployment", "create-or-update"}, "--organization or set DAGSTER_CLOUD_ORGANIZATION"},
		{"no token", map[string]string{"DAGSTER_CLOUD_ORGANIZATION": "acme"}, []string{"branch-deployment", "create-or-update"}, "DAGSTER_CLOUD_API_TOKEN"},
		{"no commit", env, []string{"branch-deployment", "create-or-update", "--git-repo-name", "a/b", "--branch-name", "x"}, "--commit-hash and --timestamp"},
		{"bad status", env, []string{"branch-deployment", "create-or-update", "--git-repo-name", "a/b", "--branch-name", "x", "--commit-hash", "a", "--timestamp", "1", "--pull-request-status", "gone"}, "OPEN, CLOSED or MERGED"},
		{"no deployment", env, []string{"deployment", "add-location"}, "DAGSTER_CLOUD_DEPLOYMENT"},
		{"bad timeout", map[string]string{"DAGSTER_CLOUD_URL": env["DAGSTER_CLOUD_URL"], "DAGSTER_CLOUD_API_TOKEN": "x", "DAGSTER_CLOUD_LOCATION_LOAD_TIMEOUT": "10x"},
			[]string{"deployment", "add-location", "-d", "prod", "--image", "i", "--location-file", "/nonexistent.yaml"}, `DAGSTER_CLOUD_LOCATION_LOAD_TIMEOUT "10x" is not a number of seconds`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tc.env, tc.args...)
			if r.code == 0 || !strings.Contains(r.stderr, "Error: ") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q, want %q", r.code, r.stderr, tc.want)
			}
		})
	}
}

func TestAddLocation(t *testing.T) {
	t.Parallel()
	emu, env := emulator(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "dagster_cloud.yaml")
	if err := os.WriteFile(file, []byte("locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    build: {registry: r.example/etl}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env["DAGSTER_CLOUD_LOCATION_LOAD_TIMEOUT"] = "30"
	r := run(t, env, "deployment", "add-location", "--deployment", "prod", "--location-file", file,
		"--location-name", "etl", "--image", "r.example/etl:v1", "--commit-hash", "abc", "--git-url", "https://x/tree/abc")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	prod, _ := emu.Deployment("prod")
	if len(prod.Locations) != 1 || prod.Locations[0].Document["image"] != "r.example/etl:v1" || prod.Locations[0].LoadStatus != "LOADED" {
		t.Errorf("prod = %+v", prod)
	}
	if !strings.Contains(r.stdout, "Location etl loaded.") {
		t.Errorf("stdout = %q", r.stdout)
	}
	r = run(t, env, "deployment", "add-location", "--deployment", "prod", "--location-file", file, "--location-name", "nope", "--image", "x")
	if r.code == 0 || !strings.Contains(r.stderr, `"nope"`) {
		t.Errorf("unknown location: %+v", r)
	}
}

func TestActionErrorAnnotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	if err := os.WriteFile(event, []byte(`{"ref":"refs/tags/v1","repository":{"full_name":"o/r"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": event,
		"INPUT_DAGSTER_CLOUD_API_TOKEN": "secret-token-value",
	})
	if r.code != 1 {
		t.Fatalf("exit %d", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var errs []string
	for _, l := range lines {
		if strings.HasPrefix(l, "::error") {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "push of tag v1 is not supported") {
		t.Errorf("annotations = %q", errs)
	}
	if !strings.HasPrefix(lines[0], "::add-mask::secret-token-value") {
		t.Errorf("the token was not masked first: %q", lines[0])
	}
}
