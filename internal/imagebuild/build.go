package imagebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
)

// DockerAPI is the part of the Docker client (*client.Client from NewClient) the Builder uses;
// tests may fake it.
type DockerAPI interface {
	ImageBuild(ctx context.Context, buildContext io.Reader, options build.ImageBuildOptions) (build.ImageBuildResponse, error)
	ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
	ImagePush(ctx context.Context, ref string, options image.PushOptions) (io.ReadCloser, error)
	RegistryLogin(ctx context.Context, auth registry.AuthConfig) (registry.AuthenticateOKBody, error)

	// NegotiateAPIVersion, ClientVersion and ServerVersion choose the builder.
	NegotiateAPIVersion(ctx context.Context)
	ClientVersion() string
	ServerVersion(ctx context.Context) (types.Version, error)
	// DialHijack opens the BuildKit session ("POST /session", upgraded to h2c).
	DialHijack(ctx context.Context, url, proto string, meta map[string][]string) (net.Conn, error)
}

// Builder builds and pushes images through a Docker daemon, writing the daemon's progress as
// plain text to a log (the GitHub Actions log).
//
// It builds with BuildKit, through the Engine API and a session that serves registry
// credentials, secrets and SSH agents, as `docker buildx build` does with the docker driver. It
// falls back to the classic builder when the daemon cannot run BuildKit builds (API < 1.39, a
// non-Linux daemon) or DOCKER_BUILDKIT=0 is set. The choice is made once, at the first build.
type Builder struct {
	docker DockerAPI
	log    io.Writer
	getenv func(string) string // os.Getenv; replaced in tests

	state *choiceState // shared by the Builders WithLog makes
}

// choiceState is the builder choice, made once at the first build.
type choiceState struct {
	mu     sync.Mutex
	choice *builderChoice // nil until the first build
}

// NewBuilder returns a Builder using the client c (from NewClient). A nil log discards output.
func NewBuilder(c DockerAPI, log io.Writer) *Builder {
	if log == nil {
		log = io.Discard
	}
	return &Builder{docker: c, log: log, getenv: os.Getenv, state: &choiceState{}}
}

// WithLog returns a Builder that writes the daemon's output to log and
// shares b's client and builder choice: concurrent builds keep their logs
// apart. A nil log discards output.
func (b *Builder) WithLog(log io.Writer) *Builder {
	if log == nil {
		log = io.Discard
	}
	return &Builder{docker: b.docker, log: log, getenv: b.getenv, state: b.state}
}

// Spec describes one image build.
type Spec struct {
	ContextDir string            // build context directory (made absolute if relative)
	Dockerfile string            // relative to ContextDir (or absolute inside it); default "Dockerfile"
	Tags       []string          // full references "host/repo:tag"; the daemon applies all of them
	Labels     map[string]string // image labels
	BuildArgs  map[string]string // --build-arg values
	Target     string            // the stage to build (--target); empty builds the last stage
	Platform   string            // optional, e.g. "linux/amd64" (API >= 1.32)

	// DockerfileContent, when not nil, is the Dockerfile itself, for a Dockerfile the caller
	// generates (a Dagster+ Serverless project has none). Dockerfile must then be empty (giving
	// both is an error, as is empty or blank content), and a file named Dockerfile in
	// ContextDir is an ordinary context file: not used, not needed, not changed. Nothing is
	// written to ContextDir.
	//
	// The content travels beside the context, as a Dockerfile from stdin does with
	// `docker build -f - DIR`: .dockerignore cannot exclude it and COPY never sees it. BuildKit
	// reads it from the build session, which then serves the context directory too, as
	// `docker buildx build` does (see filesync.go). The classic builder gets it in the context
	// tar under a random name that the tar's .dockerignore lists, so the daemon removes it from
	// the context after reading it; a .dockerignore that does not list itself is copied by COPY
	// with that extra last line (as with `docker build -f -`).
	DockerfileContent []byte

	// PullAuth holds credentials for FROM images and CacheFrom images, keyed by registry host
	// (or "https://index.docker.io/v1/" for Docker Hub; see registryauth.ConfigKey). May be nil.
	PullAuth map[string]registry.AuthConfig

	// Secrets are build secrets by id, for RUN --mount=type=secret,id=<id> (BuildKit only).
	// They are served to the daemon through the build session, never logged, and not stored in
	// the image.
	Secrets map[string][]byte
	// SSH lists the SSH agents to forward, for RUN --mount=type=ssh[,id=<id>] (BuildKit only).
	// Each entry is "default" (the agent at $SSH_AUTH_SOCK), "<id>" (the same agent under that
	// id), or "<id>=<path>[,<path>…]" with an agent socket or unencrypted private key files.
	SSH []string
	// CacheFrom are image references used as cache sources (--cache-from), resolved from their
	// registries with PullAuth. An image that does not exist yet (the first run) is skipped.
	// BuildKit needs images built with InlineCache; the classic builder pulls them first.
	CacheFrom []string
	// InlineCache stores cache metadata in the image (build arg BUILDKIT_INLINE_CACHE=1), so
	// that the pushed image can serve as a CacheFrom source of later builds (BuildKit only).
	InlineCache bool
}

