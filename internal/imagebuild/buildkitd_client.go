package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/connhelper"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/tonistiigi/fsutil"

	// The connection helpers the address may name, as buildctl and buildx register them: they
	// run `docker exec`, `kubectl exec`, `podman exec`, `nerdctl exec` or `ssh` to reach a
	// buildkitd, so the matching command must be installed.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"
	_ "github.com/moby/buildkit/client/connhelper/nerdctlcontainer"
	_ "github.com/moby/buildkit/client/connhelper/podmancontainer"
	_ "github.com/moby/buildkit/client/connhelper/ssh"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
)

// EnvBuildkitHost is the environment variable buildctl reads for the buildkitd address; the
// action's builder input falls back to it.
const EnvBuildkitHost = "BUILDKIT_HOST"

// remoteAddrHelp names where a remote builder's address comes from, for error messages.
const remoteAddrHelp = "the action input builder, or BUILDKIT_HOST"

// remotePingTimeout bounds the first contact with buildkitd in NewRemote.
var remotePingTimeout = 30 * time.Second

// RemoteTLS holds the paths of the TLS files for a buildkitd reached over tcp:// with TLS, as
// `buildctl --tlscacert --tlscert --tlskey` and buildx's remote driver (cacert, cert, key) take
// them.
type RemoteTLS struct {
	// CA is the CA certificate (PEM) that signed buildkitd's certificate; empty trusts the
	// system's roots.
	CA string
	// Cert and Key are the client certificate and its key (PEM), signed by the CA buildkitd
	// trusts (its --tlscacert); both or neither.
	Cert, Key string
	// ServerName is the name to verify buildkitd's certificate against; empty means the host of
	// the address.
	ServerName string
}

// RemoteTLSFromDir returns the TLS files of a directory holding ca.pem, cert.pem and key.pem
// (the layout of DOCKER_CERT_PATH and of docker:dind's client certificates).
func RemoteTLSFromDir(dir string) *RemoteTLS {
	return &RemoteTLS{
		CA:   filepath.Join(dir, "ca.pem"),
		Cert: filepath.Join(dir, "cert.pem"),
		Key:  filepath.Join(dir, "key.pem"),
	}
}

// Remote builds images on a BuildKit daemon (buildkitd) with github.com/moby/buildkit's client
// and pushes them from there: no Docker daemon is involved. It suits runners without Docker
// (Kubernetes, GitLab runners without dind) and a shared BuildKit fleet, and it can build
// multi-platform images (Spec.Platform "linux/amd64,linux/arm64" gives one manifest list) and
// export a registry cache with mode=max.
//
// Its methods match those of Builder that the pipeline uses, with these differences:
//
//   - Build pushes: the image exporter pushes the image to all its tags as the build ends, with
//     the credentials given to Login (and Spec.PullAuth). Push then only returns the digest the
//     build pushed; nothing is pushed twice. WithoutPush makes a Remote that only builds.
//   - The build cache: a Spec tag that is also one of Spec.CacheFrom is the build's cache
//     reference (the pipeline's buildcache tag). When Spec.InlineCache is set, the image is not
//     pushed there: BuildKit exports its registry cache there instead (type=registry, mode=max,
//     so every stage's layers are cached, not only the final image's), and Push of that
//     reference reports whether the export worked. CacheFrom references are imported as
//     registry caches (an image with inline cache works too; a missing one is skipped).
//   - Login stores the credentials for the build sessions; it does not contact the registry.
//
// A Remote is safe for concurrent use; the Remotes WithLog makes share its connection and the
// digests of its pushes. Close it when done.
type Remote struct {
	addr   string
	c      *client.Client
	log    io.Writer
	push   bool
	getenv func(string) string

	state *remoteState
}

// remoteState is what the Remotes of one NewRemote share.
type remoteState struct {
	mu    sync.Mutex
	auths map[string]registry.AuthConfig // from Login, by registryauth.ConfigKey(host)
	from  map[string]string              // where each Login's credentials came from
	// pushed holds the digest each pushed tag got; cache the build cache references of builds
	// that exported their cache, with the export's error ("" when it worked).
	pushed map[string]string
	cache  map[string]string
}

