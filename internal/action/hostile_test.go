package action

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

// TestBuildContextOutsideTheProject: a build.directory that leaves the
// project (here: a symlink committed to point at the runner's home) fails
// before anything is built, at its line of dagster_cloud.yaml.
func TestBuildContextOutsideTheProject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		setup      func(t *testing.T, ws, home string)
		line       int
		input      string // the InputError's input, when it is one
	}{
		{"dot-dot", "locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    build:\n      registry: r.example/acme/app\n      directory: ../home\n", nil, 6, ""},
		{"absolute", "locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    build:\n      registry: r.example/acme/app\n      directory: %HOME%\n", nil, 6, ""},
		{"symlink to the home", "locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    build: {registry: r.example/acme/app, directory: ./etl}\n",
			func(t *testing.T, ws, home string) { symlink(t, home, filepath.Join(ws, "etl")) }, 4, ""},
		{"symlink to an ancestor", "locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    build: {registry: r.example/acme/app, directory: ./up/home}\n",
			func(t *testing.T, ws, home string) { symlink(t, "..", filepath.Join(ws, "up")) }, 4, ""},
		{"Dockerfile symlink to a key", "locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    build:\n      registry: r.example/acme/app\n      dockerfile: Dockerfile.key\n",
			func(t *testing.T, ws, home string) {
				symlink(t, filepath.Join(home, "id_rsa"), filepath.Join(ws, "Dockerfile.key"))
			}, 6, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			ws := h.env["GITHUB_WORKSPACE"]
			home := filepath.Join(filepath.Dir(ws), "home")
			if err := os.MkdirAll(home, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(home, "id_rsa"), []byte("PRIVATE KEY"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, ws, home)
			}
			writeTestFile(t, filepath.Join(ws, "dagster_cloud.yaml"), strings.ReplaceAll(tc.yaml, "%HOME%", home))
			err := h.run(context.Background())
			var ae *Error
			if !errors.As(err, &ae) || ae.Line != tc.line || !strings.HasSuffix(ae.File, "dagster_cloud.yaml") || !strings.Contains(ae.Msg, "must be inside the project directory") {
				t.Fatalf("err = %#v, want an error at dagster_cloud.yaml:%d", err, tc.line)
			}
			if len(h.docker.specs) != 0 || len(h.docker.pushes) != 0 {
				t.Errorf("built %d and pushed %v", len(h.docker.specs), h.docker.pushes)
			}
			if strings.Contains(h.out.String()+h.comment(t), "PRIVATE KEY") {
				t.Error("the key's content was shown")
			}
		})
	}
	// project_dir and dagster_cloud_yaml_path cannot leave the workspace.
	for input, value := range map[string]string{"project_dir": "..", "dagster_cloud_yaml_path": "../../etc/passwd"} {
		h := newHarness(t, map[string]string{input: value})
		err := h.run(context.Background())
		var ie *InputError
		if !errors.As(err, &ie) || ie.Input != input || !strings.Contains(err.Error(), "inside the repository checkout") {
			t.Errorf("%s=%s: err = %v", input, value, err)
		}
	}
}

// TestLogLinesAreInert: values from the configuration and from API answers
// reach the log escaped, so none of them starts or holds a workflow command.
func TestLogLinesAreInert(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	forged := "x\n::error::forged\n::add-mask::%x ##[warning]legacy"
	body := fmt.Sprintf(`{"data":{"createOrUpdateBranchDeployment":{"__typename":"DagsterCloudDeployment","deploymentId":7,"deploymentName":%q}}}`, forged)
	h.dagster.InjectFault(dagsteremu.Fault{Operation: "CliCreateOrUpdateBranchDeployment", Status: 200, Body: body})
	_ = h.run(context.Background()) // the deployment with that name does not exist: it fails later
	for _, line := range strings.Split(h.out.String(), "\n") {
		l := strings.TrimSpace(line)
		// The legacy ##[command] form is found anywhere in a plain line; in a
		// workflow command's data (after the runner parsed the ::command) it
		// is text.
		if strings.HasPrefix(l, "::error::forged") || strings.HasPrefix(l, "::add-mask::%x") || !strings.HasPrefix(l, "::") && strings.Contains(l, "##[warning]") {
			t.Errorf("a value became a workflow command: %q\n%s", line, h.out.String())
		}
	}
	if !strings.Contains(h.out.String(), "x%0A::error::forged%0A::add-mask::%25x ##%5Bwarning]legacy") {
		t.Errorf("the deployment name is not in the log, escaped:\n%s", h.out.String())
	}
}

