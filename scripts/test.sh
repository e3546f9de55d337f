#!/usr/bin/env bash
# Runs every test: gofmt, go vet, and go test -race over all packages,
# including the end-to-end tests against a real dockerd and docker-registry.
# It installs what is missing and starts a private dockerd (unless DOCKER_HOST
# already points at one), and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

ensure_dockerd

unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
	echo "gofmt needs to format:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -race -count=1 -timeout 20m ./...
