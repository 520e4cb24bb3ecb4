#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Recipe of the "full" guest image: the base image's kernel and initramfs
# (images/base/build.sh, with virtio_blk and overlay added), and a Debian 12
# minbase root filesystem made by debootstrap and apt from Debian's archive, as a
# read-only ext4 image the guest mounts under a tmpfs overlay (lg.root=,
# src/agent/rootfs.c). The same tree, unpacked, is the process backend's root.
#
#   build.sh OUTDIR        (as root: debootstrap needs it)
#
# Environment: as images/base/build.sh, and
#   LG_DEBIAN_MIRROR    the archive to use (default: the first Debian URI in
#                       the host's apt sources)
#
# What is in it, and why:
#   python3 python3-venv python3-pip   agents write Python; venv for isolated installs
#   nodejs npm                         node scripts, npm installs (and MCP servers)
#   git                                agents work on repositories
#   curl ca-certificates               HTTP(S) through the sandbox's egress proxy
#   build-essential                    gcc, g++, make, libc headers: the native
#                                      builds of common npm (node-gyp) and pip packages
# Package versions are whatever the archive serves at build time; every one
# is recorded in OUTDIR/packages (name version), so a build can be compared
# with another.
set -euo pipefail
SUITE=bookworm
PACKAGES="python3 python3-venv python3-pip nodejs npm git curl ca-certificates build-essential"
HERE=$(cd "$(dirname "$0")" && pwd)
die() {
        echo "build.sh: error: $*" >&2
        exit 1
}
[ $# -eq 1 ] || die "usage: build.sh OUTDIR"
OUT=$1
[ "$(id -u)" -eq 0 ] || die "the full image is built with debootstrap, which needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed: apt-get install debootstrap"
command -v mke2fs >/dev/null || die "mke2fs is not installed: apt-get install e2fsprogs"

# Steps 1-5 are the base recipe's; its progress lines are renumbered out of 8.
LG_MODULES_EXTRA="drivers/block/virtio_blk.ko fs/overlayfs/overlay.ko" \
        LG_CMDLINE_EXTRA="lg.root=/dev/vda" \
        bash "$HERE/../base/build.sh" "$OUT" | sed -u 's|^step \([0-9]*\)/5:|step \1/8:|'
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lg-image-full.XXXXXX")
# --one-file-system: whatever happens, nothing mounted below is ever walked into.
trap 'rm -rf --one-file-system "$WORK"' EXIT
MIRROR=${LG_DEBIAN_MIRROR:-}
if [ -z "$MIRROR" ]; then
        # deb822 sources first, then the classic list; none may fail the build by itself.
        MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
                sed -n 's/^URIs: *\(http[^ ]*debian\/\?\)\( .*\)\?$/\1/p' | sed -n 1p || true)
        [ -n "$MIRROR" ] || MIRROR=$(sed -n 's/^deb \(http[^ ]*debian\/\?\) .*/\1/p' \
                /etc/apt/sources.list 2>/dev/null | sed -n 1p || true)
fi
[ -n "$MIRROR" ] || die "no Debian archive in the apt sources; set LG_DEBIAN_MIRROR"

echo "step 6/8: debootstrap $SUITE from $MIRROR, then apt-get install $PACKAGES"
CACHE=${LG_CACHE:-$WORK/cache}
mkdir -p "$CACHE/debootstrap" "$CACHE/apt-archives/partial"
R="$WORK/root"
# debootstrap's own resolver cannot take npm's dependency tree (--include fails to
# configure it): it lays down minbase, and apt inside the tree installs the rest.
# debootstrap mounts /proc and /sys in the tree itself: in a namespace of its own too.
unshare -m --propagation private setpriv --pdeathsig KILL \
        debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap" "$SUITE" "$R" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || die "debootstrap failed: $(tail -3 "$WORK/debootstrap.log")"
