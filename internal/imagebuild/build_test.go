//go:build docker

package imagebuild

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

// syncBuffer is a log writer that tests can read while nothing writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dockerBuilder connects to the shared test daemon (testbed.Docker fails the test without one).
func dockerBuilder(t *testing.T) (*client.Client, *Builder, *syncBuffer) {
	t.Helper()
	testbed.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	log := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("builder log:\n%s", log.String())
		}
	})
	return c, NewBuilder(c, log), log
}

var nonRefChars = regexp.MustCompile(`[^a-z0-9]+`)

// uniqueRepo returns a repository path unique to this test run, e.g. "dbd-test/testbuild-1a2b3c".
func uniqueRepo(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.Trim(nonRefChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	return "dbd-test/" + name + "-" + hex.EncodeToString(b)
}

// removeImage removes ref from the daemon when the test ends.
func removeImage(t *testing.T, c *client.Client, ref string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Without PruneChildren: the classic builder's intermediate images
		// are shared by concurrent tests with the same steps, and pruning
		// them under a running build fails it ("unable to find image").
		_, _ = c.ImageRemove(ctx, ref, image.RemoveOptions{Force: true})
	})
}

// builders are the builders that table tests run with: the default (BuildKit on the test
// daemon) and the classic fallback.
var builders = []struct {
	name     string
	buildKit bool
}{{"buildkit", true}, {"classic", false}}

func TestNewClientNegotiates(t *testing.T) {
	testbed.Docker(t)
	c, err := NewClient(testCtx(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.ServerVersion(testCtx(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientVersion() != v.APIVersion && os.Getenv("DOCKER_API_VERSION") == "" {
		t.Errorf("client API version %s, daemon %s: NewClient did not negotiate", c.ClientVersion(), v.APIVersion)
	}
}

func TestBuildLabelsArgsAndIgnore(t *testing.T) {
	t.Parallel()
	wantLog := map[string][]string{
		"buildkit": {"with BuildKit", "[1/2] COPY hello.txt /hello.txt", "[2/2] COPY app/ /app/", "naming to docker.io/dbd-test/"},
		"classic":  {"with the classic builder", "Step 1/7 : FROM scratch", "COPY hello.txt /hello.txt", "LABEL dagster/location=etl"},
	}
	for _, bt := range builders {
		t.Run(bt.name, func(t *testing.T) {
			t.Parallel()
			c, b, log := dockerBuilder(t)
			useBuilder(b, bt.buildKit)
			ref := uniqueRepo(t) + ":v1"
			removeImage(t, c, ref)
			ctx := testCtx(t, 3*time.Minute)

			id, err := b.Build(ctx, Spec{
				ContextDir: fixture(t, "simple"),
				Tags:       []string{ref},
				Labels:     map[string]string{"dagster/location": "etl", "org.opencontainers.image.revision": "abc123"},
				BuildArgs:  map[string]string{"GREETING": "hi"},
			})
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if !strings.HasPrefix(id, "sha256:") {
				t.Errorf("image ID %q does not start with sha256:", id)
			}
			insp, err := c.ImageInspect(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if insp.ID != id {
				t.Errorf("Build returned %s, but %s is %s", id, ref, insp.ID)
			}
			for k, v := range map[string]string{"dagster/location": "etl", "org.opencontainers.image.revision": "abc123", "fixture": "simple"} {
				if got := insp.Config.Labels[k]; got != v {
					t.Errorf("label %s = %q, want %q (labels %v)", k, got, v, insp.Config.Labels)
				}
			}
			for _, want := range append(wantLog[bt.name], "Successfully tagged "+ref) {
				if !strings.Contains(log.String(), want) {
					t.Errorf("build log lacks %q:\n%s", want, log)
				}
			}
			if strings.Contains(log.String(), "[Warning] One or more build-args") {
				t.Errorf("build arg GREETING was not consumed:\n%s", log)
			}
		})
	}
}

func TestBuildNestedDockerfile(t *testing.T) {
	t.Parallel()
	c, b, _ := dockerBuilder(t)
	ref := uniqueRepo(t) + ":v1"
	removeImage(t, c, ref)
	if _, err := b.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: fixture(t, "nested"), Dockerfile: "docker/Dockerfile.prod", Tags: []string{ref}}); err != nil {
		t.Fatalf("Build: %v", err)
	}
}

func TestBuildCopyFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture  string
		buildKit bool
		want     []string
	}{
		// 20.10: "COPY failed: file not found in build context or excluded by .dockerignore: stat secret.txt: file does not exist"
		{"ignored", false, []string{"excluded by .dockerignore", "secret.txt", "Step 3/3 : COPY secret.txt /secret.txt"}},
		{"missing", false, []string{"build failed: COPY failed:", "missing.txt", "--- last", "Step 2/2 : COPY missing.txt /"}},
		// BuildKit: `failed to compute cache key: "/secret.txt" not found: not found`
		{"ignored", true, []string{`"/secret.txt" not found`, "failing step: [2/2] COPY secret.txt /secret.txt"}},
		{"missing", true, []string{`build failed: failed to compute cache key: "/missing.txt" not found`, "failing step: [1/1] COPY missing.txt /"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/buildkit=%v", tc.fixture, tc.buildKit), func(t *testing.T) {
			t.Parallel()
			c, b, _ := dockerBuilder(t)
			useBuilder(b, tc.buildKit)
			ref := uniqueRepo(t) + ":v1"
			removeImage(t, c, ref)
			_, err := b.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: fixture(t, tc.fixture), Tags: []string{ref}})
			if err == nil {
				t.Fatal("Build succeeded with a COPY of a missing or ignored file")
			}
			var se *StreamError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, want a *StreamError: %v", err, err)
			}
			for _, want := range append(tc.want, "building "+ref) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

// busyboxBase builds a base image holding only a static busybox and its applets (/bin/sh,
// /bin/cat…), so that RUN steps can run without network access. It fails the test when /bin/busybox (Debian busybox-static) is absent.
func busyboxBase(t *testing.T, c *client.Client, b *Builder) string {
	t.Helper()
	dir := testbed.BusyboxContext(t, "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENTRYPOINT [\"/bin/busybox\"]\n")
	ref := uniqueRepo(t) + "-busybox:base"
	removeImage(t, c, ref)
	if _, err := b.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: dir, Tags: []string{ref}}); err != nil {
		t.Fatalf("building the busybox base image: %v", err)
	}
	return ref
}

