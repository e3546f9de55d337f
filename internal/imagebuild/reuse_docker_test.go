//go:build docker

package imagebuild

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

// pushImage builds a one-file image (FROM scratch) into ref and pushes it, returning the
// manifest digest.
func pushImage(t *testing.T, c *client.Client, b *Builder, ref, content string, labels map[string]string, auth registry.AuthConfig) string {
	t.Helper()
	dir := t.TempDir()
	writeContextFiles(t, dir, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY file.txt /file.txt\n",
		"file.txt":   content,
	})
	return buildAndPush(t, c, b, Spec{ContextDir: dir, Tags: []string{ref}, Labels: labels}, auth)
}

// buildAndPush builds s and pushes each of its tags, returning the digest of the last.
func buildAndPush(t *testing.T, c *client.Client, b *Builder, s Spec, auth registry.AuthConfig) string {
	t.Helper()
	ctx := testCtx(t, 3*time.Minute)
	for _, tag := range s.Tags {
		removeImage(t, c, tag)
	}
	if _, err := b.Build(ctx, s); err != nil {
		t.Fatalf("Build: %v", err)
	}
	var d string
	for _, tag := range s.Tags {
		var err error
		if d, err = b.Push(ctx, tag, auth); err != nil {
			t.Fatalf("Push %s: %v", tag, err)
		}
	}
	return d
}

// registryWrites are the requests since offset in the registry's access log that write
// something (PUT, POST, PATCH, DELETE).
func registryWrites(t *testing.T, reg *testbed.Registry, offset int64) []string {
	t.Helper()
	b, err := os.ReadFile(reg.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b[offset:]), "\n") {
		for _, m := range []string{`"PUT `, `"POST `, `"PATCH `, `"DELETE `} {
			if i := strings.Index(line, m); i >= 0 {
				req, _, _ := strings.Cut(line[i+1:], ` HTTP/`)
				out = append(out, req)
			}
		}
	}
	return out
}

