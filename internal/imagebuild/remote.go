package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/docker/docker/api/types/registry"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Registry operations that need no Docker daemon: they talk to the registry's HTTP API
// (go-containerregistry), with the same credentials the daemon gets for pushes.
//
// Plain HTTP is used only for loopback registries (localhost, 127.0.0.0/8, ::1), which dockerd
// treats as insecure by default (its --insecure-registry list starts with 127.0.0.0/8); every
// other registry is reached over HTTPS, and a redirect or token realm to plain HTTP elsewhere is
// refused, so credentials never travel in clear text.

// registryUserAgent is sent to registries.
const registryUserAgent = "dagster-branch-deploy"

// RemoteInfo describes an image (or image index) in a registry.
type RemoteInfo struct {
	// Digest is the manifest's digest, "sha256:…": an index's own digest for a multi-platform
	// image.
	Digest string
	// MediaType is the manifest's media type.
	MediaType string
	// Labels are the image config's labels; for an index, those of its first image that is
	// not an attestation. Nil when the image has none.
	Labels map[string]string
}

// RemoteImage looks up ref ("host/repo:tag" or "host/repo@sha256:…") in its registry with auth
// (empty for anonymous access). A tag or repository the registry does not have (404,
// MANIFEST_UNKNOWN, NAME_UNKNOWN) gives found=false and no error; any other failure (refused
// credentials, a registry that is down) is an error.
func RemoteImage(ctx context.Context, ref string, auth registry.AuthConfig) (RemoteInfo, bool, error) {
	r, err := parseRegistryRef(ref)
	if err != nil {
		return RemoteInfo{}, false, err
	}
	opts := registryOptions(ctx, auth)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		if isRegistryNotFound(err) {
			return RemoteInfo{}, false, nil
		}
		return RemoteInfo{}, false, registryError("looking up", ref, err, auth)
	}
	info := RemoteInfo{Digest: desc.Digest.String(), MediaType: string(desc.MediaType)}
	labels, err := registryLabels(desc)
	if err != nil {
		return RemoteInfo{}, false, registryError("reading the labels of", ref, err, auth)
	}
	info.Labels = labels
	return info, true, nil
}

// registryLabels reads the config labels of desc's image, or of the first image of its index
// that is not an attestation (BuildKit's provenance manifests have platform unknown/unknown).
func registryLabels(desc *remote.Descriptor) (map[string]string, error) {
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, m := range im.Manifests {
			if !m.MediaType.IsImage() || m.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
				(m.Platform != nil && m.Platform.OS == "unknown") {
				continue
			}
			if img, err = idx.Image(m.Digest); err != nil {
				return nil, err
			}
			break
		}
		if img == nil {
			return nil, nil
		}
	case desc.MediaType.IsImage():
		var err error
		if img, err = desc.Image(); err != nil {
			return nil, err
		}
	default:
		return nil, nil // an artifact or schema 1 manifest: no config labels to read
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	return cfg.Config.Labels, nil
}

// TagRemote gives the manifest that src names (a tag or digest; an image or an index) the tag of
// dst, in the same repository, and returns its digest. It moves no layers: it fetches the
// manifest and PUTs the same bytes under the new tag, as `docker buildx imagetools create` or
// `crane tag` do. If dst already names that manifest nothing is written, so a re-run against a
// registry with immutable tags succeeds.
//
// A registry that refuses to move an existing tag (ECR with tag immutability, Harbor's
// immutable tag rules) gives an *ImmutableTagError.
func TagRemote(ctx context.Context, src, dst string, auth registry.AuthConfig) (string, error) {
	s, err := parseRegistryRef(src)
	if err != nil {
		return "", err
	}
	d, err := parseRegistryRef(dst)
	if err != nil {
		return "", err
	}
	tag, ok := d.(name.Tag)
	if !ok {
		return "", fmt.Errorf("tagging %s: %s is not a tag reference", src, dst)
	}
	if s.Context().String() != tag.Context().String() {
		return "", fmt.Errorf("tagging %s as %s: both must be in the same repository (%s, %s)", src, dst, s.Context(), tag.Context())
	}
	opts := registryOptions(ctx, auth)
	desc, err := remote.Get(s, opts...)
	if err != nil {
		return "", registryError("fetching the manifest of", src, err, auth)
	}
	digest := desc.Digest.String()
	if cur, err := remote.Head(tag, opts...); err == nil && cur.Digest == desc.Digest {
		return digest, nil
	}
	if err := remote.Tag(tag, desc, opts...); err != nil {
		if msg, ok := immutableTagRefusal(err); ok {
			return "", &ImmutableTagError{Ref: dst, Digest: digest, Message: redact(msg, auth), Err: err}
		}
		return "", registryError(fmt.Sprintf("tagging %s as", src), dst, err, auth)
	}
	return digest, nil
}

