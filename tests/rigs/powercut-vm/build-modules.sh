#!/usr/bin/env bash
# build-modules.sh DOWNLOADS OUT: the kernel modules the power-cut VM needs to mount an ext4 file system on a
# virtio disk, taken from the Debian linux-image .deb that ../gpiosim-vm/build-kernel.sh cached in
# DOWNLOADS/debs (the kernel it boots: DOWNLOADS/kernel/stamp names the version). Debian builds virtio,
# virtio_blk, ext4 and their helpers as modules; the guest has no modprobe and no modules.dep, so the
# dependencies (modinfo's "depends") are resolved here and OUT/order lists the modules in load order.
# crc32c_generic is added by hand: ext4 and jbd2 ask the crypto API for "crc32c" at mount time
# (metadata_csum), which is not a symbol dependency.
# Result: OUT/*.ko and OUT/order. A second run with OUT/stamp present does nothing.
set -euo pipefail

die() { echo "powercut-vm build-modules: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 DOWNLOADS OUT"
downloads=$1 out=$2
read -r kver version <"$downloads/kernel/stamp" || die "no $downloads/kernel/stamp (build-kernel.sh)"
[ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$kver $version" ] && exit 0
deb=$(compgen -G "$downloads/debs/linux-image-${kver}_${version}_*.deb" | head -n 1) ||
    die "no linux-image-${kver}_${version} .deb in $downloads/debs"
command -v modinfo >/dev/null || die "modinfo not found (package kmod)"

work=$(mktemp -d "${TMPDIR:-/tmp}/powercut-modules.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -t >"$work/list"
# path_of NAME: the module's path in the package (names use - and _ interchangeably)
path_of() {
    local re=${1//[-_]/[-_]}
    grep -E "^\./lib/modules/$kver/kernel/.*/$re\.ko$" "$work/list" | head -n 1
}
order=()
declare -A seen=()
# add NAME: its dependencies first, then itself
add() {
    local name=${1//-/_} p deps d
    [ -n "${seen[$name]:-}" ] && return 0
    seen[$name]=1
    p=$(path_of "$1")
    [ -n "$p" ] || die "module $1 is not in $deb"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" "$p"
    deps=$(modinfo -F depends "$work/$p")
    for d in ${deps//,/ }; do add "$d"; done
    cp "$work/$p" "$work/$(basename "$p")"
    order+=("$(basename "$p" .ko)")
}
for m in crc32c_generic virtio_pci virtio_blk ext4; do add "$m"; done

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
for m in "${order[@]}"; do cp "$work/$m.ko" "$out.tmp/"; done
printf '%s\n' "${order[@]}" >"$out.tmp/order"
echo "$kver $version" >"$out.tmp/stamp"
rm -rf "$out"
mv "$out.tmp" "$out"