func TestBuildRunFailureShowsOutput(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		"classic":  {"returned a non-zero code: 3", "Step 3/3 : RUN"},
		"buildkit": {"exit code: 3", `failing step: [3/3] RUN ["/bin/busybox", "sh", "-c", "echo boom;`, "last 2 lines of the step's output"},
	}
	for _, bt := range builders {
		t.Run(bt.name, func(t *testing.T) {
			t.Parallel()
			c, b, log := dockerBuilder(t)
			base := busyboxBase(t, c, b)
			useBuilder(b, bt.buildKit)
			dir := t.TempDir()
			df := "FROM " + base + "\n" +
				"RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo step-one-ok\"]\n" +
				"RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo boom; echo to-stderr >&2; exit 3\"]\n"
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
				t.Fatal(err)
			}
			ref := uniqueRepo(t) + ":v1"
			removeImage(t, c, ref)
			_, err := b.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: dir, Tags: []string{ref}})
			if err == nil {
				t.Fatal("Build succeeded although a RUN step exits 3")
			}
			t.Logf("Build error: %v", err)
			var se *StreamError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, want a *StreamError: %v", err, err)
			}
			if se.Code != 3 {
				t.Errorf("code = %d, want 3", se.Code)
			}
			if strings.Contains(err.Error(), "\x1b") {
				t.Errorf("error holds terminal escapes:\n%q", err)
			}
			if !slices.Contains(se.Tail, "boom") || !slices.Contains(se.Tail, "to-stderr") {
				t.Errorf("tail %q lacks the step's output lines boom and to-stderr", se.Tail)
			}
			if bt.buildKit && slices.Contains(se.Tail, "step-one-ok") {
				t.Errorf("tail %q holds the output of another step", se.Tail)
			}
			// BuildKit does not keep the order of stdout and stderr lines.
			for _, want := range append(want[bt.name], "\nboom", "\nto-stderr") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if !strings.Contains(log.String(), "step-one-ok") {
				t.Errorf("the log lacks the output of the first RUN:\n%s", log)
			}
		})
	}
}

