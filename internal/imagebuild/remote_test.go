package imagebuild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/registry"
	"github.com/opencontainers/go-digest"
)

const (
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIConfig      = "application/vnd.oci.image.config.v1+json"
)

type fakeRegistryManifest struct {
	mediaType string
	body      []byte
}

func (m fakeRegistryManifest) digest() string { return digest.FromBytes(m.body).String() }

// fakeRegistryAPI is an in-memory registry API (enough of it for RemoteImage and TagRemote) on
// loopback, with basic auth when user is set, that records its requests.
type fakeRegistryAPI struct {
	srv        *httptest.Server
	user, pass string
	token      string // a registry token accepted as "Bearer <token>"

	mu        sync.Mutex
	repos     map[string]map[string]fakeRegistryManifest // repo → tag or digest → manifest
	blobs     map[string][]byte
	requests  []string // "METHOD /v2/…"
	putStatus int      // when set, every manifest PUT gets this status and putBody
	putBody   string
}

func newFakeRegistryAPI(t *testing.T) *fakeRegistryAPI {
	f := &fakeRegistryAPI{repos: map[string]map[string]fakeRegistryManifest{}, blobs: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistryAPI) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeRegistryAPI) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakeRegistryAPI) resetLog() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

func writeRegistryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

func (f *fakeRegistryAPI) authorized(r *http.Request) bool {
	if f.user == "" {
		return true
	}
	if u, p, ok := r.BasicAuth(); ok && u == f.user && p == f.pass {
		return true
	}
	return f.token != "" && r.Header.Get("Authorization") == "Bearer "+f.token
}

func (f *fakeRegistryAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if !f.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	if p == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	if repo, ref, ok := strings.Cut(p, "/manifests/"); ok {
		f.serveManifest(w, r, repo, ref)
		return
	}
	if _, d, ok := strings.Cut(p, "/blobs/"); ok && r.Method == http.MethodGet {
		b, found := f.blobs[d]
		if !found {
			writeRegistryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
			return
		}
		w.Header().Set("Docker-Content-Digest", d)
		_, _ = w.Write(b)
		return
	}
	writeRegistryError(w, http.StatusNotFound, "UNSUPPORTED", "not in the fake")
}

func (f *fakeRegistryAPI) serveManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	ms, repoFound := f.repos[repo]
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !repoFound {
			writeRegistryError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
			return
		}
		m, ok := ms[ref]
		if !ok {
			writeRegistryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", m.digest())
		w.Header().Set("Content-Length", fmt.Sprint(len(m.body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(m.body)
		}
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		if f.putStatus != 0 {
			w.WriteHeader(f.putStatus)
			_, _ = io.WriteString(w, f.putBody)
			return
		}
		m := fakeRegistryManifest{mediaType: r.Header.Get("Content-Type"), body: body}
		f.storeLocked(repo, ref, m)
		w.Header().Set("Docker-Content-Digest", m.digest())
		w.WriteHeader(http.StatusCreated)
	default:
		writeRegistryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method")
	}
}

func (f *fakeRegistryAPI) storeLocked(repo, tag string, m fakeRegistryManifest) {
	if f.repos[repo] == nil {
		f.repos[repo] = map[string]fakeRegistryManifest{}
	}
	f.repos[repo][tag] = m
	f.repos[repo][m.digest()] = m
}

// addImage stores an image with labels (no layers) under repo:tag and returns its manifest.
func (f *fakeRegistryAPI) addImage(repo, tag string, labels map[string]string) fakeRegistryManifest {
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Labels": labels},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}},
	})
	cd := digest.FromBytes(cfg).String()
	body, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": mtDockerManifest,
		"config": map[string]any{"mediaType": mtDockerConfig, "size": len(cfg), "digest": cd},
		"layers": []any{},
	})
	m := fakeRegistryManifest{mediaType: mtDockerManifest, body: body}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs[cd] = cfg
	f.storeLocked(repo, tag, m)
	return m
}

