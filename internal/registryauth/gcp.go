package registryauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/docker/docker/api/types/registry"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/google/externalaccount"
)

const (
	// Inputs for Google registries (gcr.io, *.gcr.io, *-docker.pkg.dev).
	InputGCPCredentialsJSON          = "gcp_credentials_json"
	InputGCPWorkloadIdentityProvider = "gcp_workload_identity_provider"
	InputGCPServiceAccount           = "gcp_service_account"

	// GCPTokenUsername is the registry username that goes with a Google OAuth2 access token.
	GCPTokenUsername = "oauth2accesstoken"

	// EnvGCPSTSURL and EnvGCPIAMCredentialsURL are for tests only: they replace Google's STS token
	// endpoint (default https://sts.googleapis.com/v1/token) and the base URL of the IAM
	// Credentials API (default https://iamcredentials.googleapis.com) in the keyless flow.
	// (The key flow uses the key's token_uri.)
	EnvGCPSTSURL            = "DBD_GCP_STS_URL"
	EnvGCPIAMCredentialsURL = "DBD_GCP_IAMCREDENTIALS_URL"

	gcpSTSURL            = "https://sts.googleapis.com/v1/token"
	gcpIAMCredentialsURL = "https://iamcredentials.googleapis.com"
	gcpScope             = "https://www.googleapis.com/auth/cloud-platform"
	gcpJWTTokenType      = "urn:ietf:params:oauth:token-type:jwt"
)

var (
	wifProviderPattern = regexp.MustCompile(`^projects/[^/\s]+/locations/[^/\s]+/workloadIdentityPools/[^/\s]+/providers/[^/\s]+$`)
	serviceAccountRe   = regexp.MustCompile(`^[^/\s:?#@]+@[^/\s:?#@]+$`)
)

func (r *Resolver) resolveGCR(ctx context.Context, host string) (Credentials, error) {
	if r.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, r.HTTPClient)
	}
	switch {
	case r.GCPCredentialsJSON != "":
		return r.gcpKeyToken(ctx, host)
	case r.GCPWorkloadIdentityProvider != "" || r.GCPServiceAccount != "":
		return r.gcpWIFToken(ctx, host)
	}
	if c, ok := r.fromInputs(host, KindGCR); ok {
		return c, nil
	}
	return r.dockerConfigOrNothing(host, KindGCR, nil)
}

// gcpKeyToken exchanges the service-account key in GCPCredentialsJSON for an access token at the
// key's token_uri (a JWT-bearer grant, done by x/oauth2/google).
func (r *Resolver) gcpKeyToken(ctx context.Context, host string) (Credentials, error) {
	raw := []byte(r.GCPCredentialsJSON)
	var key struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(raw, &key); err != nil {
		// Not err itself: a syntax error quotes a character of the key.
		where := ""
		var se *json.SyntaxError
		if errors.As(err, &se) {
			where = fmt.Sprintf(" (syntax error at byte %d)", se.Offset)
		}
		return Credentials{}, fmt.Errorf("input %s is not valid JSON%s: it should hold a service-account key file as downloaded from Google Cloud", InputGCPCredentialsJSON, where)
	}
	if key.Type != string(google.ServiceAccount) {
		return Credentials{}, fmt.Errorf("input %s holds credentials of type %q, but only a service-account key (type %q) is accepted; for keyless login set %s and %s instead",
			InputGCPCredentialsJSON, key.Type, google.ServiceAccount, InputGCPWorkloadIdentityProvider, InputGCPServiceAccount)
	}
	if key.ClientEmail == "" || key.PrivateKey == "" {
		return Credentials{}, fmt.Errorf("input %s is a service-account key without client_email or private_key", InputGCPCredentialsJSON)
	}
	endpoint := key.TokenURI
	if endpoint == "" {
		endpoint = google.JWTTokenURL
	}
	// For redaction only: the caller masks the input itself, and multi-line values are no use
	// to Credentials.Secrets.
	secrets := []string{r.GCPCredentialsJSON, key.PrivateKey}
	creds, err := google.CredentialsFromJSONWithType(ctx, raw, google.ServiceAccount, gcpScope)
	if err != nil {
		return Credentials{}, fmt.Errorf("input %s: %s", InputGCPCredentialsJSON, redact(err.Error(), secrets...))
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		return Credentials{}, fmt.Errorf("exchanging the service-account key of %s (input %s) for an access token at %s for registry %s: %s",
			key.ClientEmail, InputGCPCredentialsJSON, endpoint, host, redact(err.Error(), secrets...))
	}
	return gcpCredentials(host, tok, fmt.Sprintf("a Google access token for service account %s (input %s)", key.ClientEmail, InputGCPCredentialsJSON), nil)
}

