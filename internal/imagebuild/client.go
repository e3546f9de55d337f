// Package imagebuild builds Dagster code-location images and pushes them, through the Docker Engine
// API (the Go SDK, never the docker CLI).
//
// Builds use BuildKit through the Engine API, as `docker buildx build` does with the docker
// driver: the context tar is the request body, and a BuildKit session (POST /session) serves
// registry credentials for FROM and cache images, build secrets and SSH agents. BuildKit's
// progress is printed as plain text, like `docker build --progress=plain`. Daemons that cannot
// run BuildKit builds this way (API < 1.39, non-Linux), or DOCKER_BUILDKIT=0, get the classic
// builder (API "version=1"), which takes the registry credentials in the request.
//
// Nothing here assumes a unix socket: the session is hijacked from the same API connection the
// client makes (the SDK's DialHijack dials DOCKER_HOST, through TLS when the client has it), so
// a daemon at tcp://host:2376 with TLS, such as GitLab's docker:dind service, builds the same.
package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/client"
)

// pingTimeout bounds the first contact with the daemon in NewClient.
const pingTimeout = 30 * time.Second

// Environment variables NewClient reads besides the SDK's (client.EnvOverrideHost,
// client.EnvOverrideCertPath, client.EnvTLSVerify, client.EnvOverrideAPIVersion).
const (
	// envTLSCertDir is where GitLab's docker:dind service (the docker image) keeps its
	// certificates: ca/, server/ and client/ (ca.pem, cert.pem, key.pem) under it.
	envTLSCertDir = "DOCKER_TLS_CERTDIR"
	// envDockerConfig is the docker CLI's configuration directory (default ~/.docker), where
	// the CLI looks for ca.pem, cert.pem and key.pem when DOCKER_CERT_PATH is not set.
	envDockerConfig = "DOCKER_CONFIG"
)

// tlsFiles are the files a TLS directory (DOCKER_CERT_PATH) holds.
var tlsFiles = []string{"ca.pem", "cert.pem", "key.pem"}

// gitlabDindHelp is how GitLab's docker:dind service is reached; part of the errors of
// NewClient for tcp:// hosts.
const gitlabDindHelp = "For GitLab's docker:dind service, set DOCKER_HOST=tcp://docker:2376, " +
	"DOCKER_TLS_CERTDIR=/certs (the service then writes its client certificates to /certs/client, " +
	"which the job sees), DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=/certs/client"

// dockerEnv is the Docker connection the environment names.
type dockerEnv struct {
	host string // DOCKER_HOST, "" for the default socket
	// certPath is the directory holding ca.pem, cert.pem and key.pem, "" for no TLS.
	certPath string
	// derived says how certPath was found when DOCKER_CERT_PATH did not name it ("" if it did):
	// the client is then configured here rather than by the SDK's client.FromEnv.
	derived string
}

// readDockerEnv reads the connection settings the way the docker CLI and the docker image (GitLab's
// docker:dind documentation uses both) do:
//
//   - DOCKER_CERT_PATH names the TLS directory; DOCKER_TLS_VERIFY (any non-empty value) verifies
//     the daemon's certificate against its ca.pem. The SDK's client.FromEnv handles both.
//   - For a tcp:// DOCKER_HOST without DOCKER_CERT_PATH, DOCKER_TLS_CERTDIR with a complete
//     client/ directory is used, with verification: what the docker image's entrypoint
//     exports (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH=$DOCKER_TLS_CERTDIR/client) before running
//     docker. This binary's images have no such entrypoint.
//   - DOCKER_TLS_VERIFY without DOCKER_CERT_PATH (and no such DOCKER_TLS_CERTDIR) uses the
//     docker CLI's default directory, DOCKER_CONFIG or ~/.docker, if it holds the three files,
//     and is an error otherwise: the SDK alone would silently talk plain HTTP.
func readDockerEnv(getenv func(string) string) (dockerEnv, error) {
	e := dockerEnv{host: getenv(client.EnvOverrideHost), certPath: getenv(client.EnvOverrideCertPath)}
	if e.certPath != "" || !strings.HasPrefix(e.host, "tcp://") {
		return e, nil
	}
	if dir := getenv(envTLSCertDir); dir != "" && hasTLSFiles(filepath.Join(dir, "client")) {
		e.certPath = filepath.Join(dir, "client")
		e.derived = envTLSCertDir + "=" + dir + " (its client/ directory, verifying the daemon's certificate)"
		return e, nil
	}
	if getenv(client.EnvTLSVerify) == "" {
		return e, nil // plain TCP, as DOCKER_HOST=tcp://host:2375 means
	}
	config := getenv(envDockerConfig)
	if config == "" {
		if home := getenv("HOME"); home != "" {
			config = filepath.Join(home, ".docker")
		}
	}
	if config != "" && hasTLSFiles(config) {
		e.certPath = config
		e.derived = "the docker CLI's default " + config + " (DOCKER_TLS_VERIFY is set, DOCKER_CERT_PATH is not)"
		return e, nil
	}
	msg := "DOCKER_TLS_VERIFY is set but DOCKER_CERT_PATH is not, so there are no TLS certificates for DOCKER_HOST=" + e.host +
		": set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem"
	if dir := getenv(envTLSCertDir); dir != "" {
		msg += fmt.Sprintf(" (DOCKER_TLS_CERTDIR=%s has no complete client/ directory: is it the directory the docker:dind service writes to, shared with the job?)", dir)
	}
	return e, errors.New(msg + ". " + gitlabDindHelp)
}

