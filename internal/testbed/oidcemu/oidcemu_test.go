package oidcemu

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-githubactions"
)

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := s.Env()
	a := githubactions.New(githubactions.WithGetenv(func(k string) string { return env[k] }))

	tok, err := a.GetIDToken(ctx, "sts.amazonaws.com")
	if err != nil {
		t.Fatalf("GetIDToken: %v", err)
	}
	issued, ok := s.Lookup(tok)
	if !ok || issued.Audience != "sts.amazonaws.com" || issued.Subject != s.Subject || !issued.ExpiresAt.After(time.Now()) {
		t.Fatalf("Lookup = %+v, %v", issued, ok)
	}
	if err := s.Verify(tok); err != nil {
		t.Errorf("Verify: %v", err)
	}
	claims, err := Claims(tok)
	if err != nil || claims["aud"] != "sts.amazonaws.com" || claims["iss"] != Issuer || claims["repository"] != "octo-org/octo-repo" {
		t.Errorf("claims = %v, %v", claims, err)
	}
	if err := s.Verify(tok[:len(tok)-4] + "AAAA"); err == nil {
		t.Error("Verify accepted a tampered signature")
	}

	// No audience: GitHub's default, the owner's URL.
	tok2, err := a.GetIDToken(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lookup(tok2); got.Audience != "https://github.com/octo-org" {
		t.Errorf("default audience = %q", got.Audience)
	}

	// A wrong request token is refused.
	bad := githubactions.New(githubactions.WithGetenv(func(k string) string {
		if k == "ACTIONS_ID_TOKEN_REQUEST_TOKEN" {
			return "wrong"
		}
		return env[k]
	}))
	if _, err := bad.GetIDToken(ctx, "x"); err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("GetIDToken with a wrong request token: %v", err)
	}
	if _, ok := s.Lookup("eyJ.not.issued"); ok {
		t.Error("Lookup found a token that was never issued")
	}
	total, refused := s.Requests()
	if total != 3 || refused != 1 || len(s.Issued()) != 2 {
		t.Errorf("Requests() = %d, %d; Issued() = %d; want 3, 1, 2", total, refused, len(s.Issued()))
	}
}