// gcpWIFToken exchanges the job's OIDC token (GitHub's or GitLab's) for a Google access token of GCPServiceAccount:
// Google STS (token exchange for the workload identity provider), then IAM Credentials
// generateAccessToken, both done by x/oauth2's externalaccount package.
func (r *Resolver) gcpWIFToken(ctx context.Context, host string) (Credentials, error) {
	provider := strings.TrimSpace(r.GCPWorkloadIdentityProvider)
	for _, p := range []string{"https://iam.googleapis.com/", "//iam.googleapis.com/"} {
		provider = strings.TrimPrefix(provider, p)
	}
	sa := strings.TrimSpace(r.GCPServiceAccount)
	switch {
	case provider == "" || sa == "":
		return Credentials{}, fmt.Errorf("inputs %s and %s go together: set both for keyless login to Google registry %s", InputGCPWorkloadIdentityProvider, InputGCPServiceAccount, host)
	case !wifProviderPattern.MatchString(provider):
		return Credentials{}, fmt.Errorf("input %s: %q is not a workload identity provider (projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>)", InputGCPWorkloadIdentityProvider, r.GCPWorkloadIdentityProvider)
	case !serviceAccountRe.MatchString(sa):
		return Credentials{}, fmt.Errorf("input %s: %q is not a service account e-mail address (name@project.iam.gserviceaccount.com)", InputGCPServiceAccount, r.GCPServiceAccount)
	case r.IDToken == nil:
		return Credentials{}, fmt.Errorf("input %s is set for registry %s, but %w", InputGCPWorkloadIdentityProvider, host, errNoOIDC)
	}
	stsURL := r.getenv(EnvGCPSTSURL)
	if stsURL == "" {
		stsURL = gcpSTSURL
	}
	iamURL := strings.TrimRight(r.getenv(EnvGCPIAMCredentialsURL), "/")
	if iamURL == "" {
		iamURL = gcpIAMCredentialsURL
	}
	var secrets []string
	supplier := &oidcSupplier{r: r, audience: "https://iam.googleapis.com/" + provider, secrets: &secrets}
	ts, err := externalaccount.NewTokenSource(ctx, externalaccount.Config{
		Audience:                       "//iam.googleapis.com/" + provider,
		SubjectTokenType:               gcpJWTTokenType,
		TokenURL:                       stsURL,
		ServiceAccountImpersonationURL: iamURL + "/v1/projects/-/serviceAccounts/" + sa + ":generateAccessToken",
		Scopes:                         []string{gcpScope},
		SubjectTokenSupplier:           supplier,
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("configuring workload identity federation for registry %s: %v", host, err)
	}
	tok, err := ts.Token()
	if err != nil {
		return Credentials{}, fmt.Errorf("getting a Google access token for service account %s via workload identity provider %s with the %s OIDC token (registry %s): %s",
			sa, provider, r.oidcName(), host, redact(err.Error(), secrets...))
	}
	return gcpCredentials(host, tok, fmt.Sprintf("a Google access token for service account %s via %s OIDC and workload identity provider %s (inputs %s/%s)",
		sa, r.oidcName(), provider, InputGCPWorkloadIdentityProvider, InputGCPServiceAccount), secrets)
}

func gcpCredentials(host string, tok *oauth2.Token, origin string, secrets []string) (Credentials, error) {
	if tok == nil || tok.AccessToken == "" {
		return Credentials{}, fmt.Errorf("Google returned no access token for registry %s", host)
	}
	return Credentials{
		Host:    host,
		Kind:    KindGCR,
		Auth:    registry.AuthConfig{Username: GCPTokenUsername, Password: tok.AccessToken, ServerAddress: ConfigKey(host)},
		Source:  SourceGoogle,
		Origin:  origin,
		Expires: tok.Expiry,
		derived: secrets,
	}, nil
}

// oidcSupplier is an externalaccount.SubjectTokenSupplier over Resolver.IDToken.
type oidcSupplier struct {
	r        *Resolver
	audience string
	secrets  *[]string
	tok      string
}

func (s *oidcSupplier) SubjectToken(ctx context.Context, _ externalaccount.SupplierOptions) (string, error) {
	if s.tok != "" {
		return s.tok, nil
	}
	tok, err := s.r.idToken(ctx, s.audience, s.secrets)
	if err != nil {
		return "", err
	}
	s.tok = tok
	return tok, nil
}
