// Package registryauth finds the credentials for pushing to (and pulling from) a container
// registry host, chosen by the kind of registry the host belongs to (see Detect). Every source
// ends in one registry.AuthConfig for the Docker daemon: no `docker login` subprocess runs and
// nothing is written to disk.
//
// The order in which Resolve tries the sources, per kind:
//
//   - ecr, ecr-public: the input aws_role_arn (keyless: the job's GitHub or GitLab OIDC token is exchanged with STS
//     AssumeRoleWithWebIdentity); else AWS credentials named by the environment
//     (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE, container
//     credentials); else the inputs registry_username/registry_password; else the Docker config;
//     else the rest of the AWS SDK's default chain (shared config files, EC2 instance role). The
//     AWS credentials are exchanged for a 12-hour registry password with GetAuthorizationToken.
//   - gcr (gcr.io, *.gcr.io, *-docker.pkg.dev): the input gcp_credentials_json (a service-account
//     key, exchanged for an access token); else gcp_workload_identity_provider +
//     gcp_service_account (keyless: the job's OIDC token is exchanged with Google STS and the
//     IAM Credentials API); else registry_username/registry_password; else the Docker config.
//   - ghcr (ghcr.io): registry_username/registry_password; else github_token as GITHUB_ACTOR;
//     else the Docker config.
//   - gitlab (registry.gitlab.com or $CI_REGISTRY): registry_username/registry_password; else, in
//     GitLab CI, CI_REGISTRY_USER with CI_REGISTRY_PASSWORD or CI_JOB_TOKEN; else the Docker config.
//   - dockerhub, acr, other: registry_username/registry_password; else the Docker config.
//
// The Docker config is config.json "auths", "credHelpers" and "credsStore", read through
// docker/cli's own credential store code (which runs docker-credential-<name> helpers), so an
// earlier docker/login-action step keeps working. A well-known registry kind with no
// credentials anywhere is an error naming the inputs that would satisfy it (wrapping
// ErrNoCredentials); any other host is then accessed anonymously (Source SourceNone).
package registryauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/docker/docker/api/types/registry"
)

const (
	// DockerHub is the host Host returns for Docker Hub repositories.
	DockerHub = "docker.io"
	// DockerHubConfigKey is the key under which `docker login` stores Docker Hub credentials in
	// config.json, and the key the classic builder expects in its AuthConfigs map.
	DockerHubConfigKey = "https://index.docker.io/v1/"

	// InputUsername and InputPassword name the action inputs that carry explicit credentials.
	InputUsername = "registry_username"
	InputPassword = "registry_password"
	// InputGitHubToken names the action input with the GitHub token used for ghcr.io.
	InputGitHubToken = "github_token"
)

// ErrNoCredentials is wrapped by the error Resolve returns when a well-known registry (every
// Kind but KindOther) has no credentials in any source.
var ErrNoCredentials = errors.New("no registry credentials")

// Host returns the registry host of an image repository reference such as
// "127.0.0.1:5000/team/app", "ghcr.io/o/r", "123.dkr.ecr.us-east-1.amazonaws.com/x" or
// "user/repo". A tag or digest may follow. References without a registry component, and the
// legacy Docker Hub names ("index.docker.io", "registry-1.docker.io"), give DockerHub.
//
// The first path component is a host when it contains "." or ":", is "localhost", or has an
// upper-case letter, as in github.com/distribution/reference.
func Host(repository string) string {
	name := strings.TrimSpace(repository)
	if i := strings.Index(name, "://"); i >= 0 {
		name = name[i+3:]
	}
	first, _, found := strings.Cut(name, "/")
	if !found || !(strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		return DockerHub
	}
	switch strings.ToLower(first) {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return DockerHub
	}
	return first
}

// ConfigKey returns the key that identifies host in a Docker config.json and in the classic
// builder's AuthConfigs map: DockerHubConfigKey for Docker Hub, the host itself otherwise.
func ConfigKey(host string) string {
	if Host(host+"/x") == DockerHub {
		return DockerHubConfigKey
	}
	return host
}

// Source says where credentials came from.
type Source string

