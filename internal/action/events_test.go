package action

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
)

// editEvent writes testdata/events/<name>, edited, as the harness's event.
func editEvent(t *testing.T, h *harness, name string, edit func(ev map[string]any)) {
	t.Helper()
	raw, err := testbed.EventFixture(name, edit)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, h.env["GITHUB_EVENT_PATH"], string(raw))
}

func prOf(ev map[string]any) map[string]any { return ev["pull_request"].(map[string]any) }

// fromFork makes a payload's pull request come from a fork.
func fromFork(ev map[string]any) {
	prOf(ev)["head"].(map[string]any)["repo"].(map[string]any)["full_name"] = "octocat/Hello-World"
}

// fromDependabot makes a payload's pull request Dependabot's.
func fromDependabot(ev map[string]any) {
	prOf(ev)["user"].(map[string]any)["login"] = "dependabot[bot]"
}

func outputs(t *testing.T, h *harness) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.Split(readFile(t, h.env["GITHUB_OUTPUT"]), "\n")
	for i := 0; i < len(lines); i++ {
		if name, delim, ok := strings.Cut(lines[i], "<<"); ok {
			var val []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				val = append(val, lines[i])
			}
			out[name] = strings.Join(val, "\n")
		}
	}
	return out
}

// sentNothing checks that a run sent nothing anywhere: no Dagster+ request,
// no GitHub API call (but reads of the commit, with reads), no build,
// login, push or registry lookup.
func sentNothing(t *testing.T, h *harness, reads bool) {
	t.Helper()
	if r := h.dagster.Requests(); len(r) != 0 {
		t.Errorf("%d Dagster+ requests, the first %s", len(r), r[0].Operation)
	}
	for _, c := range h.github.Calls() {
		if !reads || c.Method != "GET" || !strings.Contains(c.Path, "/commits/") {
			t.Errorf("GitHub API call %+v", c)
		}
	}
	if len(h.docker.specs)+len(h.docker.pushes)+len(h.docker.logins)+len(h.registry.looked) != 0 {
		t.Errorf("builds %d, pushes %v, logins %d, registry lookups %v", len(h.docker.specs), h.docker.pushes, len(h.docker.logins), h.registry.looked)
	}
}

// noMutations checks that the run changed nothing in Dagster+: no
// mutation among the requests after the first from.
func noMutations(t *testing.T, h *harness, from int) {
	t.Helper()
	for _, r := range h.dagster.Requests()[from:] {
		if strings.Contains(r.Query, "mutation ") {
			t.Errorf("Dagster+ mutation %s", r.Operation)
		}
	}
}

