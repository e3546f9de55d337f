// Package scenario sets up the stand-ins a run of the action talks to — a
// real docker-registry with htpasswd auth, the Dagster+ emulator and the
// GitHub emulator — plus a git workspace holding an example project, and
// runs the built binary the way the runner runs a Docker action. The
// end-to-end tests and the local demo share it.
//
// NewGitLab sets up the same for GitLab CI (see gitlab.go): the GitLab API
// emulator instead of GitHub's, a registry that takes the job token as
// GitLab's own registry does, and RunGitLab runs the binary with a job's
// predefined variables instead of GITHUB_*.
package scenario

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/githubemu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/gitlabemu"
)

// Credentials the stand-ins accept.
const (
	DagsterToken     = "dagster-agent-token-0123456789"
	GitHubToken      = "ghs_emulatedInstallationToken0123"
	RegistryUser     = "ci-pusher"
	RegistryPassword = "registry-Pa55word-0123"
	Organization     = "acme"
)

// Scenario is one workspace and its stand-ins.
type Scenario struct {
	Dir        string // scratch directory
	Workspace  string // git checkout with the example project (GITHUB_WORKSPACE)
	HeadSHA    string // the workspace's commit
	Registry   *testbed.Registry
	Dagster    *dagsteremu.Server
	DagsterURL string
	GitHub     *githubemu.Server // nil in GitLab mode
	GitHubURL  string            // GITHUB_API_URL
	RepoRoot   string

	// GitLab mode (NewGitLab); GitLab is nil otherwise.
	GitLab        *gitlabemu.Server
	GitLabURL     string // CI_API_V4_URL of the emulator
	GitLabProject int64  // the project's ID in the emulator (CI_PROJECT_ID)
	GitLabBot     string // the user GITLAB_TOKEN writes notes as
	gitlabMRs     map[int]*gitlabemu.MergeRequest

	// Serverless mode (Options.Serverless); nil and "" otherwise.
	// ServerlessRegistry is the registry the Dagster+ emulator hands out
	// (a second docker-registry, with its own user) and ServerlessURL the
	// registryUrl it hands out.
	ServerlessRegistry *testbed.Registry
	ServerlessURL      string
	// StopSignal, when set, is what Run sends the binary when its context
	// ends (as the runner sends SIGTERM to a cancelled job); else it is
	// killed.
	StopSignal os.Signal
	// RunnerTemp, when set, is the runner's temp directory for
	// RunContainer: its _github_home is the container's /github/home, and
	// RUNNER_TEMP names it, as on a runner. Else each run gets a fresh home.
	RunnerTemp string
	// ContainerEnv is more environment for RunContainer (a step's env:).
	ContainerEnv map[string]string

	closers []func()
	events  int
}

// New copies testdata/projects/<project> into a git workspace under dir and
// starts the stand-ins.
func New(ctx context.Context, dir, project string) (*Scenario, error) {
	return newScenario(ctx, dir, project, Options{})
}

// NewWith is New, or NewGitLab with opts.GitLab, with the stand-ins set up
// as opts says (e.g. a Dagster+ Serverless organization).
func NewWith(ctx context.Context, dir, project string, opts Options) (*Scenario, error) {
	return newScenario(ctx, dir, project, opts)
}

