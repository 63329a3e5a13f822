#!/usr/bin/env bash
# `npm test`: the whole podvisor suite on a fresh machine.
#   1. provision the real daemons (root on Debian only): test/support/provision.sh
#   2. type-check src/, test/, bench/: tsc -p tsconfig.test.json --noEmit; lint them (eslint, typescript-eslint's
#      type-checked rules) and check their format (prettier); build dist/ (npm run build): the e2e tests run the real
#      dist/main.js. Each of these that fails counts as 1 failed.
#   3. run every test/**/*.test.ts with tap (TAP on stdout, a copy kept in a temp file)
#   4. stop the daemons this run started (unless PODVISOR_KEEP_DAEMONS=1)
#   5. print the closing line "N passed, N failed[, N skipped]"
# Exit 0 only when nothing failed and tap exited 0.
# Env: CI=true (daemon-needing tests fail instead of skip), PODVISOR_KEEP_DAEMONS=1,
#      PODVISOR_SKIP_PROVISION=1 (don't install/start anything), extra args go to tap.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -n ${CI+x} ]]; then export CI; fi

say() { printf 'run: %s\n' "$*"; }
now_ms() { date +%s%3N; }
since() { local d=$(($(now_ms) - $1)); printf '%d.%01ds' $((d / 1000)) $((d % 1000 / 100)); }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/podvisor-test.XXXXXX")
started=$tmp/started-daemons
tap_out=$tmp/tap.out
: >"$started"

teardown_done=0
teardown() {
	((teardown_done)) && return 0
	teardown_done=1
	if [[ ! -s $started ]]; then return 0; fi
	if [[ ${PODVISOR_KEEP_DAEMONS:-} == 1 ]]; then
		say "keeping the daemons this run started (PODVISOR_KEEP_DAEMONS=1); stop them with: test/support/provision.sh --stop"
		return 0
	fi
	# The benchmark's containers live in the same dockerd: never pull it from under them.
	if grep -q '^dockerd ' "$started" &&
		[[ -n $(timeout 10 docker ps -q --filter name=podvisor-bench- 2>/dev/null || true) ]]; then
		say "keeping the daemons this run started: podvisor-bench-* containers are running (bench/containers.sh down)"
		return 0
	fi
	bash test/support/provision.sh --stop "$started" || say "stopping the daemons this run started failed"
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	teardown || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- 1. provision
t0=$(now_ms)
if [[ ${PODVISOR_SKIP_PROVISION:-} == 1 ]]; then
	say "not provisioning daemons: PODVISOR_SKIP_PROVISION=1"
elif [[ $(id -u) != 0 ]]; then
	say "not provisioning daemons: not root (uid $(id -u)); tests needing docker/containerd/promtool use what is already running"
elif [[ ! -f /etc/debian_version ]]; then
	say "not provisioning daemons: not Debian (no /etc/debian_version)"
elif PODVISOR_STARTED_FILE=$started bash test/support/provision.sh; then
	export PODVISOR_DAEMONS_READY=1
	say "daemons ready ($(since "$t0"))"
else
	say "provisioning failed (see the line above); tests needing daemons will $([[ ${CI:-} == true ]] && echo fail || echo skip)"
fi

# ---------------------------------------------------------------- 2. type check, build
t0=$(now_ms)
tc_failed=0
if npx --no-install tsc -p tsconfig.test.json --noEmit; then
	say "type check passed ($(since "$t0"))"
else
	tc_failed=1
	say "type check FAILED ($(since "$t0")); counted as 1 failed"
fi

t0=$(now_ms)
lint_failed=0
if npx --no-install eslint .; then
	say "lint passed ($(since "$t0"))"
else
	lint_failed=1
	say "lint FAILED ($(since "$t0")); counted as 1 failed (npm run lint)"
fi

t0=$(now_ms)
format_failed=0
if npm run --silent format:check >"$tmp/format.out" 2>&1; then
	say "format check passed ($(since "$t0"))"
else
	format_failed=1
	cat "$tmp/format.out" >&2
	say "format check FAILED ($(since "$t0")); counted as 1 failed (npm run format fixes it)"
fi

t0=$(now_ms)
build_failed=0
if npm run build --silent; then
	say "build of dist/ passed ($(since "$t0"))"
else
	build_failed=1
	say "build of dist/ FAILED ($(since "$t0")); counted as 1 failed"
fi

# ---------------------------------------------------------------- 3. tap
# Some tests run children as nobody (uid 65534) to check permission handling: they need to reach the checkout.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null &&
	! setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$PWD/package.json" 2>/dev/null; then
	say "WARNING: uid 65534 cannot reach $PWD (a private parent directory such as /root or a 0700 mktemp dir): the tests that run children as nobody will fail; clone where others may traverse (e.g. /srv or /work)"
fi
t0=$(now_ms)
set +e
# The whole suite must reach the coverage thresholds in .taprc (tap exits non-zero below them). A run of some files
# only (`npm test -- test/proc/net-dev.test.ts`) cannot, so it reports coverage without gating on it; and a run of
# files that import nothing from src/ (`npm test -- test/support/daemons.test.ts`) is not a failure either.
coverage=(--allow-empty-coverage)
if (($# > 0)); then coverage+=(--allow-incomplete-coverage); fi
npx --no-install tap --reporter=tap "${coverage[@]}" "$@" </dev/null | tee "$tap_out"
tap_rc=${PIPESTATUS[0]}
set -e
say "tap exited $tap_rc ($(since "$t0"))"

# ---------------------------------------------------------------- 4. teardown
teardown

# ---------------------------------------------------------------- 5. summary
# tap's closing summary looks like: # { total: 12, pass: 11, fail: 1, skip: 0, todo: 0 }
summary=$(grep -E '^# \{ total: [0-9]+' "$tap_out" | tail -n 1 || true)
count() { local v; v=$(grep -oE "\\b$1: [0-9]+" <<<"$summary" | grep -oE '[0-9]+$' || true); printf '%s' "${v:-0}"; }
if [[ -n $summary ]]; then
	passed=$(count pass)
	failed=$(($(count fail) + tc_failed + lint_failed + format_failed + build_failed))
	skipped=$(count skip)
else
	say "tap printed no summary line (crashed?); counted as 1 failed"
	passed=0
	failed=$((1 + tc_failed + lint_failed + format_failed + build_failed))
	skipped=0
fi
status=0
if ((failed > 0 || tap_rc != 0)); then status=1; fi
if ((failed == 0 && tap_rc != 0)); then say "tap exited $tap_rc with no failed test (coverage below the thresholds in .taprc? see its report above): failing the run"; fi
if ((skipped > 0)); then
	printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
else
	printf '%d passed, %d failed\n' "$passed" "$failed"
fi
exit "$status"
