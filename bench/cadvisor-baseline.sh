#!/usr/bin/env bash
# The anchor measurement: cAdvisor 0.38.7 on this machine with N (200)
# Kubernetes-shaped Docker containers, plus the native C reader on the same state.
#
#   bench/cadvisor-baseline.sh [N=200]
#
# Steps: provision daemons (test/support/provision.sh), fetch cAdvisor
# (bench/cadvisor-fetch.sh), make sure N podvisor-bench-* containers run
# (bench/containers.sh up N), start cAdvisor (-port 18080 -logtostderr
# -docker_only=false, default housekeeping), wait until /metrics shows N
# containers with a name= label (90 s max), then measure:
#   - RSS (VmRSS) before the scrapes
#   - 20 sequential scrapes of /metrics: latency min/median/max, body size,
#     container_* series count, cAdvisor CPU time per scrape
#   - cAdvisor CPU % over 30 s with no scrape (housekeeping only)
#   - 20 concurrent scrapes: wall time of each and of the batch, peak RSS sampled
#     every 100 ms
# then stops cAdvisor and runs bench/native-reader.sh on the same node state.
# Writes bench/results/<date>-cadvisor-baseline.md. The containers stay up
# (bench/containers.sh down removes them).
set -euo pipefail

say() { printf 'baseline: %s\n' "$*"; }
die() { printf 'baseline: FAILED: %s\n' "$*" >&2; exit 1; }

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
N=${1:-200}
PORT=18080
URL=http://127.0.0.1:$PORT/metrics
SEQ=20
WARMUP=2
SETTLE_S=10
NATIVE_PASSES=50
CONC=20
IDLE_S=30
CADVISOR=$BENCH/.work/cadvisor/usr/bin/cadvisor
LOG=$BENCH/.work/cadvisor-baseline.log
OUT=$BENCH/results/$(date +%F)-cadvisor-baseline.md
CLK_TCK=$(getconf CLK_TCK)

[[ $N =~ ^[0-9]+$ ]] || die "usage: bench/cadvisor-baseline.sh [N]"
[[ $(id -u) == 0 ]] || die "needs root (cAdvisor reads every cgroup and the docker socket)"
command -v curl >/dev/null || die "curl not found"