func TestPushToAuthenticatedRegistry(t *testing.T) {
	t.Parallel()
	c, b, log := dockerBuilder(t)
	reg := testbed.NewRegistry(t)
	repo := uniqueRepo(t)
	ref := reg.Addr + "/" + repo + ":pr-7"
	removeImage(t, c, ref)
	ctx := testCtx(t, 5*time.Minute)

	if _, err := b.Build(ctx, Spec{
		ContextDir: fixture(t, "simple"),
		Tags:       []string{ref},
		Labels:     map[string]string{"dagster/location": "etl"},
	}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	auth := registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr}
	if err := b.Login(ctx, auth, "the test"); err != nil {
		t.Fatalf("Login with the right password: %v", err)
	}
	digest, err := b.Push(ctx, ref, auth)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	want, err := reg.ManifestDigest(ctx, repo, "pr-7")
	if err != nil {
		t.Fatal(err)
	}
	if digest != want {
		t.Errorf("Push returned digest %s, registry has %s", digest, want)
	}
	labels, err := reg.ImageLabels(ctx, repo, digest)
	if err != nil {
		t.Fatal(err)
	}
	if labels["dagster/location"] != "etl" {
		t.Errorf("pushed image labels %v lack dagster/location=etl", labels)
	}
	tags, err := reg.Tags(ctx, repo)
	if err != nil || len(tags) != 1 || tags[0] != "pr-7" {
		t.Errorf("registry tags = %v, %v; want [pr-7]", tags, err)
	}
	if !strings.Contains(log.String(), "Pushing "+ref) || !strings.Contains(log.String(), "digest: "+digest) {
		t.Errorf("push log lacks the reference or digest:\n%s", log)
	}
	if strings.Contains(log.String(), reg.Password) {
		t.Errorf("log contains the password")
	}
}

func TestLoginWrongPasswordFailsFast(t *testing.T) {
	t.Parallel()
	_, b, _ := dockerBuilder(t)
	reg := testbed.NewRegistry(t)
	wrong := "definitely-wrong-" + reg.Password
	start := time.Now()
	err := b.Login(testCtx(t, time.Minute), registry.AuthConfig{Username: reg.Username, Password: wrong, ServerAddress: reg.Addr},
		"the action inputs registry_username/registry_password")
	if err == nil {
		t.Fatal("Login with a wrong password succeeded")
	}
	t.Logf("Login error (%v): %v", time.Since(start), err)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Login took %v; it should fail fast", d)
	}
	for _, want := range []string{"registry " + reg.Addr + " refused the credentials", `user "testuser"`, "registry_username/registry_password", "401"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), reg.Password) {
		t.Errorf("error contains the password:\n%v", err)
	}
}

