//go:build docker

package imagebuild

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

// writeContext writes files (path → content, all mode 0644) into a new directory.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// imageFile reads a regular file from an image through a created (never started) container.
func imageFile(t *testing.T, c *client.Client, ref, path string) (string, os.FileMode) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	created, err := c.ContainerCreate(ctx, &container.Config{Image: ref, Entrypoint: []string{"/bin/busybox"}, Cmd: []string{"true"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	rc, _, err := c.CopyFromContainer(ctx, created.ID, path)
	if err != nil {
		t.Fatalf("reading %s from %s: %v", path, ref, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	dt, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return string(dt), h.FileInfo().Mode()
}

// TestBuildKitFeatures builds a multi-stage Dockerfile at a non-default path with what BuildKit
// adds: a target that skips a failing stage, build args, labels, a platform, a secret mount, a
// cache mount and COPY --chmod. It builds twice, so that the cache mount is seen to persist.
func TestBuildKitFeatures(t *testing.T) {
	t.Parallel()
	c, b, log := dockerBuilder(t)
	base := busyboxBase(t, c, b)
	cacheID := "dbd-test-" + randomHex(6) // cache mounts are daemon-wide: keep this one to us
	dir := writeContext(t, map[string]string{
		"tool.sh": "#!/bin/sh\necho tool\n",
		"docker/Dockerfile.ci": "FROM " + base + " AS base\n" +
			"ARG GREETING=unset\n" +
			// The marker makes the steps new to the daemon: BuildKit would reuse the secret
			// step of an earlier run, as a secret's value is not part of the cache key.
			"RUN echo \"$GREETING\" > /greeting && echo " + cacheID + " > /marker\n" +
			"\n" +
			"FROM base AS final\n" +
			"COPY --chmod=0755 tool.sh /tool.sh\n" +
			"RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -c1-64 > /token.sha\n" +
			"ARG NONCE\n" +
			"RUN --mount=type=cache,id=" + cacheID + ",target=/cache echo \"$NONCE\" >> /cache/runs && cp /cache/runs /runs\n" +
			"LABEL from-dockerfile=yes\n" +
			"\n" +
			"FROM final AS broken\n" +
			"RUN echo this stage must not run; exit 7\n",
	})
	token := "tok-" + randomHex(16)
	ref := uniqueRepo(t) + ":v1"
	removeImage(t, c, ref)
	ctx := testCtx(t, 5*time.Minute)
	spec := Spec{
		ContextDir: dir,
		Dockerfile: "docker/Dockerfile.ci",
		Tags:       []string{ref},
		Target:     "final",
		Platform:   "linux/" + runtime.GOARCH,
		BuildArgs:  map[string]string{"GREETING": "hello from args", "NONCE": "first"},
		Labels:     map[string]string{"dagster/location": "etl"},
		Secrets:    map[string][]byte{"token": []byte(token)},
	}
	if _, err := b.Build(ctx, spec); err != nil {
		t.Fatalf("first build: %v", err)
	}
	spec.BuildArgs["NONCE"] = "second" // reruns only the cache-mount step
	id, err := b.Build(ctx, spec)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}

	sum := sha256.Sum256([]byte(token))
	for path, want := range map[string]string{
		"/greeting":  "hello from args\n",
		"/token.sha": hex.EncodeToString(sum[:]) + "\n",
		"/runs":      "first\nsecond\n", // the cache mount kept the first build's line
	} {
		if got, _ := imageFile(t, c, ref, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if _, mode := imageFile(t, c, ref, "/tool.sh"); mode.Perm() != 0o755 {
		t.Errorf("/tool.sh mode = %v, want 0755 (COPY --chmod)", mode)
	}

	insp, err := c.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if insp.ID != id || insp.Config.Labels["dagster/location"] != "etl" || insp.Config.Labels["from-dockerfile"] != "yes" {
		t.Errorf("image %s (Build said %s) has labels %v", insp.ID, id, insp.Config.Labels)
	}
	if insp.Os != "linux" || insp.Architecture != runtime.GOARCH {
		t.Errorf("image platform %s/%s, want linux/%s", insp.Os, insp.Architecture, runtime.GOARCH)
	}
	hist, err := c.ImageHistory(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	histJSON, _ := json.Marshal(hist)
	inspJSON, _ := json.Marshal(insp)
	for what, s := range map[string]string{"build log": log.String(), "image history": string(histJSON), "image config": string(inspJSON)} {
		if strings.Contains(s, token) {
			t.Errorf("the %s contains the secret", what)
		}
	}

	logText := log.String()
	if strings.Contains(logText, "this stage must not run") {
		t.Error("the stage after the target was built")
	}
	for _, re := range []string{
		`(?m)^#\d+ \[final \d/\d\] COPY --chmod=0755 tool\.sh /tool\.sh$`,
		`(?m)^#\d+ \[final \d/\d\] RUN --mount=type=secret,id=token sha256sum`,
		`(?m)^#\d+ DONE \d+\.\ds$`,
		`(?m)^#\d+ CACHED$`, // the second build reuses the steps before NONCE
	} {
		if !regexp.MustCompile(re).MatchString(logText) {
			t.Errorf("build log lacks a line matching %s:\n%s", re, logText)
		}
	}
	if regexp.MustCompile(`(?m)^\s*\{`).MatchString(logText) {
		t.Errorf("build log holds raw JSON:\n%s", logText)
	}
}

// TestBuildKitRegistryCache pushes an image built with inline cache, removes every local trace
// of it (the images and the build cache records of its RUN step), and rebuilds with CacheFrom:
// the RUN step, whose output is random, must come back unchanged from the registry cache.
func TestBuildKitRegistryCache(t *testing.T) {
	t.Parallel()
	c, b, log := dockerBuilder(t)
	reg := testbed.NewRegistry(t)
	auth := registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr}
	base := busyboxBase(t, c, b)
	marker := "dbd-cache-" + randomHex(6) // names this test's build cache records
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\n" +
			"RUN echo " + marker + " && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /stamp\n",
	})
	repo := reg.Addr + "/" + uniqueRepo(t)
	cacheRef := repo + ":buildcache"
	for _, r := range []string{repo + ":v1", cacheRef, repo + ":v2"} {
		removeImage(t, c, r)
	}
	ctx := testCtx(t, 5*time.Minute)
	pullAuth := map[string]registry.AuthConfig{reg.Addr: auth}

	// First run: the cache image does not exist yet, which must not fail the build.
	if _, err := b.Build(ctx, Spec{ContextDir: dir, Tags: []string{repo + ":v1", cacheRef}, CacheFrom: []string{cacheRef}, InlineCache: true, PullAuth: pullAuth}); err != nil {
		t.Fatalf("first build, without a cache image in the registry: %v", err)
	}
	stamp, _ := imageFile(t, c, repo+":v1", "/stamp")
	for _, r := range []string{repo + ":v1", cacheRef} {
		if _, err := b.Push(ctx, r, auth); err != nil {
			t.Fatal(err)
		}
	}
	forgetLocally(t, c, marker, repo+":v1", cacheRef)

	firstLog := len(log.String())
	if _, err := b.Build(ctx, Spec{ContextDir: dir, Tags: []string{repo + ":v2"}, CacheFrom: []string{cacheRef}, InlineCache: true, PullAuth: pullAuth}); err != nil {
		t.Fatalf("rebuild with the registry cache: %v", err)
	}
	rebuildLog := log.String()[firstLog:]
	if got, _ := imageFile(t, c, repo+":v2", "/stamp"); got != stamp || len(stamp) != 32 {
		t.Errorf("rebuilt /stamp = %q, want the first build's %q: the RUN step ran again", got, stamp)
	}
	run := regexp.MustCompile(`(?m)^#(\d+) \[2/2\] RUN echo ` + marker).FindStringSubmatch(rebuildLog)
	if run == nil || !strings.Contains(rebuildLog, "#"+run[1]+" CACHED\n") {
		t.Errorf("the rebuild's RUN step is not CACHED:\n%s", rebuildLog)
	}
	if !strings.Contains(rebuildLog, "importing cache manifest from "+cacheRef) {
		t.Errorf("the rebuild did not import the cache from %s:\n%s", cacheRef, rebuildLog)
	}
}

// forgetLocally removes images and the build cache records whose description holds marker, so
// that only a registry can supply them again. It prunes nothing else: the daemon is shared.
func forgetLocally(t *testing.T, c *client.Client, marker string, refs ...string) {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	for _, r := range refs {
		if _, err := c.ImageRemove(ctx, r, image.RemoveOptions{Force: true}); err != nil {
			t.Fatalf("removing %s: %v", r, err)
		}
	}
	records := func() []*build.CacheRecord {
		du, err := c.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.BuildCacheObject}})
		if err != nil {
			t.Fatal(err)
		}
		var ours []*build.CacheRecord
		for _, r := range du.BuildCache {
			if strings.Contains(r.Description, marker) {
				ours = append(ours, r)
			}
		}
		return ours
	}
	ours := records()
	if len(ours) == 0 {
		t.Fatalf("no build cache record mentions %s", marker)
	}
	for _, r := range ours {
		if _, err := c.BuildCachePrune(ctx, build.CachePruneOptions{All: true, Filters: filters.NewArgs(filters.Arg("id", r.ID))}); err != nil {
			t.Fatalf("pruning build cache record %s (%s): %v", r.ID, r.Description, err)
		}
	}
	if left := records(); len(left) > 0 {
		t.Fatalf("build cache records %v survived the prune", left)
	}
}

