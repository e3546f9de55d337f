//go:build docker

package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

// tlsBuildDockerfile needs BuildKit's session over the daemon connection: the secret mount is
// served by the client through the hijacked POST /session.
const tlsBuildDockerfile = `FROM scratch
COPY busybox /bin/busybox
ARG GREETING=unset
RUN --mount=type=secret,id=token ["/bin/busybox", "sh", "-c", "/bin/busybox sha256sum /run/secrets/token | /bin/busybox cut -c1-64 > /token.sha && echo \"$GREETING\" > /greeting"]
`

// TestDockerOverTLS reaches a dockerd the way a GitLab job reaches its docker:dind service
// (DOCKER_HOST=tcp://…:2376, DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH with ca.pem, cert.pem and
// key.pem): a second private daemon that serves only TCP with mutual TLS, with certificates made
// here. Through it the real builder builds with BuildKit (a RUN step with a secret mount, so the
// session runs over the TLS connection) and pushes; and clients without the right certificates
// are refused with errors that say what to fix.
func TestDockerOverTLS(t *testing.T) {
	d := testbed.StartTLSDocker(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("TLS dockerd log tail (%s):\n%s", d.Dir, d.LogTail(40))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("build and push", func(t *testing.T) {
		d.Setenv(t)
		reg := testbed.NewRegistry(t)
		docker, err := imagebuild.NewClient(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer docker.Close()
		if docker.DaemonHost() != d.Host {
			t.Fatalf("the client talks to %s, not %s", docker.DaemonHost(), d.Host)
		}
		var log strings.Builder
		b := imagebuild.NewBuilder(docker, &log)
		if bk, err := b.UsesBuildKit(ctx); err != nil || !bk {
			t.Fatalf("BuildKit = %v (%v):\n%s", bk, err, log.String())
		}
		const secret = "tls-build-secret-17"
		ref := reg.Addr + "/acme/over-tls:1"
		dir := testbed.BusyboxContext(t, tlsBuildDockerfile)
		if _, err := b.Build(ctx, imagebuild.Spec{
			ContextDir: dir,
			Tags:       []string{ref},
			BuildArgs:  map[string]string{"GREETING": "hello over TLS"},
			Secrets:    map[string][]byte{"token": []byte(secret)},
		}); err != nil {
			t.Fatalf("build over TLS: %v\n%s", err, log.String())
		}
		t.Cleanup(func() {
			_, _ = docker.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
		})
		if !strings.Contains(log.String(), "Builder: BuildKit") || !strings.Contains(log.String(), "RUN --mount=type=secret") {
			t.Errorf("the build log shows no BuildKit RUN step:\n%s", log.String())
		}
		digest, err := b.Push(ctx, ref, registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr})
		if err != nil {
			t.Fatalf("push over TLS: %v\n%s", err, log.String())
		}
		if got, err := reg.ManifestDigest(ctx, "acme/over-tls", "1"); err != nil || got != digest {
			t.Errorf("the registry has %q (%v), the push said %q", got, err, digest)
		}
		// What the RUN step wrote, read from a container on the TLS daemon.
		out := runInImage(t, ctx, docker, ref, "/bin/busybox", "cat", "/greeting", "/token.sha")
		sum := sha256.Sum256([]byte(secret))
		for _, want := range []string{"hello over TLS", hex.EncodeToString(sum[:])} {
			if !strings.Contains(out, want) {
				t.Errorf("the image lacks %q:\n%s", want, out)
			}
		}
	})

	// GitLab's documented job variables are sometimes only DOCKER_HOST and DOCKER_TLS_CERTDIR:
	// the docker image's entrypoint derives the rest, and NewClient does the same.
	t.Run("DOCKER_TLS_CERTDIR alone", func(t *testing.T) {
		d.Setenv(t)
		t.Setenv("DOCKER_TLS_VERIFY", "")
		t.Setenv("DOCKER_CERT_PATH", "")
		t.Setenv("DOCKER_TLS_CERTDIR", d.CertDir)
		docker, err := imagebuild.NewClient(ctx)
		if err != nil {
			t.Fatal(err)
		}
		docker.Close()
	})

	// The daemon itself refuses a TLS client that presents no certificate (--tlsverify).
	t.Run("no client certificate", func(t *testing.T) {
		roots := x509.NewCertPool()
		ca, err := os.ReadFile(filepath.Join(d.CertPath, "ca.pem"))
		if err != nil || !roots.AppendCertsFromPEM(ca) {
			t.Fatalf("reading ca.pem: %v", err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		docker, err := client.NewClientWithOpts(client.WithHost(d.Host), client.WithHTTPClient(hc), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		defer docker.Close()
		_, err = docker.Ping(ctx)
		if err == nil {
			t.Fatal("the daemon answered a client without a certificate")
		}
		t.Logf("refused as expected: %v", err)
		if !strings.Contains(err.Error(), "bad certificate") && !strings.Contains(err.Error(), "certificate required") {
			t.Errorf("error does not say that a certificate is missing: %v", err)
		}
		if !strings.Contains(d.LogTail(200), "didn't provide a certificate") {
			t.Errorf("the daemon's log does not show the refusal:\n%s", d.LogTail(20))
		}
	})

	// What NewClient says for the usual mistakes.
	other := filepath.Join(t.TempDir(), "other")
	if err := testbed.WriteDockerTLSCerts(other); err != nil {
		t.Fatal(err)
	}
	mixed := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, src := range files {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	for _, c := range []struct {
		name string
		env  func(t *testing.T) map[string]string
		want []string
	}{
		{"DOCKER_CERT_PATH without cert.pem and key.pem", func(t *testing.T) map[string]string {
			return map[string]string{"DOCKER_CERT_PATH": mixed(t, map[string]string{"ca.pem": filepath.Join(d.CertPath, "ca.pem")})}
		}, []string{"reading the TLS certificates of DOCKER_CERT_PATH=", "cert.pem: no such file"}},
		{"client certificate of another CA", func(t *testing.T) map[string]string {
			return map[string]string{"DOCKER_CERT_PATH": mixed(t, map[string]string{
				"ca.pem":   filepath.Join(d.CertPath, "ca.pem"),
				"cert.pem": filepath.Join(other, "client", "cert.pem"),
				"key.pem":  filepath.Join(other, "client", "key.pem"),
			})}
		}, []string{"cannot reach the Docker daemon at DOCKER_HOST=" + d.Host, "tls: bad certificate", "The TLS connection failed", "signed by the CA the daemon trusts"}},
		{"daemon certificate of another CA", func(t *testing.T) map[string]string {
			return map[string]string{"DOCKER_CERT_PATH": mixed(t, map[string]string{
				"ca.pem":   filepath.Join(other, "client", "ca.pem"),
				"cert.pem": filepath.Join(d.CertPath, "cert.pem"),
				"key.pem":  filepath.Join(d.CertPath, "key.pem"),
			})}
		}, []string{"x509: certificate signed by unknown authority", "The TLS connection failed"}},
		{"no TLS settings", func(t *testing.T) map[string]string {
			return map[string]string{"DOCKER_TLS_VERIFY": "", "DOCKER_CERT_PATH": ""}
		}, []string{"HTTP request to an HTTPS server", "The daemon speaks TLS there", "DOCKER_CERT_PATH=/certs/client"}},
		{"DOCKER_TLS_VERIFY without certificates", func(t *testing.T) map[string]string {
			return map[string]string{"DOCKER_CERT_PATH": "", "HOME": t.TempDir(), "DOCKER_CONFIG": ""}
		}, []string{"DOCKER_TLS_VERIFY is set but DOCKER_CERT_PATH is not"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.Setenv(t)
			for k, v := range c.env(t) {
				t.Setenv(k, v)
			}
			docker, err := imagebuild.NewClient(ctx)
			if err == nil {
				docker.Close()
				t.Fatal("NewClient succeeded")
			}
			t.Logf("refused as expected: %v", err)
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q", want)
				}
			}
		})
	}
}
