#!/usr/bin/env bash
# build-initramfs.sh OUT KERNELDIR VARIANT BINARY...: the gpio-sim VM's initramfs (an uncompressed newc
# cpio: nothing to decompress under emulation).
#
# Holds busybox (static), KERNELDIR's configfs.ko and gpio-sim.ko (from build-kernel.sh), the guest's /init
# (beside this script), /etc/gpiosim-vm.env (VARIANT=..., for the report; SANITIZE=ON|OFF from
# TC_GUEST_SANITIZE, and ASAN_OPTIONS / UBSAN_OPTIONS when set here), Europe/Paris from tzdata, the
# given BINARYs in /bin and every library ldd lists for them plus the dynamic loader, each at the path ldd
# resolved: a library found through an RPATH (libgpiod 2 unpacked in the build tree) lands where the RPATH
# points, so the guest needs no LD_LIBRARY_PATH. A sanitizer build's runtimes (libasan, libubsan and what
# they need) are among the libraries ldd lists.
set -euo pipefail

die() { echo "gpiosim-vm build-initramfs: $*" >&2; exit 1; }
[ $# -ge 4 ] || die "usage: $0 OUT KERNELDIR VARIANT BINARY..."
out=$1 kdir=$2 variant=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)

busybox=$(command -v busybox) || die "busybox not found (package busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static (package busybox-static)"
for f in configfs.ko gpio-sim.ko; do [ -f "$kdir/$f" ] || die "no $kdir/$f (build-kernel.sh)"; done
zone=/usr/share/zoneinfo/Europe/Paris
[ -f "$zone" ] || die "no $zone (package tzdata)"

root=$(mktemp -d "${TMPDIR:-/tmp}/gpiosim-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,lib/modules,usr/share/zoneinfo/Europe}
cp "$busybox" "$root/bin/busybox"
cp "$kdir/configfs.ko" "$kdir/gpio-sim.ko" "$root/lib/modules/"
cp "$here/init" "$root/init"
chmod 755 "$root/init"
cp -L "$zone" "$root/usr/share/zoneinfo/Europe/Paris"
{
    printf "VARIANT='%s'\n" "$variant"
    printf "SANITIZE='%s'\n" "${TC_GUEST_SANITIZE:-OFF}"
    [ -z "${ASAN_OPTIONS:-}" ] || printf "export ASAN_OPTIONS='%s'\n" "$ASAN_OPTIONS"
    [ -z "${UBSAN_OPTIONS:-}" ] || printf "export UBSAN_OPTIONS='%s'\n" "$UBSAN_OPTIONS"
} >"$root/etc/gpiosim-vm.env"

for bin in "$@"; do
    [ -x "$bin" ] || die "$bin is not an executable"
    cp "$bin" "$root/bin/"
    # "name => /path (addr)" and the loader's "/path (addr)"; a static binary lists nothing.
    if libs=$(ldd "$bin" 2>/dev/null); then
        while read -r lib; do
            [ -e "$root$lib" ] && continue
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libs")
        grep -q 'not found' <<<"$libs" && die "$bin: a library is not found: $(grep 'not found' <<<"$libs")"
    fi
done

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner 0:0 --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
