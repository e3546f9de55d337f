package gitlab

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/gitlabemu"
)

var (
	shaA = strings.Repeat("a", 40) // the merge request's head
	shaM = strings.Repeat("e", 40) // a merged results pipeline's merge commit
)

const web = "https://gitlab.example.com/acme/data/platform"

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// mrEnv is what GitLab sets in a (detached) merge request pipeline's job.
func mrEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"GITLAB_CI":                           "true",
		"CI":                                  "true",
		"CI_SERVER_URL":                       "https://gitlab.example.com",
		"CI_API_V4_URL":                       "https://gitlab.example.com/api/v4",
		"CI_PROJECT_ID":                       "42",
		"CI_PROJECT_NAME":                     "platform",
		"CI_PROJECT_PATH":                     projectPath,
		"CI_PROJECT_URL":                      web,
		"CI_PROJECT_DIR":                      "/builds/acme/data/platform",
		"CI_DEFAULT_BRANCH":                   "main",
		"CI_PIPELINE_SOURCE":                  "merge_request_event",
		"CI_PIPELINE_ID":                      "1234567",
		"CI_PIPELINE_URL":                     web + "/-/pipelines/1234567",
		"CI_JOB_ID":                           "98765432",
		"CI_JOB_TOKEN":                        jobToken,
		"CI_COMMIT_SHA":                       shaA,
		"CI_COMMIT_REF_NAME":                  "feature/x",
		"CI_COMMIT_TIMESTAMP":                 "2026-03-01T10:00:00+01:00",
		"CI_COMMIT_MESSAGE":                   "Add assets\n\nBody\n",
		"CI_COMMIT_AUTHOR":                    "Jane Doe <jane@example.com>",
		"CI_MERGE_REQUEST_IID":                "7",
		"CI_MERGE_REQUEST_ID":                 "99000007",
		"CI_MERGE_REQUEST_PROJECT_ID":         "42",
		"CI_MERGE_REQUEST_PROJECT_PATH":       projectPath,
		"CI_MERGE_REQUEST_PROJECT_URL":        web,
		"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/x",
		"CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
		"CI_MERGE_REQUEST_TITLE":              "Add assets: the merge request",
		"CI_MERGE_REQUEST_EVENT_TYPE":         "detached",
	}
}

// pushEnv is a push pipeline's job on the default branch.
func pushEnv(t *testing.T) map[string]string {
	env := mrEnv(t)
	for k := range env {
		if strings.HasPrefix(k, "CI_MERGE_REQUEST_") {
			delete(env, k)
		}
	}
	env["CI_PIPELINE_SOURCE"] = "push"
	env["CI_COMMIT_BRANCH"] = "main"
	env["CI_COMMIT_REF_NAME"] = "main"
	return env
}

func readContext(t *testing.T, env map[string]string, opts Options, projectDir string) (*cicontext.Context, string, error) {
	t.Helper()
	var log bytes.Buffer
	p := NewCI(mapEnv(env), &bytes.Buffer{}, &log, nil, opts)
	c, err := p.Context(context.Background(), projectDir)
	return c, log.String(), err
}

