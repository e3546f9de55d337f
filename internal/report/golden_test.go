package report

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current rendering")

const testMarker = "<!-- dagster-branch-deploy:dagster_cloud.yaml -->"

var t0 = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

// base is a report of a pull request's run before any location.
func base() *Report {
	return &Report{
		Deployment:    "8f1d2c3b4a59",
		DeploymentURL: "https://acme.dagster.cloud/8f1d2c3b4a59",
		Branch:        true,
		CommitSHA:     "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		CommitURL:     "https://github.com/acme/data/commit/ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		RunURL:        "https://github.com/acme/data/actions/runs/42",
		Now:           func() time.Time { return t0.Add(2 * time.Minute) },
	}
}

const buildLog = "#5 [2/3] RUN pip install -r requirements.txt\n" +
	"#5 0.412 Collecting dagster==1.9.0\r\n" +
	"#5 1.020 \x1b[31mERROR: Could not find a version that satisfies the requirement dagster-pandass\x1b[0m\n" +
	"#5 1.021 ERROR: No matching distribution found for dagster-pandass\n" +
	"#5 ERROR: process \"/bin/sh -c pip install -r requirements.txt\" did not complete successfully: exit code: 1\n" +
	"------\n" +
	" > [2/3] RUN pip install -r requirements.txt:\n" +
	"```\n" +
	"------\n" +
	"Dockerfile:3\n"

const traceback = `dagster._core.errors.DagsterImportError: Encountered ImportError: ` + "`No module named 'pandas'`" + ` while importing module etl.definitions.
Stack Trace:
  File "/usr/local/lib/python3.12/site-packages/dagster/_core/code_pointer.py", line 135, in load_python_module
    return importlib.import_module(module_name)
  File "/opt/dagster/app/etl/definitions.py", line 3, in <module>
    import pandas as pd
ModuleNotFoundError: No module named 'pandas'
`

// hostile values: each tries to change the comment's structure.
var hostile = []string{
	"tick`s``here`",
	"pipe|name||",
	"new\nline\r\nname\u2028x",
	"<script>alert(1)</script>",
	"[x](javascript:alert(1))",
	"@acme/team please look",
	"<!-- dagster-branch-deploy:x -->",
	"`",
	"www.evil.example https://evil.example/a #1 :shipit: **bold** _em_ ~~s~~",
	"</code></summary></details><img src=x onerror=alert(1)>",
	"\u202eevil\u202c",
}

