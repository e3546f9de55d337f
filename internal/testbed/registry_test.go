//go:build docker

// These tests run the docker-registry binary, which comes with Docker (scripts/setup.sh installs
// it), so they are built only with -tags docker; registry_nodocker_test.go has the ones that do
// not need it.

package testbed

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func status(t *testing.T, r *Registry, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v2/", nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRegistryAuth(t *testing.T) {
	t.Parallel()
	r := NewRegistry(t)
	if !strings.HasPrefix(r.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want 127.0.0.1:port", r.Addr)
	}
	if got := status(t, r, r.Username, r.Password); got != http.StatusOK {
		t.Errorf("GET /v2/ with the right credentials: %d, want 200", got)
	}
	if got := status(t, r, r.Username, "wrong"); got != http.StatusUnauthorized {
		t.Errorf("GET /v2/ with a wrong password: %d, want 401", got)
	}
	if got := status(t, r, "", ""); got != http.StatusUnauthorized {
		t.Errorf("GET /v2/ without credentials: %d, want 401", got)
	}
	// The registry answers 404 NAME_UNKNOWN for a repository never pushed to: no tags.
	if tags, err := r.Tags(testCtx(t), "no/such/repo"); err != nil || len(tags) != 0 {
		t.Errorf("Tags of a missing repository: %v, %v; want none and no error", tags, err)
	}
	if _, err := r.ManifestDigest(testCtx(t), "no/such/repo", "latest"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("ManifestDigest of a missing repository: %v, want a 404 error", err)
	}
	if !strings.Contains(r.LogTail(100), "/v2/") {
		t.Errorf("registry log %s lacks the requests:\n%s", r.LogPath, r.LogTail(100))
	}
}

func TestRegistryClose(t *testing.T) {
	t.Parallel()
	r, err := StartRegistry(testCtx(t), t.TempDir(), "u", "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-r.done:
	default:
		t.Fatal("registry process still running after Close")
	}
	if _, err := http.Get(r.URL() + "/v2/"); err == nil {
		t.Error("registry still answers after Close")
	}
}

func TestStartRegistryRejectsBadCredentials(t *testing.T) {
	t.Parallel()
	for _, up := range [][2]string{{"", "p"}, {"u", ""}, {"a:b", "p"}} {
		if _, err := StartRegistry(testCtx(t), t.TempDir(), up[0], up[1]); err == nil {
			t.Errorf("StartRegistry(%q, %q) succeeded", up[0], up[1])
		}
	}
}

// upload pushes a blob with the registry's monolithic upload (POST, then PUT with the digest).
func upload(t *testing.T, r *Registry, repo string, blob []byte) string {
	t.Helper()
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	req, _ := http.NewRequest(http.MethodPost, r.URL()+"/v2/"+repo+"/blobs/uploads/", nil)
	req.SetBasicAuth(r.Username, r.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = r.URL() + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ = http.NewRequest(http.MethodPut, loc+sep+"digest="+digest, bytes.NewReader(blob))
	req.SetBasicAuth(r.Username, r.Password)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finishing upload: %s", resp.Status)
	}
	return digest
}

func putManifest(t *testing.T, r *Registry, repo, ref, mediaType string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, r.URL()+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body))
	req.SetBasicAuth(r.Username, r.Password)
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s:%s: %s", repo, ref, resp.Status)
	}
}

// TestRegistryHelpers pushes an image by hand through the registry API (no Docker needed) and
// reads it back with ManifestDigest, Tags, ImageConfig and ImageLabels, including via an index.
func TestRegistryHelpers(t *testing.T) {
	t.Parallel()
	r := NewRegistry(t)
	ctx := testCtx(t)
	repo := "team/app"

	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"dagster/location":"etl"}},"rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("not really a tar, the registry does not look")
	cfgDigest := upload(t, r, repo, cfg)
	layerDigest := upload(t, r, repo, layer)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaDockerManifest,
		"config":        map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(cfg), "digest": cfgDigest},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": layerDigest}},
	})
	putManifest(t, r, repo, "pr-7", mediaDockerManifest, manifest)
	manifestDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(manifest))

	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaOCIIndex,
		"manifests": []any{map[string]any{
			"mediaType": mediaDockerManifest, "size": len(manifest), "digest": manifestDigest,
			"platform": map[string]any{"os": "linux", "architecture": "amd64"},
		}},
	})
	putManifest(t, r, repo, "multi", mediaOCIIndex, index)

	got, err := r.ManifestDigest(ctx, repo, "pr-7")
	if err != nil {
		t.Fatal(err)
	}
	if got != manifestDigest {
		t.Errorf("ManifestDigest = %s, want %s", got, manifestDigest)
	}
	if _, err := r.ManifestDigest(ctx, repo, "nope"); err == nil {
		t.Error("ManifestDigest of a missing tag succeeded")
	}
	tags, err := r.Tags(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"multi", "pr-7"}) {
		t.Errorf("Tags = %v, want [multi pr-7]", tags)
	}
	for _, ref := range []string{"pr-7", manifestDigest, "multi"} {
		labels, err := r.ImageLabels(ctx, repo, ref)
		if err != nil {
			t.Fatalf("ImageLabels(%s): %v", ref, err)
		}
		if labels["dagster/location"] != "etl" {
			t.Errorf("ImageLabels(%s) = %v", ref, labels)
		}
	}
	c, err := r.ImageConfig(ctx, repo, "pr-7")
	if err != nil || c["os"] != "linux" {
		t.Errorf("ImageConfig = %v, %v", c, err)
	}
}

func TestRegistryLogFile(t *testing.T) {
	t.Parallel()
	r := NewRegistry(t)
	if _, err := os.Stat(r.LogPath); err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(r.LogPath) != r.Dir {
		t.Errorf("log %s is not under %s", r.LogPath, r.Dir)
	}
}