// NewRemote connects to the buildkitd at addr, checks that it answers and has a worker, and logs
// its version and platforms to log. addr is a BuildKit address: tcp://host:port (with tls, as
// buildkitd's TCP listener usually requires client certificates), unix:///path, or one of the
// connection helpers docker-container://<container>, kube-pod://<pod>?namespace=<ns>,
// podman-container://, nerdctl-container:// and ssh://user@host (which run the matching
// command). tls may be nil (no TLS). A nil log discards output.
func NewRemote(ctx context.Context, addr string, tls *RemoteTLS, log io.Writer) (*Remote, error) {
	if log == nil {
		log = io.Discard
	}
	addr = strings.TrimSpace(addr)
	if err := checkRemoteAddr(addr); err != nil {
		return nil, err
	}
	opts, err := remoteTLSOpts(addr, tls)
	if err != nil {
		return nil, err
	}
	c, err := client.New(ctx, addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the BuildKit daemon at %s (%s): %w", addr, remoteAddrHelp, err)
	}
	pctx, cancel := context.WithTimeout(ctx, remotePingTimeout)
	defer cancel()
	workers, err := c.ListWorkers(pctx)
	if err == nil && len(workers) == 0 {
		err = errors.New("it has no workers to build with")
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("cannot use the BuildKit daemon at %s (%s): %w\n%s", addr, remoteAddrHelp, err, remoteUnreachableHelp(addr, tls, err))
	}
	version := "unknown version"
	if info, err := c.Info(pctx); err == nil && info.BuildkitVersion.Version != "" {
		version = info.BuildkitVersion.Version
	}
	var platforms []string
	for _, w := range workers {
		for _, p := range w.Platforms {
			if s := p.OS + "/" + p.Architecture; !slices.Contains(platforms, s) {
				platforms = append(platforms, s)
			}
		}
	}
	fmt.Fprintf(log, "Builder: remote BuildKit at %s (buildkitd %s, platforms %s)\n", addr, version, strings.Join(platforms, ", "))
	return &Remote{
		addr: addr, c: c, log: log, push: true, getenv: os.Getenv,
		state: &remoteState{
			auths: map[string]registry.AuthConfig{}, from: map[string]string{},
			pushed: map[string]string{}, cache: map[string]string{},
		},
	}, nil
}

// checkRemoteAddr accepts the schemes the client can dial: tcp, unix and registered helpers.
func checkRemoteAddr(addr string) error {
	if addr == "" {
		return fmt.Errorf("no BuildKit address given (%s): want tcp://host:port, unix:///path/to/buildkitd.sock, or a connection helper such as kube-pod://<pod>", remoteAddrHelp)
	}
	if addr == "docker" {
		return errors.New("the builder \"docker\" is the Docker daemon, not a BuildKit address: build with NewBuilder")
	}
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" || !strings.Contains(addr, "://") {
		return fmt.Errorf("the BuildKit address %q (%s) is not a URL: want tcp://host:port, unix:///path/to/buildkitd.sock, or a connection helper such as kube-pod://<pod>", addr, remoteAddrHelp)
	}
	switch u.Scheme {
	case "tcp":
		if u.Host == "" || u.Port() == "" {
			return fmt.Errorf("the BuildKit address %q (%s) has no host:port: want tcp://host:port", addr, remoteAddrHelp)
		}
		return nil
	case "unix":
		if u.Path == "" && u.Opaque == "" {
			return fmt.Errorf("the BuildKit address %q (%s) has no socket path: want unix:///path/to/buildkitd.sock", addr, remoteAddrHelp)
		}
		return nil
	}
	h, err := connhelper.GetConnectionHelper(addr)
	if err != nil {
		return fmt.Errorf("the BuildKit address %q (%s): %w", addr, remoteAddrHelp, err)
	}
	if h == nil {
		return fmt.Errorf("the BuildKit address %q (%s) has the unknown scheme %q: want tcp://host:port, unix:///path, docker-container://<container>, kube-pod://<pod>, podman-container://<container>, nerdctl-container://<container> or ssh://[user@]host", addr, remoteAddrHelp, u.Scheme+"://")
	}
	return nil
}