func scenarios() []struct {
	name string
	r    *Report
} {
	type sc = struct {
		name string
		r    *Report
	}
	var out []sc
	add := func(name string, mod func(r *Report)) {
		r := base()
		mod(r)
		out = append(out, sc{name, r})
	}
	add("building", func(r *Report) {
		r.Deployment, r.DeploymentURL = "", ""
		r.Locations = []Location{
			{Name: "etl", State: Pushed, Image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/etl:ec26c3e", Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Updated: t0},
			{Name: "ml", State: Building, Image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml:ec26c3e", Updated: t0},
		}
	})
	add("loaded", func(r *Report) {
		r.Locations = []Location{
			{Name: "etl", State: Deployed, Image: "ghcr.io/acme/etl:ec26c3e", Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Updated: t0},
			{Name: "ml", State: Deployed, Image: "ghcr.io/acme/ml:ec26c3e", Digest: "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", Updated: t0},
		}
		r.SetAll(Loaded)
	})
	add("build-failed", func(r *Report) {
		r.Locations = []Location{
			{Name: "etl", State: Pushed, Image: "ghcr.io/acme/etl:ec26c3e", Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Updated: t0},
			{Name: "ml", State: Building, Image: "ghcr.io/acme/ml:ec26c3e", Updated: t0},
		}
		r.Set("ml", Failed, "building ml: step 2/3 failed:\n"+buildLog)
		r.Failure = "building code location ml: step 2/3 failed"
	})
	add("load-failed", func(r *Report) {
		r.Locations = []Location{
			{Name: "etl", State: Deployed, Image: "ghcr.io/acme/etl:ec26c3e", Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Updated: t0},
			{Name: "ml", State: Deployed, Image: "ghcr.io/acme/ml:ec26c3e", Digest: "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", Updated: t0},
		}
		r.Set("ml", Loaded, "")
		r.Set("etl", Failed, traceback)
	})
	add("closed", func(r *Report) {
		r.PullRequestStatus = "CLOSED"
		r.Set("etl", Closed, "")
		r.Set("ml", Closed, "")
	})
	add("merged", func(r *Report) {
		r.PullRequestStatus = "MERGED"
		r.Set("etl", Closed, "")
	})
	add("superseded", func(r *Report) {
		r.Superseded = "branch deployment 8f1d2c3b4a59 was not updated: pull request #7 is now at commit 0123456789ab, not this run's ec26c3e57ca3"
		r.Locations = []Location{{Name: "etl", State: Pushed, Image: "ghcr.io/acme/etl:ec26c3e", Updated: t0}}
	})
	add("merged-merge-request", func(r *Report) {
		r.Request = "merge request"
		r.CommitURL = "https://gitlab.example/acme/data/-/commit/ec26c3e57ca3a959ca5aad62de7213c562f8c821"
		r.RunURL = "https://gitlab.example/acme/data/-/pipelines/1234"
		r.PullRequestStatus = "MERGED"
		r.Set("etl", Closed, "")
	})
	add("reused", func(r *Report) {
		r.Locations = []Location{
			{Name: "etl", State: Loaded, Image: "ghcr.io/acme/etl:ec26c3e", Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Updated: t0, ReusedFrom: "0123456789abcdef0123456789abcdef01234567"},
			{Name: "ml", State: Loaded, Image: "ghcr.io/acme/ml:ec26c3e", Digest: "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", Updated: t0},
		}
	})
	add("built-only", func(r *Report) {
		r.Deployment, r.DeploymentURL = "", ""
		r.Locations = []Location{
			{Name: "etl", State: Built, Image: "etl:ec26c3e", Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Updated: t0},
			{Name: "ml", State: Built, Image: "ml:ec26c3e", Updated: t0},
		}
	})
	add("skipped", func(r *Report) {
		r.Deployment, r.DeploymentURL = "", ""
		r.Skipped = "Pull request #7 comes from a fork (octocat/data), whose runs get no secrets and a read-only token: nothing is built, pushed or deployed (fork_pull_requests: skip; set it to build to check that the images build)"
	})
	add("deleted", func(r *Report) {
		r.PullRequestStatus = "MERGED"
		r.Deleted = true
		r.DeploymentURL = ""
		r.Set("etl", Deleted, "")
		r.Set("ml", Deleted, "")
	})
	add("deleted-none", func(r *Report) {
		r.PullRequestStatus = "CLOSED"
		r.Deleted = true
		r.Deployment, r.DeploymentURL = "", ""
	})
	add("dry-run", func(r *Report) {
		r.DryRun = &DryRun{Operations: []Operation{
			{Name: "CliCreateOrUpdateBranchDeployment", Detail: "update branch deployment 8f1d2c3b4a59 (now at commit 0123456789ab, OPEN) to commit ec26c3e57ca3 (pull request #7, OPEN; base deployment prod)"},
			{Name: "CliDeployLocations", Detail: "deploy etl = ghcr.io/acme/etl:ec26c3e, ml = ghcr.io/acme/ml:ec26c3e to 8f1d2c3b4a59"},
		}}
		r.Locations = []Location{
			{Name: "etl", State: Built, Image: "ghcr.io/acme/etl:ec26c3e", Updated: t0},
			{Name: "ml", State: Built, Image: "ghcr.io/acme/ml:ec26c3e", Updated: t0},
		}
	})
	add("dry-run-close", func(r *Report) {
		r.DryRun = &DryRun{Operations: []Operation{
			{Name: "DeploymentByNameQuery", Detail: "check that 8f1d2c3b4a59 is a branch deployment"},
			{Name: "CliDeleteDeployment", Detail: "delete branch deployment 8f1d2c3b4a59 (pull request #7 was closed; delete_on_close)"},
		}}
	})
	add("failure-before-locations", func(r *Report) {
		r.Deployment, r.DeploymentURL = "", ""
		r.Failure = "reading dagster_cloud.yaml: line 4: locations[0].location_name is required\n\nmore detail"
	})
	add("hostile", func(r *Report) {
		r.Deployment = "dep`|<b>x</b>\n@acme/team <!-- dagster-branch-deploy:x -->"
		r.DeploymentURL = "https://acme.dagster.cloud/" + r.Deployment
		r.Failure = "[x](javascript:alert(1)) @acme/team <!-- dagster-branch-deploy:x --> | `code` <script>alert(1)</script>\nsecond line"
		for i, h := range hostile {
			r.Locations = append(r.Locations, Location{Name: h, State: Loaded, Image: "r.example/" + h + ":t", Updated: t0})
			if i%3 == 0 {
				r.Set(h, Failed, h+"\n"+h+"\n```\n</details>\n````` ~~~\nend")
			}
		}
	})
	add("unsafe-urls", func(r *Report) {
		r.CommitSHA = "abc`def<!--0123456789"
		r.CommitURL = "javascript:alert(1)//github.com/acme/data/commit/abc"
		r.RunURL = "https://github.com/acme/data/actions/runs/42 \"onmouseover=alert(1)"
		r.DeploymentURL = "https://acme.dagster.cloud/x)(y"
		r.Failure = "deploying: 500"
		r.Set("etl", Loaded, "")
	})
	add("brackets", func(r *Report) {
		r.Deployment = "a]b[c`](https://evil.example/)"
		r.DeploymentURL = "https://acme.dagster.cloud/a]b[c"
		r.Set("etl", Loaded, "")
	})
	add("size-limited", func(r *Report) {
		for i := range 12 {
			name := fmt.Sprintf("location_%02d", i)
			r.Locations = append(r.Locations, Location{Name: name, State: Deployed, Image: "ghcr.io/acme/" + name + ":ec26c3e", Updated: t0})
			r.Set(name, Failed, logOf(name, 20000))
		}
	})
	add("size-limited-rows", func(r *Report) {
		for i := range 400 {
			name := fmt.Sprintf("location_%03d_%s", i, strings.Repeat("x", 80))
			r.Locations = append(r.Locations, Location{Name: name, State: Loaded, Image: "ghcr.io/acme/" + name + ":ec26c3e", Updated: t0})
		}
		r.Set("location_007_"+strings.Repeat("x", 80), Failed, logOf("seven", 100))
	})
	return out
}

// logOf is n numbered lines of a build log, its last line "<name>: the end".
func logOf(name string, n int) string {
	var b strings.Builder
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "#%d %s: step %d of a long build log\n", i, name, i)
	}
	b.WriteString(name + ": the end")
	return b.String()
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, sc := range scenarios() {
		for _, kind := range []string{"comment", "summary"} {
			var got string
			if kind == "comment" {
				got = sc.r.Comment(testMarker)
			} else {
				got = sc.r.Summary()
			}
			name := sc.name + "." + kind
			checkMarkdown(t, name, got, kind == "comment")
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/report -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run go test ./internal/report -update and review the diff):\n%s", name, path, got)
			}
		}
	}
}

