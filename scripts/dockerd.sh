#!/usr/bin/env bash
# Start or stop a private Docker daemon for tests and local demos.
#
#   scripts/dockerd.sh start DIR   start dockerd under DIR unless one already answers there,
#                                  wait until it answers, then print
#                                  `export DOCKER_HOST=unix://DIR/docker.sock`
#   scripts/dockerd.sh stop DIR    stop the dockerd started under DIR (via DIR/docker.pid)
#   scripts/dockerd.sh status DIR  exit 0 if the daemon under DIR answers /_ping
#
#   scripts/dockerd.sh start-tls DIR 127.0.0.1:PORT
#                                  start a second kind of daemon under DIR that serves the Engine
#                                  API only on tcp://127.0.0.1:PORT with mutual TLS (--tlsverify),
#                                  as GitLab's docker:dind service does on tcp://docker:2376, then
#                                  print `export DOCKER_HOST=tcp://127.0.0.1:PORT DOCKER_TLS_VERIFY=1
#                                  DOCKER_CERT_PATH=DIR/certs/client`. `stop DIR` and `status DIR`
#                                  work on it too.
#
# Environment: DOCKERD_START_TIMEOUT (default 60) and DOCKERD_STOP_TIMEOUT (default 30), seconds.
#
# Layout under DIR: docker.sock, docker.pid, dockerd.log, data/ (data root), exec/ (exec root).
# The daemon keeps its default bridge network (docker0), as GitHub's runners have it; BuildKit
# RUN steps fail without it. Only one such daemon can run on a machine at a time, because they
# would all claim docker0.
#
# start-tls needs, under DIR/certs, the layout of docker:dind's DOCKER_TLS_CERTDIR: server/ca.pem
# (the CA the daemon trusts for client certificates), server/cert.pem and server/key.pem (its
# certificate, for 127.0.0.1), and client/ca.pem, client/cert.pem, client/key.pem (a client
# certificate of that CA). The Go tests write them (testbed.WriteDockerTLSCerts) and start and
# stop the daemon themselves (testbed.StartTLSDocker). Such a daemon runs beside the one of
# `start` and beside each other: it has its own data root, exec root and pidfile, and its own
# bridge instead of docker0, created here and deleted by `stop` (DOCKERD_BRIDGE, default
# dbd<PORT>, with the first free 10.213.N.1/24 or DOCKERD_BRIDGE_CIDR). It runs with
# --iptables=false: a daemon with iptables rebuilds the DOCKER chains at start and would cut
# off the other daemons' containers. So its containers have no NAT to the outside; the
# registry and everything else the tests use is on loopback, reached by dockerd itself.
# Files it adds under DIR: tls.addr, bridge. Needs `ip` (iproute2) or busybox.
#
# Everything except `eval "$(scripts/dockerd.sh start DIR)"`-able output goes to stderr.
set -euo pipefail

readonly START_TIMEOUT="${DOCKERD_START_TIMEOUT:-60}" # seconds
readonly STOP_TIMEOUT="${DOCKERD_STOP_TIMEOUT:-30}"   # seconds

usage() {
	echo "usage: $0 start|stop|status DIR, or $0 start-tls DIR 127.0.0.1:PORT" >&2
	exit 2
}

die() {
	echo "dockerd.sh: $*" >&2
	exit 1
}

