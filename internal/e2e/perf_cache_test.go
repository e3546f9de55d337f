//go:build docker

package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// TestPerfBranchCache: a push to the default branch writes the registry
// cache <registry>:buildcache; a pull request run on a runner that has
// nothing cached (the daemon's build cache and images are removed) then
// reads it, so its expensive RUN step is CACHED, and writes only its own
// buildcache-<branch>: the default branch's cache tag still points at what
// the default branch wrote.
func TestPerfBranchCache(t *testing.T) {
	testbed.Docker(t)
	n := nonce(t)
	marker := "expensive-" + n
	s, ctx := newProject(t, 6*time.Minute, map[string]string{
		"dagster_cloud.yaml":       locationsYAML("warehouse"),
		"warehouse/busybox":        scenario.Busybox,
		"warehouse/definitions.py": "# v1\n",
		"warehouse/Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\n" +
			"RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep 2 && echo " + marker + " > /expensive\"]\n" +
			"COPY definitions.py /opt/dagster/app/warehouse/definitions.py\n",
	})
	repo := "acme/warehouse"
	cacheRef := s.Registry.Addr + "/" + repo + ":buildcache"

	// 1. A push to the default branch builds and writes buildcache.
	res := runAction(t, ctx, s, "push", "push.default-branch.json", nil, nil)
	if res.ExitCode != 0 {
		t.Fatalf("push run failed: %s", errorAnnotations(res.Stdout))
	}
	if g := groupOf(t, buildGroups(t, res.Stdout), "warehouse"); strings.Contains(g.body, "\n"+stepOf(t, g.body, marker)+" CACHED") {
		t.Fatalf("the first build found its RUN step cached already:\n%s", g.body)
	}
	tags, err := s.Registry.Tags(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tags, "buildcache") {
		t.Fatalf("the default branch wrote no buildcache tag: %v", tags)
	}
	for _, tag := range tags {
		if strings.HasPrefix(tag, "buildcache-") {
			t.Errorf("the default branch wrote a branch cache %s", tag)
		}
	}
	mainCache, err := s.Registry.ManifestDigest(ctx, repo, "buildcache")
	if err != nil {
		t.Fatal(err)
	}

	// A fresh runner: nothing of the first build is left in the daemon.
	forgetBuilds(t, ctx, s, marker)

	// 2. A pull request with a code change reads the default branch's
	// cache and writes only its own.
	writeFile(t, filepath.Join(s.Workspace, "warehouse", "definitions.py"), "# v2\n")
	if err := s.CommitAll("Change the warehouse"); err != nil {
		t.Fatal(err)
	}
	res = runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, nil)
	if res.ExitCode != 0 {
		t.Fatalf("pull request run failed: %s", errorAnnotations(res.Stdout))
	}
	g := groupOf(t, buildGroups(t, res.Stdout), "warehouse")
	if !strings.Contains(g.body, "importing cache manifest from "+cacheRef+"\n") {
		t.Errorf("the pull request build did not import the default branch's cache %s:\n%s", cacheRef, g.body)
	}
	// CACHED, and its layer pulled: it came from the registry.
	if step := stepOf(t, g.body, marker); !strings.Contains(g.body, "\n"+step+" CACHED\n") || !strings.Contains(g.body, "\n"+step+" pulling sha256:") {
		t.Errorf("the expensive RUN step (%s) was not CACHED from %s:\n%s", step, cacheRef, g.body)
	}
	if strings.Contains(g.body, "Pushing "+cacheRef+"\n") {
		t.Errorf("the pull request pushed the default branch's cache:\n%s", g.body)
	}
	tags, err = s.Registry.Tags(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tags, "buildcache-changes") {
		t.Errorf("the pull request wrote no buildcache-changes: %v", tags)
	}
	if d, err := s.Registry.ManifestDigest(ctx, repo, "buildcache"); err != nil || d != mainCache {
		t.Errorf("the default branch's buildcache is now %s (%v), was %s: the pull request overwrote it", d, err, mainCache)
	}
	prImage := images(t, res)["warehouse"]
	_, _, prDigest := splitRef(t, s, prImage)
	if d, err := s.Registry.ManifestDigest(ctx, repo, "buildcache-changes"); err != nil || d != prDigest {
		t.Errorf("buildcache-changes = %s (%v), want the pull request's image %s", d, err, prDigest)
	}
}

// forgetBuilds removes the images of the scenario's registry from the
// daemon, and the build cache records whose description holds marker (the
// expensive RUN step's), as on a fresh runner: that step can then only come
// from the registry. It prunes nothing else: the daemon is shared with
// tests running in parallel.
func forgetBuilds(t *testing.T, ctx context.Context, s *scenario.Scenario, marker string) {
	t.Helper()
	docker, err := imagebuild.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	list, err := docker.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range list {
		for _, tag := range img.RepoTags {
			if strings.HasPrefix(tag, s.Registry.Addr+"/") {
				if _, err := docker.ImageRemove(ctx, tag, image.RemoveOptions{Force: true}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	pruneCacheRecords(t, marker, func() []cacheRecord {
		du, err := docker.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.BuildCacheObject}})
		if err != nil {
			t.Fatal(err)
		}
		var out []cacheRecord
		for _, r := range du.BuildCache {
			out = append(out, cacheRecord{id: r.ID, description: r.Description, parents: append([]string{r.Parent}, r.Parents...)})
		}
		return out
	}, func(id string) error {
		_, err := docker.BuildCachePrune(ctx, build.CachePruneOptions{All: true, Filters: filters.NewArgs(filters.Arg("id", id))})
		return err
	})
}

// cacheRecord is a build cache record of dockerd or buildkitd.
type cacheRecord struct {
	id, description string
	parents         []string
}

// pruneCacheRecords prunes, with prune, the cache records list gives whose
// description holds marker and those built on them (the layers of later
// steps, which hold them), until none is left; nothing else, since the
// daemons are shared with tests running in parallel. A record is pruned
// once nothing holds it, so children go in earlier rounds.
func pruneCacheRecords(t *testing.T, marker string, list func() []cacheRecord, prune func(id string) error) {
	t.Helper()
	ours := func() []cacheRecord {
		all := list()
		in := map[string]bool{}
		for _, r := range all {
			if strings.Contains(r.description, marker) {
				in[r.id] = true
			}
		}
		for grew := true; grew; {
			grew = false
			for _, r := range all {
				if !in[r.id] && slices.ContainsFunc(r.parents, func(p string) bool { return in[p] }) {
					in[r.id], grew = true, true
				}
			}
		}
		var out []cacheRecord
		for _, r := range all {
			if in[r.id] {
				out = append(out, r)
			}
		}
		return out
	}
	left := ours()
	if len(left) == 0 {
		t.Fatalf("no build cache record mentions %s", marker)
	}
	for round := 0; len(left) > 0 && round < 5; round++ {
		for _, r := range left {
			if err := prune(r.id); err != nil {
				t.Fatalf("pruning build cache record %s (%s): %v", r.id, r.description, err)
			}
		}
		left = ours()
	}
	for _, r := range left {
		t.Errorf("build cache record %s (%s) survived the prune", r.id, r.description)
	}
	if len(left) > 0 {
		t.FailNow()
	}
}
