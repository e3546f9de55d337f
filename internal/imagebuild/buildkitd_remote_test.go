//go:build docker

package imagebuild

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/moby/buildkit/client"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

// The tests of Remote build on the shared test buildkitd (scripts/buildkitd.sh, started by
// scripts/test.sh) over TCP with TLS client certificates, and push to a docker-registry with
// htpasswd auth. No Docker daemon takes part.

// remoteBuilder connects to the shared test buildkitd with its client certificate.
func remoteBuilder(t *testing.T) (*Remote, *testbed.Buildkitd, *syncBuffer) {
	t.Helper()
	bk := testbed.BuildkitdFromEnv(t)
	log := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("remote builder log:\n%s", log.String())
		}
	})
	r, err := NewRemote(testCtx(t, time.Minute), bk.Host, RemoteTLSFromDir(bk.CertPath), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, bk, log
}

// loginTo gives r the registry's credentials, as the pipeline does before the first build.
func loginTo(t *testing.T, r *Remote, reg *testbed.Registry) registry.AuthConfig {
	t.Helper()
	auth := registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr}
	if err := r.Login(context.Background(), auth, "the test"); err != nil {
		t.Fatal(err)
	}
	return auth
}

// registryGet GETs path from the registry with its credentials.
func registryGet(t *testing.T, reg *testbed.Registry, path, accept string) ([]byte, string) {
	t.Helper()
	body, ct, err := reg.Get(testCtx(t, time.Minute), path, accept)
	if err != nil {
		t.Fatal(err)
	}
	return body, ct
}

const manifestTypes = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

// ociManifest is an image manifest or an index.
type ociManifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	} `json:"layers"`
	Manifests []struct {
		Digest   string `json:"digest"`
		Platform *struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
		} `json:"platform"`
	} `json:"manifests"`
}

func getManifest(t *testing.T, reg *testbed.Registry, repo, ref string) (ociManifest, string) {
	t.Helper()
	body, ct := registryGet(t, reg, "/v2/"+repo+"/manifests/"+ref, manifestTypes)
	var m ociManifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("manifest %s:%s: %v", repo, ref, err)
	}
	return m, ct
}

// imageFiles reads the regular files of an image's layers in the registry (the last layer that
// has a path wins).
func imageFiles(t *testing.T, reg *testbed.Registry, repo, ref string) map[string]string {
	t.Helper()
	m, _ := getManifest(t, reg, repo, ref)
	if len(m.Manifests) > 0 {
		t.Fatalf("%s:%s is an index, not an image", repo, ref)
	}
	files := map[string]string{}
	for _, l := range m.Layers {
		blob, _ := registryGet(t, reg, "/v2/"+repo+"/blobs/"+l.Digest, "")
		var r io.Reader = strings.NewReader(string(blob))
		if strings.HasSuffix(l.MediaType, "gzip") {
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				dt, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				files[h.Name] = string(dt)
			}
		}
	}
	return files
}

// repoOf splits "host/repo:tag" into "repo" and "tag".
func repoOf(t *testing.T, reg *testbed.Registry, ref string) (string, string) {
	t.Helper()
	rest, ok := strings.CutPrefix(ref, reg.Addr+"/")
	if !ok {
		t.Fatalf("%s is not in registry %s", ref, reg.Addr)
	}
	repo, tag, _ := strings.Cut(rest, ":")
	return repo, tag
}

