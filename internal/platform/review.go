package platform

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Marker is the hidden HTML comment that ends the action's comment on a
// pull request. key tells apart several projects deploying from one
// repository (it is the dagster_cloud.yaml path); characters that could end
// the HTML comment early ("--", ">") are replaced.
func Marker(key string) string {
	key = strings.Map(func(r rune) rune {
		if r == '/' || r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, key)
	for strings.Contains(key, "--") {
		key = strings.ReplaceAll(key, "--", "-")
	}
	return "<!-- dagster-branch-deploy:" + key + " -->"
}

// Stamp records which run wrote a comment, so that a run never overwrites
// what a newer run wrote: runs of one pull request can finish in any order.
type Stamp struct {
	Commit     string
	RunID      int64 // GITHUB_RUN_ID: later runs have larger IDs
	RunAttempt int   // GITHUB_RUN_ATTEMPT: a re-run keeps the ID
	Written    time.Time
}

// Line is the hidden line above the marker that carries the stamp.
func (s Stamp) Line() string {
	return fmt.Sprintf("<!-- dagster-branch-deploy-run: commit=%s run=%d attempt=%d written=%s -->",
		s.Commit, s.RunID, s.RunAttempt, s.Written.UTC().Format(time.RFC3339))
}

var stampRE = regexp.MustCompile(`<!-- dagster-branch-deploy-run: commit=([0-9a-f]*) run=([0-9]+) attempt=([0-9]+) written=(\S+) -->`)

// ParseStamp reads the last stamp line of a body; ok is false when there
// is none (a comment of an older version of the action).
func ParseStamp(body string) (Stamp, bool) {
	all := stampRE.FindAllStringSubmatch(body, -1)
	if len(all) == 0 {
		return Stamp{}, false
	}
	m := all[len(all)-1]
	run, _ := strconv.ParseInt(m[2], 10, 64)
	attempt, _ := strconv.Atoi(m[3])
	written, _ := time.Parse(time.RFC3339, m[4])
	return Stamp{Commit: m[1], RunID: run, RunAttempt: attempt, Written: written}, true
}

// NewerThan reports whether s comes from a later run than o (or from a
// later attempt of the same run). Unknown runs compare as not newer.
func (s Stamp) NewerThan(o Stamp) bool {
	if s.RunID == 0 || o.RunID == 0 {
		return false
	}
	if s.RunID != o.RunID {
		return s.RunID > o.RunID
	}
	return s.RunAttempt > o.RunAttempt
}

// SupersededError is returned when the comment already shows a newer run.
type SupersededError struct {
	CommentID int64
	Theirs    Stamp
	Ours      Stamp
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("the pull request's comment already shows run %d (attempt %d, commit %.12s), newer than this run %d (attempt %d, commit %.12s); it was left as it is",
		e.Theirs.RunID, e.Theirs.RunAttempt, e.Theirs.Commit, e.Ours.RunID, e.Ours.RunAttempt, e.Ours.Commit)
}

// EndsWithMarker: the marker must be the body's last line, so a marker
// quoted inside another comment does not count.
func EndsWithMarker(body, marker string) bool {
	return strings.HasSuffix(strings.TrimRight(body, " \t\r\n"), marker)
}
