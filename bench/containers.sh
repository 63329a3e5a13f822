#!/usr/bin/env bash
# Kubernetes-shaped bench containers in Docker.
#   bench/containers.sh up N    start podvisor-bench-0..N-1 (busybox `sleep 86400`,
#                               podvisor-test:1), each in its own pod cgroup
#                               /kubepods/burstable/pod<uid> with the kubelet's labels
#   bench/containers.sh down    remove every podvisor-bench-* container (and only those)
#   bench/containers.sh count   how many podvisor-bench-* containers are running
# Idempotent: `up` only starts the missing ones. Needs dockerd and the test image
# (test/support/provision.sh). Containers start in parallel batches of $BATCH (8).
set -euo pipefail

say() { printf 'containers: %s\n' "$*"; }
die() { printf 'containers: FAILED: %s\n' "$*" >&2; exit 1; }

IMAGE=podvisor-test:1
PREFIX=podvisor-bench-
BATCH=${BATCH:-8}

# Deterministic pod uid for container i: 8-4-4-4-12 hex, like a kubelet pod uid.
pod_uid() { printf '00000000-0000-4000-8000-%012x' "$1"; }

start_one() {
	local i=$1 uid
	uid=$(pod_uid "$i")
	docker run -d --name "$PREFIX$i" \
		--cgroup-parent "/kubepods/burstable/pod$uid" \
		--label "io.kubernetes.pod.name=bench-$i" \
		--label "io.kubernetes.pod.namespace=bench-ns-$((i % 5))" \
		--label "io.kubernetes.pod.uid=$uid" \
		--label "io.kubernetes.container.name=app" \
		"$IMAGE" sleep 86400 >/dev/null
}

running_names() { docker ps --filter "name=^$PREFIX" --format '{{.Names}}'; }

up() {
	local n=$1 t0 i
	[[ $n =~ ^[0-9]+$ ]] || die "up needs a count, got '$n'"
	docker image inspect "$IMAGE" >/dev/null 2>&1 || die "$IMAGE missing or dockerd not answering: run test/support/provision.sh"
	t0=$(date +%s%3N)
	local have all
	have=$(running_names)
	all=$(docker ps -a --filter "name=^$PREFIX" --format '{{.Names}}')
	local -a todo=()
	for ((i = 0; i < n; i++)); do
		if grep -qx "$PREFIX$i" <<<"$have"; then continue; fi
		if grep -qx "$PREFIX$i" <<<"$all"; then docker rm -f "$PREFIX$i" >/dev/null; fi
		todo+=("$i")
	done
	local -a pids=()
	local failed=0 k
	for ((k = 0; k < ${#todo[@]}; k++)); do
		start_one "${todo[k]}" &
		pids+=($!)
		if ((${#pids[@]} >= BATCH || k == ${#todo[@]} - 1)); then
			for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
			pids=()
		fi
	done
	((failed == 0)) || die "$failed container(s) failed to start (see the docker errors above)"
	local ms=$(($(date +%s%3N) - t0)) running
	running=$(running_names | wc -l)
	say "up: started ${#todo[@]}, $running podvisor-bench-* running, in $((ms / 1000)).$((ms % 1000 / 100))s (batches of $BATCH)"
}

down() {
	local t0 ids n=0
	t0=$(date +%s%3N)
	ids=$(docker ps -aq --filter "name=^$PREFIX")
	if [[ -n $ids ]]; then
		# shellcheck disable=SC2086 # one id per word
		docker rm -f $ids >/dev/null
		n=$(wc -w <<<"$ids")
	fi
	# docker leaves the (now empty) pod cgroups it created for --cgroup-parent:
	# remove ours only (rmdir refuses anything non-empty); kubepods/ itself stays.
	local d pods=0
	for d in /sys/fs/cgroup/*/kubepods/burstable/pod"$(pod_uid 0 | cut -c1-24)"*; do
		[[ -d $d ]] || continue
		if rmdir "$d" 2>/dev/null; then pods=$((pods + 1)); fi
	done
	local ms=$(($(date +%s%3N) - t0))
	say "down: removed $n podvisor-bench-* container(s) and $pods empty pod cgroup dir(s) in $((ms / 1000)).$((ms % 1000 / 100))s"
}

case ${1:-} in
up) up "${2:-}" ;;
down) down ;;
count) running_names | wc -l ;;
*) die "usage: bench/containers.sh up N | down | count" ;;
esac
