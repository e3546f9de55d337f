#!/usr/bin/env bash
# Measures the action against the docker CLI and against itself on this
# machine, side by side in one run, and prints a markdown table of ratios
# (see BENCHMARKS.md). It sets up as scripts/test.sh does: installs what is
# missing (scripts/setup.sh), starts a private dockerd and buildkitd unless
# DOCKER_HOST / BUILDKIT_HOST already name them, builds the binary and the
# bench (bench/main.go), and stops what it started. Run it as root.
#
#   bench/run.sh                  the full bench: median of 5 pairs, a 64 MiB context, 1 GiB / 20k files
#   bench/run.sh -n 7             7 pairs per measurement
#   bench/run.sh --smoke          each measurement once with tiny sizes (under about a minute):
#                                 checks that the bench still works; scripts/test.sh runs it
#   bench/run.sh --out FILE       also write the table to FILE
#   bench/run.sh --only full,big  some of: full (and the re-run), parallel, big, remote
#
# A missed goal never fails the script: the table says so. It exits non-zero
# only when a measurement could not be made. It prunes the build cache of
# the buildkitd it uses (point it at a test buildkitd only), and that of the
# Docker daemon when it is the private one it or scripts/test.sh started.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

private_docker=
if [ -z "${DOCKER_HOST:-}" ] || [ "${DOCKER_HOST}" = "unix://${DBD_DOCKER_DIR:-/tmp/dagster-branch-deploy-dockerd}/docker.sock" ]; then
	private_docker=1
fi
ensure_dockerd
ensure_buildkitd

work="$(mktemp -d "${TMPDIR:-/tmp}/dbd-bench.XXXXXX")"
on_exit "rm -rf '$work'"
go build -o "$work/dagster-branch-deploy" .
go build -o "$work/bench" ./bench
args=(-binary "$work/dagster-branch-deploy" -work "$work")
if [ -n "$private_docker" ]; then
	args+=(-prune)
fi
"$work/bench" "${args[@]}" "$@"
