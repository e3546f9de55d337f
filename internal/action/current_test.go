package action

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/githubemu"
)

const (
	ourSHA   = "ec26c3e57ca3a959ca5aad62de7213c562f8c821" // the fixtures' head
	newerSHA = "1111111111111111111111111111111111111111"
)

// seedBranch puts the pull request's branch deployment in Dagster+ as an
// earlier (or concurrent) run left it.
func seedBranch(t *testing.T, h *harness, sha string, at time.Time, status string) {
	t.Helper()
	c := dagster.New(h.env["INPUT_DAGSTER_CLOUD_URL"], "dg-token-1234")
	_, err := c.CreateOrUpdateBranchDeployment(context.Background(),
		dagster.BranchData{RepoName: "Codertocat/Hello-World", BranchName: "changes", PullRequestStatus: status, PullRequestNumber: "2"},
		dagster.Commit{CommitHash: sha, Timestamp: float64(at.Unix())}, "prod")
	if err != nil {
		t.Fatal(err)
	}
}

func branchCommit(t *testing.T, h *harness) (string, string) {
	t.Helper()
	for _, d := range h.dagster.Deployments() {
		if d.BranchName == "changes" {
			return d.Commit.CommitHash, d.PullRequestStatus
		}
	}
	t.Fatal("no branch deployment")
	return "", ""
}

func useEvent(t *testing.T, h *harness, name string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, h.env["GITHUB_EVENT_PATH"], string(raw))
}

// TestNeverOlderOverNewer: a run whose commit is older than what the
// branch deployment already shows changes nothing, unless GitHub says its
// commit is the pull request's head (a force-push back to an older
// commit); a closing run does not close a reopened pull request's
// deployment, and a late run does not reopen a closed one.
func TestNeverOlderOverNewer(t *testing.T) {
	t.Parallel()
	later := time.Now()
	tests := []struct {
		name       string
		event      string
		seedSHA    string
		seedStatus string
		pr         *githubemu.PullRequest // GitHub's view now; nil: none
		noToken    bool
		wantSHA    string
		wantStatus string
		superseded string // in the notice; "" when the run writes
	}{
		{"newer commit deployed, head moved on", "pull_request.opened.json", newerSHA, "OPEN", &githubemu.PullRequest{HeadSHA: newerSHA}, false, newerSHA, "OPEN", "is now at commit 111111111111, not this run's ec26c3e57ca3"},
		{"newer commit deployed, but ours is the head (force-push back)", "pull_request.opened.json", newerSHA, "OPEN", &githubemu.PullRequest{HeadSHA: ourSHA}, false, ourSHA, "OPEN", ""},
		{"newer commit deployed, no GitHub token", "pull_request.opened.json", newerSHA, "OPEN", nil, true, newerSHA, "OPEN", "GitHub Actions could not say whether this run's commit ec26c3e57ca3 is still the request's head (github_token is empty"},
		{"closed by a later run", "pull_request.opened.json", ourSHA, "CLOSED", &githubemu.PullRequest{HeadSHA: ourSHA, State: "closed"}, false, ourSHA, "CLOSED", "pull request #2 is closed"},
		{"reopened after closing", "pull_request.opened.json", ourSHA, "CLOSED", &githubemu.PullRequest{HeadSHA: ourSHA}, false, ourSHA, "OPEN", ""},
		{"same commit again", "pull_request.opened.json", ourSHA, "OPEN", nil, false, ourSHA, "OPEN", ""},
		{"close after a reopen", "pull_request.closed.json", ourSHA, "OPEN", &githubemu.PullRequest{HeadSHA: ourSHA}, false, ourSHA, "OPEN", "pull request #2 is open again"},
		{"close", "pull_request.closed.json", ourSHA, "OPEN", &githubemu.PullRequest{HeadSHA: ourSHA, State: "closed"}, false, ourSHA, "CLOSED", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inputs := map[string]string{}
			if tc.noToken {
				inputs["github_token"] = ""
			}
			h := newHarness(t, inputs)
			if tc.noToken {
				delete(h.env, "INPUT_GITHUB_TOKEN")
			}
			useEvent(t, h, tc.event)
			seedBranch(t, h, tc.seedSHA, later, tc.seedStatus)
			if tc.pr != nil {
				h.github.SetPullRequest("Codertocat", "Hello-World", 2, *tc.pr)
			}
			if err := h.run(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, h.out.String())
			}
			sha, status := branchCommit(t, h)
			if sha != tc.wantSHA || status != tc.wantStatus {
				t.Errorf("branch deployment at %s %s, want %s %s", sha, status, tc.wantSHA, tc.wantStatus)
			}
			outputs := readFile(t, h.env["GITHUB_OUTPUT"])
			if tc.superseded == "" {
				if strings.Contains(outputs, "superseded") {
					t.Errorf("status superseded:\n%s", outputs)
				}
				return
			}
			// A close changes nothing; a deploy found out of date while its
			// images built pushed them, and deployed nothing.
			want := "::notice::This run is out of date and deployed nothing (its images were pushed): "
			if tc.event == "pull_request.closed.json" {
				want = "::notice::This run is out of date and changed nothing: "
			}
			if !strings.Contains(h.out.String(), want) || !strings.Contains(h.out.String(), tc.superseded) {
				t.Errorf("no notice saying %q:\n%s", tc.superseded, h.out.String())
			}
			if !strings.Contains(outputs, "status<<_GitHubActionsFileCommandDelimeter_\nsuperseded\n") {
				t.Errorf("outputs:\n%s", outputs)
			}
			if n := len(h.github.Comments("Codertocat", "Hello-World", 2)); tc.event == "pull_request.closed.json" && n != 0 {
				t.Errorf("a superseded close wrote %d comments", n)
			}
		})
	}
}