// TestRemoteBuildkitBuildAndPush builds a two-stage Dockerfile with a RUN step, a secret mount, a build
// argument, a label and a target on the test buildkitd and pushes it to all its tags in an
// htpasswd registry; Push returns the digest the registry holds, without pushing again.
func TestRemoteBuildkitBuildAndPush(t *testing.T) {
	t.Parallel()
	r, _, _ := remoteBuilder(t)
	reg := testbed.NewRegistry(t)
	auth := loginTo(t, r, reg)
	nonce := randomHex(6)
	dir := testbed.BusyboxContext(t, `FROM scratch AS build
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ARG GREETING
RUN --mount=type=secret,id=token mkdir -p /out && echo "$GREETING" > /out/greeting && sha256sum /run/secrets/token | cut -c1-64 > /out/token.sha && echo `+nonce+` > /out/nonce

FROM scratch AS final
COPY --from=build /out /app
LABEL stage=final

FROM final AS never
RUN this stage must not run
`)
	repo := uniqueRepo(t)
	tags := []string{reg.Addr + "/" + repo + ":v1", reg.Addr + "/" + repo + ":also"}
	log := &syncBuffer{}
	digest, err := r.WithLog(log).Build(testCtx(t, 3*time.Minute), Spec{
		ContextDir: dir,
		Tags:       tags,
		Labels:     map[string]string{"team": "data"},
		BuildArgs:  map[string]string{"GREETING": "hello remote"},
		Target:     "final",
		Secrets:    map[string][]byte{"token": []byte("s3cret-token")},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("digest %q", digest)
	}
	for _, want := range []string{"with remote BuildKit at tcp://", "RUN --mount=type=secret", "pushing layers", "Pushed "} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log.String(), "s3cret-token") {
		t.Error("the secret is in the log")
	}
	for _, tag := range tags {
		repo, tg := repoOf(t, reg, tag)
		got, err := reg.ManifestDigest(context.Background(), repo, tg)
		if err != nil {
			t.Fatal(err)
		}
		if got != digest {
			t.Errorf("registry digest of %s = %s, build said %s", tag, got, digest)
		}
		pushed, err := r.Push(context.Background(), tag, auth)
		if err != nil || pushed != digest {
			t.Errorf("Push(%s) = %q, %v; want %s", tag, pushed, err, digest)
		}
	}
	labels, err := reg.ImageLabels(context.Background(), repo, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if labels["team"] != "data" || labels["stage"] != "final" {
		t.Errorf("labels = %v", labels)
	}
	files := imageFiles(t, reg, repo, "v1")
	sum := sha256.Sum256([]byte("s3cret-token"))
	want := map[string]string{"app/greeting": "hello remote\n", "app/token.sha": hex.EncodeToString(sum[:]) + "\n", "app/nonce": nonce + "\n"}
	for name, content := range want {
		if files[name] != content {
			t.Errorf("image file %s = %q, want %q (files: %v)", name, files[name], content, slices.Sorted(maps.Keys(files)))
		}
	}
	if _, ok := files["bin/busybox"]; ok {
		t.Error("the final image has the build stage's busybox")
	}
	if _, err := r.Push(context.Background(), reg.Addr+"/"+repo+":other", auth); err == nil {
		t.Error("Push of a tag no build pushed worked")
	}
}

// TestRemoteBuildkitGeneratedDockerfile builds with Spec.DockerfileContent: the generated Dockerfile is
// used, the context's own Dockerfile is an ordinary file, and .dockerignore applies.
func TestRemoteBuildkitGeneratedDockerfile(t *testing.T) {
	t.Parallel()
	r, _, log := remoteBuilder(t)
	reg := testbed.NewRegistry(t)
	loginTo(t, r, reg)
	dir := writeContext(t, map[string]string{
		"Dockerfile":    "FROM does-not-exist.invalid/nothing\n",
		"app/main.py":   "print('hi')\n",
		"secret.txt":    "not for the image\n",
		".dockerignore": "secret.txt\n",
	})
	ref := reg.Addr + "/" + uniqueRepo(t) + ":gen"
	_, err := r.Build(testCtx(t, 3*time.Minute), Spec{
		ContextDir:        dir,
		Tags:              []string{ref},
		DockerfileContent: []byte("FROM scratch\nCOPY . /app\nLABEL generated=yes nonce=" + randomHex(6) + "\n"),
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	repo, tag := repoOf(t, reg, ref)
	files := imageFiles(t, reg, repo, tag)
	if files["app/app/main.py"] != "print('hi')\n" || files["app/Dockerfile"] == "" {
		t.Errorf("image files: %v", slices.Sorted(maps.Keys(files)))
	}
	if _, ok := files["app/secret.txt"]; ok {
		t.Error(".dockerignore did not exclude secret.txt")
	}
	labels, err := reg.ImageLabels(context.Background(), repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	if labels["generated"] != "yes" {
		t.Errorf("labels = %v: the generated Dockerfile was not used", labels)
	}
}

// TestRemoteBuildkitRegistryCacheMax exports the registry cache with mode=max, prunes buildkitd's local
// cache, and builds again: the intermediate stage's RUN step comes from the registry cache.
func TestRemoteBuildkitRegistryCacheMax(t *testing.T) {
	t.Parallel()
	r, bk, _ := remoteBuilder(t)
	reg := testbed.NewRegistry(t)
	auth := loginTo(t, r, reg)
	nonce := randomHex(8)
	dir := testbed.BusyboxContext(t, `FROM scratch AS deps
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /deps && echo built-`+nonce+` > /deps/marker"]

FROM scratch
COPY --from=deps /deps /deps
`)
	repo := reg.Addr + "/" + uniqueRepo(t)
	cache := repo + ":buildcache"
	spec := func(tag string) Spec {
		// As the pipeline plans it: the cache reference is a tag and a cache source.
		return Spec{ContextDir: dir, Tags: []string{repo + ":" + tag, cache}, CacheFrom: []string{cache}, InlineCache: true}
	}

	first := &syncBuffer{}
	d1, err := r.WithLog(first).Build(testCtx(t, 3*time.Minute), spec("one"))
	if err != nil {
		t.Fatalf("%v\n%s", err, first)
	}
	t.Logf("first build:\n%s", first)
	if !strings.Contains(first.String(), "no cache image yet") {
		t.Errorf("the first build does not say that there is no cache yet:\n%s", first)
	}
	if !strings.Contains(first.String(), "exporting cache to registry") {
		t.Errorf("the first build exported no cache:\n%s", first)
	}
	if d, err := r.Push(context.Background(), cache, auth); err != nil || d != "" {
		t.Errorf("Push(cache) = %q, %v; want \"\", nil", d, err)
	}
	// The cache reference holds the cache, not the image.
	cm, _ := getManifest(t, reg, strings.TrimPrefix(repo, reg.Addr+"/"), "buildcache")
	if cm.Config.MediaType != "application/vnd.buildkit.cacheconfig.v0" {
		t.Errorf("the cache reference holds %+v, want a BuildKit cache manifest", cm)
	}

	// Forget everything buildkitd has cached.
	bkc := bk.Client(t)
	if n := cacheRecords(t, bkc, nonce); n == 0 {
		t.Fatalf("buildkitd has no cache record of the RUN step (%s) before the prune", nonce)
	}
	if err := bkc.Prune(testCtx(t, 2*time.Minute), nil, client.PruneAll); err != nil {
		t.Fatal(err)
	}
	if n := cacheRecords(t, bkc, nonce); n != 0 {
		t.Fatalf("the prune left %d cache records of the RUN step", n)
	}

	second := &syncBuffer{}
	d2, err := r.WithLog(second).Build(testCtx(t, 3*time.Minute), spec("two"))
	if err != nil {
		t.Fatalf("%v\n%s", err, second)
	}
	if d2 != d1 {
		t.Errorf("the rebuild from cache gave another image: %s, first %s", d2, d1)
	}
	t.Logf("second build, after the prune:\n%s", second)
	step := stepNumber(t, second.String(), "built-"+nonce)
	if !strings.Contains(second.String(), "\n"+step+" CACHED\n") {
		t.Errorf("after pruning, the RUN step of the intermediate stage (%s) was not CACHED from the registry cache:\n%s", step, second)
	}
}

// cacheRecords counts buildkitd's cache records whose description has marker.
func cacheRecords(t *testing.T, c *client.Client, marker string) int {
	t.Helper()
	du, err := c.DiskUsage(testCtx(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range du {
		if strings.Contains(r.Description, marker) {
			n++
		}
	}
	return n
}

// stepNumber finds the "#N" of the step whose header contains marker.
func stepNumber(t *testing.T, log, marker string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^(#\d+) .*` + regexp.QuoteMeta(marker)).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no step with %q in the log:\n%s", marker, log)
	}
	return m[1]
}

// TestRemoteBuildkitMultiPlatform builds linux/amd64 and linux/arm64 in one build (FROM scratch and
// COPY, so that no emulation is needed) and pushes one manifest list with both.
func TestRemoteBuildkitMultiPlatform(t *testing.T) {
	t.Parallel()
	r, _, log := remoteBuilder(t)
	reg := testbed.NewRegistry(t)
	loginTo(t, r, reg)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM scratch\nARG TARGETPLATFORM\nCOPY hello.txt /hello.txt\nLABEL nonce=" + randomHex(6) + "\n",
		"hello.txt":  "hello\n",
	})
	ref := reg.Addr + "/" + uniqueRepo(t) + ":multi"
	digest, err := r.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: dir, Tags: []string{ref}, Platform: "linux/amd64, linux/arm64"})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	repo, tag := repoOf(t, reg, ref)
	m, ct := getManifest(t, reg, repo, tag)
	if ct != "application/vnd.oci.image.index.v1+json" && ct != "application/vnd.docker.distribution.manifest.list.v2+json" {
		t.Fatalf("%s is %s, want a manifest list", ref, ct)
	}
	var platforms []string
	for _, e := range m.Manifests {
		if e.Platform != nil && e.Platform.OS != "unknown" {
			platforms = append(platforms, e.Platform.OS+"/"+e.Platform.Architecture)
		}
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms = %v, want linux/amd64 and linux/arm64", platforms)
	}
	got, err := reg.ManifestDigest(context.Background(), repo, tag)
	if err != nil || got != digest {
		t.Errorf("registry digest %s (%v), build said %s", got, err, digest)
	}
}

// TestRemoteBuildkitFailingStep reports the failing RUN step with its output and exit code.
func TestRemoteBuildkitFailingStep(t *testing.T) {
	t.Parallel()
	r, _, log := remoteBuilder(t)
	reg := testbed.NewRegistry(t)
	loginTo(t, r, reg)
	dir := testbed.BusyboxContext(t, "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo about to fail "+randomHex(4)+"; exit 3\"]\n")
	_, err := r.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: dir, Tags: []string{reg.Addr + "/" + uniqueRepo(t) + ":fail"}})
	t.Logf("error: %v", err)
	var se *StreamError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *StreamError\n%s", err, log)
	}
	if se.Code != 3 || !strings.Contains(se.Step, "RUN") || !slices.ContainsFunc(se.Tail, func(l string) bool { return strings.Contains(l, "about to fail") }) {
		t.Errorf("StreamError = %+v", se)
	}
}

