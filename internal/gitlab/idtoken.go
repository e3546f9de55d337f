package gitlab

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// IDTokenVariable is the job variable that holds the job's GitLab ID token for keyless cloud
// logins (inputs aws_role_arn, gcp_workload_identity_provider): GitLab mints it when the job
// declares it under `id_tokens`, with the audience the cloud expects.
const IDTokenVariable = "DAGSTER_ID_TOKEN"

// idToken returns a function for registryauth.Resolver.IDToken that hands out the job's ID
// token from IDTokenVariable. GitLab mints ID tokens for the audiences the job lists and
// cannot be asked for another at run time, so audience is only what the login would ask for:
// the cloud decides which audiences it trusts (an AWS IAM OIDC provider trusts its client
// IDs, e.g. https://gitlab.com; a Google pool provider its allowed audiences). Its errors say
// which `id_tokens` entry the job needs; they never hold the token.
func idToken(getenv func(string) string) func(ctx context.Context, audience string) (string, error) {
	return func(_ context.Context, audience string) (string, error) {
		howTo := fmt.Sprintf("declare it in the deploy job (GitLab 15.7 or later) with an audience your cloud trusts, e.g. `id_tokens: {%s: {aud: %q}}`", IDTokenVariable, audience)
		tok := strings.TrimSpace(getenv(IDTokenVariable))
		if tok == "" {
			return "", fmt.Errorf("no GitLab ID token in the variable %s: %s", IDTokenVariable, howTo)
		}
		if _, err := tokenAudiences(tok); err != nil {
			return "", fmt.Errorf("the variable %s does not hold a GitLab ID token (%v): %s", IDTokenVariable, err, howTo)
		}
		return tok, nil
	}
}

// tokenAudiences reads the aud claim (a string or a list) of a JWT without verifying it: the
// cloud's token service verifies the token; this only tells a value that is no ID token at all
// before asking it.
func tokenAudiences(jwt string) ([]string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: %d dot-separated parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("its payload is not base64url: %w", err)
	}
	var claims struct {
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("its payload is not JSON: %w", err)
	}
	var one string
	if json.Unmarshal(claims.Aud, &one) == nil && one != "" {
		return []string{one}, nil
	}
	var many []string
	if json.Unmarshal(claims.Aud, &many) == nil && len(many) > 0 {
		return many, nil
	}
	return nil, fmt.Errorf("it has no aud claim")
}
