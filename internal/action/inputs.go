package action

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/serverless"
)

// Inputs are the action's inputs (action.yml), with defaults applied.
type Inputs struct {
	Organization          string
	APIToken              string
	URL                   string // Dagster+ base URL override
	Deployment            string // full deployment for pushes; base deployment for branch deployments
	ProjectDir            string
	YAMLPath              string
	LocationNames         []string
	ImageTag              string
	RegistryUsername      string
	RegistryPassword      string
	GitHubToken           string
	PRComment             bool
	LocationLoadTimeout   time.Duration
	AgentHeartbeatTimeout time.Duration
	// HeartbeatDefault says agent_heartbeat_timeout was not set: it then
	// follows the agent type (120 s Hybrid, 900 s Serverless), as upstream.
	HeartbeatDefault bool

	// Serverless organizations: the generated Dockerfile's Python version,
	// base image and baked-in environment.
	PythonVersion string
	BaseImage     string
	EnvVars       []serverless.EnvVar

	// Build inputs; dagster_cloud.yaml's build section may override them
	// per location.
	Dockerfile   string
	BuildArgs    map[string]string
	Target       string
	Platform     string
	BuildSecrets map[string]string
	SSH          []string
	Labels       map[string]string
	Cache        bool
	Push         bool
	// MaxParallel bounds the builds that run at once.
	MaxParallel int
	// Reuse tags an earlier image of the same inputs instead of building.
	Reuse bool
	// Builder is "" for the Docker daemon, or a BuildKit address;
	// BuilderCerts a directory with ca.pem, cert.pem and key.pem for it.
	Builder, BuilderCerts string

	// The event policy (events.go): what runs that cannot or should not
	// deploy do. ForkPullRequests and DependabotPullRequests are
	// PolicySkip, PolicyFail or PolicyBuild; MergeGroup PolicyBuild or
	// PolicySkip; DraftPullRequests PolicyDeploy or PolicySkip.
	ForkPullRequests       string
	DependabotPullRequests string
	MergeGroup             string
	DraftPullRequests      string
	// DeleteOnClose deletes the branch deployment when its request closes,
	// instead of marking it CLOSED or MERGED.
	DeleteOnClose bool
	// DryRun resolves and checks everything, builds without pushing, and
	// changes nothing: no push, no deployment, no comment.
	DryRun bool

	// Registry login.
	AWSRoleARN                  string
	GCPCredentialsJSON          string
	GCPWorkloadIdentityProvider string
	GCPServiceAccount           string
}

// InputError is a bad or missing input.
type InputError struct {
	Input string
	Msg   string
}

func (e *InputError) Error() string { return fmt.Sprintf("input %s: %s", e.Input, e.Msg) }