// TestRemoteBuildkitWithoutPush builds and pushes nothing.
func TestRemoteBuildkitWithoutPush(t *testing.T) {
	t.Parallel()
	r, _, log := remoteBuilder(t)
	reg := testbed.NewRegistry(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": randomHex(4)})
	ref := reg.Addr + "/" + uniqueRepo(t) + ":local"
	nr := r.WithoutPush()
	d, err := nr.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: dir, Tags: []string{ref}})
	if err != nil || d != "" {
		t.Fatalf("Build = %q, %v\n%s", d, err, log)
	}
	repo, tag := repoOf(t, reg, ref)
	if _, err := reg.ManifestDigest(context.Background(), repo, tag); err == nil {
		t.Error("WithoutPush pushed the image")
	}
	if _, err := nr.Push(context.Background(), ref, registry.AuthConfig{}); err == nil {
		t.Error("Push after a build without push worked")
	}
}

// TestRemoteBuildkitWrongCredentials fails the push with the registry's refusal and where the
// credentials came from, never the password.
func TestRemoteBuildkitWrongCredentials(t *testing.T) {
	t.Parallel()
	r, _, _ := remoteBuilder(t)
	reg := testbed.NewRegistry(t)
	if err := r.Login(context.Background(), registry.AuthConfig{Username: reg.Username, Password: "wrong-password-123", ServerAddress: reg.Addr}, "the inputs registry_username/registry_password"); err != nil {
		t.Fatal(err)
	}
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": randomHex(4)})
	_, err := r.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: dir, Tags: []string{reg.Addr + "/" + uniqueRepo(t) + ":x"}})
	if err == nil {
		t.Fatal("the push with a wrong password worked")
	}
	t.Logf("error: %v", err)
	msg := err.Error()
	if !strings.Contains(msg, "registry_username/registry_password") || strings.Contains(msg, "wrong-password-123") {
		t.Errorf("error = %v", err)
	}
}

