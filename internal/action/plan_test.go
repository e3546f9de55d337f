package action

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/github"
)

// TestPlan: what a run builds is decided without a builder: each location's
// image, tags (a location suffix when a registry is shared), cache
// references, and the location's build settings over the inputs.
func TestPlan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, d := range []string{"etl", "ml", "solo"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse(filepath.Join(dir, "dagster_cloud.yaml"), []byte(`locations:
  - location_name: etl
    code_source: {package_name: etl}
    build: {directory: ./etl, registry: r.example/acme/app}
  - location_name: ml
    code_source: {package_name: ml}
    build: {directory: ./ml, registry: docker.io/acme/app}
  - location_name: solo
    code_source: {package_name: solo}
    build: {directory: ./solo, registry: r.example/acme/solo}
  - location_name: pre
    code_source: {package_name: pre}
    image: ghcr.io/acme/pre:1
`))
	if err != nil {
		t.Fatal(err)
	}
	bc, err := config.ParseBuildConfig(filepath.Join(dir, "dagster_branch_deploy.yaml"), []byte("locations:\n  ml: {cache: false, target: gpu}\n"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ApplyBuildConfig(bc)
	p := &pipeline{
		cfg: cfg, projectDir: dir,
		plat: github.NewActions(func(string) string { return "" }, io.Discard, io.Discard, nil),
		in:   Inputs{Dockerfile: "Dockerfile", Platform: "linux/amd64", Cache: true, Push: true, Target: "runtime", BuildArgs: map[string]string{"A": "1"}},
		ci:   &cicontext.Context{RunID: "9", RunAttempt: "2", RepoURL: "https://github.com/acme/repo", Branch: "feature", Commit: cicontext.Commit{SHA: strings.Repeat("ab", 20)}},
	}
	pl, err := p.plan(cfg.Locations)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.jobs) != 3 || len(pl.prebuilt) != 1 || pl.images["pre"] != "ghcr.io/acme/pre:1" {
		t.Fatalf("plan = %+v", pl)
	}
	tests := []struct {
		job                  *job
		ref, host, target    string
		cacheFrom, extraTags []string
	}{
		// r.example/acme/app is not docker.io/acme/app: each is alone.
		{pl.jobs[0], "r.example/acme/app:abababababab-9-2", "r.example", "runtime", []string{"r.example/acme/app:buildcache"}, []string{"r.example/acme/app:buildcache"}},
		{pl.jobs[1], "docker.io/acme/app:abababababab-9-2", "docker.io", "gpu", nil, nil},
		{pl.jobs[2], "r.example/acme/solo:abababababab-9-2", "r.example", "runtime", []string{"r.example/acme/solo:buildcache"}, []string{"r.example/acme/solo:buildcache"}},
	}
	for _, tc := range tests {
		j := tc.job
		if j.ref != tc.ref || j.host != tc.host || j.spec.Target != tc.target || !slices.Equal(j.spec.CacheFrom, tc.cacheFrom) || !slices.Equal(j.cacheRefs(), tc.extraTags) {
			t.Errorf("%s: ref %s host %s target %s cache %v tags %v", j.loc.Name, j.ref, j.host, j.spec.Target, j.spec.CacheFrom, j.spec.Tags)
		}
		if j.spec.Labels["dev.dagster.location"] != j.loc.Name || j.spec.BuildArgs["A"] != "1" || !strings.HasSuffix(j.spec.ContextDir, j.loc.Name) {
			t.Errorf("%s: spec %+v", j.loc.Name, j.spec)
		}
	}

	// Two locations in one repository are told apart by a suffix.
	cfg2, _ := config.Parse("dagster_cloud.yaml", []byte("defaults:\n  build: {registry: r.example/acme/app}\nlocations:\n  - {location_name: etl, code_source: {package_name: etl}, build: {directory: ./etl}}\n  - {location_name: ml, code_source: {package_name: ml}, build: {directory: ./ml}}\n"))
	p.cfg = cfg2
	pl, err = p.plan(cfg2.Locations)
	if err != nil {
		t.Fatal(err)
	}
	if pl.jobs[0].ref != "r.example/acme/app:abababababab-9-2-etl" || pl.jobs[1].cacheRefs()[0] != "r.example/acme/app:buildcache-ml" {
		t.Errorf("shared: %s, %v", pl.jobs[0].ref, pl.jobs[1].spec.Tags)
	}

	// A pull request's branch writes its own cache and reads the default
	// branch's too; a long branch name stays a valid, distinct tag.
	p.ci.Mode, p.ci.Branch = cicontext.ModeBranch, "feature/"+strings.Repeat("x", 200)
	pl, err = p.plan(cfg2.Locations)
	if err != nil {
		t.Fatal(err)
	}
	own := pl.jobs[0].cacheRefs()[0]
	if !strings.HasPrefix(own, "r.example/acme/app:buildcache-feature-xxx") || len(own[strings.LastIndex(own, ":")+1:]) > 128 ||
		!slices.Equal(pl.jobs[0].spec.CacheFrom, []string{own, "r.example/acme/app:buildcache-etl"}) {
		t.Errorf("branch cache: writes %s, reads %v", own, pl.jobs[0].spec.CacheFrom)
	}
}