// TestNewerCommentStopsTheRun: a run that finds the comment already written
// by a later run builds and deploys nothing.
func TestNewerCommentStopsTheRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.github.AddComment("Codertocat", "Hello-World", 2, "bot", "newer\n<!-- dagster-branch-deploy-run: commit="+newerSHA+" run=10 attempt=1 written=2026-12-02T09:00:00Z -->\n<!-- dagster-branch-deploy:dagster_cloud.yaml -->\n")
	if err := h.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(h.docker.specs) != 0 || len(h.dagster.Deployments()) != 1 {
		t.Errorf("built %d, deployments %d", len(h.docker.specs), len(h.dagster.Deployments()))
	}
	if !strings.Contains(readFile(t, h.env["GITHUB_OUTPUT"]), "\nsuperseded\n") || !strings.Contains(h.out.String(), "::notice::This run is out of date") {
		t.Errorf("outputs:\n%s\nlog:\n%s", readFile(t, h.env["GITHUB_OUTPUT"]), h.out.String())
	}
	if c := h.comment(t); !strings.HasPrefix(c, "newer\n") {
		t.Errorf("the newer run's comment was changed:\n%s", c)
	}
}

// TestNewerRunDuringTheBuild: a newer run of the pull request updates the
// branch deployment after this run did and while this run's images build;
// this run then deploys nothing (its older images would replace the newer
// run's locations) and says it is out of date. The newer run's commit may be
// older in time (a force-push back to an earlier commit): the pull request's
// head decides.
func TestNewerRunDuringTheBuild(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		at   time.Time // the other run's commit time; this run's is 2019-05-15
	}{
		{"a later commit", time.Now().Add(time.Hour)},
		{"a force-push back to an earlier commit", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			var once sync.Once
			h.docker.onBuild = func() {
				once.Do(func() {
					// Wait for this run's own update of the branch deployment, then
					// play the newer run: its commit in Dagster+ and as GitHub's head.
					deadline := time.Now().Add(30 * time.Second)
					for {
						if d := branchDeployment(h); d != nil && d.Commit.CommitHash == ourSHA {
							break
						}
						if time.Now().After(deadline) {
							t.Error("this run never updated the branch deployment")
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
					seedBranch(t, h, newerSHA, tc.at, "OPEN")
					h.github.SetPullRequest("Codertocat", "Hello-World", 2, githubemu.PullRequest{HeadSHA: newerSHA})
				})
			}
			if err := h.run(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, h.out.String())
			}
			if sha, _ := branchCommit(t, h); sha != newerSHA {
				t.Errorf("branch deployment at %s, want the newer run's %s", sha, newerSHA)
			}
			for _, r := range h.dagster.Requests() {
				if r.Operation == "CliDeployLocations" {
					t.Errorf("this run deployed its locations over the newer run's")
				}
			}
			if !strings.Contains(h.out.String(), "::notice::This run is out of date and deployed nothing (its images were pushed): branch deployment") || !strings.Contains(h.out.String(), "is now at commit 111111111111, not this run's ec26c3e57ca3") {
				t.Errorf("no superseded notice:\n%s", h.out.String())
			}
			if s := readFile(t, h.env["GITHUB_STEP_SUMMARY"]); !strings.Contains(s, "is out of date, so the run deployed nothing (its images were pushed)") || !strings.Contains(s, "📦 pushed") {
				t.Errorf("summary:\n%s", s)
			}
			if !strings.Contains(readFile(t, h.env["GITHUB_OUTPUT"]), "\nsuperseded\n") {
				t.Errorf("outputs:\n%s", readFile(t, h.env["GITHUB_OUTPUT"]))
			}
		})
	}
}

func branchDeployment(h *harness) *dagsteremu.Deployment {
	for _, d := range h.dagster.Deployments() {
		if d.BranchName == "changes" {
			return &d
		}
	}
	return nil
}
