package dagster

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestFormatPythonError(t *testing.T) {
	t.Parallel()
	var e pythonError
	raw := `{"message":"Outer\n","stack":["  File a\n","  File b\n"],"errorChain":[
		{"isExplicitLink":true,"error":{"message":"Cause\n","stack":["  File c\n"]}},
		{"isExplicitLink":false,"error":{"message":"Context\n","stack":[]}}]}`
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		t.Fatal(err)
	}
	want := "Outer\n  File a\n  File b\n" +
		"The above exception was caused by the following exception:\nCause\n  File c\n" +
		"The above exception occurred during handling of the following exception:\nContext"
	if got := formatPythonError(e); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 22, 15, 4, 5, 0, time.UTC)
	c := New("https://x", "t", WithClock(func() time.Time { return now }))
	// -1: no usable delay, the retry sleeps the backoff. The dagster-cloud
	// CLI takes digits only or a date, floored at 0, and sleeps the backoff
	// when that is falsy.
	for in, want := range map[string]time.Duration{
		"":                              -1,
		"soon":                          -1,
		"3":                             3 * time.Second,
		" 7 ":                           7 * time.Second,
		"0":                             -1,
		"00":                            -1,
		"-4":                            -1,
		"+4":                            -1,
		"1.5":                           -1,
		"Fri, 22 May 2026 15:04:35 GMT": 30 * time.Second,
		"Fri, 22 May 2026 15:04:05 GMT": -1, // now
		"Fri, 22 May 2026 15:00:00 GMT": -1, // past
		"3600":                          time.Hour,
		"99999999999999999999":          100 * 365 * 24 * time.Hour, // no Duration overflow
		"9223372036":                    100 * 365 * 24 * time.Hour,
		"1e30":                          -1,
		"NaN":                           -1,
	} {
		if got := c.retryAfter(in); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("é", 400) // 800 bytes
	got := truncate(s, maxBodySnippet)
	if !utf8.ValidString(got) || !strings.Contains(got, "bytes truncated") || len(got) > maxBodySnippet+40 {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("  short \n", maxBodySnippet); got != "short" {
		t.Errorf("truncate = %q", got)
	}
}