// ReadInputs reads the inputs through input (which reads INPUT_<NAME>) and
// the documented environment fallbacks through getenv. An input that is
// absent or empty takes its action.yml default, so a run without the
// runner's defaults behaves the same.
func ReadInputs(input, getenv func(string) string) (Inputs, error) {
	get := func(name, env, def string) string {
		if v := strings.TrimSpace(input(name)); v != "" {
			return v
		}
		if env != "" {
			if v := strings.TrimSpace(getenv(env)); v != "" {
				return v
			}
		}
		return def
	}
	in := Inputs{
		Organization:     get("organization_id", "DAGSTER_CLOUD_ORGANIZATION", ""),
		APIToken:         get("dagster_cloud_api_token", "DAGSTER_CLOUD_API_TOKEN", ""),
		URL:              strings.TrimSuffix(get("dagster_cloud_url", "DAGSTER_CLOUD_URL", ""), "/"),
		Deployment:       get("deployment", "", "prod"),
		ProjectDir:       get("project_dir", "", "."),
		YAMLPath:         get("dagster_cloud_yaml_path", "", "dagster_cloud.yaml"),
		LocationNames:    config.SplitList(input("location_names")),
		ImageTag:         get("image_tag", "", ""),
		RegistryUsername: get("registry_username", "", ""),
		RegistryPassword: get("registry_password", "", ""),
		GitHubToken:      get("github_token", "GITHUB_TOKEN", ""),

		Dockerfile:                  get("dockerfile", "", "Dockerfile"),
		Target:                      get("target", "", ""),
		Platform:                    get("platform", "", "linux/amd64"),
		SSH:                         config.SplitList(input("ssh")),
		AWSRoleARN:                  get("aws_role_arn", "", ""),
		GCPCredentialsJSON:          strings.TrimSpace(input("gcp_credentials_json")),
		GCPWorkloadIdentityProvider: get("gcp_workload_identity_provider", "", ""),
		GCPServiceAccount:           get("gcp_service_account", "", ""),
	}
	var err error
	if in.BuildArgs, err = parsePairs("build_args", input("build_args")); err != nil {
		return in, err
	}
	if in.Labels, err = parsePairs("labels", input("labels")); err != nil {
		return in, err
	}
	if in.BuildSecrets, err = parsePairs("build_secrets", input("build_secrets")); err != nil {
		return in, err
	}
	if in.Cache, err = parseBool("cache", get("cache", "", "true")); err != nil {
		return in, err
	}
	if in.Push, err = parseBool("push", get("push", "", "true")); err != nil {
		return in, err
	}
	if in.MaxParallel, err = parseCount("max_parallel", get("max_parallel", "", "")); err != nil {
		return in, err
	}
	if in.Reuse, err = parseBool("reuse", get("reuse", "", "true")); err != nil {
		return in, err
	}
	in.Builder = get("builder", "BUILDKIT_HOST", "")
	if in.Builder == "docker" {
		in.Builder = ""
	}
	in.BuilderCerts = get("builder_certs", "BUILDKIT_CERT_PATH", "")
	if (in.GCPWorkloadIdentityProvider == "") != (in.GCPServiceAccount == "") {
		return in, &InputError{"gcp_workload_identity_provider", "gcp_workload_identity_provider and gcp_service_account go together: set both for keyless login to Google Artifact Registry"}
	}
	if in.PRComment, err = parseBool("pr_comment", get("pr_comment", "", "true")); err != nil {
		return in, err
	}
	// The waits default as upstream's: 3600 s for the locations to load
	// (dagster-cloud's DEFAULT_LOCATION_LOAD_TIMEOUT), 120 s for a running
	// agent (`ci deploy`'s default for Hybrid).
	if in.LocationLoadTimeout, err = parseSeconds("location_load_timeout", get("location_load_timeout", "", "3600")); err != nil {
		return in, err
	}
	in.HeartbeatDefault = strings.TrimSpace(input("agent_heartbeat_timeout")) == ""
	in.PythonVersion = get("python_version", "", serverless.DefaultPythonVersion)
	if err := serverless.CheckPythonVersion(in.PythonVersion); err != nil {
		return in, &InputError{"python_version", err.Error()}
	}
	in.BaseImage = get("base_image", "", "")
	if in.EnvVars, err = serverless.ParseEnvVars(input("env_vars")); err != nil {
		return in, &InputError{"env_vars", err.Error()}
	}
	if in.AgentHeartbeatTimeout, err = parseSeconds("agent_heartbeat_timeout", get("agent_heartbeat_timeout", "", "120")); err != nil {
		return in, err
	}
	if in.ImageTag != "" && !validTag(in.ImageTag) {
		return in, &InputError{"image_tag", fmt.Sprintf("%q is not a valid Docker tag (letters, digits, _, . and -, at most 128 characters, not starting with . or -)", in.ImageTag)}
	}
	for _, c := range []struct {
		name, def string
		to        *string
		values    []string
	}{
		{"fork_pull_requests", PolicySkip, &in.ForkPullRequests, []string{PolicySkip, PolicyFail, PolicyBuild}},
		{"dependabot_pull_requests", PolicySkip, &in.DependabotPullRequests, []string{PolicySkip, PolicyFail, PolicyBuild}},
		{"merge_group", PolicyBuild, &in.MergeGroup, []string{PolicyBuild, PolicySkip}},
		{"draft_pull_requests", PolicyDeploy, &in.DraftPullRequests, []string{PolicyDeploy, PolicySkip}},
	} {
		if *c.to, err = parseChoice(c.name, get(c.name, "", c.def), c.values); err != nil {
			return in, err
		}
	}
	if in.DeleteOnClose, err = parseBool("delete_on_close", get("delete_on_close", "", "false")); err != nil {
		return in, err
	}
	if in.DryRun, err = parseBool("dry_run", get("dry_run", "", "false")); err != nil {
		return in, err
	}
	return in, nil
}

// CheckRegistryPair reports registry_username without registry_password
// or the reverse. It is separate from ReadInputs so that a run that is
// skipped (a fork's pull request, whose secrets are empty) is not failed by
// a password from a secret it does not get.
func (in Inputs) CheckRegistryPair() error {
	if (in.RegistryUsername == "") != (in.RegistryPassword == "") {
		return &InputError{"registry_username", "registry_username and registry_password go together: set both, or neither to use the Docker config's credentials (pull requests from forks get no secrets, so a password from a secret is empty there)"}
	}
	return nil
}