// TestForkAndDependabotPolicy: a fork's or Dependabot's pull request (no
// secrets, a read-only token) is skipped by default with a notice that
// says why, exit 0, status skipped, and nothing sent anywhere (even with a
// registry_username whose password, a secret, is empty); fail fails it;
// build builds without pushing, deploying or commenting; closing one is
// always skipped.
func TestForkAndDependabotPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		edit    func(map[string]any)
		env     map[string]string
		inputs  map[string]string
		yaml    string // dagster_cloud.yaml; "" for the harness's
		status  string
		notice  []string
		wantErr []string
		builds  bool
	}{
		{name: "fork, skip by default", file: "pull_request.opened.json", edit: fromFork, inputs: map[string]string{"registry_username": "robot", "dagster_cloud_api_token": ""},
			status: "skipped", notice: []string{"::notice::Pull request #2 comes from a fork (octocat/Hello-World), whose runs get no secrets", "fork_pull_requests: skip"}},
		{name: "deleted fork", file: "pull_request.synchronize.json", edit: func(ev map[string]any) { prOf(ev)["head"].(map[string]any)["repo"] = nil },
			status: "skipped", notice: []string{"comes from a fork that was deleted"}},
		{name: "fork, fail", file: "pull_request.opened.json", edit: fromFork, inputs: map[string]string{"fork_pull_requests": "fail"},
			status: "failed", wantErr: []string{"Pull request #2 comes from a fork (octocat/Hello-World)", "fork_pull_requests: fail", "Set it to skip (the default)"}},
		{name: "fork, build", file: "pull_request.opened.json", edit: fromFork, inputs: map[string]string{"fork_pull_requests": "build", "registry_username": "robot", "dagster_cloud_api_token": "", "github_token": ""},
			status: "built", builds: true, notice: []string{"the images are built to check that they build; nothing is pushed, deployed or commented (fork_pull_requests: build)"}},
		{name: "fork, build, with a keyless login the run cannot do", file: "pull_request.opened.json", edit: fromFork,
			yaml:   strings.ReplaceAll(yamlDoc, "r.example/acme/app", "210987654321.dkr.ecr.eu-central-1.amazonaws.com/acme/app"),
			inputs: map[string]string{"fork_pull_requests": "build", "aws_role_arn": "arn:aws:iam::210987654321:role/push", "dagster_cloud_api_token": "", "github_token": ""},
			status: "built", builds: true, notice: []string{"Registry 210987654321.dkr.ecr.eu-central-1.amazonaws.com: no login in this run without secrets (input aws_role_arn is set", "using it anonymously"}},
		{name: "fork closed, build", file: "pull_request.closed.json", edit: fromFork, inputs: map[string]string{"fork_pull_requests": "build"},
			status: "skipped", notice: []string{"it was never deployed, so there is no branch deployment to close or delete"}},
		{name: "fork closed, fail", file: "pull_request.closed.json", edit: fromFork, inputs: map[string]string{"fork_pull_requests": "fail", "delete_on_close": "true"},
			status: "skipped", notice: []string{"no branch deployment to close or delete"}},
		{name: "Dependabot, skip by default", file: "pull_request.opened.json", edit: fromDependabot,
			status: "skipped", notice: []string{"Pull request #2 is Dependabot's", "dependabot_pull_requests: skip"}},
		{name: "run by Dependabot", file: "pull_request.synchronize.json", env: map[string]string{"GITHUB_ACTOR": "dependabot[bot]"},
			status: "skipped", notice: []string{"is Dependabot's"}},
		{name: "Dependabot, build", file: "pull_request.opened.json", edit: fromDependabot, inputs: map[string]string{"dependabot_pull_requests": "build"},
			status: "built", builds: true, notice: []string{"(dependabot_pull_requests: build)"}},
		{name: "Dependabot, fail", file: "pull_request.opened.json", edit: fromDependabot, inputs: map[string]string{"dependabot_pull_requests": "fail"},
			status: "failed", wantErr: []string{"is Dependabot's", "dependabot_pull_requests: fail"}},
		{name: "a fork of Dependabot's: the stricter wins", file: "pull_request.opened.json",
			edit: func(ev map[string]any) { fromFork(ev); fromDependabot(ev) }, inputs: map[string]string{"fork_pull_requests": "build"},
			status: "skipped", notice: []string{"comes from a fork (octocat/Hello-World) and is Dependabot's", "fork_pull_requests: build, dependabot_pull_requests: skip"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.inputs)
			editEvent(t, h, tc.file, tc.edit)
			if tc.yaml != "" {
				writeTestFile(t, filepath.Join(h.env["GITHUB_WORKSPACE"], "dagster_cloud.yaml"), tc.yaml)
			}
			for k, v := range tc.env {
				h.env[k] = v
			}
			err := h.run(context.Background())
			out := h.out.String()
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("the run passed:\n%s", out)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if !strings.Contains(out, "::error title=dagster-branch-deploy failed::Pull request #2") {
					t.Errorf("no error annotation:\n%s", out)
				}
			} else if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range tc.notice {
				if !strings.Contains(out, w) {
					t.Errorf("the log lacks %q:\n%s", w, out)
				}
			}
			if got := outputs(t, h)["status"]; got != tc.status {
				t.Errorf("status = %q, want %q", got, tc.status)
			}
			if tc.builds {
				// Built, never pushed, deployed or commented; no cache pushed.
				if len(h.docker.specs) != 2 || len(h.docker.pushes) != 0 || len(h.dagster.Requests()) != 0 || len(h.github.Calls()) != 0 {
					t.Errorf("builds %d, pushes %v, Dagster+ requests %d, GitHub calls %v", len(h.docker.specs), h.docker.pushes, len(h.dagster.Requests()), h.github.Calls())
				}
				for _, s := range h.docker.specs {
					if len(s.Tags) != 1 {
						t.Errorf("tags %v (a cache tag is pushed only with the images)", s.Tags)
					}
				}
				if !strings.Contains(readFile(t, h.env["GITHUB_STEP_SUMMARY"]), "🏗️ built") {
					t.Errorf("summary:\n%s", readFile(t, h.env["GITHUB_STEP_SUMMARY"]))
				}
				return
			}
			sentNothing(t, h, false)
			if tc.status == "skipped" && !strings.Contains(readFile(t, h.env["GITHUB_STEP_SUMMARY"]), "### ⏭️ Dagster+ branch deployment skipped") {
				t.Errorf("summary:\n%s", readFile(t, h.env["GITHUB_STEP_SUMMARY"]))
			}
		})
	}
}