func newScenario(ctx context.Context, dir, project string, opts Options) (*Scenario, error) {
	gitlab := opts.GitLab
	root, err := testbed.RepoRoot()
	if err != nil {
		return nil, err
	}
	s := &Scenario{Dir: dir, Workspace: filepath.Join(dir, "workspace"), RepoRoot: root}
	user, password := RegistryUser, RegistryPassword
	if gitlab {
		// GitLab's registry takes the job token as CI_REGISTRY_USER's password.
		user, password = GitLabRegistryUser, GitLabJobToken
	}
	reg, err := testbed.StartRegistry(ctx, filepath.Join(dir, "registry"), user, password)
	if err != nil {
		return nil, err
	}
	s.Registry = reg
	s.closers = append(s.closers, func() { _ = reg.Close() })

	dagsterOpts := []dagsteremu.Option{dagsteremu.WithTokens(DagsterToken), dagsteremu.WithOrganization(Organization)}
	if opts.Serverless != nil {
		o, err := s.startServerless(ctx, *opts.Serverless)
		if err != nil {
			s.Close()
			return nil, err
		}
		dagsterOpts = append(dagsterOpts, o...)
	}
	dagsterOpts = append(dagsterOpts, opts.Dagster...)
	s.Dagster = dagsteremu.New(dagsterOpts...)
	dsrv := httptest.NewServer(s.Dagster)
	s.DagsterURL = dsrv.URL
	s.closers = append(s.closers, dsrv.Close)
	if gitlab {
		s.startGitLab()
	} else {
		s.GitHub = githubemu.New(GitHubToken, "github-actions[bot]")
		gsrv := httptest.NewServer(s.GitHub)
		s.GitHubURL = githubemu.URL(gsrv.URL)
		s.closers = append(s.closers, gsrv.Close)
	}

	if err := copyProject(filepath.Join(root, "testdata", "projects", project), s.Workspace, map[string]string{"{{REGISTRY}}": reg.Addr}); err != nil {
		s.Close()
		return nil, err
	}
	if s.HeadSHA, err = gitCommit(s.Workspace, "Add quickstart code locations"); err != nil {
		s.Close()
		return nil, err
	}
	if gitlab {
		if err := s.gitlabWorkspace(); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.publish("Add quickstart code locations")
	return s, nil
}

// Close stops the stand-ins.
func (s *Scenario) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

func copyProject(src, dst string, replace map[string]string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for k, v := range replace {
			data = bytes.ReplaceAll(data, []byte(k), []byte(v))
		}
		return os.WriteFile(target, data, 0o644)
	})
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Jane Doe", "GIT_AUTHOR_EMAIL=jane@example.com",
		"GIT_COMMITTER_NAME=Jane Doe", "GIT_COMMITTER_EMAIL=jane@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func gitCommit(dir, msg string) (string, error) {
	if _, err := git(dir, "init", "-q", "-b", "changes"); err != nil {
		return "", err
	}
	if _, err := git(dir, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := git(dir, "commit", "-q", "-m", msg); err != nil {
		return "", err
	}
	return git(dir, "rev-parse", "HEAD")
}

// Commit adds an empty commit to the workspace (a new push to the PR).
func (s *Scenario) Commit(msg string) error {
	if s.GitLab != nil {
		// Back on the source branch after a MergedResult checkout.
		if _, err := git(s.Workspace, "checkout", "-q", GitLabSourceBranch); err != nil {
			return err
		}
	}
	if _, err := git(s.Workspace, "commit", "-q", "--allow-empty", "-m", msg); err != nil {
		return err
	}
	sha, err := git(s.Workspace, "rev-parse", "HEAD")
	s.HeadSHA = sha
	s.publish(msg)
	return err
}

// publish makes the head commit known to the GitHub (or GitLab) emulator,
// as a push would, for a run that cannot read it from the checkout.
func (s *Scenario) publish(msg string) {
	if s.GitLab != nil {
		s.publishGitLab(msg)
		return
	}
	s.GitHub.AddCommit("Codertocat", "Hello-World", githubemu.Commit{
		SHA: s.HeadSHA, Message: msg, AuthorName: "Jane Doe", AuthorEmail: "jane@example.com",
		AuthorLogin: "jane", AvatarURL: "https://avatars.example/jane", Date: time.Now().UTC().Truncate(time.Second),
	})
}

// Event writes testdata/events/<name> with its head commit replaced by the
// workspace's, and returns its path. edit may change the payload further.
func (s *Scenario) Event(name string, edit func(map[string]any)) (string, error) {
	out, err := testbed.EventFixture(name, func(ev map[string]any) {
		if pr, ok := ev["pull_request"].(map[string]any); ok {
			pr["head"].(map[string]any)["sha"] = s.HeadSHA
		}
		if mg, ok := ev["merge_group"].(map[string]any); ok {
			mg["head_sha"] = s.HeadSHA
			if hc, ok := mg["head_commit"].(map[string]any); ok {
				hc["id"] = s.HeadSHA
			}
		}
		if _, ok := ev["after"]; ok {
			ev["after"] = s.HeadSHA
		}
		if edit != nil {
			edit(ev)
		}
	})
	if err != nil {
		return "", err
	}
	s.events++
	path := filepath.Join(s.Dir, fmt.Sprintf("event-%d.json", s.events))
	return path, os.WriteFile(path, out, 0o644)
}

