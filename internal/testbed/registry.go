package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the distribution registry shipped by Debian's docker-registry package.
const RegistryBinary = "/usr/bin/docker-registry"

// registryBinary is RegistryBinary, replaceable in tests.
var registryBinary = RegistryBinary

// Media types the registry helpers accept.
const (
	mediaDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	mediaOCIIndex           = "application/vnd.oci.image.index.v1+json"
)

var manifestAccept = strings.Join([]string{mediaDockerManifest, mediaOCIManifest, mediaDockerManifestList, mediaOCIIndex}, ", ")

// Registry is a running docker-registry process on 127.0.0.1 with htpasswd (basic) auth. dockerd
// treats 127.0.0.0/8 registries as insecure, so it pushes to it over plain HTTP.
type Registry struct {
	// Addr is host:port, e.g. 127.0.0.1:41234: the registry host part of image references.
	Addr string
	// Username and Password are the only credentials the registry accepts.
	Username, Password string
	// Dir holds the config, htpasswd file, storage and log.
	Dir string
	// LogPath is the registry's own log file.
	LogPath string

	cmd       *exec.Cmd
	done      chan struct{}
	waitErr   error
	closeOnce sync.Once
	closeErr  error
	client    *http.Client
}

// StartRegistry starts /usr/bin/docker-registry on a free loopback port, with its config,
// htpasswd file, storage and log (registry.log) under dir, accepting only username/password. It
// returns once GET /v2/ answers 401; ctx bounds that wait only: the process runs until Close.
func StartRegistry(ctx context.Context, dir, username, password string) (*Registry, error) {
	if _, err := os.Stat(registryBinary); err != nil {
		return nil, fmt.Errorf("the test registry needs %s from the Debian package docker-registry (apt-get install -y docker-registry): %w", registryBinary, err)
	}
	if username == "" || password == "" || strings.Contains(username, ":") {
		return nil, errors.New("testbed registry: username and password must be non-empty, and the username free of ':'")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost) // a test registry: fast checks on every request
	if err != nil {
		return nil, fmt.Errorf("hashing registry password: %w", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(username+":"+string(hash)+"\n"), 0o600); err != nil {
		return nil, err
	}

	// A port picked by the kernel may be taken again before the registry binds it; retry then.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		r, err := startRegistryOnce(ctx, dir, htpasswd, username, password)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("registry port already in use")

func startRegistryOnce(ctx context.Context, dir, htpasswd, username, password string) (*Registry, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	// YAML with every value double-quoted via JSON (a JSON string is a valid YAML scalar).
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: testbed
    path: %s
`, q(filepath.Join(dir, "storage")), q(addr), q(hex.EncodeToString(secret)), q(htpasswd))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(registryBinary, "serve", cfgPath)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = dir
	// Environment variables like REGISTRY_HTTP_ADDR would override the config file.
	cmd.Env = registryEnv()
	// If this process dies without Close (a test timeout, a killed demo), take the registry along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", registryBinary, err)
	}
	logf.Close() // the child holds its own descriptor

	r := &Registry{
		Addr: addr, Username: username, Password: password, Dir: dir, LogPath: logPath,
		cmd: cmd, done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second},
	}
	go func() {
		r.waitErr = cmd.Wait()
		close(r.done)
	}()

	if err := r.waitReady(ctx); err != nil {
		_ = r.Close()
		tail := r.LogTail(30)
		if strings.Contains(tail, "address already in use") {
			return nil, fmt.Errorf("%w: %s", errPortTaken, addr)
		}
		return nil, fmt.Errorf("docker-registry on %s did not become ready: %w\n--- %s (last lines) ---\n%s", addr, err, logPath, tail)
	}
	return r, nil
}

func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls GET /v2/ until it answers 401 (auth is on), the process exits, or 30 s pass.
func (r *Registry) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/v2/", nil)
		resp, err := r.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			last = fmt.Errorf("GET /v2/ answered %s, want 401 Unauthorized", resp.Status)
		} else {
			last = err
		}
		select {
		case <-r.done:
			return fmt.Errorf("docker-registry exited: %v", r.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL returns the registry's base URL, http://127.0.0.1:port.
func (r *Registry) URL() string { return "http://" + r.Addr }

// Close stops the registry (SIGTERM, then SIGKILL after 10 s) and waits for it. It is safe to
// call more than once.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		if r.cmd == nil || r.cmd.Process == nil {
			return
		}
		select {
		case <-r.done:
			return
		default:
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
			r.closeErr = fmt.Errorf("docker-registry on %s ignored SIGTERM and was killed", r.Addr)
		}
	})
	return r.closeErr
}

// LogTail returns the last n lines of the registry's log.
func (r *Registry) LogTail(n int) string {
	b, err := os.ReadFile(r.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", r.LogPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// NewRegistry starts a registry for the test with user "testuser" and a random password, stopped
// via t.Cleanup. A missing docker-registry binary fails the test (it never skips). On failure of
// the test the registry's log tail is printed.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := StartRegistry(ctx, t.TempDir(), "testuser", "pw-"+hex.EncodeToString(pw))
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testbed registry %s log tail (%s):\n%s", r.Addr, r.LogPath, r.LogTail(40))
		}
		if err := r.Close(); err != nil {
			t.Errorf("testbed: %v", err)
		}
	})
	return r
}

// do sends an authenticated request to the registry API.
func (r *Registry) do(ctx context.Context, method, path string, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.URL()+path, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(r.Username, r.Password)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, bytes.TrimSpace(body))
	}
	return resp, nil
}

// Get GETs path (e.g. "/v2/<repo>/blobs/<digest>") with the registry's credentials and accept
// as the Accept header (none when empty), and returns the body and its Content-Type; a status
// other than 200 is an error with the registry's answer.
func (r *Registry) Get(ctx context.Context, path, accept string) ([]byte, string, error) {
	resp, err := r.do(ctx, http.MethodGet, path, accept)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", path, err)
	}
	return body, resp.Header.Get("Content-Type"), nil
}

// Manifest returns the manifest (or index) repo:ref (a tag or digest) and its media type.
func (r *Registry) Manifest(ctx context.Context, repo, ref string) ([]byte, string, error) {
	return r.Get(ctx, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
}

// ManifestDigest returns the Docker-Content-Digest of repo:tag (or repo@digest), as a HEAD on the
// manifest with docker v2 and OCI media types accepted returns it.
func (r *Registry) ManifestDigest(ctx context.Context, repo, tag string) (string, error) {
	resp, err := r.do(ctx, http.MethodHead, "/v2/"+repo+"/manifests/"+tag, manifestAccept)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	d := resp.Header.Get("Docker-Content-Digest")
	if d == "" {
		return "", fmt.Errorf("HEAD /v2/%s/manifests/%s: no Docker-Content-Digest header", repo, tag)
	}
	return d, nil
}

// Tags lists the tags of repo; none (and no error) when nothing was ever pushed to it (the
// registry answers 404 NAME_UNKNOWN).
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	resp, err := r.do(ctx, http.MethodGet, "/v2/"+repo+"/tags/list", "")
	if err != nil {
		if strings.Contains(err.Error(), "404 Not Found") && strings.Contains(err.Error(), `"NAME_UNKNOWN"`) {
			return nil, nil // nothing was ever pushed to repo
		}
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("decoding tags of %s: %w", repo, err)
	}
	return body.Tags, nil
}

type manifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Manifests []struct {
		Digest   string `json:"digest"`
		Platform struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
		} `json:"platform"`
	} `json:"manifests"`
}

// ImageConfig fetches the image config blob of repo:ref (a tag or digest), e.g. to check
// labels under ["config"]["Labels"]. For an index it follows the linux/amd64 entry, else the
// first one.
func (r *Registry) ImageConfig(ctx context.Context, repo, ref string) (map[string]any, error) {
	for depth := 0; depth < 2; depth++ {
		resp, err := r.do(ctx, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
		if err != nil {
			return nil, err
		}
		var m manifest
		err = json.NewDecoder(resp.Body).Decode(&m)
		mt := resp.Header.Get("Content-Type")
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("decoding manifest %s:%s: %w", repo, ref, err)
		}
		if mt == mediaDockerManifestList || mt == mediaOCIIndex || len(m.Manifests) > 0 {
			if len(m.Manifests) == 0 {
				return nil, fmt.Errorf("index %s:%s lists no manifests", repo, ref)
			}
			ref = m.Manifests[0].Digest
			for _, e := range m.Manifests {
				if e.Platform.OS == "linux" && e.Platform.Architecture == "amd64" {
					ref = e.Digest
					break
				}
			}
			continue
		}
		if m.Config.Digest == "" {
			return nil, fmt.Errorf("manifest %s:%s (%s) has no config digest", repo, ref, mt)
		}
		blob, err := r.do(ctx, http.MethodGet, "/v2/"+repo+"/blobs/"+m.Config.Digest, "")
		if err != nil {
			return nil, err
		}
		defer blob.Body.Close()
		var cfg map[string]any
		if err := json.NewDecoder(blob.Body).Decode(&cfg); err != nil {
			return nil, fmt.Errorf("decoding config blob %s of %s:%s: %w", m.Config.Digest, repo, ref, err)
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("%s:%s: nested indexes are not supported", repo, ref)
}

// ImageLabels returns the labels in the image config of repo:ref.
func (r *Registry) ImageLabels(ctx context.Context, repo, ref string) (map[string]string, error) {
	cfg, err := r.ImageConfig(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	c, _ := cfg["config"].(map[string]any)
	l, _ := c["Labels"].(map[string]any)
	for k, v := range l {
		s, _ := v.(string)
		labels[k] = s
	}
	return labels, nil
}
