//go:build docker

package registryauth_test

// End-to-end logins against the AWS, Google and GitHub OIDC emulators, each ending in a real
// build and push through the shared test Docker daemon to a docker-registry whose htpasswd user
// and password are what the emulator hands out. (An external test package: internal/imagebuild
// imports registryauth.) Built only with -tags docker; oidc_test.go is built without it too.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/awsemu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/gcpemu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/oidcemu"
)

const (
	accessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	pushRole        = "arn:aws:iam::210987654321:role/gha-ecr-push"
	serviceAccount  = "pusher@emu-project.iam.gserviceaccount.com"
	wifProvider     = "projects/123456789/locations/global/workloadIdentityPools/github/providers/octo-org"
)

func setenv(t *testing.T, env map[string]string) {
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// overlay reads env first, then the process environment.
func overlay(env map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
}

// startRegistry starts a docker-registry accepting only user/password.
func startRegistry(t *testing.T, user, password string) *testbed.Registry {
	t.Helper()
	reg, err := testbed.StartRegistry(testCtx(t), t.TempDir(), user, password)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry log:\n%s", reg.LogTail(30))
		}
		_ = reg.Close()
	})
	return reg
}

// pushWith builds a FROM scratch image and pushes it to reg with the resolved credentials (their
// ServerAddress pointed at reg, which stands in for the real registry host), then checks the
// digest the registry stored.
func pushWith(t *testing.T, reg *testbed.Registry, c registryauth.Credentials) {
	t.Helper()
	testbed.Docker(t)
	ctx := testCtx(t)
	client, err := imagebuild.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	var log strings.Builder
	b := imagebuild.NewBuilder(client, &log)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY hello.txt /hello.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte(t.Name()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	repo := "dbd-test/" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "-" + hex.EncodeToString(suffix)
	ref := reg.Addr + "/" + repo + ":pr-7"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	if _, err := b.Build(ctx, imagebuild.Spec{ContextDir: dir, Tags: []string{ref}}); err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	auth := c.Auth
	auth.ServerAddress = reg.Addr
	if err := b.Login(ctx, auth, c.Origin); err != nil {
		t.Fatalf("Login: %v", err)
	}
	digest, err := b.Push(ctx, ref, auth)
	if err != nil {
		t.Fatalf("Push: %v\n%s", err, log.String())
	}
	want, err := reg.ManifestDigest(ctx, repo, "pr-7")
	if err != nil {
		t.Fatal(err)
	}
	if digest != want {
		t.Errorf("Push returned digest %s, the registry has %s", digest, want)
	}
	t.Logf("pushed %s@%s as %s", ref, digest, auth.Username)
	for _, s := range c.Secrets() {
		if strings.Contains(log.String(), s) {
			t.Errorf("the build log contains a secret")
		}
	}
}

// checkCreds checks the common properties of derived credentials.
func checkCreds(t *testing.T, c registryauth.Credentials, host, user, password string, source registryauth.Source, ttl time.Duration, originHas ...string) {
	t.Helper()
	if c.Host != host || c.Auth.ServerAddress != host || c.Auth.Username != user || c.Auth.Password != password || c.Source != source {
		t.Errorf("Credentials = host %q, server %q, user %q, source %q; want %q, %q, %q, %q (and the emulator's password)",
			c.Host, c.Auth.ServerAddress, c.Auth.Username, c.Source, host, host, user, source)
	}
	if left := time.Until(c.Expires); left < ttl-time.Hour || left > ttl+time.Minute {
		t.Errorf("Expires in %s, want about %s", left, ttl)
	}
	for _, s := range originHas {
		if !strings.Contains(c.Origin, s) {
			t.Errorf("Origin %q lacks %q", c.Origin, s)
		}
	}
	if !slices.Contains(c.Secrets(), password) {
		t.Errorf("Secrets() lacks the registry password")
	}
	for _, s := range c.Secrets() {
		if strings.Contains(c.Origin, s) {
			t.Errorf("Origin %q contains a secret", c.Origin)
		}
	}
}

func checkNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error contains the secret %q: %v", s, err)
		}
	}
}

