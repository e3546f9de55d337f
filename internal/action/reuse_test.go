package action

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// reuseProject writes two locations whose Dockerfiles need no base image,
// so their inputs can be named.
func reuseProject(t *testing.T, h *harness) {
	t.Helper()
	ws := h.env["GITHUB_WORKSPACE"]
	writeTestFile(t, filepath.Join(ws, "dagster_cloud.yaml"), `defaults:
  build: {registry: r.example/acme/app}
locations:
  - {location_name: etl, code_source: {package_name: etl}, build: {directory: ./etl}}
  - {location_name: ml, code_source: {package_name: ml}, build: {directory: ./ml}}
`)
	for _, n := range []string{"etl", "ml"} {
		mkdirAll(t, filepath.Join(ws, n))
		writeTestFile(t, filepath.Join(ws, n, "Dockerfile"), "FROM scratch\nCOPY . /app\n")
		writeTestFile(t, filepath.Join(ws, n, "defs.py"), "# "+n+"\n")
		writeTestFile(t, filepath.Join(ws, n, ".dockerignore"), "*.log\n")
	}
}

// TestReuseAcrossRuns: a re-run with the same inputs builds nothing and
// tags the earlier images (the comment says where they came from); an
// mtime-only change or a change to an ignored file still reuses; a content
// change rebuilds that location only.
func TestReuseAcrossRuns(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	reuseProject(t, h)
	ws := h.env["GITHUB_WORKSPACE"]
	run := func(runID string) {
		t.Helper()
		h.env["GITHUB_RUN_ID"] = runID
		h.docker.mu.Lock()
		h.docker.specs = nil
		h.docker.mu.Unlock()
		if err := h.run(context.Background()); err != nil {
			t.Fatalf("run %s: %v\n%s", runID, err, h.out.String())
		}
	}
	run("100")
	if len(h.docker.specs) != 2 {
		t.Fatalf("first run built %d", len(h.docker.specs))
	}
	if tags := h.docker.spec(t, "etl").Tags; !slices.ContainsFunc(tags, func(tag string) bool { return strings.Contains(tag, ":inputs-") }) {
		t.Fatalf("no inputs tag among %v", tags)
	}

	// Same inputs; an mtime-only change and an ignored file.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(ws, "etl", "defs.py"), later, later); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(ws, "etl", "debug.log"), "noise")
	run("101")
	if len(h.docker.specs) != 0 {
		t.Errorf("re-run built %d images", len(h.docker.specs))
	}
	if img, ok := h.registry.images["r.example/acme/app:ec26c3e57ca3-101-1-etl"]; !ok || img.Labels["org.opencontainers.image.revision"] == "" {
		t.Errorf("this run's tag does not name the earlier image: %+v", h.registry.images)
	}
	if c := h.comment(t); !strings.Contains(c, "(reused from `ec26c3e57ca3`)") {
		t.Errorf("comment:\n%s", c)
	}

	// A content change rebuilds that location only.
	writeTestFile(t, filepath.Join(ws, "ml", "defs.py"), "# ml, changed\n")
	run("102")
	if len(h.docker.specs) != 1 || h.docker.specs[0].Labels["dev.dagster.location"] != "ml" {
		t.Errorf("after a change in ml, built %d: %+v", len(h.docker.specs), h.docker.specs)
	}

	// reuse: false builds everything.
	h.env["INPUT_REUSE"] = "false"
	run("103")
	if len(h.docker.specs) != 2 {
		t.Errorf("reuse: false built %d", len(h.docker.specs))
	}
}