// Build builds s and returns the image ID ("sha256:…"). The daemon's output goes to the
// Builder's log as plain text. A failing step gives a *StreamError holding the daemon's message,
// the failing step (BuildKit) and the last lines of its output.
func (b *Builder) Build(ctx context.Context, s Spec) (string, error) {
	bc, err := prepareSpecContext(s)
	if err != nil {
		return "", err
	}
	if len(s.Tags) == 0 {
		return "", errors.New("build: no image tags given")
	}
	c, err := b.chooseBuilder(ctx)
	if err != nil {
		return "", err
	}
	if c.buildKit {
		return b.buildBuildKit(ctx, bc, s)
	}
	return b.buildClassic(ctx, bc, s, c.reason)
}

// UsesBuildKit reports whether the Builder builds with BuildKit (true) or with the classic
// builder. Like the first Build, the first call asks the daemon and logs the choice.
func (b *Builder) UsesBuildKit(ctx context.Context) (bool, error) {
	c, err := b.chooseBuilder(ctx)
	return c.buildKit, err
}

// buildArgs converts build arguments to the API's form; nil values would mean "take it from the
// daemon's environment".
func buildArgs(in map[string]string) map[string]*string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]*string, len(in))
	for k, v := range in {
		out[k] = &v
	}
	return out
}

// readBuildStream decodes a build's JSON stream (either builder) into the log and returns the
// image ID. BuildKit's progress messages are printed like `docker build --progress=plain`, and
// a failure names the failing step and holds its last output lines.
func (b *Builder) readBuildStream(body io.Reader, ref string) (string, error) {
	var imageID string
	trace := &tracePrinter{}
	dec := newStreamDecoder("build", b.log, func(id string, aux json.RawMessage) error {
		switch id {
		case traceAuxID:
			trace.handle(aux)
		case "", imageIDAuxID: // classic builder: no id
			var r build.Result
			if json.Unmarshal(aux, &r) == nil && r.ID != "" {
				imageID = r.ID
			}
		}
		return nil
	})
	trace.w = dec
	err := dec.decode(body)
	trace.finish()
	if err != nil {
		var se *StreamError
		if errors.As(err, &se) {
			trace.annotate(se)
		}
		return "", fmt.Errorf("building %s: %w", ref, err)
	}
	if imageID == "" {
		return "", fmt.Errorf("building %s: the daemon's stream ended without an image ID", ref)
	}
	return imageID, nil
}