// remoteTLSOpts checks the TLS files (so that a wrong path is named as such) and returns the
// client's options for them.
func remoteTLSOpts(addr string, t *RemoteTLS) ([]client.ClientOpt, error) {
	if t == nil || (t.CA == "" && t.Cert == "" && t.Key == "") {
		return nil, nil
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, fmt.Errorf("TLS for the BuildKit daemon at %s: give both the client certificate and its key, or neither (certificate %q, key %q)", addr, t.Cert, t.Key)
	}
	for _, f := range []struct{ what, path string }{
		{"CA certificate (the CA that signed buildkitd's certificate)", t.CA},
		{"client certificate", t.Cert},
		{"client key", t.Key},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("TLS for the BuildKit daemon at %s: the %s %s cannot be read: %w", addr, f.what, f.path, err)
		}
	}
	var opts []client.ClientOpt
	if t.CA != "" {
		opts = append(opts, client.WithServerConfig(t.ServerName, t.CA))
	} else {
		opts = append(opts, client.WithServerConfigSystem(t.ServerName))
	}
	if t.Cert != "" {
		opts = append(opts, client.WithCredentials(t.Cert, t.Key))
	}
	return opts, nil
}

// remoteUnreachableHelp says what to check when buildkitd at addr did not answer with err.
func remoteUnreachableHelp(addr string, t *RemoteTLS, err error) string {
	msg := err.Error()
	hasTLS := t != nil && (t.CA != "" || t.Cert != "")
	hasCert := t != nil && t.Cert != ""
	// Over TLS 1.3 a server checks the client's certificate after the handshake, so its refusal
	// reaches the client as an alert or as a closed connection, depending on timing.
	closed := strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "EOF") || strings.Contains(msg, "connection closed")
	switch {
	case hasTLS && !hasCert && (strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") || closed):
		return "buildkitd refused the connection: it requires a TLS client certificate there (it was started with --tlscacert). Give the client certificate and key, signed by that CA."
	case hasCert && (strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") || strings.Contains(msg, "unknown certificate authority") || closed):
		// Go's TLS client does not even send a certificate of a CA the server did not name.
		return "buildkitd refused the client certificate: it must be signed by the CA buildkitd trusts (its --tlscacert), and not expired."
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate signed by unknown authority"):
		return "buildkitd's certificate could not be verified: give the CA certificate that signed it, for the host in the address (or a server name)."
	case !hasTLS && strings.HasPrefix(addr, "tcp://") && (closed || strings.Contains(msg, "server preface")):
		return "buildkitd seems to speak TLS there and no TLS files are configured: give the CA certificate, client certificate and key."
	case hasTLS && (strings.Contains(msg, "first record does not look like a TLS handshake") || strings.Contains(msg, "tls:")):
		return "The TLS connection failed: does buildkitd listen with TLS there (--tlscert, --tlskey, --tlscacert)?"
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such file or directory"):
		return "Nothing listens at that address: is buildkitd running there, and reachable from this job?"
	}
	return "Is buildkitd running at that address and reachable from this job?"
}

// Close closes the connection to buildkitd (of all the Remotes that share it).
func (r *Remote) Close() error { return r.c.Close() }

// Addr returns the buildkitd address.
func (r *Remote) Addr() string { return r.addr }

// WithLog returns a Remote that writes the progress of its builds to log and shares r's
// connection, credentials and pushes: concurrent builds keep their logs apart. A nil log
// discards output.
func (r *Remote) WithLog(log io.Writer) *Remote {
	if log == nil {
		log = io.Discard
	}
	c := *r
	c.log = log
	return &c
}

// WithoutPush returns a Remote whose builds export nothing: the result stays in buildkitd's
// cache, as `docker buildx build` without --push or --load leaves it. Push then fails.
func (r *Remote) WithoutPush() *Remote {
	c := *r
	c.push = false
	return &c
}

// Login stores auth for the registry auth.ServerAddress: build sessions answer buildkitd's
// requests for that registry's credentials (pushing the image and the cache, pulling FROM and
// cache images) with it. from says where the credentials came from, for error messages. It
// does not contact the registry: wrong credentials show when the build pushes.
func (r *Remote) Login(_ context.Context, auth registry.AuthConfig, from string) error {
	if registryauth.IsEmpty(auth) {
		return nil
	}
	if auth.ServerAddress == "" {
		return errors.New("registry login: no registry address in the credentials")
	}
	key := registryauth.ConfigKey(displayHost(auth.ServerAddress))
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	r.state.auths[key] = auth
	r.state.from[displayHost(auth.ServerAddress)] = from
	return nil
}

// sessionAuths are the credentials a build's session offers: s.PullAuth, and for other
// registries those given to Login.
func (r *Remote) sessionAuths(s Spec) map[string]registry.AuthConfig {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	out := maps.Clone(r.state.auths)
	if out == nil {
		out = map[string]registry.AuthConfig{}
	}
	maps.Copy(out, s.PullAuth)
	return out
}

// splitTags divides s.Tags into the image's tags and the build cache references (see Remote).
func splitTags(s Spec) (images, caches []string) {
	for _, t := range s.Tags {
		if s.InlineCache && slices.Contains(s.CacheFrom, t) {
			if !slices.Contains(caches, t) {
				caches = append(caches, t)
			}
			continue
		}
		if !slices.Contains(images, t) {
			images = append(images, t)
		}
	}
	return images, caches
}

// Build builds s on buildkitd and, unless the Remote was made WithoutPush, pushes the image to
// its tags and exports the build cache (see Remote). It returns the pushed manifest's digest
// ("sha256:…"; a manifest list's for several platforms), or "" when nothing was pushed. The
// progress goes to the Remote's log as plain text, as Builder prints BuildKit's; a failing step
// gives a *StreamError naming it, with its last output lines.
func (r *Remote) Build(ctx context.Context, s Spec) (string, error) {
	bc, err := prepareSpecContext(s)
	if err != nil {
		return "", err
	}
	if len(s.Tags) == 0 {
		return "", errors.New("build: no image tags given")
	}
	images, caches := splitTags(s)
	if len(images) == 0 {
		return "", fmt.Errorf("build: every tag (%s) is a build cache reference; give the image a tag", strings.Join(s.Tags, ", "))
	}
	ref := images[0]

	mounts, filename, err := remoteMounts(bc)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", ref, err)
	}
	spec := s
	spec.PullAuth = r.sessionAuths(s)
	attachables, err := sessionAttachables(spec, r.getenv)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", ref, err)
	}

	attrs := map[string]string{"filename": filename}
	if s.Target != "" {
		attrs["target"] = s.Target
	}
	if p := normalizePlatforms(s.Platform); p != "" {
		attrs["platform"] = p
	}
	for k, v := range s.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	for k, v := range s.Labels {
		attrs["label:"+k] = v
	}
	opt := client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   mounts,
		SharedKey:     sharedKey(bc.dir),
		Session:       attachables,
	}
	for _, c := range s.CacheFrom {
		opt.CacheImports = append(opt.CacheImports, client.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": c}})
	}
	if r.push {
		opt.Exports = []client.ExportEntry{{
			Type:  client.ExporterImage,
			Attrs: map[string]string{"name": strings.Join(images, ","), "push": "true"},
		}}
		for _, c := range caches {
			opt.CacheExports = append(opt.CacheExports, client.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{
				"ref":  c,
				"mode": "max",
				// An image manifest rather than an index: registries such as ECR only take this.
				"image-manifest": "true",
				"oci-mediatypes": "true",
				// A cache that cannot be written costs the next build time, not this one; Push
				// of the cache reference reports it.
				"ignore-error": "true",
			}})
		}
	}

	what := "building"
	if r.push {
		what = "building and pushing"
	}
	fmt.Fprintf(r.log, "%s %s from %s (%s) with remote BuildKit at %s\n", capitalize(what), strings.Join(images, ", "), bc.dir, bc.describeDockerfile(), r.addr)
	if len(caches) > 0 && r.push {
		fmt.Fprintf(r.log, "Build cache: exported to %s (mode=max)\n", strings.Join(caches, ", "))
	}

	trace := &tracePrinter{w: r.log}
	statuses := make(chan *client.SolveStatus)
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for st := range statuses {
			for _, sr := range st.Marshal() {
				trace.print(sr)
			}
		}
	}()
	resp, err := r.c.Solve(ctx, nil, opt, statuses) // closes statuses
	<-printed
	trace.finish()
	if err != nil {
		se := &StreamError{Op: "build", Message: redactAll(err.Error(), spec.PullAuth)}
		trace.annotate(se)
		return "", fmt.Errorf("%s %s on the BuildKit daemon at %s: %w%s", what, ref, r.addr, se, r.authHint(se.Message, images))
	}
	if !r.push {
		return "", nil
	}
	digest := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	if digest == "" {
		return "", fmt.Errorf("building and pushing %s: buildkitd reported no image digest", ref)
	}
	fmt.Fprintf(r.log, "Pushed %s (%s)\n", strings.Join(images, ", "), digest)
	cacheErrs := trace.cacheExportErrors()
	r.state.mu.Lock()
	for _, t := range images {
		r.state.pushed[t] = digest
	}
	for _, c := range caches {
		r.state.cache[c] = cacheErrs
	}
	r.state.mu.Unlock()
	return digest, nil
}

