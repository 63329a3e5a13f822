#!/usr/bin/env bash
# Build the test image podvisor-test:1 without any registry: a root filesystem
# holding only the static busybox (busybox-static) with one symlink per applet
# (sh, sleep, cat, dd, yes, head, ls, wc, mkdir, touch, nc, wget, ping, top, ...),
# imported into docker, then handed to containerd's k8s.io namespace.
# Skips each half when the image is already there. Needs docker and containerd up
# (test/support/provision.sh starts them, then runs this).
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

IMAGE=podvisor-test:1
CONTAINERD_SOCK=/run/containerd/containerd.sock
REQUIRED_APPLETS=(sh sleep cat dd yes head ls wc mkdir touch nc wget ping top)

say() { printf 'test-image: %s\n' "$*"; }
die() { printf 'test-image: FAILED: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/podvisor-test-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

in_docker() { docker image inspect "$IMAGE" >/dev/null 2>&1; }
in_containerd() {
	local names
	names=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q 2>/dev/null) || return 1
	grep -Eq "(^|/)${IMAGE}\$" <<<"$names"
}

build_rootfs() {
	local bb r=$work/r applet
	bb=$(command -v busybox) || die "busybox not found (install busybox-static)"
	bb=$(readlink -f "$bb")
	local deps
	deps=$(ldd "$bb" 2>&1 || true)
	if grep -q '=>' <<<"$deps"; then
		die "$bb is dynamically linked; the image needs busybox-static"
	fi
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,run,var}
	chmod 1777 "$r/tmp"
	cp "$bb" "$r/bin/busybox"
	while IFS= read -r applet; do
		[[ -n $applet && $applet != busybox && ! -e $r/bin/$applet ]] || continue
		ln -s busybox "$r/bin/$applet"
	done < <("$r/bin/busybox" --list)
	for applet in "${REQUIRED_APPLETS[@]}"; do
		[[ -L $r/bin/$applet ]] || die "busybox has no '$applet' applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$work/r.tar" .
}

if in_docker; then
	say "$IMAGE already in docker"
else
	build_rootfs
	docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["sh"]' \
		"$work/r.tar" "$IMAGE" >/dev/null || die "docker import of $IMAGE failed"
	say "$IMAGE imported into docker ($(find "$work/r/bin" -type l | wc -l) busybox applets)"
fi

if in_containerd; then
	say "$IMAGE already in containerd (namespace k8s.io)"
else
	docker save "$IMAGE" -o "$work/t.tar" || die "docker save $IMAGE failed"
	ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --base-name podvisor-test "$work/t.tar" >/dev/null ||
		die "ctr images import of $IMAGE into namespace k8s.io failed"
	in_containerd || die "$IMAGE not listed by 'ctr -n k8s.io images ls' after import"
	say "$IMAGE imported into containerd (namespace k8s.io)"
fi
