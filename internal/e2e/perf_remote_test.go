//go:build docker

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// TestPerfRemoteBuildkit runs the action with the builder input set to the
// test buildkitd (tcp:// with client certificates, builder_certs) and
// DOCKER_HOST pointing at nothing, so no Docker daemon can take part:
//   - both locations are built and pushed from BuildKit and deployed; the
//     one with `platform: linux/amd64,linux/arm64` is a manifest list of
//     both platforms in the registry;
//   - the registry cache is exported with mode=max: after buildkitd's
//     cache is pruned, a one-line code change rebuilds with the RUN step of
//     an intermediate stage (not in the final image) CACHED from the
//     registry; the unchanged multi-platform location is reused.
func TestPerfRemoteBuildkit(t *testing.T) {
	bk := testbed.BuildkitdFromEnv(t)
	n := nonce(t)
	marker := "deps-" + n
	s, ctx := newProject(t, 8*time.Minute, map[string]string{
		"dagster_cloud.yaml":         locationsYAML("svc", "multi"),
		"dagster_branch_deploy.yaml": "locations:\n  multi:\n    platform: linux/amd64,linux/arm64\n",
		"svc/busybox":                scenario.Busybox,
		"svc/definitions.py":         "# v1\n",
		"svc/Dockerfile": "FROM scratch AS deps\nCOPY busybox /bin/busybox\n" +
			"RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox mkdir -p /deps && echo " + marker + " > /deps/marker\"]\n\n" +
			"FROM scratch\nCOPY --from=deps /deps /deps\nCOPY definitions.py /opt/dagster/app/svc/definitions.py\n",
		"multi/definitions.py": "# multi " + n + "\n",
		"multi/Dockerfile":     "FROM scratch\nCOPY definitions.py /opt/dagster/app/multi/definitions.py\n",
	})
	// No Docker daemon: anything that tried one would fail.
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	inputs := map[string]string{"builder": bk.Host, "builder_certs": bk.CertPath}

	// 1. Built and pushed by buildkitd, deployed.
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, inputs)
	if res.ExitCode != 0 {
		t.Fatalf("run with the remote builder failed: %s", errorAnnotations(res.Stdout))
	}
	if !strings.Contains(res.Stdout, "Builder: remote BuildKit at "+bk.Host) || strings.Contains(res.Stdout, "Docker Engine") {
		t.Errorf("the run did not build on the remote BuildKit alone")
	}
	first := images(t, res)
	for _, loc := range []string{"svc", "multi"} {
		repo, tag, digest := splitRef(t, s, first[loc])
		if got, err := s.Registry.ManifestDigest(ctx, repo, tag); err != nil || got != digest {
			t.Errorf("registry: %s:%s = %s, %v; the output says %s", repo, tag, got, err, digest)
		}
	}
	dep := branchDeployment(t, s)
	if len(dep.Locations) != 2 {
		t.Errorf("deployed locations: %+v", dep.Locations)
	}
	for _, l := range dep.Locations {
		if ref, _, _ := strings.Cut(first[l.Name], "@"); l.Document["image"] != ref || l.LoadStatus != "LOADED" {
			t.Errorf("location %s: image %v (%s), want %s loaded", l.Name, l.Document["image"], l.LoadStatus, ref)
		}
	}

	// The multi-platform location is one manifest list of both platforms.
	repo, tag, _ := splitRef(t, s, first["multi"])
	index, mediaType := manifestOf(t, ctx, s, repo, tag)
	if mediaType != "application/vnd.oci.image.index.v1+json" && mediaType != "application/vnd.docker.distribution.manifest.list.v2+json" {
		t.Fatalf("%s:%s is %s, want a manifest list", repo, tag, mediaType)
	}
	var platforms []string
	manifests, _ := index["manifests"].([]any)
	for _, m := range manifests {
		p, _ := m.(map[string]any)["platform"].(map[string]any)
		if p != nil && p["os"] != "unknown" { // attestations are os "unknown"
			platforms = append(platforms, p["os"].(string)+"/"+p["architecture"].(string))
		}
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms of %s:%s = %v, want linux/amd64 and linux/arm64", repo, tag, platforms)
	}

	// The pull request's cache is a BuildKit registry cache.
	cache, _ := manifestOf(t, ctx, s, "acme/svc", "buildcache-changes")
	if cfg, _ := cache["config"].(map[string]any); cfg["mediaType"] != "application/vnd.buildkit.cacheconfig.v0" {
		t.Errorf("acme/svc:buildcache-changes holds %v, want a BuildKit cache manifest", cache)
	}

	// 2. buildkitd forgets the RUN step (and what was built on it; nothing
	// else: buildkitd is shared with tests running in parallel); a one-line
	// change rebuilds svc.
	forgetRemote(t, ctx, bk.Client(t), marker)
	writeFile(t, s.Workspace+"/svc/definitions.py", "# v2\n")
	if err := s.CommitAll("One line"); err != nil {
		t.Fatal(err)
	}
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", nil, inputs)
	if res.ExitCode != 0 {
		t.Fatalf("second run with the remote builder failed: %s", errorAnnotations(res.Stdout))
	}
	groups := buildGroups(t, res.Stdout)
	svc := groupOf(t, groups, "svc")
	if step := stepOf(t, svc.body, marker); !strings.Contains(svc.body, "\n"+step+" CACHED\n") {
		t.Errorf("after pruning buildkitd, the intermediate stage's RUN step (%s) was not CACHED from the registry cache:\n%s", step, svc.body)
	}
	if strings.Contains(res.Stdout, "::warning") {
		t.Errorf("warnings: %s", res.Stdout)
	}
	second := images(t, res)
	if _, _, d := splitRef(t, s, second["svc"]); d == strings.SplitN(first["svc"], "@", 2)[1] {
		t.Errorf("svc changed but its image did not: %s", second["svc"])
	}
	multi := groupOf(t, groups, "multi")
	if !strings.Contains(multi.body, "Reused ") || stepLineRE.MatchString(multi.body) {
		t.Errorf("the unchanged multi-platform location was not reused:\n%s", multi.body)
	}
	if _, _, d := splitRef(t, s, second["multi"]); d != strings.SplitN(first["multi"], "@", 2)[1] {
		t.Errorf("multi: %s, want the first run's manifest list %s", second["multi"], first["multi"])
	}
}

// forgetRemote prunes buildkitd's cache records whose description holds
// marker, and those built on them (see pruneCacheRecords).
func forgetRemote(t *testing.T, ctx context.Context, bkc *client.Client, marker string) {
	t.Helper()
	pruneCacheRecords(t, marker, func() []cacheRecord {
		du, err := bkc.DiskUsage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []cacheRecord
		for _, r := range du {
			out = append(out, cacheRecord{id: r.ID, description: r.Description, parents: r.Parents})
		}
		return out
	}, func(id string) error {
		return bkc.Prune(ctx, nil, client.PruneAll, client.WithFilter([]string{"id==" + id}))
	})
}
