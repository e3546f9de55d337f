package action

import (
	"fmt"
	"strings"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
)

// Values of the event policy inputs.
const (
	PolicySkip   = "skip"   // pass the run with a notice; nothing is sent anywhere
	PolicyFail   = "fail"   // fail the run with an error that says why
	PolicyBuild  = "build"  // build the images, push nothing, deploy nothing
	PolicyDeploy = "deploy" // deploy as any other run
)

// verdict is what the event policy makes of a run.
type verdict struct {
	policy string // PolicyDeploy (carry on), PolicyBuild, PolicySkip or PolicyFail
	reason string // what the notice (build, skip) or the error (fail) says
}

// eventPolicy decides what a run does before anything is sent anywhere:
//
//   - A merge queue's check (merge_group) builds the images without
//     pushing or deploying (input merge_group: build), so the queue learns
//     whether they build, or is skipped (skip); never a failure by itself.
//   - A pull request from a fork, or from Dependabot, gets no secrets and a
//     read-only token: it is skipped (fork_pull_requests,
//     dependabot_pull_requests: skip), fails (fail), or builds only
//     (build). When both apply, the stricter wins (fail, then skip). Such
//     a pull request never has a branch deployment, so closing it is
//     always skipped: there is nothing to mark or delete, and the run has
//     no token to do it with.
//   - converted_to_draft changes no code: the branch deployment is left as
//     it is, whatever draft_pull_requests says. A draft is skipped with
//     draft_pull_requests: skip until it is marked ready (ready_for_review
//     deploys it); closing a draft closes its branch deployment as usual,
//     since it may have one from before it became a draft.
func eventPolicy(in Inputs, ci *cicontext.Context) verdict {
	req := upperFirst(ci.RequestRef())
	if ci.Mode == cicontext.ModeMergeQueue {
		sha := ci.Commit.Short(12)
		switch {
		case ci.Action != "" && ci.Action != "checks_requested":
			return verdict{PolicySkip, fmt.Sprintf("merge_group %s: the merge queue asks for no checks, so nothing is built", ci.Action)}
		case in.MergeGroup == PolicySkip:
			return verdict{PolicySkip, fmt.Sprintf("Merge queue commit %s: merge_group is skip, so nothing is built or deployed", sha)}
		}
		return verdict{PolicyBuild, fmt.Sprintf("Merge queue commit %s (merge_group): the images are built to check that they build; nothing is pushed or deployed (merge_group: build)", sha)}
	}
	if ci.PullRequestNumber == 0 {
		return verdict{policy: PolicyDeploy}
	}

	// Forks and Dependabot: the stricter policy of those that apply.
	type rule struct{ input, value, why string }
	var rules []rule
	if ci.Fork {
		from := "a fork"
		switch {
		case ci.HeadRepo == "" && ci.Request == "merge request":
			from = "a fork (another project)"
		case ci.HeadRepo == "":
			from = "a fork that was deleted"
		default:
			from = "a fork (" + ci.HeadRepo + ")"
		}
		rules = append(rules, rule{"fork_pull_requests", in.ForkPullRequests, "comes from " + from})
	}
	if ci.Dependabot {
		rules = append(rules, rule{"dependabot_pull_requests", in.DependabotPullRequests, "is Dependabot's"})
	}
	if len(rules) > 0 {
		var whys, settings []string
		policy := PolicyBuild
		for _, r := range rules {
			whys = append(whys, r.why)
			settings = append(settings, r.input+": "+r.value)
			switch {
			case r.value == PolicyFail:
				policy = PolicyFail
			case r.value == PolicySkip && policy != PolicyFail:
				policy = PolicySkip
			}
		}
		who := fmt.Sprintf("%s %s", req, strings.Join(whys, " and "))
		set := strings.Join(settings, ", ")
		noSecrets := "whose runs get no secrets and a read-only token"
		if ci.Request == "merge request" {
			noSecrets = "whose pipelines do not get the project's CI/CD variables"
		}
		switch {
		case ci.Mode == cicontext.ModeClose:
			return verdict{PolicySkip, fmt.Sprintf("%s, %s: it was never deployed, so there is no branch deployment to close or delete", who, noSecrets)}
		case policy == PolicyFail:
			return verdict{PolicyFail, fmt.Sprintf("%s, %s, and %s: such a run cannot push images, deploy or comment. Set it to skip (the default) to pass such runs with a notice, or to build to check that their images build", who, noSecrets, set)}
		case policy == PolicySkip:
			return verdict{PolicySkip, fmt.Sprintf("%s, %s: nothing is built, pushed or deployed (%s; set it to build to check that the images build)", who, noSecrets, set)}
		}
		return verdict{PolicyBuild, fmt.Sprintf("%s, %s: the images are built to check that they build; nothing is pushed, deployed or commented (%s)", who, noSecrets, set)}
	}

	// Drafts.
	if ci.Action == "converted_to_draft" {
		more := ""
		if in.DraftPullRequests == PolicySkip {
			more = "; with draft_pull_requests: skip its new commits are not deployed until it is marked ready for review"
		}
		return verdict{PolicySkip, fmt.Sprintf("%s was converted to a draft: its branch deployment is left as it is, and nothing is built, deployed or marked%s", req, more)}
	}
	if ci.Draft && ci.Mode == cicontext.ModeBranch && in.DraftPullRequests == PolicySkip {
		ready := "marking it ready for review deploys it (list ready_for_review in the workflow's pull_request types)"
		if ci.Request == "merge request" {
			ready = "the first pipeline after it is marked ready deploys it"
		}
		return verdict{PolicySkip, fmt.Sprintf("%s is a draft and draft_pull_requests is skip: nothing is built or deployed; %s", req, ready)}
	}
	return verdict{policy: PolicyDeploy}
}