func logSize(t *testing.T, reg *testbed.Registry) int64 {
	t.Helper()
	st, err := os.Stat(reg.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestInputsDigestResolvesBaseImage resolves a FROM image in a registry with htpasswd auth
// through the daemon's distribution endpoint, with the credentials of PullAuth.
func TestInputsDigestResolvesBaseImage(t *testing.T) {
	t.Parallel()
	c, b, _ := dockerBuilder(t)
	reg := testbed.NewRegistry(t)
	auth := registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr}
	ctx := testCtx(t, 5*time.Minute)
	base := reg.Addr + "/" + uniqueRepo(t) + "/base"
	d1 := pushImage(t, c, b, base+":1", "base v1", nil, auth)

	dir := t.TempDir()
	writeContextFiles(t, dir, map[string]string{
		"Dockerfile": "ARG BASE_TAG=1\nFROM " + base + ":${BASE_TAG}\nCOPY app.txt /app.txt\n",
		"app.txt":    "app",
	})
	s := Spec{ContextDir: dir, PullAuth: map[string]registry.AuthConfig{reg.Addr: auth}}
	in1, err := InputsDigest(ctx, c, s)
	if err != nil {
		t.Fatalf("InputsDigest: %v", err)
	}
	want := "image: " + base + ":1 " + d1 + " (resolved)"
	if !slices.Contains(in1.Items, want) {
		t.Errorf("items lack %q:\n%s", want, strings.Join(in1.Items, "\n"))
	}

	// Without credentials the registry refuses: no digest, and the error says which image.
	_, err = InputsDigest(ctx, c, Spec{ContextDir: dir})
	var ue *UnresolvedImageError
	if !errors.As(err, &ue) || ue.Image != base+":1" {
		t.Errorf("without credentials: error %v, want an *UnresolvedImageError for %s", err, base+":1")
	} else {
		t.Logf("without credentials: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), reg.Password) {
		t.Errorf("error contains the password")
	}

	// A tag that does not exist (the build argument picks it).
	s2 := s
	s2.BuildArgs = map[string]string{"BASE_TAG": "2"}
	if _, err := InputsDigest(ctx, c, s2); !errors.As(err, &ue) || ue.Image != base+":2" {
		t.Errorf("missing tag: error %v, want an *UnresolvedImageError for %s", err, base+":2")
	}

	// The base tag moves: the digest follows.
	d2 := pushImage(t, c, b, base+":1", "base v2", nil, auth)
	if d2 == d1 {
		t.Fatalf("the second base image has the digest of the first")
	}
	in2, err := InputsDigest(ctx, c, s)
	if err != nil {
		t.Fatalf("InputsDigest: %v", err)
	}
	if in2.Digest == in1.Digest || !slices.Contains(in2.Items, "image: "+base+":1 "+d2+" (resolved)") {
		t.Errorf("after the base moved to %s: digest %s (was %s), items:\n%s", d2, in2.Digest, in1.Digest, strings.Join(in2.Items, "\n"))
	}
}

// TestReuseThroughRegistry runs the reuse flow against a real registry: an image pushed with
// its inputs tag is found again after an mtime-only change, and tagged for the next run without
// moving layers; a content change gives a tag that does not exist.
func TestReuseThroughRegistry(t *testing.T) {
	t.Parallel()
	c, b, _ := dockerBuilder(t)
	reg := testbed.NewRegistry(t)
	auth := registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr}
	ctx := testCtx(t, 5*time.Minute)
	repo := uniqueRepo(t)
	image := reg.Addr + "/" + repo

	dir := t.TempDir()
	writeContextFiles(t, dir, map[string]string{
		"Dockerfile":    "FROM scratch\nCOPY . /app\n",
		".dockerignore": "*.log\n",
		"app.py":        "print('v1')\n",
		"run.log":       "ignored",
	})
	spec := func(commit string) Spec {
		return Spec{ContextDir: dir, Labels: map[string]string{"org.opencontainers.image.revision": commit, "dev.dagster.location": "app"}}
	}

	// Run 1 (commit aaa): nothing to reuse; build, push the run's tag and the inputs tag.
	in1, err := InputsDigest(ctx, c, spec("aaa"))
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := RemoteImage(ctx, image+":"+in1.Tag(), auth); err != nil || found {
		t.Fatalf("RemoteImage before the first push: found=%v, %v", found, err)
	}
	s1 := spec("aaa")
	s1.Tags = []string{image + ":aaa-1", image + ":" + in1.Tag()}
	pushed := buildAndPush(t, c, b, s1, auth)

	// Run 2 (commit bbb): only mtimes changed and an ignored file; same digest, found.
	later := time.Now().Add(time.Hour)
	for _, p := range []string{"app.py", "Dockerfile", "."} {
		if err := os.Chtimes(filepath.Join(dir, p), later, later); err != nil {
			t.Fatal(err)
		}
	}
	writeContextFiles(t, dir, map[string]string{"run.log": "ignored, changed"})
	in2, err := InputsDigest(ctx, c, spec("bbb"))
	if err != nil {
		t.Fatal(err)
	}
	if in2.Digest != in1.Digest {
		t.Fatalf("an mtime-only change and an ignored file changed the digest:\n%s\n---\n%s", strings.Join(in1.Items, "\n"), strings.Join(in2.Items, "\n"))
	}
	info, found, err := RemoteImage(ctx, image+":"+in2.Tag(), auth)
	if err != nil || !found {
		t.Fatalf("RemoteImage of the inputs tag: found=%v, %v", found, err)
	}
	if info.Digest != pushed || info.Labels["org.opencontainers.image.revision"] != "aaa" {
		t.Errorf("RemoteImage = %+v; want digest %s and the revision label of the commit it was built from (aaa)", info, pushed)
	}

	offset := logSize(t, reg)
	d, err := TagRemote(ctx, image+":"+in2.Tag(), image+":bbb-2", auth)
	if err != nil {
		t.Fatalf("TagRemote: %v", err)
	}
	if d != pushed {
		t.Errorf("TagRemote returned %s, want %s", d, pushed)
	}
	if got, err := reg.ManifestDigest(ctx, repo, "bbb-2"); err != nil || got != pushed {
		t.Errorf("the registry has bbb-2 at %s (%v), want %s", got, err, pushed)
	}
	writes := registryWrites(t, reg, offset)
	if want := []string{"PUT /v2/" + repo + "/manifests/bbb-2"}; !slices.Equal(writes, want) {
		t.Errorf("TagRemote wrote %q, want only %q (no blob upload)", writes, want)
	}

	// Tagging again is a no-op (immutable registries accept a re-run).
	offset = logSize(t, reg)
	if d, err := TagRemote(ctx, image+":"+in2.Tag(), image+":bbb-2", auth); err != nil || d != pushed {
		t.Errorf("TagRemote again = %s, %v", d, err)
	}
	if writes := registryWrites(t, reg, offset); len(writes) != 0 {
		t.Errorf("TagRemote of a tag that already names the manifest wrote %q", writes)
	}

	// Run 3: a content change gives another digest, whose tag does not exist.
	writeContextFiles(t, dir, map[string]string{"app.py": "print('v2')\n"})
	in3, err := InputsDigest(ctx, c, spec("ccc"))
	if err != nil {
		t.Fatal(err)
	}
	if in3.Digest == in1.Digest {
		t.Fatal("a content change kept the digest")
	}
	if _, found, err := RemoteImage(ctx, image+":"+in3.Tag(), auth); err != nil || found {
		t.Errorf("RemoteImage of the new inputs tag: found=%v, %v; want not found", found, err)
	}
}

func TestRemoteImageRealRegistry(t *testing.T) {
	t.Parallel()
	c, b, _ := dockerBuilder(t)
	reg := testbed.NewRegistry(t)
	auth := registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr}
	ctx := testCtx(t, 5*time.Minute)
	repo := uniqueRepo(t)
	image := reg.Addr + "/" + repo
	d := pushImage(t, c, b, image+":v1", "x", map[string]string{"dev.dagster.location": "etl"}, auth)

	tests := []struct {
		name    string
		ref     string
		auth    registry.AuthConfig
		found   bool
		wantErr string
	}{
		{"tag", image + ":v1", auth, true, ""},
		{"digest", image + "@" + d, auth, true, ""},
		{"unknown tag", image + ":nope", auth, false, ""},
		{"unknown repository", reg.Addr + "/" + repo + "-other:v1", auth, false, ""},
		{"wrong password", image + ":v1", registry.AuthConfig{Username: reg.Username, Password: "wrong-pw-123"}, false, "401"},
		{"anonymous", image + ":v1", registry.AuthConfig{}, false, "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, found, err := RemoteImage(ctx, tc.ref, tc.auth)
			if tc.wantErr != "" {
				if err == nil || (!strings.Contains(err.Error(), tc.wantErr) && !strings.Contains(err.Error(), "UNAUTHORIZED")) {
					t.Fatalf("RemoteImage error = %v, want a refusal", err)
				}
				if strings.Contains(err.Error(), "wrong-pw-123") {
					t.Errorf("error contains the password: %v", err)
				}
				t.Logf("RemoteImage error: %v", err)
				return
			}
			if err != nil || found != tc.found {
				t.Fatalf("RemoteImage = found %v, %v; want found=%v", found, err, tc.found)
			}
			if found && (info.Digest != d || info.Labels["dev.dagster.location"] != "etl") {
				t.Errorf("RemoteImage = %+v, want digest %s and the label", info, d)
			}
		})
	}
}
