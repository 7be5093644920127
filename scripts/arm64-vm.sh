#!/usr/bin/env bash
# Runs one shell command as root in a freshly booted arm64 Linux VM (qemu-system-aarch64, TCG):
#
#   scripts/arm64-vm.sh [--add FILE]... [--get DIR] -- 'COMMAND'
#
# Each FILE is copied to /add/<its name> in the VM; with --get, the files COMMAND leaves in the
# VM's /get come back into the host's DIR (a gzipped tar, framed like the output).
# dist/goroscope-aarch64 is on the VM's PATH as `goroscope` (built by scripts/build-static.sh
# when missing, or GOROSCOPE_AARCH64=FILE). The VM boots a Debian arm64 kernel straight into an
# initramfs made for this call (busybox, the files, an /init that runs COMMAND with busybox sh
# in / and powers off), so nothing persists between calls. COMMAND's stdout and stderr are
# printed on this script's stdout and stderr (each whole, after COMMAND ends), and the script
# exits with COMMAND's exit status; 124 when the VM did not finish within ARM64_VM_TIMEOUT
# seconds (default 900), 125 when it ended without reporting one.
#
# The kernel (linux-image-arm64), busybox (busybox-static:arm64) and glibc's dynamic loader and
# libc.so.6 (libc6:arm64, for PIE and cgo programs) are unpacked from Debian's packages into
# CACHE_DIR/arm64-vm once (apt-get download: needs the arm64 architecture in dpkg's
# list, see below); qemu-system-aarch64 comes from the Debian package qemu-system-arm. As root the
# script adds the architecture and installs qemu when missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib.sh
source "$root/scripts/lib.sh"
vm_cache="$CACHE_DIR/arm64-vm"
timeout_s="${ARM64_VM_TIMEOUT:-900}"

die() {
    echo "arm64-vm.sh: $*" >&2
    exit 1
}

adds=()
get=""
while [ $# -gt 0 ]; do
    case "$1" in
        --add)
            [ $# -ge 2 ] || die "--add needs a file"
            [ -f "$2" ] || die "no such file: $2"
            adds+=("$2")
            shift 2
            ;;
        --get)
            [ $# -ge 2 ] || die "--get needs a directory"
            [ -d "$2" ] || die "no such directory: $2"
            get="$2"
            shift 2
            ;;
        --)
            shift
            break
            ;;
        *) die "usage: arm64-vm.sh [--add FILE]... [--get DIR] -- 'COMMAND'" ;;
    esac
