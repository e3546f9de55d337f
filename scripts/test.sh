#!/usr/bin/env bash
# Runs every test: gofmt, go vet, and go test -race over all packages,
# including the end-to-end tests against a real dockerd and docker-registry,
# and the remote BuildKit tests against a real buildkitd. It installs what is
# missing, starts a private dockerd (unless DOCKER_HOST already points at one)
# and a private buildkitd (built from the Go module proxy on first use; unless
# BUILDKIT_HOST, BUILDKIT_CERT_PATH and BUILDKIT_UNIX_HOST name one), and stops
# what it started. Last, it runs the benchmark script once in its smoke mode.
#
# The tests that need dockerd, buildkitd or docker-registry are built only with
# -tags docker (a plain `go test ./...` skips them); here they are built and
# fail loudly if the daemon does not answer. go vet runs in both
# configurations, so that neither stops compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

ensure_dockerd
ensure_buildkitd

unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
	echo "gofmt needs to format:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go vet -tags docker ./...
go test -race -count=1 -tags docker -timeout 20m ./...

# The benchmark (bench/run.sh) in its smoke mode, so that it cannot rot: each
# measurement once with tiny sizes, on the daemons started above. It fails
# only when a measurement cannot be made, never on a missed goal.
bash bench/run.sh --smoke
