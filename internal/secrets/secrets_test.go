package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	var masked []string
	s := New(func(v string) { masked = append(masked, v) })
	s.Add("tok-123456", "", "ab", "tok-123456", "tok-123456-longer")
	b64 := base64.StdEncoding.EncodeToString([]byte("tok-123456"))
	tests := []struct{ in, want string }{
		{"token tok-123456 leaked", "token *** leaked"},
		{"longer tok-123456-longer first", "longer *** first"},
		{"auth " + b64, "auth ***"},
		{"ab is too short to mask", "ab is too short to mask"},
	}
	for _, tc := range tests {
		if got := s.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Each distinct form is masked once.
	seen := map[string]int{}
	for _, m := range masked {
		seen[m]++
	}
	if seen["tok-123456"] != 1 || seen[b64] != 1 || seen["tok-123456-longer"] != 1 || seen["ab"] != 0 {
		t.Errorf("masked %q", masked)
	}
	// A multi-line secret is masked line by line (add-mask takes one line)
	// and scrubbed whole.
	masked = nil
	s.Add("{\n  \"private_key\": \"-----BEGIN KEY-----abc\"\n}")
	for _, m := range masked {
		if strings.Contains(m, "\n") {
			t.Errorf("masked a multi-line value: %q", m)
		}
	}
	if !slices.Contains(masked, `"private_key": "-----BEGIN KEY-----abc"`) {
		t.Errorf("masked %q", masked)
	}
	if got := s.Redact("key: {\n  \"private_key\": \"-----BEGIN KEY-----abc\"\n} end"); got != "key: *** end" {
		t.Errorf("Redact = %q", got)
	}

	var nilSet *Set
	if nilSet.Redact("x") != "x" {
		t.Error("nil set changed text")
	}
}

// TestRedactEncodings: a secret is scrubbed in every shape an error body
// that echoes a request can show it in.
func TestRedactEncodings(t *testing.T) {
	t.Parallel()
	const (
		token    = "agent:acme:0123456789abcdef0123456789abcdef"
		part     = "0123456789abcdef0123456789abcdef"
		password = `p@ss/w0rd+"quoted"&<tag> 100%`
		user     = "robot$acme"
	)
	s := New(nil)
	s.Add(token)
	s.AddPair(user, password)
	jsonOf := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	dockerAuth := base64.URLEncoding.EncodeToString([]byte(jsonOf(map[string]string{"username": user, "password": password, "serveraddress": "r.example"})))
	tests := []struct {
		name, text string
		gone       []string // substrings that must not survive
	}{
		{"raw", "token " + token, []string{token, part}},
		{"secret part of the token", "invalid token " + part + " for acme", []string{part}},
		{"base64", base64.StdEncoding.EncodeToString([]byte(token)), []string{token}},
		{"base64 url, unpadded", base64.RawURLEncoding.EncodeToString([]byte(password)), []string{base64.RawURLEncoding.EncodeToString([]byte(password))}},
		{"basic auth header", "Authorization: Basic " + basic, []string{basic}},
		{"docker auth config", "X-Registry-Auth: " + dockerAuth, []string{dockerAuth}},
		{"query escaped", "GET /v2/?password=" + url.QueryEscape(password), []string{url.QueryEscape(password)}},
		{"path escaped", "GET /tokens/" + url.PathEscape(password), []string{url.PathEscape(password)}},
		{"lower-case percent escapes", strings.ToLower(url.QueryEscape(password)), []string{strings.ToLower(url.QueryEscape(password))}},
		{"JSON", `{"password":` + jsonOf(password) + `}`, []string{jsonOf(password)}},
		{"Go quoted", strconv.Quote(password), []string{strconv.Quote(password)[1 : len(strconv.Quote(password))-1]}},
		{"token in JSON echo", `{"headers":{"Dagster-Cloud-Api-Token":` + jsonOf(token) + `}}`, []string{token, part}},
	}
	for _, tc := range tests {
		got := s.Redact(tc.text)
		for _, g := range tc.gone {
			if strings.Contains(got, g) {
				t.Errorf("%s: %q survives in %q", tc.name, g, got)
			}
		}
		if !strings.Contains(got, "***") {
			t.Errorf("%s: nothing redacted in %q", tc.name, got)
		}
	}
}

// TestRedactBase64Anywhere: the secret is found in a base64 text whatever
// its byte offset in the encoded data.
func TestRedactBase64Anywhere(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-v4lue-0042"
	s := New(nil)
	s.Add(secret)
	for prefix := 0; prefix < 6; prefix++ {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			data := strings.Repeat("x", prefix) + secret + `","more":"data"}`
			encoded := enc.EncodeToString([]byte(data))
			got := s.Redact(encoded)
			if got == encoded {
				t.Errorf("prefix %d: nothing redacted from %s", prefix, encoded)
			}
			// What is left decodes to text without the secret's middle.
			if dec, err := enc.DecodeString(strings.ReplaceAll(got, "***", "")); err == nil && strings.Contains(string(dec), secret[3:len(secret)-3]) {
				t.Errorf("prefix %d: the secret survives: %q", prefix, dec)
			}
		}
	}
}

func TestWriter(t *testing.T) {
	t.Parallel()
	s := New(nil)
	s.Add("hunter2-secret")
	var out bytes.Buffer
	w := s.Writer(&out)
	for _, chunk := range []string{"step 1: hun", "ter2-secret\nstep 2: ok\npartial hunter2", "-secret"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); got != "step 1: ***\nstep 2: ok\n" {
		t.Errorf("before flush: %q", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "step 1: ***\nstep 2: ok\npartial ***" {
		t.Errorf("after flush: %q", got)
	}
}

// FuzzRedact: whatever the secret and whatever surrounds it, neither it
// nor its base64 or escaped forms survive Redact.
func FuzzRedact(f *testing.F) {
	f.Add("tok-123456", "prefix ", " suffix")
	f.Add("agent:acme:0123456789abcdef", `{"token":"`, `"}`)
	f.Add(`p@ss"w\rd<>&`, "Authorization: Basic ", "")
	f.Add("multi\nline\nsecret", "-----BEGIN-----\n", "\n-----END-----")
	f.Fuzz(func(t *testing.T, secret, before, after string) {
		s := New(nil)
		s.Add(secret)
		v := strings.TrimSpace(secret)
		if len(v) < MinLen {
			return
		}
		for _, text := range []string{
			before + v + after,
			before + base64.StdEncoding.EncodeToString([]byte(v)) + after,
			before + url.QueryEscape(v) + after,
			fmt.Sprintf("%s%q%s", before, v, after),
		} {
			got := s.Redact(text)
			if strings.Contains(got, v) {
				t.Fatalf("secret %q survives in %q", v, got)
			}
		}
	})
}