// hasTLSFiles reports whether dir holds non-empty ca.pem, cert.pem and key.pem.
func hasTLSFiles(dir string) bool {
	for _, f := range tlsFiles {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			return false
		}
	}
	return true
}

// NewClient connects to the Docker daemon named by the environment, pings it and negotiates the
// API version, so that an unreachable daemon fails here with a clear message rather than
// mid-build. It reads DOCKER_HOST (unix:///path or tcp://host:port), DOCKER_API_VERSION, and for
// TLS DOCKER_CERT_PATH, DOCKER_TLS_VERIFY and DOCKER_TLS_CERTDIR, as readDockerEnv describes.
func NewClient(ctx context.Context) (*client.Client, error) {
	env, err := readDockerEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	where := "DOCKER_HOST=" + env.host
	if env.host == "" {
		where = "the default " + client.DefaultDockerHost + " (DOCKER_HOST is not set)"
	}
	tlsWhere := "DOCKER_CERT_PATH=" + env.certPath
	if env.derived != "" {
		tlsWhere = env.derived
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if env.derived != "" {
		opts = append(opts, client.WithTLSClientConfig(
			filepath.Join(env.certPath, "ca.pem"), filepath.Join(env.certPath, "cert.pem"), filepath.Join(env.certPath, "key.pem")))
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		if env.certPath != "" {
			return nil, fmt.Errorf("configuring the Docker client for %s: reading the TLS certificates of %s (ca.pem: the CA of the daemon's certificate; cert.pem and key.pem: the client's certificate and key): %w", where, tlsWhere, err)
		}
		return nil, fmt.Errorf("configuring the Docker client for %s: %w", where, err)
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	ping, err := c.Ping(pctx)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("cannot reach the Docker daemon at %s: %w\n%s", where, err, unreachableHelp(env, tlsWhere, err))
	}
	c.NegotiateAPIVersionPing(ping)
	return c, nil
}

// unreachableHelp says what to check when the daemon of env did not answer the ping with err.
func unreachableHelp(env dockerEnv, tlsWhere string, err error) string {
	if !strings.HasPrefix(env.host, "tcp://") {
		return "Is the Docker daemon running, and is its socket mounted into the action's container " +
			"(-v /var/run/docker.sock:/var/run/docker.sock, as GitHub does for Docker actions)? " +
			"Set DOCKER_HOST to reach a daemon elsewhere"
	}
	msg := err.Error()
	switch {
	case env.certPath == "" && strings.Contains(msg, "HTTP request to an HTTPS server"):
		return "The daemon speaks TLS there, and no TLS certificates are configured. " + gitlabDindHelp
	case env.certPath != "" && (strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate")):
		return "The TLS connection failed: the certificates of " + tlsWhere + " must be the daemon's: ca.pem the CA " +
			"that signed the daemon's certificate (for the address in DOCKER_HOST), cert.pem and key.pem a client " +
			"certificate signed by the CA the daemon trusts (its --tlscacert). " + gitlabDindHelp
	case env.certPath != "" && strings.Contains(msg, "malformed HTTP response"):
		return "The daemon does not speak TLS there; unset DOCKER_CERT_PATH and DOCKER_TLS_VERIFY, or use its TLS port"
	}
	return "Is a Docker daemon listening at that address, and reachable from here (in GitLab CI: is docker:dind " +
		"among the job's services)? " + gitlabDindHelp
}