// TestClassicCacheFrom checks that the classic builder pulls CacheFrom images with PullAuth,
// reuses their layers, and skips a cache image that does not exist.
func TestClassicCacheFrom(t *testing.T) {
	t.Parallel()
	c, b, log := dockerBuilder(t)
	reg := testbed.NewRegistry(t)
	auth := registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr}
	base := busyboxBase(t, c, b)
	useBuilder(b, false)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /stamp\n",
	})
	repo := reg.Addr + "/" + uniqueRepo(t)
	cacheRef, missing := repo+":buildcache", repo+":never-pushed"
	for _, r := range []string{repo + ":v1", cacheRef, repo + ":v2"} {
		removeImage(t, c, r)
	}
	ctx := testCtx(t, 5*time.Minute)
	if _, err := b.Build(ctx, Spec{ContextDir: dir, Tags: []string{repo + ":v1", cacheRef}}); err != nil {
		t.Fatal(err)
	}
	stamp, _ := imageFile(t, c, repo+":v1", "/stamp")
	if _, err := b.Push(ctx, cacheRef, auth); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{repo + ":v1", cacheRef} {
		if _, err := c.ImageRemove(ctx, r, image.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}

	spec := Spec{ContextDir: dir, Tags: []string{repo + ":v2"}, CacheFrom: []string{missing, cacheRef}, PullAuth: map[string]registry.AuthConfig{reg.Addr: auth}}
	if _, err := b.Build(ctx, spec); err != nil {
		t.Fatalf("build with CacheFrom: %v", err)
	}
	if got, _ := imageFile(t, c, repo+":v2", "/stamp"); got != stamp {
		t.Errorf("/stamp = %q, want the cached %q", got, stamp)
	}
	for _, want := range []string{"Pulling cache image " + cacheRef, "Cache image " + missing + " not used: ", "Using cache"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log.String(), reg.Password) {
		t.Error("the log holds the registry password")
	}
}

