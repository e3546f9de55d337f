package action

import (
	"context"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/githubemu"
)

// branchMutations returns the variables of every createOrUpdateBranchDeployment
// the run sent (the seeding in other tests goes through the same emulator,
// so tests here seed nothing).
func branchMutations(t *testing.T, h *harness) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range h.dagster.Requests() {
		if r.Operation == "CliCreateOrUpdateBranchDeployment" {
			out = append(out, r.Variables)
		}
	}
	return out
}

// hasNull reports whether m has key, set to JSON null (sent, not omitted).
func hasNull(m map[string]any, key string) bool {
	v, ok := m[key]
	return ok && v == nil
}

// TestCloseSendsWhatUpstreamSends: marking the branch deployment CLOSED
// or MERGED sends baseDeploymentName and commitUrl as null, as upstream's
// `ci branch-deployment` does; the deploy sends the base deployment and
// the commit's address.
func TestCloseSendsWhatUpstreamSends(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, event, status string
		merged              bool
	}{
		{"closed", "pull_request.closed.json", "CLOSED", false},
		{"merged", "pull_request.closed.json", "MERGED", true},
		{"opened", "pull_request.opened.json", "OPEN", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			useEvent(t, h, tc.event)
			if tc.merged {
				path := h.env["GITHUB_EVENT_PATH"]
				writeTestFile(t, path, strings.Replace(readFile(t, path), `"merged": false`, `"merged": true`, 1))
			}
			if err := h.run(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, h.out.String())
			}
			muts := branchMutations(t, h)
			if len(muts) != 1 {
				t.Fatalf("%d createOrUpdateBranchDeployment calls", len(muts))
			}
			v := muts[0]
			commit, _ := v["commit"].(map[string]any)
			branch, _ := v["branchData"].(map[string]any)
			if branch["pullRequestStatus"] != tc.status || commit["commitHash"] != ourSHA {
				t.Errorf("branchData %v, commit %v", branch, commit)
			}
			if tc.status == "OPEN" {
				if v["baseDeploymentName"] != "prod" || commit["commitUrl"] != "https://github.com/Codertocat/Hello-World/commit/"+ourSHA {
					t.Errorf("deploy: baseDeploymentName %v, commitUrl %v", v["baseDeploymentName"], commit["commitUrl"])
				}
				return
			}
			if !hasNull(v, "baseDeploymentName") || !hasNull(commit, "commitUrl") {
				t.Errorf("close: baseDeploymentName %#v, commitUrl %#v; want both null", v["baseDeploymentName"], commit["commitUrl"])
			}
			// Dagster+ keeps the base deployment it has.
			for _, d := range h.dagster.Deployments() {
				if d.BranchName == "changes" && (d.BaseDeploymentName != "prod" || d.PullRequestStatus != tc.status) {
					t.Errorf("deployment = %+v", d)
				}
			}
		})
	}
}

// TestCommitFromCheckout: when the checkout holds the pull request's head,
// the commit's own author, time, subject and the author's avatar reach
// Dagster+ from git (go-git: the image has no git binary), without asking
// the GitHub API.
func TestCommitFromCheckout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	repo, err := git.PlainInit(h.env["GITHUB_WORKSPACE"], false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	author := object.Signature{Name: "Mona Lisa", Email: "583231+mona@users.noreply.github.com", When: time.Unix(1700000000, 0)}
	committer := object.Signature{Name: "Jane Doe", Email: "jane@example.com", When: time.Unix(1700000600, 0)}
	head, err := wt.Commit("Add the sensors\nand the schedules\n\nLonger body.\n", &git.CommitOptions{Author: &author, Committer: &committer, AllowEmptyCommits: true})
	if err != nil {
		t.Fatal(err)
	}
	path := h.env["GITHUB_EVENT_PATH"]
	writeTestFile(t, path, strings.ReplaceAll(readFile(t, path), ourSHA, head.String()))

	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	muts := branchMutations(t, h)
	if len(muts) != 1 {
		t.Fatalf("%d createOrUpdateBranchDeployment calls", len(muts))
	}
	commit, _ := muts[0]["commit"].(map[string]any)
	want := map[string]any{
		"commitHash":      head.String(),
		"timestamp":       float64(1700000600), // the committer's time, as %ct
		"commitMessage":   "Add the sensors and the schedules",
		"commitUrl":       "https://github.com/Codertocat/Hello-World/commit/" + head.String(),
		"authorName":      "Mona Lisa",
		"authorEmail":     "583231+mona@users.noreply.github.com",
		"authorAvatarUrl": "https://avatars.githubusercontent.com/u/583231?v=4",
	}
	for k, v := range want {
		if commit[k] != v {
			t.Errorf("commit.%s = %#v, want %#v", k, commit[k], v)
		}
	}
	for _, c := range h.github.Calls() {
		if strings.Contains(c.Path, "/commits/") {
			t.Errorf("asked the GitHub API for the commit: %s %s", c.Method, c.Path)
		}
	}
}

// TestCommitFromAPI: when the checkout does not hold the commit, the
// GitHub API's commit is used, with its author's avatar.
func TestCommitFromAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.github.AddCommit("Codertocat", "Hello-World", githubemu.Commit{
		SHA: ourSHA, Message: "Add assets\n\nBody", AuthorName: "Jane Doe", AuthorEmail: "jane@example.com",
		AuthorLogin: "jane", AvatarURL: "https://avatars.example/jane", Date: time.Unix(1700000000, 0).UTC(),
	})
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	muts := branchMutations(t, h)
	if len(muts) != 1 {
		t.Fatalf("%d createOrUpdateBranchDeployment calls", len(muts))
	}
	commit, _ := muts[0]["commit"].(map[string]any)
	if commit["commitMessage"] != "Add assets" || commit["authorName"] != "Jane Doe" || commit["authorAvatarUrl"] != "https://avatars.example/jane" {
		t.Errorf("commit = %v", commit)
	}
}