// Push returns the digest the build of ref pushed: the Remote pushes as it builds. For a build
// cache reference it returns "" and the cache export's error, if any. A reference no build of
// this Remote pushed is an error.
func (r *Remote) Push(_ context.Context, ref string, _ registry.AuthConfig) (string, error) {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	if d, ok := r.state.pushed[ref]; ok {
		return d, nil
	}
	if e, ok := r.state.cache[ref]; ok {
		if e != "" {
			return "", fmt.Errorf("exporting the build cache to %s: %s", ref, e)
		}
		return "", nil
	}
	if !r.push {
		return "", fmt.Errorf("pushing %s: this remote BuildKit builder was set up not to push", ref)
	}
	return "", fmt.Errorf("pushing %s: the remote BuildKit builder pushes images as it builds them, and no build of it pushed %s", ref, ref)
}

// authHint adds, to a build failure that looks like a refused push, where the credentials came
// from.
func (r *Remote) authHint(msg string, tags []string) string {
	if !isAuthFailure(msg) {
		return ""
	}
	host := registryauth.Host(tags[0])
	r.state.mu.Lock()
	from, ok := r.state.from[displayHost(host)]
	r.state.mu.Unlock()
	if !ok {
		return fmt.Sprintf("\nregistry %s refused the request, and no credentials were given for it (anonymous access)", host)
	}
	return fmt.Sprintf("\nregistry %s refused the request: check the credentials from %s", host, from)
}

