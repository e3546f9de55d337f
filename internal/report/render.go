package report

// Rendering helpers. The comment and the job summary show values that the
// action does not control: location names and images come from
// dagster_cloud.yaml in the pull request, the deployment name and error texts
// from APIs, the commit SHA and URLs partly from the event payload. Every such
// value goes through one of the helpers below, so that it is shown as data and
// cannot change the structure of the Markdown around it: only this package's
// own text is Markdown.

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxBytes bounds the size of Comment and Summary. GitHub refuses comments
// longer than 65,536 characters; counting bytes of UTF-8 is stricter.
const DefaultMaxBytes = 65536

// Length bounds, in runes, of the values shown inline.
const (
	maxName       = 100  // location name
	maxImage      = 500  // image reference with digest
	maxDeployment = 100  // deployment name
	maxFailure    = 600  // the run's failure headline
	maxErrorLine  = 200  // a failed location's headline in its <summary>
	maxShownURL   = 200  // a URL shown as text because it is not safe to link
	maxURL        = 2048 // longest URL that is linked (in bytes)
)

// Controls shown in place of characters that would break a line or hide text.
const (
	newlineSymbol = '␤'
	replacement   = '\uFFFD'
	zwsp          = "\u200b"
)

// visibleRune returns what an inline value shows for r, and whether r is
// replaced. Line breaks, tabs and other C0 and C1 controls, DEL, U+2028 and
// U+2029 and the bidirectional formatting characters become visible symbols.
func visibleRune(r rune) (string, bool) {
	switch {
	case r == '\n' || r == '\u0085' || r == '\u2028' || r == '\u2029':
		return string(newlineSymbol), true
	case r < 0x20:
		return string(rune(0x2400 + r)), true // ␀ … ␟ (␉ for a tab, ␍ for CR)
	case r == 0x7f:
		return "␡", true
	case r >= 0x80 && r < 0xa0, isBidi(r), r == utf8.RuneError:
		return string(replacement), true
	}
	return "", false
}

