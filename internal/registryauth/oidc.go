package registryauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/sethvargo/go-githubactions"
)

// GitHubIDToken returns a function for Resolver.IDToken that requests GitHub Actions OIDC tokens
// from ACTIONS_ID_TOKEN_REQUEST_URL with the bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN (read through
// getenv; nil means os.Getenv), via go-githubactions' GetIDToken. It returns nil when either
// variable is unset: the runner sets them only for jobs with `permissions: id-token: write`.
// hc may be nil for a default client with a 10 s timeout.
func GitHubIDToken(getenv func(string) string, hc *http.Client) func(ctx context.Context, audience string) (string, error) {
	r := Resolver{Getenv: getenv}
	if r.getenv("ACTIONS_ID_TOKEN_REQUEST_URL") == "" || r.getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN") == "" {
		return nil
	}
	opts := []githubactions.Option{githubactions.WithGetenv(r.getenv)}
	if hc != nil {
		opts = append(opts, githubactions.WithHTTPClient(hc))
	}
	a := githubactions.New(opts...)
	return func(ctx context.Context, audience string) (string, error) {
		tok, err := a.GetIDToken(ctx, audience)
		if err != nil {
			return "", fmt.Errorf("requesting a GitHub OIDC token for audience %s: %w", audience, err)
		}
		if tok == "" {
			return "", fmt.Errorf("requesting a GitHub OIDC token for audience %s: the response held no token", audience)
		}
		return tok, nil
	}
}

// errNoOIDC explains a missing Resolver.IDToken.
var errNoOIDC = errors.New("no GitHub OIDC token is available (ACTIONS_ID_TOKEN_REQUEST_URL is not set): give the job `permissions: id-token: write`")

// idToken gets a GitHub OIDC token for audience and remembers it among the secrets.
func (r *Resolver) idToken(ctx context.Context, audience string, secrets *[]string) (string, error) {
	if r.IDToken == nil {
		return "", errNoOIDC
	}
	tok, err := r.IDToken(ctx, audience)
	if err != nil {
		return "", err
	}
	*secrets = append(*secrets, tok)
	return tok, nil
}

// oidcName names the issuer of IDToken's tokens in messages.
func (r *Resolver) oidcName() string {
	if r.OIDCName != "" {
		return r.OIDCName
	}
	return "GitHub"
}
