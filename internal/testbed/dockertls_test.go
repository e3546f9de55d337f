package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteDockerTLSCerts checks the files against a TLS server configured as dockerd
// --tlsverify is (client certificates required, from the CA), and clients as the Docker SDK
// configures them from DOCKER_CERT_PATH.
func TestWriteDockerTLSCerts(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDockerTLSCerts(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca/cert.pem", "ca/key.pem", "server/ca.pem", "server/cert.pem", "server/key.pem", "client/ca.pem", "client/cert.pem", "client/key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, "key.pem") && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", f, fi.Mode().Perm())
		}
	}
	pool := func(path string) *x509.CertPool {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(data) {
			t.Fatalf("%s holds no certificate", path)
		}
		return p
	}
	pair := func(sub string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, sub, "cert.pem"), filepath.Join(dir, sub, "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "OK") }))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair("server")},
		ClientCAs:    pool(filepath.Join(dir, "server", "ca.pem")),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()

	get := func(certs []tls.Certificate) error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(filepath.Join(dir, "client", "ca.pem")), Certificates: certs}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL) // https://127.0.0.1:port
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get([]tls.Certificate{pair("client")}); err != nil {
		t.Errorf("the client certificate was refused: %v", err)
	}
	if err := get(nil); err == nil {
		t.Error("a client without a certificate was served")
	}
}