// TestMergeGroup: a merge queue's check builds the images of the group's
// head commit without pushing or deploying (merge_group: build), or is
// skipped; it never needs Dagster+ or secrets.
func TestMergeGroup(t *testing.T) {
	t.Parallel()
	const groupSHA = "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d"
	for _, tc := range []struct {
		name, status string
		inputs       map[string]string
		edit         func(map[string]any)
		builds       bool
		notice       string
	}{
		{name: "build", status: "built", builds: true, inputs: map[string]string{"dagster_cloud_api_token": ""},
			notice: "::notice::Merge queue commit 2ffea6db159f (merge_group): the images are built to check that they build"},
		{name: "skip", status: "skipped", inputs: map[string]string{"merge_group": "skip"}, notice: "merge_group is skip"},
		{name: "destroyed", status: "skipped", edit: func(ev map[string]any) { ev["action"] = "destroyed" }, notice: "merge_group destroyed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.inputs)
			h.env["GITHUB_EVENT_NAME"] = "merge_group"
			editEvent(t, h, "merge_group.checks_requested.json", tc.edit)
			if err := h.run(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, h.out.String())
			}
			if !strings.Contains(h.out.String(), tc.notice) {
				t.Errorf("no notice %q:\n%s", tc.notice, h.out.String())
			}
			if got := outputs(t, h)["status"]; got != tc.status {
				t.Errorf("status = %q", got)
			}
			if !tc.builds {
				sentNothing(t, h, false)
				return
			}
			if len(h.docker.specs) != 2 || len(h.docker.pushes) != 0 || len(h.dagster.Requests()) != 0 || len(h.github.Calls()) != 0 {
				t.Fatalf("builds %d, pushes %v, Dagster+ %d, GitHub %d", len(h.docker.specs), h.docker.pushes, len(h.dagster.Requests()), len(h.github.Calls()))
			}
			etl := h.docker.spec(t, "etl")
			// The full deployment's cache is read; nothing is written.
			if etl.Tags[0] != "r.example/acme/app:"+groupSHA[:12]+"-9-1-etl" || len(etl.Tags) != 1 || etl.Labels["org.opencontainers.image.revision"] != groupSHA ||
				!slices.Equal(etl.CacheFrom, []string{"r.example/acme/app:buildcache-etl"}) {
				t.Errorf("etl spec: tags %v cache %v labels %v", etl.Tags, etl.CacheFrom, etl.Labels)
			}
			if s := readFile(t, h.env["GITHUB_STEP_SUMMARY"]); !strings.Contains(s, "### 🏗️ Dagster+ deployment (not created yet)") {
				t.Errorf("summary:\n%s", s)
			}
		})
	}
}

