#!/usr/bin/env bash
# Build the local base images the Dockerfile can start FROM when no container
# registry is reachable (CI here: no `docker pull`):
#
#   podvisor-base-build:bookworm-node<major>    minbase bookworm + this machine's node, npm
#   podvisor-base-runtime:bookworm-node<major>  minbase bookworm + this machine's node only
#                                               (util-linux's lscpu, tini; no npm/npx/corepack)
#
# The root filesystem is `debootstrap --variant=minbase --include=tini bookworm`
# from the mirror apt uses on this machine, cached (cleaned) as a tarball under
# /var/cache/podvisor; node is /usr/bin/node of this machine (its shared
# libraries are checked inside the rootfs), npm its global npm. The build image
# also gets the registry and CA file this machine's npm is configured with (only
# those two settings), so `npm ci` inside `docker build --network host` reaches
# the registry the way npm on the host does.
#
# Usage: test/support/base-image.sh
#   Progress goes to stderr; stdout gets two lines for --build-arg:
#     BUILD_IMAGE=podvisor-base-build:bookworm-node20
#     RUNTIME_IMAGE=podvisor-base-runtime:bookworm-node20
# Idempotent: when both images exist and were made from this node version and
# this recipe, it only prints them (~0.1 s). Building needs root (debootstrap,
# chroot); debootstrap is installed with apt-get when missing.
# Env: PODVISOR_DEBIAN_MIRROR (default: from /etc/apt/sources.list{,.d}),
#      PODVISOR_CACHE_DIR (default /var/cache/podvisor).
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
# node runs inside the new rootfs too: a caller's hooks (tap's --import=...) must not come along.
unset NODE_OPTIONS

SUITE=bookworm
# Bump when the recipe changes: images and the cached rootfs of another recipe are rebuilt.
RECIPE=1
INCLUDE=tini
CACHE_DIR=${PODVISOR_CACHE_DIR:-/var/cache/podvisor}
ROOTFS_TAR=$CACHE_DIR/rootfs-$SUITE-minbase-r$RECIPE.tar
LABEL_NODE=org.podvisor.base.node-version
LABEL_RECIPE=org.podvisor.base.recipe
APT_LOG=/var/log/podvisor-apt.log