// Result is what a run of the binary left.
type Result struct {
	ExitCode int
	Stdout   string
	Stderr   string
	Outputs  map[string]string
	Summary  string
	// Dotenv is what a GitLab run (RunGitLab) wrote to its --dotenv file,
	// as GitLab reads a dotenv report; nil when it wrote none. DotenvRaw is
	// the file as it is.
	Dotenv    map[string]string
	DotenvRaw string
	// Elapsed is the wall-clock time of the run, and MaxRSSKiB the peak
	// resident set size of the binary in KiB (its VmHWM, sampled every few
	// milliseconds while it runs; see samplePeakRSS), for Run's runs of the
	// binary; zero for a run in a container.
	Elapsed   time.Duration
	MaxRSSKiB int64
}

// files are a run's file-command files on the host.
type files struct {
	dir, output, summary string
}

func (s *Scenario) newFiles() (files, error) {
	s.events++
	f := files{dir: filepath.Join(s.Dir, fmt.Sprintf("file_commands-%d", s.events))}
	f.output, f.summary = filepath.Join(f.dir, "set_output"), filepath.Join(f.dir, "step_summary")
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return f, err
	}
	for _, p := range []string{f.output, f.summary} {
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return f, err
		}
	}
	return f, nil
}

// result reads what the run wrote to its file-command files.
func (f files) result(res *Result) (*Result, error) {
	summary, err := os.ReadFile(f.summary)
	if err != nil {
		return nil, err
	}
	res.Summary = string(summary)
	if res.Outputs, err = ParseOutputs(f.output); err != nil {
		return nil, err
	}
	return res, nil
}

// layout is where the action finds its files: host paths for a run of the
// binary, /github/... for a run in the container.
type layout struct {
	workspace, event, output, summary string
}

// env is the environment the runner gives the action, with the stand-ins'
// inputs overridden by inputs.
func (s *Scenario) env(l layout, eventName string, inputs map[string]string) []string {
	env := []string{
		"CI=true",
		"GITHUB_ACTIONS=true",
		"GITHUB_EVENT_NAME=" + eventName,
		"GITHUB_EVENT_PATH=" + l.event,
		"GITHUB_WORKSPACE=" + l.workspace,
		"GITHUB_OUTPUT=" + l.output,
		"GITHUB_STEP_SUMMARY=" + l.summary,
		"GITHUB_REPOSITORY=Codertocat/Hello-World",
		"GITHUB_SERVER_URL=https://github.com",
		"GITHUB_API_URL=" + s.GitHubURL,
		"GITHUB_SHA=0000000000000000000000000000000000000000",
		"GITHUB_REF=refs/pull/2/merge",
		"GITHUB_RUN_ID=" + fmt.Sprint(1000+s.events),
		"GITHUB_RUN_ATTEMPT=1",
		"GITHUB_ACTOR=Codertocat",
	}
	all := map[string]string{
		"organization_id":         Organization,
		"dagster_cloud_api_token": DagsterToken,
		"dagster_cloud_url":       s.DagsterURL,
		"registry_username":       RegistryUser,
		"registry_password":       RegistryPassword,
		"github_token":            GitHubToken,
		"location_load_timeout":   "60",
	}
	for k, v := range inputs {
		all[k] = v
	}
	for k, v := range all {
		env = append(env, "INPUT_"+strings.ToUpper(k)+"="+v)
	}
	return env
}

// Run runs binary as the runner runs a Docker action: no arguments, the
// GITHUB_* and INPUT_* environment, and file commands in fresh files.
// inputs are action inputs by name (e.g. "organization_id").
func (s *Scenario) Run(ctx context.Context, binary, eventName, eventPath string, inputs map[string]string) (*Result, error) {
	f, err := s.newFiles()
	if err != nil {
		return nil, err
	}
	dockerConfig := filepath.Join(s.Dir, "docker-config")
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, binary)
	if s.StopSignal != nil {
		// As the runner cancels a job: a signal first, a kill later.
		cmd.Cancel = func() error { return cmd.Process.Signal(s.StopSignal) }
		cmd.WaitDelay = 90 * time.Second
	}
	cmd.Dir = s.Workspace
	cmd.Env = append(s.env(layout{s.Workspace, eventPath, f.output, f.summary}, eventName, inputs),
		"PATH="+os.Getenv("PATH"),
		"HOME="+s.Dir,
		"DOCKER_HOST="+os.Getenv("DOCKER_HOST"),
		"DOCKER_CONFIG="+dockerConfig,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	var peak int64
	if err = cmd.Start(); err == nil {
		done := make(chan struct{})
		sampled := make(chan int64, 1)
		go func() { sampled <- samplePeakRSS(cmd.Process.Pid, done) }()
		err = cmd.Wait()
		close(done)
		peak = <-sampled
	}
	res := &Result{Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start), MaxRSSKiB: peak}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case err != nil:
		return nil, err
	}
	return f.result(res)
}