# No daemon may start inside the tree while it is built.
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"
# apt runs in a mount namespace of its own: the mounts it needs (/proc, /dev, the package
# cache) never show on the host and vanish with it, however the build ends; it dies with us.
INSTALL='set -eu
R=$1 CACHE=$2
shift 2
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount --bind "$CACHE/apt-archives" "$R/var/cache/apt/archives"
chroot "$R" apt-get -q update
DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get -q -y --no-install-recommends install "$@"'
# shellcheck disable=SC2086 # the package list is words
unshare -m --propagation private setpriv --pdeathsig KILL bash -c "$INSTALL" install \
        "$R" "$CACHE" $PACKAGES >"$WORK/apt.log" 2>&1 ||
        die "apt-get install in the tree failed: $(tail -3 "$WORK/apt.log")"
rm -f "$R/usr/sbin/policy-rc.d"

echo "step 7/8: configuring the root"
# The CAs the host's administrator added (host-inputs): behind a TLS-inspecting proxy,
# HTTPS from the sandbox fails without them. Debian's own bundle is in the tree already.
# The whole directory, as update-ca-certificates reads it (*.crt at any depth), and as the
# recipe key hashes it.
HOST_CA=/usr/local/share/ca-certificates
if [ -d "$HOST_CA" ] && [ -n "$(find -L "$HOST_CA" -name '*.crt' -print -quit)" ]; then
        cp -rL --no-preserve=ownership "$HOST_CA/." "$R$HOST_CA/"
        chroot "$R" update-ca-certificates >"$WORK/ca.log" 2>&1 ||
                die "update-ca-certificates failed: $(tail -3 "$WORK/ca.log")"
fi
chroot "$R" dpkg-query -W -f '${Package} ${Version}\n' | LC_ALL=C sort >"$WORK/packages"
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/log/*.log "$R"/var/cache/debconf/*-old
echo sandbox >"$R/etc/hostname"
printf '127.0.0.1 localhost sandbox\n::1 localhost\n' >"$R/etc/hosts"
# No resolver in a sandbox: names are resolved by the host's egress proxy.
: >"$R/etc/resolv.conf"
mkdir -p "$R/workspace"
# /dev is the guest's devtmpfs, or the nodes the process backend's jail makes: none here.
find "$R/dev" -mindepth 1 -delete
# The process backend runs the agent from the tree itself.
install -m 0755 "$LG_AGENT" "$R/sbin/lg-agent"

echo "step 8/8: writing the ext4 image"
KIB=$(du -sk "$R" | cut -f1)
# Room for the filesystem's own metadata, and nothing more: it is never written.
SIZE_MIB=$((KIB * 115 / 100 / 1024 + 64))
# No journal (read-only; nothing to replay in every clone), fixed UUID and hash seed.
mke2fs -q -t ext4 -O ^has_journal -L lg-full -m 0 \
        -U 4c470000-0000-4000-8000-00000000f011 -E root_owner=0:0,hash_seed=4c470000-0000-4000-8000-00000000f011 \
        -d "$R" "$WORK/rootfs.ext4" "${SIZE_MIB}M" >"$WORK/mke2fs.log" 2>&1 ||
        die "mke2fs failed: $(tail -3 "$WORK/mke2fs.log")"
rm -rf "$OUT/rootfs"
mv "$R" "$OUT/rootfs"
mv "$WORK/rootfs.ext4" "$OUT/rootfs.ext4"
mv "$WORK/packages" "$OUT/packages"
{
        echo "debian_suite=$SUITE"
        echo "debian_mirror=$MIRROR"
        echo "packages=$PACKAGES"
        echo "package_count=$(wc -l <"$OUT/packages")"
        echo "host_cas=$(cd "$OUT/rootfs$HOST_CA" 2>/dev/null && find -L . -name '*.crt' | sort | tr '\n' ' ')"
        echo "rootfs_mib=$SIZE_MIB"
} >>"$OUT/manifest"
echo "image written to $OUT ($(du -sh "$OUT/rootfs.ext4" | cut -f1) root filesystem)"
