package registryauth

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHost(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"127.0.0.1:5000/team/app", "127.0.0.1:5000"},
		{"127.0.0.1:5000/team/app:pr-7", "127.0.0.1:5000"},
		{"localhost/app", "localhost"},
		{"localhost:5000/app", "localhost:5000"},
		{"ghcr.io/o/r", "ghcr.io"},
		{"ghcr.io/o/r:sha-abc", "ghcr.io"},
		{"ghcr.io/o/r@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "ghcr.io"},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/x", "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/team/x:tag", "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{"public.ecr.aws/a1b2c3/app", "public.ecr.aws"},
		{"us-docker.pkg.dev/proj/repo/img", "us-docker.pkg.dev"},
		{"gcr.io/proj/img", "gcr.io"},
		{"myreg.azurecr.io/app", "myreg.azurecr.io"},
		{"registry.gitlab.com/group/project/image", "registry.gitlab.com"},
		{"[::1]:5000/app", "[::1]:5000"},
		{"user/repo", "docker.io"},
		{"user/repo:latest", "docker.io"},
		{"ubuntu", "docker.io"},
		{"ubuntu:22.04", "docker.io"},
		{"library/ubuntu", "docker.io"},
		{"docker.io/library/x", "docker.io"},
		{"docker.io/user/x:1", "docker.io"},
		{"index.docker.io/x", "docker.io"},
		{"index.docker.io/user/x", "docker.io"},
		{"registry-1.docker.io/user/x", "docker.io"},
		{"Registry.Example.com/x", "Registry.Example.com"},
		{"https://ghcr.io/o/r", "ghcr.io"},
		{"  ghcr.io/o/r  ", "ghcr.io"},
	}
	for _, tc := range tests {
		if got := Host(tc.in); got != tc.want {
			t.Errorf("Host(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConfigKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"docker.io":       DockerHubConfigKey,
		"index.docker.io": DockerHubConfigKey,
		"ghcr.io":         "ghcr.io",
		"127.0.0.1:5000":  "127.0.0.1:5000",
	} {
		if got := ConfigKey(in); got != want {
			t.Errorf("ConfigKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// writeConfig writes config.json into a fresh directory and returns the directory.
func writeConfig(t *testing.T, json string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// installHelper puts a fake docker-credential-testhelper on PATH. It answers "get" for
// helper.example.com and identity.example.com, and "credentials not found" for anything else,
// as real helpers do.
func installHelper(t *testing.T) {
	t.Helper()
	bin := t.TempDir()
	script := `#!/bin/sh
[ "$1" = get ] || { echo "unsupported action $1" >&2; exit 1; }
read -r server
case "$server" in
  helper.example.com) printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}\n' "$server" ;;
  identity.example.com) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-token"}\n' "$server" ;;
  broken.example.com) echo "helper exploded" ; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-testhelper"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestResolve(t *testing.T) {
	// Not parallel: installHelper and the DOCKER_CONFIG case change the environment.
	installHelper(t)
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	authsConfig := writeConfig(t, `{
  "auths": {
    "https://index.docker.io/v1/": {"auth": "`+b64("hubuser:hubpass")+`"},
    "ghcr.io": {"auth": "`+b64("ghuser:ghpass")+`"},
    "https://registry.example.com": {"auth": "`+b64("urluser:urlpass")+`"},
    "127.0.0.1:5000": {"username": "plainuser", "password": "plainpass"},
    "acr.example.com": {"identitytoken": "acr-refresh"}
  },
  "credHelpers": {
    "helper.example.com": "testhelper",
    "identity.example.com": "testhelper",
    "broken.example.com": "testhelper",
    "missing.example.com": "nosuchhelper"
  }
}`)
	storeConfig := writeConfig(t, `{"auths": {"helper.example.com": {}, "ghcr.io": {"auth": "`+b64("ghuser:ghpass")+`"}}, "credsStore": "testhelper"}`)
	altHubConfig := writeConfig(t, `{"auths": {"docker.io": {"auth": "`+b64("altuser:altpass")+`"}}}`)
	emptyDir := t.TempDir()

	tests := []struct {
		name               string
		r                  *Resolver
		host               string
		wantSource         Source
		wantUser, wantPass string
		wantIdentity       string
		wantServer         string
		wantOrigin         string // substring
		wantErr            string // substring; "" for none
		forbidInErr        string
	}{
		{name: "inputs win over config", r: &Resolver{Username: "in-user", Password: "in-pass", ConfigDir: authsConfig}, host: "ghcr.io",
			wantSource: SourceInputs, wantUser: "in-user", wantPass: "in-pass", wantServer: "ghcr.io", wantOrigin: "registry_username/registry_password"},
		{name: "inputs for docker hub", r: &Resolver{Username: "in-user", Password: "in-pass"}, host: "docker.io",
			wantSource: SourceInputs, wantUser: "in-user", wantPass: "in-pass", wantServer: DockerHubConfigKey},
		{name: "username without password", r: &Resolver{Username: "in-user", ConfigDir: authsConfig}, host: "ghcr.io",
			wantErr: "input registry_username is set but registry_password is empty"},
		{name: "password without username", r: &Resolver{Password: "lonely-secret", ConfigDir: authsConfig}, host: "ghcr.io",
			wantErr: "input registry_password is set but registry_username is empty", forbidInErr: "lonely-secret"},
		{name: "auths by host", r: &Resolver{ConfigDir: authsConfig}, host: "ghcr.io",
			wantSource: SourceDockerConfig, wantUser: "ghuser", wantPass: "ghpass", wantServer: "ghcr.io", wantOrigin: "auths in " + filepath.Join(authsConfig, "config.json")},
		{name: "auths keyed by https URL", r: &Resolver{ConfigDir: authsConfig}, host: "registry.example.com",
			wantSource: SourceDockerConfig, wantUser: "urluser", wantPass: "urlpass", wantServer: "registry.example.com"},
		{name: "auths with host:port and plain fields", r: &Resolver{ConfigDir: authsConfig}, host: "127.0.0.1:5000",
			wantSource: SourceDockerConfig, wantUser: "plainuser", wantPass: "plainpass", wantServer: "127.0.0.1:5000"},
		{name: "auths identity token", r: &Resolver{ConfigDir: authsConfig}, host: "acr.example.com",
			wantSource: SourceDockerConfig, wantIdentity: "acr-refresh", wantServer: "acr.example.com"},
		{name: "docker hub under the index server key", r: &Resolver{ConfigDir: authsConfig}, host: "docker.io",
			wantSource: SourceDockerConfig, wantUser: "hubuser", wantPass: "hubpass", wantServer: DockerHubConfigKey},
		{name: "docker hub under docker.io", r: &Resolver{ConfigDir: altHubConfig}, host: "docker.io",
			wantSource: SourceDockerConfig, wantUser: "altuser", wantPass: "altpass", wantServer: DockerHubConfigKey},
		{name: "credHelpers entry", r: &Resolver{ConfigDir: authsConfig}, host: "helper.example.com",
			wantSource: SourceCredentialHelper, wantUser: "helper-user", wantPass: "helper-secret", wantServer: "helper.example.com",
			wantOrigin: "credential helper docker-credential-testhelper (credHelpers in"},
		{name: "credHelpers identity token", r: &Resolver{ConfigDir: authsConfig}, host: "identity.example.com",
			wantSource: SourceCredentialHelper, wantIdentity: "refresh-token", wantServer: "identity.example.com"},
		{name: "credHelpers helper fails", r: &Resolver{ConfigDir: authsConfig}, host: "broken.example.com",
			wantErr: "docker-credential-testhelper"},
		{name: "credHelpers helper missing", r: &Resolver{ConfigDir: authsConfig}, host: "missing.example.com",
			wantErr: "docker-credential-nosuchhelper"},
		{name: "credsStore", r: &Resolver{ConfigDir: storeConfig}, host: "helper.example.com",
			wantSource: SourceCredentialHelper, wantUser: "helper-user", wantPass: "helper-secret", wantOrigin: "(credsStore in"},
		{name: "credsStore without an entry", r: &Resolver{ConfigDir: storeConfig}, host: "registry.example.org",
			wantSource: SourceNone, wantServer: ""},
		{name: "credsStore without an entry for ghcr.io", r: &Resolver{ConfigDir: storeConfig}, host: "ghcr.io",
			wantErr: "no registry credentials for GitHub Container registry ghcr.io: set the input github_token"},
		{name: "unknown host", r: &Resolver{ConfigDir: authsConfig}, host: "quay.io",
			wantSource: SourceNone, wantOrigin: "no credentials"},
		{name: "no config file", r: &Resolver{ConfigDir: emptyDir}, host: "127.0.0.1:5000",
			wantSource: SourceNone},
		{name: "empty host", r: &Resolver{ConfigDir: emptyDir}, host: "", wantErr: "empty registry host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.r.Resolve(context.Background(), tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve error = %v, want one containing %q", err, tc.wantErr)
				}
				for _, secret := range []string{tc.forbidInErr, tc.r.Password, "ghpass", "helper-secret"} {
					if secret != "" && strings.Contains(err.Error(), secret) {
						t.Errorf("error contains the secret %q: %v", secret, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if c.Host != tc.host {
				t.Errorf("Host = %q, want %q", c.Host, tc.host)
			}
			if c.Source != tc.wantSource {
				t.Errorf("Source = %q, want %q", c.Source, tc.wantSource)
			}
			if c.Auth.Username != tc.wantUser || c.Auth.Password != tc.wantPass || c.Auth.IdentityToken != tc.wantIdentity {
				t.Errorf("Auth = %q/%q/%q, want %q/%q/%q", c.Auth.Username, c.Auth.Password, c.Auth.IdentityToken, tc.wantUser, tc.wantPass, tc.wantIdentity)
			}
			if tc.wantServer != "" && c.Auth.ServerAddress != tc.wantServer {
				t.Errorf("ServerAddress = %q, want %q", c.Auth.ServerAddress, tc.wantServer)
			}
			if tc.wantSource == SourceNone && !c.Anonymous() {
				t.Errorf("SourceNone with credentials %+v", c.Auth)
			}
			if !strings.Contains(c.Origin, tc.wantOrigin) {
				t.Errorf("Origin = %q, want it to contain %q", c.Origin, tc.wantOrigin)
			}
			for _, s := range []string{c.Auth.Password, c.Auth.IdentityToken} {
				if s != "" && strings.Contains(c.Origin, s) {
					t.Errorf("Origin %q contains a secret", c.Origin)
				}
			}
		})
	}
}

func TestResolveDefaultConfigDir(t *testing.T) {
	dir := writeConfig(t, `{"auths": {"ghcr.io": {"auth": "`+b64("envuser:envpass")+`"}}}`)
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	c, err := (&Resolver{}).Resolve(context.Background(), "ghcr.io")
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != SourceDockerConfig || c.Auth.Username != "envuser" {
		t.Fatalf("Resolve with DOCKER_CONFIG=%s: %+v", dir, c)
	}

	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(`{"auths": {"ghcr.io": {"auth": "`+b64("homeuser:homepass")+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("HOME", home)
	c, err = (&Resolver{}).Resolve(context.Background(), "ghcr.io")
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Username != "homeuser" || !strings.Contains(c.Origin, filepath.Join(home, ".docker", "config.json")) {
		t.Fatalf("Resolve with HOME=%s: %+v", home, c)
	}
}

func TestResolveMalformedConfig(t *testing.T) {
	t.Parallel()
	dir := writeConfig(t, `{"auths": {"ghcr.io": {"auth": "`+b64("u:topsecret")+`"}`) // truncated JSON
	_, err := (&Resolver{ConfigDir: dir}).Resolve(context.Background(), "ghcr.io")
	if err == nil {
		t.Fatal("Resolve accepted a malformed config.json")
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) || strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), b64("u:topsecret")) {
		t.Errorf("error should name the file and not its secrets: %v", err)
	}
}
