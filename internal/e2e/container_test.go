//go:build docker

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// TestContainerContract builds the action's image from the repository's
// Dockerfile (its final stage, with a binary built here) and runs it the
// way GitHub runs a Docker action, through a pull request's life.
func TestContainerContract(t *testing.T) {
	testbed.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	docker, err := imagebuild.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := buildActionImage(t, ctx)

	inspect, err := docker.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("action image %s: %.1f MB", ref, float64(inspect.Size)/1e6)
	cfg := inspect.Config
	if !slices.Equal(cfg.Entrypoint, []string{"/dagster-branch-deploy"}) || cfg.User != "" || (cfg.WorkingDir != "" && cfg.WorkingDir != "/") || len(cfg.Cmd) != 0 {
		t.Errorf("image config: entrypoint %q, user %q, workdir %q, cmd %q", cfg.Entrypoint, cfg.User, cfg.WorkingDir, cfg.Cmd)
	}
	if inspect.Size > 60e6 {
		t.Errorf("the image is %d bytes; it should hold only the binary and CA certificates", inspect.Size)
	}

	s, err := scenario.New(ctx, t.TempDir(), "quickstart")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	run := func(eventName, file string) *scenario.Result {
		t.Helper()
		path, err := s.Event(file, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.RunContainer(ctx, docker, ref, eventName, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s in the container exited %d\n--- stdout ---\n%s\n--- stderr ---\n%s", file, res.ExitCode, res.Stdout, res.Stderr)
		return res
	}

	res := run("pull_request", "pull_request.opened.json")
	if res.ExitCode != 0 {
		t.Fatalf("the action failed in its container: %s", errorAnnotations(res.Stdout))
	}
	dep := branchDeployment(t, s)
	if res.Outputs["deployment"] != dep.Name || res.Outputs["status"] != "success" {
		t.Errorf("outputs = %v", res.Outputs)
	}
	// The image has no git: the commit's metadata came from the GitHub API.
	if dep.Commit.CommitHash != s.HeadSHA || dep.Commit.CommitMessage != "Add quickstart code locations" || dep.Commit.AuthorEmail != "jane@example.com" {
		t.Errorf("commit metadata = %+v", dep.Commit)
	}
	var images map[string]string
	if err := json.Unmarshal([]byte(res.Outputs["images"]), &images); err != nil || len(images) != 2 {
		t.Fatalf("images output %q: %v", res.Outputs["images"], err)
	}
	for loc, img := range images {
		ref, digest, _ := strings.Cut(img, "@")
		got, err := s.Registry.ManifestDigest(ctx, "acme/quickstart", ref[strings.LastIndex(ref, ":")+1:])
		if err != nil || got != digest {
			t.Errorf("%s: registry has %q (%v), output says %q", loc, got, err, digest)
		}
	}
	if !strings.Contains(res.Summary, "| `ml_models` | ✅ loaded |") {
		t.Errorf("summary:\n%s", res.Summary)
	}
	if c := ourComments(s); len(c) != 1 || !strings.Contains(c[0].Body, dep.Name) {
		t.Errorf("comments = %+v", c)
	}

	res = run("pull_request", "pull_request.closed.json")
	if res.ExitCode != 0 || res.Outputs["status"] != "closed" {
		t.Fatalf("close in the container: exit %d, outputs %v", res.ExitCode, res.Outputs)
	}
	if d := branchDeployment(t, s); d.PullRequestStatus != "CLOSED" {
		t.Errorf("status = %s", d.PullRequestStatus)
	}
}

// buildActionImage builds the Dockerfile's default target (the action's
// image, as GitHub builds a Docker action's Dockerfile) around a static
// binary built here (the Go image of the release build is not reachable).
func buildActionImage(t *testing.T, ctx context.Context) string {
	t.Helper()
	return buildDockerfileImage(t, ctx, "", testVersion)
}

// testVersion is the version the tests stamp into the binaries they put in
// images, as the Dockerfile's build stage does with --build-arg VERSION.
const testVersion = "v0.0.0-e2e"

// buildDockerfileImage builds a target of the repository's Dockerfile ("" is
// the default, the action's image) with --build-arg BINARY=prebuilt: the
// context holds the Dockerfile, a static binary built here with version
// stamped as the release build stamps it, the host's CA certificates and,
// for the gitlab target, Debian's static busybox (BUSYBOX=busybox-prebuilt).
// No base image is pulled.
func buildDockerfileImage(t *testing.T, ctx context.Context, target, version string) string {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ldflags := "-s -w -X github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cli.Version=" + version
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags="+ldflags, "-o", filepath.Join(dir, "dagster-branch-deploy"), ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the static binary: %v\n%s", err, out)
	}
	files := map[string]string{
		filepath.Join(root, "Dockerfile"):    "Dockerfile",
		"/etc/ssl/certs/ca-certificates.crt": "ca-certificates.crt",
	}
	args := map[string]string{"BINARY": "prebuilt"}
	if target == "gitlab" {
		files["/bin/busybox"] = "busybox"
		args["BUSYBOX"] = "busybox-prebuilt"
	}
	for src, dst := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("%v (scripts/setup.sh installs ca-certificates and busybox-static)", err)
		}
		mode := os.FileMode(0o644)
		if dst == "busybox" {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	docker, err := imagebuild.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := fmt.Sprintf("dagster-branch-deploy-test:%d", time.Now().UnixNano())
	var log strings.Builder
	if _, err := imagebuild.NewBuilder(docker, &log).Build(ctx, imagebuild.Spec{
		ContextDir: dir,
		Tags:       []string{ref},
		Target:     target,
		BuildArgs:  args,
	}); err != nil {
		t.Fatalf("building the image (target %q): %v\n%s", target, err, log.String())
	}
	t.Cleanup(func() {
		_, _ = docker.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	return ref
}