// TestErrorBodiesThatEchoSecrets: an API or registry error body that echoes
// the request (its token raw, in base64, percent-encoded, JSON-escaped, or
// the token's secret part alone) leaks it nowhere.
func TestErrorBodiesThatEchoSecrets(t *testing.T) {
	t.Parallel()
	secretPart := agentToken[strings.LastIndex(agentToken, ":")+1:]
	echo := func(v string) string {
		return fmt.Sprintf(`raw=%s b64=%s url=%s json=%q part=%s`, v, base64.StdEncoding.EncodeToString([]byte(v)), url.QueryEscape(v), v, secretPart)
	}
	leaks := func(text string) []string {
		var found []string
		for _, s := range []string{agentToken, secretPart, base64.StdEncoding.EncodeToString([]byte(agentToken)), url.QueryEscape(agentToken),
			"registry-pass-5678", base64.StdEncoding.EncodeToString([]byte("robot:registry-pass-5678"))} {
			if strings.Contains(text, s) {
				found = append(found, s)
			}
		}
		return found
	}
	t.Run("Dagster+", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, map[string]string{"dagster_cloud_api_token": agentToken})
		h.dagster.InjectFault(dagsteremu.Fault{Operation: "CliDeployLocations", Status: 400, Body: `{"message":"bad request","echo":"` + strings.ReplaceAll(echo(agentToken), `"`, `'`) + `"}`})
		err := h.run(context.Background())
		if err == nil {
			t.Fatal("no error")
		}
		checkNoLeak(t, h, err, leaks)
	})
	t.Run("registry", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, map[string]string{"dagster_cloud_api_token": agentToken, "registry_username": "robot", "registry_password": "registry-pass-5678"})
		h.docker.pushErr = errors.New("unauthorized: Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("robot:registry-pass-5678")) + " " + echo("registry-pass-5678"))
		err := h.run(context.Background())
		if err == nil {
			t.Fatal("no error")
		}
		checkNoLeak(t, h, err, leaks)
	})
}

// TestGitHubErrorEchoesToken: a GitHub error body that echoes the request's
// Authorization header (raw or base64) shows up redacted in the warning.
func TestGitHubErrorEchoesToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/comments") {
			auth := r.Header.Get("Authorization")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"message":"rejected request with %s (%s)"}`, auth, base64.StdEncoding.EncodeToString([]byte(auth)))
			return
		}
		h.github.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	h.env["GITHUB_API_URL"] = srv.URL + "/api/v3"
	if err := h.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := h.out.String()
	if !strings.Contains(log, "::warning::Could not write the pull request comment") || !strings.Contains(log, "rejected request with Bearer ***") {
		t.Fatalf("no redacted warning:\n%s", log)
	}
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") && (strings.Contains(line, "gh-token-1234") || strings.Contains(line, base64.StdEncoding.EncodeToString([]byte("Bearer gh-token-1234")))) {
			t.Errorf("the token leaks: %s", line)
		}
	}
}

func checkNoLeak(t *testing.T, h *harness, err error, leaks func(string) []string) {
	t.Helper()
	// The runner hides ::add-mask:: lines: they are how it learns the secrets.
	var log []string
	for _, line := range strings.Split(h.out.String(), "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			log = append(log, line)
		}
	}
	for where, text := range map[string]string{"error": err.Error(), "log": strings.Join(log, "\n"), "comment": h.comment(t),
		"summary": readFile(t, h.env["GITHUB_STEP_SUMMARY"]), "outputs": readFile(t, h.env["GITHUB_OUTPUT"])} {
		if l := leaks(text); len(l) > 0 {
			t.Errorf("the %s leaks %q:\n%s", where, l, text)
		}
	}
	if !strings.Contains(err.Error(), "***") {
		t.Errorf("the error shows no redaction, so the echo did not reach it: %v", err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdirAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
