package action

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

var update = flag.Bool("update", false, "rewrite testdata/errors/*.golden")

// TestErrorGoldens: what a user reads when a run fails (the ::error
// annotation's title, file, line and message) is kept in golden files:
// go test ./internal/action -run TestErrorGoldens -update rewrites them.
func TestErrorGoldens(t *testing.T) {
	t.Parallel()
	yaml := func(body string) func(t *testing.T, h *harness) {
		return func(t *testing.T, h *harness) {
			writeTestFile(t, filepath.Join(h.env["GITHUB_WORKSPACE"], "dagster_cloud.yaml"), body)
		}
	}
	tests := []struct {
		name   string
		inputs map[string]string
		setup  func(t *testing.T, h *harness)
	}{
		{"missing-token", map[string]string{"dagster_cloud_api_token": ""}, nil},
		{"unknown-key", nil, yaml("locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    bulid: {registry: r.example/acme/app}\n")},
		{"context-outside", nil, yaml("locations:\n  - location_name: etl\n    code_source: {package_name: etl}\n    build:\n      registry: r.example/acme/app\n      directory: ../..\n")},
		{"control-character", nil, yaml("locations:\n  - location_name: \"etl\\n::error::forged\"\n    code_source: {package_name: etl}\n    build: {registry: r.example/acme/app}\n")},
		{"invalid-utf8", nil, yaml("locations:\n  - location_name: \xff\xfe\n")},
		{"unknown-location", map[string]string{"location_names": "etl,nope"}, nil},
		{"project-dir-outside", map[string]string{"project_dir": "../.."}, nil},
		{"forged-sha", nil, func(t *testing.T, h *harness) {
			raw := readFile(t, h.env["GITHUB_EVENT_PATH"])
			writeTestFile(t, h.env["GITHUB_EVENT_PATH"], strings.Replace(raw, `"sha": "`+ourSHA+`"`, `"sha": "--upload-pack=touch /tmp/pwned"`, 1))
		}},
		{"token-rejected", map[string]string{"dagster_cloud_api_token": "agent:acme:0000000000000000000000000000dead"}, nil},
		{"retry-after-too-long", nil, func(t *testing.T, h *harness) {
			h.dagster.InjectFault(dagsteremu.Fault{Status: 503, RetryAfter: "3600", Body: "overloaded"})
		}},
		{"build-failed", nil, func(t *testing.T, h *harness) {
			h.docker.buildErr = errors.New("building etl: step 2/3 RUN pip install -r requirements.txt failed: exit code 1:\nERROR: No matching distribution found for dagster-pandass")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.inputs)
			h.now = func() time.Time { return time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC) }
			if tc.setup != nil {
				tc.setup(t, h)
			}
			err := h.run(context.Background())
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			file := ae.File
			if rel, rerr := filepath.Rel(h.env["GITHUB_WORKSPACE"], file); rerr == nil && file != "" {
				file = rel
			}
			got := fmt.Sprintf("title: %s\nfile: %s\nline: %d\n\n%s\n", ae.Title, file, ae.Line, ae.Msg)
			got = normalise(got, h)
			path := filepath.Join("testdata", "errors", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs:\n--- got ---\n%s--- want ---\n%s", path, got, want)
			}
		})
	}
}

var port = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)

// normalise replaces what differs between runs: temporary directories and
// the emulators' ports.
func normalise(s string, h *harness) string {
	ws := h.env["GITHUB_WORKSPACE"]
	real, _ := filepath.EvalSymlinks(ws)
	for _, dir := range []string{real, ws} {
		s = strings.ReplaceAll(s, dir, "$GITHUB_WORKSPACE")
		s = strings.ReplaceAll(s, filepath.Dir(dir), "$RUNNER")
		s = strings.ReplaceAll(s, filepath.Dir(filepath.Dir(dir)), "$TMP")
	}
	return port.ReplaceAllLiteralString(s, "127.0.0.1:$PORT")
}
