// Package gcpemu emulates the Google endpoints a registry login needs, on one http.Handler,
// with the real wire formats:
//
//   - the OAuth2 token endpoint (oauth2.googleapis.com/token, path /token) for service-account
//     JWT-bearer grants (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer): the RS256
//     assertion must be signed by a registered service-account key, name it as iss, have this
//     endpoint as aud and a short lifetime;
//   - Google STS (sts.googleapis.com, path /v1/token) token exchange
//     (grant_type=urn:ietf:params:oauth:grant-type:token-exchange) of a GitHub OIDC token issued
//     by oidcemu for a registered workload identity provider, giving a federated token;
//   - IAM Credentials generateAccessToken (iamcredentials.googleapis.com, path
//     /v1/projects/-/serviceAccounts/<email>:generateAccessToken) with that federated token, for
//     a service account the provider may impersonate.
//
// The access token handed to service accounts (by /token and generateAccessToken) is
// AccessToken, so that a test registry with htpasswd user "oauth2accesstoken" and that password
// accepts it. Errors use Google's formats ({"error":…,"error_description":…} for OAuth2/STS,
// {"error":{"code":…,"message":…,"status":…}} for IAM Credentials).
package gcpemu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/oidcemu"
)

// Operation names for Calls.
const (
	OpToken               = "oauth2:token"
	OpSTSExchange         = "sts:token"
	OpGenerateAccessToken = "iamcredentials:generateAccessToken"
)

// CloudPlatformScope is the scope registries need.
const CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// ServiceAccount is a service account with one key.
type ServiceAccount struct {
	Email     string
	KeyID     string
	PublicKey *rsa.PublicKey
}

// Options configure an Emulator.
type Options struct {
	// OIDC issued the subject tokens STS accepts; nil refuses all.
	OIDC *oidcemu.Server
	// ServiceAccounts may use the OAuth2 token endpoint with their keys.
	ServiceAccounts []ServiceAccount
	// Providers maps workload identity provider resource names
	// ("projects/N/locations/global/workloadIdentityPools/P/providers/X") to the service accounts
	// their federated identities may impersonate.
	Providers map[string][]string
	// AccessToken is the access token service accounts get; random when empty. (Real ones are
	// about 200 characters; the default is shorter because the test registry's htpasswd bcrypt
	// takes at most 72 bytes.)
	AccessToken string
}

type grant struct {
	principal string // service account e-mail or federated principal
	provider  string // for federated tokens
	expires   time.Time
}

// Emulator is the Google emulator. It is an http.Handler; Start serves it on a loopback port.
type Emulator struct {
	// URL is the base URL when started with Start or New.
	URL string
	// AccessToken is what service accounts get.
	AccessToken string

	opts Options
	srv  *httptest.Server

	mu     sync.Mutex
	tokens map[string]grant // issued access and federated tokens
	calls  map[string]int
	errors map[string]int
}

// NewHandler returns an emulator without a server (URL stays empty; audiences are then checked
// against the request's Host).
func NewHandler(opts Options) *Emulator {
	if opts.AccessToken == "" {
		opts.AccessToken = "ya29.emu-" + randHex(24)
	}
	return &Emulator{AccessToken: opts.AccessToken, opts: opts, tokens: map[string]grant{}, calls: map[string]int{}, errors: map[string]int{}}
}

// New starts an emulator on a loopback port. Close it when done.
func New(opts Options) *Emulator {
	e := NewHandler(opts)
	e.srv = httptest.NewServer(e)
	e.URL = e.srv.URL
	return e
}

// Start starts an emulator closed at the end of the test.
func Start(t testing.TB, opts Options) *Emulator {
	t.Helper()
	e := New(opts)
	t.Cleanup(e.Close)
	return e
}

// Close stops the server started by New or Start.
func (e *Emulator) Close() {
	if e.srv != nil {
		e.srv.Close()
	}
}

// TokenURL is the OAuth2 token endpoint, for a key's token_uri.
func (e *Emulator) TokenURL() string { return e.URL + "/token" }

// STSURL is the STS token exchange endpoint.
func (e *Emulator) STSURL() string { return e.URL + "/v1/token" }

// IAMCredentialsURL is the base URL of the IAM Credentials API.
func (e *Emulator) IAMCredentialsURL() string { return e.URL }