const (
	SourceInputs           Source = "inputs"            // action inputs registry_username/registry_password
	SourceDockerConfig     Source = "docker-config"     // "auths" in the Docker config.json
	SourceCredentialHelper Source = "credential-helper" // docker-credential-<name> via credHelpers/credsStore
	SourceAWS              Source = "aws"               // an ECR / ECR Public authorization token from AWS credentials
	SourceGoogle           Source = "google"            // a Google OAuth2 access token (service-account key or workload identity federation)
	SourceGitHubToken      Source = "github-token"      // the action input github_token (ghcr.io)
	SourceGitLabCI         Source = "gitlab-ci"         // GitLab CI's CI_REGISTRY_USER and CI_REGISTRY_PASSWORD/CI_JOB_TOKEN
	SourceProvided         Source = "provided"          // given by the caller (Provide), e.g. the Dagster+ Serverless registry's token
	SourceNone             Source = "none"              // nothing found: anonymous access
)

// Credentials are the credentials for one registry host.
type Credentials struct {
	// Host is the registry host, as returned by Host.
	Host string
	// Kind is the kind of registry, as Detect tells it.
	Kind Kind
	// Auth carries the username/password (or identity token) with ServerAddress set to
	// ConfigKey(Host). It is empty for SourceNone.
	Auth registry.AuthConfig
	// Source is the kind of place the credentials came from.
	Source Source
	// Origin describes that place for people, e.g. "the action inputs
	// registry_username/registry_password", "an Amazon ECR token for role arn:aws:iam::…:role/x
	// via GitHub OIDC (input aws_role_arn)" or "credential helper docker-credential-ecr-login
	// (credHelpers in /home/runner/.docker/config.json)". It never holds a secret.
	Origin string
	// Expires is when derived credentials (ECR tokens, Google access tokens) stop working; zero
	// when unknown.
	Expires time.Time

	// derived holds further secrets met on the way (the raw ECR token, temporary AWS keys, the
	// GitHub OIDC token), for Secrets.
	derived []string
}

// Anonymous reports whether c carries no credentials at all.
func (c Credentials) Anonymous() bool { return IsEmpty(c.Auth) }

// Secrets returns the secret values behind c that a caller must mask in logs (e.g. with
// ::add-mask::): the password and tokens in Auth, their base64 form as it travels in HTTP
// headers, and secrets derived on the way such as the raw ECR authorization token, temporary
// AWS keys and the GitHub OIDC token. The username is not among them. Each value is a single
// line (a multi-line value comes as its lines), as ::add-mask:: needs.
func (c Credentials) Secrets() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		for _, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !seen[line] {
				seen[line] = true
				out = append(out, line)
			}
		}
	}
	add(c.Auth.Password)
	add(c.Auth.IdentityToken)
	add(c.Auth.RegistryToken)
	add(c.Auth.Auth)
	if c.Auth.Password != "" {
		add(base64.StdEncoding.EncodeToString([]byte(c.Auth.Username + ":" + c.Auth.Password)))
	}
	for _, s := range c.derived {
		add(s)
	}
	return out
}

// IsEmpty reports whether a carries no credentials.
func IsEmpty(a registry.AuthConfig) bool {
	return a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == ""
}

// Resolver resolves credentials for registry hosts from the action's inputs, the environment and
// the Docker config. The zero value uses the Docker config only. A Resolver caches what it
// resolved per host (until shortly before derived tokens expire); it is safe for concurrent use
// and must not be copied after first use.
type Resolver struct {
	// Username and Password come from the action inputs registry_username/registry_password.
	// Both or neither must be set. See the package documentation for which registries use them.
	Username, Password string
	// ConfigDir is the Docker config directory holding config.json. Empty means $DOCKER_CONFIG,
	// else ~/.docker.
	ConfigDir string
	// GitHubToken (input github_token) and GitHubActor (GITHUB_ACTOR; empty: read through
	// Getenv) log in to ghcr.io. The job needs `permissions: packages: write` to push.
	GitHubToken, GitHubActor string
	// AWSRoleARN (input aws_role_arn) is the IAM role to assume with the GitHub OIDC token for
	// Amazon ECR and ECR Public.
	AWSRoleARN string
	// GCPCredentialsJSON (input gcp_credentials_json) is a Google service-account key (JSON).
	GCPCredentialsJSON string
	// GCPWorkloadIdentityProvider ("projects/N/locations/global/workloadIdentityPools/P/providers/X")
	// and GCPServiceAccount (an e-mail address) log in to Google registries without a key, with
	// the GitHub OIDC token (inputs gcp_workload_identity_provider and gcp_service_account).
	GCPWorkloadIdentityProvider, GCPServiceAccount string
	// IDToken returns an OIDC token of the job for an audience: GitHub Actions' (see
	// GitHubIDToken; nil when the job has no `permissions: id-token: write`) or GitLab's ID
	// token. OIDCName names its issuer in messages ("GitHub", the default, or "GitLab").
	IDToken  func(ctx context.Context, audience string) (string, error)
	OIDCName string
	// Getenv reads the environment (nil: os.Getenv): CI_REGISTRY and the other GitLab CI
	// variables, GITHUB_ACTOR and GITHUB_RUN_ID, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/
	// AWS_SESSION_TOKEN and the AWS_ENDPOINT_URL* overrides. The rest of the AWS SDK's default
	// credential chain (profiles, web identity files, container credentials) reads the process
	// environment itself.
	Getenv func(string) string
	// HTTPClient is used for the AWS, Google and OIDC requests; nil means the libraries' defaults.
	HTTPClient *http.Client

	mu    sync.Mutex
	cache map[string]Credentials
}

