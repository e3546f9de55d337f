//go:build docker

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

const pipToken = "pip-token-very-secret-42"

// TestBuildFeatures runs the action on a location that needs BuildKit: a
// private FROM image, a Dockerfile at another path, build args, a target,
// a secret mount, a cache mount, COPY --chmod, extra labels and the
// registry cache.
func TestBuildFeatures(t *testing.T) {
	testbed.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s, err := scenario.New(ctx, t.TempDir(), "buildkit")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	docker, err := imagebuild.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	auth := registry.AuthConfig{Username: scenario.RegistryUser, Password: scenario.RegistryPassword, ServerAddress: s.Registry.Addr}
	base := pushBusyboxBase(t, ctx, docker, auth, s.Registry.Addr+"/acme/base:busybox")

	inputs := map[string]string{
		"build_args":    "GREETING=hello from the PR",
		"build_secrets": "pip_token=" + pipToken,
		"labels":        "team=data\ncost-center=42",
	}
	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, inputs)
	if res.ExitCode != 0 {
		t.Fatalf("run failed: %s", errorAnnotations(res.Stdout))
	}
	if strings.Contains(res.Stdout, "this stage must not run") {
		t.Error("the stage after the target was built")
	}
	var images map[string]string
	if err := json.Unmarshal([]byte(res.Outputs["images"]), &images); err != nil {
		t.Fatal(err)
	}
	ref, _, _ := strings.Cut(images["warehouse"], "@")
	if ref == "" {
		t.Fatalf("images = %v", images)
	}

	// What the RUN steps wrote, read from a container of the built image.
	out := runInImage(t, ctx, docker, ref, "/bin/busybox", "sh", "-c",
		"cat /app/greeting /app/token.sha /app/cache-runs; /bin/busybox stat -c %a /app/entrypoint.sh")
	sum := sha256.Sum256([]byte(pipToken))
	for _, want := range []string{"hello from the PR", hex.EncodeToString(sum[:]), "run", "755"} {
		if !strings.Contains(out, want) {
			t.Errorf("image content lacks %q:\n%s", want, out)
		}
	}
	// The secret reached the build but is not stored in the image.
	hist, err := docker.ImageHistory(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	histJSON, _ := json.Marshal(hist)
	inspect, err := docker.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	inspectJSON, _ := json.Marshal(inspect)
	if bytes.Contains(histJSON, []byte(pipToken)) || bytes.Contains(inspectJSON, []byte(pipToken)) {
		t.Error("the build secret is stored in the image")
	}
	tag := ref[strings.LastIndex(ref, ":")+1:]
	labels, err := s.Registry.ImageLabels(ctx, "acme/warehouse", tag)
	if err != nil {
		t.Fatal(err)
	}
	if labels["team"] != "data" || labels["cost-center"] != "42" || labels["org.opencontainers.image.revision"] != s.HeadSHA {
		t.Errorf("labels = %v", labels)
	}
	// The pull request's own registry cache was pushed for the next run.
	if _, err := s.Registry.ManifestDigest(ctx, "acme/warehouse", "buildcache-changes"); err != nil {
		t.Errorf("no buildcache tag in the registry: %v", err)
	}
	// The base was resolved in the private registry with the location's
	// credentials (it was removed locally after the push).
	if !strings.Contains(res.Stdout, "load metadata for "+base) {
		t.Errorf("the build did not resolve %s in the registry", base)
	}

	// A second run on a new commit reuses the cache mount's layer chain
	// (with reuse off: with the same inputs it would tag the first image).
	if err := s.Commit("Second commit"); err != nil {
		t.Fatal(err)
	}
	inputs["reuse"] = "false"
	res = runAction(t, ctx, s, "pull_request", "pull_request.synchronize.json", nil, inputs)
	if res.ExitCode != 0 {
		t.Fatalf("second run failed: %s", errorAnnotations(res.Stdout))
	}
	if !strings.Contains(res.Stdout, "CACHED") {
		t.Errorf("the second build reused nothing:\n%s", res.Stdout)
	}
}

// pushBusyboxBase pushes a base image holding a static busybox to the
// registry and removes it locally, so that a build must pull it with
// credentials.
func pushBusyboxBase(t *testing.T, ctx context.Context, docker *client.Client, auth registry.AuthConfig, ref string) string {
	t.Helper()
	dir := testbed.BusyboxContext(t, "FROM scratch\nCOPY busybox /bin/busybox\n")
	b := imagebuild.NewBuilder(docker, nil)
	if _, err := b.Build(ctx, imagebuild.Spec{ContextDir: dir, Tags: []string{ref}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Push(ctx, ref, auth); err != nil {
		t.Fatal(err)
	}
	if _, err := docker.ImageRemove(ctx, ref, image.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	return ref
}

func runInImage(t *testing.T, ctx context.Context, docker *client.Client, ref string, cmd ...string) string {
	t.Helper()
	created, err := docker.ContainerCreate(ctx, &container.Config{Image: ref, Entrypoint: cmd[:1], Cmd: cmd[1:]}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer docker.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := docker.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case err := <-errC:
		t.Fatal(err)
	case <-waitC:
	}
	logs, err := docker.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		t.Fatal(err)
	}
	return stdout.String() + stderr.String()
}
