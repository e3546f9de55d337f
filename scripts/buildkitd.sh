#!/usr/bin/env bash
# Build, start or stop a private BuildKit daemon (buildkitd) for tests and local demos: the
# remote BuildKit builder (internal/imagebuild.Remote) talks to it as it would to a BuildKit
# fleet, with no Docker daemon in between.
#
#   scripts/buildkitd.sh build             build buildkitd (once per BuildKit version) and print
#                                          the directory holding it
#   scripts/buildkitd.sh start DIR [127.0.0.1:PORT]
#                                          start buildkitd under DIR unless one already answers
#                                          there, wait until it answers, then print
#                                          `export BUILDKIT_HOST=tcp://127.0.0.1:PORT BUILDKIT_CERT_PATH=DIR/certs/client
#                                          BUILDKIT_UNIX_HOST=unix://DIR/buildkitd.sock`
#   scripts/buildkitd.sh stop DIR          stop the buildkitd started under DIR (via DIR/buildkitd.pid)
#   scripts/buildkitd.sh status DIR        exit 0 if the buildkitd under DIR answers
#
# The daemon listens on two addresses: unix://DIR/buildkitd.sock (no TLS; root only) and
# tcp://127.0.0.1:PORT (default a free port) with mutual TLS: it refuses clients without a
# certificate signed by its CA, as a BuildKit fleet reached over the network must. Its
# certificates are under DIR/certs in the layout of docker:dind's DOCKER_TLS_CERTDIR (the same as
# scripts/dockerd.sh start-tls): server/{ca,cert,key}.pem for buildkitd (--tlscacert, --tlscert,
# --tlskey), client/{ca,cert,key}.pem for clients (BUILDKIT_CERT_PATH). They are written here
# (ECDSA P-256, for 127.0.0.1 and localhost, valid for a week) at each start, unless someone
# else wrote a complete DIR/certs/server and DIR/certs/client already (testbed.WriteDockerTLSCerts
# writes that layout).
#
# buildkitd runs as root with its OCI worker (runc, from the docker.io package; the containerd
# worker is off), its state under DIR/root, host networking for RUN steps, and the log in
# DIR/buildkitd.log. Registries on localhost/127.0.0.1 are spoken to over plain HTTP, as
# BuildKit does by default for them, so the tests' docker-registry (testbed.StartRegistry, on
# 127.0.0.1:<any port>) needs no configuration.
#
# buildkitd is not packaged by Debian, so it is built with `go build` from the Go module proxy,
# at the version of github.com/moby/buildkit in this repository's go.mod (a `go install
# pkg@version` is refused because of buildkit's exclude directives): inside a throwaway module
# under BUILDKITD_CACHE (default /opt/dagster-branch-deploy/buildkitd as root, else
# ~/.cache/dagster-branch-deploy/buildkitd), with this repository's module and build caches. The
# first build takes minutes; later ones reuse the binary. A small helper built beside it
# (dbd-buildkitd-helper) writes the certificates, finds a free port and checks that the daemon
# answers (ListWorkers), since buildctl is not installed.
#
# Environment: BUILDKITD_START_TIMEOUT (default 60) and BUILDKITD_STOP_TIMEOUT (default 30),
# seconds; BUILDKITD_CACHE (see above).
#
# Everything except the `eval "$(scripts/buildkitd.sh start DIR)"`-able output goes to stderr.
set -euo pipefail

readonly START_TIMEOUT="${BUILDKITD_START_TIMEOUT:-60}" # seconds
readonly STOP_TIMEOUT="${BUILDKITD_STOP_TIMEOUT:-30}"   # seconds
REPO="$(cd "$(dirname "$0")/.." && pwd)"
readonly REPO

usage() {
	echo "usage: $0 build, or $0 start DIR [127.0.0.1:PORT], or $0 stop|status DIR" >&2
	exit 2
}

die() {
	echo "buildkitd.sh: $*" >&2
	exit 1
}

gocmd() {
	if command -v go >/dev/null 2>&1; then
		command go "$@"
	elif [[ -x /usr/local/go/bin/go ]]; then
		/usr/local/go/bin/go "$@"
	else
		die "Go is not installed (expected go on PATH or /usr/local/go/bin/go); it builds buildkitd"
	fi
}