// Provide sets the credentials of a registry host that the caller got
// elsewhere (Dagster+ hands out a Serverless organization's registry
// token): Resolve returns them for the host instead of looking.
func (r *Resolver) Provide(host, username, password, origin string) {
	c := Credentials{Host: host, Kind: KindOther, Source: SourceProvided, Origin: origin,
		Auth: registry.AuthConfig{Username: username, Password: password, ServerAddress: ConfigKey(host)}}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil {
		r.cache = map[string]Credentials{}
	}
	r.cache[host] = c
}

// refreshMargin is how long before its expiry a cached derived token is fetched anew.
const refreshMargin = 5 * time.Minute

// Resolve returns the credentials for host (as returned by Host), trying the sources in the
// order the package documentation gives for the host's Kind. A host of KindOther without any
// credentials is not an error: the result then has Source SourceNone and an empty Auth, and an
// open registry may still accept the push. Errors never contain a secret.
func (r *Resolver) Resolve(ctx context.Context, host string) (Credentials, error) {
	if host == "" {
		return Credentials{}, errors.New("registryauth: empty registry host")
	}
	r.mu.Lock()
	c, ok := r.cache[host]
	r.mu.Unlock()
	if ok && (c.Expires.IsZero() || time.Until(c.Expires) > refreshMargin) {
		return c, nil
	}
	c, err := r.resolve(ctx, host)
	if err != nil {
		return Credentials{}, err
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]Credentials{}
	}
	r.cache[host] = c
	r.mu.Unlock()
	return c, nil
}

func (r *Resolver) resolve(ctx context.Context, host string) (Credentials, error) {
	switch {
	case r.Username != "" && r.Password == "":
		return Credentials{}, fmt.Errorf("input %s is set but %s is empty: set both to log in to the registry, or neither to use the Docker config", InputUsername, InputPassword)
	case r.Username == "" && r.Password != "":
		return Credentials{}, fmt.Errorf("input %s is set but %s is empty: set both to log in to the registry, or neither to use the Docker config", InputPassword, InputUsername)
	}
	kind, ecrInfo := Detect(host, r.getenv)
	switch kind {
	case KindECR, KindECRPublic:
		return r.resolveECR(ctx, host, kind, ecrInfo)
	case KindGCR:
		return r.resolveGCR(ctx, host)
	}

	if c, ok := r.fromInputs(host, kind); ok {
		return c, nil
	}
	switch kind {
	case KindGHCR:
		actor := r.GitHubActor
		if actor == "" {
			actor = r.getenv("GITHUB_ACTOR")
		}
		if r.GitHubToken != "" && actor != "" {
			return Credentials{
				Host: host, Kind: kind, Source: SourceGitHubToken,
				Auth:   registry.AuthConfig{Username: actor, Password: r.GitHubToken, ServerAddress: ConfigKey(host)},
				Origin: fmt.Sprintf("the action input %s as %s", InputGitHubToken, actor),
			}, nil
		}
	case KindGitLab:
		if c, ok := r.fromGitLabCI(host); ok {
			return c, nil
		}
	}
	return r.dockerConfigOrNothing(host, kind, nil)
}

