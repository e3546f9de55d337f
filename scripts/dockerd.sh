#!/usr/bin/env bash
# Start or stop a private Docker daemon for tests and local demos.
#
#   scripts/dockerd.sh start DIR   start dockerd under DIR unless one already answers there,
#                                  wait until it answers, then print
#                                  `export DOCKER_HOST=unix://DIR/docker.sock`
#   scripts/dockerd.sh stop DIR    stop the dockerd started under DIR (via DIR/docker.pid)
#   scripts/dockerd.sh status DIR  exit 0 if the daemon under DIR answers /_ping
#
# Environment: DOCKERD_START_TIMEOUT (default 60) and DOCKERD_STOP_TIMEOUT (default 30), seconds.
#
# Layout under DIR: docker.sock, docker.pid, dockerd.log, data/ (data root), exec/ (exec root).
# The daemon keeps its default bridge network (docker0), as GitHub's runners have it; BuildKit
# RUN steps fail without it. Only one such daemon can run on a machine at a time, because they
# would all claim docker0.
#
# Everything except `eval "$(scripts/dockerd.sh start DIR)"`-able output goes to stderr.
set -euo pipefail

readonly START_TIMEOUT="${DOCKERD_START_TIMEOUT:-60}" # seconds
readonly STOP_TIMEOUT="${DOCKERD_STOP_TIMEOUT:-30}"   # seconds

usage() {
	echo "usage: $0 start|stop|status DIR" >&2
	exit 2
}

die() {
	echo "dockerd.sh: $*" >&2
	exit 1
}

# ping DIR: succeed if the daemon on DIR/docker.sock answers /_ping with OK.
ping() {
	local sock="$1/docker.sock"
	[[ -S "$sock" ]] || return 1
	if command -v curl >/dev/null 2>&1; then
		[[ "$(curl -fsS --max-time 5 --unix-socket "$sock" http://localhost/_ping 2>/dev/null)" == "OK" ]]
	elif command -v docker >/dev/null 2>&1; then
		docker -H "unix://$sock" version >/dev/null 2>&1
	else
		die "neither curl nor the docker CLI is installed; cannot check the daemon (apt-get install curl)"
	fi
}

# pid_alive DIR: succeed if DIR/docker.pid names a live process; echo its pid.
pid_alive() {
	local pidfile="$1/docker.pid" pid
	[[ -s "$pidfile" ]] || return 1
	pid="$(cat "$pidfile")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

log_tail() {
	local log="$1/dockerd.log"
	if [[ -f "$log" ]]; then
		echo "---- last 40 lines of $log ----" >&2
		tail -n 40 "$log" >&2
		echo "----" >&2
	fi
}

start() {
	local dir="$1"
	if ping "$dir"; then
		echo "dockerd.sh: a daemon already answers on $dir/docker.sock" >&2
		echo "export DOCKER_HOST=unix://$dir/docker.sock"
		return 0
	fi
	[[ "$(id -u)" == 0 ]] || die "dockerd must run as root (current uid $(id -u)); rerun with sudo"
	local dockerd
	dockerd="$(command -v dockerd 2>/dev/null || true)"
	[[ -n "$dockerd" ]] || die "dockerd not found on PATH; install it with: apt-get install -y docker.io"

	if pid="$(pid_alive "$dir")"; then
		die "a dockerd (pid $pid) from $dir/docker.pid is running but does not answer on $dir/docker.sock; stop it with: $0 stop $dir"
	fi

	mkdir -p "$dir/data" "$dir/exec"
	rm -f "$dir/docker.sock" "$dir/docker.pid"
	# setsid: the daemon must outlive this script and not receive the caller's job-control signals.
	setsid "$dockerd" \
		--host "unix://$dir/docker.sock" \
		--data-root "$dir/data" \
		--exec-root "$dir/exec" \
		--pidfile "$dir/docker.pid" \
		>"$dir/dockerd.log" 2>&1 </dev/null &
	local launched=$!

	local deadline=$((SECONDS + START_TIMEOUT))
	until ping "$dir"; do
		if ! kill -0 "$launched" 2>/dev/null; then
			log_tail "$dir"
			die "dockerd exited before answering on $dir/docker.sock (log: $dir/dockerd.log). Is another dockerd holding the docker0 bridge? Only one test daemon can run per machine."
		fi
		if ((SECONDS >= deadline)); then
			log_tail "$dir"
			kill -TERM "$launched" 2>/dev/null || true
			die "dockerd did not answer on $dir/docker.sock within ${START_TIMEOUT}s and was stopped (log: $dir/dockerd.log)"
		fi
		sleep 0.5
	done
	echo "dockerd.sh: dockerd (pid $launched) answers on $dir/docker.sock" >&2
	echo "export DOCKER_HOST=unix://$dir/docker.sock"
}

stop() {
	local dir="$1" pid
	if ! pid="$(pid_alive "$dir")"; then
		echo "dockerd.sh: no running dockerd recorded in $dir/docker.pid" >&2
		return 0
	fi
	kill -TERM "$pid"
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "dockerd.sh: dockerd (pid $pid) still running after ${STOP_TIMEOUT}s; sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
			sleep 1
			break
		fi
		sleep 0.2
	done
	echo "dockerd.sh: stopped dockerd (pid $pid) from $dir" >&2
}

[[ $# -eq 2 ]] || usage
cmd="$1"
dir="$2"
[[ -n "$dir" ]] || usage
# Absolute path: the socket path goes into DOCKER_HOST.
case "$dir" in
/*) ;;
*) dir="$(pwd)/$dir" ;;
esac
dir="${dir%/}"

case "$cmd" in
start) start "$dir" ;;
stop) stop "$dir" ;;
status)
	if ping "$dir"; then
		echo "dockerd.sh: daemon answers on $dir/docker.sock" >&2
	else
		die "no daemon answers on $dir/docker.sock"
	fi
	;;
*) usage ;;
esac