// cacheExportErrors returns the errors of the build's cache exports, "" if they worked.
func (p *tracePrinter) cacheExportErrors() string {
	var errs []string
	for _, v := range p.vertexes {
		if strings.HasPrefix(v.name, "exporting cache") && v.err != "" {
			errs = append(errs, v.err)
		}
	}
	sort.Strings(errs)
	return strings.Join(errs, "; ")
}

// remoteMounts are the directories the session serves for bc, and the Dockerfile's name in the
// "dockerfile" one: the context directory and the Dockerfile's directory, or, with a generated
// Dockerfile, the context and an in-memory directory holding it (see fileSync).
func remoteMounts(bc *buildContext) (map[string]fsutil.FS, string, error) {
	if bc.generated != nil {
		dirs, err := bc.syncedDirs()
		if err != nil {
			return nil, "", err
		}
		return map[string]fsutil.FS(dirs), DefaultDockerfile, nil
	}
	ctxFS, err := ownedByRootFS(bc.dir)
	if err != nil {
		return nil, "", err
	}
	df := filepath.Join(bc.dir, filepath.FromSlash(bc.dockerfile))
	dfFS, err := fsutil.NewFS(filepath.Dir(df))
	if err != nil {
		return nil, "", fmt.Errorf("Dockerfile directory %s: %w", filepath.Dir(df), err)
	}
	return map[string]fsutil.FS{syncedContextDir: ctxFS, syncedDockerfileDir: dfFS}, filepath.Base(df), nil
}

// ownedByRootFS serves dir with every file owned by 0:0, as the context tar has them.
func ownedByRootFS(dir string) (fsutil.FS, error) {
	root, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	f, err := fsutil.NewFilterFS(root, &fsutil.FilterOpt{Map: ownedByRoot})
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	return f, nil
}

// normalizePlatforms trims a comma list of platforms ("linux/amd64, linux/arm64").
func normalizePlatforms(p string) string {
	var out []string
	for _, s := range strings.Split(p, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

// redactAll removes every password and token of auths from msg.
func redactAll(msg string, auths map[string]registry.AuthConfig) string {
	for _, a := range auths {
		msg = redact(msg, a)
	}
	return msg
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