// TestDraftPolicy: drafts deploy by default; with draft_pull_requests:
// skip they are skipped until ready_for_review; converted_to_draft leaves
// the branch deployment as it is either way; closing a draft closes its
// branch deployment.
func TestDraftPolicy(t *testing.T) {
	t.Parallel()
	draft := func(action string) func(map[string]any) {
		return func(ev map[string]any) {
			ev["action"] = action
			prOf(ev)["draft"] = action != "ready_for_review"
		}
	}
	for _, tc := range []struct {
		name, file, status string
		inputs             map[string]string
		edit               func(map[string]any)
		deploys            bool
		notice             string
	}{
		{name: "draft, deploy by default", file: "pull_request.opened.json", edit: draft("opened"), status: "success", deploys: true},
		{name: "draft, skip", file: "pull_request.opened.json", edit: draft("opened"), inputs: map[string]string{"draft_pull_requests": "skip"}, status: "skipped",
			notice: "::notice::Pull request #2 is a draft and draft_pull_requests is skip: nothing is built or deployed; marking it ready for review deploys it"},
		{name: "a new commit to a draft, skip", file: "pull_request.synchronize.json", edit: draft("synchronize"), inputs: map[string]string{"draft_pull_requests": "skip"}, status: "skipped", notice: "is a draft"},
		{name: "converted to draft", file: "pull_request.synchronize.json", edit: draft("converted_to_draft"), status: "skipped",
			notice: "::notice::Pull request #2 was converted to a draft: its branch deployment is left as it is, and nothing is built, deployed or marked."},
		{name: "converted to draft, skip", file: "pull_request.synchronize.json", edit: draft("converted_to_draft"), inputs: map[string]string{"draft_pull_requests": "skip"}, status: "skipped",
			notice: "with draft_pull_requests: skip its new commits are not deployed until it is marked ready for review"},
		{name: "ready for review, skip", file: "pull_request.synchronize.json", edit: draft("ready_for_review"), inputs: map[string]string{"draft_pull_requests": "skip"}, status: "success", deploys: true},
		{name: "closing a draft, skip", file: "pull_request.closed.json", edit: draft("closed"), inputs: map[string]string{"draft_pull_requests": "skip"}, status: "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.inputs)
			editEvent(t, h, tc.file, tc.edit)
			if err := h.run(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, h.out.String())
			}
			if got := outputs(t, h)["status"]; got != tc.status {
				t.Errorf("status = %q, want %q\n%s", got, tc.status, h.out.String())
			}
			if tc.notice != "" && !strings.Contains(h.out.String(), tc.notice) {
				t.Errorf("no notice %q:\n%s", tc.notice, h.out.String())
			}
			switch {
			case tc.deploys:
				if len(h.docker.pushes) == 0 || !strings.Contains(h.comment(t), "✅ loaded") {
					t.Errorf("not deployed: pushes %v", h.docker.pushes)
				}
			case tc.status == "skipped":
				// A draft's run reads its commit before the policy applies.
				sentNothing(t, h, !strings.Contains(tc.name, "converted"))
			}
		})
	}
}

// TestDeleteOnClose: with delete_on_close, closing the pull request
// deletes its branch deployment (after checking that it is one) instead of
// marking it; the comment and the outputs say deleted. A pull request
// without a branch deployment deletes nothing.
func TestDeleteOnClose(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"delete_on_close": "true"})
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	name := h.dagster.BranchDeploymentName("Codertocat/Hello-World", "changes")
	if _, ok := h.dagster.Deployment(name); !ok {
		t.Fatal("no branch deployment after the opened run")
	}
	useEvent(t, h, "pull_request.closed.json")
	h.out.Reset()
	before := len(h.dagster.Requests())
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if _, ok := h.dagster.Deployment(name); ok {
		t.Errorf("branch deployment %s still exists", name)
	}
	var ops []string
	for _, r := range h.dagster.Requests()[before:] {
		ops = append(ops, r.Operation)
		if r.Operation == "CliCreateOrUpdateBranchDeployment" {
			t.Error("the close marked the deployment as well")
		}
	}
	if !slices.Contains(ops, "DeploymentByNameQuery") || ops[len(ops)-1] != "CliDeleteDeployment" {
		t.Errorf("operations = %v", ops)
	}
	outs := outputs(t, h)
	if outs["status"] != "deleted" || outs["deployment"] != name || outs["deployment_url"] != "" {
		t.Errorf("outputs = %v", outs)
	}
	c := h.comment(t)
	for _, want := range []string{"### 🗑️ Dagster+ branch deployment `" + name + "`", "the branch deployment was **deleted**", "| `etl` | 🗑️ deleted |"} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
	if !strings.Contains(h.out.String(), "Branch deployment "+name+" deleted.") {
		t.Errorf("log:\n%s", h.out.String())
	}

	// Closed again (a re-run): nothing left to delete.
	h.out.Reset()
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	if outs := outputs(t, h); outs["status"] != "deleted" {
		t.Errorf("outputs = %v", outs)
	}
	if c := h.comment(t); !strings.Contains(c, "it had no branch deployment, so nothing was deleted or built") {
		t.Errorf("comment:\n%s", c)
	}
}