// dockerConfigOrNothing returns the Docker config's credentials for host, else anonymous access
// for KindOther, else an ErrNoCredentials error with the kind's advice (cause, if any, is why a
// cloud credential chain found nothing).
func (r *Resolver) dockerConfigOrNothing(host string, kind Kind, cause error) (Credentials, error) {
	c, found, file, err := r.fromDockerConfig(host, kind)
	if err != nil || found {
		return c, err
	}
	if kind == KindOther {
		return c, nil
	}
	msg := fmt.Sprintf("%s for %s registry %s: %s (and %s has none for it)", ErrNoCredentials, kindName[kind], host, missingAdvice(kind), file)
	if cause != nil {
		return Credentials{}, &noCredentialsError{msg: msg + ": " + cause.Error(), cause: cause}
	}
	return Credentials{}, &noCredentialsError{msg: msg}
}

type noCredentialsError struct {
	msg   string
	cause error
}

func (e *noCredentialsError) Error() string { return e.msg }
func (e *noCredentialsError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrNoCredentials}
	}
	return []error{ErrNoCredentials, e.cause}
}

var kindName = map[Kind]string{
	KindECR: "Amazon ECR", KindECRPublic: "Amazon ECR Public", KindDockerHub: "Docker Hub",
	KindGCR: "Google", KindGHCR: "GitHub Container", KindGitLab: "GitLab", KindACR: "Azure Container",
	KindOther: "container",
}

// missingAdvice names the inputs (and other ways) that would give credentials for kind.
func missingAdvice(kind Kind) string {
	inputs := fmt.Sprintf("the inputs %s and %s", InputUsername, InputPassword)
	switch kind {
	case KindECR, KindECRPublic:
		return fmt.Sprintf("set the input %s to an IAM role that trusts GitHub's OIDC provider (the job needs `permissions: id-token: write`), "+
			"or provide AWS credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (e.g. with aws-actions/configure-aws-credentials before this step)", InputAWSRoleARN)
	case KindGCR:
		return fmt.Sprintf("set the input %s (a service-account key), or %s and %s for keyless login with GitHub OIDC (the job needs `permissions: id-token: write`), "+
			"or %s (e.g. %s _json_key), or log in with google-github-actions/auth and `gcloud auth configure-docker` before this step",
			InputGCPCredentialsJSON, InputGCPWorkloadIdentityProvider, InputGCPServiceAccount, inputs, InputUsername)
	case KindGHCR:
		return fmt.Sprintf("set the input %s (with GITHUB_ACTOR; the job needs `permissions: packages: write`), or %s (a personal access token with write:packages)", InputGitHubToken, inputs)
	case KindGitLab:
		return fmt.Sprintf("set %s (a deploy token or access token with write_registry), or run in GitLab CI where CI_REGISTRY_USER and CI_REGISTRY_PASSWORD or CI_JOB_TOKEN are set for $CI_REGISTRY", inputs)
	case KindDockerHub:
		return fmt.Sprintf("set %s (your Docker Hub user and an access token), or log in with docker/login-action before this step", inputs)
	case KindACR:
		return fmt.Sprintf("set %s (a service principal's client ID and secret, or an ACR token), or log in with azure/docker-login or `az acr login` before this step", inputs)
	}
	return fmt.Sprintf("set %s, or log in with docker/login-action before this step", inputs)
}

// fromInputs returns the inputs registry_username/registry_password, if set.
func (r *Resolver) fromInputs(host string, kind Kind) (Credentials, bool) {
	if r.Username == "" || r.Password == "" {
		return Credentials{}, false
	}
	return Credentials{
		Host:   host,
		Kind:   kind,
		Auth:   registry.AuthConfig{Username: r.Username, Password: r.Password, ServerAddress: ConfigKey(host)},
		Source: SourceInputs,
		Origin: fmt.Sprintf("the action inputs %s/%s", InputUsername, InputPassword),
	}, true
}

// fromGitLabCI returns GitLab CI's registry credentials when running in GitLab CI and host is
// $CI_REGISTRY.
func (r *Resolver) fromGitLabCI(host string) (Credentials, bool) {
	g := r.getenv
	ci := strings.ToLower(strings.TrimSpace(g("CI_REGISTRY")))
	if g("GITLAB_CI") != "true" || ci == "" || ci != strings.ToLower(host) {
		return Credentials{}, false
	}
	user := g("CI_REGISTRY_USER")
	pass, from := g("CI_REGISTRY_PASSWORD"), "CI_REGISTRY_PASSWORD"
	if pass == "" {
		pass, from = g("CI_JOB_TOKEN"), "CI_JOB_TOKEN"
	}
	if user == "" || pass == "" {
		return Credentials{}, false
	}
	return Credentials{
		Host: host, Kind: KindGitLab, Source: SourceGitLabCI,
		Auth:   registry.AuthConfig{Username: user, Password: pass, ServerAddress: ConfigKey(host)},
		Origin: fmt.Sprintf("the GitLab CI variables CI_REGISTRY_USER (%s) and %s", user, from),
	}, true
}

