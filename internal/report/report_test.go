package report

import (
	"strings"
	"testing"
	"time"
)

func sample() *Report {
	t0 := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	return &Report{
		Deployment:    "8f1d2c3b4a59",
		DeploymentURL: "https://acme.dagster.cloud/8f1d2c3b4a59",
		Branch:        true,
		CommitSHA:     "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		CommitURL:     "https://github.com/o/r/commit/ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		RunURL:        "https://github.com/o/r/actions/runs/42",
		Now:           func() time.Time { return t0.Add(5 * time.Minute) },
		Locations: []Location{
			{Name: "etl", State: Loaded, Image: "r.example/etl:abc", Digest: "sha256:0123", Updated: t0},
			{Name: "ml", State: Building, Image: "r.example/ml:abc", Updated: t0},
		},
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Report)
		want string
	}{
		{"building", func(*Report) {}, "building"},
		{"pushed, not deployed yet", func(r *Report) { r.SetAll(Pushed) }, "building"},
		{"built only", func(r *Report) { r.SetAll(Built) }, "built"},
		{"success", func(r *Report) { r.SetAll(Loaded) }, "success"},
		{"location failed", func(r *Report) { r.Set("ml", Failed, "boom") }, "failed"},
		{"run failed", func(r *Report) { r.SetAll(Loaded); r.Failure = "x" }, "failed"},
		{"merged", func(r *Report) { r.PullRequestStatus = "MERGED"; r.SetAll(Closed) }, "merged"},
		{"closed", func(r *Report) { r.PullRequestStatus = "CLOSED"; r.SetAll(Closed) }, "closed"},
		{"skipped", func(r *Report) { r.Locations = nil; r.Skipped = "a fork" }, "skipped"},
		{"deleted", func(r *Report) { r.PullRequestStatus = "MERGED"; r.Deleted = true; r.SetAll(Deleted) }, "deleted"},
		{"dry run", func(r *Report) { r.SetAll(Built); r.DryRun = &DryRun{} }, "dry-run"},
		{"dry run that failed", func(r *Report) { r.DryRun = &DryRun{}; r.Set("ml", Failed, "boom") }, "failed"},
	}
	for _, tc := range tests {
		r := sample()
		tc.mod(r)
		if got := r.Status(); got != tc.want {
			t.Errorf("%s: Status() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCommentContents(t *testing.T) {
	t.Parallel()
	r := sample()
	r.Set("ml", Failed, "step 2/3 failed:\nboom ``` <script>")
	r.Failure = "building ml: boom | here"
	c := r.Comment(testMarker)
	for _, want := range []string{
		"### ❌ Dagster+ branch deployment [`8f1d2c3b4a59`](https://acme.dagster.cloud/8f1d2c3b4a59/locations)",
		"[`ec26c3e57ca3`](https://github.com/o/r/commit/ec26c3e57ca3a959ca5aad62de7213c562f8c821)",
		"| `etl` | ✅ loaded | `r.example/etl:abc@sha256:0123` | Nov 26, 2026 09:30 UTC |",
		"| `ml` | ❌ failed | `r.example/ml:abc` | Nov 26, 2026 09:35 UTC |",
		"**Deploy failed:** `building ml: boom | here` ([see the run log](https://github.com/o/r/actions/runs/42))",
		"<summary><code>ml</code>: <code>step 2/3 failed</code></summary>",
		"<!-- dagster-branch-deploy:dagster_cloud.yaml -->",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
	// The error text's ``` cannot close its block: the fence is longer.
	if !strings.Contains(c, "\n````text\nstep 2/3 failed:\nboom ``` <script>\n````\n</details>") {
		t.Error("error text is not in a code block with a longer fence")
	}
	if r.ImagesJSON() != `{"etl":"r.example/etl:abc@sha256:0123","ml":"r.example/ml:abc"}` {
		t.Errorf("images = %s", r.ImagesJSON())
	}

	closed := sample()
	closed.PullRequestStatus = "MERGED"
	closed.SetAll(Closed)
	if s := closed.Summary(); !strings.Contains(s, "marked **merged**") || !strings.Contains(s, "🔒 closed") {
		t.Errorf("closed summary:\n%s", s)
	}
}
