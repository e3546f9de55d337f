package imagebuild

import (
	"context"
	"fmt"
	"strconv"

	"github.com/docker/docker/api/types/versions"
)

// minBuildKitAPI is the first Engine API version whose POST /session (the BuildKit session) is
// not experimental.
const minBuildKitAPI = "1.39"

// builderChoice says which builder a Builder uses, and why not BuildKit.
type builderChoice struct {
	buildKit bool
	reason   string // why the classic builder is used; empty for BuildKit
}

// chooseBuilder decides, once per Builder, between BuildKit and the classic builder, and logs
// the choice. A failure to ask the daemon is not remembered: the next build asks again.
func (b *Builder) chooseBuilder(ctx context.Context) (builderChoice, error) {
	b.state.mu.Lock()
	defer b.state.mu.Unlock()
	if b.state.choice != nil {
		return *b.state.choice, nil
	}
	// The client negotiates lazily; the version only means something after this.
	b.docker.NegotiateAPIVersion(ctx)
	v, err := b.docker.ServerVersion(ctx)
	if err != nil {
		return builderChoice{}, fmt.Errorf("asking the Docker daemon for its version: %w", err)
	}
	api := b.docker.ClientVersion()
	c, err := decideBuilder(api, v.Os, b.getenv("DOCKER_BUILDKIT"))
	if err != nil {
		return builderChoice{}, err
	}
	if c.buildKit {
		fmt.Fprintf(b.log, "Builder: BuildKit (Docker Engine %s, API %s)\n", v.Version, api)
	} else {
		fmt.Fprintf(b.log, "Builder: classic, because %s (Docker Engine %s, API %s)\n", c.reason, v.Version, api)
	}
	b.state.choice = &c
	return c, nil
}

// decideBuilder picks BuildKit unless the daemon cannot run it through the Engine API (the
// negotiated apiVersion is below 1.39, or osType is not linux) or env (the value of
// DOCKER_BUILDKIT) turns it off.
func decideBuilder(apiVersion, osType, env string) (builderChoice, error) {
	if env != "" {
		on, err := strconv.ParseBool(env)
		if err != nil {
			return builderChoice{}, fmt.Errorf("DOCKER_BUILDKIT=%q is not a boolean: set it to 1 (BuildKit) or 0 (classic builder), or unset it", env)
		}
		if !on {
			return builderChoice{reason: "DOCKER_BUILDKIT=" + env + " is set"}, nil
		}
	}
	switch {
	case apiVersion == "" || versions.LessThan(apiVersion, minBuildKitAPI):
		return builderChoice{reason: fmt.Sprintf("the daemon's API version %q is older than %s, which BuildKit builds through the Engine API need", apiVersion, minBuildKitAPI)}, nil
	case osType != "" && osType != "linux":
		return builderChoice{reason: fmt.Sprintf("the daemon runs on %s and BuildKit builds need a Linux daemon", osType)}, nil
	}
	return builderChoice{buildKit: true}, nil
}
