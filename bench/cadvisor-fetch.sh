#!/usr/bin/env bash
# Fetch cAdvisor 0.38.7 (Debian bullseye's `cadvisor` package) and extract it
# into bench/.work/cadvisor/ (gitignored): bench/.work/cadvisor/usr/bin/cadvisor.
#
# bullseye is added only in a throw-away apt configuration (its own sources list,
# package lists and cache in a temp dir): the machine's sources.list.d and package
# lists are never touched, so nothing of bullseye is left behind even on failure.
# The mirror is the one from /etc/apt/sources.list.d/debian.sources.
# Skips everything when the binary is already there (pass --force to refetch).
set -euo pipefail

say() { printf 'cadvisor-fetch: %s\n' "$*"; }
die() { printf 'cadvisor-fetch: FAILED: %s\n' "$*" >&2; exit 1; }

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEST=$BENCH/.work/cadvisor
BIN=$DEST/usr/bin/cadvisor
WANT_VERSION=0.38.7
SOURCES=/etc/apt/sources.list.d/debian.sources
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

if [[ ${1:-} != --force && -x $BIN ]] && "$BIN" --version 2>/dev/null | grep -q "version $WANT_VERSION"; then
	say "already there: $("$BIN" --version)"
	exit 0
fi
[[ $(id -u) == 0 ]] || die "needs root (apt-get)"
[[ -r $SOURCES ]] || die "$SOURCES not found: cannot tell which Debian mirror to use"

# The URI of the stanza serving plain "bookworm" (not -security/-updates).
uri=$(awk '
	/^[[:space:]]*$/ { if (suites ~ /(^| )bookworm( |$)/ && uris != "") { print uris; exit } uris = ""; suites = ""; next }
	/^URIs:/   { uris = $2 }
	/^Suites:/ { $1 = ""; suites = $0 " " }
	END        { if (suites ~ /(^| )bookworm( |$)/ && uris != "") print uris }
' "$SOURCES" | head -n 1)
[[ -n $uri ]] || die "no URIs line for bookworm in $SOURCES"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/podvisor-cadvisor-fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/sources.list.d"
signed_by=""
if [[ -r $KEYRING ]]; then signed_by="[signed-by=$KEYRING] "; fi
printf 'deb %s%s bullseye main\n' "$signed_by" "$uri" >"$tmp/bullseye.list"
apt_opts=(
	-o "Dir::Etc::SourceList=$tmp/bullseye.list"
	-o "Dir::Etc::SourceParts=$tmp/sources.list.d"
	-o "Dir::State::Lists=$tmp/lists"
	-o "Dir::Cache=$tmp/cache"
	-o "APT::Get::List-Cleanup=0"
)

say "apt-get update with only: deb $uri bullseye main (temporary apt config in $tmp)"
apt-get "${apt_opts[@]}" update -q >"$tmp/update.log" 2>&1 ||
	die "apt-get update for bullseye failed: $(tail -n 1 "$tmp/update.log")"
(cd "$tmp" && apt-get "${apt_opts[@]}" download cadvisor >"$tmp/download.log" 2>&1) ||
	die "apt-get download cadvisor failed: $(tail -n 1 "$tmp/download.log")"
deb=$(find "$tmp" -maxdepth 1 -name 'cadvisor_*.deb' | head -n 1)
[[ -n $deb ]] || die "apt-get download left no cadvisor_*.deb"
say "downloaded $(basename "$deb")"

rm -rf "$DEST"
mkdir -p "$DEST"
dpkg -x "$deb" "$DEST"
[[ -x $BIN ]] || die "$BIN missing after dpkg -x"
"$BIN" --version | grep -q "version $WANT_VERSION" || die "unexpected version: $("$BIN" --version)"
say "extracted: $BIN ($("$BIN" --version))"