func TestPushWithoutAuthFails(t *testing.T) {
	t.Parallel()
	c, b, _ := dockerBuilder(t)
	reg := testbed.NewRegistry(t)
	ref := reg.Addr + "/" + uniqueRepo(t) + ":v1"
	removeImage(t, c, ref)
	// The daemon retries a refused push for about 45 s before reporting it.
	ctx := testCtx(t, 4*time.Minute)
	if _, err := b.Build(ctx, Spec{ContextDir: fixture(t, "nested"), Dockerfile: "docker/Dockerfile.prod", Tags: []string{ref}}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	start := time.Now()
	_, err := b.Push(ctx, ref, registry.AuthConfig{})
	if err == nil {
		t.Fatal("anonymous push to an htpasswd registry succeeded")
	}
	t.Logf("Push error (%v): %v", time.Since(start), err)
	for _, want := range []string{"pushing " + ref + " to registry " + reg.Addr, "push failed", "basic auth"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestPushUnknownImageFails(t *testing.T) {
	t.Parallel()
	_, b, _ := dockerBuilder(t)
	ref := "127.0.0.1:1/" + uniqueRepo(t) + ":never-built"
	_, err := b.Push(testCtx(t, time.Minute), ref, registry.AuthConfig{})
	if err == nil || !strings.Contains(err.Error(), ref) {
		t.Fatalf("error = %v, want one naming %s", err, ref)
	}
}

// TestBuildPullsPrivateBaseWithPullAuth pushes a base image to the htpasswd registry, removes it
// locally, and builds FROM it: without PullAuth the daemon cannot pull it, with PullAuth it can
// (the classic builder sends them with the request, BuildKit asks the session for them).
func TestBuildPullsPrivateBaseWithPullAuth(t *testing.T) {
	t.Parallel()
	wantRefusal := map[string][]string{
		"classic":  {"no basic auth credentials"},
		"buildkit": {"401 Unauthorized", "failing step: [internal] load metadata for "},
	}
	for _, bt := range builders {
		t.Run(bt.name, func(t *testing.T) {
			t.Parallel()
			c, b, _ := dockerBuilder(t)
			useBuilder(b, bt.buildKit)
			reg := testbed.NewRegistry(t)
			ctx := testCtx(t, 5*time.Minute)
			auth := registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr}

			base := reg.Addr + "/" + uniqueRepo(t) + "-base:v1"
			removeImage(t, c, base)
			if _, err := b.Build(ctx, Spec{ContextDir: fixture(t, "nested"), Dockerfile: "docker/Dockerfile.prod", Tags: []string{base}}); err != nil {
				t.Fatalf("building the base: %v", err)
			}
			if _, err := b.Push(ctx, base, auth); err != nil {
				t.Fatalf("pushing the base: %v", err)
			}
			if _, err := c.ImageRemove(ctx, base, image.RemoveOptions{Force: true}); err != nil {
				t.Fatalf("removing the local base: %v", err)
			}

			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+base+"\nLABEL child=yes\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			ref := uniqueRepo(t) + ":child"
			removeImage(t, c, ref)

			_, err := b.Build(ctx, Spec{ContextDir: dir, Tags: []string{ref}})
			if err == nil {
				t.Fatal("building FROM a private base without PullAuth succeeded")
			}
			for _, want := range append(wantRefusal[bt.name], base) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error without PullAuth lacks %q:\n%v", want, err)
				}
			}

			if _, err := b.Build(ctx, Spec{ContextDir: dir, Tags: []string{ref}, PullAuth: map[string]registry.AuthConfig{reg.Addr: auth}}); err != nil {
				t.Fatalf("building FROM a private base with PullAuth: %v", err)
			}
			insp, err := c.ImageInspect(ctx, ref)
			if err != nil || insp.Config.Labels["child"] != "yes" {
				t.Errorf("child image: %v, labels %v", err, insp.Config)
			}
		})
	}
}

func TestPushWrongPasswordFails(t *testing.T) {
	t.Parallel()
	c, b, log := dockerBuilder(t)
	reg := testbed.NewRegistry(t)
	ref := reg.Addr + "/" + uniqueRepo(t) + ":v1"
	removeImage(t, c, ref)
	ctx := testCtx(t, 4*time.Minute) // some registries make the daemon retry for ~45 s
	if _, err := b.Build(ctx, Spec{ContextDir: fixture(t, "nested"), Dockerfile: "docker/Dockerfile.prod", Tags: []string{ref}}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	wrong := "wrong-" + reg.Password
	_, err := b.Push(ctx, ref, registry.AuthConfig{Username: reg.Username, Password: wrong, ServerAddress: reg.Addr})
	if err == nil {
		t.Fatal("push with a wrong password succeeded")
	}
	if !strings.Contains(err.Error(), "unauthorized") || !strings.Contains(err.Error(), ref) {
		t.Errorf("error lacks unauthorized or the reference:\n%v", err)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(log.String(), wrong) {
		t.Errorf("error or log contains the password:\n%v", err)
	}
}

func TestLoginUnreachableRegistry(t *testing.T) {
	t.Parallel()
	_, b, _ := dockerBuilder(t)
	err := b.Login(testCtx(t, time.Minute), registry.AuthConfig{Username: "u", Password: "secret-pw", ServerAddress: "127.0.0.1:1"}, "the test")
	if err == nil {
		t.Fatal("Login to a closed port succeeded")
	}
	t.Logf("Login error: %v", err)
	if !strings.Contains(err.Error(), "could not log in to registry 127.0.0.1:1") || strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("unexpected error: %v", err)
	}
}