func TestContext(t *testing.T) {
	t.Parallel()
	jan := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		base    func(*testing.T) map[string]string
		set     map[string]string
		unset   []string
		wantErr string
		check   func(*testing.T, *cicontext.Context)
	}{
		{name: "merge request pipeline", base: mrEnv, check: func(t *testing.T, c *cicontext.Context) {
			want := cicontext.Context{
				EventName: "merge_request_event", Action: "detached", Mode: cicontext.ModeBranch,
				RepoName: projectPath, Branch: "feature/x", Request: "merge request",
				PullRequestNumber: 7, PullRequestURL: web + "/-/merge_requests/7", PullRequestStatus: cicontext.StatusOpen,
				Commit: cicontext.Commit{SHA: shaA, Timestamp: jan, Message: "Add assets\n\nBody", AuthorName: "Jane Doe", AuthorEmail: "jane@example.com", From: cicontext.FromEvent},
				RunID:  "1234567", RunAttempt: "98765432",
				RepoURL: web, BranchURL: web + "/-/tree/feature/x", CommitURL: web + "/-/commit/" + shaA, TreeURL: web + "/-/tree/" + shaA,
				RunURL: web + "/-/pipelines/1234567",
			}
			if *c != want {
				t.Errorf("context\n got %+v\nwant %+v", *c, want)
			}
		}},
		{name: "merged results pipeline: the source branch's head, not the merge commit", base: mrEnv,
			set: map[string]string{"CI_MERGE_REQUEST_EVENT_TYPE": "merged_result", "CI_COMMIT_SHA": shaM, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": shaA},
			check: func(t *testing.T, c *cicontext.Context) {
				// CI_COMMIT_* describe the merge commit: the title stands in.
				if c.Commit != (cicontext.Commit{SHA: shaA, Message: "Add assets: the merge request", From: cicontext.FromEvent}) ||
					c.CommitURL != web+"/-/commit/"+shaA || c.Action != "merged_result" || c.Mode != cicontext.ModeBranch {
					t.Errorf("context %+v", c)
				}
			}},
		{name: "a merge request of the project's own branch", base: mrEnv,
			set: map[string]string{"CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "42", "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH": projectPath, "CI_MERGE_REQUEST_DRAFT": "false"},
			check: func(t *testing.T, c *cicontext.Context) {
				if c.Fork || c.Draft || c.HeadRepo != projectPath || c.Dependabot {
					t.Errorf("fork %v draft %v head %q", c.Fork, c.Draft, c.HeadRepo)
				}
			}},
		{name: "a merge request from a fork", base: mrEnv,
			set: map[string]string{"CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "77", "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH": "someone/platform"},
			check: func(t *testing.T, c *cicontext.Context) {
				if !c.Fork || c.HeadRepo != "someone/platform" || c.Mode != cicontext.ModeBranch {
					t.Errorf("fork %v head %q mode %s", c.Fork, c.HeadRepo, c.Mode)
				}
			}},
		{name: "a draft merge request", base: mrEnv, set: map[string]string{"CI_MERGE_REQUEST_DRAFT": "true"},
			check: func(t *testing.T, c *cicontext.Context) {
				if !c.Draft || c.Fork {
					t.Errorf("draft %v fork %v", c.Draft, c.Fork)
				}
			}},
		{name: "merge train pipeline", base: mrEnv, set: map[string]string{"CI_MERGE_REQUEST_EVENT_TYPE": "merge_train", "CI_COMMIT_SHA": shaM, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": shaA},
			check: func(t *testing.T, c *cicontext.Context) {
				if c.Commit.SHA != shaA || c.Mode != cicontext.ModeBranch {
					t.Errorf("context %+v", c)
				}
			}},
		{name: "merge request from another project's URL (a fork's pipeline in the parent)", base: mrEnv,
			set: map[string]string{"CI_MERGE_REQUEST_PROJECT_URL": "https://gitlab.example.com/acme/upstream/"},
			check: func(t *testing.T, c *cicontext.Context) {
				if c.PullRequestURL != "https://gitlab.example.com/acme/upstream/-/merge_requests/7" || c.RepoURL != web {
					t.Errorf("context %+v", c)
				}
			}},
		{name: "branch names are escaped in URLs", base: mrEnv, set: map[string]string{"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feat/a#b?c d"},
			check: func(t *testing.T, c *cicontext.Context) {
				if c.Branch != "feat/a#b?c d" || c.BranchURL != web+"/-/tree/feat/a%23b%3Fc%20d" {
					t.Errorf("branch %q, URL %q", c.Branch, c.BranchURL)
				}
			}},
		{name: "no job ID: attempt 1", base: mrEnv, unset: []string{"CI_JOB_ID", "CI_PIPELINE_URL"},
			check: func(t *testing.T, c *cicontext.Context) {
				if c.RunAttempt != "1" || c.RunURL != "" {
					t.Errorf("attempt %q, run URL %q", c.RunAttempt, c.RunURL)
				}
			}},
		{name: "project URL from the server URL", base: mrEnv, unset: []string{"CI_PROJECT_URL", "CI_MERGE_REQUEST_PROJECT_URL"},
			check: func(t *testing.T, c *cicontext.Context) {
				if c.RepoURL != web || c.PullRequestURL != web+"/-/merge_requests/7" {
					t.Errorf("context %+v", c)
				}
			}},
		{name: "push to the default branch", base: pushEnv, check: func(t *testing.T, c *cicontext.Context) {
			if c.Mode != cicontext.ModeFull || c.Branch != "main" || c.PullRequestNumber != 0 || c.PullRequestStatus != "" || c.EventName != "push" ||
				c.Commit.SHA != shaA || c.Commit.AuthorName != "Jane Doe" || c.BranchURL != web+"/-/tree/main" {
				t.Errorf("context %+v", c)
			}
		}},
		{name: "Run pipeline on the default branch", base: pushEnv, set: map[string]string{"CI_PIPELINE_SOURCE": "web"}, check: full},
		{name: "API pipeline", base: pushEnv, set: map[string]string{"CI_PIPELINE_SOURCE": "api"}, check: full},
		{name: "trigger token", base: pushEnv, set: map[string]string{"CI_PIPELINE_SOURCE": "trigger"}, check: full},
		{name: "multi-project pipeline", base: pushEnv, set: map[string]string{"CI_PIPELINE_SOURCE": "pipeline"}, check: full},
		{name: "child pipeline", base: pushEnv, set: map[string]string{"CI_PIPELINE_SOURCE": "parent_pipeline"}, check: full},

		// Unsupported pipelines.
		{name: "scheduled pipeline", base: pushEnv, set: map[string]string{"CI_PIPELINE_SOURCE": "schedule"}, wantErr: "scheduled pipelines are not supported"},
		{name: "push to another branch", base: pushEnv, set: map[string]string{"CI_COMMIT_BRANCH": "feature/x"}, wantErr: `a push pipeline on branch "feature/x" is not supported: only the default branch "main" deploys`},
		{name: "tag pipeline", base: pushEnv, set: map[string]string{"CI_COMMIT_TAG": "v1.0"}, unset: []string{"CI_COMMIT_BRANCH"}, wantErr: "tag pipelines (CI_COMMIT_TAG=v1.0) are not supported"},
		{name: "external pull request", base: pushEnv, set: map[string]string{"CI_PIPELINE_SOURCE": "external_pull_request_event"}, wantErr: `pipeline source "external_pull_request_event" is not supported; run the job in merge request pipelines`},
		{name: "chat", base: pushEnv, set: map[string]string{"CI_PIPELINE_SOURCE": "chat"}, wantErr: "is not supported"},
		{name: "no branch", base: pushEnv, unset: []string{"CI_COMMIT_BRANCH"}, wantErr: "CI_COMMIT_BRANCH is not set"},
		{name: "no default branch", base: pushEnv, unset: []string{"CI_DEFAULT_BRANCH"}, wantErr: "CI_DEFAULT_BRANCH is not set"},
		{name: "not GitLab CI", base: mrEnv, unset: []string{"CI_PIPELINE_SOURCE"}, wantErr: "does not look like a GitLab CI job"},
		{name: "no project path", base: mrEnv, unset: []string{"CI_PROJECT_PATH"}, wantErr: "CI_PROJECT_PATH is not set"},
		{name: "merge request pipeline without IID", base: mrEnv, unset: []string{"CI_MERGE_REQUEST_IID"}, wantErr: "CI_MERGE_REQUEST_IID is not set"},
		{name: "merge request pipeline without source branch", base: mrEnv, unset: []string{"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"}, wantErr: "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME is not set"},

		// Hostile values.
		{name: "forged commit SHA", base: mrEnv, set: map[string]string{"CI_COMMIT_SHA": "--output=/tmp/x"}, wantErr: `commit "--output=/tmp/x" is not a commit SHA`},
		{name: "forged source branch SHA", base: mrEnv, set: map[string]string{"CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": strings.ToUpper(shaA)}, wantErr: "is not a commit SHA"},
		{name: "newline in the branch name", base: mrEnv, set: map[string]string{"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature\n::error::x"}, wantErr: "is not a valid branch name"},
		{name: "escape in the branch name", base: pushEnv, set: map[string]string{"CI_COMMIT_BRANCH": "main\x1b[0K", "CI_DEFAULT_BRANCH": "main\x1b[0K"}, wantErr: "is not a valid branch name"},
		{name: "path traversal in the project path", base: mrEnv, set: map[string]string{"CI_PROJECT_PATH": "acme/../../etc"}, wantErr: "is not an owner/name"},
		{name: "IID that is not a number", base: mrEnv, set: map[string]string{"CI_MERGE_REQUEST_IID": "7 --x"}, wantErr: `CI_MERGE_REQUEST_IID "7 --x" is not a merge request IID`},
		{name: "negative IID", base: mrEnv, set: map[string]string{"CI_MERGE_REQUEST_IID": "-7"}, wantErr: "is not a merge request IID"},
		{name: "pipeline ID that is not a number", base: mrEnv, set: map[string]string{"CI_PIPELINE_ID": "12; rm"}, wantErr: "run ID"},
		{name: "job ID that is not a number", base: mrEnv, set: map[string]string{"CI_JOB_ID": "1\n2"}, wantErr: "run attempt"},
		{name: "project URL that is not http", base: mrEnv, set: map[string]string{"CI_PROJECT_URL": "javascript:alert(1)"}, wantErr: "CI_PROJECT_URL"},
		{name: "merge request URL with a newline", base: mrEnv, set: map[string]string{"CI_MERGE_REQUEST_PROJECT_URL": web + "\n[x](https://evil)"}, wantErr: "CI_MERGE_REQUEST_PROJECT_URL"},
		{name: "pipeline URL with credentials", base: mrEnv, set: map[string]string{"CI_PIPELINE_URL": "https://user:pw@evil.example/p"}, wantErr: "CI_PIPELINE_URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := tc.base(t)
			for k, v := range tc.set {
				env[k] = v
			}
			for _, k := range tc.unset {
				delete(env, k)
			}
			c, _, err := readContext(t, env, Options{}, "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func full(t *testing.T, c *cicontext.Context) {
	t.Helper()
	if c.Mode != cicontext.ModeFull || c.Branch != "main" || c.Commit.SHA != shaA || c.PullRequestNumber != 0 {
		t.Errorf("context %+v", c)
	}
}

// TestContextCommitMetadata: git, else the API, else the variables.
func TestContextCommitMetadata(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1700000000, 0).UTC()
	sig := object.Signature{Name: "Git Author", Email: "git@example.com", When: when}
	h, err := wt.Commit("From git\n\nBody", &git.CommitOptions{Author: &sig, Committer: &sig, AllowEmptyCommits: true})
	if err != nil {
		t.Fatal(err)
	}
	head := h.String()

	emu, _ := newEmu(t, false)
	apiWhen := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	emu.AddCommit(projectID, gitlabemu.Commit{SHA: shaM, Message: "From the API\n", AuthorName: "API Author", AuthorEmail: "api@example.com", CommittedDate: apiWhen})
	url := serve(t, emu, nil)

	// In the checkout: git's metadata.
	env := mrEnv(t)
	env["CI_COMMIT_SHA"] = head
	c, _, err := readContext(t, env, Options{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Commit.From != cicontext.FromGit || c.Commit.Message != "From git\n\nBody" || c.Commit.AuthorName != "Git Author" || !c.Commit.Timestamp.Equal(when) {
		t.Errorf("from git: %+v", c.Commit)
	}

	// A merged results pipeline whose source head is in the checkout.
	env = mrEnv(t)
	env["CI_COMMIT_SHA"], env["CI_MERGE_REQUEST_SOURCE_BRANCH_SHA"] = shaM, head
	if c, _, err = readContext(t, env, Options{}, dir); err != nil || c.Commit.SHA != head || c.Commit.From != cicontext.FromGit {
		t.Errorf("merged results from git: %+v, %v", c, err)
	}

	// Not in the checkout: the API, with GITLAB_TOKEN.
	env = mrEnv(t)
	env["CI_COMMIT_SHA"], env["CI_API_V4_URL"], env["GITLAB_TOKEN"] = shaM, url, botToken
	c, _, err = readContext(t, env, Options{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Commit != (cicontext.Commit{SHA: shaM, Timestamp: apiWhen, Message: "From the API", AuthorName: "API Author", AuthorEmail: "api@example.com", From: cicontext.FromAPI}) {
		t.Errorf("from the API: %+v", c.Commit)
	}

	// Neither: the variables stay, with a warning.
	env = mrEnv(t)
	env["CI_API_V4_URL"] = url // only the job token: the private project cannot be read
	c, log, err := readContext(t, env, Options{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Commit.From != cicontext.FromEvent || c.Commit.AuthorName != "Jane Doe" || !strings.Contains(log, "WARNING: Commit "+shaA+": using what GitLab CI's variables say") {
		t.Errorf("from the variables: %+v; log %q", c.Commit, log)
	}
}

func TestCloseContext(t *testing.T) {
	t.Parallel()
	updated := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		public  bool
		state   string
		set     map[string]string
		unset   []string
		wantErr string
		want    string // PullRequestStatus
	}{
		{name: "merged", state: gitlabemu.StateMerged, want: cicontext.StatusMerged},
		{name: "closed", state: gitlabemu.StateClosed, want: cicontext.StatusClosed},
		{name: "still open", state: gitlabemu.StateOpened, wantErr: "merge request !7 is opened, not merged or closed"},
		{name: "being merged", state: gitlabemu.StateLocked, wantErr: "is locked, not merged or closed"},
		{name: "IID from DAGSTER_MR_IID", state: gitlabemu.StateMerged, unset: []string{"CI_MERGE_REQUEST_IID"}, set: map[string]string{"DAGSTER_MR_IID": "7"}, want: cicontext.StatusMerged},
		{name: "IID from the environment's name", state: gitlabemu.StateClosed, unset: []string{"CI_MERGE_REQUEST_IID"}, set: map[string]string{"CI_ENVIRONMENT_NAME": "dagster/mr-7"}, want: cicontext.StatusClosed},
		{name: "all three agree", state: gitlabemu.StateClosed, set: map[string]string{"DAGSTER_MR_IID": "7", "CI_ENVIRONMENT_NAME": "dagster/mr-7"}, want: cicontext.StatusClosed},
		{name: "an unrelated environment name", state: gitlabemu.StateClosed, set: map[string]string{"CI_ENVIRONMENT_NAME": "review/feature-x"}, want: cicontext.StatusClosed},
		{name: "sources disagree", state: gitlabemu.StateMerged, set: map[string]string{"CI_ENVIRONMENT_NAME": "dagster/mr-8"}, wantErr: "ambiguous: CI_MERGE_REQUEST_IID says !7, CI_ENVIRONMENT_NAME says !8"},
		{name: "no IID anywhere", state: gitlabemu.StateMerged, unset: []string{"CI_MERGE_REQUEST_IID"}, wantErr: "cannot tell which merge request closed"},
		{name: "forged IID", state: gitlabemu.StateMerged, unset: []string{"CI_MERGE_REQUEST_IID"}, set: map[string]string{"DAGSTER_MR_IID": "7/../../8"}, wantErr: "is not a merge request IID"},
		{name: "no such merge request", state: gitlabemu.StateMerged, set: map[string]string{"CI_MERGE_REQUEST_IID": "8"}, wantErr: "reading merge request !8 of project 42: 404 Not Found"},
		{name: "job token only, public project", public: true, state: gitlabemu.StateMerged, unset: []string{"GITLAB_TOKEN"}, want: cicontext.StatusMerged},
		{name: "job token only, private project", state: gitlabemu.StateMerged, unset: []string{"GITLAB_TOKEN"}, wantErr: "GitLab takes no CI_JOB_TOKEN here, so only a public project can be read; add a project access token"},
		{name: "no token at all", public: true, state: gitlabemu.StateMerged, unset: []string{"GITLAB_TOKEN", "CI_JOB_TOKEN"}, wantErr: "neither GITLAB_TOKEN nor CI_JOB_TOKEN is set; add a project access token"},
		{name: "no pipeline source is fine", state: gitlabemu.StateMerged, unset: []string{"CI_PIPELINE_SOURCE"}, want: cicontext.StatusMerged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			emu, _ := newEmu(t, tc.public)
			emu.SetMergeRequest(projectID, gitlabemu.MergeRequest{IID: iid, State: tc.state, Title: "Add assets", SourceBranch: "feature/x",
				SHA: shaM, Author: "jane", UpdatedAt: updated, HeadPipelineID: 1500})
			url := serve(t, emu, nil)
			env := mrEnv(t)
			env["CI_API_V4_URL"], env["GITLAB_TOKEN"] = url, botToken
			for k, v := range tc.set {
				env[k] = v
			}
			for _, k := range tc.unset {
				delete(env, k)
			}
			c, _, err := readContext(t, env, Options{Close: true}, "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(url, "/api/v4")
			if c.Mode != cicontext.ModeClose || c.PullRequestStatus != tc.want || c.PullRequestNumber != 7 || c.Branch != "feature/x" ||
				c.PullRequestURL != base+"/"+projectPath+"/-/merge_requests/7" || c.RepoName != projectPath ||
				c.Commit != (cicontext.Commit{SHA: shaM, Timestamp: updated, Message: "Add assets", AuthorName: "Jane", From: cicontext.FromEvent}) ||
				c.RunID != "1234567" || c.RunAttempt != "98765432" || c.Action != strings.ToLower(tc.want) {
				t.Errorf("context %+v", c)
			}
		})
	}
}

// TestRequest: the merge request's state now.
func TestRequest(t *testing.T) {
	t.Parallel()
	emu, _ := newEmu(t, false)
	emu.SetMergeRequest(projectID, gitlabemu.MergeRequest{IID: 8, State: gitlabemu.StateMerged, SHA: shaM})
	emu.SetMergeRequest(projectID, gitlabemu.MergeRequest{IID: 9, State: gitlabemu.StateLocked, SHA: shaM})
	url := serve(t, emu, nil)
	p := NewCI(mapEnv(map[string]string{"CI_API_V4_URL": url, "CI_PROJECT_ID": "42", "GITLAB_TOKEN": botToken}), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{})
	ctx := context.Background()
	for n, want := range map[int]struct{ open, merged bool }{7: {true, false}, 8: {false, true}, 9: {true, false}} {
		st, err := p.Request(ctx, n)
		if err != nil || st.Open != want.open || st.Merged != want.merged || st.HeadSHA == "" {
			t.Errorf("!%d: %+v, %v", n, st, err)
		}
	}
	if _, err := p.Request(ctx, 99); err == nil || !strings.Contains(err.Error(), "!99") {
		t.Errorf("missing: %v", err)
	}
	none := NewCI(mapEnv(map[string]string{"CI_API_V4_URL": url, "CI_PROJECT_ID": "42"}), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{})
	if _, err := none.Request(ctx, 7); err == nil || !strings.Contains(err.Error(), "neither GITLAB_TOKEN nor CI_JOB_TOKEN") {
		t.Errorf("no token: %v", err)
	}
}

func TestPlatformBasics(t *testing.T) {
	t.Parallel()
	env := mrEnv(t)
	env["INPUT_ORGANIZATION_ID"] = "  acme \n"
	env["INPUT_LOCATION_LOAD_TIMEOUT"] = "60"
	p := NewCI(mapEnv(env), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{})
	if p.Name() != "GitLab CI" || p.Input("organization_id") != "acme" || p.Input("location_load_timeout") != "60" || p.Input("missing") != "" ||
		p.Getenv("CI_PROJECT_ID") != "42" || p.Workspace() != "/builds/acme/data/platform" || p.ContainerPath("/x/y") != "/x/y" ||
		p.Summary("# x") != nil || p.Registry().Token != "" || p.Registry().IDToken == nil || p.Registry().OIDCName != "GitLab" {
		t.Error("basics")
	}
}
