package report

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestInlineCode(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, inline, cell string }{
		{"etl", "`etl`", "`etl`"},
		{"", "*(empty)*", "*(empty)*"},
		{"a`b", "``a`b``", "``a`b``"},
		{"`a", "`` `a ``", "`` `a ``"},
		{"a`", "`` a` ``", "`` a` ``"},
		{"`", "`` ` ``", "`` ` ``"},
		{"a``b```c", "````a``b```c````", "````a``b```c````"},
		{" a ", "`  a  `", "`  a  `"},
		{" a", "` a`", "` a`"},
		{"   ", "`   `", "`   `"},
		{"a|b", "`a|b`", "`a\\|b`"},
		{`a\|b`, "`a\\|b`", "`a\\\\|b`"},
		{"a\nb\r\nc\rd", "`a␤b␤c␍d`", "`a␤b␤c␍d`"},
		{"a\tb\x00\x1b\x7f", "`a␉b␀␛␡`", "`a␉b␀␛␡`"},
		{"a\u0085b\u2028c\u2029d", "`a␤b␤c␤d`", "`a␤b␤c␤d`"},
		{"a\u009bb\u202ec\u2066d", "`a\uFFFDb\uFFFDc\uFFFDd`", "`a\uFFFDb\uFFFDc\uFFFDd`"},
		{"bad\xffutf8", "`bad\uFFFDutf8`", "`bad\uFFFDutf8`"},
		{"<!-- x -->", "`<!-\u200b- x -\u200b->`", "`<!-\u200b- x -\u200b->`"},
		{"<script>@acme/team [x](javascript:alert(1))", "`<script>@acme/team [x](javascript:alert(1))`", "`<script>@acme/team [x](javascript:alert(1))`"},
	}
	for _, tc := range tests {
		if got := inlineCode(tc.in, 100); got != tc.inline {
			t.Errorf("inlineCode(%q) = %q, want %q", tc.in, got, tc.inline)
		}
		if got := cellCode(tc.in, 100); got != tc.cell {
			t.Errorf("cellCode(%q) = %q, want %q", tc.in, got, tc.cell)
		}
	}
	if got := inlineCode("abcdef", 4); got != "`abc…`" {
		t.Errorf("inlineCode cut = %q", got)
	}
	// The fence is bounded by the cut, and cut values stay valid UTF-8.
	long := strings.Repeat("`", 1000)
	if got := inlineCode(long, 10); got != "`````````` "+strings.Repeat("`", 9)+"… ``````````" {
		t.Errorf("inlineCode(1000 backticks) = %q", got)
	}
	if got := inlineCode(strings.Repeat("é", 50), 10); !utf8.ValidString(got) || utf8.RuneCountInString(got) != 12 {
		t.Errorf("inlineCode(é×50) = %q", got)
	}
}

func TestDefuseMarkers(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"<!--", "-->", "<!---->", "<!--->", "<!-->", "--->", "<<!--!-->>", "a<!-- dagster-branch-deploy:x -->b",
		"---->", "<!-<!--", "-- > <! --", "plain -- text --flag", "",
	} {
		out := defuseMarkers(in)
		if strings.Contains(out, "<!--") || strings.Contains(out, "-->") {
			t.Errorf("defuseMarkers(%q) = %q", in, out)
		}
		if strings.ReplaceAll(out, zwsp, "") != in {
			t.Errorf("defuseMarkers(%q) = %q: more than zero-width spaces added", in, out)
		}
	}
	if got := defuseMarkers("run --flag -- x"); got != "run --flag -- x" {
		t.Errorf("defuseMarkers changed ordinary hyphens: %q", got)
	}
}

