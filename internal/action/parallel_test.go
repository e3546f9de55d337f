package action

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/report"
)

// fourLocations writes a project of four locations in one registry.
func fourLocations(t *testing.T, h *harness, sameDir bool) {
	t.Helper()
	ws := h.env["GITHUB_WORKSPACE"]
	doc := "defaults:\n  build: {registry: r.example/acme/app}\nlocations:\n"
	for _, n := range []string{"a", "b", "c", "d"} {
		dir := "./" + n
		if sameDir {
			dir = "./shared"
		}
		doc += "  - {location_name: " + n + ", code_source: {package_name: " + n + "}, build: {directory: " + dir + "}}\n"
		mkdirAll(t, filepath.Join(ws, strings.TrimPrefix(dir, "./")))
	}
	writeTestFile(t, filepath.Join(ws, "dagster_cloud.yaml"), doc)
}

// TestParallelBuilds: builds run max_parallel at a time; each location's
// log is printed whole, as one group, never interleaved; progress lines say
// which location does what while builds run.
func TestParallelBuilds(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 2, 4} {
		h := newHarness(t, map[string]string{"max_parallel": strconv.Itoa(limit)})
		fourLocations(t, h, false)
		var running, most atomic.Int32
		h.docker.onBuild = func() {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(60 * time.Millisecond)
			running.Add(-1)
		}
		h.progressEvery = 20 * time.Millisecond
		if err := h.run(context.Background()); err != nil {
			t.Fatalf("max_parallel %d: %v\n%s", limit, err, h.out.String())
		}
		if int(most.Load()) != limit {
			t.Errorf("max_parallel %d: %d builds ran at once", limit, most.Load())
		}
		log := h.out.String()
		groups := regexp.MustCompile(`(?s)::group::Build (\w) → [^\n]*\n(.*?)::endgroup::`).FindAllStringSubmatch(log, -1)
		if len(groups) != 4 {
			t.Fatalf("max_parallel %d: %d groups:\n%s", limit, len(groups), log)
		}
		for _, g := range groups {
			for _, line := range strings.Split(g[2], "\n") {
				if m := regexp.MustCompile(`^#\d \[(\w)\]`).FindStringSubmatch(line); m != nil && m[1] != g[1] {
					t.Errorf("the group of %s holds a line of %s: %q", g[1], m[1], line)
				}
			}
			if strings.Count(g[2], "["+g[1]+"] step") != 3 {
				t.Errorf("the group of %s misses its steps:\n%s", g[1], g[2])
			}
		}
		if limit == 1 && !strings.Contains(log, "Still working (") {
			t.Errorf("no progress line:\n%s", log)
		}
	}
}

// TestParallelBuildFailure: one failing location does not stop the others:
// they finish, are pushed and reported, and nothing is deployed.
func TestParallelBuildFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"max_parallel": "4"})
	fourLocations(t, h, false)
	h.docker.buildErrFor = map[string]error{"b": errors.New("step 2/3 failed: exit code 1")}
	err := h.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "could not build code location(s) b,") {
		t.Fatalf("err = %v", err)
	}
	if n := len(h.docker.pushes); n != 6 { // a, c, d and their cache images
		t.Errorf("pushes %v", h.docker.pushes)
	}
	for _, d := range h.dagster.Deployments() {
		if len(d.Locations) > 0 {
			t.Errorf("deployed %+v", d)
		}
	}
	c := h.comment(t)
	for name, state := range map[string]report.State{"a": report.Pushed, "b": report.Failed, "c": report.Pushed, "d": report.Pushed} {
		if !strings.Contains(c, "| `"+name+"` | "+iconOf(state)) {
			t.Errorf("%s is not %s in the comment:\n%s", name, state, c)
		}
	}
}

// TestIdenticalBuildsRunOnce: locations with the same context, Dockerfile
// and settings are built once and tagged for each.
func TestIdenticalBuildsRunOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"cache": "false"})
	fourLocations(t, h, true)
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if len(h.docker.specs) != 1 {
		t.Fatalf("%d builds", len(h.docker.specs))
	}
	s := h.docker.specs[0]
	if len(s.Tags) != 4 || s.Labels["dev.dagster.location"] != "a,b,c,d" {
		t.Errorf("tags %v, label %q", s.Tags, s.Labels["dev.dagster.location"])
	}
	if len(h.docker.pushes) != 4 {
		t.Errorf("pushes %v", h.docker.pushes)
	}
	if !strings.Contains(h.out.String(), "Locations a, b, c, d have the same build") {
		t.Errorf("log:\n%s", h.out.String())
	}
	for _, d := range h.dagster.Deployments() {
		if d.Type == "BRANCH" && len(d.Locations) != 4 {
			t.Errorf("deployed %d locations", len(d.Locations))
		}
	}
}

func iconOf(s report.State) string {
	return map[report.State]string{report.Pushed: "📦", report.Failed: "❌", report.Loaded: "✅"}[s]
}

// TestImmutableCacheTags: a registry that refuses to overwrite tags (ECR's
// immutability) gets one clear warning, not one per location, and the
// deploy goes on.
func TestImmutableCacheTags(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	fourLocations(t, h, false)
	h.docker.pushErrFor = func(ref string) error {
		if strings.Contains(ref, ":buildcache") {
			return errors.New("tag invalid: The image tag 'buildcache-a' already exists in the 'acme/app' repository and cannot be overwritten because the repository is immutable. (ImageTagAlreadyExistsException)")
		}
		return nil
	}
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if n := strings.Count(h.out.String(), "keeps tags immutable"); n != 1 {
		t.Errorf("%d warnings:\n%s", n, h.out.String())
	}
}

// TestBranchDeploymentWhileBuilding: the branch deployment is brought up
// to date while the images build, not after.
func TestBranchDeploymentWhileBuilding(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var seen atomic.Bool
	h.docker.onBuild = func() {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for _, d := range h.dagster.Deployments() {
				if d.Type == "BRANCH" {
					seen.Store(true)
					return
				}
			}
		}
	}
	if err := h.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !seen.Load() {
		t.Error("the branch deployment was not created while the images built")
	}
}
