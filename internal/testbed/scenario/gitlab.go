package scenario

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/gitlabemu"
)

// The GitLab side of a scenario (NewGitLab): one project on a GitLab
// instance whose web UI is GitLabServerURL and whose API is the emulator.
const (
	// GitLabToken is the project access token (api scope, Reporter role)
	// the project keeps as the masked CI/CD variable GITLAB_TOKEN.
	GitLabToken = "glpat-emulatedProjectToken0123"
	// GitLabJobToken is every job's CI_JOB_TOKEN, and so, as on GitLab,
	// CI_REGISTRY_PASSWORD: the scenario's registry accepts it from
	// GitLabRegistryUser.
	GitLabJobToken      = "glcbt-64_emulatedJobToken012345"
	GitLabRegistryUser  = "gitlab-ci-token" // CI_REGISTRY_USER
	GitLabServerURL     = "https://gitlab.example.com"
	GitLabProjectPath   = "acme/data/platform" // CI_PROJECT_PATH: the branch deployments' repository
	GitLabProjectID     = 4242
	GitLabDefaultBranch = "main"
	// GitLabSourceBranch is the workspace's branch, the source branch of
	// merge request GitLabMR.
	GitLabSourceBranch = "changes"
	GitLabMR           = 7
	// GitLabEnvironmentPrefix is the template's default input `name`: the
	// stop job's environment is <prefix>/mr-<iid>.
	GitLabEnvironmentPrefix = "dagster"
)

// GitLabPipeline is the kind of pipeline a GitLab job runs in.
type GitLabPipeline int

const (
	// MergeRequestPipeline is a (detached) merge request pipeline: it runs
	// on the source branch's head, CI_COMMIT_SHA.
	MergeRequestPipeline GitLabPipeline = iota
	// MergedResultsPipeline runs on a merge of the source branch into the
	// target branch: CI_COMMIT_SHA is that merge commit (MergedResult makes
	// it and checks it out) and CI_MERGE_REQUEST_SOURCE_BRANCH_SHA the
	// source branch's head.
	MergedResultsPipeline
	// DefaultBranchPipeline is a push to the default branch.
	DefaultBranchPipeline
	// StopJob is the merge request environment's stop job, in a merge
	// request pipeline: CI_ENVIRONMENT_NAME is dagster/mr-<iid> and
	// CI_ENVIRONMENT_ACTION stop.
	StopJob
)

// NewGitLab is New for GitLab CI: the stand-ins are a real docker-registry
// that takes GitLabRegistryUser with GitLabJobToken (as GitLab's own
// registry takes CI_REGISTRY_USER and the job token), the Dagster+
// emulator and the GitLab API emulator with the project GitLabProjectPath,
// its access token GitLabToken and the open merge request GitLabMR from
// GitLabSourceBranch at the workspace's commit. The workspace is a checkout
// of the project (origin is its URL on GitLabServerURL).
func NewGitLab(ctx context.Context, dir, project string) (*Scenario, error) {
	return newScenario(ctx, dir, project, Options{GitLab: true})
}

func (s *Scenario) startGitLab() {
	s.GitLab = gitlabemu.New()
	srv := httptest.NewServer(s.GitLab)
	s.closers = append(s.closers, srv.Close)
	s.GitLabURL = gitlabemu.URL(srv.URL)
	s.GitLabProject = s.GitLab.AddProject(gitlabemu.Project{ID: GitLabProjectID, Path: GitLabProjectPath, DefaultBranch: GitLabDefaultBranch})
	s.GitLabBot = s.GitLab.AddProjectAccessToken(GitLabToken, s.GitLabProject, false)
	s.GitLab.AddJobToken(GitLabJobToken, s.GitLabProject)
	s.gitlabMRs = map[int]*gitlabemu.MergeRequest{}
}

// gitlabWorkspace makes the workspace look like a runner's clone: origin is
// the project's URL and origin/HEAD its default branch.
func (s *Scenario) gitlabWorkspace() error {
	for _, args := range [][]string{
		{"remote", "add", "origin", GitLabServerURL + "/" + GitLabProjectPath + ".git"},
		{"update-ref", "refs/remotes/origin/" + GitLabDefaultBranch, "HEAD"},
		{"symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/" + GitLabDefaultBranch},
		{"config", "user.name", "Jane Doe"},
		{"config", "user.email", "jane@example.com"},
	} {
		if _, err := git(s.Workspace, args...); err != nil {
			return err
		}
	}
	s.SetMergeRequest(GitLabMR, GitLabSourceBranch, gitlabemu.StateOpened)
	return nil
}

