// Package awsemu emulates the AWS APIs a registry login needs, on one http.Handler, with the
// real wire formats:
//
//   - STS AssumeRoleWithWebIdentity (query protocol: a form POST with
//     Action=AssumeRoleWithWebIdentity, XML answers and XML ErrorResponse documents). The
//     WebIdentityToken must be one the OIDC emulator (oidcemu) issued for the expected audience,
//     unexpired, and the RoleArn one of the configured roles. It issues temporary keys.
//   - ECR GetAuthorizationToken (awsJson1.1, X-Amz-Target
//     AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken) and ECR Public
//     GetAuthorizationToken (SpencerFrontendService.GetAuthorizationToken). Requests must carry a
//     valid SigV4 signature (the emulator recomputes it) by a configured static key or a key STS
//     issued (with its session token). The token is base64("AWS:" + Password), so a test
//     registry started with htpasswd user "AWS" and Password accepts it.
//
// Point the SDK at it with AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_ECR and
// AWS_ENDPOINT_URL_ECR_PUBLIC (see Env), and call Isolate so that the host's AWS configuration
// cannot leak into the test.
package awsemu

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/oidcemu"
)

// Operation names for Calls.
const (
	OpAssumeRoleWithWebIdentity = "sts:AssumeRoleWithWebIdentity"
	OpECRGetAuthorizationToken  = "ecr:GetAuthorizationToken"
	OpECRPublicGetAuthorization = "ecr-public:GetAuthorizationToken"
)

// DefaultAudience is the audience STS expects in GitHub OIDC tokens.
const DefaultAudience = "sts.amazonaws.com"

// Options configure an Emulator.
type Options struct {
	// OIDC issued the web identity tokens STS accepts; nil refuses all.
	OIDC *oidcemu.Server
	// Audience is the aud web identity tokens must have (default DefaultAudience).
	Audience string
	// Roles are the role ARNs tokens may assume.
	Roles []string
	// AccessKeys are static access key IDs and their secret keys that may call ECR.
	AccessKeys map[string]string
	// Account is the account of the static keys (default "123456789012").
	Account string
	// Registries are the registry (account) IDs ECR hands tokens for; empty means any.
	Registries []string
	// Password is the registry password inside the ECR tokens; random when empty. (Real ones
	// are over a kilobyte; the default stays under the 72 bytes the test registry's htpasswd
	// bcrypt takes.)
	Password string
	// TokenTTL is the lifetime of ECR tokens (default 12 h, as AWS's).
	TokenTTL time.Duration
}

// Session is a role session STS opened.
type Session struct {
	RoleARN, SessionName, Subject, AccessKeyID string
}

type accessKey struct {
	secret, sessionToken, arn, account string
}

// Emulator is the AWS emulator. It is an http.Handler; Start serves it on a loopback port.
type Emulator struct {
	// URL is the base URL when started with Start or New.
	URL string
	// Password is the registry password inside the ECR tokens.
	Password string

	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	keys     map[string]accessKey
	sessions []Session
	calls    map[string]int
	errors   map[string]int
}

// NewHandler returns an emulator without a server (URL stays empty).
func NewHandler(opts Options) *Emulator {
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	if opts.Account == "" {
		opts.Account = "123456789012"
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 12 * time.Hour
	}
	if opts.Password == "" {
		opts.Password = "ecr-" + randHex(24)
	}
	e := &Emulator{Password: opts.Password, opts: opts, keys: map[string]accessKey{}, calls: map[string]int{}, errors: map[string]int{}}
	for id, secret := range opts.AccessKeys {
		e.keys[id] = accessKey{secret: secret, arn: "arn:aws:iam::" + opts.Account + ":user/test", account: opts.Account}
	}
	return e
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

// Env returns the AWS SDK's endpoint overrides for STS, ECR and ECR Public, all pointing here.
func (e *Emulator) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_STS":        e.URL,
		"AWS_ENDPOINT_URL_ECR":        e.URL,
		"AWS_ENDPOINT_URL_ECR_PUBLIC": e.URL,
	}
}

// Isolate hides the host's AWS configuration from the test's process environment: config and
// credentials files point to nonexistent paths, the EC2 metadata service is off, and the
// credential, profile, region and endpoint variables are empty.
func Isolate(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-such-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-such-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_ECR_PUBLIC",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_USE_FIPS_ENDPOINT",
	} {
		t.Setenv(k, "")
	}
}

// Calls returns how many requests for op (OpAssumeRoleWithWebIdentity, …) succeeded, and how
// many were answered with an error.
func (e *Emulator) Calls(op string) (ok, failed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[op], e.errors[op]
}

// Sessions returns the role sessions STS opened, oldest first.
func (e *Emulator) Sessions() []Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.sessions)
}

