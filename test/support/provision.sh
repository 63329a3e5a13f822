#!/usr/bin/env bash
# Provision the real daemons the podvisor test suite needs: containerd, dockerd
# (with runc), promtool/prometheus binaries, busybox, openssl and curl (TLS tests), gcc (the fake libnvidia-ml of the GPU tests), and the test image
# podvisor-test:1 (in docker and in containerd's k8s.io namespace).
#
# Usage:
#   test/support/provision.sh              install what is missing, start what is down
#   test/support/provision.sh --stop [F]   stop the daemons recorded in F (default:
#                                          every daemon this script started and is
#                                          still running), and only those
#
# Idempotent and fast when everything is already there. Installing packages and
# starting daemons needs root on Debian; otherwise the script only checks.
# Daemons it starts are recorded ("name pid starttime") in $PODVISOR_STATE_DIR/daemons
# (default /run/podvisor), and also appended to $PODVISOR_STARTED_FILE when that
# is set, so a caller can stop exactly what its own run started.
# Logs: /var/log/podvisor-{apt,containerd,dockerd}.log
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

STATE_DIR=${PODVISOR_STATE_DIR:-/run/podvisor}
STATE_FILE=$STATE_DIR/daemons
CONTAINERD_SOCK=/run/containerd/containerd.sock
DOCKER_SOCK=/var/run/docker.sock
APT_LOG=/var/log/podvisor-apt.log
CONTAINERD_LOG=/var/log/podvisor-containerd.log
DOCKERD_LOG=/var/log/podvisor-dockerd.log
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: FAILED: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
since() { local t0=$1; local d=$(($(now_ms) - t0)); printf '%d.%01ds' $((d / 1000)) $((d % 1000 / 100)); }

is_root() { [[ $(id -u) == 0 ]]; }
is_debian() { [[ -f /etc/debian_version ]]; }

# Start time (clock ticks since boot) of a pid, empty when it is gone. Used with
# the pid so that a recycled pid is never mistaken for a daemon we started.
proc_start() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	# shellcheck disable=SC2086 # split the remaining fields on purpose
	set -- $stat
	printf '%s' "${20:-}"
}

containerd_ok() {
	[[ -S $CONTAINERD_SOCK ]] &&
		timeout 5 ctr --connect-timeout 2s --address "$CONTAINERD_SOCK" version >/dev/null 2>&1
}
docker_ok() { [[ -S $DOCKER_SOCK ]] && timeout 10 docker -H "unix://$DOCKER_SOCK" info >/dev/null 2>&1; }

# The most telling line of a log: the last fatal/panic/apt error, else the last
# error, else the last non-blank line (cut to 200 characters).
last_log_line() {
	local pat l=""
	for pat in 'level=fatal|^panic:|^E: ' 'level=error|error:|failed' '[^[:space:]]'; do
		l=$(grep -aE "$pat" "$1" 2>/dev/null | tail -n 1 || true)
		[[ -z $l ]] || break
	done
	printf '%s' "${l:0:200}"
}