# The helper: writes certificates, finds a free port, checks that buildkitd answers.
read -r -d '' HELPER_SRC <<'EOF' || true
// Command dbd-buildkitd-helper supports scripts/buildkitd.sh of dagster-branch-deploy.
//
//	dbd-buildkitd-helper certs DIR            write DIR/{ca,server,client}/*.pem
//	dbd-buildkitd-helper freeport             print a free 127.0.0.1 port
//	dbd-buildkitd-helper ping ADDR [CERTDIR]  exit 0 if buildkitd at ADDR lists a worker
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/buildkit/client"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: dbd-buildkitd-helper certs DIR | freeport | ping ADDR [CERTDIR]")
	}
	switch {
	case os.Args[1] == "certs" && len(os.Args) == 3:
		if err := certs(os.Args[2]); err != nil {
			fail(err.Error())
		}
	case os.Args[1] == "freeport" && len(os.Args) == 2:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail(err.Error())
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		l.Close()
	case os.Args[1] == "ping" && (len(os.Args) == 3 || len(os.Args) == 4):
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var opts []client.ClientOpt
		if len(os.Args) == 4 {
			d := os.Args[3]
			opts = append(opts, client.WithServerConfig("", filepath.Join(d, "ca.pem")),
				client.WithCredentials(filepath.Join(d, "cert.pem"), filepath.Join(d, "key.pem")))
		}
		c, err := client.New(ctx, os.Args[2], opts...)
		if err != nil {
			fail(err.Error())
		}
		defer c.Close()
		ws, err := c.ListWorkers(ctx)
		if err != nil {
			fail(err.Error())
		}
		if len(ws) == 0 {
			fail("buildkitd has no workers")
		}
	default:
		fail("usage: dbd-buildkitd-helper certs DIR | freeport | ping ADDR [CERTDIR]")
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "dbd-buildkitd-helper:", msg)
	os.Exit(1)
}

func certs(dir string) error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "dagster-branch-deploy test BuildKit CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := write(filepath.Join(dir, "ca"), map[string][]byte{"cert.pem": caPEM}, caKey); err != nil {
		return err
	}
	server := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	cl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "client"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for name, tmpl := range map[string]*x509.Certificate{"server": server, "client": cl} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		files := map[string][]byte{"ca.pem": caPEM, "cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
		if err := write(filepath.Join(dir, name), files, key); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}