say() { printf 'base-image: %s\n' "$*" >&2; }
die() { printf 'base-image: FAILED: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
since() { local d=$(($(now_ms) - $1)); printf '%d.%01ds' $((d / 1000)) $((d % 1000 / 100)); }

work=""
# Unmount anything a failed debootstrap left mounted under the work dir (proc, sys) before
# removing it, and never cross into another filesystem while removing.
cleanup() {
	[[ -n $work && -d $work ]] || return 0
	local m
	awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# The label value of an image, empty when the image or the label is missing.
image_label() {
	docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}
up_to_date() {
	[[ $(image_label "$1" "$LABEL_NODE") == "$NODE_VERSION" && $(image_label "$1" "$LABEL_RECIPE") == "$RECIPE" ]]
}

# The first mirror apt uses for $SUITE: deb822 files first (Debian 12's
# debian.sources), then one-line sources.list entries.
debian_mirror() {
	if [[ -n ${PODVISOR_DEBIAN_MIRROR:-} ]]; then
		printf '%s' "$PODVISOR_DEBIAN_MIRROR"
		return 0
	fi
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		# One stanza per paragraph: a stanza whose Suites has the bare suite name and Types has deb.
		uri=$(awk -v suite="$SUITE" '
			function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "" && !found) { split(uris, u, " "); print u[1]; found = 1 } types = suites = uris = "" }
			/^[[:space:]]*$/ { flush(); next }
			/^[[:space:]]*#/ { next }
			tolower($1) == "types:" { $1 = ""; types = $0; gsub(/^ +| +$/, "", types) }
			tolower($1) == "suites:" { $1 = ""; suites = $0; gsub(/^ +| +$/, "", suites) }
			tolower($1) == "uris:" { $1 = ""; uris = $0; gsub(/^ +| +$/, "", uris) }
			END { flush() }' "$f")
		if [[ -n $uri ]]; then
			printf '%s' "$uri"
			return 0
		fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		# deb [options] URI suite components...
		uri=$(sed -E 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }')
		if [[ -n $uri ]]; then
			printf '%s' "$uri"
			return 0
		fi
	done
	printf 'http://deb.debian.org/debian'
}

ensure_debootstrap() {
	command -v debootstrap >/dev/null 2>&1 && return 0
	local t0
	t0=$(now_ms)
	say "debootstrap missing: apt-get install debootstrap (log: $APT_LOG)"
	{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; } >>"$APT_LOG" 2>&1 ||
		die "apt-get install debootstrap failed: $(grep -aE '^E: ' "$APT_LOG" | tail -n 1) (see $APT_LOG)"
	hash -r
	command -v debootstrap >/dev/null 2>&1 || die "debootstrap still missing after apt-get install"
	say "debootstrap installed ($(since "$t0"))"
}

# The cleaned minbase rootfs, as a tarball in the cache (made once).
ensure_rootfs_tar() {
	if [[ -s $ROOTFS_TAR ]]; then
		say "rootfs: cached $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
		return 0
	fi
	ensure_debootstrap
	local mirror t0 r=$work/debootstrap log=$work/debootstrap.log
	mirror=$(debian_mirror)
	t0=$(now_ms)
	say "rootfs: debootstrap --variant=minbase --include=$INCLUDE $SUITE from $mirror"
	if ! debootstrap --variant=minbase --include="$INCLUDE" --components=main "$SUITE" "$r" "$mirror" >"$log" 2>&1; then
		mkdir -p "$CACHE_DIR"
		cp "$log" "$CACHE_DIR/debootstrap.log" 2>/dev/null || true
		die "debootstrap $SUITE from $mirror failed: $(grep -aE '^[EW]: ' "$log" | tail -n 1) (see $CACHE_DIR/debootstrap.log)"
	fi
	if awk -v w="$r/" 'index($2, w) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
		die "debootstrap left filesystems mounted under $r"
	fi
	# What docker provides at run time, or nobody needs in an image.
	rm -rf --one-file-system "${r:?}"/dev/* "$r"/proc/* "$r"/sys/* "$r"/run/* "$r"/tmp/* \
		"$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
		"$r"/var/log/* "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/*
	: >"$r/etc/hostname"
	rm -f "$r/etc/resolv.conf" "$r/etc/machine-id" "$r/var/lib/dbus/machine-id"
	mkdir -p "$CACHE_DIR"
	tar --numeric-owner -C "$r" -cf "$ROOTFS_TAR.tmp" . || die "cannot write $ROOTFS_TAR"
	mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
	rm -rf --one-file-system "$r"
	say "rootfs: debootstrap done, cached $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1), $(since "$t0"))"
}

# Copy this machine's node into rootfs $1 at /usr/bin/node and check it runs there.
add_node() {
	local r=$1 missing
	install -m 0755 "$NODE_BIN" "$r/usr/bin/node"
	# Every shared library node needs must be in the rootfs (ldd of the host binary names them).
	missing=$(ldd "$NODE_BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $1 }' | while read -r lib; do
		[[ -n $(find "$r/lib" "$r/usr/lib" "$r/lib64" -name "$lib" -print -quit 2>/dev/null) ]] || printf '%s ' "$lib"
	done)
	[[ -z $missing ]] || die "node's shared libraries missing from the $SUITE rootfs: $missing"
	local v
	v=$(chroot "$r" /usr/bin/node --version 2>&1) || die "node does not run in the $SUITE rootfs: $v"
	[[ $v == "$NODE_VERSION" ]] || die "node in the rootfs says $v, expected $NODE_VERSION"
}

# docker import rootfs $1 as image $2, with Dockerfile-style changes $3...
import_rootfs() {
	local r=$1 image=$2
	shift 2
	local -a changes=()
	local c
	for c in "$@"; do changes+=(--change "$c"); done
	tar --numeric-owner -C "$r" -cf "$r.tar" . || die "cannot pack the rootfs of $image"
	docker import "${changes[@]}" \
		--change "LABEL $LABEL_NODE=$NODE_VERSION $LABEL_RECIPE=$RECIPE org.opencontainers.image.base.name=debian:$SUITE-minbase" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["node"]' \
		"$r.tar" "$image" >/dev/null || die "docker import of $image failed"
	rm -f "$r.tar"
}

build_runtime() {
	local t0 r=$work/runtime v
	t0=$(now_ms)
	mkdir -p "$r"
	tar -C "$r" -xf "$ROOTFS_TAR"
	add_node "$r"
	# systeminformation runs `lscpu` through /bin/sh for sockets and physical cores (no /sys in a chroot: --version only).
	v=$(chroot "$r" /bin/sh -c 'lscpu --version' 2>&1) || die "lscpu does not run in the runtime rootfs: $v"
	[[ -x $r/usr/bin/tini ]] || die "tini missing from the runtime rootfs"
	import_rootfs "$r" "$RUNTIME_IMAGE"
	rm -rf --one-file-system "$r"
	say "$RUNTIME_IMAGE imported ($(docker image inspect --format '{{.Size}}' "$RUNTIME_IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }'), $(since "$t0"))"
}

build_build() {
	local t0 r=$work/build npm_cli npm_dir cafile registry v
	t0=$(now_ms)
	mkdir -p "$r"
	tar -C "$r" -xf "$ROOTFS_TAR"
	add_node "$r"
	npm_cli=$(readlink -f "$(command -v npm)" 2>/dev/null) || die "npm not found next to node"
	npm_dir=$(dirname "$(dirname "$npm_cli")")
	[[ -f $npm_dir/package.json && -f $npm_dir/bin/npm-cli.js && -f $npm_dir/bin/npx-cli.js ]] ||
		die "cannot tell npm's directory from $npm_cli"
	mkdir -p "$r/usr/lib/node_modules"
	cp -a "$npm_dir" "$r/usr/lib/node_modules/npm"
	ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/bin/npm"
	ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/bin/npx"
	# The registry and CA file npm uses here, and nothing else of its configuration (no tokens).
	registry=$(npm config get registry 2>/dev/null) || registry=""
	cafile=$(npm config get cafile 2>/dev/null) || cafile=""
	mkdir -p "$r/usr/etc"
	{
		printf '# written by test/support/base-image.sh: the registry and CA file npm uses on the build host\n'
		if [[ -n $registry && $registry != null && $registry != undefined ]]; then printf 'registry=%s\n' "$registry"; fi
		if [[ $cafile == /* && -f $cafile ]]; then
			mkdir -p "$r$(dirname "$cafile")"
			cp -L "$cafile" "$r$cafile"
			printf 'cafile=%s\n' "$cafile"
		fi
		printf 'update-notifier=false\nfund=false\naudit=false\n'
	} >"$r/usr/etc/npmrc"
	v=$(chroot "$r" /usr/bin/npm --version 2>&1) || die "npm does not run in the build rootfs: $v"
	import_rootfs "$r" "$BUILD_IMAGE"
	rm -rf --one-file-system "$r"
	say "$BUILD_IMAGE imported (npm $v, $(docker image inspect --format '{{.Size}}' "$BUILD_IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }'), $(since "$t0"))"
}

main() {
	local t_all
	t_all=$(now_ms)
	[[ $# == 0 ]] || die "unknown argument: $1 (usage: base-image.sh)"
	command -v docker >/dev/null 2>&1 || die "docker not found"
	timeout 20 docker info >/dev/null 2>&1 || die "docker daemon is not answering (docker info)"
	NODE_BIN=$(readlink -f "$(command -v node)" 2>/dev/null) || die "node not found"
	NODE_VERSION=$("$NODE_BIN" --version) || die "$NODE_BIN --version failed"
	local major=${NODE_VERSION#v}
	major=${major%%.*}
	BUILD_IMAGE=podvisor-base-build:$SUITE-node$major
	RUNTIME_IMAGE=podvisor-base-runtime:$SUITE-node$major

	if ! up_to_date "$BUILD_IMAGE" || ! up_to_date "$RUNTIME_IMAGE"; then
		[[ $(id -u) == 0 ]] || die "$BUILD_IMAGE/$RUNTIME_IMAGE missing or stale, and building them needs root (debootstrap, chroot)"
		mkdir -p "$CACHE_DIR"
		# One builder at a time on this machine.
		exec 8>"$CACHE_DIR/base-image.lock"
		flock -w 900 8 || die "another base-image.sh holds $CACHE_DIR/base-image.lock for over 15 min"
		work=$(mktemp -d "${TMPDIR:-/tmp}/podvisor-base-image.XXXXXX")
		if ! up_to_date "$RUNTIME_IMAGE"; then
			ensure_rootfs_tar
			build_runtime
		fi
		if ! up_to_date "$BUILD_IMAGE"; then
			ensure_rootfs_tar
			build_build
		fi
	fi
	say "$BUILD_IMAGE and $RUNTIME_IMAGE ready, node $NODE_VERSION ($(since "$t_all"))"
	printf 'BUILD_IMAGE=%s\nRUNTIME_IMAGE=%s\n' "$BUILD_IMAGE" "$RUNTIME_IMAGE"
}

main "$@"
