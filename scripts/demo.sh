#!/usr/bin/env bash
# The whole job on this machine: starts dockerd, a docker-registry with
# htpasswd auth and the Dagster+ and GitHub emulators, runs the action binary
# on testdata/projects/quickstart for an opened pull request, and prints the
# PR comment and what the emulators hold. Pass another event file from
# testdata/events as the first argument (e.g. push.default-branch.json).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

ensure_dockerd

go build -o dagster-branch-deploy .
go run ./internal/demo -binary ./dagster-branch-deploy -event "${1:-pull_request.opened.json}"