// Login checks auth against its registry (auth.ServerAddress, e.g. "ghcr.io" or
// "https://index.docker.io/v1/") with the daemon's POST /auth, so that wrong credentials fail in
// well under a second, before any build, and never after the ~45 s of retries a push against
// some registries takes (docker-registry 2.8 refuses a push at once). from says where the
// credentials came from, for the message (e.g. registryauth.Credentials.Origin: "the action
// inputs registry_username/registry_password"). Empty credentials are not checked (anonymous
// access) and give nil. Errors never contain the password.
func (b *Builder) Login(ctx context.Context, auth registry.AuthConfig, from string) error {
	if auth.Username == "" && auth.Password == "" && auth.IdentityToken == "" && auth.RegistryToken == "" {
		return nil
	}
	host := displayHost(auth.ServerAddress)
	if auth.ServerAddress == "" {
		return errors.New("registry login: no registry address in the credentials")
	}
	if _, err := b.docker.RegistryLogin(ctx, auth); err != nil {
		if from == "" {
			from = "the action inputs registry_username/registry_password or the Docker config"
		}
		user := ""
		if auth.Username != "" {
			user = fmt.Sprintf(" for user %q", auth.Username)
		}
		msg := redact(err.Error(), auth)
		if isAuthFailure(msg) {
			return fmt.Errorf("registry %s refused the credentials%s from %s: %s", host, user, from, msg)
		}
		return fmt.Errorf("could not log in to registry %s%s with the credentials from %s: %s", host, user, from, msg)
	}
	return nil
}

// isAuthFailure tells a refusal of the credentials from other login failures (DNS, TLS, a
// registry that is down).
func isAuthFailure(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"unauthorized", "denied", "incorrect username or password", "authentication required", "forbidden"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// Push pushes ref ("host/repo:tag", which must exist locally, e.g. as a Spec tag) with auth
// (empty for anonymous) and returns the manifest digest "sha256:…" the registry stored.
//
// Against some registries the daemon retries a refused push for about 45 s before it reports
// it; call Login first to fail fast.
func (b *Builder) Push(ctx context.Context, ref string, auth registry.AuthConfig) (string, error) {
	var enc string
	if auth != (registry.AuthConfig{}) {
		var err error
		if enc, err = registry.EncodeAuthConfig(auth); err != nil {
			return "", fmt.Errorf("pushing %s: encoding credentials: %w", ref, err)
		}
	}
	fmt.Fprintf(b.log, "Pushing %s\n", ref)
	rc, err := b.docker.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: enc})
	if err != nil {
		return "", fmt.Errorf("pushing %s: %s", ref, redact(err.Error(), auth))
	}
	defer rc.Close()

	var digests []string
	dec := newStreamDecoder("push", b.log, func(id string, aux json.RawMessage) error {
		var r struct {
			Tag    string
			Digest string
			Size   int
		}
		if json.Unmarshal(aux, &r) == nil && r.Digest != "" {
			digests = append(digests, r.Digest)
		}
		return nil
	})
	if err := dec.decode(rc); err != nil {
		var se *StreamError
		if errors.As(err, &se) {
			se.Message = redact(se.Message, auth)
			return "", fmt.Errorf("pushing %s to registry %s: %w", ref, registryauth.Host(ref), se)
		}
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	switch len(digests) {
	case 0:
		return "", fmt.Errorf("pushing %s: the daemon's stream ended without a digest", ref)
	case 1:
		return digests[0], nil
	default:
		sort.Strings(digests)
		return "", fmt.Errorf("pushing %s: the daemon reported several digests %v", ref, digests)
	}
}

// redact removes the password and tokens from a message, in case a daemon ever echoes them.
func redact(msg string, auth registry.AuthConfig) string {
	for _, s := range []string{auth.Password, auth.IdentityToken, auth.RegistryToken, auth.Auth} {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// displayHost turns a registry server address ("https://index.docker.io/v1/", "ghcr.io",
// "http://127.0.0.1:5000") into a host for messages.
func displayHost(addr string) string {
	h := addr
	if strings.Contains(h, "://") {
		if u, err := url.Parse(h); err == nil && u.Host != "" {
			h = u.Host
		}
	}
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "index.docker.io", "registry-1.docker.io", "":
		return "docker.io"
	}
	return h
}