now_ms() { date +%s%3N; }
cpu_ticks() { # utime + stime of a pid
	local s
	s=$(cat "/proc/$1/stat") || return 1
	s=${s##*) }
	awk '{ print $12 + $13 }' <<<"$s"
}
sys_busy_total() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }
# % of all CPUs busy between two sys_busy_total readings
busy_pct() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", (y[1] - x[1]) * 100 / (y[2] - x[2]) }'; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# min / median / max of numbers on stdin (median: mean of the two middle values)
stats() { sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.6f %.6f %.6f\n", v[1], m, v[NR] }'; }
ms3() { awk '{ printf "%.1f / %.1f / %.1f", $1 * 1000, $2 * 1000, $3 * 1000 }'; }
named_containers() { # distinct non-empty name= labels on container_* series
	grep -oE '^container_[a-z_]+\{[^}]*[{,]name="[^"]+"' | grep -oE '[{,]name="[^"]+"' | sort -u | wc -l
}

# ---------------------------------------------------------------- setup
bash "$ROOT/test/support/provision.sh" || die "provisioning failed"
bash "$BENCH/cadvisor-fetch.sh" || die "fetching cAdvisor failed"
bash "$BENCH/containers.sh" up "$N" || die "starting $N containers failed"
running=$(bash "$BENCH/containers.sh" count)
if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then
	die "something already listens on port $PORT"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/podvisor-baseline.XXXXXX")
cad_pid=""
cleanup() {
	if [[ -n $cad_pid ]] && kill -0 "$cad_pid" 2>/dev/null; then
		kill -TERM "$cad_pid" 2>/dev/null || true
		for _ in {1..50}; do kill -0 "$cad_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$cad_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

say "starting cAdvisor ($("$CADVISOR" --version)), log $LOG"
(cd / && exec "$CADVISOR" -port "$PORT" -logtostderr -docker_only=false </dev/null >"$LOG" 2>&1) &
cad_pid=$!
t_start=$(now_ms)
seen=0
while :; do
	kill -0 "$cad_pid" 2>/dev/null || die "cAdvisor exited: $(grep -v perf_event "$LOG" | tail -n 1)"
	if curl -s --max-time 10 "$URL" >"$work/poll.txt" 2>/dev/null; then
		seen=$(named_containers <"$work/poll.txt")
		((seen >= N)) && break
	fi
	(($(now_ms) - t_start < 90000)) || break
	sleep 1
done
ready_s=$(awk -v ms=$(($(now_ms) - t_start)) 'BEGIN { printf "%.1f", ms / 1000 }')
say "cAdvisor sees $seen named containers after ${ready_s}s"

# ---------------------------------------------------------------- measure
say "settling ${SETTLE_S}s, then $WARMUP warm-up scrapes (not counted)"
sleep "$SETTLE_S"
for ((i = 0; i < WARMUP; i++)); do curl -s --max-time 60 -o /dev/null "$URL" || die "warm-up scrape failed"; done
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
rss_before=$(status_kb "$cad_pid" VmRSS)

say "$SEQ sequential scrapes"
curl -s --max-time 60 -o "$work/body.txt" "$URL" || die "scrape failed"
body_series=$(grep -vc '^#' "$work/body.txt" || true)
container_series=$(grep -c '^container_' "$work/body.txt" || true)
machine_series=$(grep -c '^machine_' "$work/body.txt" || true)
families=$(grep -c '^# TYPE ' "$work/body.txt" || true)
named_in_body=$(named_containers <"$work/body.txt")
c0=$(cpu_ticks "$cad_pid")
s0=$(sys_busy_total)
t0=$(now_ms)
for ((i = 0; i < SEQ; i++)); do
	curl -s --max-time 60 -o /dev/null -w '%{time_total} %{size_download}\n' "$URL" >>"$work/seq.txt"
done
seq_wall_ms=$(($(now_ms) - t0))
c1=$(cpu_ticks "$cad_pid")
seq_sys_busy=$(busy_pct "$s0" "$(sys_busy_total)")
seq_stats=$(cut -d' ' -f1 "$work/seq.txt" | stats)
size_stats=$(cut -d' ' -f2 "$work/seq.txt" | stats)
seq_cpu_ms_per_scrape=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$SEQ" 'BEGIN { printf "%.0f", d / hz * 1000 / n }')
seq_cpu_pct=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v ms="$seq_wall_ms" 'BEGIN { printf "%.1f", d / hz * 100000 / ms }')
rss_after_seq=$(status_kb "$cad_pid" VmRSS)

say "${IDLE_S}s idle (no scrapes)"
c0=$(cpu_ticks "$cad_pid")
s0=$(sys_busy_total)
t0=$(now_ms)
sleep "$IDLE_S"
c1=$(cpu_ticks "$cad_pid")
idle_sys_busy=$(busy_pct "$s0" "$(sys_busy_total)")
idle_ms=$(($(now_ms) - t0))
idle_cpu_pct=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v ms="$idle_ms" 'BEGIN { printf "%.1f", d / hz * 100000 / ms }')
rss_idle=$(status_kb "$cad_pid" VmRSS)

say "$CONC concurrent scrapes"
rss_peak=$(status_kb "$cad_pid" VmRSS)
c0=$(cpu_ticks "$cad_pid")
s0=$(sys_busy_total)
t0=$(now_ms)
pids=()
for ((i = 0; i < CONC; i++)); do
	curl -s --max-time 120 -o /dev/null -w '%{time_total} %{size_download}\n' "$URL" >"$work/conc.$i" &
	pids+=($!)
done
while :; do
	r=$(status_kb "$cad_pid" VmRSS)
	((r > rss_peak)) && rss_peak=$r
	alive=0
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1 && break; done
	((alive)) || break
	sleep 0.1