// checkMarkdown checks what the renderer promises of s: at most DefaultMaxBytes;
// for a comment, one marker and at its end; no other "<!--" or "-->"; every
// code block closed by its own fence; every table row of four cells; every
// backtick run outside code blocks and HTML lines closed by one of the same
// length (so no code span is left open or closed early); details balanced.
func checkMarkdown(t *testing.T, name, s string, comment bool) {
	t.Helper()
	if len(s) > DefaultMaxBytes {
		t.Errorf("%s: %d bytes, over %d", name, len(s), DefaultMaxBytes)
	}
	markers := 0
	if comment {
		markers = 1
		if !strings.HasSuffix(s, "\n"+testMarker+"\n") {
			t.Errorf("%s: does not end with the marker", name)
		}
	}
	if n := strings.Count(s, "<!--"); n != markers {
		t.Errorf("%s: %d occurrences of <!--, want %d", name, n, markers)
	}
	if n := strings.Count(s, "-->"); n != markers {
		t.Errorf("%s: %d occurrences of -->, want %d", name, n, markers)
	}
	fence, details := "", 0
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		where := fmt.Sprintf("%s line %d %q", name, i+1, line)
		switch {
		case fence != "":
			if strings.Trim(line, "`") == "" && len(line) >= len(fence) {
				fence = ""
			}
			continue
		case strings.HasPrefix(line, "```"):
			fence = line[:strings.IndexFunc(line, func(r rune) bool { return r != '`' })]
			if line != fence+"text" {
				t.Errorf("%s: code block without its info string", where)
			}
			continue
		case strings.HasPrefix(line, "<details>"):
			details++
			if !strings.HasSuffix(line, "</summary>") || strings.Count(line, "<") != 7 {
				t.Errorf("%s: not one line of our own tags", where)
			}
			continue
		case line == "</details>":
			details--
			continue
		case strings.HasPrefix(line, "<"):
			if line != testMarker && !strings.HasPrefix(line, "<sub>Posted by") {
				t.Errorf("%s: unexpected HTML line", where)
			}
			continue
		case strings.HasPrefix(line, "|"):
			cells := splitCells(line)
			if len(cells) != 6 || cells[0] != "" || cells[5] != "" {
				t.Errorf("%s: not a row of 4 cells: %q", where, cells)
			}
			for _, c := range cells {
				checkSpans(t, where, c)
			}
			continue
		}
		checkSpans(t, where, line)
	}
	if fence != "" {
		t.Errorf("%s: code block left open", name)
	}
	if details != 0 {
		t.Errorf("%s: %d details blocks left open", name, details)
	}
}