# ping DIR: succeed if the daemon on DIR/docker.sock (or, for start-tls, on the address in
# DIR/tls.addr with the certificates of DIR/certs/client) answers /_ping with OK.
ping() {
	if [[ -s "$1/tls.addr" ]]; then
		ping_tls "$1"
		return
	fi
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

ping_tls() {
	local addr certs="$1/certs/client"
	addr="$(cat "$1/tls.addr")"
	if command -v curl >/dev/null 2>&1; then
		[[ "$(curl -fsS --max-time 5 --cacert "$certs/ca.pem" --cert "$certs/cert.pem" --key "$certs/key.pem" "https://$addr/_ping" 2>/dev/null)" == "OK" ]]
	elif command -v docker >/dev/null 2>&1; then
		docker --tlsverify --tlscacert "$certs/ca.pem" --tlscert "$certs/cert.pem" --tlskey "$certs/key.pem" -H "tcp://$addr" version >/dev/null 2>&1
	else
		die "neither curl nor the docker CLI is installed; cannot check the daemon (apt-get install curl)"
	fi
}

# ipcmd ARGS: iproute2's ip, or busybox's (scripts/setup.sh installs busybox-static).
ipcmd() {
	if command -v ip >/dev/null 2>&1; then
		ip "$@"
	elif command -v busybox >/dev/null 2>&1; then
		busybox ip "$@"
	else
		die "start-tls needs the ip command: apt-get install -y iproute2 (or busybox-static)"
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

# free_cidr PORT: the first 10.213.N.1/24 (N from PORT) that no interface has.
free_cidr() {
	local n i used
	used="$(ipcmd -4 -o addr show 2>/dev/null || true)"
	for ((i = 0; i < 250; i++)); do
		n=$((($1 + i) % 250 + 1))
		if ! grep -q " 10\.213\.$n\." <<<"$used"; then
			echo "10.213.$n.1/24"
			return 0
		fi
	done
	die "no free 10.213.N.0/24 for the bridge; set DOCKERD_BRIDGE_CIDR"
}

start_tls() {
	local dir="$1" addr="$2"
	[[ "$addr" =~ ^127\.0\.0\.1:([0-9]+)$ ]] || die "start-tls: want 127.0.0.1:PORT, got $addr"
	local port="${BASH_REMATCH[1]}"
	local certs="$dir/certs" f
	for f in server/ca.pem server/cert.pem server/key.pem client/ca.pem client/cert.pem client/key.pem; do
		[[ -s "$certs/$f" ]] || die "start-tls: $certs/$f is missing; write the certificates first (the Go tests use testbed.WriteDockerTLSCerts; the layout is docker:dind's DOCKER_TLS_CERTDIR)"
	done
	local exports="export DOCKER_HOST=tcp://$addr DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$certs/client"
	if [[ -s "$dir/tls.addr" ]] && ping "$dir"; then
		echo "dockerd.sh: a daemon already answers on $(cat "$dir/tls.addr") for $dir" >&2
		echo "$exports"
		return 0
	fi
	[[ "$(id -u)" == 0 ]] || die "dockerd must run as root (current uid $(id -u)); rerun with sudo"
	local dockerd
	dockerd="$(command -v dockerd 2>/dev/null || true)"
	[[ -n "$dockerd" ]] || die "dockerd not found on PATH; install it with: apt-get install -y docker.io"
	if pid="$(pid_alive "$dir")"; then
		die "a dockerd (pid $pid) from $dir/docker.pid is running but does not answer; stop it with: $0 stop $dir"
	fi

	local bridge="${DOCKERD_BRIDGE:-dbd$port}" cidr
	((${#bridge} <= 15)) || die "start-tls: bridge name $bridge is longer than 15 characters"
	if ipcmd link show "$bridge" >/dev/null 2>&1; then
		die "start-tls: a network interface $bridge exists already (a daemon on port $port, or a stale one: ip link del $bridge)"
	fi
	cidr="${DOCKERD_BRIDGE_CIDR:-$(free_cidr "$port")}"
	mkdir -p "$dir/data" "$dir/exec"
	rm -f "$dir/docker.pid"
	ipcmd link add name "$bridge" type bridge || die "start-tls: cannot create the bridge $bridge"
	echo "$bridge" >"$dir/bridge"
	ipcmd addr add "$cidr" dev "$bridge"
	ipcmd link set "$bridge" up
	echo "$addr" >"$dir/tls.addr"

	setsid "$dockerd" \
		--host "tcp://$addr" \
		--tlsverify \
		--tlscacert "$certs/server/ca.pem" \
		--tlscert "$certs/server/cert.pem" \
		--tlskey "$certs/server/key.pem" \
		--data-root "$dir/data" \
		--exec-root "$dir/exec" \
		--pidfile "$dir/docker.pid" \
		--bridge "$bridge" \
		--iptables=false \
		--ip6tables=false \
		>"$dir/dockerd.log" 2>&1 </dev/null &
	local launched=$!

	local deadline=$((SECONDS + START_TIMEOUT))
	until ping "$dir"; do
		if ! kill -0 "$launched" 2>/dev/null; then
			log_tail "$dir"
			remove_bridge "$dir"
			die "dockerd exited before answering on $addr (log: $dir/dockerd.log)"
		fi
		if ((SECONDS >= deadline)); then
			log_tail "$dir"
			stop "$dir"
			die "dockerd did not answer on $addr within ${START_TIMEOUT}s and was stopped (log: $dir/dockerd.log)"
		fi
		sleep 0.5
	done
	echo "dockerd.sh: dockerd (pid $launched) answers on tcp://$addr with TLS (bridge $bridge, $cidr)" >&2
	echo "$exports"
}

# remove_bridge DIR: delete the bridge start-tls made for DIR, if any.
remove_bridge() {
	local bridge
	[[ -s "$1/bridge" ]] || return 0
	bridge="$(cat "$1/bridge")"
	if ipcmd link show "$bridge" >/dev/null 2>&1; then
		ipcmd link del "$bridge" || echo "dockerd.sh: could not delete the bridge $bridge" >&2
	fi
	rm -f "$1/bridge"
}

stop() {
	local dir="$1" pid
	if ! pid="$(pid_alive "$dir")"; then
		echo "dockerd.sh: no running dockerd recorded in $dir/docker.pid" >&2
		remove_bridge "$dir"
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
	remove_bridge "$dir"
	echo "dockerd.sh: stopped dockerd (pid $pid) from $dir" >&2
}

[[ $# -eq 2 || ($# -eq 3 && "$1" == start-tls) ]] || usage
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
start-tls) start_tls "$dir" "$3" ;;
stop) stop "$dir" ;;
status)
	if ping "$dir"; then
		echo "dockerd.sh: the daemon of $dir answers" >&2
	else
		die "no daemon of $dir answers"
	fi
	;;
*) usage ;;
esac