# ---------------------------------------------------------------- --stop
stop_daemons() {
	local file=${1:-$STATE_FILE}
	if [[ ! -s $file ]]; then
		say "stop: nothing recorded in $file"
		return 0
	fi
	local -a entries=()
	mapfile -t entries <"$file"
	local i name pid start deadline stopped=0
	# Stop in reverse start order: dockerd before containerd.
	for ((i = ${#entries[@]} - 1; i >= 0; i--)); do
		read -r name pid start <<<"${entries[i]}"
		[[ -n ${pid:-} ]] || continue
		if [[ $(proc_start "$pid") != "$start" ]]; then
			say "stop: $name (pid $pid) already gone"
			continue
		fi
		local t0
		t0=$(now_ms)
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + 60))
		while [[ $(proc_start "$pid") == "$start" ]] && ((SECONDS < deadline)); do sleep 0.2; done
		if [[ $(proc_start "$pid") == "$start" ]]; then
			kill -KILL "$pid" 2>/dev/null || true
			say "stop: $name (pid $pid) did not exit on SIGTERM within 60s, killed"
		else
			say "stop: $name (pid $pid) stopped ($(since "$t0"))"
		fi
		stopped=$((stopped + 1))
	done
	# Forget the stopped entries in the global state file.
	if [[ -f $STATE_FILE ]]; then
		local tmp line
		tmp=$(mktemp "$STATE_DIR/daemons.XXXXXX")
		while IFS= read -r line; do
			read -r name pid start <<<"$line"
			if [[ -n ${pid:-} && $(proc_start "$pid") == "$start" ]]; then printf '%s\n' "$line"; fi
		done <"$STATE_FILE" >"$tmp"
		mv "$tmp" "$STATE_FILE"
	fi
	say "stop: done ($stopped daemon(s) stopped)"
}

# ---------------------------------------------------------------- packages
ensure_packages() {
	local t0 b
	t0=$(now_ms)
	local -a missing=()
	for b in dockerd docker containerd ctr runc busybox promtool prometheus openssl curl gcc; do
		command -v "$b" >/dev/null 2>&1 || missing+=("$b")
	done
	if ((${#missing[@]} == 0)); then
		say "packages: dockerd containerd runc busybox promtool openssl curl gcc present ($(since "$t0"))"
		return 0
	fi
	if ! is_root || ! is_debian; then
		die "missing ${missing[*]}; install docker.io containerd runc busybox-static prometheus openssl curl gcc libc6-dev (needs root on Debian)"
	fi
	say "packages: missing ${missing[*]}; installing docker.io containerd runc busybox-static prometheus openssl curl gcc libc6-dev (log: $APT_LOG)"
	# Keep package maintainer scripts from starting services (dockerd, prometheus,
	# node-exporter): we start exactly the daemons we need ourselves, there is no
	# systemd here, and the prometheus service is never relied upon.
	local own_policy=0
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	: >"$APT_LOG"
	if ! apt-get update >>"$APT_LOG" 2>&1; then
		die "apt-get update failed: $(last_log_line "$APT_LOG") (see $APT_LOG)"
	fi
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		docker.io containerd runc busybox-static prometheus openssl curl gcc libc6-dev >>"$APT_LOG" 2>&1; then
		die "apt-get install failed: $(last_log_line "$APT_LOG") (see $APT_LOG)"
	fi
	if ((own_policy)); then
		rm -f /usr/sbin/policy-rc.d
		trap - EXIT
	fi
	hash -r
	for b in "${missing[@]}"; do
		command -v "$b" >/dev/null 2>&1 || die "$b still missing after installing packages (see $APT_LOG)"
	done
	say "packages: installed ($(since "$t0"))"
}

# ---------------------------------------------------------------- daemons
# start_daemon NAME LOG TIMEOUT_S CHECK_FN CMD...
start_daemon() {
	local name=$1 log=$2 timeout_s=$3 check=$4
	shift 4
	local t0 pid start deadline
	t0=$(now_ms)
	if "$check"; then
		say "$name: already answering ($(since "$t0"))"
		return 0
	fi
	is_root || die "$name is not answering and only root can start it"
	# Own session, no inherited stdin/stdout or lock fd: the daemon outlives this
	# script and must not keep a caller's pipe (tee) or our lock open.
	(cd / && exec setsid "$@" </dev/null >"$log" 2>&1 9>&-) &
	pid=$!
	start=$(proc_start "$pid")
	deadline=$((SECONDS + timeout_s))
	until "$check"; do
		if [[ -z $(proc_start "$pid") ]]; then
			die "$name exited during start-up: $(last_log_line "$log") (see $log)"
		fi
		if ((SECONDS >= deadline)); then
			kill -TERM "$pid" 2>/dev/null || true
			die "$name did not answer within ${timeout_s}s: $(last_log_line "$log") (see $log)"
		fi
		sleep 0.2
	done
	printf '%s %s %s\n' "$name" "$pid" "$start" >>"$STATE_FILE"
	if [[ -n ${PODVISOR_STARTED_FILE:-} ]]; then
		printf '%s %s %s\n' "$name" "$pid" "$start" >>"$PODVISOR_STARTED_FILE"
	fi
	say "$name: started, pid $pid, log $log ($(since "$t0"))"
}

# ---------------------------------------------------------------- main
main() {
	local t_all
	t_all=$(now_ms)
	if is_root; then
		mkdir -p "$STATE_DIR"
		# Serialise concurrent provisioning runs (several engineers, one machine).
		exec 9>"$STATE_DIR/lock"
		flock -w 600 9 || die "another provisioning run holds $STATE_DIR/lock for over 10 min"
	fi

	if [[ ${1:-} == --stop ]]; then
		stop_daemons "${2:-}"
		return 0
	fi
	[[ $# == 0 ]] || die "unknown argument: $1 (usage: provision.sh [--stop [STATEFILE]])"

	ensure_packages
	start_daemon containerd "$CONTAINERD_LOG" 30 containerd_ok \
		containerd
	start_daemon dockerd "$DOCKERD_LOG" 60 docker_ok \
		dockerd --containerd="$CONTAINERD_SOCK" --iptables=false --ip6tables=false
	"$HERE/test-image.sh" || die "building the test image podvisor-test:1 failed"
	say "ready ($(since "$t_all"))"
}

main "$@"
