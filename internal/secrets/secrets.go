// Package secrets keeps the run's secret values so that they can be masked
// in the Actions log and scrubbed from everything the action writes
// elsewhere (the PR comment, the job summary, outputs and errors), which the
// runner's log masking does not cover.
package secrets

import (
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Set is a set of secret values. The zero value is ready to use.
type Set struct {
	mu     sync.Mutex
	values []string
	onAdd  func(string)
}

// New returns a Set that calls onAdd (for example the Actions `add-mask`
// command) once for every new value.
func New(onAdd func(string)) *Set { return &Set{onAdd: onAdd} }

// Add records secret values. Empty and very short values are ignored: masking
// "a" would garble every log line. A value's base64 forms and its escaped
// form are recorded too, for where it appears encoded or quoted.
func (s *Set) Add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		v = strings.TrimSpace(v)
		if len(v) < 4 {
			continue
		}
		forms := []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.URLEncoding.EncodeToString([]byte(v))}
		// The value as it appears inside a quoted string (a JSON body, a
		// Go %q error) when it holds quotes, backslashes or newlines.
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			forms = append(forms, q[1:len(q)-1])
		}
		if strings.Contains(v, "\n") {
			// `::add-mask::` takes one line: a multi-line value (a key
			// file) is masked line by line, and scrubbed whole too.
			s.record(v, false)
			forms = forms[1:]
			for _, line := range strings.Split(v, "\n") {
				if line = strings.TrimSpace(line); len(line) >= 4 {
					forms = append(forms, line)
				}
			}
		}
		for _, form := range forms {
			s.record(form, true)
		}
	}
	// Longest first, so that a secret containing another is scrubbed whole.
	sort.Slice(s.values, func(i, j int) bool { return len(s.values[i]) > len(s.values[j]) })
}

func (s *Set) record(v string, mask bool) {
	if s.has(v) {
		return
	}
	s.values = append(s.values, v)
	if mask && s.onAdd != nil {
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

// Redact replaces every secret value in text with ***.
func (s *Set) Redact(text string) string {
	if s == nil {
		return text
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.values {
		text = strings.ReplaceAll(text, v, "***")
	}
	return text
}
