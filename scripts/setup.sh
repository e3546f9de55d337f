#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine:
# dockerd (docker.io), the registry (docker-registry), git, curl, the Go
# modules, and gitlab-ci-local (with Node.js, npm and rsync), which runs the
# GitLab CI templates of gitlab/ in the tests. buildkitd, for the remote
# BuildKit tests, is built from the Go module proxy by scripts/buildkitd.sh
# when ensure_buildkitd first starts it (a few minutes, once per BuildKit
# version); it runs RUN steps with runc. Source it from the other scripts; it
# is idempotent and quick when everything is there.
set -euo pipefail

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v runc >/dev/null 2>&1 || need+=(runc) # buildkitd's OCI worker (docker.io brings it too)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v git >/dev/null 2>&1 || need+=(git)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ -x /bin/busybox ] || need+=(busybox-static) # a static shell for test images FROM scratch
command -v ssh-agent >/dev/null 2>&1 || need+=(openssh-client) # SSH forwarding tests
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v cmark-gfm >/dev/null 2>&1 || need+=(cmark-gfm) # renders the report's golden files as GitHub does
# gitlab-ci-local (below) runs on Node.js and copies checkouts and artifacts
# with rsync. A machine whose Node.js is not Debian's (e.g. NodeSource's,
# which bundles npm) keeps it.
if ! command -v node >/dev/null 2>&1; then
	need+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
	need+=(npm)
fi
command -v rsync >/dev/null 2>&1 || need+=(rsync)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: missing ${need[*]}; run as root (or: sudo apt-get install -y ${need[*]})" >&2
		exit 1
	fi
	echo "setup: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || { echo "setup: Go is not installed (expected /usr/local/go/bin/go)" >&2; exit 1; }
go mod download

# gitlab-ci-local, pinned: 4.70.0 is the newest that runs on Node.js 20.
# internal/e2e/gitlab_ci_local_test.go runs it from GITLAB_CI_LOCAL, else
# from the same directories as here (root: /opt/dagster-branch-deploy/node,
# others: ~/.cache/dagster-branch-deploy/node). DBD_NODE_DIR overrides the
# directory.
GITLAB_CI_LOCAL_VERSION=4.70.0
if [ -z "${DBD_NODE_DIR:-}" ]; then
	if [ "$(id -u)" = 0 ]; then
		DBD_NODE_DIR=/opt/dagster-branch-deploy/node
	else
		DBD_NODE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/dagster-branch-deploy/node"
	fi
fi
GITLAB_CI_LOCAL="$DBD_NODE_DIR/node_modules/.bin/gitlab-ci-local"
if [ "$("$GITLAB_CI_LOCAL" --version 2>/dev/null || true)" != "$GITLAB_CI_LOCAL_VERSION" ]; then
	echo "setup: installing gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION into $DBD_NODE_DIR" >&2
	mkdir -p "$DBD_NODE_DIR"
	[ -f "$DBD_NODE_DIR/package.json" ] || echo '{"private": true}' >"$DBD_NODE_DIR/package.json"
	npm install --prefix "$DBD_NODE_DIR" --no-audit --no-fund --loglevel=error \
		"gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION" >&2
	if [ "$("$GITLAB_CI_LOCAL" --version)" != "$GITLAB_CI_LOCAL_VERSION" ]; then
		echo "setup: $GITLAB_CI_LOCAL does not say version $GITLAB_CI_LOCAL_VERSION" >&2
		exit 1
	fi
fi
export GITLAB_CI_LOCAL

# on_exit CMD: run CMD when the calling script exits, before the commands
# registered earlier (one EXIT trap runs them all).
DBD_ON_EXIT=()
on_exit() {
	DBD_ON_EXIT=("$1" "${DBD_ON_EXIT[@]}")
	trap 'for c in "${DBD_ON_EXIT[@]}"; do eval "$c" || true; done' EXIT
}

# ensure_dockerd: unless DOCKER_HOST is set, start the private test daemon
# and stop it when the calling script exits.
ensure_dockerd() {
	if [ -z "${DOCKER_HOST:-}" ]; then
		DBD_DOCKER_DIR="${DBD_DOCKER_DIR:-/tmp/dagster-branch-deploy-dockerd}"
		eval "$(scripts/dockerd.sh start "$DBD_DOCKER_DIR")"
		on_exit 'scripts/dockerd.sh stop "$DBD_DOCKER_DIR"'
	fi
	export DOCKER_HOST
}

# ensure_buildkitd: unless BUILDKIT_HOST, BUILDKIT_CERT_PATH and
# BUILDKIT_UNIX_HOST all name a running buildkitd already, build (once) and
# start the private test buildkitd (scripts/buildkitd.sh: TLS with client
# certificates on tcp://127.0.0.1, and a unix socket), export its addresses,
# and stop it when the calling script exits.
ensure_buildkitd() {
	if [ -z "${BUILDKIT_HOST:-}" ] || [ -z "${BUILDKIT_CERT_PATH:-}" ] || [ -z "${BUILDKIT_UNIX_HOST:-}" ]; then
		DBD_BUILDKITD_DIR="${DBD_BUILDKITD_DIR:-/tmp/dagster-branch-deploy-buildkitd}"
		eval "$(scripts/buildkitd.sh start "$DBD_BUILDKITD_DIR")"
		on_exit 'scripts/buildkitd.sh stop "$DBD_BUILDKITD_DIR"'
	fi
	export BUILDKIT_HOST BUILDKIT_CERT_PATH BUILDKIT_UNIX_HOST
}