done
for p in "${pids[@]}"; do wait "$p" || die "a concurrent scrape failed"; done
conc_wall_ms=$(($(now_ms) - t0))
c1=$(cpu_ticks "$cad_pid")
conc_sys_busy=$(busy_pct "$s0" "$(sys_busy_total)")
cat "$work"/conc.* >"$work/conc.txt"
conc_stats=$(cut -d' ' -f1 "$work/conc.txt" | stats)
conc_cpu_s=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz }')
rss_after=$(status_kb "$cad_pid" VmRSS)
hwm=$(status_kb "$cad_pid" VmHWM)
loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)

say "stopping cAdvisor"
kill -TERM "$cad_pid"
wait "$cad_pid" 2>/dev/null || true
cad_pid=""

say "native reader on the same node state"
native=$(bash "$BENCH/native-reader.sh" "$NATIVE_PASSES") || die "native reader failed"
nat() { awk -v k="$1" '$1 == k { print $2 }' <<<"$native"; }

# ---------------------------------------------------------------- report
mem_total_kb=$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)
cpu_model=$(awk -F': ' '$1 ~ /^model name/ { print $2; exit }' /proc/cpuinfo)
docker_server=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')
containerd_version=$(containerd --version 2>/dev/null | awk '{ print $3 }')
cgroup_ctrls=$(awk '$3 == "cgroup" { print $2 }' /proc/mounts | xargs -n1 basename | paste -sd, -)
cgroups_cpu=$(find /sys/fs/cgroup/cpu -type d | wc -l)
kb2mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
fmt_list() { awk '{ printf "%s%.1f", (NR > 1 ? ", " : ""), $1 * 1000 }'; }