// RunContainer runs the action image the way GitHub's runner runs a Docker
// action: `docker run --workdir /github/workspace` with the Docker socket,
// the workspace, the file-command, workflow and home directories mounted,
// the GITHUB_* and INPUT_* environment, no arguments, as root. One
// difference: it shares the host's network, where the stand-ins listen on
// loopback (on GitHub the container reaches the internet instead).
func (s *Scenario) RunContainer(ctx context.Context, docker *client.Client, image, eventName, eventPath string, inputs map[string]string) (*Result, error) {
	socket, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://")
	if !ok {
		return nil, fmt.Errorf("DOCKER_HOST %q is not a unix socket to mount", os.Getenv("DOCKER_HOST"))
	}
	f, err := s.newFiles()
	if err != nil {
		return nil, err
	}
	workflow, home := filepath.Join(s.Dir, fmt.Sprintf("workflow-%d", s.events)), filepath.Join(s.Dir, fmt.Sprintf("home-%d", s.events))
	if s.RunnerTemp != "" {
		home = filepath.Join(s.RunnerTemp, "_github_home")
	}
	for _, d := range []string{workflow, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	event, err := os.ReadFile(eventPath)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(workflow, "event.json"), event, 0o644); err != nil {
		return nil, err
	}
	env := append(s.env(layout{
		workspace: "/github/workspace",
		event:     "/github/workflow/event.json",
		output:    "/github/file_commands/" + filepath.Base(f.output),
		summary:   "/github/file_commands/" + filepath.Base(f.summary),
	}, eventName, inputs), "HOME=/github/home")
	if s.RunnerTemp != "" {
		env = append(env, "RUNNER_TEMP="+s.RunnerTemp)
	}
	for k, v := range s.ContainerEnv {
		env = append(env, k+"="+v)
	}
	created, err := docker.ContainerCreate(ctx, &container.Config{Image: image, Env: env, WorkingDir: "/github/workspace"},
		&container.HostConfig{
			NetworkMode: "host",
			Binds: []string{
				socket + ":/var/run/docker.sock",
				s.Workspace + ":/github/workspace",
				f.dir + ":/github/file_commands",
				workflow + ":/github/workflow",
				home + ":/github/home",
			},
		}, nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("creating the action container: %w", err)
	}
	defer docker.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return nil, fmt.Errorf("starting the action container: %w", err)
	}
	res := &Result{}
	waitC, errC := docker.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case err := <-errC:
		return nil, err
	case w := <-waitC:
		res.ExitCode = int(w.StatusCode)
	}
	logs, err := docker.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return nil, err
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		return nil, err
	}
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	return f.result(res)
}

// ParseOutputs reads a GITHUB_OUTPUT file: name=value lines and
// name<<DELIMITER heredocs.
func ParseOutputs(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok {
			var val []string
			for sc.Scan() && sc.Text() != delim {
				val = append(val, sc.Text())
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		if name, val, ok := strings.Cut(line, "="); ok {
			out[name] = val
		}
	}
	return out, sc.Err()
}

// samplePeakRSS reads the high-water mark of pid's resident set (VmHWM of
// /proc/<pid>/status, in KiB) every 5 ms until done is closed, and returns
// the highest value read. VmHWM belongs to the process's own memory since
// its exec. The wait4 rusage of the child (ru_maxrss) is not used: Go starts
// a child with vfork, and Linux counts the parent's resident set, when the
// child execs, into the child's ru_maxrss, so it reports the test process's
// size, not the binary's. The status file is opened through a handle on
// /proc/<pid> taken at the start, which fails once that process is gone, so
// a later process with the same pid is never read. Growth in the last 5 ms of
// a run can be missed.
func samplePeakRSS(pid int, done <-chan struct{}) int64 {
	dir, err := os.Open(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		<-done
		return 0
	}
	defer dir.Close()
	var peak int64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if kib, ok := readVmHWM(dir); ok && kib > peak {
			peak = kib
		}
		select {
		case <-done:
			return peak
		case <-tick.C:
		}
	}
}

// readVmHWM reads VmHWM from the status file of the /proc/<pid> directory dir.
func readVmHWM(dir *os.File) (int64, bool) {
	fd, err := syscall.Openat(int(dir.Fd()), "status", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	f := os.NewFile(uintptr(fd), "status")
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err == nil {
				return kib, true
			}
		}
	}
	return 0, false
}