// sshAgent starts an ssh-agent holding a new ed25519 key, and returns its socket and the key
// file. It fails the test if OpenSSH's tools are missing.
func sshAgent(t *testing.T) (sock, key string) {
	t.Helper()
	for _, tool := range []string{"ssh-agent", "ssh-keygen", "ssh-add"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (scripts/setup.sh installs openssh-client)", tool)
		}
	}
	// Not t.TempDir: a unix socket path must stay under ~100 bytes.
	dir, err := os.MkdirTemp("", "dbd-ssh-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock, key = filepath.Join(dir, "agent.sock"), filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dbd-test", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Kill()
		_ = agent.Wait()
	})
	add := func() error {
		cmd := exec.Command("ssh-add", key)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return errors.New(err.Error() + ": " + string(out))
		}
		return nil
	}
	// The agent creates its socket shortly after starting.
	deadline := time.Now().Add(30 * time.Second)
	for err := add(); err != nil; err = add() {
		if time.Now().After(deadline) {
			t.Fatalf("ssh-add: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return sock, key
}

// TestBuildKitSSH forwards an ssh-agent (as "default" from SSH_AUTH_SOCK and by socket path)
// and a key file, and checks that RUN --mount=type=ssh sees an agent socket for each id.
func TestBuildKitSSH(t *testing.T) {
	t.Parallel()
	c, b, _ := dockerBuilder(t)
	base := busyboxBase(t, c, b)
	sock, key := sshAgent(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\n" +
			"RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo default-ok > /ssh\n" +
			"RUN --mount=type=ssh,id=deploy test -S \"$SSH_AUTH_SOCK\" && echo deploy-ok >> /ssh\n",
	})
	for _, tc := range []struct {
		name string
		ssh  []string
	}{
		{"agent", []string{"default", "deploy=" + sock}},
		{"key files", []string{"default=" + key, "deploy=" + key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, b, _ := dockerBuilder(t)
			b.getenv = func(k string) string {
				if k == "SSH_AUTH_SOCK" {
					return sock
				}
				return ""
			}
			ref := uniqueRepo(t) + ":v1"
			removeImage(t, c, ref)
			if _, err := b.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: dir, Tags: []string{ref}, SSH: tc.ssh}); err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got, _ := imageFile(t, c, ref, "/ssh"); got != "default-ok\ndeploy-ok\n" {
				t.Errorf("/ssh = %q", got)
			}
		})
	}
}