// TestDryRun: a dry run checks everything (Dagster+ token, registry logins
// and reachability), builds without pushing, prints the plan to the log and
// the summary, and changes nothing: no push, no mutation, no comment.
func TestDryRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"dry_run": "true"})
	// An earlier run deployed the pull request.
	seedBranch(t, h, newerSHA, h0, "OPEN")
	before, _ := json.Marshal(h.dagster.Deployments())
	seeded := len(h.dagster.Requests())
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	after, _ := json.Marshal(h.dagster.Deployments())
	if string(before) != string(after) {
		t.Errorf("Dagster+ changed:\n%s\n%s", before, after)
	}
	var ops []string
	for _, r := range h.dagster.Requests()[seeded:] {
		ops = append(ops, r.Operation)
	}
	if !slices.Contains(ops, "CliOrganizationSettings") || !slices.Contains(ops, "CliDeploymentByName") {
		t.Errorf("operations %v: the token and the branch deployment were not checked", ops)
	}
	noMutations(t, h, seeded)
	if len(h.docker.specs) != 2 || len(h.docker.pushes) != 0 || len(h.registry.tagged) != 0 {
		t.Errorf("builds %d, pushes %v, tagged %v", len(h.docker.specs), h.docker.pushes, h.registry.tagged)
	}
	for _, s := range h.docker.specs {
		if len(s.Tags) != 1 {
			t.Errorf("tags %v: no cache tag without a push", s.Tags)
		}
	}
	if len(h.registry.looked) != 1 || !strings.HasPrefix(h.registry.looked[0], "r.example/acme/app:") {
		t.Errorf("registry lookups %v, want one per registry", h.registry.looked)
	}
	if c := h.github.Comments("Codertocat", "Hello-World", 2); len(c) != 0 {
		t.Errorf("a dry run commented: %+v", c)
	}
	for _, c := range h.github.Calls() {
		if c.Method != "GET" {
			t.Errorf("GitHub call %s %s", c.Method, c.Path)
		}
	}
	name := h.dagster.BranchDeploymentName("Codertocat/Hello-World", "changes")
	out := h.out.String()
	for _, want := range []string{
		"dry_run is true",
		"Registry r.example answers.",
		"Dry run plan:",
		"  Location etl: image r.example/acme/app:ec26c3e57ca3-9-1-etl (built, not pushed)",
		"  Dagster+ operation 1, CliCreateOrUpdateBranchDeployment: update branch deployment " + name + " (now at commit 111111111111, OPEN) to commit ec26c3e57ca3",
		"  Dagster+ operation 2, CliDeployLocations: deploy etl = r.example/acme/app:ec26c3e57ca3-9-1-etl, ml = r.example/acme/app:ec26c3e57ca3-9-1-ml to " + name,
		"Then it would wait up to 30s",
		"Dry run: nothing was pushed, deployed or commented.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	summary := readFile(t, h.env["GITHUB_STEP_SUMMARY"])
	for _, want := range []string{"### 🧪 Dagster+ branch deployment [`" + name + "`]", "(dry run)", "**Dry run:** nothing was pushed, deployed or commented.",
		"1. `CliCreateOrUpdateBranchDeployment`: `update branch deployment", "2. `CliDeployLocations`: `deploy etl = r.example/acme/app:ec26c3e57ca3-9-1-etl",
		"| `etl` | 🏗️ built | `r.example/acme/app:ec26c3e57ca3-9-1-etl` |"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	outs := outputs(t, h)
	if outs["status"] != "dry-run" || outs["deployment"] != name {
		t.Errorf("outputs = %v", outs)
	}
}

// TestDryRunRefusals: a dry run fails where the deploy would: a token
// Dagster+ rejects, a registry that cannot be reached, a missing token.
func TestDryRunRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		inputs map[string]string
		setup  func(h *harness)
		want   string
	}{
		{name: "rejected token", inputs: map[string]string{"dagster_cloud_api_token": "not-the-token"}, want: "checking the Dagster+ connection"},
		{name: "no token", inputs: map[string]string{"dagster_cloud_api_token": ""}, want: "dagster_cloud_api_token"},
		{name: "unreachable registry", setup: func(h *harness) { h.registry.lookupErr = errors.New("dial tcp: connection refused") },
			want: "registry r.example (location etl) could not be reached or read: dial tcp: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inputs := map[string]string{"dry_run": "true"}
			for k, v := range tc.inputs {
				inputs[k] = v
			}
			h := newHarness(t, inputs)
			if tc.setup != nil {
				tc.setup(h)
			}
			err := h.run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q\n%s", err, tc.want, h.out.String())
			}
			noMutations(t, h, 0)
			if len(h.docker.pushes) != 0 || len(h.github.Comments("Codertocat", "Hello-World", 2)) != 0 {
				t.Errorf("pushes %v, comments %d", h.docker.pushes, len(h.github.Comments("Codertocat", "Hello-World", 2)))
			}
			if got := outputs(t, h)["status"]; got != "failed" {
				t.Errorf("status = %q", got)
			}
		})
	}
}