// Calls returns how many requests for op (OpToken, …) succeeded, and how many failed.
func (e *Emulator) Calls(op string) (ok, failed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[op], e.errors[op]
}

// Principal returns whom an access token was issued to, and whether it is a valid access token
// for a service account.
func (e *Emulator) Principal(token string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, ok := e.tokens[token]
	if !ok || g.provider != "" || time.Now().After(g.expires) {
		return "", false
	}
	return g.principal, true
}

// KeyJSON returns a service-account key file for sa and its private key, with token_uri set to
// tokenURI, as Google Cloud's console downloads it.
func KeyJSON(sa ServiceAccount, key *rsa.PrivateKey, tokenURI string) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	project := "emu-project"
	if _, domain, ok := strings.Cut(sa.Email, "@"); ok {
		project, _, _ = strings.Cut(domain, ".")
	}
	b, _ := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  project,
		"private_key_id":              sa.KeyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                sa.Email,
		"client_id":                   "1" + strings.Repeat("0", 20),
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	return b
}

// ServeHTTP dispatches on the path.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/token":
		e.oauthToken(w, r)
	case r.URL.Path == "/v1/token":
		e.stsToken(w, r)
	case strings.HasPrefix(r.URL.Path, "/v1/projects/") && strings.HasSuffix(r.URL.Path, ":generateAccessToken"):
		e.generateAccessToken(w, r)
	default:
		apiError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint: "+r.URL.Path)
	}
}

func (e *Emulator) count(op string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ok {
		e.calls[op]++
	} else {
		e.errors[op]++
	}
}

func (e *Emulator) issue(g grant) string {
	tok := e.AccessToken
	if g.provider != "" {
		tok = "fed-" + randHex(32)
	}
	e.mu.Lock()
	e.tokens[tok] = g
	e.mu.Unlock()
	return tok
}

// oauthToken serves the JWT-bearer grant of service-account keys.
func (e *Emulator) oauthToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		e.count(OpToken, false)
		oauthError(w, status, code, desc)
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		fail(http.StatusBadRequest, "invalid_request", "expected a form POST")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	header, claims, signing, sig, err := parseJWT(r.PostForm.Get("assertion"))
	if err != nil || header["alg"] != "RS256" {
		fail(http.StatusBadRequest, "invalid_grant", "Invalid JWT: the assertion is not an RS256 JWT")
		return
	}
	iss, _ := claims["iss"].(string)
	var sa *ServiceAccount
	for i := range e.opts.ServiceAccounts {
		if e.opts.ServiceAccounts[i].Email == iss {
			sa = &e.opts.ServiceAccounts[i]
		}
	}
	if sa == nil {
		fail(http.StatusBadRequest, "invalid_grant", "Invalid grant: account not found")
		return
	}
	sum := sha256.Sum256([]byte(signing))
	if (sa.KeyID != "" && header["kid"] != sa.KeyID) || rsa.VerifyPKCS1v15(sa.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		fail(http.StatusBadRequest, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	aud, _ := claims["aud"].(string)
	if aud != e.base(r)+"/token" {
		fail(http.StatusBadRequest, "invalid_grant", "Invalid JWT: Failed audience check. The right audience is "+e.base(r)+"/token")
		return
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	now := float64(time.Now().Unix())
	if iat == 0 || exp == 0 || exp-iat > 3600 || exp < now || iat > now+300 {
		fail(http.StatusBadRequest, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
		return
	}
	scope, _ := claims["scope"].(string)
	if scope == "" {
		fail(http.StatusBadRequest, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	tok := e.issue(grant{principal: sa.Email, expires: time.Now().Add(time.Hour)})
	e.count(OpToken, true)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})
}

// stsToken serves the token exchange of GitHub OIDC tokens for federated tokens.
func (e *Emulator) stsToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		e.count(OpSTSExchange, false)
		oauthError(w, status, code, desc)
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		fail(http.StatusBadRequest, "invalid_request", "expected a form POST")
		return
	}
	f := r.PostForm
	if gt := f.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:token-exchange" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "Invalid value for \"grant_type\": "+gt)
		return
	}
	if rt := f.Get("requested_token_type"); rt != "urn:ietf:params:oauth:token-type:access_token" {
		fail(http.StatusBadRequest, "invalid_request", "Invalid value for \"requested_token_type\"")
		return
	}
	if st := f.Get("subject_token_type"); st != "urn:ietf:params:oauth:token-type:jwt" && st != "urn:ietf:params:oauth:token-type:id_token" {
		fail(http.StatusBadRequest, "invalid_request", "Invalid value for \"subject_token_type\"")
		return
	}
	provider, ok := strings.CutPrefix(f.Get("audience"), "//iam.googleapis.com/")
	if _, known := e.opts.Providers[provider]; !ok || !known {
		fail(http.StatusBadRequest, "invalid_target", "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.")
		return
	}
	subject := f.Get("subject_token")
	var tok oidcemu.Token
	found := false
	if e.opts.OIDC != nil {
		tok, found = e.opts.OIDC.Lookup(subject)
		if found && e.opts.OIDC.Verify(subject) != nil {
			found = false
		}
	}
	wantAud := "https://iam.googleapis.com/" + provider
	switch {
	case !found:
		fail(http.StatusBadRequest, "invalid_grant", "The ID Token is not a valid JWT issued by the provider's issuer.")
		return
	case tok.Audience != wantAud:
		fail(http.StatusBadRequest, "invalid_grant", fmt.Sprintf("The audience in ID Token [%s] does not match the expected audience %s.", tok.Audience, wantAud))
		return
	case time.Now().After(tok.ExpiresAt):
		fail(http.StatusBadRequest, "invalid_grant", "ID Token issued at "+tok.IssuedAt.UTC().Format(time.RFC3339)+" is stale to sign-in.")
		return
	}
	principal := fmt.Sprintf("principal://iam.googleapis.com/%s/subject/%s", strings.SplitN(provider, "/providers/", 2)[0], tok.Subject)
	fed := e.issue(grant{principal: principal, provider: provider, expires: time.Now().Add(time.Hour)})
	e.count(OpSTSExchange, true)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      fed,
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type":        "Bearer",
		"expires_in":        3600,
	})
}

