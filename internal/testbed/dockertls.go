package testbed

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// WriteDockerTLSCerts makes a CA and, signed by it, a server certificate for hosts (IP addresses
// or DNS names; default 127.0.0.1 and localhost) and a client certificate, and writes them under
// dir in the layout of docker:dind's DOCKER_TLS_CERTDIR:
//
//	ca/cert.pem, ca/key.pem                        the CA
//	server/ca.pem, server/cert.pem, server/key.pem dockerd --tlscacert, --tlscert, --tlskey
//	client/ca.pem, client/cert.pem, client/key.pem DOCKER_CERT_PATH of a client
//
// Keys are ECDSA P-256 (PKCS #8), valid for a day.
func WriteDockerTLSCerts(dir string, hosts ...string) error {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "localhost"}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "dagster-branch-deploy test Docker CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := writePEMFiles(filepath.Join(dir, "ca"), caPEM, nil, caKey); err != nil {
		return err
	}

	server := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	clientCert := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for name, tmpl := range map[string]*x509.Certificate{"server": server, "client": clientCert} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		if err := writePEMFiles(filepath.Join(dir, name), caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}

// writePEMFiles writes dir/ca.pem (or, for the CA itself, cert.pem), dir/cert.pem and dir/key.pem
// (mode 0600).
func writePEMFiles(dir string, caPEM, certPEM []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{"key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
	if certPEM == nil {
		files["cert.pem"] = caPEM
	} else {
		files["ca.pem"] = caPEM
		files["cert.pem"] = certPEM
	}
	for name, data := range files {
		mode := os.FileMode(0o644)
		if name == "key.pem" {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			return err
		}
	}
	return nil
}

// TLSDocker is a private dockerd that serves the Engine API only on tcp://127.0.0.1:<port> with
// mutual TLS, as GitLab's docker:dind service does on tcp://docker:2376. It runs beside the
// shared test daemon (see scripts/dockerd.sh start-tls).
type TLSDocker struct {
	Dir string // the daemon's directory: certs/, data/, exec/, dockerd.log, docker.pid
	// Host is the DOCKER_HOST, tcp://127.0.0.1:<port>.
	Host string
	// CertDir is what the docker:dind service would have in DOCKER_TLS_CERTDIR (ca/, server/,
	// client/); CertPath is its client/ directory, a DOCKER_CERT_PATH.
	CertDir, CertPath string
}

const tlsDockerHowTo = `The TLS daemon is started with scripts/dockerd.sh start-tls, which needs root (as scripts/test.sh
has it), dockerd (apt-get install -y docker.io), ip or busybox, and curl.`

// StartTLSDocker writes a CA, server and client certificates (WriteDockerTLSCerts) and starts a
// TLS-only dockerd with them (scripts/dockerd.sh start-tls) on a free loopback port. The daemon
// is stopped, its bridge deleted and its directory removed when the test ends. Without root or
// dockerd the test fails with instructions: it never skips.
func StartTLSDocker(t testing.TB) *TLSDocker {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test starts its own dockerd with TLS and needs root (uid %d).\n%s", os.Geteuid(), tlsDockerHowTo)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// A short path: dockerd's exec root holds unix sockets, whose paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "dbd-tls-")
	if err != nil {
		t.Fatal(err)
	}
	d := &TLSDocker{Dir: dir, CertDir: filepath.Join(dir, "certs"), CertPath: filepath.Join(dir, "certs", "client")}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stopping the TLS dockerd: %v", err)
			return // leave dir for a look
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	if err := WriteDockerTLSCerts(d.CertDir); err != nil {
		t.Fatal(err)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	d.Host = "tcp://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "dockerd.sh"), "start-tls", dir, addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/dockerd.sh start-tls %s %s: %v\n%s%s\n%s", dir, addr, err, stdout.String(), stderr.String(), tlsDockerHowTo)
	}
	want := fmt.Sprintf("export DOCKER_HOST=%s DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=%s\n", d.Host, d.CertPath)
	if stdout.String() != want {
		t.Fatalf("scripts/dockerd.sh start-tls printed %q, want %q", stdout.String(), want)
	}
	return d
}

// Setenv points the Docker client of this test at the daemon, as a GitLab job configured for
// docker:dind: DOCKER_HOST, DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, with DOCKER_TLS_CERTDIR
// and DOCKER_API_VERSION cleared.
func (d *TLSDocker) Setenv(t testing.TB) {
	t.Helper()
	t.Setenv("DOCKER_HOST", d.Host)
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", d.CertPath)
	t.Setenv("DOCKER_TLS_CERTDIR", "")
	t.Setenv("DOCKER_API_VERSION", "")
}

// LogTail returns the last n lines of the daemon's log.
func (d *TLSDocker) LogTail(n int) string {
	data, err := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Stop stops the daemon and deletes its bridge (scripts/dockerd.sh stop).
func (d *TLSDocker) Stop() error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "dockerd.sh"), "stop", d.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/dockerd.sh stop %s: %w\n%s", d.Dir, err, out)
	}
	if raw, err := os.ReadFile(filepath.Join(d.Dir, "docker.pid")); err == nil {
		if pid, err := strconv.Atoi(string(bytes.TrimSpace(raw))); err == nil && syscall.Kill(pid, 0) == nil {
			return fmt.Errorf("dockerd (pid %d) still runs after scripts/dockerd.sh stop %s", pid, d.Dir)
		}
	}
	return nil
}
