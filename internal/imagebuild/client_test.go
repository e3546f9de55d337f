package imagebuild

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

// NewClient's messages when no daemon answers: these tests need no Docker, so they are built
// without -tags docker too (TestNewClientNegotiates, in build_test.go, needs the test daemon).

func TestNewClientUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nonexistent", "docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	t.Setenv("DOCKER_API_VERSION", "")
	_, err := NewClient(testCtx(t, 30*time.Second))
	if err == nil {
		t.Fatal("NewClient succeeded against a nonexistent socket")
	}
	for _, want := range []string{"DOCKER_HOST=unix://" + sock, "Is the Docker daemon running", "/var/run/docker.sock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestNewClientDefaultHost(t *testing.T) {
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		t.Skip("/var/run/docker.sock exists here; this test checks the message when it does not")
	}
	t.Setenv("DOCKER_HOST", "")
	_, err := NewClient(testCtx(t, 30*time.Second))
	if err == nil {
		t.Fatal("NewClient succeeded without a daemon")
	}
	if want := "the default unix:///var/run/docker.sock (DOCKER_HOST is not set)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q:\n%v", want, err)
	}
}

// writeTLSDir writes placeholder ca.pem, cert.pem and key.pem (readDockerEnv only checks that
// they are there).
func writeTLSDir(t *testing.T, dir string, files ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadDockerEnv(t *testing.T) {
	tmp := t.TempDir()
	certdir := filepath.Join(tmp, "certs")
	writeTLSDir(t, filepath.Join(certdir, "client"), "ca.pem", "cert.pem", "key.pem")
	partial := filepath.Join(tmp, "partial")
	writeTLSDir(t, filepath.Join(partial, "client"), "ca.pem")
	home := filepath.Join(tmp, "home")
	writeTLSDir(t, filepath.Join(home, ".docker"), "ca.pem", "cert.pem", "key.pem")
	const tcp = "tcp://docker:2376"
	for _, c := range []struct {
		name         string
		env          map[string]string
		wantCertPath string
		derived      bool
		wantErr      []string
	}{
		{name: "default socket", env: nil},
		{name: "unix socket ignores DOCKER_TLS_CERTDIR", env: map[string]string{"DOCKER_HOST": "unix:///var/run/docker.sock", "DOCKER_TLS_CERTDIR": certdir}},
		{name: "plain tcp", env: map[string]string{"DOCKER_HOST": "tcp://docker:2375"}},
		{name: "DOCKER_CERT_PATH (the SDK reads it)", env: map[string]string{"DOCKER_HOST": tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs/client", "DOCKER_TLS_CERTDIR": certdir},
			wantCertPath: "/certs/client"},
		{name: "DOCKER_TLS_CERTDIR alone, as the docker image's entrypoint", env: map[string]string{"DOCKER_HOST": tcp, "DOCKER_TLS_CERTDIR": certdir},
			wantCertPath: filepath.Join(certdir, "client"), derived: true},
		{name: "DOCKER_TLS_CERTDIR with DOCKER_TLS_VERIFY", env: map[string]string{"DOCKER_HOST": tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_TLS_CERTDIR": certdir},
			wantCertPath: filepath.Join(certdir, "client"), derived: true},
		{name: "incomplete DOCKER_TLS_CERTDIR, no verify: plain tcp", env: map[string]string{"DOCKER_HOST": tcp, "DOCKER_TLS_CERTDIR": partial}},
		{name: "DOCKER_TLS_VERIFY: the CLI's ~/.docker", env: map[string]string{"DOCKER_HOST": tcp, "DOCKER_TLS_VERIFY": "1", "HOME": home},
			wantCertPath: filepath.Join(home, ".docker"), derived: true},
		{name: "DOCKER_TLS_VERIFY: DOCKER_CONFIG", env: map[string]string{"DOCKER_HOST": tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CONFIG": filepath.Join(home, ".docker"), "HOME": tmp},
			wantCertPath: filepath.Join(home, ".docker"), derived: true},
		{name: "DOCKER_TLS_VERIFY without certificates", env: map[string]string{"DOCKER_HOST": tcp, "DOCKER_TLS_VERIFY": "1", "HOME": tmp, "DOCKER_TLS_CERTDIR": partial},
			wantErr: []string{"DOCKER_TLS_VERIFY is set but DOCKER_CERT_PATH is not", "DOCKER_TLS_CERTDIR=" + partial + " has no complete client/", "DOCKER_CERT_PATH=/certs/client"}},
	} {
		got, err := readDockerEnv(func(k string) string { return c.env[k] })
		if len(c.wantErr) > 0 {
			if err == nil {
				t.Errorf("%s: no error, got %+v", c.name, got)
				continue
			}
			for _, want := range c.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error lacks %q:\n%v", c.name, want, err)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got.certPath != c.wantCertPath || (got.derived != "") != c.derived {
			t.Errorf("%s: certPath %q (derived %q), want %q (derived %v)", c.name, got.certPath, got.derived, c.wantCertPath, c.derived)
		}
	}
}

// A tcp:// daemon that does not answer gets advice for tcp (GitLab's docker:dind), not the
// socket mount of a GitHub Docker action.
func TestNewClientUnreachableTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("DOCKER_HOST", "tcp://"+addr)
	for _, k := range []string{"DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_TLS_CERTDIR", "DOCKER_API_VERSION"} {
		t.Setenv(k, "")
	}
	_, err = NewClient(testCtx(t, 30*time.Second))
	if err == nil {
		t.Fatal("NewClient succeeded against a closed port")
	}
	for _, want := range []string{"DOCKER_HOST=tcp://" + addr, "docker:dind", "DOCKER_TLS_CERTDIR=/certs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "/var/run/docker.sock") {
		t.Errorf("error for a tcp host talks about the socket:\n%v", err)
	}
}

// DOCKER_CERT_PATH without the client certificate fails before any connection, naming the
// directory and the file.
func TestNewClientMissingClientCertificate(t *testing.T) {
	certs := filepath.Join(t.TempDir(), "certs")
	if err := testbed.WriteDockerTLSCerts(certs); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(certs, "client")
	for _, f := range []string{"cert.pem", "key.pem"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", dir)
	_, err := NewClient(testCtx(t, 30*time.Second))
	if err == nil {
		t.Fatal("NewClient succeeded without cert.pem")
	}
	for _, want := range []string{"DOCKER_CERT_PATH=" + dir, "client's certificate and key", "/cert.pem: no such file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
