#!/usr/bin/env bash
# Kubernetes-shaped bench containers in Docker.
#   bench/containers.sh up N    start podvisor-bench-0..N-1 (busybox `sleep 86400`,
#                               podvisor-test:1), each in its own pod cgroup
#                               /kubepods/burstable/pod<uid> with the kubelet's labels
#   bench/containers.sh down    remove every podvisor-bench-* Docker container and every podvisorbench*
#                               containerd one in k8s.io (bench/run.ts's), and only those
#   bench/containers.sh count   how many podvisor-bench-* containers are running
# Idempotent: `up` only starts the missing ones. Needs dockerd and the test image
# (test/support/provision.sh). Containers start in parallel batches of $BATCH (8).
set -euo pipefail

say() { printf 'containers: %s\n' "$*"; }
die() { printf 'containers: FAILED: %s\n' "$*" >&2; exit 1; }

IMAGE=podvisor-test:1
PREFIX=podvisor-bench-
CTR_NS=k8s.io
CTR_PREFIX=podvisorbench
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
	# bench/run.ts's containerd containers (k8s.io namespace, ids podvisorbenchc<50 digits>; see
	# bench/lib/scenario.ts for why the id has no dashes): task killed and deleted, then the container.
	local c=0 ctr_ids
	if ctr_ids=$(ctr -n "$CTR_NS" containers ls -q 2>/dev/null); then
		ctr_ids=$(grep "^$CTR_PREFIX" <<<"$ctr_ids" || true)
		if [[ -n $ctr_ids ]]; then
			xargs -P 8 -I{} sh -c "ctr -n $CTR_NS tasks rm -f {} >/dev/null 2>&1; ctr -n $CTR_NS containers rm {} >/dev/null" <<<"$ctr_ids" ||
				say "down: some containerd containers could not be removed"
			c=$(wc -l <<<"$ctr_ids")
		fi
	else
		say "down: containerd not answering (ctr version): its bench containers, if any, are left"
	fi
	# docker and containerd leave the (now empty) pod cgroups they created for --cgroup-parent / --cgroup:
	# remove ours only (rmdir refuses anything non-empty), the container dirs below a pod first; kubepods/ stays.
	local d pods=0 prefix
	prefix=$(pod_uid 0 | cut -c1-24)
	for d in /sys/fs/cgroup/*/kubepods/{burstable,besteffort}/pod"$prefix"*/* /sys/fs/cgroup/*/kubepods/{burstable,besteffort}/pod"$prefix"*; do
		[[ -d $d ]] || continue
		if rmdir "$d" 2>/dev/null; then pods=$((pods + 1)); fi
	done
	local ms=$(($(date +%s%3N) - t0))
	say "down: removed $n podvisor-bench-* Docker container(s), $c containerd one(s) and $pods empty cgroup dir(s) in $((ms / 1000)).$((ms % 1000 / 100))s"
}

case ${1:-} in
up) up "${2:-}" ;;
down) down ;;
count) running_names | wc -l ;;
*) die "usage: bench/containers.sh up N | down | count" ;;
esac
