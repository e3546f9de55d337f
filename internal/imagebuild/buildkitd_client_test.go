package imagebuild

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tests that build on a real buildkitd are in buildkitd_remote_test.go (-tags docker).

// TestRemoteBuildkitBadAddress names the address and where it comes from; none of these needs a
// buildkitd.
func TestRemoteBuildkitBadAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, want string }{
		{"", "no BuildKit address"},
		{"docker", "is the Docker daemon"},
		{"buildkitd:1234", "not a URL"},
		{"http://127.0.0.1:1234", "unknown scheme"},
		{"tcp://127.0.0.1", "host:port"},
		{"unix://", "no socket path"},
		{"tcp://127.0.0.1:1", "Nothing listens"},
		{"unix:///nonexistent/buildkitd.sock", "Nothing listens"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			_, err := NewRemote(testCtx(t, time.Minute), tc.addr, nil, nil)
			if err == nil {
				t.Fatal("connected")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error = %v\nwant it to say %q", err, tc.want)
			}
			if tc.addr != "docker" && (!strings.Contains(msg, "BUILDKIT_HOST") || !strings.Contains(msg, "builder")) {
				t.Errorf("error = %v\nwant it to name the builder input and BUILDKIT_HOST", err)
			}
		})
	}
}

// TestRemoteBuildkitAddrSchemes accepts the connection helpers buildctl knows.
func TestRemoteBuildkitAddrSchemes(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{
		"tcp://buildkitd.ci.svc:1234", "unix:///run/buildkit/buildkitd.sock",
		"docker-container://buildx_buildkit_default", "kube-pod://buildkitd-0?namespace=ci",
		"podman-container://buildkitd", "nerdctl-container://buildkitd", "ssh://builder@build.example.com",
	} {
		if err := checkRemoteAddr(addr); err != nil {
			t.Errorf("checkRemoteAddr(%q) = %v", addr, err)
		}
	}
}

func TestRemoteBuildkitTLSFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if opts, err := remoteTLSOpts("tcp://b:1234", RemoteTLSFromDir(dir)); err != nil || len(opts) != 2 {
		t.Errorf("remoteTLSOpts = %d options, %v", len(opts), err)
	}
	if opts, err := remoteTLSOpts("tcp://b:1234", nil); err != nil || opts != nil {
		t.Errorf("remoteTLSOpts(nil) = %v, %v", opts, err)
	}
	if _, err := remoteTLSOpts("tcp://b:1234", &RemoteTLS{Cert: filepath.Join(dir, "cert.pem")}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("a certificate without a key: %v", err)
	}
	_, err := remoteTLSOpts("tcp://b:1234", &RemoteTLS{CA: filepath.Join(dir, "nope.pem")})
	if err == nil || !strings.Contains(err.Error(), "CA certificate") || !strings.Contains(err.Error(), "nope.pem") {
		t.Errorf("a missing CA: %v", err)
	}
}

// TestRemoteBuildkitSplitTags: with the cache on, a tag that is also a cache source is the cache reference.
func TestRemoteBuildkitSplitTags(t *testing.T) {
	t.Parallel()
	s := Spec{
		Tags:        []string{"r/app:pr-1", "r/app:pr-1-b", "r/app:buildcache-pr", "r/app:pr-1"},
		CacheFrom:   []string{"r/app:buildcache-pr", "r/app:buildcache"},
		InlineCache: true,
	}
	images, caches := splitTags(s)
	if !slices.Equal(images, []string{"r/app:pr-1", "r/app:pr-1-b"}) || !slices.Equal(caches, []string{"r/app:buildcache-pr"}) {
		t.Errorf("splitTags = %v, %v", images, caches)
	}
	s.InlineCache = false
	images, caches = splitTags(s)
	if len(images) != 3 || caches != nil {
		t.Errorf("without the cache: %v, %v", images, caches)
	}
}

func TestRemoteBuildkitPlatforms(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "linux/amd64": "linux/amd64", " linux/amd64 , linux/arm64,": "linux/amd64,linux/arm64"} {
		if got := normalizePlatforms(in); got != want {
			t.Errorf("normalizePlatforms(%q) = %q, want %q", in, got, want)
		}
	}
}
