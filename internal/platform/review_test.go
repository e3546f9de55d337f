package platform

import (
	"strings"
	"testing"
	"time"
)

func TestStampRoundTrip(t *testing.T) {
	t.Parallel()
	s := Stamp{Commit: strings.Repeat("c", 40), RunID: 123456789012, RunAttempt: 3, Written: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	got, ok := ParseStamp("body\n" + s.Line() + "\n" + Marker("x"))
	if !ok || got != s {
		t.Errorf("parseStamp = %+v, %v; want %+v", got, ok, s)
	}
}

func TestMarker(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"dagster_cloud.yaml":         "<!-- dagster-branch-deploy:dagster_cloud.yaml -->",
		"proj/dagster_cloud.yaml":    "<!-- dagster-branch-deploy:proj/dagster_cloud.yaml -->",
		"a--->b c/dagster_cloud.yml": "<!-- dagster-branch-deploy:a-_b_c/dagster_cloud.yml -->",
		"x----y":                     "<!-- dagster-branch-deploy:x-y -->",
	} {
		if got := Marker(key); got != want {
			t.Errorf("Marker(%q) = %q, want %q", key, got, want)
		}
	}
}
