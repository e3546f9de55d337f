#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine:
# dockerd (docker.io), the registry (docker-registry), git, curl and the Go
# modules. Source it from the other scripts; it is idempotent and quick when
# everything is there.
set -euo pipefail

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v git >/dev/null 2>&1 || need+=(git)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ -x /bin/busybox ] || need+=(busybox-static) # a static shell for test images FROM scratch
command -v ssh-agent >/dev/null 2>&1 || need+=(openssh-client) # SSH forwarding tests
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v cmark-gfm >/dev/null 2>&1 || need+=(cmark-gfm) # renders the report's golden files as GitHub does
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

# ensure_dockerd: unless DOCKER_HOST is set, start the private test daemon
# and stop it when the calling script exits.
ensure_dockerd() {
	if [ -z "${DOCKER_HOST:-}" ]; then
		DBD_DOCKER_DIR="${DBD_DOCKER_DIR:-/tmp/dagster-branch-deploy-dockerd}"
		eval "$(scripts/dockerd.sh start "$DBD_DOCKER_DIR")"
		trap 'scripts/dockerd.sh stop "$DBD_DOCKER_DIR" || true' EXIT
	fi
	export DOCKER_HOST
}
