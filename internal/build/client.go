// Package build builds Dagster code-location images and pushes them, through the Docker Engine
// API (the Go SDK, never the docker CLI).
//
// Builds use BuildKit through the Engine API, as `docker buildx build` does with the docker
// driver: the context tar is the request body, and a BuildKit session (POST /session) serves
// registry credentials for FROM and cache images, build secrets and SSH agents. BuildKit's
// progress is printed as plain text, like `docker build --progress=plain`. Daemons that cannot
// run BuildKit builds this way (API < 1.39, non-Linux), or DOCKER_BUILDKIT=0, get the classic
// builder (API "version=1"), which takes the registry credentials in the request.
package build

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/docker/docker/client"
)

// pingTimeout bounds the first contact with the daemon in NewClient.
const pingTimeout = 30 * time.Second

// NewClient connects to the Docker daemon named by the environment (DOCKER_HOST,
// DOCKER_API_VERSION, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY), pings it and negotiates the API
// version, so that an unreachable daemon fails here with a clear message rather than mid-build.
func NewClient(ctx context.Context) (*client.Client, error) {
	host := os.Getenv(client.EnvOverrideHost)
	where := "DOCKER_HOST=" + host
	if host == "" {
		where = "the default " + client.DefaultDockerHost + " (DOCKER_HOST is not set)"
	}
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("configuring the Docker client for %s: %w", where, err)
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	ping, err := c.Ping(pctx)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("cannot reach the Docker daemon at %s: %w\n"+
			"Is the Docker daemon running, and is its socket mounted into the action's container "+
			"(-v /var/run/docker.sock:/var/run/docker.sock, as GitHub does for Docker actions)? "+
			"Set DOCKER_HOST to reach a daemon elsewhere", where, err)
	}
	c.NegotiateAPIVersionPing(ping)
	return c, nil
}