// TestRemoteBuildkitTLSRequired: the TCP listener refuses clients without a client certificate, with an
// error that says so; a wrong CA is named too.
func TestRemoteBuildkitTLSRequired(t *testing.T) {
	t.Parallel()
	bk := testbed.BuildkitdFromEnv(t)
	other := t.TempDir() // a CA, server and client certificate that buildkitd does not know
	if err := testbed.WriteDockerTLSCerts(other); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tls  *RemoteTLS
		want string
	}{
		{"no TLS", nil, "speak TLS"},
		{"no client certificate", &RemoteTLS{CA: bk.CA()}, "requires a TLS client certificate"},
		{"wrong CA", &RemoteTLS{CA: other + "/ca/cert.pem", Cert: bk.Cert(), Key: bk.Key()}, "could not be verified"},
		{"client certificate of another CA", &RemoteTLS{CA: bk.CA(), Cert: other + "/client/cert.pem", Key: other + "/client/key.pem"}, "refused the client certificate"},
		{"missing key file", &RemoteTLS{CA: bk.CA(), Cert: bk.Cert(), Key: bk.Key() + ".missing"}, "client key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewRemote(testCtx(t, time.Minute), bk.Host, tc.tls, nil)
			if err == nil {
				t.Fatal("connected")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), bk.Host) {
				t.Errorf("error = %v\nwant it to name %s and say %q", err, bk.Host, tc.want)
			}
		})
	}
	// The unix socket needs no TLS.
	r, err := NewRemote(testCtx(t, time.Minute), bk.UnixHost, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
}