func write(dir string, files map[string][]byte, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
EOF

# cache_dir: where the binaries are built.
cache_dir() {
	if [[ -n "${BUILDKITD_CACHE:-}" ]]; then
		echo "$BUILDKITD_CACHE"
	elif [[ "$(id -u)" == 0 ]]; then
		echo /opt/dagster-branch-deploy/buildkitd
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/dagster-branch-deploy/buildkitd"
	fi
}

# build: build buildkitd and the helper unless built already; print their directory.
build() {
	local version modcache gocache
	version="$(cd "$REPO" && gocmd list -m -f '{{.Version}}' github.com/moby/buildkit)" ||
		die "cannot read the version of github.com/moby/buildkit from $REPO/go.mod"
	[[ "$version" =~ ^v[0-9A-Za-z.+-]+$ ]] || die "unexpected github.com/moby/buildkit version $version in $REPO/go.mod"
	modcache="$(cd "$REPO" && gocmd env GOMODCACHE)"
	gocache="$(cd "$REPO" && gocmd env GOCACHE)"
	local base dir sum
	base="$(cache_dir)"
	dir="$base/$version"
	sum="$(printf '%s' "$HELPER_SRC" | sha256sum | cut -c1-12)"
	if [[ -x "$dir/buildkitd" && -x "$dir/dbd-buildkitd-helper" && "$(cat "$dir/helper.sum" 2>/dev/null)" == "$sum" ]]; then
		echo "$dir"
		return 0
	fi
	mkdir -p "$dir/src/helper"
	# One build at a time (parallel test runs, a demo beside the tests).
	exec 9>"$dir/build.lock"
	flock 9
	if [[ ! -x "$dir/buildkitd" || ! -x "$dir/dbd-buildkitd-helper" || "$(cat "$dir/helper.sum" 2>/dev/null)" != "$sum" ]]; then
		printf '%s\n' "$HELPER_SRC" >"$dir/src/helper/main.go"
		local gover
		gover="$(gocmd env GOVERSION)"
		gover="${gover#go}"
		printf 'module dbd-buildkitd\n\ngo %s\n\nrequire github.com/moby/buildkit %s\n' "$gover" "$version" >"$dir/src/go.mod"
		local start=$SECONDS
		[[ -x "$dir/buildkitd" ]] || echo "buildkitd.sh: building buildkitd $version into $dir (the first build takes a few minutes)" >&2
		(
			cd "$dir/src"
			export GOMODCACHE="$modcache" GOCACHE="$gocache" GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off
			if [[ ! -x "$dir/buildkitd" ]]; then
				gocmd build -trimpath -o "$dir/buildkitd.new" \
					-ldflags "-X github.com/moby/buildkit/version.Version=$version -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit" \
					github.com/moby/buildkit/cmd/buildkitd >&2
				mv "$dir/buildkitd.new" "$dir/buildkitd"
			fi
			gocmd build -trimpath -o "$dir/dbd-buildkitd-helper.new" ./helper >&2
			mv "$dir/dbd-buildkitd-helper.new" "$dir/dbd-buildkitd-helper"
		) || die "building buildkitd $version failed (see above); it needs the Go module proxy or a module cache holding buildkit's dependencies"
		echo "$sum" >"$dir/helper.sum"
		echo "buildkitd.sh: built in $((SECONDS - start))s" >&2
	fi
	flock -u 9
	echo "$dir"
}

# ping DIR: succeed if the buildkitd of DIR answers on its unix socket.
ping() {
	local dir="$1"
	[[ -S "$dir/buildkitd.sock" && -x "$bin/dbd-buildkitd-helper" ]] || return 1
	"$bin/dbd-buildkitd-helper" ping "unix://$dir/buildkitd.sock" 2>/dev/null
}

# ping_tcp DIR: succeed if it answers on its TLS address with the client certificate.
ping_tcp() {
	local dir="$1"
	[[ -s "$dir/tcp.addr" ]] || return 1
	"$bin/dbd-buildkitd-helper" ping "tcp://$(cat "$dir/tcp.addr")" "$dir/certs/client" 2>/dev/null
}

# pid_alive DIR: succeed if DIR/buildkitd.pid names a live buildkitd; echo its pid.
pid_alive() {
	local pidfile="$1/buildkitd.pid" pid
	[[ -s "$pidfile" ]] || return 1
	pid="$(cat "$pidfile")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == buildkitd ]] || return 1
	echo "$pid"
}

log_tail() {
	local log="$1/buildkitd.log"
	if [[ -f "$log" ]]; then
		echo "---- last 40 lines of $log ----" >&2
		tail -n 40 "$log" >&2
		echo "----" >&2
	fi
}

exports() {
	local dir="$1"
	echo "export BUILDKIT_HOST=tcp://$(cat "$dir/tcp.addr") BUILDKIT_CERT_PATH=$dir/certs/client BUILDKIT_UNIX_HOST=unix://$dir/buildkitd.sock"
}

have_certs() {
	local f
	for f in server/ca.pem server/cert.pem server/key.pem client/ca.pem client/cert.pem client/key.pem; do
		[[ -s "$1/$f" ]] || return 1
	done
}

start() {
	local dir="$1" addr="${2:-}"
	bin="$(build)"
	if ping "$dir" && ping_tcp "$dir"; then
		if [[ -n "$addr" && "$addr" != "$(cat "$dir/tcp.addr")" ]]; then
			die "a buildkitd already answers under $dir, on $(cat "$dir/tcp.addr"), not $addr; stop it first: $0 stop $dir"
		fi
		echo "buildkitd.sh: a buildkitd already answers on $dir/buildkitd.sock and $(cat "$dir/tcp.addr")" >&2
		exports "$dir"
		return 0
	fi
	[[ "$(id -u)" == 0 ]] || die "buildkitd must run as root here (current uid $(id -u)); rerun with sudo"
	command -v runc >/dev/null 2>&1 || die "runc not found on PATH; buildkitd's OCI worker runs RUN steps with it: apt-get install -y runc (docker.io brings it)"
	local pid
	if pid="$(pid_alive "$dir")"; then
		die "a buildkitd (pid $pid) from $dir/buildkitd.pid is running but does not answer; stop it with: $0 stop $dir"
	fi
	if [[ -z "$addr" ]]; then
		addr="127.0.0.1:$("$bin/dbd-buildkitd-helper" freeport)"
	fi
	# The certificates written here are for 127.0.0.1 only.
	[[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]] || die "start: want 127.0.0.1:PORT for the TLS address, got $addr"

	mkdir -p "$dir/root"
	local certs="$dir/certs"
	# Certificates written here by an earlier start are written anew (they expire); those that
	# someone else wrote are kept.
	if [[ -e "$certs/.written-by-buildkitd.sh" ]] || ! have_certs "$certs"; then
		rm -rf "$certs"
		"$bin/dbd-buildkitd-helper" certs "$certs" || die "cannot write the TLS certificates under $certs"
		touch "$certs/.written-by-buildkitd.sh"
	fi
	rm -f "$dir/buildkitd.sock" "$dir/buildkitd.pid"
	echo "$addr" >"$dir/tcp.addr"
	# setsid: the daemon must outlive this script and not receive the caller's job-control signals.
	setsid "$bin/buildkitd" \
		--root "$dir/root" \
		--addr "unix://$dir/buildkitd.sock" \
		--addr "tcp://$addr" \
		--tlscacert "$certs/server/ca.pem" \
		--tlscert "$certs/server/cert.pem" \
		--tlskey "$certs/server/key.pem" \
		--oci-worker=true \
		--oci-worker-binary "$(command -v runc)" \
		--oci-worker-net host \
		--containerd-worker=false \
		>"$dir/buildkitd.log" 2>&1 </dev/null &
	local launched=$!
	echo "$launched" >"$dir/buildkitd.pid"

	local deadline=$((SECONDS + START_TIMEOUT))
	until ping "$dir" && ping_tcp "$dir"; do
		if ! kill -0 "$launched" 2>/dev/null; then
			log_tail "$dir"
			die "buildkitd exited before answering on $dir/buildkitd.sock and tcp://$addr (log: $dir/buildkitd.log)"
		fi
		if ((SECONDS >= deadline)); then
			log_tail "$dir"
			kill -TERM "$launched" 2>/dev/null || true
			die "buildkitd did not answer on $dir/buildkitd.sock and tcp://$addr within ${START_TIMEOUT}s and was stopped (log: $dir/buildkitd.log)"
		fi
		sleep 0.5
	done
	echo "buildkitd.sh: buildkitd (pid $launched) answers on unix://$dir/buildkitd.sock and tcp://$addr (TLS, client certificates in $certs/client)" >&2
	exports "$dir"
}

stop() {
	local dir="$1" pid
	if ! pid="$(pid_alive "$dir")"; then
		echo "buildkitd.sh: no running buildkitd recorded in $dir/buildkitd.pid" >&2
		return 0
	fi
	kill -TERM "$pid"
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "buildkitd.sh: buildkitd (pid $pid) still running after ${STOP_TIMEOUT}s; sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
			sleep 1
			break
		fi
		sleep 0.2
	done
	echo "buildkitd.sh: stopped buildkitd (pid $pid) from $dir" >&2
}

[[ $# -ge 1 ]] || usage
cmd="$1"
if [[ "$cmd" == build ]]; then
	[[ $# -eq 1 ]] || usage
	build
	exit 0
fi
[[ $# -eq 2 || ($# -eq 3 && "$cmd" == start) ]] || usage
dir="$2"
[[ -n "$dir" ]] || usage
# Absolute path: the socket path goes into BUILDKIT_UNIX_HOST.
case "$dir" in
/*) ;;
*) dir="$(pwd)/$dir" ;;
esac
dir="${dir%/}"
bin=""

case "$cmd" in
start) start "$dir" "${3:-}" ;;
stop) stop "$dir" ;;
status)
	bin="$(build)"
	if ping "$dir"; then
		echo "buildkitd.sh: the buildkitd of $dir answers" >&2
	else
		die "no buildkitd of $dir answers"
	fi
	;;
*) usage ;;
esac
