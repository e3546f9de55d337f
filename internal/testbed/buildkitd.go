package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
)

// Environment variables scripts/buildkitd.sh exports for the shared test buildkitd.
const (
	// EnvBuildkitHost is its TLS address, tcp://127.0.0.1:<port>.
	EnvBuildkitHost = "BUILDKIT_HOST"
	// EnvBuildkitCertPath is the directory of the client's ca.pem, cert.pem and key.pem.
	EnvBuildkitCertPath = "BUILDKIT_CERT_PATH"
	// EnvBuildkitUnixHost is its unix socket, unix:///…/buildkitd.sock (no TLS).
	EnvBuildkitUnixHost = "BUILDKIT_UNIX_HOST"
)

const buildkitdHowTo = `start the shared test buildkitd and export its addresses:
    eval "$(scripts/buildkitd.sh start /tmp/dbdbuildkitd)"   # as root; builds buildkitd once (a few minutes), then prints
        # export BUILDKIT_HOST=tcp://127.0.0.1:PORT BUILDKIT_CERT_PATH=/tmp/dbdbuildkitd/certs/client BUILDKIT_UNIX_HOST=unix:///tmp/dbdbuildkitd/buildkitd.sock
or run the whole suite with scripts/test.sh, which does that for you.
To leave out the tests that need it, build without -tags docker (plain go test ./...).`

// Buildkitd is the shared test BuildKit daemon (see scripts/buildkitd.sh).
type Buildkitd struct {
	// Host is its address with mutual TLS, tcp://127.0.0.1:<port>.
	Host string
	// CertPath holds the client's ca.pem (the CA of buildkitd's certificate), cert.pem and
	// key.pem (a client certificate buildkitd accepts).
	CertPath string
	// UnixHost is its unix socket address, without TLS.
	UnixHost string
}

// CA, Cert and Key are the paths of the client's TLS files.
func (b *Buildkitd) CA() string   { return filepath.Join(b.CertPath, "ca.pem") }
func (b *Buildkitd) Cert() string { return filepath.Join(b.CertPath, "cert.pem") }
func (b *Buildkitd) Key() string  { return filepath.Join(b.CertPath, "key.pem") }

// Client connects to the daemon over TCP with the client certificate. It is closed when the test
// ends.
func (b *Buildkitd) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), b.Host,
		client.WithServerConfig("", b.CA()), client.WithCredentials(b.Cert(), b.Key()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// BuildkitdFromEnv returns the shared test daemon the test harness exported (BUILDKIT_HOST,
// BUILDKIT_CERT_PATH, BUILDKIT_UNIX_HOST) and checks that it answers on both addresses. If the
// variables are unset or the daemon does not answer, the test fails with instructions: it never
// skips.
//
// The tests that call it live in files built only with -tags docker (scripts/test.sh passes it).
func BuildkitdFromEnv(t testing.TB) *Buildkitd {
	t.Helper()
	b := &Buildkitd{Host: os.Getenv(EnvBuildkitHost), CertPath: os.Getenv(EnvBuildkitCertPath), UnixHost: os.Getenv(EnvBuildkitUnixHost)}
	var problem string
	switch {
	case b.Host == "" || b.CertPath == "" || b.UnixHost == "":
		problem = fmt.Sprintf("%s, %s and %s are not all set, so there is no test buildkitd", EnvBuildkitHost, EnvBuildkitCertPath, EnvBuildkitUnixHost)
	case !strings.HasPrefix(b.Host, "tcp://"):
		problem = fmt.Sprintf("%s=%s is not the tcp:// address scripts/buildkitd.sh exports", EnvBuildkitHost, b.Host)
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := PingBuildkitd(ctx, b.UnixHost, ""); err != nil {
			problem = fmt.Sprintf("the buildkitd at %s=%s does not answer: %v", EnvBuildkitUnixHost, b.UnixHost, err)
		} else if err := PingBuildkitd(ctx, b.Host, b.CertPath); err != nil {
			problem = fmt.Sprintf("the buildkitd at %s=%s (client certificates in %s) does not answer: %v", EnvBuildkitHost, b.Host, b.CertPath, err)
		}
	}
	if problem == "" {
		return b
	}
	howTo := "see the first such failure for how to start it, or build without -tags docker"
	buildkitdHowToOnce.Do(func() { howTo = "To fix, " + buildkitdHowTo })
	t.Fatalf("this test needs a real BuildKit daemon: %s.\n%s", problem, howTo)
	return nil
}

var buildkitdHowToOnce sync.Once

// PingBuildkitd checks that the buildkitd at addr answers and has a worker. certDir, if not
// empty, holds the client's ca.pem, cert.pem and key.pem.
func PingBuildkitd(ctx context.Context, addr, certDir string) error {
	var opts []client.ClientOpt
	if certDir != "" {
		opts = append(opts, client.WithServerConfig("", filepath.Join(certDir, "ca.pem")),
			client.WithCredentials(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem")))
	}
	c, err := client.New(ctx, addr, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		return errors.New("buildkitd has no workers")
	}
	return nil
}