mkdir -p "$BENCH/results"
# shellcheck disable=SC2016 # backticks below are markdown, not command substitution
{
	printf '# cAdvisor 0.38.7 baseline, %d Kubernetes-shaped Docker containers\n\n' "$N"
	printf 'Measured %s by `bench/cadvisor-baseline.sh %d` (see bench/README.md).\n\n' "$(date -u '+%F %H:%M UTC')" "$N"
	printf '## Machine\n\n'
	printf '| | |\n|---|---|\n'
	printf '| CPUs (nproc) | %s (%s) |\n' "$(nproc)" "$cpu_model"
	printf '| memory | %s MiB |\n' "$((mem_total_kb / 1024))"
	printf '| kernel | %s |\n' "$(uname -r)"
	printf '| OS | Debian %s |\n' "$(cat /etc/debian_version)"
	printf '| docker | %s (cgroupfs driver), containerd %s |\n' "$docker_server" "$containerd_version"
	printf '| cgroups | v1, one mount per controller: %s; cgroup2 at /sys/fs/cgroup/unified (no controllers) |\n' "$cgroup_ctrls"
	printf '| cAdvisor | %s, `-port %d -logtostderr -docker_only=false`, default housekeeping |\n' "$("$CADVISOR" --version | sed 's/^cAdvisor version //')" "$PORT"
	printf '\n## Node state\n\n'
	printf -- '- %d `podvisor-bench-*` containers running (`podvisor-test:1`, `sleep 86400`), each in `/kubepods/burstable/pod<uid>/<id>` with the kubelet labels\n' "$running"
	printf -- '- %d cgroup directories in the cpu hierarchy\n' "$cgroups_cpu"
	printf -- '- cAdvisor reported %d named containers after %ss (poll of /metrics every 1 s); measured after %d s more and %d warm-up scrapes\n' "$seen" "$ready_s" "$SETTLE_S" "$WARMUP"
	printf -- '- load average (1/5/15 min) %s before the measurements, %s after (the machine is shared with other work; compare runs with that in mind)\n' "$loadavg_before" "$loadavg_after"
	printf -- '- whole-machine CPU busy (all %d CPUs, /proc/stat, cAdvisor and curl included): %s%% during the sequential scrapes, %s%% during the idle window, %s%% during the concurrent scrapes\n' "$(nproc)" "$seq_sys_busy" "$idle_sys_busy" "$conc_sys_busy"
	printf '\n## Results\n\n'
	printf '| measure | value |\n|---|---|\n'
	printf '| /metrics latency, %d sequential scrapes, min / median / max | %s ms |\n' "$SEQ" "$(ms3 <<<"$seq_stats")"
	printf '| body size (median) | %s bytes (%s MiB) |\n' "$(awk '{ printf "%.0f", $2 }' <<<"$size_stats")" "$(awk '{ printf "%.2f", $2 / 1048576 }' <<<"$size_stats")"
	printf '| series in body / `container_*` / `machine_*` / metric families | %s / %s / %s / %s |\n' "$body_series" "$container_series" "$machine_series" "$families"
	printf '| named containers in body | %s |\n' "$named_in_body"
	printf '| cAdvisor CPU per sequential scrape | %s ms (%s%% of one core while scraping back to back) |\n' "$seq_cpu_ms_per_scrape" "$seq_cpu_pct"
	printf '| CPU over %ds idle (no scrapes, housekeeping only) | %s%% of one core |\n' "$IDLE_S" "$idle_cpu_pct"
	printf '| RSS before scrapes / after sequential / after idle | %s / %s / %s MiB |\n' "$(kb2mb "$rss_before")" "$(kb2mb "$rss_after_seq")" "$(kb2mb "$rss_idle")"
	printf '| %d concurrent scrapes: each, min / median / max | %s ms |\n' "$CONC" "$(ms3 <<<"$conc_stats")"
	printf '| %d concurrent scrapes: batch wall time | %s ms |\n' "$CONC" "$conc_wall_ms"
	printf '| %d concurrent scrapes: cAdvisor CPU | %s s |\n' "$CONC" "$conc_cpu_s"
	printf '| peak RSS during concurrent scrapes (100 ms samples) / RSS after / VmHWM | %s / %s / %s MiB |\n' "$(kb2mb "$rss_peak")" "$(kb2mb "$rss_after")" "$(kb2mb "$hwm")"
	printf '\n## Native reader (floor: open/read/close of every file, no parsing)\n\n'
	printf '`bench/native-reader.sh %d` after cAdvisor stopped, same containers: one pass reads what one podvisor gather reads (bench/native-reader.c, bench/README.md).\n\n' "$NATIVE_PASSES"
	printf '| measure | value |\n|---|---|\n'
	printf '| cgroups (union of the hierarchies read) | %s |\n' "$(nat cgroups)"
	printf '| files read / missing per pass | %s / %s |\n' "$(nat files_read)" "$(nat files_missing)"
	printf '| bytes per pass | %s |\n' "$(nat bytes)"
	printf '| ms per pass, min / median / max over %s passes | %s / %s / %s |\n' "$(nat passes)" "$(nat ms_min)" "$(nat ms_median)" "$(nat ms_max)"
	printf '\n## Raw numbers\n\n'
	printf 'Sequential scrape latencies (ms, in order): %s\n\n' "$(fmt_list <"$work/seq.txt")"
	printf 'Sequential body sizes (bytes): %s\n\n' "$(cut -d' ' -f2 "$work/seq.txt" | paste -sd' ' -)"
	printf 'Concurrent scrape latencies (ms, sorted): %s\n\n' "$(sort -g "$work/conc.txt" | fmt_list)"
	printf 'Native reader output:\n\n```\n%s\n```\n' "$native"
} >"$OUT"
say "wrote ${OUT#"$ROOT"/}"
say "sequential min/median/max: $(ms3 <<<"$seq_stats") ms; idle CPU ${idle_cpu_pct}%; RSS $(kb2mb "$rss_before") MiB, peak $(kb2mb "$rss_peak") MiB"
say "the $running containers stay up: bench/containers.sh down removes them"
