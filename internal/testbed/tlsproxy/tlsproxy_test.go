package tlsproxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/tlsproxy"
)

// client is configured the way a child process given Env() configures
// itself: roots from the CA file only, and the proxy for https.
func client(t *testing.T, s *tlsproxy.Server) *http.Client {
	t.Helper()
	pemData, err := os.ReadFile(s.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemData) {
		t.Fatal("the CA file holds no certificate")
	}
	proxy, err := url.Parse(s.ProxyURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(proxy), TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestProxyServesDagsterHosts(t *testing.T) {
	t.Parallel()
	s, err := tlsproxy.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host+" "+r.Method+" "+r.URL.Path)
	}), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := client(t, s)
	for _, u := range []string{
		"https://acme.dagster.cloud/graphql",
		"https://acme.eu.dagster.cloud/prod/graphql",
		"https://dagster.cloud/acme/graphql",
	} {
		resp, err := c.Post(u, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := strings.TrimPrefix(u, "https://")
		host, path, _ := strings.Cut(want, "/")
		if got := string(b); got != host+" POST /"+path {
			t.Errorf("%s: handler saw %q", u, got)
		}
	}
	got := strings.Join(s.Connects(), " ")
	if got != "acme.dagster.cloud:443 acme.eu.dagster.cloud:443 dagster.cloud:443" {
		t.Errorf("CONNECT targets = %s", got)
	}
}

func TestProxyRefusesOtherHosts(t *testing.T) {
	t.Parallel()
	s, err := tlsproxy.Start(http.NotFoundHandler(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := client(t, s)
	for _, u := range []string{"https://example.com/", "https://a.b.dagster.cloud/", "https://acme.dagster.cloud:8443/", "https://dagster.cloud.example.com/"} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s was tunnelled", u)
		}
	}
	for host, want := range map[string]bool{
		"acme.dagster.cloud": true, "ACME.Dagster.Cloud.": true, "acme.eu.dagster.cloud": true, "dagster.cloud": true,
		"eu.dagster.cloud":  true, // one label under dagster.cloud
		"a.b.dagster.cloud": false, "dagster.cloud.evil": false, ".dagster.cloud": false, "example.com": false,
	} {
		if got := s.Allowed(host); got != want {
			t.Errorf("Allowed(%q) = %v", host, got)
		}
	}
}
