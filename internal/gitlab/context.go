package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
)

// Supported lists, for error messages, the pipelines the action handles.
const Supported = "merge request pipelines (CI_PIPELINE_SOURCE merge_request_event), pipelines on the default branch " +
	"(sources push, web, api, trigger, pipeline and parent_pipeline), and the merge request environment's stop job"

// defaultBranchSources are the pipeline sources that deploy the default
// branch (see the package doc).
var defaultBranchSources = map[string]bool{
	"push": true, "web": true, "api": true, "trigger": true, "pipeline": true, "parent_pipeline": true,
}

// Context reads the job's predefined variables (and, for the stop job, the
// merge request from the API); the commit's metadata comes from the
// checkout at projectDir (go-git), else from the API, else from the
// variables.
func (p *CI) Context(ctx context.Context, projectDir string) (*cicontext.Context, error) {
	g := p.getenv
	source := g("CI_PIPELINE_SOURCE")
	if source == "" && !p.opts.Close {
		return nil, errors.New("CI_PIPELINE_SOURCE is not set: this does not look like a GitLab CI job; outside CI use the `branch-deployment create-or-update` and `deployment add-location` commands")
	}
	c := &cicontext.Context{
		Request:    "merge request",
		EventName:  source,
		RepoName:   g("CI_PROJECT_PATH"),
		RunID:      g("CI_PIPELINE_ID"),
		RunAttempt: firstSet(g("CI_JOB_ID"), "1"),
	}
	if c.RepoName == "" {
		return nil, errors.New("CI_PROJECT_PATH is not set: GitLab sets it in every job; cannot tell which project this is")
	}
	projectURL, err := webURL("CI_PROJECT_URL", firstSet(g("CI_PROJECT_URL"), serverPath(g("CI_SERVER_URL"), c.RepoName)))
	if err != nil {
		return nil, err
	}
	switch {
	case p.opts.Close:
		err = p.closeContext(ctx, c, projectURL)
	case source == "merge_request_event":
		err = p.mergeRequestContext(c, projectURL)
	default:
		err = p.defaultBranchContext(c, source)
	}
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("GitLab CI's variables: %w", err)
	}
	c.Merge(func(dir, sha string) (cicontext.Commit, error) {
		gc, gitErr := cicontext.ReadGitLog(dir, sha)
		if gitErr == nil || p.read == nil {
			return gc, gitErr
		}
		gc, err := p.read.Commit(ctx, sha)
		if err != nil {
			p.log.Warn(fmt.Sprintf("Commit %s: using what GitLab CI's variables say of it, since neither git (%s) nor the GitLab API (%s) could tell its message", sha, gitErr, err), "", 0)
			return gc, err
		}
		gc.From = cicontext.FromAPI
		return gc, nil
	}, projectDir, nil)

	c.RepoURL = projectURL
	c.BranchURL = projectURL + "/-/tree/" + pathEscape(c.Branch)
	c.CommitURL = projectURL + "/-/commit/" + c.Commit.SHA
	c.TreeURL = projectURL + "/-/tree/" + c.Commit.SHA
	if run := g("CI_PIPELINE_URL"); run != "" {
		if c.RunURL, err = webURL("CI_PIPELINE_URL", run); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (p *CI) mergeRequestContext(c *cicontext.Context, projectURL string) error {
	g := p.getenv
	iid, err := parseIID("CI_MERGE_REQUEST_IID", g("CI_MERGE_REQUEST_IID"))
	if err != nil {
		return err
	}
	if iid == 0 {
		return errors.New("CI_MERGE_REQUEST_IID is not set in this merge_request_event pipeline")
	}
	c.Mode, c.PullRequestStatus = cicontext.ModeBranch, cicontext.StatusOpen
	c.Action = g("CI_MERGE_REQUEST_EVENT_TYPE") // detached, merged_result or merge_train
	c.Branch = g("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
	if c.Branch == "" {
		return errors.New("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME is not set in this merge request pipeline")
	}
	c.PullRequestNumber = iid
	mrProject := projectURL
	if u := g("CI_MERGE_REQUEST_PROJECT_URL"); u != "" {
		if mrProject, err = webURL("CI_MERGE_REQUEST_PROJECT_URL", u); err != nil {
			return err
		}
	}
	c.PullRequestURL = mrProject + "/-/merge_requests/" + strconv.Itoa(iid)
	p.origin(c)
	c.Draft = g("CI_MERGE_REQUEST_DRAFT") == "true" // GitLab 17.10 and later
	// In a merged results pipeline CI_COMMIT_SHA is the merge commit; the
	// source branch's head is the commit.
	c.Commit = p.envCommit(firstSet(g("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA"), g("CI_COMMIT_SHA")))
	return nil
}

// origin reads where the merge request comes from: a fork when its source
// project is not the merge request's (whichever of the two the pipeline
// runs in). The stop job runs in the deploy job's merge request pipeline
// and has the same variables.
func (p *CI) origin(c *cicontext.Context) {
	g := p.getenv
	c.HeadRepo = g("CI_MERGE_REQUEST_SOURCE_PROJECT_PATH")
	src, target := g("CI_MERGE_REQUEST_SOURCE_PROJECT_ID"), g("CI_MERGE_REQUEST_PROJECT_ID")
	c.Fork = src != "" && target != "" && src != target
}

func (p *CI) defaultBranchContext(c *cicontext.Context, source string) error {
	g := p.getenv
	switch {
	case source == "schedule":
		return fmt.Errorf("scheduled pipelines are not supported: a schedule would redeploy the full deployment on a timer; leave the job out of them (rules: - if: $CI_PIPELINE_SOURCE == \"schedule\" / when: never). Supported: %s", Supported)
	case !defaultBranchSources[source]:
		return fmt.Errorf("pipeline source %q is not supported; run the job in %s", source, Supported)
	case g("CI_COMMIT_TAG") != "":
		return fmt.Errorf("tag pipelines (CI_COMMIT_TAG=%s) are not supported; deploys run in %s", g("CI_COMMIT_TAG"), Supported)
	}
	branch, def := g("CI_COMMIT_BRANCH"), g("CI_DEFAULT_BRANCH")
	switch {
	case branch == "":
		return fmt.Errorf("CI_COMMIT_BRANCH is not set in this %s pipeline: only pipelines on the default branch deploy (to the input `deployment`); supported: %s", source, Supported)
	case def == "":
		return errors.New("CI_DEFAULT_BRANCH is not set: cannot tell whether this pipeline runs on the default branch")
	case branch != def:
		return fmt.Errorf("a %s pipeline on branch %q is not supported: only the default branch %q deploys (to the input `deployment`); merge requests get branch deployments. Supported: %s", source, branch, def, Supported)
	}
	c.Mode = cicontext.ModeFull
	c.Branch = branch
	c.Commit = p.envCommit(g("CI_COMMIT_SHA"))
	return nil
}

func (p *CI) closeContext(ctx context.Context, c *cicontext.Context, projectURL string) error {
	iid, err := p.closeIID()
	if err != nil {
		return err
	}
	if p.read == nil {
		return fmt.Errorf("the stop job reads merge request !%d's state from the GitLab API, and cannot: %v; add a project access token with the api scope (Reporter role or higher) as a masked CI/CD variable GITLAB_TOKEN", iid, p.readEr)
	}
	mr, err := p.read.MergeRequest(ctx, int64(iid))
	if err != nil {
		return err
	}
	switch mr.State {
	case "merged":
		c.PullRequestStatus = cicontext.StatusMerged
	case "closed":
		c.PullRequestStatus = cicontext.StatusClosed
	default:
		return fmt.Errorf("merge request !%d is %s, not merged or closed: the stop job marks a branch deployment closed only when its merge request is (it also runs when the environment's auto_stop_in expires, or by hand); nothing was changed", iid, mr.State)
	}
	c.Mode = cicontext.ModeClose
	c.Action = strings.ToLower(c.PullRequestStatus)
	p.origin(c)
	c.Branch = mr.SourceBranch
	c.PullRequestNumber = iid
	c.PullRequestURL = projectURL + "/-/merge_requests/" + strconv.Itoa(iid)
	if u, err := webURL("web_url", mr.WebURL); err == nil {
		c.PullRequestURL = u
	}
	if mr.SHA == p.getenv("CI_COMMIT_SHA") {
		c.Commit = p.envCommit(mr.SHA)
	} else {
		// Without git and the API, the merge request describes its head.
		c.Commit = cicontext.Commit{SHA: mr.SHA, Timestamp: mr.UpdatedAt, Message: mr.Title, AuthorName: mr.AuthorName, From: cicontext.FromEvent}
	}
	p.closeHead = mr.HeadPipelineID
	return nil
}

// environmentIID is an environment name that ends in mr-<iid>.
var environmentIID = regexp.MustCompile(`(?:^|[/_-])mr-([0-9]+)$`)

// closeIID is the stop job's merge request (see the package doc).
func (p *CI) closeIID() (int, error) {
	g := p.getenv
	type source struct{ name, value string }
	var found []source
	for _, name := range []string{"CI_MERGE_REQUEST_IID", "DAGSTER_MR_IID"} {
		if v := strings.TrimSpace(g(name)); v != "" {
			found = append(found, source{name, v})
		}
	}
	if m := environmentIID.FindStringSubmatch(g("CI_ENVIRONMENT_NAME")); m != nil {
		found = append(found, source{"CI_ENVIRONMENT_NAME", m[1]})
	}
	if len(found) == 0 {
		return 0, errors.New("the stop job cannot tell which merge request closed: CI_MERGE_REQUEST_IID is not set (the stop job runs in the deploy job's pipeline, which should be a merge request pipeline), nor DAGSTER_MR_IID, nor does CI_ENVIRONMENT_NAME end in mr-<iid>")
	}
	iid := 0
	for i, f := range found {
		n, err := parseIID(f.name, f.value)
		if err != nil {
			return 0, err
		}
		if i > 0 && n != iid {
			return 0, fmt.Errorf("the stop job's merge request is ambiguous: %s says !%d, %s says !%d", found[0].name, iid, f.name, n)
		}
		iid = n
	}
	return iid, nil
}

// parseIID reads a merge request IID; "" is 0.
func parseIID(name, v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || strings.Trim(v, "0123456789") != "" {
		return 0, fmt.Errorf("%s %q is not a merge request IID", name, v)
	}
	return n, nil
}

// envCommit describes sha by CI_COMMIT_TIMESTAMP, CI_COMMIT_MESSAGE and
// CI_COMMIT_AUTHOR when it is CI_COMMIT_SHA, else by the merge request's
// title, until git or the API tell more.
func (p *CI) envCommit(sha string) cicontext.Commit {
	g := p.getenv
	c := cicontext.Commit{SHA: sha, From: cicontext.FromEvent}
	if sha != g("CI_COMMIT_SHA") {
		c.Message = strings.TrimSpace(g("CI_MERGE_REQUEST_TITLE"))
		return c
	}
	if ts, err := time.Parse(time.RFC3339, g("CI_COMMIT_TIMESTAMP")); err == nil {
		c.Timestamp = ts.UTC()
	}
	c.Message = strings.TrimSpace(g("CI_COMMIT_MESSAGE"))
	c.AuthorName, c.AuthorEmail = splitAuthor(g("CI_COMMIT_AUTHOR"))
	return c
}

// splitAuthor splits git's "Name <email>".
func splitAuthor(s string) (name, email string) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "<"); i >= 0 && strings.HasSuffix(s, ">") {
		return strings.TrimSpace(s[:i]), s[i+1 : len(s)-1]
	}
	return s, ""
}

// webURL checks an address from a CI variable or an API answer: absolute
// http(s), with a host, no credentials, query or fragment, and no white
// space or control characters. It returns it without a trailing slash.
func webURL(name, v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", fmt.Errorf("%s %q is not an http(s) address", name, v)
	}
	return strings.TrimSuffix(v, "/"), nil
}

func serverPath(server, path string) string {
	if server == "" {
		return ""
	}
	return strings.TrimSuffix(server, "/") + "/" + path
}

// pathEscape escapes each segment of a branch name for a URL path, keeping
// its slashes (feature/x stays feature/x, a # or ? does not end the path).
func pathEscape(branch string) string {
	parts := strings.Split(branch, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
