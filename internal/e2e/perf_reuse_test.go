//go:build docker

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

// TestPerfReuseAcrossRuns: a re-run of the same commit (a new run id) after
// an mtime-only change and a change to a .dockerignore'd file builds
// nothing: each location's image of the first run is tagged for this run
// in the registry (same digests), the log says Reused with no BuildKit
// step, and the comment says "reused from <commit>". A content change in
// one location then rebuilds that location only.
func TestPerfReuseAcrossRuns(t *testing.T) {
	testbed.Docker(t)
	locs := []string{"alpha", "beta"}
	n := nonce(t) // no cache or inputs tag of an earlier test run
	files := map[string]string{"dagster_cloud.yaml": locationsYAML(locs...)}
	for _, loc := range locs {
		files[loc+"/.dockerignore"] = "*.log\nscratch/\n"
		files[loc+"/Dockerfile"] = "FROM scratch\nCOPY . /opt/dagster/app/\n"
		files[loc+"/definitions.py"] = "# " + loc + " " + n + "\n"
		files[loc+"/debug.log"] = "ignored\n"
	}
	s, ctx := newProject(t, 5*time.Minute, files)
	first := s.HeadSHA

	// 1. The first run builds both.
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, nil)
	if res.ExitCode != 0 {
		t.Fatalf("first run failed: %s", errorAnnotations(res.Stdout))
	}
	built := images(t, res)
	for _, loc := range locs {
		g := groupOf(t, buildGroups(t, res.Stdout), loc)
		if !stepLineRE.MatchString(g.body) || strings.Contains(g.body, "Reused") {
			t.Errorf("the first run did not build %s:\n%s", loc, g.body)
		}
	}

	// 2. Same commit, new run: touched files and an ignored file changed.
	later := time.Now().Add(time.Hour)
	for _, loc := range locs {
		for _, f := range []string{"definitions.py", "Dockerfile"} {
			if err := os.Chtimes(filepath.Join(s.Workspace, loc, f), later, later); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeFile(t, filepath.Join(s.Workspace, "alpha", "debug.log"), "changed, and ignored\n")
	if err := os.MkdirAll(filepath.Join(s.Workspace, "beta", "scratch"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.Workspace, "beta", "scratch", "notes.txt"), "new, and ignored\n")
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", nil, nil)
	if res.ExitCode != 0 {
		t.Fatalf("re-run failed: %s", errorAnnotations(res.Stdout))
	}
	reused := images(t, res)
	groups := buildGroups(t, res.Stdout)
	for _, loc := range locs {
		g := groupOf(t, groups, loc)
		if !strings.Contains(g.body, "Reused ") || !strings.Contains(g.body, "nothing was built") {
			t.Errorf("the re-run did not reuse %s:\n%s", loc, g.body)
		}
		if stepLineRE.MatchString(g.body) || strings.Contains(g.body, "Pushing ") {
			t.Errorf("the re-run built or pushed %s:\n%s", loc, g.body)
		}
		repo, tag, digest := splitRef(t, s, reused[loc])
		_, oldTag, oldDigest := splitRef(t, s, built[loc])
		if tag == oldTag {
			t.Errorf("the re-run of %s has the first run's tag %s", loc, tag)
		}
		if digest != oldDigest {
			t.Errorf("%s: re-run image %s, want the first run's digest %s", loc, reused[loc], oldDigest)
		}
		if got, err := s.Registry.ManifestDigest(ctx, repo, tag); err != nil || got != oldDigest {
			t.Errorf("registry: %s:%s = %s, %v; want the first run's %s", repo, tag, got, err, oldDigest)
		}
		if row := commentRow(t, s, loc); !strings.Contains(row, "reused from `"+first[:12]+"`") {
			t.Errorf("comment row of %s does not say reused from %s: %s", loc, first[:12], row)
		}
	}
	dep := branchDeployment(t, s)
	for _, l := range dep.Locations {
		ref, _, _ := strings.Cut(reused[l.Name], "@")
		if l.Document["image"] != ref {
			t.Errorf("deployed image of %s = %v, want this run's %s", l.Name, l.Document["image"], ref)
		}
	}

	// 3. A content change in alpha: alpha is built, beta reused.
	writeFile(t, filepath.Join(s.Workspace, "alpha", "definitions.py"), "# alpha "+n+", changed\n")
	if err := s.CommitAll("Change alpha"); err != nil {
		t.Fatal(err)
	}
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", nil, nil)
	if res.ExitCode != 0 {
		t.Fatalf("run after the change failed: %s", errorAnnotations(res.Stdout))
	}
	after := images(t, res)
	groups = buildGroups(t, res.Stdout)
	if g := groupOf(t, groups, "alpha"); !stepLineRE.MatchString(g.body) || strings.Contains(g.body, "Reused") {
		t.Errorf("alpha changed but was not built:\n%s", g.body)
	}
	if g := groupOf(t, groups, "beta"); !strings.Contains(g.body, "Reused ") || stepLineRE.MatchString(g.body) {
		t.Errorf("beta did not change but was built:\n%s", g.body)
	}
	_, _, alphaNow := splitRef(t, s, after["alpha"])
	_, _, alphaBefore := splitRef(t, s, built["alpha"])
	_, _, betaNow := splitRef(t, s, after["beta"])
	_, _, betaBefore := splitRef(t, s, built["beta"])
	if alphaNow == alphaBefore {
		t.Errorf("alpha's image did not change: %s", alphaNow)
	}
	if betaNow != betaBefore {
		t.Errorf("beta's image changed: %s, was %s", betaNow, betaBefore)
	}
	if row := commentRow(t, s, "alpha"); strings.Contains(row, "reused") {
		t.Errorf("comment row of alpha says reused: %s", row)
	}
	if row := commentRow(t, s, "beta"); !strings.Contains(row, "reused from `"+first[:12]+"`") {
		t.Errorf("comment row of beta does not say reused from %s: %s", first[:12], row)
	}
}
