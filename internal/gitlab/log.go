package gitlab

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
)

// ANSI styles, as the GitLab Runner colours its own warnings and errors.
const (
	ansiYellow = "\x1b[0;33m"
	ansiRed    = "\x1b[0;31m"
	ansiCyan   = "\x1b[0;36m"
	ansiReset  = "\x1b[0m"
	// eraseLine starts and ends GitLab's section markers.
	eraseLine = "\x1b[0K"
)

// jobLog is the job log of a GitLab CI job. GitLab's log viewer renders
// ANSI escapes, carriage returns and collapsible-section markers
// (`\e[0Ksection_start:<time>:<name>\r\e[0K<header>`), so every value is
// printed as data: Plain escapes ESC, CR and the other control characters,
// and a value's line breaks become indented continuation lines, so that a
// value can neither start a section nor begin a line of its own.
type jobLog struct {
	w   io.Writer
	now func() time.Time

	mu       sync.Mutex
	sections []string // open sections, innermost last
	n        int      // sections started, for unique names
}

var _ platform.Log = (*jobLog)(nil)

// Plain makes text inert in a GitLab job log: it returns its lines, each
// free of control characters (ESC, CR, NUL, C1 controls and the like are
// written as Go escapes such as \x1b and \r; a tab stays), of invalid
// UTF-8 (as \xNN) and of Unicode line and paragraph separators. A CRLF
// or LF separates lines; a trailing line break is dropped.
func Plain(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = escape(l)
	}
	return lines
}

func escape(s string) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case unsafeRune(r):
			q := strconv.QuoteRune(r) // '\x1b', '\u0085', '\u2028'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// unsafeRune: control characters other than tab, line and paragraph
// separators, and the replacement rune (which stands for invalid UTF-8).
func unsafeRune(r rune) bool {
	return r != '\t' && unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError
}

// oneLine is a value that must stay on one line (a title, a file name).
func oneLine(s string) string { return strings.Join(Plain(s), " ") }

// print writes msg's lines: the first after prefix, the others indented
// by two spaces, each wrapped in style when style is not "".
func (l *jobLog) print(style, prefix, msg string) {
	var b strings.Builder
	for i, line := range Plain(msg) {
		if i == 0 {
			line = prefix + line
		} else {
			line = "  " + line
		}
		if style != "" {
			line = style + line + ansiReset
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, b.String())
}

func (l *jobLog) Info(msg string) { l.print("", "", msg) }

// Warn prints `WARNING: <file>:<line>: msg` in yellow.
func (l *jobLog) Warn(msg, file string, line int) {
	l.print(ansiYellow, "WARNING: "+position(file, line), msg)
}

// Notice prints `NOTE: msg` in cyan.
func (l *jobLog) Notice(msg string) { l.print(ansiCyan, "NOTE: ", msg) }

// Fail prints `ERROR: <title>: <file>:<line>: msg` in red.
func (l *jobLog) Fail(title, msg, file string, line int) {
	prefix := "ERROR: "
	if title != "" {
		prefix += oneLine(title) + ": "
	}
	l.print(ansiRed, prefix+position(file, line), msg)
}

func position(file string, line int) string {
	if file == "" {
		return ""
	}
	if line > 0 {
		return fmt.Sprintf("%s:%d: ", oneLine(file), line)
	}
	return oneLine(file) + ": "
}

// Group starts a collapsed section whose header is title. Its name, which
// GitLab takes from [A-Za-z0-9_.-] only, is made from title and a counter,
// so that every section has its own.
func (l *jobLog) Group(title string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	name := fmt.Sprintf("dagster_%d_%s", l.n, sectionSlug(title))
	l.sections = append(l.sections, name)
	fmt.Fprintf(l.w, "%ssection_start:%d:%s[collapsed=true]\r%s%s\n", eraseLine, l.now().Unix(), name, eraseLine, oneLine(title))
}

// EndGroup ends the innermost open section; without one it does nothing.
func (l *jobLog) EndGroup() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.sections) == 0 {
		return
	}
	name := l.sections[len(l.sections)-1]
	l.sections = l.sections[:len(l.sections)-1]
	fmt.Fprintf(l.w, "%ssection_end:%d:%s\r%s\n", eraseLine, l.now().Unix(), name, eraseLine)
}

// sectionSlug is title in the characters a section name may hold, at most
// 40 of them.
func sectionSlug(title string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(title) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-'
		switch {
		case ok:
			b.WriteRune(r)
			under = false
		case !under && b.Len() > 0:
			b.WriteByte('_')
			under = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	s := strings.TrimRight(b.String(), "_")
	if s == "" {
		return "section"
	}
	return s
}

// Verbatim runs f: GitLab has no workflow commands to turn off.
func (l *jobLog) Verbatim(f func() error) error { return f() }

// Writer is the job log itself.
func (l *jobLog) Writer() io.Writer { return l.w }

// Mask does nothing: GitLab masks only the values of masked CI/CD
// variables, and has no command to mask another; the pipeline's redacting
// writer still scrubs every secret from the log.
func (l *jobLog) Mask(string) {}
