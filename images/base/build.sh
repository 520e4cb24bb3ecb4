#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Recipe of the "base" guest image: Debian's cloud kernel, and an initramfs
# with busybox-static, the virtio modules and lg-agent, which is also /init
# (as PID 1 it mounts, loads the modules and powers off on exit: src/agent/sysinit.c).
#
#   build.sh OUTDIR
#
# Environment (set by `luminaguard image build`):
#   LG_AGENT            the static lg-agent binary (required)
#   LG_CACHE            directory where the kernel .deb is kept between builds
#   LG_KERNEL_PACKAGE   kernel package to use instead of the current
#                       linux-image-cloud-amd64 dependency
#   LG_MODULES_EXTRA    more modules (paths under kernel/), loaded after the base set
#   LG_CMDLINE_EXTRA    more kernel arguments
#
# Writes OUTDIR/vmlinux, initramfs.cpio.gz, rootfs/ (the initramfs's tree, for
# the process backend), cmdline, manifest. Progress lines
# "step N/M: what" go to stdout, errors to stderr; exit status 1 on failure.
# Never installs anything on the host.
set -euo pipefail

STEPS=5
# The engine adds tsc_early_khz under TCG only (it would be wrong under KVM).
# Boot trims, each measured with `initcall_debug ignore_loglevel` under TCG:
#   reboot=t                 a panicking guest triple-faults, so QEMU (-no-reboot)
#                            exits; the default ACPI/keyboard reboot methods hang
#                            in a guest restored from a template
#   cryptomgr.notests        skips the crypto self-tests (~230 ms under TCG)
#   initcall_blacklist=...   the KDF108 self-test (~120 ms) and kprobe trace
#                            events setup (~80 ms): neither is used in a sandbox
CMDLINE="console=ttyS0 quiet panic=-1 reboot=t rdinit=/init cryptomgr.notests initcall_blacklist=crypto_kdf108_init,init_kprobe_trace"
# Dependency order (each module's "depends=" before the module). Only what
# the agent channel needs: every insmod costs ~15 ms of cold boot under TCG.
MODULES="drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_mmio.ko
drivers/char/virtio_console.ko ${LG_MODULES_EXTRA:-}"
# An image that extends this one (images/full) adds its modules and kernel arguments.
CMDLINE="$CMDLINE${LG_CMDLINE_EXTRA:+ $LG_CMDLINE_EXTRA}"

die() {
        echo "build.sh: error: $*" >&2
        exit 1
}
step() {
        echo "step $1/$STEPS: $2"
}
need() { # need TOOL PACKAGE
        command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: apt-get install $2"
}

[ $# -eq 1 ] || die "usage: build.sh OUTDIR"
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
[ -n "${LG_AGENT:-}" ] || die "LG_AGENT is not set (path of the static lg-agent binary)"
[ -r "$LG_AGENT" ] || die "lg-agent binary $LG_AGENT is not readable (run 'make')"

step 1 "checking tools"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "busybox-static is not installed: apt-get install busybox-static"
# A dynamically linked busybox would need a libc in the initramfs.
if command -v file >/dev/null 2>&1; then
        file -L "$BUSYBOX" | grep -q 'statically linked' ||
                die "$BUSYBOX is not static: apt-get install busybox-static"
fi
need apt-get apt
need apt-cache apt
need dpkg-deb dpkg
need cpio cpio
need gzip gzip
need sha256sum coreutils
need unlz4 lz4

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lg-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

step 2 "resolving kernel package"
PKG=${LG_KERNEL_PACKAGE:-}
if [ -z "$PKG" ]; then
        PKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
                sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -1)
        [ -n "$PKG" ] || die "cannot resolve linux-image-cloud-amd64 (is 'apt-get update' done and Debian main in the sources?)"
fi
SHOW=$(apt-cache show --no-all-versions "$PKG" 2>/dev/null) ||
        die "package $PKG is unknown to apt (run 'apt-get update')"
