// Package secrets keeps the run's secret values so that they can be masked
// in the Actions log and scrubbed from everything the action writes
// elsewhere (the PR comment, the job summary, outputs and errors), which the
// runner's log masking does not cover.
//
// A secret leaks in more shapes than its raw text: an error body that
// echoes a request shows it base64-encoded in an Authorization header
// (alone, or as user:password), percent-encoded in a URL, escaped in a JSON
// string. Add records each of those shapes, so that Redact removes them all.
package secrets

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// MinLen is the length under which a value is not treated as a secret:
// masking "a" would garble every log line.
const MinLen = 4

// minFragment is the shortest derived form (a token's secret part, a
// base64 fragment) that is recorded: shorter ones would match innocent text.
const minFragment = 8

// Set is a set of secret values. The zero value is ready to use.
type Set struct {
	mu     sync.Mutex
	values []string // every recorded form, longest first
	onAdd  func(string)
}

// New returns a Set that calls onAdd (for example the Actions `add-mask`
// command) once for every new single-line form.
func New(onAdd func(string)) *Set { return &Set{onAdd: onAdd} }

// OnAdd sets the function called once for every new single-line form, and
// calls it for the forms recorded so far.
func (s *Set) OnAdd(f func(string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onAdd = f
	for _, v := range s.values {
		if f != nil && !strings.ContainsAny(v, "\r\n") {
			f(v)
		}
	}
}

// Add records secret values with all their encoded forms. Empty and very
// short values are ignored.
func (s *Set) Add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		s.add(strings.TrimSpace(v))
	}
	s.sort()
}

// AddPair records a user name and password as they appear together in
// HTTP basic authentication and in Docker's auth field: base64 of
// "user:password". The password is recorded on its own too.
func (s *Set) AddPair(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(strings.TrimSpace(password))
	if user != "" && len(strings.TrimSpace(password)) >= MinLen {
		for _, f := range base64Forms(user + ":" + password) {
			s.record(f)
		}
	}
	s.sort()
}

// dagsterToken is a Dagster+ API token, <kind>:<organization>:<secret>,
// whose secret part may show up on its own.
var dagsterToken = regexp.MustCompile(`^[a-z_]+:[^:\s]+:([^:\s]+)$`)

func (s *Set) add(v string) {
	if len(v) < MinLen {
		return
	}
	if strings.ContainsAny(v, "\r\n") {
		// `::add-mask::` takes one line: a multi-line value (a key file)
		// is masked line by line, and scrubbed whole too.
		for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
			s.add(strings.TrimSpace(line))
		}
	}
	for _, f := range forms(v) {
		s.record(f)
	}
	if m := dagsterToken.FindStringSubmatch(v); m != nil && len(m[1]) >= minFragment {
		for _, f := range forms(m[1]) {
			s.record(f)
		}
	}
}

// forms are the shapes in which v can appear in text: raw, percent-encoded,
// JSON- and Go-quoted, and base64 of the raw and JSON-quoted forms (a
// Docker auth config is base64 of JSON), also as part of a longer base64
// text.
func forms(v string) []string {
	out := append([]string{v}, base64Forms(v)...)
	for _, e := range []string{url.QueryEscape(v), url.PathEscape(v)} {
		out = append(out, e, lowerHex(e))
	}
	if q := strconv.Quote(v); len(q) > 2 {
		out = append(out, q[1:len(q)-1])
	}
	for _, html := range []bool{true, false} {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(v) == nil {
			j := strings.TrimSuffix(b.String(), "\n")
			if j = j[1 : len(j)-1]; j != v {
				out = append(out, j)
				out = append(out, base64Forms(j)...)
			}
		}
	}
	return out
}

// base64Forms are v's base64 encodings (standard and URL alphabets, padded
// and not), and the parts of its encoding that stay the same wherever v
// sits inside a longer encoded text (base64 of "user:" + v, of a JSON
// document holding v), for each of the three byte alignments.
func base64Forms(v string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		out = append(out, enc.EncodeToString([]byte(v)))
	}
	for shift := 0; shift < 3; shift++ {
		padded := strings.Repeat("\x00", shift) + v
		full := len(padded) / 3 * 4 // characters of complete groups
		start := 0
		if shift > 0 {
			start = 4 // the first group mixes in the bytes before v
		}
		if full-start < minFragment {
			continue
		}
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			out = append(out, enc.EncodeToString([]byte(padded))[start:full])
		}
	}
	return out
}

// lowerHex lower-cases the hex digits of percent escapes (%2F → %2f), as
// some clients write them.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// record keeps one form; single-line forms are also masked (multi-line
// ones cannot be: add-mask takes one line).
func (s *Set) record(v string) {
	if len(v) < MinLen || s.has(v) {
		return
	}
	s.values = append(s.values, v)
	if s.onAdd != nil && !strings.ContainsAny(v, "\r\n") {
		s.onAdd(v)
	}
}

func (s *Set) has(v string) bool {
	for _, x := range s.values {
		if x == v {
			return true
		}
	}
	return false
}

// sort puts the longest values first, so that a secret containing another
// is scrubbed whole.
func (s *Set) sort() {
	sort.SliceStable(s.values, func(i, j int) bool { return len(s.values[i]) > len(s.values[j]) })
}

// Redact replaces every secret value in text with ***.
func (s *Set) Redact(text string) string {
	if s == nil {
		return text
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.values {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, "***")
		}
	}
	return text
}