// publishGitLab stores the head commit in the emulator and moves the merge
// requests of the workspace's branch to it, as a push does.
func (s *Scenario) publishGitLab(msg string) {
	now := time.Now().UTC().Truncate(time.Second)
	s.GitLab.AddCommit(s.GitLabProject, gitlabemu.Commit{SHA: s.HeadSHA, Message: msg, AuthorName: "Jane Doe",
		AuthorEmail: "jane@example.com", AuthoredDate: now, CommittedDate: now})
	for _, mr := range s.gitlabMRs {
		if mr.SourceBranch == GitLabSourceBranch {
			mr.SHA = s.HeadSHA
			s.GitLab.SetMergeRequest(s.GitLabProject, *mr)
		}
	}
}

// SetMergeRequest stores merge request iid, from sourceBranch at the
// workspace's head commit, in state (gitlabemu.StateOpened, StateMerged,
// StateClosed), as the API will show it.
func (s *Scenario) SetMergeRequest(iid int, sourceBranch, state string) {
	mr := s.gitlabMRs[iid]
	if mr == nil {
		mr = &gitlabemu.MergeRequest{IID: int64(iid), Title: "Add quickstart code locations", Author: "jane", TargetBranch: GitLabDefaultBranch}
		s.gitlabMRs[iid] = mr
	}
	mr.SourceBranch, mr.State, mr.SHA, mr.UpdatedAt = sourceBranch, state, s.HeadSHA, time.Time{}
	s.GitLab.SetMergeRequest(s.GitLabProject, *mr)
}

// MergedResult checks out, detached, a merge commit of the workspace's
// branch into a default branch that has moved on, as a merged results
// pipeline checks out refs/merge-requests/<iid>/merge, and returns it. Its
// parents are the default branch's head, which it also returns, and
// HeadSHA, which stays the source branch's head (the commit to deploy).
func (s *Scenario) MergedResult() (merge, target string, err error) {
	steps := [][]string{
		{"checkout", "-q", "-B", GitLabDefaultBranch, s.HeadSHA},
		{"commit", "-q", "--allow-empty", "-m", "Unrelated change on " + GitLabDefaultBranch},
		{"checkout", "-q", "--detach"},
		{"merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge branch '%s' into '%s'", GitLabSourceBranch, GitLabDefaultBranch), GitLabSourceBranch},
	}
	for i, args := range steps {
		if _, err := git(s.Workspace, args...); err != nil {
			return "", "", err
		}
		if i == 1 {
			if target, err = git(s.Workspace, "rev-parse", "HEAD"); err != nil {
				return "", "", err
			}
		}
	}
	merge, err = git(s.Workspace, "rev-parse", "HEAD")
	return merge, target, err
}