// isBidi reports whether r is a bidirectional formatting character, which
// can make text display in another order than it is stored.
func isBidi(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// visible makes s one line of printable text: invalid UTF-8 becomes U+FFFD,
// CRLF and other line breaks become ␤, and other controls their symbols.
func visible(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, string(replacement)), "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if v, ok := visibleRune(r); ok {
			b.WriteString(v)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ansi matches terminal escape sequences (colours, cursor moves) in logs.
var ansi = regexp.MustCompile("\x1b\\[[0-?]*[ -/]*[@-~]|\x1b\\][^\x07\x1b]*(?:\x07|\x1b\\\\)")

// visibleBlock prepares multi-line text for a code block: it drops terminal
// escape sequences, turns CR, CRLF, NEL, U+2028 and U+2029 into newlines,
// keeps tabs, and shows the other controls as symbols, as visible does.
func visibleBlock(s string) string {
	if strings.IndexByte(s, 0x1b) >= 0 {
		s = ansi.ReplaceAllString(s, "")
	}
	plain := func(c byte) bool { return c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' }
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if plain(s[i]) {
			j := i + 1
			for j < len(s) && plain(s[j]) {
				j++
			}
			b.WriteString(s[i:j])
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if n == 1 && r == utf8.RuneError {
			r = replacement
		}
		switch {
		case r == '\r' && i+1 < len(s) && s[i+1] == '\n':
		case r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029':
			b.WriteByte('\n')
		default:
			if v, ok := visibleRune(r); ok {
				b.WriteString(v)
			} else {
				b.WriteRune(r)
			}
		}
		i += n
	}
	return b.String()
}

// truncate cuts s to max runes, the last of them "…" when it cuts.
func truncate(s string, max int) string {
	if max < 1 || utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// defuseMarkers keeps s from containing "<!--" or "-->", the delimiters of
// the hidden marker that identifies our comment, by putting a zero-width
// space between their two hyphens. It only inserts, so a substring of its
// result cannot contain them either.
func defuseMarkers(s string) string {
	if !strings.Contains(s, "<!--") && !strings.Contains(s, "-->") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		// A cut after s[i] when s[i] and s[i+1] are the hyphens of "<!--"
		// (starting at i-2) or of "-->" (starting at i).
		if s[i] == '-' && i+1 < len(s) && s[i+1] == '-' &&
			(i >= 2 && s[i-2:i] == "<!" || i+2 < len(s) && s[i+2] == '>') {
			b.WriteString(zwsp)
		}
	}
	return b.String()
}

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// inlineCode renders s as a CommonMark code span for running text (a
// heading or a paragraph): shown on one line (see visible), cut to max runes,
// with "<!--" and "-->" defused, fenced by more backticks than its longest
// run of them and padded with a space where CommonMark would otherwise eat
// a backtick or a space of it. Inside a code span nothing is markup: no
// HTML, links, mentions or emphasis. An empty s renders as "*(empty)*".
func inlineCode(s string, max int) string {
	return codeSpan(s, max, false)
}

// cellCode is inlineCode for a GFM table cell: it also escapes "|" as "\|",
// as a table splits its cells on pipes even inside code spans (the table
// removes the backslash, so the span shows the pipe).
func cellCode(s string, max int) string {
	return codeSpan(s, max, true)
}

func codeSpan(s string, max int, cell bool) string {
	s = defuseMarkers(truncate(visible(s), max))
	if s == "" {
		return "*(empty)*"
	}
	if cell {
		s = strings.ReplaceAll(s, "|", `\|`)
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	pad := ""
	first, last := s[0], s[len(s)-1]
	if first == '`' || last == '`' || first == ' ' && last == ' ' && strings.Trim(s, " ") != "" {
		pad = " "
	}
	return fence + pad + s + pad + fence
}

// htmlText renders s for raw HTML (the <summary> of a details block): on one
// line (see visible), cut to max runes, with & < > " ' escaped as entities,
// which also keeps it from containing "<!--" or "-->".
func htmlText(s string, max int) string {
	return htmlEscaper.Replace(truncate(visible(s), max))
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")

// safeURL reports whether u can be a Markdown link destination as it is: an
// absolute http or https URL with a host, at most maxURL bytes, of valid
// UTF-8 without whitespace, controls or format characters, and without any
// of < > ( ) " ' ` \ | (which could end the destination, start HTML, or
// split a table cell).
func safeURL(u string) bool {
	if u == "" || len(u) > maxURL || !utf8.ValidString(u) {
		return false
	}
	for _, r := range u {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) ||
			r == '\u2028' || r == '\u2029' || strings.ContainsRune("<>()\"'`\\|", r) {
			return false
		}
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// link renders label (Markdown made by this package) linked to u when u is
// safe (see safeURL). Otherwise it shows u after the label as a code span,
// not linked; an empty u leaves the label alone.
func link(label, u string) string {
	switch {
	case u == "":
		return label
	case safeURL(u):
		return "[" + label + "](" + u + ")"
	}
	return label + " (" + inlineCode(u, maxShownURL) + ")"
}

// codeBlock renders text, prepared by visibleBlock and defuseMarkers, as a
// fenced code block whose fence is longer than any run of backticks in text,
// so that no line of it can close the block.
func codeBlock(text string) string {
	fence := strings.Repeat("`", max(3, longestRun(text, '`')+1))
	return fence + "text\n" + text + "\n" + fence + "\n"
}

// tail is where the end of text that fits in max bytes starts: at the start
// of a line where it can be (the useful end of a build log or a traceback
// is its last lines), else inside the last line, at a character.
func tail(text string, max int) int {
	if len(text) <= max {
		return 0
	}
	start := len(text) - max
	if text[start-1] == '\n' {
		return start
	}
	if i := strings.IndexByte(text[start:], '\n'); i >= 0 && start+i+1 < len(text) {
		return start + i + 1
	}
	for start < len(text) && !utf8.RuneStart(text[start]) {
		start++
	}
	return start
}

// rawErrorBytes bounds how much of an error text is prepared for showing:
// far more than is ever shown.
const rawErrorBytes = 16 * defaultErrBytes

// errorOutput is a failed location's error output, ready for a code block.
type errorOutput struct {
	text     string // its end, cleaned by visibleBlock and defuseMarkers
	cutBytes int    // bytes of the original before text
	cutLines int    // line breaks of the original before text
	cutMid   bool   // text starts inside a line
}

func prepareError(s string) errorOutput {
	s = strings.TrimLeft(strings.TrimRight(s, " \t\r\n"), "\r\n")
	var e errorOutput
	if start := tail(s, rawErrorBytes); start > 0 {
		e.cutBytes, e.cutLines, e.cutMid = start, strings.Count(s[:start], "\n"), s[start-1] != '\n'
		s = s[start:]
	}
	e.text = defuseMarkers(visibleBlock(s))
	return e
}

// show keeps the end of the output within max bytes (see tail), after a
// "…" when it starts inside a line, and says how many lines (one kept in
// part counting) and bytes are cut in all. The bytes are those of the
// original text, except that terminal escape sequences do not count in the
// last rawErrorBytes.
func (e errorOutput) show(max int) (kept string, lines, bytes int) {
	start := tail(e.text, max)
	kept, lines, bytes = e.text[start:], e.cutLines+strings.Count(e.text[:start], "\n"), e.cutBytes+start
	mid := e.cutMid
	if start > 0 {
		mid = e.text[start-1] != '\n'
	}
	if mid {
		kept = "…" + kept
		lines++
	}
	return kept, lines, bytes
}

// firstLine is the first non-blank line of s, without the colon that
// introduces the lines after it.
func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n")), "\n")
	return strings.TrimSuffix(strings.TrimSpace(l), ":")
}

// shortSHA is the first 12 characters of a commit SHA.
func shortSHA(sha string) string {
	n := 0
	for i := range sha {
		if n == 12 {
			return sha[:i]
		}
		n++
	}
	return sha
}

// humanSize is n bytes for people.
func humanSize(n int) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// plural is n with thousands separators, followed by noun, plural when n is
// not 1 ("1 line", "1,234 lines").
func plural(n int, noun string) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if n != 1 {
		noun += "s"
	}
	return s + " " + noun
}