DEBVER=$(printf '%s\n' "$SHOW" | sed -n 's/^Version: //p' | head -1)
SHA=$(printf '%s\n' "$SHOW" | sed -n 's/^SHA256: //p' | head -1)
[ -n "$DEBVER" ] || die "apt-cache show $PKG gave no Version"
KVER=${PKG#linux-image-}

step 3 "fetching kernel $PKG $DEBVER"
CACHE=${LG_CACHE:-$WORK/cache}
mkdir -p "$CACHE"
DEB="$CACHE/${PKG}_${DEBVER//:/%3a}_amd64.deb"
# A cached .deb is only trusted when it still matches apt's checksum.
if [ -f "$DEB" ] && [ -n "$SHA" ] && ! echo "$SHA  $DEB" | sha256sum --quiet -c - 2>/dev/null; then
        rm -f "$DEB"
fi
if [ -f "$DEB" ]; then
        echo "  using cached $DEB"
else
        DL="$WORK/dl"
        mkdir -p "$DL"
        APTOPT=()
        # As root, apt drops to _apt for downloads, which cannot write our temp dir.
        [ "$(id -u)" -eq 0 ] && APTOPT=(-o APT::Sandbox::User=root)
        (cd "$DL" && apt-get -q "${APTOPT[@]}" download "$PKG=$DEBVER") >"$WORK/apt.log" 2>&1 ||
                die "apt-get download $PKG failed: $(tail -3 "$WORK/apt.log")"
        mv "$DL"/*.deb "$DEB.part"
        mv "$DEB.part" "$DEB"
fi

step 4 "assembling initramfs"
X="$WORK/x"
mkdir -p "$X"
MODDIR="./lib/modules/$KVER/kernel"
MEMBERS=("./boot/vmlinuz-$KVER")
for m in $MODULES; do MEMBERS+=("$MODDIR/$m"); done
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$X" "${MEMBERS[@]}" ||
        die "$DEB does not contain the kernel or a module ($MODULES)"

R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,lib/modules,mnt}
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
cp "$BUSYBOX" "$R/bin/busybox"
# Applet links made here instead of `busybox --install` at boot: saves a
# process and ~270 symlink() calls on every cold boot.
"$BUSYBOX" --list-full | while read -r a; do
        case "$a" in
        bin/busybox | linuxrc | "") continue ;;
        esac
        [ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"
done
install -m 0755 "$LG_AGENT" "$R/sbin/lg-agent"
ln -s sbin/lg-agent "$R/init"
: >"$R/lib/modules/order"
for m in $MODULES; do
        cp "$X/$MODDIR/$m" "$R/lib/modules/"
        basename "$m" >>"$R/lib/modules/order"
done
cat >"$R/etc/fstab" <<'EOF'
devtmpfs /dev devtmpfs mode=0755,nosuid 0 0
sysfs /sys sysfs nosuid,nodev,noexec 0 0
tmpfs /tmp tmpfs mode=1777,nosuid,nodev 0 0
tmpfs /run tmpfs mode=0755,nosuid,nodev 0 0
EOF
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$R/etc/group"
echo sandbox >"$R/etc/hostname"
printf '127.0.0.1 localhost sandbox\n::1 localhost\n' >"$R/etc/hosts"

# cpio newc record for a device node, written by hand so that building needs
# no root for mknod: the kernel must find /dev/console in the initramfs to
# give init its stdin/stdout/stderr.
newc() { # newc NAME MODE(octal) RDEV_MAJOR RDEV_MINOR
        local name=$1 namesz=$((${#1} + 1)) hdr
        hdr=$(printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
                1 $((8#$2)) 0 0 1 0 0 0 0 "$3" "$4" "$namesz" 0)
        printf '%s%s\0' "$hdr" "$name"
        # header (110) + name + NUL, padded to a multiple of 4
        head -c $(((4 - (110 + namesz) % 4) % 4)) /dev/zero
}
{
        (cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
        newc dev/console 020600 5 1
        newc TRAILER!!! 0 0 0
} | gzip -6 -n >"$WORK/initramfs.cpio.gz"

step 5 "writing image"
# The uncompressed ELF kernel boots through its PVH entry point: no
# decompression in the guest, which under TCG costs ~0.3 s per cold boot.
# Debian's bzImage is LZ4: find the legacy-format magic and unpack from there.
BZ="$X/boot/vmlinuz-$KVER"
for off in $(grep -obUaP '\x02\x21\x4c\x18' "$BZ" | cut -d: -f1); do
        tail -c +$((off + 1)) "$BZ" | unlz4 -c >"$WORK/vmlinux" 2>/dev/null || true
        head -c 4 "$WORK/vmlinux" | grep -q $'^\x7fELF' && break
done
head -c 4 "$WORK/vmlinux" 2>/dev/null | grep -q $'^\x7fELF' ||
        die "could not unpack the ELF kernel from $BZ (not an LZ4 bzImage?)"
mv "$WORK/vmlinux" "$OUT/vmlinux"
mv "$WORK/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz"
# The same tree unpacked: the process backend's read-only root (no device nodes,
# no kernel modules: it shares the host's kernel).
rm -rf "$R/lib/modules"/*.ko
: >"$R/lib/modules/order"
mv "$R" "$OUT/rootfs"
echo "$CMDLINE" >"$OUT/cmdline"
{
        echo "kernel_package=$PKG"
        echo "kernel_version=$KVER"
        echo "kernel_deb_version=$DEBVER"
        echo "busybox=$("$BUSYBOX" --help 2>&1 | sed -n '1s/ multi-call.*//p')"
        echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$OUT/manifest"
echo "image written to $OUT ($(du -sh "$OUT" | cut -f1))"
