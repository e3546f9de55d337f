// Package registryauth finds the credentials for pushing to (and pulling from) a container
// registry host: the action inputs registry_username/registry_password first, then the Docker
// config (config.json "auths", "credHelpers" and "credsStore", through docker/cli's own
// credential store code, which runs docker-credential-<name> helpers).
package registryauth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
)

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
	SourceNone             Source = "none"              // nothing found: anonymous access
)

// Credentials are the credentials for one registry host.
type Credentials struct {
	// Host is the registry host, as returned by Host.
	Host string
	// Auth carries the username/password (or identity token) with ServerAddress set to
	// ConfigKey(Host). It is empty for SourceNone.
	Auth registry.AuthConfig
	// Source is the kind of place the credentials came from.
	Source Source
	// Origin describes that place for people, e.g. "the action inputs
	// registry_username/registry_password" or "credential helper docker-credential-ecr-login
	// (credHelpers in /home/runner/.docker/config.json)". It never holds a secret.
	Origin string
}

// Anonymous reports whether c carries no credentials at all.
func (c Credentials) Anonymous() bool { return IsEmpty(c.Auth) }

// IsEmpty reports whether a carries no credentials.
func IsEmpty(a registry.AuthConfig) bool {
	return a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == ""
}

// Resolver resolves credentials for registry hosts.
type Resolver struct {
	// Username and Password come from the action inputs registry_username/registry_password.
	// When both are set they are used for every registry host; both may be empty.
	Username, Password string
	// ConfigDir is the Docker config directory holding config.json. Empty means $DOCKER_CONFIG,
	// else ~/.docker.
	ConfigDir string
}

// Resolve returns the credentials for host (as returned by Host). Having no credentials is not an
// error: the result then has Source SourceNone and an empty Auth, and an open registry may still
// accept the push. Errors never contain a password.
func (r Resolver) Resolve(host string) (Credentials, error) {
	if host == "" {
		return Credentials{}, errors.New("registryauth: empty registry host")
	}
	key := ConfigKey(host)
	switch {
	case r.Username != "" && r.Password != "":
		return Credentials{
			Host:   host,
			Auth:   registry.AuthConfig{Username: r.Username, Password: r.Password, ServerAddress: key},
			Source: SourceInputs,
			Origin: fmt.Sprintf("the action inputs %s/%s", InputUsername, InputPassword),
		}, nil
	case r.Username != "" && r.Password == "":
		return Credentials{}, fmt.Errorf("input %s is set but %s is empty: set both to log in to the registry, or neither to use the Docker config", InputUsername, InputPassword)
	case r.Username == "" && r.Password != "":
		return Credentials{}, fmt.Errorf("input %s is set but %s is empty: set both to log in to the registry, or neither to use the Docker config", InputPassword, InputUsername)
	}

	dir := r.configDir()
	cf, err := config.Load(dir)
	if err != nil {
		// docker/cli's messages name the file and the JSON problem, never its contents.
		return Credentials{}, fmt.Errorf("reading Docker config for registry %s: %w", host, err)
	}
	file := cf.Filename
	if file == "" {
		file = filepath.Join(dir, config.ConfigFileName)
	}

	// Docker Hub credentials are stored under DockerHubConfigKey by `docker login`; some tools
	// write "docker.io" or "index.docker.io" instead.
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
				return Credentials{}, fmt.Errorf("getting credentials for registry %s from credential helper docker-credential-%s (configured in %s): %w", host, helper, file, err)
			}
			return Credentials{}, fmt.Errorf("getting credentials for registry %s from %s: %w", host, file, err)
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
			Source: SourceNone,
			Origin: fmt.Sprintf("no credentials (neither the inputs %s/%s nor %s have any for %s)", InputUsername, InputPassword, file, host),
		}, nil
	}
	c := Credentials{Host: host, Auth: auth}
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
	return c, nil
}

func (r Resolver) configDir() string {
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