// addIndex stores an OCI index of an attestation manifest (listed first, as some builders do)
// and an image with labels under repo:tag.
func (f *fakeRegistryAPI) addIndex(repo, tag string, labels map[string]string) fakeRegistryManifest {
	img := f.addImage(repo, "img-"+tag, labels)
	att := f.addImage(repo, "att-"+tag, map[string]string{"attestation": "yes"})
	body, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": mtOCIIndex,
		"manifests": []any{
			map[string]any{"mediaType": mtDockerManifest, "size": len(att.body), "digest": att.digest(),
				"platform":    map[string]string{"os": "unknown", "architecture": "unknown"},
				"annotations": map[string]string{"vnd.docker.reference.type": "attestation-manifest"}},
			map[string]any{"mediaType": mtDockerManifest, "size": len(img.body), "digest": img.digest(),
				"platform": map[string]string{"os": "linux", "architecture": "amd64"}},
		},
	})
	m := fakeRegistryManifest{mediaType: mtOCIIndex, body: body}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storeLocked(repo, tag, m)
	return m
}

func TestRemoteImage(t *testing.T) {
	f := newFakeRegistryAPI(t)
	f.user, f.pass, f.token = "u", "p4ssw0rd", "regtok"
	img := f.addImage("acme/app", "v1", map[string]string{"org.opencontainers.image.revision": "abc"})
	idx := f.addIndex("acme/app", "multi", map[string]string{"org.opencontainers.image.revision": "def"})
	good := registry.AuthConfig{Username: "u", Password: "p4ssw0rd"}
	host := f.host()

	tests := []struct {
		name     string
		ref      string
		auth     registry.AuthConfig
		found    bool
		digest   string
		revision string
		wantErr  string
	}{
		{name: "image", ref: host + "/acme/app:v1", auth: good, found: true, digest: img.digest(), revision: "abc"},
		{name: "image by digest", ref: host + "/acme/app@" + img.digest(), auth: good, found: true, digest: img.digest(), revision: "abc"},
		{name: "index", ref: host + "/acme/app:multi", auth: good, found: true, digest: idx.digest(), revision: "def"},
		{name: "registry token", ref: host + "/acme/app:v1", auth: registry.AuthConfig{RegistryToken: "regtok"}, found: true, digest: img.digest(), revision: "abc"},
		{name: "tag not found", ref: host + "/acme/app:nope", auth: good},
		{name: "repository not found", ref: host + "/acme/other:v1", auth: good},
		{name: "wrong password", ref: host + "/acme/app:v1", auth: registry.AuthConfig{Username: "u", Password: "wrong-password"}, wantErr: "UNAUTHORIZED"},
		{name: "anonymous", ref: host + "/acme/app:v1", wantErr: "UNAUTHORIZED"},
		{name: "bad reference", ref: host + "/Acme/App:v1", auth: good, wantErr: "invalid image reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, found, err := RemoteImage(context.Background(), tc.ref, tc.auth)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("RemoteImage error = %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "wrong-password") {
					t.Errorf("error contains the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("RemoteImage: %v", err)
			}
			if found != tc.found || info.Digest != tc.digest || info.Labels["org.opencontainers.image.revision"] != tc.revision {
				t.Errorf("RemoteImage = %+v, found=%v; want found=%v digest %s revision %q", info, found, tc.found, tc.digest, tc.revision)
			}
		})
	}
}

func TestRemoteImageNotFoundForms(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"404 without a body", 404, ""},
		{"404 MANIFEST_UNKNOWN", 404, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"Requested image not found"}]}`},
		{"404 NAME_UNKNOWN", 404, `{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name 'x' does not exist in the registry with id '1'"}]}`},
		{"400 MANIFEST_UNKNOWN", 400, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			_, found, err := RemoteImage(context.Background(), strings.TrimPrefix(srv.URL, "http://")+"/x/y:z", registry.AuthConfig{})
			if err != nil || found {
				t.Errorf("RemoteImage = found %v, %v; want not found and no error", found, err)
			}
		})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		writeRegistryError(w, http.StatusForbidden, "DENIED", "requested access to the resource is denied")
	}))
	defer srv.Close()
	if _, found, err := RemoteImage(context.Background(), strings.TrimPrefix(srv.URL, "http://")+"/x/y:z", registry.AuthConfig{}); err == nil || found {
		t.Errorf("403 DENIED: found %v, error %v; want an error", found, err)
	}
}