// TestDryRunClose: the plan of a close, with delete_on_close or without,
// and nothing changed.
func TestDryRunClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		inputs map[string]string
		want   []string
	}{
		{name: "mark", inputs: map[string]string{"dry_run": "true"}, want: []string{"Dagster+ operation 1, CliCreateOrUpdateBranchDeployment: mark branch deployment", "CLOSED (it is OPEN now)"}},
		{name: "delete", inputs: map[string]string{"dry_run": "true", "delete_on_close": "true"},
			want: []string{"Dagster+ operation 1, DeploymentByNameQuery: check that", "Dagster+ operation 2, CliDeleteDeployment: delete branch deployment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.inputs)
			seedBranch(t, h, ourSHA, h0, "OPEN")
			useEvent(t, h, "pull_request.closed.json")
			before, _ := json.Marshal(h.dagster.Deployments())
			seeded := len(h.dagster.Requests())
			if err := h.run(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, h.out.String())
			}
			after, _ := json.Marshal(h.dagster.Deployments())
			if string(before) != string(after) {
				t.Errorf("Dagster+ changed:\n%s\n%s", before, after)
			}
			noMutations(t, h, seeded)
			for _, w := range tc.want {
				if !strings.Contains(h.out.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, h.out.String())
				}
			}
			if c := h.github.Comments("Codertocat", "Hello-World", 2); len(c) != 0 {
				t.Errorf("commented: %+v", c)
			}
			if got := outputs(t, h)["status"]; got != "dry-run" {
				t.Errorf("status = %q", got)
			}
		})
	}
}

// TestGitCredentialWarning: a build context that would send actions/
// checkout's credential header (.git/config with persist-credentials)
// gets one warning at the line that sets it, without the header's value;
// a .dockerignore that excludes .git silences it.
func TestGitCredentialWarning(t *testing.T) {
	t.Parallel()
	const header = "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX3NlY3JldA=="
	gitConfig := "[core]\n\trepositoryformatversion = 0\n[remote \"origin\"]\n\turl = https://github.com/Codertocat/Hello-World\n" +
		"[http \"https://github.com/\"]\n\textraheader = " + header + "\n"
	setup := func(t *testing.T, ignore string) *harness {
		h := newHarness(t, map[string]string{"push": "false", "dagster_cloud_api_token": ""})
		ws := h.env["GITHUB_WORKSPACE"]
		mkdirAll(t, filepath.Join(ws, ".git"))
		writeTestFile(t, filepath.Join(ws, ".git", "config"), gitConfig)
		writeTestFile(t, filepath.Join(ws, "dagster_cloud.yaml"), `locations:
  - location_name: etl
    code_source: {package_name: etl}
    build: {directory: ., registry: r.example/acme/etl}
  - location_name: ml
    code_source: {package_name: ml}
    build:
      directory: ./
      registry: r.example/acme/ml
  - location_name: sub
    code_source: {package_name: sub}
    build: {directory: ./sub, registry: r.example/acme/sub}
`)
		mkdirAll(t, filepath.Join(ws, "sub"))
		if ignore != "" {
			writeTestFile(t, filepath.Join(ws, ".dockerignore"), ignore)
		}
		return h
	}
	h := setup(t, "")
	if err := h.run(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, h.out.String())
	}
	out := h.out.String()
	var warnings []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "::warning") && strings.Contains(l, ".git/config") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "::warning file=dagster_cloud.yaml,line=4::The build context . of location etl holds .git/config with a credential (http.https://github.com/.extraheader)") ||
		!strings.Contains(warnings[0], "persist-credentials: false") || !strings.Contains(warnings[0], "add `.git` to ./.dockerignore") {
		t.Errorf("warnings = %q", warnings)
	}
	for _, secret := range []string{"eC1hY2Nlc3MtdG9rZW46Z2hzX3NlY3JldA", "basic eC1"} {
		if strings.Contains(out, secret) {
			t.Errorf("the header's value is in the log")
		}
	}
	for _, ignore := range []string{".git\n", "**/.git\n", ".git/config\n"} {
		h := setup(t, ignore)
		if err := h.run(context.Background()); err != nil {
			t.Fatalf("%v\n%s", err, h.out.String())
		}
		if strings.Contains(h.out.String(), ".git/config with a credential") {
			t.Errorf(".dockerignore %q: still warned", ignore)
		}
	}
}

// h0 is a commit time before the fixtures' pull request.
var h0 = time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC)
