package gitlab

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/awsemu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/gcpemu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/oidcemu"
)

// unsignedJWT is a JWT with claims and no valid signature: idToken only reads aud.
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(raw) + ".c2lnbmF0dXJl"
}

func TestIDToken(t *testing.T) {
	t.Parallel()
	const aws = "sts.amazonaws.com"
	gcp := "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/gitlab/providers/acme"
	one := unsignedJWT(t, map[string]any{"aud": aws, "sub": "project_path:acme/data:ref_type:branch:ref:main"})
	both := unsignedJWT(t, map[string]any{"aud": []string{aws, gcp}})
	for _, tc := range []struct {
		name, value, audience string
		wantErr               []string // nil: the token is handed out
	}{
		{"for the audience", one, aws, nil},
		{"a list of audiences", both, gcp, nil},
		{"surrounding blanks", "  " + one + "\n", aws, nil},
		{"another audience: the cloud decides", one, gcp, nil},
		{"not declared", "", aws, []string{"no GitLab ID token in the variable DAGSTER_ID_TOKEN", "`id_tokens: {DAGSTER_ID_TOKEN: {aud: \"sts.amazonaws.com\"}}`", "GitLab 15.7"}},
		{"not a JWT", "glpat-abcdefghijklmnop", aws, []string{"does not hold a GitLab ID token (not a JWT: 1 dot-separated parts, want 3)"}},
		{"no aud", unsignedJWT(t, map[string]any{"sub": "x"}), aws, []string{"it has no aud claim"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			get := idToken(func(k string) string {
				if k == IDTokenVariable {
					return tc.value
				}
				return ""
			})
			tok, err := get(context.Background(), tc.audience)
			if tc.wantErr == nil {
				if err != nil || tok != strings.TrimSpace(tc.value) {
					t.Fatalf("idToken = %q, %v; want the token", tok, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("idToken = %q, want an error", tok)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if tc.value != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.value)) {
				t.Errorf("the error holds the token: %v", err)
			}
		})
	}
}

// TestIDTokenAssumesAnECRRole: on GitLab, aws_role_arn logs in to ECR with the job's ID token
// (STS AssumeRoleWithWebIdentity, against the AWS emulator, which checks the token's
// signature, its audience against the provider's client ID, and the role's trust); the session
// is named after the job.
func TestIDTokenAssumesAnECRRole(t *testing.T) {
	awsemu.Isolate(t)
	const role = "arn:aws:iam::210987654321:role/gitlab-ecr-push"
	oidc := oidcemu.Start(t)
	// The IAM OIDC provider of GitLab's issuer, with GitLab's URL as its client ID (audience),
	// as GitLab's AWS guide sets it up.
	emu := awsemu.Start(t, awsemu.Options{OIDC: oidc, Roles: []string{role}, Audience: "https://gitlab.com"})
	for k, v := range emu.Env() {
		t.Setenv(k, v)
	}
	host := "210987654321.dkr.ecr.eu-central-1.amazonaws.com"
	resolve := func(token string) (registryauth.Credentials, error) {
		env := map[string]string{IDTokenVariable: token, "CI_JOB_ID": "5001"}
		getenv := func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return os.Getenv(k)
		}
		ci := &CI{getenv: getenv}
		reg := ci.Registry()
		r := &registryauth.Resolver{AWSRoleARN: role, IDToken: reg.IDToken, OIDCName: reg.OIDCName, Getenv: getenv, ConfigDir: t.TempDir()}
		return r.Resolve(context.Background(), host)
	}

	tok := oidc.Mint("https://gitlab.com")
	c, err := resolve(tok.Value)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if c.Auth.Username != "AWS" || c.Auth.Password != emu.Password || !strings.Contains(c.Origin, "role "+role+" via GitLab OIDC (input aws_role_arn)") {
		t.Errorf("credentials: user %q, origin %q", c.Auth.Username, c.Origin)
	}
	if !slices.Contains(c.Secrets(), tok.Value) {
		t.Error("Secrets() lacks the ID token")
	}
	if s := emu.Sessions(); len(s) != 1 || s[0].SessionName != "dagster-branch-deploy-5001" || s[0].RoleARN != role || s[0].Subject != oidc.Subject {
		t.Errorf("STS sessions = %+v", s)
	}

	// A token for an audience the provider does not trust: STS refuses it, and the error says
	// which role and which token.
	wrong := oidc.Mint(registryauth.AWSAudience)
	_, err = resolve(wrong.Value)
	if err == nil || !strings.Contains(err.Error(), "assuming role "+role+" (input aws_role_arn) with the GitLab OIDC token") || !strings.Contains(err.Error(), "Incorrect token audience") {
		t.Errorf("Resolve with a token for another audience: %v", err)
	} else if strings.Contains(err.Error(), wrong.Value) {
		t.Errorf("the error holds the token: %v", err)
	}
	if s := emu.Sessions(); len(s) != 1 {
		t.Errorf("STS sessions = %+v, want only the first", s)
	}
	// No token at all.
	_, err = resolve("")
	if err == nil || !strings.Contains(err.Error(), "no GitLab ID token in the variable DAGSTER_ID_TOKEN") {
		t.Errorf("Resolve without a token: %v", err)
	}
}

// TestIDTokenGoogleWorkloadIdentity: gcp_workload_identity_provider and gcp_service_account
// log in to a Google registry with the job's ID token, minted for the provider's audience
// (Google STS and IAM Credentials of the GCP emulator, which check the token).
func TestIDTokenGoogleWorkloadIdentity(t *testing.T) {
	t.Parallel()
	const (
		provider = "projects/123456789/locations/global/workloadIdentityPools/gitlab/providers/acme"
		sa       = "pusher@emu-project.iam.gserviceaccount.com"
	)
	oidc := oidcemu.Start(t)
	emu := gcpemu.Start(t, gcpemu.Options{OIDC: oidc, Providers: map[string][]string{provider: {sa}}})
	tok := oidc.Mint("https://iam.googleapis.com/" + provider)
	env := map[string]string{
		IDTokenVariable:                      tok.Value,
		registryauth.EnvGCPSTSURL:            emu.STSURL(),
		registryauth.EnvGCPIAMCredentialsURL: emu.IAMCredentialsURL(),
	}
	getenv := func(k string) string { return env[k] }
	reg := (&CI{getenv: getenv}).Registry()
	r := &registryauth.Resolver{GCPWorkloadIdentityProvider: provider, GCPServiceAccount: sa, IDToken: reg.IDToken, OIDCName: reg.OIDCName, Getenv: getenv, ConfigDir: t.TempDir()}
	c, err := r.Resolve(context.Background(), "europe-west4-docker.pkg.dev")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if c.Auth.Username != "oauth2accesstoken" || c.Auth.Password != emu.AccessToken || !strings.Contains(c.Origin, "service account "+sa+" via GitLab OIDC") {
		t.Errorf("credentials: user %q, origin %q", c.Auth.Username, c.Origin)
	}
	if sts, _ := emu.Calls(gcpemu.OpSTSExchange); sts != 1 {
		t.Errorf("STS exchanges = %d, want 1", sts)
	}
	if !slices.Contains(c.Secrets(), tok.Value) {
		t.Error("Secrets() lacks the ID token")
	}
}