// generateAccessToken serves IAM Credentials' service-account impersonation.
func (e *Emulator) generateAccessToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, st, msg string) {
		e.count(OpGenerateAccessToken, false)
		apiError(w, status, st, msg)
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "expected POST")
		return
	}
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/"), ":generateAccessToken")
	email, ok := strings.CutPrefix(name, "projects/-/serviceAccounts/")
	if !ok || email == "" {
		fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid form of account ID "+name+". Should be [Gaia ID |Email |Unique ID |] of the account")
		return
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	e.mu.Lock()
	g, known := e.tokens[bearer]
	e.mu.Unlock()
	if bearer == "" || !known || time.Now().After(g.expires) {
		fail(http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	if g.provider == "" || !slices.Contains(e.opts.Providers[g.provider], email) {
		fail(http.StatusForbidden, "PERMISSION_DENIED", "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
		return
	}
	var in struct {
		Scope    []string `json:"scope"`
		Lifetime string   `json:"lifetime"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if json.Unmarshal(body, &in) != nil || len(in.Scope) == 0 {
		fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument: scope is required.")
		return
	}
	life := time.Hour
	if in.Lifetime != "" {
		d, err := time.ParseDuration(in.Lifetime)
		if err != nil || d <= 0 || d > 12*time.Hour {
			fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid lifetime "+in.Lifetime)
			return
		}
		life = d
	}
	expires := time.Now().Add(life)
	tok := e.issue(grant{principal: email, expires: expires})
	e.count(OpGenerateAccessToken, true)
	writeJSON(w, http.StatusOK, map[string]any{"accessToken": tok, "expireTime": expires.UTC().Format(time.RFC3339)})
}

// base is the emulator's base URL as the client sees it.
func (e *Emulator) base(r *http.Request) string {
	if e.URL != "" {
		return e.URL
	}
	return "http://" + r.Host
}

func parseJWT(s string) (header, claims map[string]any, signing string, sig []byte, err error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, nil, "", nil, fmt.Errorf("%d parts", len(parts))
	}
	dec := func(p string, v any) error {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p, "="))
		if err != nil {
			return err
		}
		return json.Unmarshal(b, v)
	}
	if err := dec(parts[0], &header); err != nil {
		return nil, nil, "", nil, err
	}
	if err := dec(parts[1], &claims); err != nil {
		return nil, nil, "", nil, err
	}
	sig, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	return header, claims, parts[0] + "." + parts[1], sig, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func apiError(w http.ResponseWriter, status int, st, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": status, "message": msg, "status": st}})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
