package registryauth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/oidcemu"
)

// testCtx is shared with push_test.go (built only with -tags docker): this file is built in
// both configurations.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestGitHubIDToken(t *testing.T) {
	t.Parallel()
	if f := registryauth.GitHubIDToken(func(string) string { return "" }, nil); f != nil {
		t.Error("GitHubIDToken without ACTIONS_ID_TOKEN_REQUEST_URL is not nil")
	}
	oidc := oidcemu.Start(t)
	env := oidc.Env()
	env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "wrong"
	f := registryauth.GitHubIDToken(func(k string) string { return env[k] }, nil)
	if _, err := f(testCtx(t), "sts.amazonaws.com"); err == nil || !strings.Contains(err.Error(), "sts.amazonaws.com") {
		t.Errorf("IDToken with a wrong request token: %v", err)
	}
}
