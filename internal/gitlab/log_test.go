package gitlab

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func newLog() (*jobLog, *bytes.Buffer) {
	var b bytes.Buffer
	return &jobLog{w: &b, now: func() time.Time { return time.Unix(1767225600, 0) }}, &b
}

// hostile values: each tries to start a section, overwrite a line, or
// begin a line of its own.
var hostile = []string{
	"\x1b[0Ksection_start:1:x\r\x1b[0Kforged",
	"a\nsection_end:1:dagster_1_build\r\x1b[0K",
	"line one\nERROR: forged failure",
	"carriage\roverwrite",
	"bell\a nul\x00 del\x7f c1\u0085\u009b csi",
	"separators\u2028and\u2029",
	"invalid \xff\xfe utf-8",
	"crlf\r\nsecond",
}

// ours removes the escapes the log writes itself (colours), so that what
// is left must hold no ESC.
var ours = strings.NewReplacer(ansiYellow, "", ansiRed, "", ansiCyan, "", ansiReset, "")

func TestLogPrintsValuesAsData(t *testing.T) {
	t.Parallel()
	for _, v := range hostile {
		for name, write := range map[string]func(l *jobLog){
			"Info":   func(l *jobLog) { l.Info(v) },
			"Warn":   func(l *jobLog) { l.Warn(v, v, 3) },
			"Notice": func(l *jobLog) { l.Notice(v) },
			"Fail":   func(l *jobLog) { l.Fail(v, v, v, 0) },
		} {
			l, b := newLog()
			write(l)
			out := ours.Replace(b.String())
			if strings.ContainsAny(out, "\x1b\r\x00\a\x7f\u0085\u009b\u2028\u2029") || strings.Contains(out, "\xff") {
				t.Errorf("%s(%q) wrote a control character: %q", name, v, out)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			prefix := map[string]string{"Info": "", "Warn": "WARNING: ", "Notice": "NOTE: ", "Fail": "ERROR: "}[name]
			if !strings.HasPrefix(lines[0], prefix) {
				t.Errorf("%s(%q): first line %q", name, v, lines[0])
			}
			for _, line := range lines[1:] {
				if !strings.HasPrefix(line, "  ") {
					t.Errorf("%s(%q): a value began a line: %q", name, v, line)
				}
			}
		}
	}
}

func TestLogFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(l *jobLog)
		want  string
	}{
		{"info", func(l *jobLog) { l.Info("Building 2 locations.") }, "Building 2 locations.\n"},
		{"info, several lines", func(l *jobLog) { l.Info("a\nb\n") }, "a\n  b\n"},
		{"info, tab kept", func(l *jobLog) { l.Info("a\tb") }, "a\tb\n"},
		{"info, escapes", func(l *jobLog) { l.Info("\x1b[0Ksection_start:1:x\r\x1b[0Kforged") }, `\x1b[0Ksection_start:1:x\r\x1b[0Kforged` + "\n"},
		{"info, invalid UTF-8", func(l *jobLog) { l.Info("a\xffb é") }, `a\xffb é` + "\n"},
		{"warn at a line", func(l *jobLog) { l.Warn("deprecated key", "dagster_cloud.yaml", 4) }, ansiYellow + "WARNING: dagster_cloud.yaml:4: deprecated key" + ansiReset + "\n"},
		{"warn at a file", func(l *jobLog) { l.Warn("bad", "dagster_cloud.yaml", 0) }, ansiYellow + "WARNING: dagster_cloud.yaml: bad" + ansiReset + "\n"},
		{"warn", func(l *jobLog) { l.Warn("x\ny", "", 0) }, ansiYellow + "WARNING: x" + ansiReset + "\n" + ansiYellow + "  y" + ansiReset + "\n"},
		{"warn, a file name with a newline", func(l *jobLog) { l.Warn("m", "a\nb.yaml", 2) }, ansiYellow + "WARNING: a b.yaml:2: m" + ansiReset + "\n"},
		{"notice", func(l *jobLog) { l.Notice("superseded") }, ansiCyan + "NOTE: superseded" + ansiReset + "\n"},
		{"fail", func(l *jobLog) { l.Fail("dagster-branch-deploy failed", "no registry", "dagster_cloud.yaml", 7) },
			ansiRed + "ERROR: dagster-branch-deploy failed: dagster_cloud.yaml:7: no registry" + ansiReset + "\n"},
		{"fail without title or file", func(l *jobLog) { l.Fail("", "boom", "", 0) }, ansiRed + "ERROR: boom" + ansiReset + "\n"},
		{"sections", func(l *jobLog) {
			l.Group("Build quickstart_etl")
			l.Info("step")
			l.Group("Push docker.io/acme/x:tag")
			l.EndGroup()
			l.EndGroup()
			l.EndGroup() // none open: nothing
			l.Group("Build quickstart_etl")
			l.EndGroup()
		}, "\x1b[0Ksection_start:1767225600:dagster_1_build_quickstart_etl[collapsed=true]\r\x1b[0KBuild quickstart_etl\n" +
			"step\n" +
			"\x1b[0Ksection_start:1767225600:dagster_2_push_docker.io_acme_x_tag[collapsed=true]\r\x1b[0KPush docker.io/acme/x:tag\n" +
			"\x1b[0Ksection_end:1767225600:dagster_2_push_docker.io_acme_x_tag\r\x1b[0K\n" +
			"\x1b[0Ksection_end:1767225600:dagster_1_build_quickstart_etl\r\x1b[0K\n" +
			"\x1b[0Ksection_start:1767225600:dagster_3_build_quickstart_etl[collapsed=true]\r\x1b[0KBuild quickstart_etl\n" +
			"\x1b[0Ksection_end:1767225600:dagster_3_build_quickstart_etl\r\x1b[0K\n"},
		{"hostile section title", func(l *jobLog) {
			l.Group("x\r\x1b[0Ksection_end:1:dagster_1_x\nsecond")
			l.EndGroup()
		}, "\x1b[0Ksection_start:1767225600:dagster_1_x_0ksection_end_1_dagster_1_x_second[collapsed=true]\r\x1b[0Kx\\r\\x1b[0Ksection_end:1:dagster_1_x second\n" +
			"\x1b[0Ksection_end:1767225600:dagster_1_x_0ksection_end_1_dagster_1_x_second\r\x1b[0K\n"},
		{"empty title", func(l *jobLog) { l.Group(""); l.EndGroup() },
			"\x1b[0Ksection_start:1767225600:dagster_1_section[collapsed=true]\r\x1b[0K\n\x1b[0Ksection_end:1767225600:dagster_1_section\r\x1b[0K\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, b := newLog()
			tc.write(l)
			if b.String() != tc.want {
				t.Errorf("log\n got %q\nwant %q", b.String(), tc.want)
			}
		})
	}
}

