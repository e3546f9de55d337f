// Package serverless holds what a Docker deploy to a Dagster+ Serverless
// organization needs besides the Dagster+ API (package dagster) and the
// Docker build (package imagebuild), as pure functions: the Dockerfile of a code
// location that has none (the image layout of the dagster-cloud CLI's
// serverless Dockerfile), where the image goes in the registry Dagster+ hands
// out and with which tag, the custom base image rule, the detection of a
// project set up for PEX "fast deploys" (not supported: they need Python on
// the runner), and the default agent heartbeat timeout.
//
// The spec is the dagster-cloud CLI (dagster-io/dagster,
// python_modules/libraries/dagster-cloud-cli/dagster_cloud_cli:
// docker_utils.py, commands/ci/__init__.py, commands/serverless/) and the
// dagster-cloud action (dagster-io/dagster-cloud-action: the serverless
// actions and src/). Where this package differs, the doc comment says so.
package serverless

import "time"

const (
	// DefaultPythonVersion is the Python of the default base image
	// python:<version>-slim (dagster-cloud CLI utils.py
	// DEFAULT_PYTHON_VERSION).
	DefaultPythonVersion = "3.11"

	// Platform is the platform Serverless images are built for: the
	// dagster-cloud CLI builds with `--platform linux/amd64`.
	Platform = "linux/amd64"

	// HybridHeartbeatTimeout and ServerlessHeartbeatTimeout are the default
	// agent heartbeat timeouts of `dagster-cloud ci deploy`
	// (DEFAULT_HYBRID_AGENT_HEARTBEAT_TIMEOUT,
	// DEFAULT_SERVERLESS_AGENT_HEARTBEAT_TIMEOUT): a Serverless agent may
	// still be starting when the locations are deployed.
	HybridHeartbeatTimeout     = 120 * time.Second
	ServerlessHeartbeatTimeout = 900 * time.Second
)

// DefaultHeartbeatTimeout returns the agent heartbeat timeout to use when
// none was configured, as `dagster-cloud ci deploy` picks it: 900 s when the
// deployment's agent type is SERVERLESS and no location is deployed to an
// agent queue (Serverless agents serve only the default queue), 120 s
// otherwise.
func DefaultHeartbeatTimeout(agentType string, anyAgentQueue bool) time.Duration {
	if agentType == "SERVERLESS" && !anyAgentQueue {
		return ServerlessHeartbeatTimeout
	}
	return HybridHeartbeatTimeout
}