// TestRemoteBuildkitSSH forwards an ssh-agent and a key file to RUN --mount=type=ssh on buildkitd.
func TestRemoteBuildkitSSH(t *testing.T) {
	t.Parallel()
	r, _, log := remoteBuilder(t)
	reg := testbed.NewRegistry(t)
	loginTo(t, r, reg)
	sock, key := sshAgent(t)
	dir := testbed.BusyboxContext(t, `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo default-ok > /ssh
RUN --mount=type=ssh,id=deploy test -S "$SSH_AUTH_SOCK" && echo deploy-ok >> /ssh && echo `+randomHex(4)+`
`)
	rr := r.WithLog(log)
	rr.getenv = func(k string) string {
		if k == "SSH_AUTH_SOCK" {
			return sock
		}
		return ""
	}
	ref := reg.Addr + "/" + uniqueRepo(t) + ":ssh"
	if _, err := rr.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: dir, Tags: []string{ref}, SSH: []string{"default", "deploy=" + key}}); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	repo, tag := repoOf(t, reg, ref)
	if got := imageFiles(t, reg, repo, tag)["ssh"]; got != "default-ok\ndeploy-ok\n" {
		t.Errorf("/ssh = %q", got)
	}
}

// TestRemoteBuildkitCacheExportFailure: a cache that cannot be written does not fail the build;
// Push of the cache reference reports it, as the pipeline expects of a cache push.
func TestRemoteBuildkitCacheExportFailure(t *testing.T) {
	t.Parallel()
	r, _, log := remoteBuilder(t)
	reg := testbed.NewRegistry(t)
	auth := loginTo(t, r, reg)
	locked := testbed.NewRegistry(t) // no credentials given for it
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": randomHex(4)})
	ref := reg.Addr + "/" + uniqueRepo(t) + ":v1"
	cache := locked.Addr + "/" + uniqueRepo(t) + ":buildcache"
	d, err := r.Build(testCtx(t, 3*time.Minute), Spec{ContextDir: dir, Tags: []string{ref, cache}, CacheFrom: []string{cache}, InlineCache: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if got, err := r.Push(context.Background(), ref, auth); err != nil || got != d {
		t.Errorf("Push(image) = %q, %v; want %s", got, err, d)
	}
	_, err = r.Push(context.Background(), cache, registry.AuthConfig{})
	t.Logf("Push(cache): %v", err)
	if err == nil || !strings.Contains(err.Error(), "exporting the build cache to "+cache) || !strings.Contains(err.Error(), "401") {
		t.Errorf("Push(cache) = %v, want the export's 401", err)
	}
}