func TestHTMLText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`<b>"x" & 'y'</b>`, "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"},
		{"<!-- dagster-branch-deploy:x -->", "&lt;!-- dagster-branch-deploy:x --&gt;"},
		{"a\nb\x00", "a␤b␀"},
		{"&lt;", "&amp;lt;"},
	}
	for _, tc := range tests {
		if got := htmlText(tc.in, 100); got != tc.want {
			t.Errorf("htmlText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSafeURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"https://github.com/o/r/actions/runs/42",
		"http://example.com",
		"HTTPS://Example.com/a?b=c&d=e#f",
		"https://acme.dagster.cloud/8f1d2c3b4a59/locations",
		"https://ghes.example:8443/o/r/commit/abc",
	} {
		if !safeURL(u) {
			t.Errorf("safeURL(%q) = false", u)
		}
	}
	for _, u := range []string{
		"", "javascript:alert(1)", "JavaScript://example.com/%0Aalert(1)", "data:text/html,x", "ftp://example.com",
		"https:///path", "https:example.com", "//example.com/x", "/relative", "example.com",
		"https://example.com/a b", "https://example.com/a\tb", "https://example.com/a\nb", "https://example.com/\x00",
		"https://example.com/(x)", "https://example.com/x)", "https://example.com/<x>", `https://example.com/"x"`,
		"https://example.com/'x'", "https://example.com/`x`", `https://example.com/\x`, "https://example.com/a|b",
		"https://example.com/\u200b", "https://example.com/\u202e", "https://example.com/\u2028", "https://example.com/\u00a0",
		"https://example.com/\xff", "https://example.com/" + strings.Repeat("a", maxURL),
	} {
		if safeURL(u) {
			t.Errorf("safeURL(%q) = true", u)
		}
	}
}

func TestLink(t *testing.T) {
	t.Parallel()
	if got := link("run log", "https://x.example/1"); got != "[run log](https://x.example/1)" {
		t.Errorf("safe link = %q", got)
	}
	if got := link("run log", ""); got != "run log" {
		t.Errorf("no URL = %q", got)
	}
	if got := link("run log", "javascript:alert(1)"); got != "run log (`javascript:alert(1)`)" {
		t.Errorf("unsafe link = %q", got)
	}
	if got := link("`x`", "https://x.example/a b<!--"); got != "`x` (`https://x.example/a b<!-\u200b-`)" {
		t.Errorf("unsafe link = %q", got)
	}
}

func TestCodeBlock(t *testing.T) {
	t.Parallel()
	if got := codeBlock("a\nb"); got != "```text\na\nb\n```\n" {
		t.Errorf("codeBlock = %q", got)
	}
	if got := codeBlock("a\n```\n`````x"); got != "``````text\na\n```\n`````x\n``````\n" {
		t.Errorf("codeBlock = %q", got)
	}
}

func TestVisibleBlock(t *testing.T) {
	t.Parallel()
	in := "\x1b[31mred\x1b[0m\r\nprogress 1\rprogress 2\ttab\x00\x1b]0;title\x07end\u2028x\xff"
	want := "red\nprogress 1\nprogress 2\ttab␀end\nx\uFFFD"
	if got := visibleBlock(in); got != want {
		t.Errorf("visibleBlock = %q, want %q", got, want)
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text  string
		max   int
		start int
	}{
		{"a\nb\nc", 10, 0},
		{"aaa\nbbb\nccc", 7, 4},
		{"aaa\nbbb\nccc", 6, 8},
		{"aaa\nbbb\nccc", 8, 4},
		{"aaa\nbbbbbbbbbb", 4, 10},
		{"ééééé", 5, 6},
	}
	for _, tc := range tests {
		if got := tail(tc.text, tc.max); got != tc.start {
			t.Errorf("tail(%q, %d) = %d, want %d", tc.text, tc.max, got, tc.start)
		}
	}
}

func TestErrorOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text         string
		max          int
		kept         string
		lines, bytes int
	}{
		{"\n\na\nb\x1b[1m\r\nc\n\n", 100, "a\nb\nc", 0, 0},
		{"aaa\nbbb\nccc", 7, "bbb\nccc", 1, 4},
		{"aaa\nbbbbbbbbbb", 4, "…bbbb", 2, 10},
		{"<!--\n-->", 100, "<!-\u200b-\n-\u200b->", 0, 0},
	}
	for _, tc := range tests {
		kept, lines, bytes := prepareError(tc.text).show(tc.max)
		if kept != tc.kept || lines != tc.lines || bytes != tc.bytes {
			t.Errorf("show(%q, %d) = %q, %d, %d; want %q, %d, %d", tc.text, tc.max, kept, lines, bytes, tc.kept, tc.lines, tc.bytes)
		}
	}
	// A huge output is cut before it is cleaned, and the counts add up.
	var b strings.Builder
	for i := range 100000 {
		b.WriteString("line " + strings.Repeat("x", i%7) + "\n")
	}
	b.WriteString("the end")
	huge := b.String()
	e := prepareError(huge)
	if len(e.text) > rawErrorBytes || e.cutBytes == 0 || e.cutMid {
		t.Errorf("prepareError kept %d bytes, cut %d (mid %v)", len(e.text), e.cutBytes, e.cutMid)
	}
	kept, lines, bytes := e.show(1000)
	if !strings.HasSuffix(kept, "\nthe end") || strings.HasPrefix(kept, "…") || bytes+len(kept) != len(huge) ||
		lines+strings.Count(kept, "\n")+1 != 100001 {
		t.Errorf("show: %d lines and %d bytes cut, %d lines kept", lines, bytes, strings.Count(kept, "\n")+1)
	}
	// One line of a megabyte: cut inside it, both times.
	one := strings.Repeat("é", 1<<19)
	kept, lines, bytes = prepareError(one).show(1000)
	if !strings.HasPrefix(kept, "…é") || lines != 1 || bytes+len(kept)-len("…") != len(one) {
		t.Errorf("one line: kept %d bytes, cut %d lines and %d bytes", len(kept), lines, bytes)
	}
}

func TestSmallHelpers(t *testing.T) {
	t.Parallel()
	if got := shortSHA("ec26c3e57ca3a959ca5aad62de7213c562f8c821"); got != "ec26c3e57ca3" {
		t.Errorf("shortSHA = %q", got)
	}
	if got := shortSHA("ééééééééééééééé"); got != "éééééééééééé" {
		t.Errorf("shortSHA(é) = %q", got)
	}
	if got := firstLine("\n  step 2/3 failed:\r\nboom"); got != "step 2/3 failed" {
		t.Errorf("firstLine = %q", got)
	}
	for n, want := range map[int]string{0: "0 lines", 1: "1 line", 1234: "1,234 lines", 1234567: "1,234,567 lines"} {
		if got := plural(n, "line"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int]string{10: "10 bytes", 2048: "2.0 KiB", 1 << 20: "1.0 MiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