// Paths resolves project_dir against the workspace and
// dagster_cloud_yaml_path against the project, and refuses either when it
// leaves the workspace (after "..", absolute paths and symlinks): the
// action reads and builds only what the checkout holds.
func (in Inputs) Paths(workspace string) (projectDir, yamlPath string, err error) {
	projectDir = in.ProjectDir
	if !filepath.IsAbs(projectDir) && workspace != "" {
		projectDir = filepath.Join(workspace, projectDir)
	}
	yamlPath = filepath.Join(projectDir, in.YAMLPath)
	if filepath.IsAbs(in.YAMLPath) {
		yamlPath = in.YAMLPath
	}
	if workspace == "" {
		return projectDir, yamlPath, nil
	}
	for _, c := range []struct{ input, value, path string }{{"project_dir", in.ProjectDir, projectDir}, {"dagster_cloud_yaml_path", in.YAMLPath, yamlPath}} {
		if err := config.Within(workspace, c.path); err != nil {
			return "", "", &InputError{c.input, fmt.Sprintf("%q %s; it must name a place inside the repository checkout (GITHUB_WORKSPACE, or CI_PROJECT_DIR on GitLab)", c.value, err)}
		}
	}
	return projectDir, yamlPath, nil
}

// CheckDagster reports missing Dagster+ settings. It is separate from
// ReadInputs so that a missing token is reported on the PR too.
func (in Inputs) CheckDagster() error {
	if in.Organization == "" && in.URL == "" {
		return &InputError{"organization_id", "the Dagster+ organization is not set: pass `organization_id: <your org>` (the first part of https://<org>.dagster.cloud) or set DAGSTER_CLOUD_ORGANIZATION"}
	}
	if in.APIToken == "" {
		return &InputError{"dagster_cloud_api_token", "the Dagster+ API token is not set: pass `dagster_cloud_api_token: ${{ secrets.DAGSTER_CLOUD_API_TOKEN }}` or set DAGSTER_CLOUD_API_TOKEN (create an agent token under Organization settings → Tokens). Pull requests from forks get no secrets"}
	}
	return nil
}

// Secrets are the values among the inputs that must never be shown.
func (in Inputs) Secrets() []string {
	out := []string{in.APIToken, in.RegistryPassword, in.GitHubToken, in.GCPCredentialsJSON}
	for _, v := range in.BuildSecrets {
		out = append(out, v)
	}
	return out
}

// parsePairs reads KEY=VALUE lines (blank lines and # comments skipped).
func parsePairs(name, v string) (map[string]string, error) {
	var out map[string]string
	for i, line := range strings.Split(v, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			// The line may hold a secret: show only its number.
			return nil, &InputError{name, fmt.Sprintf("line %d is not KEY=VALUE (one per line; a value cannot span lines)", i+1)}
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = val
	}
	return out, nil
}

// parseCount reads a positive number; "" means DefaultMaxParallel.
func parseCount(name, v string) (int, error) {
	if v == "" {
		return DefaultMaxParallel(), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, &InputError{name, fmt.Sprintf("%q is not a positive number", v)}
	}
	return n, nil
}

// DefaultMaxParallel is the number of builds run at once by default: the
// runner's CPUs, at least 2 (pushes wait on the network, not the CPU) and at
// most 8.
func DefaultMaxParallel() int { return min(max(runtime.NumCPU(), 2), 8) }

// parseChoice reads one of values, ignoring case.
func parseChoice(name, v string, values []string) (string, error) {
	for _, c := range values {
		if strings.EqualFold(v, c) {
			return c, nil
		}
	}
	return "", &InputError{name, fmt.Sprintf("%q is not one of %s", v, strings.Join(values, ", "))}
}

func parseBool(name, v string) (bool, error) {
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return false, &InputError{name, fmt.Sprintf("%q is not a boolean; use true or false", v)}
	}
	return b, nil
}

// parseSeconds takes whole seconds ("600") or a Go duration ("10m").
func parseSeconds(name, v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d, nil
	}
	return 0, &InputError{name, fmt.Sprintf("%q is not a number of seconds (for example 600, or 10m; 0 turns the wait off)", v)}
}

func validTag(t string) bool {
	if len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, r := range t {
		if !(r == '_' || r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