// splitCells splits a table row on pipes not escaped by a backslash, as GFM
// does.
func splitCells(line string) []string {
	var cells []string
	start := 0
	for i := 0; i < len(line); i++ {
		if line[i] == '|' && (i == 0 || line[i-1] != '\\') {
			cells = append(cells, line[start:i])
			start = i + 1
		}
	}
	return append(cells, line[start:])
}

// checkSpans checks that each backtick string in text opens a code span
// that a backtick string of the same length closes, as CommonMark pairs
// them; one without a partner would show as literal backticks.
func checkSpans(t *testing.T, where, text string) {
	t.Helper()
	runAt := func(i int) int {
		n := 0
		for i+n < len(text) && text[i+n] == '`' {
			n++
		}
		return n
	}
	for i := 0; i < len(text); {
		if text[i] != '`' {
			i++
			continue
		}
		n := runAt(i)
		j := i + n
		for j < len(text) {
			if text[j] != '`' {
				j++
				continue
			}
			m := runAt(j)
			if m == n {
				break
			}
			j += m
		}
		if j >= len(text) {
			t.Errorf("%s: backtick string of %d at byte %d is not closed", where, n, i)
			return
		}
		i = j + n
	}
}

// TestGoldenHTML renders the goldens with cmark-gfm, GitHub's Markdown
// parser, when it is installed (apt-get install cmark-gfm), and checks the
// HTML: tables of four columns, details closed, no HTML, links or mentions
// made of the values shown.
func TestGoldenHTML(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("cmark-gfm")
	if err != nil {
		t.Skip("cmark-gfm is not installed")
	}
	codeOrPre := regexp.MustCompile(`(?s)<pre[^>]*>.*?</pre>|<code>.*?</code>`)
	href := regexp.MustCompile(`href="([^"]*)"`)
	for _, sc := range scenarios() {
		md := sc.r.Comment(testMarker)
		cmd := exec.Command(bin, "--unsafe", "-e", "table", "-e", "autolink", "-e", "strikethrough", "-e", "tagfilter")
		cmd.Stdin = strings.NewReader(md)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: cmark-gfm: %v", sc.name, err)
		}
		html := string(out)
		if n := strings.Count(html, "<table>"); n > 1 || (n == 1) != (len(sc.r.Locations) > 0) {
			t.Errorf("%s: %d tables", sc.name, n)
		}
		for _, tr := range strings.Split(html, "<tr>")[1:] {
			if c := strings.Count(tr, "<td") + strings.Count(tr, "<th"); c != 4 {
				t.Errorf("%s: a table row of %d cells: %s", sc.name, c, tr)
			}
		}
		if strings.Count(html, "<details>") != strings.Count(html, "</details>") {
			t.Errorf("%s: details not balanced", sc.name)
		}
		for _, m := range href.FindAllStringSubmatch(html, -1) {
			if !strings.HasPrefix(m[1], "https://github.com/acme/data/") && !strings.HasPrefix(m[1], "https://gitlab.example/acme/data/") && !strings.HasPrefix(m[1], "https://acme.dagster.cloud/") {
				t.Errorf("%s: a link to %q", sc.name, m[1])
			}
		}
		// What is left outside code is ours: no value's words in it.
		rest := codeOrPre.ReplaceAllString(html, "")
		rest = strings.Replace(rest, testMarker, "", 1)
		for _, bad := range []string{"<script", "<img", "<b>", "<!--", "-->", "javascript", "@acme", "evil", "#1", ":shipit:", "<strong>bold", "<em>", "<del>", "\u202e"} {
			if strings.Contains(rest, bad) {
				t.Errorf("%s: %q outside code in the HTML:\n%s", sc.name, bad, rest)
			}
		}
		if sc.name == "hostile" {
			// The values are all there, as code.
			if n := strings.Count(html, "<tr>"); n != len(hostile)+1 {
				t.Errorf("hostile: %d table rows, want %d", n, len(hostile)+1)
			}
			for _, want := range []string{
				"<code>tick`s``here`</code>", "<code>pipe|name||</code>", "<code>new␤line␤name␤x</code>",
				"<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>", "<code>[x](javascript:alert(1))</code>",
				"<code>@acme/team please look</code>", "<code>`</code>",
				"<code>&lt;/code&gt;&lt;/summary&gt;&lt;/details&gt;&lt;img src=x onerror=alert(1)&gt;</code>",
			} {
				if !strings.Contains(html, want) {
					t.Errorf("hostile: HTML lacks %q", want)
				}
			}
		}
	}
}