// GitLabVars returns the predefined variables GitLab gives a job of a
// pipeline of kind (for merge request iid; iid is ignored for the default
// branch): GITLAB_CI, the server, project, pipeline, job, registry and
// commit variables, and those of the merge request. Each call is a new
// pipeline and job, with larger IDs than the last. For
// MergedResultsPipeline, call MergedResult first and pass its commits in
// merge and target; they are ignored otherwise.
func (s *Scenario) GitLabVars(kind GitLabPipeline, iid int, merge, target string) (map[string]string, error) {
	s.events++
	pipeline, job := 5000+s.events, 900000+s.events
	project := GitLabServerURL + "/" + GitLabProjectPath
	v := map[string]string{
		"CI":                       "true",
		"GITLAB_CI":                "true",
		"CI_SERVER_URL":            GitLabServerURL,
		"CI_SERVER_HOST":           strings.TrimPrefix(GitLabServerURL, "https://"),
		"CI_SERVER_FQDN":           strings.TrimPrefix(GitLabServerURL, "https://"),
		"CI_API_V4_URL":            s.GitLabURL,
		"CI_PROJECT_ID":            strconv.FormatInt(s.GitLabProject, 10),
		"CI_PROJECT_PATH":          GitLabProjectPath,
		"CI_PROJECT_NAME":          filepath.Base(GitLabProjectPath),
		"CI_PROJECT_NAMESPACE":     filepath.Dir(GitLabProjectPath),
		"CI_PROJECT_URL":           project,
		"CI_PROJECT_DIR":           s.Workspace,
		"CI_BUILDS_DIR":            filepath.Dir(s.Workspace),
		"CI_DEFAULT_BRANCH":        GitLabDefaultBranch,
		"CI_PIPELINE_ID":           strconv.Itoa(pipeline),
		"CI_PIPELINE_IID":          strconv.Itoa(s.events),
		"CI_PIPELINE_URL":          fmt.Sprintf("%s/-/pipelines/%d", project, pipeline),
		"CI_JOB_ID":                strconv.Itoa(job),
		"CI_JOB_URL":               fmt.Sprintf("%s/-/jobs/%d", project, job),
		"CI_JOB_TOKEN":             GitLabJobToken,
		"CI_REGISTRY":              s.Registry.Addr,
		"CI_REGISTRY_IMAGE":        s.Registry.Addr + "/" + GitLabProjectPath,
		"CI_REGISTRY_USER":         GitLabRegistryUser,
		"CI_REGISTRY_PASSWORD":     GitLabJobToken,
		"CI_DEPENDENCY_PROXY_USER": "gitlab-ci-token",
	}
	var sha string
	switch kind {
	case DefaultBranchPipeline:
		sha = s.HeadSHA
		v["CI_PIPELINE_SOURCE"] = "push"
		v["CI_JOB_NAME"] = GitLabEnvironmentPrefix + "-deploy"
		v["CI_COMMIT_BRANCH"] = GitLabDefaultBranch
		v["CI_COMMIT_REF_NAME"] = GitLabDefaultBranch
	case MergeRequestPipeline, MergedResultsPipeline, StopJob:
		mr := s.gitlabMRs[iid]
		if mr == nil {
			return nil, fmt.Errorf("no merge request !%d: SetMergeRequest first", iid)
		}
		mr.HeadPipelineID = int64(pipeline)
		s.GitLab.SetMergeRequest(s.GitLabProject, *mr)
		sha = mr.SHA
		v["CI_PIPELINE_SOURCE"] = "merge_request_event"
		v["CI_COMMIT_REF_NAME"] = mr.SourceBranch
		v["CI_MERGE_REQUEST_IID"] = strconv.Itoa(iid)
		v["CI_MERGE_REQUEST_ID"] = strconv.Itoa(300000 + iid)
		v["CI_MERGE_REQUEST_PROJECT_ID"] = v["CI_PROJECT_ID"]
		v["CI_MERGE_REQUEST_PROJECT_PATH"] = GitLabProjectPath
		v["CI_MERGE_REQUEST_PROJECT_URL"] = project
		v["CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"] = mr.SourceBranch
		v["CI_MERGE_REQUEST_TARGET_BRANCH_NAME"] = GitLabDefaultBranch
		v["CI_MERGE_REQUEST_TITLE"] = mr.Title
		v["CI_MERGE_REQUEST_EVENT_TYPE"] = "detached"
		v["CI_MERGE_REQUEST_REF_PATH"] = fmt.Sprintf("refs/merge-requests/%d/head", iid)
		v["CI_JOB_NAME"] = GitLabEnvironmentPrefix + "-branch-deploy"
		if kind == MergedResultsPipeline {
			if merge == "" || target == "" {
				return nil, errors.New("a merged results pipeline needs the merge and target commits of MergedResult")
			}
			// The source branch's head is only in this variable; the
			// pipeline runs on the merge commit.
			v["CI_MERGE_REQUEST_SOURCE_BRANCH_SHA"] = sha
			v["CI_MERGE_REQUEST_TARGET_BRANCH_SHA"] = target
			v["CI_MERGE_REQUEST_EVENT_TYPE"] = "merged_result"
			v["CI_MERGE_REQUEST_REF_PATH"] = fmt.Sprintf("refs/merge-requests/%d/merge", iid)
			sha = merge
		}
		if kind == StopJob {
			v["CI_JOB_NAME"] = GitLabEnvironmentPrefix + "-branch-stop"
			v["CI_ENVIRONMENT_NAME"] = fmt.Sprintf("%s/mr-%d", GitLabEnvironmentPrefix, iid)
			v["CI_ENVIRONMENT_SLUG"] = fmt.Sprintf("%s-mr-%d", GitLabEnvironmentPrefix, iid)
			v["CI_ENVIRONMENT_ACTION"] = "stop"
			v["CI_ENVIRONMENT_TIER"] = "development"
			v["GIT_STRATEGY"] = "none"
		}
	default:
		return nil, fmt.Errorf("unknown pipeline kind %d", kind)
	}
	v["CI_COMMIT_SHA"] = sha
	v["CI_COMMIT_SHORT_SHA"] = sha[:8]
	v["CI_COMMIT_REF_SLUG"] = refSlug(v["CI_COMMIT_REF_NAME"])
	// CI_COMMIT_* describe CI_COMMIT_SHA, as git log shows it.
	out, err := git(s.Workspace, "show", "-s", "--format=%aI%x00%an <%ae>%x00%s%x00%B", sha)
	if err != nil {
		return nil, err
	}
	f := strings.SplitN(out, "\x00", 4)
	if len(f) != 4 {
		return nil, fmt.Errorf("git show %s: %q", sha, out)
	}
	v["CI_COMMIT_TIMESTAMP"], v["CI_COMMIT_AUTHOR"], v["CI_COMMIT_TITLE"], v["CI_COMMIT_MESSAGE"] = f[0], f[1], f[2], f[3]
	return v, nil
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// refSlug is GitLab's CI_COMMIT_REF_SLUG.
func refSlug(ref string) string {
	s := strings.Trim(slugRE.ReplaceAllString(strings.ToLower(ref), "-"), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// GitLabCICDVariables are the project's masked CI/CD variables: the
// Dagster+ API token and the access token for the merge request's note.
func GitLabCICDVariables() map[string]string {
	return map[string]string{"DAGSTER_CLOUD_API_TOKEN": DagsterToken, "GITLAB_TOKEN": GitLabToken}
}

// GitLabInputs returns the inputs a GitLab run passes by default (the
// Dagster+ emulator's organization and URL, a short load timeout), with
// inputs over them.
func (s *Scenario) GitLabInputs(inputs map[string]string) map[string]string {
	all := map[string]string{
		"organization_id":       Organization,
		"dagster_cloud_url":     s.DagsterURL,
		"location_load_timeout": "60",
	}
	for k, v := range inputs {
		all[k] = v
	}
	return all
}

// RunGitLab runs binary with args (e.g. "deploy", "--dotenv", "deploy.env")
// as a GitLab job's script runs it: in CI_PROJECT_DIR, the workspace, with
// GitLabCICDVariables, the inputs as INPUT_<NAME> variables (as the
// template sets them; GitLabInputs supplies the stand-ins' defaults) and
// job, the predefined variables (GitLabVars), over them. A value "" in job
// unsets that variable. DOCKER_HOST and, when set, DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH and DOCKER_TLS_CERTDIR come from this process. The
// dotenv report named by --dotenv is read into Result.Dotenv.
func (s *Scenario) RunGitLab(ctx context.Context, binary string, args []string, job, inputs map[string]string) (*Result, error) {
	vars := GitLabCICDVariables()
	for k, v := range s.GitLabInputs(inputs) {
		vars["INPUT_"+strings.ToUpper(k)] = v
	}
	for k, v := range job {
		if v == "" {
			delete(vars, k)
			continue
		}
		vars[k] = v
	}
	dotenv := ""
	for i, a := range args {
		if a == "--dotenv" && i+1 < len(args) {
			dotenv = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--dotenv="); ok {
			dotenv = v
		}
	}
	if dotenv != "" && !filepath.IsAbs(dotenv) {
		dotenv = filepath.Join(s.Workspace, dotenv)
	}
	if dotenv != "" {
		if err := os.Remove(dotenv); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	dockerConfig := filepath.Join(s.Dir, "docker-config")
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		return nil, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.Dir, "DOCKER_CONFIG=" + dockerConfig}
	for _, k := range []string{"DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS_CERTDIR"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+vars[k])
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	if s.StopSignal != nil {
		cmd.Cancel = func() error { return cmd.Process.Signal(s.StopSignal) }
		cmd.WaitDelay = 90 * time.Second
	}
	cmd.Dir = s.Workspace
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := &Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case err != nil:
		return nil, err
	}
	if dotenv != "" {
		raw, err := os.ReadFile(dotenv)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			res.DotenvRaw = string(raw)
			if res.Dotenv, err = ParseDotenv(raw); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

var dotenvKey = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// ParseDotenv reads a dotenv report as GitLab does: KEY=VALUE lines, split
// at the first "=", white space around key and value dropped, quotes kept;
// keys of letters, digits and underscores. Any other line, and a file of
// 5 KiB or more, is an error (GitLab then refuses the whole report).
func ParseDotenv(data []byte) (map[string]string, error) {
	if len(data) >= 5*1024 {
		return nil, fmt.Errorf("dotenv report of %d bytes: GitLab refuses 5 KiB or more", len(data))
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !dotenvKey.MatchString(k) {
			return nil, fmt.Errorf("dotenv line %d %q is not KEY=VALUE", n, line)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, sc.Err()
}
