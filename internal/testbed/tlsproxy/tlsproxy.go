// Package tlsproxy makes real Dagster+ host names, such as
// https://acme.dagster.cloud, reach a local handler (usually the Dagster+
// emulator) for programs that take their network settings from the
// environment: it serves the handler over TLS with a certificate for
// *.dagster.cloud and *.eu.dagster.cloud, issued by a CA made for the test,
// and runs an HTTP CONNECT proxy that tunnels those hosts to it.
//
// A child process that gets Env() (SSL_CERT_FILE naming the CA, HTTPS_PROXY
// naming the proxy) then runs unchanged: Go's crypto/x509 reads
// SSL_CERT_FILE for the system roots and http.ProxyFromEnvironment routes
// https requests through HTTPS_PROXY. The proxy tunnels only the
// certificate's host names on port 443 and refuses anything else, so a test
// never reaches the real service or the internet.
package tlsproxy

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultHosts are the certificate's names: every organization's host
// (acme.dagster.cloud), the EU region's (acme.eu.dagster.cloud) and the
// legacy host (dagster.cloud/acme).
var DefaultHosts = []string{"*.dagster.cloud", "*.eu.dagster.cloud", "dagster.cloud"}

// Server is a running TLS server and CONNECT proxy.
type Server struct {
	// CertFile is the PEM file of the CA that issued the server's
	// certificate; set SSL_CERT_FILE to it.
	CertFile string
	// ProxyURL is the proxy's address, http://127.0.0.1:<port>; set
	// HTTPS_PROXY to it.
	ProxyURL string

	hosts    []string
	tlsSrv   *httptest.Server
	proxySrv *httptest.Server

	mu       sync.Mutex
	connects []string
	tunnels  sync.WaitGroup
	closed   chan struct{}
}

// Start serves h over TLS for hosts (DefaultHosts when none are given) and
// starts the proxy. The CA certificate is written to dir/tlsproxy-ca.pem.
// Close stops both servers.
func Start(h http.Handler, dir string, hosts ...string) (*Server, error) {
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	caPEM, leaf, err := issue(hosts)
	if err != nil {
		return nil, err
	}
	certFile := filepath.Join(dir, "tlsproxy-ca.pem")
	if err := os.WriteFile(certFile, caPEM, 0o644); err != nil {
		return nil, err
	}
	s := &Server{CertFile: certFile, hosts: hosts, closed: make(chan struct{})}
	s.tlsSrv = httptest.NewUnstartedServer(h)
	s.tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}
	s.tlsSrv.StartTLS()
	s.proxySrv = httptest.NewServer(http.HandlerFunc(s.serveProxy))
	s.ProxyURL = s.proxySrv.URL
	return s, nil
}

// Env returns the environment a child process needs to reach the handler
// at the certificate's host names.
func (s *Server) Env() []string {
	return []string{
		"SSL_CERT_FILE=" + s.CertFile,
		"HTTPS_PROXY=" + s.ProxyURL,
		"https_proxy=" + s.ProxyURL,
		"NO_PROXY=",
		"no_proxy=",
	}
}

// Connects returns the targets of the CONNECT requests served so far
// (host:port), including refused ones, in order.
func (s *Server) Connects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.connects...)
}

// Close stops the proxy, its tunnels and the TLS server.
func (s *Server) Close() {
	s.proxySrv.Close() // waits for the CONNECT handlers, so no tunnel starts after this
	close(s.closed)
	s.tunnels.Wait()
	s.tlsSrv.Close()
}

// Allowed reports whether the proxy tunnels host (without port): whether
// one of the certificate's names matches it. A wildcard matches one label,
// as in TLS.
func (s *Server) Allowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range s.hosts {
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			label, parent, found := strings.Cut(host, ".")
			if found && label != "" && parent == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "tlsproxy: only CONNECT is served", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	s.connects = append(s.connects, r.Host)
	s.mu.Unlock()
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || port != "443" || !s.Allowed(host) {
		http.Error(w, fmt.Sprintf("tlsproxy: refusing to tunnel to %s (only %s on port 443)", r.Host, strings.Join(s.hosts, ", ")), http.StatusForbidden)
		return
	}
	upstream, err := net.Dial("tcp", s.tlsSrv.Listener.Addr().String())
	if err != nil {
		http.Error(w, "tlsproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "tlsproxy: cannot hijack the connection", http.StatusInternalServerError)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		conn.Close()
		upstream.Close()
		return
	}
	s.tunnels.Add(1)
	go s.tunnel(conn, rw.Reader, upstream)
}

// tunnel copies bytes both ways until either side closes or the server is
// closed.
func (s *Server) tunnel(client net.Conn, buffered *bufio.Reader, upstream net.Conn) {
	defer s.tunnels.Done()
	copied := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(upstream, buffered) // holds what the client sent right after CONNECT
		copied <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, upstream)
		copied <- struct{}{}
	}()
	pending := 2
	select {
	case <-copied:
		pending--
	case <-s.closed:
	}
	client.Close()
	upstream.Close()
	for ; pending > 0; pending-- {
		<-copied
	}
}

// issue makes a CA and a server certificate it signs for hosts, returning
// the CA in PEM and the server's key pair.
func issue(hosts []string) ([]byte, tls.Certificate, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dagster-branch-deploy test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     hosts,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	if len(der) == 0 {
		return nil, tls.Certificate{}, errors.New("tlsproxy: empty certificate")
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}
