package gcpemu

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/google/externalaccount"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/oidcemu"
)

const (
	sa       = "pusher@emu-project.iam.gserviceaccount.com"
	provider = "projects/123456789/locations/global/workloadIdentityPools/github/providers/octo-org"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServiceAccountKey(t *testing.T) {
	t.Parallel()
	key, otherKey := newKey(t), newKey(t)
	account := ServiceAccount{Email: sa, KeyID: "key-1", PublicKey: &key.PublicKey}
	e := Start(t, Options{ServiceAccounts: []ServiceAccount{account}})
	ctx := testCtx(t)

	token := func(keyJSON []byte) (string, error) {
		creds, err := google.CredentialsFromJSONWithType(ctx, keyJSON, google.ServiceAccount, CloudPlatformScope)
		if err != nil {
			return "", err
		}
		tok, err := creds.TokenSource.Token()
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	}
	got, err := token(KeyJSON(account, key, e.TokenURL()))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if got != e.AccessToken {
		t.Errorf("access token = %q, want the emulator's", got)
	}
	if p, ok := e.Principal(got); !ok || p != sa {
		t.Errorf("Principal = %q, %v", p, ok)
	}

	for name, tc := range map[string]struct {
		keyJSON []byte
		want    string
	}{
		"signed by another key": {KeyJSON(account, otherKey, e.TokenURL()), "Invalid JWT Signature."},
		"unknown account":       {KeyJSON(ServiceAccount{Email: "who@x.iam.gserviceaccount.com", KeyID: "key-1"}, key, e.TokenURL()), "account not found"},
		"other key id":          {KeyJSON(ServiceAccount{Email: sa, KeyID: "key-2"}, key, e.TokenURL()), "Invalid JWT Signature."},
		"wrong audience":        {KeyJSON(account, key, e.TokenURL()+"?x=1"), "Failed audience check"},
	} {
		if _, err := token(tc.keyJSON); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if ok, failed := e.Calls(OpToken); ok != 1 || failed != 4 {
		t.Errorf("Calls = %d, %d; want 1, 4", ok, failed)
	}
}

type supplier string

func (s supplier) SubjectToken(context.Context, externalaccount.SupplierOptions) (string, error) {
	return string(s), nil
}

func TestWorkloadIdentityFederation(t *testing.T) {
	t.Parallel()
	oidc := oidcemu.Start(t)
	e := Start(t, Options{OIDC: oidc, Providers: map[string][]string{provider: {sa}}})
	ctx := testCtx(t)

	token := func(subject, audience, account string) (string, error) {
		ts, err := externalaccount.NewTokenSource(ctx, externalaccount.Config{
			Audience:                       audience,
			SubjectTokenType:               "urn:ietf:params:oauth:token-type:jwt",
			TokenURL:                       e.STSURL(),
			ServiceAccountImpersonationURL: e.IAMCredentialsURL() + "/v1/projects/-/serviceAccounts/" + account + ":generateAccessToken",
			Scopes:                         []string{CloudPlatformScope},
			SubjectTokenSupplier:           supplier(subject),
		})
		if err != nil {
			return "", err
		}
		tok, err := ts.Token()
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	}
	good := oidc.Mint("https://iam.googleapis.com/" + provider).Value
	got, err := token(good, "//iam.googleapis.com/"+provider, sa)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if got != e.AccessToken {
		t.Errorf("access token = %q, want the emulator's", got)
	}
	for name, tc := range map[string]struct{ subject, audience, account, want string }{
		"subject for another audience": {oidc.Mint("sts.amazonaws.com").Value, "//iam.googleapis.com/" + provider, sa, "does not match the expected audience"},
		"subject never issued":         {"eyJ.e30.c2ln", "//iam.googleapis.com/" + provider, sa, "invalid_grant"},
		"unknown provider":             {good, "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x", sa, "invalid_target"},
		"service account not allowed":  {good, "//iam.googleapis.com/" + provider, "other@emu-project.iam.gserviceaccount.com", "PERMISSION_DENIED"},
	} {
		if _, err := token(tc.subject, tc.audience, tc.account); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}

	// The federated token itself is no registry password, and generateAccessToken wants a bearer.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.IAMCredentialsURL()+"/v1/projects/-/serviceAccounts/"+sa+":generateAccessToken", strings.NewReader(`{"scope":["x"]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("generateAccessToken without a bearer: %s", resp.Status)
	}
	if ok, _ := e.Calls(OpSTSExchange); ok != 2 {
		t.Errorf("STS exchanges = %d, want 2 (one per successful subject)", ok)
	}
}
