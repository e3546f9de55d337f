// Package testbed provides real-parts helpers for tests, the e2e test and the local demo: the
// shared test Docker daemon (started by scripts/dockerd.sh) and a real docker-registry process
// with htpasswd auth on loopback.
package testbed

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

const dockerHowTo = `start the shared test daemon and export DOCKER_HOST:
    eval "$(scripts/dockerd.sh start /tmp/dbdtest)"   # as root; prints export DOCKER_HOST=unix:///tmp/dbdtest/docker.sock
or run the whole suite with scripts/test.sh, which does that for you.
To leave out the tests that need Docker, build without -tags docker (plain go test ./...).`

// Docker returns the DOCKER_HOST of the shared test daemon. The test harness (scripts/test.sh,
// which calls scripts/dockerd.sh) exports DOCKER_HOST. If DOCKER_HOST is unset or the daemon does
// not answer /_ping, the test fails with instructions: it never skips.
//
// The tests that call it live in files built only with -tags docker (scripts/test.sh passes
// it), so a plain go test ./... leaves them out instead of failing them.
func Docker(t testing.TB) string {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	var problem string
	if host == "" {
		problem = "DOCKER_HOST is not set, so there is no test Docker daemon"
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := PingDocker(ctx, host); err != nil {
			problem = fmt.Sprintf("the Docker daemon at DOCKER_HOST=%s does not answer: %v", host, err)
		}
	}
	if problem == "" {
		return host
	}
	howTo := "see the first such failure for how to start it, or build without -tags docker"
	howToOnce.Do(func() { howTo = "To fix, " + dockerHowTo })
	t.Fatalf("this test needs a real Docker daemon: %s.\n%s", problem, howTo)
	return ""
}

// howToOnce prints the full instructions once per test binary; they would drown the output of a
// package with many Docker tests.
var howToOnce sync.Once

// PingDocker checks that the Docker daemon at host (a DOCKER_HOST value: unix:///path or
// tcp://host:port) answers GET /_ping with OK.
func PingDocker(ctx context.Context, host string) error {
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Errorf("unparsable DOCKER_HOST %q: %w", host, err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	base := ""
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			sock = u.Opaque
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		base = "http://docker"
	case "tcp", "http":
		base = "http://" + u.Host
	default:
		return fmt.Errorf("unsupported DOCKER_HOST scheme %q (want unix:// or tcp://)", u.Scheme)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "OK" {
		return fmt.Errorf("GET /_ping: %s %q", resp.Status, body)
	}
	return nil
}