func TestECRWithEnvironmentKeys(t *testing.T) {
	awsemu.Isolate(t)
	emu := awsemu.Start(t, awsemu.Options{AccessKeys: map[string]string{accessKeyID: secretAccessKey}, Registries: []string{"123456789012"}})
	setenv(t, emu.Env())
	t.Setenv("AWS_ACCESS_KEY_ID", accessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretAccessKey)
	ctx := testCtx(t)

	host := "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	r := &registryauth.Resolver{ConfigDir: t.TempDir()}
	c, err := r.Resolve(ctx, host)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	checkCreds(t, c, host, "AWS", emu.Password, registryauth.SourceAWS, 12*time.Hour, "Amazon ECR token", "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
	if c.Kind != registryauth.KindECR || !slices.Contains(c.Secrets(), secretAccessKey) {
		t.Errorf("Kind = %q; Secrets() has the AWS secret key: %v", c.Kind, slices.Contains(c.Secrets(), secretAccessKey))
	}
	if _, err := r.Resolve(ctx, host); err != nil {
		t.Fatal(err)
	}
	if ok, _ := emu.Calls(awsemu.OpECRGetAuthorizationToken); ok != 1 {
		t.Errorf("ECR calls = %d, want 1 (the second Resolve is cached)", ok)
	}
	pushWith(t, startRegistry(t, "AWS", emu.Password), c)

	// A wrong secret key is refused by ECR, and the error says so without the key.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong"+secretAccessKey)
	_, err = (&registryauth.Resolver{ConfigDir: t.TempDir()}).Resolve(ctx, host)
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") || !strings.Contains(err.Error(), host) {
		t.Errorf("Resolve with a wrong secret key: %v", err)
	} else {
		checkNoSecrets(t, err, secretAccessKey)
	}
}

func TestECRWithRoleViaOIDC(t *testing.T) {
	awsemu.Isolate(t)
	oidc := oidcemu.Start(t)
	emu := awsemu.Start(t, awsemu.Options{OIDC: oidc, Roles: []string{pushRole}})
	setenv(t, emu.Env())
	// Keys the emulator does not know: the role must win over them.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIANOTKNOWN")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-known")
	env := oidc.Env()
	env["GITHUB_RUN_ID"] = "987654321"
	getenv := overlay(env)
	ctx := testCtx(t)

	host := "210987654321.dkr.ecr.eu-central-1.amazonaws.com"
	r := &registryauth.Resolver{AWSRoleARN: pushRole, IDToken: registryauth.GitHubIDToken(getenv, nil), Getenv: getenv, ConfigDir: t.TempDir()}
	c, err := r.Resolve(ctx, host)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	checkCreds(t, c, host, "AWS", emu.Password, registryauth.SourceAWS, 12*time.Hour, "role "+pushRole+" via GitHub OIDC", "aws_role_arn")
	issued := oidc.Issued()
	if len(issued) != 1 || issued[0].Audience != "sts.amazonaws.com" {
		t.Fatalf("OIDC tokens issued: %+v, want one for sts.amazonaws.com", issued)
	}
	if !slices.Contains(c.Secrets(), issued[0].Value) {
		t.Error("Secrets() lacks the GitHub OIDC token")
	}
	sessions := emu.Sessions()
	if len(sessions) != 1 || sessions[0].SessionName != "dagster-branch-deploy-987654321" || sessions[0].RoleARN != pushRole || sessions[0].Subject != oidc.Subject {
		t.Errorf("STS sessions = %+v", sessions)
	}
	pushWith(t, startRegistry(t, "AWS", emu.Password), c)

	// A role that does not trust the token.
	other := "arn:aws:iam::210987654321:role/not-trusted"
	r = &registryauth.Resolver{AWSRoleARN: other, IDToken: registryauth.GitHubIDToken(getenv, nil), Getenv: getenv, ConfigDir: t.TempDir()}
	_, err = r.Resolve(ctx, host)
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "aws_role_arn") {
		t.Fatalf("Resolve with an untrusted role: %v", err)
	}
	for _, tok := range oidc.Issued() {
		checkNoSecrets(t, err, tok.Value)
	}
}

func TestECRPublic(t *testing.T) {
	awsemu.Isolate(t)
	emu := awsemu.Start(t, awsemu.Options{AccessKeys: map[string]string{accessKeyID: secretAccessKey}})
	// Through Getenv only: the Resolver passes the endpoint and keys to the SDK itself.
	env := emu.Env()
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = accessKeyID, secretAccessKey
	ctx := testCtx(t)

	r := &registryauth.Resolver{Getenv: overlay(env), ConfigDir: t.TempDir()}
	c, err := r.Resolve(ctx, "public.ecr.aws")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	checkCreds(t, c, "public.ecr.aws", "AWS", emu.Password, registryauth.SourceAWS, 12*time.Hour, "Amazon ECR Public token")
	if ok, _ := emu.Calls(awsemu.OpECRPublicGetAuthorization); ok != 1 {
		t.Errorf("ECR Public calls = %d, want 1", ok)
	}
	pushWith(t, startRegistry(t, "AWS", emu.Password), c)
}