// ImmutableTagError says that the registry refused to point an existing tag at another
// manifest because its tags are immutable (ECR's tag immutability, Harbor's immutable tag
// rules). The tag keeps the manifest it had.
type ImmutableTagError struct {
	Ref     string // the tag that was to be written
	Digest  string // the manifest it was to name
	Message string // the registry's message
	Err     error
}

func (e *ImmutableTagError) Error() string {
	return fmt.Sprintf("registry %s keeps tags immutable, so the existing tag %s cannot be moved to %s: %s",
		displayHost(registryHostOf(e.Ref)), e.Ref, e.Digest, e.Message)
}

func (e *ImmutableTagError) Unwrap() error { return e.Err }

// IsImmutableTag reports whether err is a registry's refusal to overwrite an immutable tag:
// an *ImmutableTagError from TagRemote, or a failed push (Builder.Push) whose message is such a
// refusal, as the daemon words ECR's ("tag invalid: The image tag 'buildcache' already exists in
// the 'acme/app' repository and cannot be overwritten because the repository is immutable.")
// or Harbor's ("… configured as immutable"). The caller can then warn once instead of failing,
// e.g. for a cache tag that the next run cannot move.
func IsImmutableTag(err error) bool {
	if err == nil {
		return false
	}
	var ie *ImmutableTagError
	if errors.As(err, &ie) {
		return true
	}
	if _, ok := immutableTagRefusal(err); ok {
		return true
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "cannot be overwritten because the") ||
		strings.Contains(m, "configured as immutable") ||
		strings.Contains(m, "imagetagalreadyexistsexception") ||
		strings.Contains(m, "tag_immutable")
}

// immutableTagRefusal tells a registry's refusal to overwrite an immutable tag, and returns its
// message. ECR answers 400 TAG_INVALID "The image tag '…' already exists in the '…' repository
// and cannot be overwritten because the repository is immutable." (its API calls it
// ImageTagAlreadyExistsException); Harbor 412 PRECONDITION "… configured as immutable"; some
// registries TAG_IMMUTABLE.
func immutableTagRefusal(err error) (string, bool) {
	var te *transport.Error
	if !errors.As(err, &te) {
		return "", false
	}
	for _, d := range te.Errors {
		m := strings.ToLower(d.Message)
		switch {
		case d.Code == "TAG_IMMUTABLE",
			d.Code == transport.TagInvalidErrorCode && (strings.Contains(m, "already exists") || strings.Contains(m, "immutable")),
			strings.Contains(m, "immutable"):
			return d.Message, true
		}
	}
	if s := te.Error(); strings.Contains(s, "ImageTagAlreadyExistsException") || strings.Contains(strings.ToLower(s), "immutable") {
		return s, true
	}
	return "", false
}

// isRegistryNotFound tells a registry's "no such tag or repository".
func isRegistryNotFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// registryError words a registry failure, without credentials.
func registryError(what, ref string, err error, auth registry.AuthConfig) error {
	return fmt.Errorf("%s %s in registry %s: %s", what, ref, displayHost(registryHostOf(ref)), redact(err.Error(), auth))
}

// parseRegistryRef parses an image reference, allowing plain HTTP for loopback registries only.
func parseRegistryRef(ref string) (name.Reference, error) {
	var opts []name.Option
	if isLoopbackRegistry(registryHostOf(ref)) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return r, nil
}

// registryHostOf is the registry host[:port] of an image reference, as written ("" for Docker Hub
// short names).
func registryHostOf(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	if !found || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		return ""
	}
	return first
}

// isLoopbackRegistry reports whether hostport ("127.0.0.1:5000", "localhost", "[::1]:5000") is a
// loopback address.
func isLoopbackRegistry(hostport string) bool {
	if hostport == "" {
		return false
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// registryOptions are the options of every registry call: ctx, the credentials, a transport that
// allows plain HTTP only to loopback hosts, and no retries beyond go-containerregistry's own.
func registryOptions(ctx context.Context, auth registry.AuthConfig) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(registryAuthenticator(auth)),
		remote.WithUserAgent(registryUserAgent),
		remote.WithTransport(loopbackOnlyHTTP{remote.DefaultTransport}),
	}
}

// registryAuthenticator turns Docker credentials into go-containerregistry's: username and password
// (or the base64 "auth" of a config.json), an identity token (OAuth2 refresh token), or a
// registry token (sent as a bearer token). Empty credentials are anonymous.
func registryAuthenticator(a registry.AuthConfig) authn.Authenticator {
	c := authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		Auth:          a.Auth,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	}
	if c == (authn.AuthConfig{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(c)
}

// loopbackOnlyHTTP refuses plain HTTP requests to hosts other than loopback ones.
type loopbackOnlyHTTP struct{ inner http.RoundTripper }

func (t loopbackOnlyHTTP) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !isLoopbackRegistry(req.URL.Host) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only loopback registries may be insecure", req.URL.Host)
	}
	return t.inner.RoundTrip(req)
}
