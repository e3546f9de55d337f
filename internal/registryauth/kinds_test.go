package registryauth

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/registry"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/awsemu"
)

// Secret values of the precedence tests: none may appear in an error or an Origin.
const (
	inPass   = "input-pass-1111"
	ghToken  = "ghs_token2222"
	ciPass   = "ci-pass-3333"
	jobToken = "job-token-4444"
	cfgPass  = "cfg-pass-5555"
	gcpKey   = `{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nsecretkeymaterial6666\n-----END PRIVATE KEY-----\n", "client_email": "sa@p.iam.gserviceaccount.com"`
)

func mapEnv(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestResolveByKind(t *testing.T) {
	// Not parallel: awsemu.Isolate sets the process environment, so that the AWS SDK's default
	// chain finds nothing on this host.
	awsemu.Isolate(t)
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	auth := func(user, pass string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)) }
	cfg := writeConfig(t, `{"auths": {
  "ghcr.io": {"auth": "`+auth("cfg-user", cfgPass)+`"},
  "registry.gitlab.com": {"auth": "`+auth("cfg-user", cfgPass)+`"},
  "gitlab.example.com:5050": {"auth": "`+auth("cfg-user", cfgPass)+`"},
  "https://index.docker.io/v1/": {"auth": "`+auth("cfg-user", cfgPass)+`"},
  "myreg.azurecr.io": {"identitytoken": "`+cfgPass+`"},
  "123456789012.dkr.ecr.us-east-1.amazonaws.com": {"auth": "`+auth("AWS", cfgPass)+`"},
  "public.ecr.aws": {"auth": "`+auth("AWS", cfgPass)+`"},
  "europe-docker.pkg.dev": {"auth": "`+auth("oauth2accesstoken", cfgPass)+`"},
  "quay.io": {"auth": "`+auth("cfg-user", cfgPass)+`"}
}}`)
	empty := t.TempDir()
	gitlabCI := mapEnv("GITLAB_CI", "true", "CI_REGISTRY", "registry.gitlab.com", "CI_REGISTRY_USER", "gitlab-ci-token", "CI_REGISTRY_PASSWORD", ciPass, "CI_JOB_TOKEN", jobToken)
	gitlabJob := mapEnv("GITLAB_CI", "true", "CI_REGISTRY", "gitlab.example.com:5050", "CI_REGISTRY_USER", "gitlab-ci-token", "CI_JOB_TOKEN", jobToken)
	const provider = "projects/123/locations/global/workloadIdentityPools/github/providers/repo"

	tests := []struct {
		name       string
		r          *Resolver
		host       string
		wantSource Source
		wantUser   string
		wantPass   string
		wantOrigin string   // substring
		wantErr    []string // substrings; nil for success
	}{
		// GHCR.
		{name: "ghcr inputs first", r: &Resolver{Username: "in-user", Password: inPass, GitHubToken: ghToken, GitHubActor: "octocat", ConfigDir: cfg}, host: "ghcr.io",
			wantSource: SourceInputs, wantUser: "in-user", wantPass: inPass},
		{name: "ghcr github_token before config", r: &Resolver{GitHubToken: ghToken, GitHubActor: "octocat", ConfigDir: cfg}, host: "ghcr.io",
			wantSource: SourceGitHubToken, wantUser: "octocat", wantPass: ghToken, wantOrigin: "the action input github_token as octocat"},
		{name: "ghcr actor from GITHUB_ACTOR", r: &Resolver{GitHubToken: ghToken, Getenv: mapEnv("GITHUB_ACTOR", "hubot"), ConfigDir: empty}, host: "ghcr.io",
			wantSource: SourceGitHubToken, wantUser: "hubot", wantPass: ghToken},
		{name: "ghcr token without actor falls to config", r: &Resolver{GitHubToken: ghToken, Getenv: mapEnv(), ConfigDir: cfg}, host: "ghcr.io",
			wantSource: SourceDockerConfig, wantUser: "cfg-user", wantPass: cfgPass},
		{name: "ghcr config", r: &Resolver{ConfigDir: cfg, Getenv: mapEnv()}, host: "ghcr.io",
			wantSource: SourceDockerConfig, wantUser: "cfg-user", wantPass: cfgPass},
		{name: "ghcr nothing", r: &Resolver{ConfigDir: empty, Getenv: mapEnv()}, host: "ghcr.io",
			wantErr: []string{"GitHub Container registry ghcr.io", "input github_token", "packages: write", "registry_username and registry_password"}},

		// GitLab.
		{name: "gitlab inputs first", r: &Resolver{Username: "in-user", Password: inPass, Getenv: gitlabCI, ConfigDir: cfg}, host: "registry.gitlab.com",
			wantSource: SourceInputs, wantUser: "in-user", wantPass: inPass},
		{name: "gitlab CI variables before config", r: &Resolver{Getenv: gitlabCI, ConfigDir: cfg}, host: "registry.gitlab.com",
			wantSource: SourceGitLabCI, wantUser: "gitlab-ci-token", wantPass: ciPass, wantOrigin: "CI_REGISTRY_USER (gitlab-ci-token) and CI_REGISTRY_PASSWORD"},
		{name: "gitlab self-hosted CI_JOB_TOKEN", r: &Resolver{Getenv: gitlabJob, ConfigDir: empty}, host: "gitlab.example.com:5050",
			wantSource: SourceGitLabCI, wantUser: "gitlab-ci-token", wantPass: jobToken, wantOrigin: "CI_JOB_TOKEN"},
		{name: "gitlab CI variables are for CI_REGISTRY only", r: &Resolver{Getenv: gitlabJob, ConfigDir: cfg}, host: "registry.gitlab.com",
			wantSource: SourceDockerConfig, wantUser: "cfg-user", wantPass: cfgPass},
		{name: "gitlab outside GitLab CI", r: &Resolver{Getenv: mapEnv("CI_REGISTRY", "gitlab.example.com:5050", "CI_REGISTRY_USER", "u", "CI_REGISTRY_PASSWORD", ciPass), ConfigDir: cfg}, host: "gitlab.example.com:5050",
			wantSource: SourceDockerConfig, wantUser: "cfg-user", wantPass: cfgPass},
		{name: "gitlab nothing", r: &Resolver{Getenv: mapEnv("GITLAB_CI", "true", "CI_REGISTRY", "registry.gitlab.com"), ConfigDir: empty}, host: "registry.gitlab.com",
			wantErr: []string{"GitLab registry registry.gitlab.com", "registry_username and registry_password", "CI_REGISTRY_USER", "CI_JOB_TOKEN"}},

		// Docker Hub, ACR and others.
		{name: "docker hub inputs", r: &Resolver{Username: "in-user", Password: inPass, ConfigDir: cfg}, host: "docker.io",
			wantSource: SourceInputs, wantUser: "in-user", wantPass: inPass},
		{name: "docker hub config", r: &Resolver{ConfigDir: cfg}, host: "docker.io",
			wantSource: SourceDockerConfig, wantUser: "cfg-user", wantPass: cfgPass},
		{name: "docker hub nothing", r: &Resolver{ConfigDir: empty}, host: "docker.io",
			wantErr: []string{"Docker Hub registry docker.io", "registry_username and registry_password", "docker/login-action"}},
		{name: "acr config identity token", r: &Resolver{ConfigDir: cfg}, host: "myreg.azurecr.io",
			wantSource: SourceDockerConfig},
		{name: "acr nothing", r: &Resolver{ConfigDir: empty}, host: "myreg.azurecr.io",
			wantErr: []string{"Azure Container registry myreg.azurecr.io", "registry_username and registry_password", "service principal", "azure/docker-login"}},
		{name: "other config", r: &Resolver{ConfigDir: cfg}, host: "quay.io",
			wantSource: SourceDockerConfig, wantUser: "cfg-user", wantPass: cfgPass},
		{name: "other nothing is anonymous", r: &Resolver{ConfigDir: empty}, host: "127.0.0.1:5000",
			wantSource: SourceNone, wantOrigin: "no credentials"},

		// ECR without any AWS credentials in the environment.
		{name: "ecr inputs", r: &Resolver{Username: "AWS", Password: inPass, ConfigDir: cfg}, host: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
			wantSource: SourceInputs, wantUser: "AWS", wantPass: inPass},
		{name: "ecr config (docker/login-action)", r: &Resolver{ConfigDir: cfg}, host: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
			wantSource: SourceDockerConfig, wantUser: "AWS", wantPass: cfgPass},
		{name: "ecr public config", r: &Resolver{ConfigDir: cfg}, host: "public.ecr.aws",
			wantSource: SourceDockerConfig, wantUser: "AWS", wantPass: cfgPass},
		{name: "ecr nothing", r: &Resolver{ConfigDir: empty}, host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
			wantErr: []string{"Amazon ECR registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com", "input aws_role_arn", "id-token: write", "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", "aws-actions/configure-aws-credentials"}},
		{name: "ecr public nothing", r: &Resolver{ConfigDir: empty}, host: "public.ecr.aws",
			wantErr: []string{"Amazon ECR Public registry public.ecr.aws", "input aws_role_arn"}},
		{name: "ecr role without OIDC", r: &Resolver{AWSRoleARN: "arn:aws:iam::123456789012:role/push", ConfigDir: cfg}, host: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
			wantErr: []string{"input aws_role_arn is set", "permissions: id-token: write"}},
		{name: "ecr malformed role", r: &Resolver{AWSRoleARN: "push-role", ConfigDir: cfg}, host: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
			wantErr: []string{"input aws_role_arn", "is not an IAM role ARN"}},

		// Google.
		{name: "gcr inputs", r: &Resolver{Username: "_json_key", Password: inPass, ConfigDir: cfg}, host: "europe-docker.pkg.dev",
			wantSource: SourceInputs, wantUser: "_json_key", wantPass: inPass},
		{name: "gcr config (gcloud helper or login-action)", r: &Resolver{ConfigDir: cfg}, host: "europe-docker.pkg.dev",
			wantSource: SourceDockerConfig, wantUser: "oauth2accesstoken", wantPass: cfgPass},
		{name: "gcr nothing", r: &Resolver{ConfigDir: empty}, host: "eu.gcr.io",
			wantErr: []string{"Google registry eu.gcr.io", "input gcp_credentials_json", "gcp_workload_identity_provider and gcp_service_account", "id-token: write"}},
		{name: "gcr key that is not JSON", r: &Resolver{GCPCredentialsJSON: gcpKey, ConfigDir: cfg}, host: "gcr.io",
			wantErr: []string{"input gcp_credentials_json is not valid JSON", "syntax error at byte"}},
		{name: "gcr key of another type", r: &Resolver{GCPCredentialsJSON: `{"type": "external_account", "audience": "x"}`, ConfigDir: cfg}, host: "gcr.io",
			wantErr: []string{"input gcp_credentials_json holds credentials of type \"external_account\"", "gcp_workload_identity_provider"}},
		{name: "gcr key without private key", r: &Resolver{GCPCredentialsJSON: `{"type": "service_account", "client_email": "a@b"}`, ConfigDir: cfg}, host: "gcr.io",
			wantErr: []string{"without client_email or private_key"}},
		{name: "gcr key with a broken private key", r: &Resolver{GCPCredentialsJSON: gcpKey + "}", ConfigDir: cfg}, host: "gcr.io",
			wantErr: []string{"gcp_credentials_json", "sa@p.iam.gserviceaccount.com"}},
		{name: "gcr wif half set", r: &Resolver{GCPWorkloadIdentityProvider: provider, ConfigDir: cfg}, host: "gcr.io",
			wantErr: []string{"inputs gcp_workload_identity_provider and gcp_service_account go together"}},
		{name: "gcr wif malformed provider", r: &Resolver{GCPWorkloadIdentityProvider: "my-provider", GCPServiceAccount: "sa@p.iam.gserviceaccount.com", ConfigDir: cfg}, host: "gcr.io",
			wantErr: []string{"input gcp_workload_identity_provider", "projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"}},
		{name: "gcr wif malformed service account", r: &Resolver{GCPWorkloadIdentityProvider: provider, GCPServiceAccount: "sa", ConfigDir: cfg}, host: "gcr.io",
			wantErr: []string{"input gcp_service_account", "not a service account e-mail address"}},
		{name: "gcr wif without OIDC", r: &Resolver{GCPWorkloadIdentityProvider: "//iam.googleapis.com/" + provider, GCPServiceAccount: "sa@p.iam.gserviceaccount.com", ConfigDir: cfg}, host: "gcr.io",
			wantErr: []string{"input gcp_workload_identity_provider is set", "permissions: id-token: write"}},

		// Inputs half set, for any kind.
		{name: "password without username", r: &Resolver{Password: inPass, ConfigDir: cfg}, host: "public.ecr.aws",
			wantErr: []string{"input registry_password is set but registry_username is empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := tc.r.Resolve(ctx, tc.host)
			if err != nil {
				for _, s := range []string{inPass, ghToken, ciPass, jobToken, cfgPass, "secretkeymaterial6666"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error contains the secret %q: %v", s, err)
					}
				}
			}
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Resolve = %+v, want an error", c)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q: %v", w, err)
					}
				}
				wantNoCreds := strings.Contains(tc.name, "nothing")
				if errors.Is(err, ErrNoCredentials) != wantNoCreds {
					t.Errorf("errors.Is(err, ErrNoCredentials) = %v, want %v", !wantNoCreds, wantNoCreds)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			kind, _ := Detect(tc.host, tc.r.Getenv)
			if c.Source != tc.wantSource || c.Kind != kind || c.Host != tc.host {
				t.Errorf("Source, Kind, Host = %q, %q, %q; want %q, %q, %q", c.Source, c.Kind, c.Host, tc.wantSource, kind, tc.host)
			}
			if tc.wantUser != "" && (c.Auth.Username != tc.wantUser || c.Auth.Password != tc.wantPass) {
				t.Errorf("Auth = %q/%q, want %q/%q", c.Auth.Username, c.Auth.Password, tc.wantUser, tc.wantPass)
			}
			if c.Source != SourceNone && c.Auth.ServerAddress != ConfigKey(tc.host) {
				t.Errorf("ServerAddress = %q, want %q", c.Auth.ServerAddress, ConfigKey(tc.host))
			}
			if !strings.Contains(c.Origin, tc.wantOrigin) {
				t.Errorf("Origin = %q, want it to contain %q", c.Origin, tc.wantOrigin)
			}
			for _, s := range c.Secrets() {
				if strings.Contains(c.Origin, s) {
					t.Errorf("Origin %q contains the secret %q", c.Origin, s)
				}
			}
			if c.Auth.Password != "" && !slices.Contains(c.Secrets(), c.Auth.Password) {
				t.Errorf("Secrets() = %q lacks the password", c.Secrets())
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	c := Credentials{
		Auth:    registry.AuthConfig{Username: "AWS", Password: "pw-1234", IdentityToken: "idt-5678"},
		derived: []string{"line-one\nline-two\n", "", "pw-1234"},
	}
	got := c.Secrets()
	want := []string{"pw-1234", "idt-5678", base64.StdEncoding.EncodeToString([]byte("AWS:pw-1234")), "line-one", "line-two"}
	if !slices.Equal(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
	if got := (Credentials{}).Secrets(); len(got) != 0 {
		t.Errorf("Secrets() of no credentials = %q", got)
	}
}

func TestResolveCaches(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	dir := writeConfig(t, `{"auths": {"quay.io": {"auth": "`+b64("first:pass-1")+`"}}}`)
	r := &Resolver{ConfigDir: dir}
	ctx := context.Background()
	c1, err := r.Resolve(ctx, "quay.io")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths": {"quay.io": {"auth": "`+b64("second:pass-2")+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, err := r.Resolve(ctx, "quay.io")
	if err != nil {
		t.Fatal(err)
	}
	if c1.Auth.Username != "first" || c2.Auth.Username != "first" {
		t.Errorf("second Resolve = %q, want the cached %q", c2.Auth.Username, c1.Auth.Username)
	}
	// A derived token close to its expiry is fetched anew.
	r.mu.Lock()
	c := r.cache["quay.io"]
	c.Expires = time.Now().Add(time.Minute)
	r.cache["quay.io"] = c
	r.mu.Unlock()
	c3, err := r.Resolve(ctx, "quay.io")
	if err != nil {
		t.Fatal(err)
	}
	if c3.Auth.Username != "second" {
		t.Errorf("Resolve of an expiring entry = %q, want a fresh %q", c3.Auth.Username, "second")
	}
}