func newServiceAccount(t *testing.T) (gcpemu.ServiceAccount, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return gcpemu.ServiceAccount{Email: serviceAccount, KeyID: "0123abcd", PublicKey: &key.PublicKey}, key
}

func TestGCPServiceAccountKey(t *testing.T) {
	t.Parallel()
	sa, key := newServiceAccount(t)
	emu := gcpemu.Start(t, gcpemu.Options{ServiceAccounts: []gcpemu.ServiceAccount{sa}})
	ctx := testCtx(t)

	host := "us-central1-docker.pkg.dev"
	r := &registryauth.Resolver{GCPCredentialsJSON: string(gcpemu.KeyJSON(sa, key, emu.TokenURL())), ConfigDir: t.TempDir()}
	c, err := r.Resolve(ctx, host)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	checkCreds(t, c, host, "oauth2accesstoken", emu.AccessToken, registryauth.SourceGoogle, time.Hour, "service account "+serviceAccount, "gcp_credentials_json")
	pushWith(t, startRegistry(t, "oauth2accesstoken", emu.AccessToken), c)

	// A key Google does not know: the error names the account but shows no key material.
	_, otherKey := newServiceAccount(t)
	keyJSON := string(gcpemu.KeyJSON(sa, otherKey, emu.TokenURL()))
	_, err = (&registryauth.Resolver{GCPCredentialsJSON: keyJSON, ConfigDir: t.TempDir()}).Resolve(ctx, "eu.gcr.io")
	if err == nil || !strings.Contains(err.Error(), "Invalid JWT Signature") || !strings.Contains(err.Error(), serviceAccount) {
		t.Fatalf("Resolve with an unknown key: %v", err)
	}
	for _, line := range strings.Split(keyJSON, "\n") {
		if strings.Contains(line, "PRIVATE KEY") || len(line) > 60 {
			checkNoSecrets(t, err, strings.TrimSpace(line))
		}
	}
}

func TestGCPWorkloadIdentityFederation(t *testing.T) {
	t.Parallel()
	oidc := oidcemu.Start(t)
	emu := gcpemu.Start(t, gcpemu.Options{OIDC: oidc, Providers: map[string][]string{wifProvider: {serviceAccount}}})
	env := oidc.Env()
	env[registryauth.EnvGCPSTSURL] = emu.STSURL()
	env[registryauth.EnvGCPIAMCredentialsURL] = emu.IAMCredentialsURL()
	getenv := func(k string) string { return env[k] }
	ctx := testCtx(t)

	host := "europe-west4-docker.pkg.dev"
	r := &registryauth.Resolver{
		GCPWorkloadIdentityProvider: wifProvider, GCPServiceAccount: serviceAccount,
		IDToken: registryauth.GitHubIDToken(getenv, nil), Getenv: getenv, ConfigDir: t.TempDir(),
	}
	c, err := r.Resolve(ctx, host)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	checkCreds(t, c, host, "oauth2accesstoken", emu.AccessToken, registryauth.SourceGoogle, time.Hour, "service account "+serviceAccount, "GitHub OIDC", wifProvider)
	issued := oidc.Issued()
	if len(issued) != 1 || issued[0].Audience != "https://iam.googleapis.com/"+wifProvider {
		t.Fatalf("OIDC tokens issued: %+v, want one for the provider", issued)
	}
	if !slices.Contains(c.Secrets(), issued[0].Value) {
		t.Error("Secrets() lacks the GitHub OIDC token")
	}
	if sts, _ := emu.Calls(gcpemu.OpSTSExchange); sts != 1 {
		t.Errorf("STS exchanges = %d, want 1", sts)
	}
	if gen, _ := emu.Calls(gcpemu.OpGenerateAccessToken); gen != 1 {
		t.Errorf("generateAccessToken calls = %d, want 1", gen)
	}
	pushWith(t, startRegistry(t, "oauth2accesstoken", emu.AccessToken), c)

	// A service account the provider may not impersonate.
	other := "other@emu-project.iam.gserviceaccount.com"
	r = &registryauth.Resolver{
		GCPWorkloadIdentityProvider: wifProvider, GCPServiceAccount: other,
		IDToken: registryauth.GitHubIDToken(getenv, nil), Getenv: getenv, ConfigDir: t.TempDir(),
	}
	_, err = r.Resolve(ctx, host)
	if err == nil || !strings.Contains(err.Error(), "PERMISSION_DENIED") || !strings.Contains(err.Error(), other) {
		t.Fatalf("Resolve for a service account that may not be impersonated: %v", err)
	}
	for _, tok := range oidc.Issued() {
		checkNoSecrets(t, err, tok.Value)
	}
}
