//go:build docker

package e2e

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

// gitlabDetectShell is what GitLab's Docker executor runs as the command of a
// job's container (`sh -c` of this, the job script then read from stdin):
// the runner's shell detection, abridged to the candidates an image FROM
// scratch can have.
const gitlabDetectShell = `if [ -x /usr/local/bin/bash ]; then exec /usr/local/bin/bash "$@"
elif [ -x /bin/bash ]; then exec /bin/bash "$@"
elif [ -x /usr/bin/sh ]; then exec /usr/bin/sh "$@"
elif [ -x /bin/sh ]; then exec /bin/sh "$@"
else echo shell not found; exit 1; fi`

// TestGitLabImage builds the Dockerfile's gitlab target the way
// TestContainerContract builds the action's image (a binary built here, with
// Debian's static busybox for the shell) and runs it as GitLab runs a job's
// image: the image's entrypoint (none) with `sh -c` as the command.
func TestGitLabImage(t *testing.T) {
	testbed.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	docker, err := imagebuild.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	ref := buildDockerfileImage(t, ctx, "gitlab", testVersion)

	inspect, err := docker.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gitlab image %s: %.1f MB", ref, float64(inspect.Size)/1e6)
	cfg := inspect.Config
	if len(cfg.Entrypoint) != 0 || !slices.Equal(cfg.Cmd, []string{"/bin/sh"}) || cfg.User != "" {
		t.Errorf("image config: entrypoint %q, cmd %q, user %q; GitLab needs no entrypoint", cfg.Entrypoint, cfg.Cmd, cfg.User)
	}
	if !slices.Contains(cfg.Env, "PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin") {
		t.Errorf("image env %q", cfg.Env)
	}

	// The command GitLab's documentation would have a job run.
	want := "dagster-branch-deploy version " + testVersion
	if out := runCommand(t, ctx, docker, ref, "sh", "-c", "dagster-branch-deploy --version"); strings.TrimSpace(out) != want {
		t.Errorf("sh -c 'dagster-branch-deploy --version' printed %q, want %q", out, want)
	}

	// Beside the binary only busybox (2 MB) and the CA certificates.
	binSize, err := strconv.ParseInt(strings.TrimSpace(runCommand(t, ctx, docker, ref, "sh", "-c", "wc -c < /usr/local/bin/dagster-branch-deploy")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if extra := inspect.Size - binSize; extra > 4e6 || inspect.Size > 60e6 {
		t.Errorf("the image is %d bytes, %d beside the binary; it should hold only the binary, busybox and CA certificates", inspect.Size, extra)
	}

	// A job script through the runner's shell detection: the binary on PATH,
	// the usual utilities, pipefail, a writable /tmp, the CA bundle, and no
	// git (the binary reads the checkout with go-git).
	job := `set -eo pipefail
mkdir -p /builds/acme/repo && cd /builds/acme/repo
echo "bin=$(command -v dagster-branch-deploy)"
dagster-branch-deploy --version | cat
test -s /etc/ssl/certs/ca-certificates.crt && echo certs=ok
t=$(mktemp) && echo tmp=ok > "$t" && cat "$t"
command -v git >/dev/null || echo git=absent
echo done`
	out := runCommand(t, ctx, docker, ref, "sh", "-c", gitlabDetectShell, "sh", "-c", job)
	for _, line := range []string{"bin=/usr/local/bin/dagster-branch-deploy", want, "certs=ok", "tmp=ok", "git=absent", "done"} {
		if !slices.Contains(strings.Split(out, "\n"), line) {
			t.Errorf("the job script's output lacks the line %q:\n%s", line, out)
		}
	}
}

// runCommand runs cmd as the command of a container of ref, with the image's
// entrypoint (as GitLab's Docker executor does), and returns its output; a
// non-zero exit fails the test.
func runCommand(t *testing.T, ctx context.Context, docker *client.Client, ref string, cmd ...string) string {
	t.Helper()
	created, err := docker.ContainerCreate(ctx, &container.Config{Image: ref, Cmd: cmd}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer docker.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	var code int64
	waitC, errC := docker.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case err := <-errC:
		t.Fatal(err)
	case res := <-waitC:
		code = res.StatusCode
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
	if code != 0 {
		t.Fatalf("%q exited %d:\n%s%s", cmd, code, stdout.String(), stderr.String())
	}
	return stdout.String() + stderr.String()
}
