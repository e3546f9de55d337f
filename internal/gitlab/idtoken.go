package gitlab

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// IDTokenVariable is the job variable that holds the job's GitLab ID token for keyless cloud
// logins (inputs aws_role_arn, gcp_workload_identity_provider): GitLab mints it when the job
// declares it under `id_tokens`, with the audience the cloud expects.
const IDTokenVariable = "DAGSTER_ID_TOKEN"

// idToken returns a function for registryauth.Resolver.IDToken that hands out the job's ID
// token from IDTokenVariable, after checking that the token is for audience: GitLab mints ID
// tokens for the audiences the job lists, and cannot be asked for another at run time. Its
// errors say which `id_tokens` entry the job needs; they never hold the token.
func idToken(getenv func(string) string) func(ctx context.Context, audience string) (string, error) {
	return func(_ context.Context, audience string) (string, error) {
		howTo := fmt.Sprintf("declare it in the deploy job (GitLab 15.7 or later): `id_tokens: {%s: {aud: %q}}`", IDTokenVariable, audience)
		tok := strings.TrimSpace(getenv(IDTokenVariable))
		if tok == "" {
			return "", fmt.Errorf("no GitLab ID token for audience %s in the variable %s: %s", audience, IDTokenVariable, howTo)
		}
		auds, err := tokenAudiences(tok)
		if err != nil {
			return "", fmt.Errorf("the variable %s does not hold a GitLab ID token (%v): %s", IDTokenVariable, err, howTo)
		}
		if !slices.Contains(auds, audience) {
			return "", fmt.Errorf("the GitLab ID token in %s is for the audience %s, but this login needs %s: list it under `aud` (a list holds several): `id_tokens: {%s: {aud: %q}}`",
				IDTokenVariable, strings.Join(auds, ", "), audience, IDTokenVariable, audience)
		}
		return tok, nil
	}
}

// tokenAudiences reads the aud claim (a string or a list) of a JWT without verifying it: the
// cloud's token service verifies it; this only gives a clear error before asking it.
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