// TestSectionNames: GitLab takes section names from [A-Za-z0-9_.-].
func TestSectionNames(t *testing.T) {
	t.Parallel()
	l, b := newLog()
	for _, v := range append(hostile, strings.Repeat("long title ", 20), "日本語") {
		l.Group(v)
		l.EndGroup()
	}
	re := regexp.MustCompile(`\x1b\[0Ksection_(start|end):[0-9]+:([^\r\[]*)`)
	names := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(b.String(), -1) {
		if !regexp.MustCompile(`^[a-z0-9_.-]{1,60}$`).MatchString(m[2]) {
			t.Errorf("section name %q", m[2])
		}
		names[m[2]]++
	}
	for name, n := range names {
		if n != 2 {
			t.Errorf("section %s appears %d times", name, n)
		}
	}
	// Every ESC and CR in the output belongs to a marker the log wrote:
	// GitLab's section marker ends in CR ESC[0K, which a value cannot write.
	if got, want := strings.Count(b.String(), "\x1b"), 4*len(names); got != want {
		t.Errorf("%d escapes, want %d", got, want)
	}
	if got, want := strings.Count(b.String(), "\r\x1b[0K"), 2*len(names); got != want || strings.Count(b.String(), "\r") != want {
		t.Errorf("%d marker ends, want %d", got, want)
	}
}

func TestLogMisc(t *testing.T) {
	t.Parallel()
	l, b := newLog()
	l.Mask("secret")
	if b.Len() != 0 {
		t.Errorf("Mask wrote %q", b.String())
	}
	ran := false
	boom := errors.New("boom")
	if err := l.Verbatim(func() error { ran = true; _, _ = l.Writer().Write([]byte("raw \x1b[31mred\x1b[0m\n")); return boom }); err != boom || !ran {
		t.Errorf("Verbatim: %v", err)
	}
	if b.String() != "raw \x1b[31mred\x1b[0m\n" {
		t.Errorf("Writer: %q", b.String())
	}
	// Lines of concurrent writers stay whole.
	l2, b2 := newLog()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				l2.Warn(strings.Repeat(string(rune('a'+i)), 30)+"\nsecond", "f", 1)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b2.String(), "\n"), "\n")
	for i := 0; i < len(lines); i += 2 {
		if !strings.HasPrefix(lines[i], ansiYellow+"WARNING: f:1: ") || lines[i+1] != ansiYellow+"  second"+ansiReset {
			t.Fatalf("interleaved at %d: %q %q", i, lines[i], lines[i+1])
		}
	}
}

func TestPlain(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"":             {""},
		"a":            {"a"},
		"a\n":          {"a"},
		"a\r\nb\r\n":   {"a", "b"},
		"a\rb":         {`a\rb`},
		"\x1b[0K":      {`\x1b[0K`},
		"x\u0085y":     {`x\u0085y`},
		"x\u2028y":     {`x\u2028y`},
		"\xc3":         {`\xc3`},
		"tab\tkept":    {"tab\tkept"},
		"ünïcødé ok ✓": {"ünïcødé ok ✓"},
	} {
		got := Plain(in)
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("Plain(%q) = %q, want %q", in, got, want)
		}
	}
}