func TestTagRemote(t *testing.T) {
	const ecrMsg = "The image tag 'inputs-1' already exists in the 'acme/app' repository and cannot be overwritten because the repository is immutable."
	tests := []struct {
		name      string
		index     bool
		existing  bool // dst already names another manifest
		same      bool // dst already names src's manifest
		putStatus int
		putBody   string
		immutable bool
		wantErr   string
		wantPUTs  int
	}{
		{name: "image", wantPUTs: 1},
		{name: "index", index: true, wantPUTs: 1},
		{name: "overwrite a mutable tag", existing: true, wantPUTs: 1},
		{name: "tag already names the manifest", same: true, wantPUTs: 0},
		{name: "ECR immutable tag", existing: true, putStatus: 400, immutable: true, wantPUTs: 1,
			putBody: `{"errors":[{"code":"TAG_INVALID","message":"` + ecrMsg + `"}]}`},
		{name: "ECR API exception", existing: true, putStatus: 400, immutable: true, wantPUTs: 1,
			putBody: `{"__type":"ImageTagAlreadyExistsException","message":"The image tag already exists"}`},
		{name: "Harbor immutable rule", existing: true, putStatus: 412, immutable: true, wantPUTs: 1,
			putBody: `{"errors":[{"code":"PRECONDITION","message":"Failed to process request due to 'acme/app:dst' configured as immutable."}]}`},
		{name: "TAG_IMMUTABLE", existing: true, putStatus: 409, immutable: true, wantPUTs: 1,
			putBody: `{"errors":[{"code":"TAG_IMMUTABLE","message":"tag is immutable"}]}`},
		{name: "other refusal", putStatus: 400, wantErr: "MANIFEST_INVALID", wantPUTs: 1,
			putBody: `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}`},
		{name: "denied", putStatus: 403, wantErr: "DENIED", wantPUTs: 1,
			putBody: `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRegistryAPI(t)
			f.user, f.pass = "u", "p4ssw0rd"
			auth := registry.AuthConfig{Username: "u", Password: "p4ssw0rd"}
			var src fakeRegistryManifest
			if tc.index {
				src = f.addIndex("acme/app", "src", map[string]string{"l": "v"})
			} else {
				src = f.addImage("acme/app", "src", map[string]string{"l": "v"})
			}
			if tc.existing {
				f.addImage("acme/app", "dst", map[string]string{"l": "other"})
			}
			if tc.same {
				f.mu.Lock()
				f.storeLocked("acme/app", "dst", src)
				f.mu.Unlock()
			}
			f.putStatus, f.putBody = tc.putStatus, tc.putBody
			f.resetLog()

			d, err := TagRemote(context.Background(), f.host()+"/acme/app:src", f.host()+"/acme/app:dst", auth)
			var puts, blobs int
			for _, r := range f.log() {
				if strings.HasPrefix(r, "PUT ") {
					puts++
					if r != "PUT /v2/acme/app/manifests/dst" {
						t.Errorf("unexpected write %s", r)
					}
				}
				if strings.Contains(r, "/blobs/") {
					blobs++
				}
			}
			if puts != tc.wantPUTs || blobs != 0 {
				t.Errorf("%d manifest PUTs and %d blob requests, want %d and 0: %q", puts, blobs, tc.wantPUTs, f.log())
			}
			var ie *ImmutableTagError
			switch {
			case tc.immutable:
				if !errors.As(err, &ie) {
					t.Fatalf("error %v (%T), want an *ImmutableTagError", err, err)
				}
				if ie.Ref != f.host()+"/acme/app:dst" || ie.Digest != src.digest() || ie.Message == "" {
					t.Errorf("ImmutableTagError = %+v", ie)
				}
				if !strings.Contains(err.Error(), "immutable") || strings.Contains(err.Error(), "p4ssw0rd") {
					t.Errorf("error message: %v", err)
				}
				return
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.As(err, &ie) {
					t.Fatalf("error = %v, want a plain one containing %q", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("TagRemote: %v", err)
			}
			if d != src.digest() {
				t.Errorf("TagRemote returned %s, want %s", d, src.digest())
			}
			f.mu.Lock()
			got := f.repos["acme/app"]["dst"]
			f.mu.Unlock()
			if !bytes.Equal(got.body, src.body) || got.mediaType != src.mediaType {
				t.Errorf("dst is %s %s, want the same bytes as src (%s)", got.mediaType, got.digest(), src.mediaType)
			}
		})
	}
}

func TestTagRemoteRefusals(t *testing.T) {
	f := newFakeRegistryAPI(t)
	f.addImage("acme/app", "src", nil)
	h := f.host()
	for _, tc := range []struct{ src, dst, want string }{
		{h + "/acme/app:src", h + "/acme/other:dst", "same repository"},
		{h + "/acme/app:src", "ghcr.io/acme/app:dst", "same repository"},
		{h + "/acme/app:src", h + "/acme/app@" + digest.FromString("x").String(), "not a tag"},
		{h + "/acme/app:missing", h + "/acme/app:dst", "MANIFEST_UNKNOWN"},
	} {
		f.resetLog()
		if _, err := TagRemote(context.Background(), tc.src, tc.dst, registry.AuthConfig{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TagRemote(%s, %s) error = %v, want one containing %q", tc.src, tc.dst, err, tc.want)
		}
		for _, r := range f.log() {
			if strings.HasPrefix(r, "PUT ") {
				t.Errorf("TagRemote(%s, %s) wrote %s", tc.src, tc.dst, r)
			}
		}
	}
}

func TestIsLoopbackRegistry(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.0.0.2": true, "localhost:5000": true, "LOCALHOST": true, "[::1]:5000": true, "::1": true,
		"": false, "10.0.0.1:5000": false, "192.168.1.2": false, "ghcr.io": false, "localhost.example.com": false,
	} {
		if got := isLoopbackRegistry(host); got != want {
			t.Errorf("isLoopbackRegistry(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestLoopbackOnlyHTTP(t *testing.T) {
	var sent []string
	tr := loopbackOnlyHTTP{rtFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.URL.String())
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://10.1.2.3/v2/", true},
		{"https://ghcr.io/v2/", true},
		{"http://127.0.0.1:5000/v2/", true},
		{"http://localhost:5000/v2/", true},
		{"http://10.1.2.3/v2/", false},
		{"http://ghcr.io/token", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		_, err := tr.RoundTrip(req)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want allowed=%v", tc.url, err, tc.ok)
		}
	}
	if len(sent) != 4 {
		t.Errorf("sent %q", sent)
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestParseRegistryRefInsecureOnlyForLoopback(t *testing.T) {
	for ref, scheme := range map[string]string{
		"127.0.0.1:5000/a/b:c": "http",
		"127.0.0.5:5000/a/b:c": "http",
		"localhost:5000/a/b:c": "http",
		"ghcr.io/a/b:c":        "https",
		"python:3.12":          "https",
	} {
		r, err := parseRegistryRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Context().Scheme(); got != scheme {
			t.Errorf("%s: scheme %s, want %s", ref, got, scheme)
		}
	}
}

func TestIsImmutableTag(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&ImmutableTagError{Ref: "r", Message: "m"}, true},
		{fmt.Errorf("tagging: %w", &ImmutableTagError{Ref: "r", Message: "m"}), true},
		{fmt.Errorf("pushing x to registry y: %w", &StreamError{Message: "tag invalid: The image tag 'buildcache' already exists in the 'acme/app' repository and cannot be overwritten because the repository is immutable."}), true},
		{errors.New("unknown: Failed to process request due to 'acme/app:buildcache' configured as immutable."), true},
		{errors.New("denied: requested access to the resource is denied"), false},
		{errors.New("tag invalid: bad tag name"), false},
	} {
		if got := IsImmutableTag(tc.err); got != tc.want {
			t.Errorf("IsImmutableTag(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
