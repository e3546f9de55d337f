package secrets

import (
	"encoding/base64"
	"slices"
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
	// Each distinct value (and its base64 forms) is masked once.
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