// ServeHTTP dispatches on X-Amz-Target (JSON protocols) or the form's Action (query protocol).
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		e.serveJSON(w, r, body, target)
		return
	}
	form, err := url.ParseQuery(string(body))
	if r.Method != http.MethodPost || err != nil {
		xmlError(w, http.StatusBadRequest, "InvalidAction", "the emulator takes POST requests with a form body or an X-Amz-Target header")
		return
	}
	switch form.Get("Action") {
	case "AssumeRoleWithWebIdentity":
		e.assumeRoleWithWebIdentity(w, form)
	default:
		xmlError(w, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", form.Get("Action"), form.Get("Version")))
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

var (
	roleARNRe     = regexp.MustCompile(`^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$`)
	sessionNameRe = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	registryIDRe  = regexp.MustCompile(`^[0-9]{12}$`)
)

func (e *Emulator) assumeRoleWithWebIdentity(w http.ResponseWriter, form url.Values) {
	fail := func(status int, code, msg string) {
		e.count(OpAssumeRoleWithWebIdentity, false)
		xmlError(w, status, code, msg)
	}
	if form.Get("Version") != "2011-06-15" {
		fail(http.StatusBadRequest, "InvalidAction", "Could not find operation AssumeRoleWithWebIdentity for version "+form.Get("Version"))
		return
	}
	roleARN, session, token := form.Get("RoleArn"), form.Get("RoleSessionName"), form.Get("WebIdentityToken")
	switch {
	case roleARN == "" || session == "" || token == "":
		fail(http.StatusBadRequest, "MissingParameter", "RoleArn, RoleSessionName and WebIdentityToken are required")
		return
	case !sessionNameRe.MatchString(session):
		fail(http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")
		return
	}
	m := roleARNRe.FindStringSubmatch(roleARN)
	if m == nil {
		fail(http.StatusBadRequest, "ValidationError", "Request ARN is invalid")
		return
	}
	var tok oidcemu.Token
	ok := false
	if e.opts.OIDC != nil {
		tok, ok = e.opts.OIDC.Lookup(token)
		if ok && e.opts.OIDC.Verify(token) != nil {
			ok = false
		}
	}
	switch {
	case !ok:
		fail(http.StatusBadRequest, "InvalidIdentityToken", "The web identity token is not a valid JWT issued by the configured OIDC provider")
		return
	case tok.Audience != e.opts.Audience:
		fail(http.StatusBadRequest, "InvalidIdentityToken", "Incorrect token audience")
		return
	case time.Now().After(tok.ExpiresAt):
		fail(http.StatusBadRequest, "ExpiredTokenException", fmt.Sprintf("Token expired: current date/time %s must be before the expiration date/time %s",
			time.Now().UTC().Format(time.RFC3339), tok.ExpiresAt.UTC().Format(time.RFC3339)))
		return
	case !slices.Contains(e.opts.Roles, roleARN):
		fail(http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
		return
	}
	duration := 3600
	if d := form.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || n > 43200 {
			fail(http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200")
			return
		}
		duration = n
	}
	partition, account, roleName := m[1], m[2], m[3]
	id := "ASIA" + strings.ToUpper(randHex(8))
	key := accessKey{
		secret:       base64.RawStdEncoding.EncodeToString(randBytes(30)),
		sessionToken: "IQoJb3JpZ2luX2VjE" + base64.StdEncoding.EncodeToString(randBytes(96)),
		arn:          fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", partition, account, roleName, session),
		account:      account,
	}
	e.mu.Lock()
	e.keys[id] = key
	e.sessions = append(e.sessions, Session{RoleARN: roleARN, SessionName: session, Subject: tok.Subject, AccessKeyID: id})
	e.mu.Unlock()
	e.count(OpAssumeRoleWithWebIdentity, true)

	type credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	}
	type result struct {
		Credentials                 credentials `xml:"Credentials"`
		SubjectFromWebIdentityToken string      `xml:"SubjectFromWebIdentityToken"`
		AssumedRoleUser             struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
		Provider string `xml:"Provider"`
		Audience string `xml:"Audience"`
	}
	var res result
	res.Credentials = credentials{id, key.secret, key.sessionToken, time.Now().Add(time.Duration(duration) * time.Second).UTC().Format(time.RFC3339)}
	res.SubjectFromWebIdentityToken = tok.Subject
	res.AssumedRoleUser.Arn = key.arn
	res.AssumedRoleUser.AssumedRoleID = "AROA" + strings.ToUpper(randHex(8)) + ":" + session
	res.Provider = fmt.Sprintf("arn:%s:iam::%s:oidc-provider/token.actions.githubusercontent.com", partition, account)
	res.Audience = tok.Audience
	writeXML(w, http.StatusOK, struct {
		XMLName          xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
		Result           result   `xml:"AssumeRoleWithWebIdentityResult"`
		ResponseMetadata struct {
			RequestID string `xml:"RequestId"`
		} `xml:"ResponseMetadata"`
	}{Result: res, ResponseMetadata: struct {
		RequestID string `xml:"RequestId"`
	}{requestID()}})
}

func (e *Emulator) serveJSON(w http.ResponseWriter, r *http.Request, body []byte, target string) {
	var op, service string
	switch target {
	case "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken":
		op, service = OpECRGetAuthorizationToken, "ecr"
	case "SpencerFrontendService.GetAuthorizationToken":
		op, service = OpECRPublicGetAuthorization, "ecr-public"
	default:
		jsonError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	fail := func(status int, typ, msg string) {
		e.count(op, false)
		jsonError(w, status, typ, msg)
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") {
		fail(http.StatusBadRequest, "SerializationException", "expected POST with Content-Type application/x-amz-json-1.1")
		return
	}
	key, region, aerr := e.verifySigV4(r, body, service)
	if aerr != nil {
		fail(aerr.status, aerr.typ, aerr.msg)
		return
	}
	expires := float64(time.Now().Add(e.opts.TokenTTL).UnixMilli()) / 1000
	token := base64.StdEncoding.EncodeToString([]byte("AWS:" + e.Password))

	if service == "ecr-public" {
		if region != "us-east-1" {
			fail(http.StatusForbidden, "InvalidSignatureException", "Credential should be scoped to a valid region, not '"+region+"'. ")
			return
		}
		e.count(op, true)
		writeJSON(w, map[string]any{"authorizationData": map[string]any{"authorizationToken": token, "expiresAt": expires}})
		return
	}

	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			fail(http.StatusBadRequest, "SerializationException", "the request body is not valid JSON")
			return
		}
	}
	ids := in.RegistryIDs
	if len(ids) == 0 {
		ids = []string{key.account}
	}
	var data []map[string]any
	for _, id := range ids {
		if !registryIDRe.MatchString(id) {
			fail(http.StatusBadRequest, "InvalidParameterException", "Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must satisfy regular expression pattern: [0-9]{12}'")
			return
		}
		if len(e.opts.Registries) > 0 && !slices.Contains(e.opts.Registries, id) {
			fail(http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action (registry %s)", key.arn, id))
			return
		}
		suffix := "amazonaws.com"
		if strings.HasPrefix(region, "cn-") {
			suffix = "amazonaws.com.cn"
		}
		data = append(data, map[string]any{
			"authorizationToken": token,
			"expiresAt":          expires,
			"proxyEndpoint":      fmt.Sprintf("https://%s.dkr.ecr.%s.%s", id, region, suffix),
		})
	}
	e.count(op, true)
	writeJSON(w, map[string]any{"authorizationData": data})
}

type apiError struct {
	status   int
	typ, msg string
}

// verifySigV4 checks the request's AWS4-HMAC-SHA256 Authorization header: a known access key
// (with its session token, for temporary keys), the service in the credential scope, the time,
// and the signature recomputed over the signed headers and the body. It returns the key and the
// region of the scope.
func (e *Emulator) verifySigV4(r *http.Request, body []byte, service string) (accessKey, string, *apiError) {
	const algo = "AWS4-HMAC-SHA256"
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, algo+" ") {
		return accessKey{}, "", &apiError{http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, algo+" "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return accessKey{}, "", &apiError{http.StatusBadRequest, "IncompleteSignatureException", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."}
	}
	keyID, date, region, svc := scope[0], scope[1], scope[2], scope[3]
	e.mu.Lock()
	key, known := e.keys[keyID]
	e.mu.Unlock()
	if !known || r.Header.Get("X-Amz-Security-Token") != key.sessionToken {
		return accessKey{}, "", &apiError{http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	if svc != service {
		return accessKey{}, "", &apiError{http.StatusForbidden, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service)}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, date) {
		return accessKey{}, "", &apiError{http.StatusBadRequest, "IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope's date"}
	}
	if d := time.Since(at); d > 5*time.Minute || d < -5*time.Minute {
		return accessKey{}, "", &apiError{http.StatusBadRequest, "InvalidSignatureException", "Signature expired: " + amzDate + " is now earlier or later than the allowed 5 minutes"}
	}

	signed := strings.Split(fields["SignedHeaders"], ";")
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon.WriteString(path + "\n")
	canon.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, h := range signed {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = r.Header.Get("Content-Length")
			if v == "" {
				v = strconv.FormatInt(r.ContentLength, 10)
			}
		default:
			v = strings.Join(r.Header.Values(h), ",")
		}
		canon.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	canon.WriteString("\n" + fields["SignedHeaders"] + "\n")
	payload := sha256.Sum256(body)
	canon.WriteString(hex.EncodeToString(payload[:]))
	creq := sha256.Sum256([]byte(canon.String()))
	toSign := algo + "\n" + amzDate + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(creq[:])

	k := hmacSHA256([]byte("AWS4"+key.secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, svc)
	k = hmacSHA256(k, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(k, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return accessKey{}, "", &apiError{http.StatusForbidden, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return key, region, nil
}

func canonicalQuery(q url.Values) string {
	var parts []string
	for k, vs := range q {
		for _, v := range vs {
			parts = append(parts, awsEscape(k)+"="+awsEscape(v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "&")
}

func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", requestID())
	_ = json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.Header().Set("X-Amzn-Errortype", typ+":http://internal.amazon.com/coral/com.amazon.coral.service/")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}

func xmlError(w http.ResponseWriter, status int, code, msg string) {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	writeXML(w, status, struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
		Error   struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
		RequestID string `xml:"RequestId"`
	}{Error: struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}{typ, code, msg}, RequestID: requestID()})
}

func requestID() string {
	b := randBytes(16)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randHex(n int) string { return hex.EncodeToString(randBytes(n)) }