// fromDockerConfig looks host up in the Docker config. found is false when the config has no
// credentials for it; c then is the anonymous result (SourceNone). file is the config file.
func (r *Resolver) fromDockerConfig(host string, kind Kind) (c Credentials, found bool, file string, err error) {
	dir := r.configDir()
	cf, err := config.Load(dir)
	if err != nil {
		// docker/cli's messages name the file and the JSON problem, never its contents.
		return Credentials{}, false, "", fmt.Errorf("reading Docker config for registry %s: %w", host, err)
	}
	file = cf.Filename
	if file == "" {
		file = filepath.Join(dir, config.ConfigFileName)
	}

	// Docker Hub credentials are stored under DockerHubConfigKey by `docker login`; some tools
	// write "docker.io" or "index.docker.io" instead.
	key := ConfigKey(host)
	keys := []string{key}
	if key == DockerHubConfigKey {
		keys = append(keys, "docker.io", "index.docker.io")
	}
	var (
		ac     types.AuthConfig
		helper string
	)
	for _, k := range keys {
		helper = configuredHelper(cf, k)
		ac, err = cf.GetAuthConfig(k)
		if err != nil {
			if helper != "" {
				return Credentials{}, false, file, fmt.Errorf("getting credentials for registry %s from credential helper docker-credential-%s (configured in %s): %w", host, helper, file, err)
			}
			return Credentials{}, false, file, fmt.Errorf("getting credentials for registry %s from %s: %w", host, file, err)
		}
		if helper == "" && ac == (types.AuthConfig{}) {
			// docker/cli v29 maps "docker.io" to DockerHubConfigKey before the lookup, so an
			// "auths" entry keyed "docker.io" is only found directly.
			ac = cf.AuthConfigs[k]
		}
		if ac.Username != "" || ac.Password != "" || ac.IdentityToken != "" || ac.RegistryToken != "" {
			key = k
			break
		}
	}
	auth := registry.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		ServerAddress: ConfigKey(host),
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}
	if IsEmpty(auth) {
		return Credentials{
			Host:   host,
			Kind:   kind,
			Source: SourceNone,
			Origin: fmt.Sprintf("no credentials (neither the inputs %s/%s nor %s have any for %s)", InputUsername, InputPassword, file, host),
		}, false, file, nil
	}
	c = Credentials{Host: host, Kind: kind, Auth: auth}
	_, perRegistryHelper := cf.CredentialHelpers[key]
	switch {
	case helper != "" && perRegistryHelper:
		c.Source = SourceCredentialHelper
		c.Origin = fmt.Sprintf("credential helper docker-credential-%s (credHelpers in %s)", helper, file)
	case helper != "":
		c.Source = SourceCredentialHelper
		c.Origin = fmt.Sprintf("credential helper docker-credential-%s (credsStore in %s)", helper, file)
	case os.Getenv("DOCKER_AUTH_CONFIG") != "":
		c.Source = SourceDockerConfig
		c.Origin = fmt.Sprintf("the Docker config (DOCKER_AUTH_CONFIG or auths in %s)", file)
	default:
		c.Source = SourceDockerConfig
		c.Origin = fmt.Sprintf("the Docker config (auths in %s)", file)
	}
	return c, true, file, nil
}

func (r *Resolver) getenv(key string) string {
	if r.Getenv != nil {
		return r.Getenv(key)
	}
	return os.Getenv(key)
}

func (r *Resolver) configDir() string {
	if r.ConfigDir != "" {
		return r.ConfigDir
	}
	// Not config.Dir(): it caches DOCKER_CONFIG on first use.
	if d := os.Getenv(config.EnvOverrideConfigDir); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return config.Dir()
	}
	return filepath.Join(home, ".docker")
}

// configuredHelper mirrors configfile's choice of credential helper for a registry: the
// credHelpers entry for it, else credsStore, else "" (plain config.json auths).
func configuredHelper(cf *configfile.ConfigFile, key string) string {
	if h, ok := cf.CredentialHelpers[key]; ok && key != "" {
		return h
	}
	return cf.CredentialsStore
}

// redact replaces each secret (of four characters or more) in msg.
func redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
