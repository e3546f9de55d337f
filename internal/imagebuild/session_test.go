package imagebuild

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/registry"
	"github.com/moby/buildkit/session/auth"
)

func TestAuthProviderCredentials(t *testing.T) {
	t.Parallel()
	p := &authProvider{auths: map[string]registry.AuthConfig{
		"127.0.0.1:5000":                      {Username: "u1", Password: "p1"},
		"https://index.docker.io/v1/":         {Username: "hub", Password: "hubpw"},
		"https://ghcr.io":                     {Username: "gh", Password: "ghpw"},
		"eu.gcr.io":                           {Auth: base64.StdEncoding.EncodeToString([]byte("_json_key:{\"k\":\"v:w\"}"))},
		"123.dkr.ecr.eu-west-1.amazonaws.com": {IdentityToken: "idtoken"},
	}}
	tests := []struct{ host, user, secret string }{
		{"127.0.0.1:5000", "u1", "p1"},
		{"registry-1.docker.io", "hub", "hubpw"}, // the host BuildKit asks for Docker Hub
		{"docker.io", "hub", "hubpw"},
		{"ghcr.io", "gh", "ghpw"},
		{"eu.gcr.io", "_json_key", `{"k":"v:w"}`},
		{"123.dkr.ecr.eu-west-1.amazonaws.com", "", "idtoken"},
		{"quay.io", "", ""}, // anonymous
		{"127.0.0.1:5001", "", ""},
	}
	for _, tc := range tests {
		res, err := p.Credentials(context.Background(), &auth.CredentialsRequest{Host: tc.host})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetUsername() != tc.user || res.GetSecret() != tc.secret {
			t.Errorf("Credentials(%s) = %q/%q, want %q/%q", tc.host, res.GetUsername(), res.GetSecret(), tc.user, tc.secret)
		}
	}
}

func TestSSHAgentConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		specs    []string
		authSock string
		want     string // fmt of the configs
		err      string
	}{
		{[]string{"default"}, "/run/agent.sock", "[{default [/run/agent.sock] false}]", ""},
		{[]string{"github"}, "/run/agent.sock", "[{github [/run/agent.sock] false}]", ""},
		{[]string{"default=/keys/id_ed25519", "gitlab=/a,/b"}, "", "[{default [/keys/id_ed25519] false} {gitlab [/a /b] false}]", ""},
		{[]string{" deploy = /k "}, "", "[{deploy [/k] false}]", ""},
		{[]string{"default"}, "", "", `SSH forwarding "default" uses the running ssh-agent, but SSH_AUTH_SOCK is not set`},
		{[]string{"default="}, "", "", "SSH_AUTH_SOCK is not set"},
		{[]string{"=/k"}, "/s", "", `want "default"`},
	}
	for _, tc := range tests {
		got, err := sshAgentConfigs(tc.specs, tc.authSock)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("sshAgentConfigs(%q) error = %v, want %q", tc.specs, err, tc.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("sshAgentConfigs(%q) = %v, %v; want %s", tc.specs, got, err, tc.want)
		}
	}
}

// TestSSHWithoutAgentFailsBeforeTheDaemon checks the message for SSH ["default"] without
// SSH_AUTH_SOCK, given before anything is sent to the daemon.
func TestSSHWithoutAgentFailsBeforeTheDaemon(t *testing.T) {
	t.Parallel()
	b := useBuilder(NewBuilder(nil, nil), true) // a nil client proves the daemon is not called
	b.getenv = func(string) string { return "" }
	_, err := b.Build(context.Background(), Spec{ContextDir: fixture(t, "simple"), Tags: []string{"x:y"}, SSH: []string{"default"}})
	if err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") || !strings.Contains(err.Error(), "building x:y") {
		t.Fatalf("error = %v, want one about SSH_AUTH_SOCK", err)
	}
}

// failingSessionDocker is a DockerAPI whose /session cannot be dialled and whose build waits
// for its context, as a daemon waiting for the session would.
type failingSessionDocker struct{ DockerAPI }

func (failingSessionDocker) DialHijack(context.Context, string, string, map[string][]string) (net.Conn, error) {
	return nil, errors.New("connection refused")
}

func (failingSessionDocker) ImageBuild(ctx context.Context, body io.Reader, _ build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	if body != nil { // BuildKit builds send none: the session serves the context
		_, _ = io.Copy(io.Discard, body)
	}
	<-ctx.Done()
	return build.ImageBuildResponse{}, ctx.Err()
}

func TestSessionFailureEndsTheBuild(t *testing.T) {
	t.Parallel()
	b := useBuilder(NewBuilder(failingSessionDocker{}, nil), true)
	_, err := b.Build(context.Background(), Spec{ContextDir: fixture(t, "simple"), Tags: []string{"x:y"}})
	for _, want := range []string{"starting the build of x:y", "the BuildKit session with the Docker daemon failed", "POST /session: connection refused"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want one with %q", err, want)
		}
	}
}

func TestBuildKitOptions(t *testing.T) {
	t.Parallel()
	bc := &buildContext{dir: "/ctx", dockerfile: "docker/Dockerfile"}
	s := Spec{
		Tags: []string{"r/a:1"}, Labels: map[string]string{"l": "v"}, BuildArgs: map[string]string{"A": "1"},
		Target: "runtime", Platform: "linux/arm64", CacheFrom: []string{"r/a:buildcache"}, InlineCache: true,
		PullAuth: map[string]registry.AuthConfig{"r": {Username: "u", Password: "p"}},
	}
	o := buildKitOptions(bc, s, "sess-1")
	if o.Version != build.BuilderBuildKit || o.SessionID != "sess-1" || o.Dockerfile != "Dockerfile" || o.RemoteContext != clientSessionRemote || o.Target != "runtime" ||
		o.Platform != "linux/arm64" || fmt.Sprint(o.CacheFrom) != "[r/a:buildcache]" || o.Labels["l"] != "v" || !o.Remove {
		t.Errorf("options = %+v", o)
	}
	if len(o.BuildArgs) != 2 || *o.BuildArgs["A"] != "1" || *o.BuildArgs["BUILDKIT_INLINE_CACHE"] != "1" {
		t.Errorf("build args = %v", o.BuildArgs)
	}
	if o.AuthConfigs != nil {
		t.Errorf("credentials are sent in the request: %v", o.AuthConfigs)
	}
	s.InlineCache, s.BuildArgs = false, nil
	if o := buildKitOptions(bc, s, "sess-1"); o.BuildArgs != nil {
		t.Errorf("build args without InlineCache = %v", o.BuildArgs)
	}
}
