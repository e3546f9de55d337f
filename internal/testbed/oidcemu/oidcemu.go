// Package oidcemu emulates the GitHub Actions OIDC token endpoint that a job with
// `permissions: id-token: write` reaches through ACTIONS_ID_TOKEN_REQUEST_URL and
// ACTIONS_ID_TOKEN_REQUEST_TOKEN: GET <url>&audience=<aud> with "Authorization: Bearer <request
// token>" answers {"count":…,"value":"<JWT>"}. The JWTs are RS256-signed with GitHub's claims,
// and the server remembers each token it issued and for which audience, so that the AWS and
// Google emulators (awsemu, gcpemu) can accept exactly the tokens issued for them.
package oidcemu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Issuer is the iss claim of GitHub Actions OIDC tokens.
const Issuer = "https://token.actions.githubusercontent.com"

// Token is an issued token and its main claims.
type Token struct {
	Value     string // the JWT
	Audience  string // aud
	Subject   string // sub, e.g. "repo:octo-org/octo-repo:pull_request"
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Server is a running emulator.
type Server struct {
	// URL is the value for ACTIONS_ID_TOKEN_REQUEST_URL (it already has a query string, as on
	// GitHub).
	URL string
	// RequestToken is the value for ACTIONS_ID_TOKEN_REQUEST_TOKEN; requests with another bearer
	// are refused with 401.
	RequestToken string
	// Subject and Repository go into the sub and repository claims of new tokens.
	Subject, Repository string
	// TTL is the lifetime of new tokens (default 10 minutes).
	TTL time.Duration

	srv *httptest.Server
	key *rsa.PrivateKey
	kid string

	mu       sync.Mutex
	issued   map[string]Token
	order    []string
	requests int
	refusals int
}

// New starts an emulator on a loopback port. Close it when done.
func New() *Server {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	s := &Server{
		RequestToken: "oidc-request-" + randHex(16),
		Subject:      "repo:octo-org/octo-repo:pull_request",
		Repository:   "octo-org/octo-repo",
		TTL:          10 * time.Minute,
		key:          key,
		kid:          randHex(8),
		issued:       map[string]Token{},
	}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL + "/_apis/distributedtask/hubs/Actions/plans/" + randHex(8) + "/jobs/" + randHex(8) + "/idtoken?api-version=2.0"
	return s
}

// Start starts an emulator closed at the end of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Env returns ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN for this server.
func (s *Server) Env() map[string]string {
	return map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": s.URL, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": s.RequestToken}
}

// PublicKey is the key that verifies the tokens' signatures.
func (s *Server) PublicKey() *rsa.PublicKey { return &s.key.PublicKey }

// Lookup returns the token value was issued as, and whether this server issued it. It does not
// check the expiry; callers compare ExpiresAt.
func (s *Server) Lookup(value string) (Token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.issued[value]
	return t, ok
}

// Issued returns the issued tokens, oldest first.
func (s *Server) Issued() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Token, 0, len(s.order))
	for _, v := range s.order {
		out = append(out, s.issued[v])
	}
	return out
}

// Requests returns how many token requests arrived, and how many were refused.
func (s *Server) Requests() (total, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.refusals
}

// Mint issues a token for audience without an HTTP request.
func (s *Server) Mint(audience string) Token {
	now := time.Now().Truncate(time.Second)
	t := Token{Audience: audience, Subject: s.Subject, IssuedAt: now, ExpiresAt: now.Add(s.TTL)}
	claims := map[string]any{
		"jti":              randHex(16),
		"sub":              t.Subject,
		"aud":              audience,
		"ref":              "refs/pull/7/merge",
		"repository":       s.Repository,
		"repository_owner": strings.Split(s.Repository, "/")[0],
		"run_id":           "1234567890",
		"run_attempt":      "1",
		"actor":            "octocat",
		"event_name":       "pull_request",
		"iss":              Issuer,
		"nbf":              now.Add(-5 * time.Second).Unix(),
		"iat":              now.Unix(),
		"exp":              t.ExpiresAt.Unix(),
	}
	t.Value = s.sign(claims)
	s.mu.Lock()
	s.issued[t.Value] = t
	s.order = append(s.order, t.Value)
	s.mu.Unlock()
	return t
}

func (s *Server) sign(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": s.kid, "x5t": s.kid})
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// ServeHTTP answers token requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	refuse := func(status int, msg string) {
		s.mu.Lock()
		s.refusals++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"$id": "1", "message": msg, "typeName": "Microsoft.VisualStudio.Services.WebApi.VssUnauthorizedException"})
	}
	if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/idtoken") {
		refuse(http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.RequestToken {
		refuse(http.StatusUnauthorized, "TF400813: The user '' is not authorized to access this resource.")
		return
	}
	aud := r.URL.Query().Get("audience")
	if aud == "" {
		aud = "https://github.com/" + strings.Split(s.Repository, "/")[0]
	}
	t := s.Mint(aud)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"count": len(t.Value), "value": t.Value})
}

// Claims decodes the claims of a JWT without verifying it.
func Claims(jwt string) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("JWT claims: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("JWT claims: %w", err)
	}
	return m, nil
}

// Verify checks the RS256 signature of jwt against this server's key.
func (s *Server) Verify(jwt string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT: %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("JWT signature: %w", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	return rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
