package report

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// No value shown can make a second marker, or any "<!--" or "-->", which
// the comment finder or GitHub's HTML could take for one.
func TestMarkerOnlyOnce(t *testing.T) {
	t.Parallel()
	const m = "<!-- dagster-branch-deploy:x -->"
	r := base()
	r.Deployment = m
	r.DeploymentURL = "https://acme.dagster.cloud/" + m
	r.CommitSHA = m
	r.CommitURL = m
	r.RunURL = m
	r.Failure = m
	r.Locations = []Location{{Name: m, State: Deployed, Image: m, Digest: m, Updated: t0}}
	r.Set(m, Failed, m)
	c := r.Comment(testMarker)
	if n := strings.Count(c, "<!--"); n != 1 {
		t.Errorf("%d occurrences of <!-- in\n%s", n, c)
	}
	if n := strings.Count(c, "-->"); n != 1 {
		t.Errorf("%d occurrences of --> in\n%s", n, c)
	}
	if !strings.HasSuffix(c, "\n"+testMarker+"\n") || strings.Contains(c, "dagster-branch-deploy:x -->") {
		t.Errorf("comment:\n%s", c)
	}
	if s := r.Summary(); strings.Contains(s, "<!--") || strings.Contains(s, "-->") {
		t.Errorf("summary:\n%s", s)
	}
	checkMarkdown(t, "marker", c, true)
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	failedWith := func(n int, errText func(i int) string) *Report {
		r := base()
		for i := range n {
			name := fmt.Sprintf("location_%04d", i)
			r.Locations = append(r.Locations, Location{Name: name, State: Deployed, Image: "ghcr.io/acme/" + name + ":ec26c3e", Updated: t0})
			r.Set(name, Failed, errText(i))
		}
		return r
	}
	tests := []struct {
		name string
		r    *Report
		want []string // in the comment and the summary
		min  int      // bytes the comment fills at least
	}{
		{
			name: "one location, 1 MB of error output",
			r:    failedWith(1, func(int) string { return logOf("big", 1<<20/40) }),
			want: []string{
				"lines (1.0 MiB) before them were cut",
				"before them were cut. The full output is in the [run log](https://github.com/acme/data/actions/runs/42).",
				"big: the end\n```\n</details>",
			},
		},
		{
			name: "50 locations, 100 KB of error output each",
			r:    failedWith(50, func(i int) string { return logOf(fmt.Sprint("loc", i), 100<<10/40) }),
			want: []string{"before them were cut. The full output is in the [run log]", "loc49: the end\n```\n</details>"},
			min:  DefaultMaxBytes - 2000,
		},
		{
			name: "300 locations, 10 KB of error output each",
			r:    failedWith(300, func(i int) string { return logOf(fmt.Sprint("loc", i), 10<<10/40) }),
			want: []string{"The error output of 300 failed locations is left out to keep this under GitHub's size limit; see the [run log](https://github.com/acme/data/actions/runs/42)."},
		},
		{
			name: "2,000 locations with long names",
			r: func() *Report {
				r := base()
				for i := range 2000 {
					name := fmt.Sprintf("%04d_%s", i, strings.Repeat("long_location_name_", 10))
					r.Locations = append(r.Locations, Location{Name: name, State: Loaded, Image: "ghcr.io/acme/" + strings.Repeat("x", 300) + ":t", Updated: t0})
				}
				r.Set("1999_"+strings.Repeat("long_location_name_", 10), Failed, "boom")
				return r
			}(),
			want: []string{
				"more locations (1 failed); see the [run log](https://github.com/acme/data/actions/runs/42). They are left out to keep this under GitHub's size limit.",
				"The error output of 1 failed location is left out",
			},
			min: DefaultMaxBytes - 2000,
		},
	}
	for _, tc := range tests {
		c, s := tc.r.Comment(testMarker), tc.r.Summary()
		checkMarkdown(t, tc.name+" comment", c, true)
		checkMarkdown(t, tc.name+" summary", s, false)
		for _, want := range tc.want {
			if !strings.Contains(c, want) || !strings.Contains(s, want) {
				t.Errorf("%s: lacks %q", tc.name, want)
			}
		}
		if len(c) < tc.min || len(s) < tc.min {
			t.Errorf("%s: %d and %d bytes, want at least %d: shortened more than needed", tc.name, len(c), len(s), tc.min)
		}
	}
	// 50 × 100 KB keeps every location's details, shortened alike.
	c := tests[1].r.Comment(testMarker)
	if n := strings.Count(c, "<details>"); n != 50 {
		t.Errorf("50 locations: %d details blocks", n)
	}
	// 2,000 rows: the table keeps the first rows, in order.
	c = tests[3].r.Comment(testMarker)
	if !strings.Contains(c, "| `0000_long") || strings.Contains(c, "| `1999_long") {
		t.Error("2,000 locations: not the first rows kept")
	}
}

// A huge marker (never ours) still ends the comment.
func TestSizeLimitHugeMarker(t *testing.T) {
	t.Parallel()
	r := base()
	r.Set("etl", Failed, "boom")
	marker := "<!-- dagster-branch-deploy:" + strings.Repeat("k", DefaultMaxBytes) + " -->"
	if c := r.Comment(marker); !strings.HasSuffix(c, marker+"\n") || !strings.Contains(c, "The report is too long to show") {
		t.Errorf("comment: %.300s", c)
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	r := base()
	r.Set("etl", Building, "")
	r.SetAll(Loaded)
	if got := r.Location("etl").Updated; !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("Updated = %v", got)
	}
	if got := r.Timestamp(); !got.Equal(t0.Add(2*time.Minute)) || got.Location() != time.UTC {
		t.Errorf("Timestamp() = %v", got)
	}
	r.Now = nil
	if got := r.Timestamp(); time.Since(got) > time.Minute {
		t.Errorf("Timestamp() without Now = %v", got)
	}
	// A row nobody stamped shows no time rather than year 1.
	r.Locations = append(r.Locations, Location{Name: "new", State: Building})
	if c := r.Comment(testMarker); !strings.Contains(c, "| `new` | ⏳ building | – | – |") {
		t.Errorf("comment:\n%s", c)
	}
}

func FuzzComment(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, h, h, h, h, h)
	}
	f.Add("etl", "r.example/etl:abc", "step 2/3 failed:\nboom ``` <script>", "building etl", "8f1d2c3b4a59", "https://github.com/o/r/actions/runs/1")
	f.Add("a\\", "|`|", "```` \r\n<!---->", "-->", "\u2028", "https://x.example/a|b")
	f.Fuzz(func(t *testing.T, name, image, errText, failure, deployment, runURL string) {
		r := base()
		r.Deployment, r.DeploymentURL, r.RunURL, r.Failure = deployment, "https://acme.dagster.cloud/"+deployment, runURL, failure
		r.Locations = []Location{
			{Name: name, State: Deployed, Image: image, Updated: t0},
			{Name: name + "2", State: Loaded, Image: image, Updated: t0},
		}
		r.Set(name, Failed, errText)
		checkMarkdown(t, "comment", r.Comment(testMarker), true)
		checkMarkdown(t, "summary", r.Summary(), false)
	})
}