done
[ $# -eq 1 ] || die "usage: arm64-vm.sh [--add FILE]... [--get DIR] -- 'COMMAND'"
command="$1"

# Host tools: qemu-system-aarch64 and cpio from Debian, installed as root when missing.
need_pkgs=()
command -v qemu-system-aarch64 >/dev/null || need_pkgs+=(qemu-system-arm)
command -v cpio >/dev/null || need_pkgs+=(cpio)
arm64_listed=1
dpkg --print-foreign-architectures | grep -qx arm64 || arm64_listed=0
if [ ${#need_pkgs[@]} -gt 0 ] || { [ "$arm64_listed" = 0 ] && [ ! -f "$vm_cache/vmlinuz" ]; }; then
    [ "$(id -u)" = 0 ] || die "needs the Debian packages ${need_pkgs[*]:-} and the arm64 architecture" \
        "(dpkg --add-architecture arm64; apt-get update); run as root to set them up"
    [ "$arm64_listed" = 1 ] || dpkg --add-architecture arm64
    apt-get update -q >&2
    if [ ${#need_pkgs[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >&2
    fi
fi

# The kernel, busybox and glibc, unpacked from Debian's arm64 packages once.
if [ ! -f "$vm_cache/vmlinuz" ] || [ ! -x "$vm_cache/busybox" ] || [ ! -f "$vm_cache/libc.so.6" ]; then
    mkdir -p "$vm_cache"
    work="$(mktemp -d "$vm_cache/fetch.XXXXXX")"
    kernel_pkg="$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
    [ -n "$kernel_pkg" ] || die "apt-cache knows no linux-image-arm64:arm64 (apt-get update?)"
    echo "arm64-vm.sh: fetching $kernel_pkg, busybox-static:arm64 and libc6:arm64 into $vm_cache" >&2
    (cd "$work" && apt-get download -q "$kernel_pkg" busybox-static:arm64 libc6:arm64 >&2)
    for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
    vmlinuz="$(find "$work/x/boot" -name 'vmlinuz-*' | head -n 1)"
    [ -n "$vmlinuz" ] || die "no vmlinuz in $kernel_pkg"
    cp "$vmlinuz" "$vm_cache/vmlinuz.tmp" && mv "$vm_cache/vmlinuz.tmp" "$vm_cache/vmlinuz"
    cp "$work/x/bin/busybox" "$vm_cache/busybox.tmp" && mv "$vm_cache/busybox.tmp" "$vm_cache/busybox"
    for lib in ld-linux-aarch64.so.1 libc.so.6; do
        cp -L "$work/x/lib/aarch64-linux-gnu/$lib" "$vm_cache/$lib.tmp" && mv "$vm_cache/$lib.tmp" "$vm_cache/$lib"
    done
    basename "$kernel_pkg" > "$vm_cache/kernel-package"
    rm -rf "$work"
fi

goroscope="${GOROSCOPE_AARCH64:-$root/dist/goroscope-aarch64}"
if [ ! -x "$goroscope" ]; then
    [ -z "${GOROSCOPE_AARCH64:-}" ] || die "GOROSCOPE_AARCH64 is not an executable: $goroscope"
    ONLY=aarch64 "$root/scripts/build-static.sh" >&2
fi

run="$(mktemp -d "${TMPDIR:-/tmp}/goroscope-arm64-vm.XXXXXX")"
trap 'rm -rf "$run"' EXIT
initrd="$run/root"
mkdir -p "$initrd"/{bin,sbin,proc,sys,dev,tmp,add,get,root,lib/aarch64-linux-gnu}
cp "$vm_cache/busybox" "$initrd/bin/busybox"
cp "$vm_cache/ld-linux-aarch64.so.1" "$vm_cache/libc.so.6" "$initrd/lib/aarch64-linux-gnu/"
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$initrd/lib/ld-linux-aarch64.so.1"
cp "$goroscope" "$initrd/bin/goroscope"
for f in ${adds[@]+"${adds[@]}"}; do
    cp "$f" "$initrd/add/$(basename "$f")"
done
printf '%s\n' "$command" > "$initrd/command.sh"
# The results go out base64-encoded between marker lines, so the console's line endings and any
# kernel message cannot be mistaken for them.
cat > "$initrd/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs get /get
ip link set lo up
cd /
sh /command.sh </dev/null >/tmp/stdout 2>/tmp/stderr
status=$?
echo "@@ARM64-VM STDOUT@@"
base64 /tmp/stdout
echo "@@ARM64-VM STDERR@@"
base64 /tmp/stderr
echo "@@ARM64-VM GET@@"
tar -czf - -C /get . | base64
echo "@@ARM64-VM STATUS $status@@"
poweroff -f
EOF
chmod +x "$initrd/init" "$initrd/bin/busybox" "$initrd/bin/goroscope"
(cd "$initrd" && find . | cpio -o -H newc --quiet) > "$run/initrd.cpio"

set +e
timeout "$timeout_s" qemu-system-aarch64 -machine virt -cpu max,pauth-impdef=on -smp 2 -m 1024 \
    -nographic -no-reboot -kernel "$vm_cache/vmlinuz" -initrd "$run/initrd.cpio" \
    -append "console=ttyAMA0 rdinit=/init quiet loglevel=1 panic=-1" </dev/null >"$run/console" 2>&1
qemu_status=$?
set -e
tr -d '\r' <"$run/console" >"$run/console.txt"
if [ "$qemu_status" = 124 ]; then
    echo "arm64-vm.sh: the VM did not finish within $timeout_s s; console's end:" >&2
    tail -n 20 "$run/console.txt" >&2
    exit 124
fi
status="$(sed -n 's/^@@ARM64-VM STATUS \([0-9]*\)@@$/\1/p' "$run/console.txt" | tail -n 1)"
if [ -z "$status" ]; then
    echo "arm64-vm.sh: the VM ended (qemu status $qemu_status) without the command's status; console's end:" >&2
    tail -n 20 "$run/console.txt" >&2
    exit 125
fi
sed -n '/^@@ARM64-VM STDOUT@@$/,/^@@ARM64-VM STDERR@@$/p' "$run/console.txt" | sed '1d;$d' | base64 -d
sed -n '/^@@ARM64-VM STDERR@@$/,/^@@ARM64-VM GET@@$/p' "$run/console.txt" | sed '1d;$d' | base64 -d >&2
if [ -n "$get" ]; then
    sed -n '/^@@ARM64-VM GET@@$/,/^@@ARM64-VM STATUS /p' "$run/console.txt" | sed '1d;$d' | base64 -d |
        tar -xzf - -C "$get" || die "the files of /get did not come back whole"
fi
exit "$status"
