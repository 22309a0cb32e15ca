#!/usr/bin/env bash
# build-kernel.sh CACHE: Debian bookworm's kernel for the gpio-sim VM test, plus an out-of-tree gpio-sim.ko.
#
# Debian builds its kernels without CONFIG_GPIO_SIM, so the module is built here from Debian's own packages:
# linux-image (the kernel and configfs.ko), linux-headers (-amd64 and -common), linux-kbuild and linux-source,
# all of one version: the ABI that linux-image-amd64 depends on. Only four files come out of the source
# tarball (gpio-sim.c, gpiolib.h, irq_sim.h, irq_sim.c) plus scripts/extract-vmlinux; two changes make them
# an out-of-tree module (see ../../../docs/test-rigs.md, "gpio-sim VM"):
#   - irq_sim.c (CONFIG_IRQ_SIM is off) is compiled into the module, its EXPORT_SYMBOL lines dropped;
#   - handle_simple_irq(irq_to_desc(irq_find_mapping(domain, offset))) becomes
#     generic_handle_domain_irq(domain, offset): irq_to_desc is not exported.
#
# Result, cached: CACHE/kernel-VERSION/{vmlinux,configfs.ko,gpio-sim.ko} and CACHE/kernel -> kernel-VERSION.
# The .debs stay in CACHE/debs (a rebuild of the module needs no download); unpacked trees are removed.
# Nothing is installed on the system. A second run with the result present does nothing.
set -euo pipefail

die() { echo "gpiosim-vm build-kernel: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 CACHE"
mkdir -p "$1"
CACHE=$(cd "$1" && pwd)

# Pin the ABI: the kernel linux-image-amd64 depends on now, and the version of that package.
abi_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n 1)
version=""
if [ -n "$abi_pkg" ]; then
    version=$(apt-cache policy "$abi_pkg" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
    [ "$version" = "(none)" ] && version=""
fi
if [ -z "$abi_pkg" ] || [ -z "$version" ]; then
    # No apt lists (offline, or not Debian bookworm): use a kernel built earlier if there is one.
    if [ -f "$CACHE/kernel/gpio-sim.ko" ]; then
        echo "==> gpiosim-vm: apt-cache does not name a bookworm kernel; using the cached $(readlink "$CACHE/kernel")"
        exit 0
    fi
    die "apt-cache does not name a Debian bookworm kernel (linux-image-amd64 -> linux-image-6.1.0-NN-amd64); run apt-get update"
fi
kver=${abi_pkg#linux-image-}                   # 6.1.0-NN-amd64
kcommon=${kver%-amd64}-common                  # 6.1.0-NN-common
out="$CACHE/kernel-${kver}_${version}"
if [ -f "$out/stamp" ]; then
    ln -sfn "$(basename "$out")" "$CACHE/kernel"
    exit 0
fi

# One builder at a time in a cache (two ctest runs sharing a build tree).
exec 9>"$CACHE/.build-kernel.lock"
flock 9
if [ -f "$out/stamp" ]; then
    ln -sfn "$(basename "$out")" "$CACHE/kernel"
    exit 0
fi

echo "==> gpiosim-vm: kernel $kver ($version): downloading and building gpio-sim.ko (once; cached in $CACHE)"
packages=("linux-image-$kver" "linux-headers-$kver" "linux-headers-$kcommon" "linux-kbuild-6.1" "linux-source-6.1")
debs="$CACHE/debs"
mkdir -p "$debs"
need=()
for p in "${packages[@]}"; do
    compgen -G "$debs/${p}_${version}_*.deb" >/dev/null || need+=("$p=$version")
done
if [ ${#need[@]} -gt 0 ]; then
    # apt-get download writes into the working directory; as root it warns that the sandbox user cannot
    # write there, hence the sandbox user root (only the download is affected).
    (cd "$debs" && apt-get -q -o APT::Sandbox::User=root download "${need[@]}") ||
        die "apt-get download ${need[*]} failed (is $version still on the mirror? apt-get update)"
fi
deb() { local f; f=$(compgen -G "$debs/${1}_${version}_*.deb" | head -n 1); [ -n "$f" ] || die "no .deb for $1"; echo "$f"; }

work="$CACHE/work.$$"
rm -rf "$work"
mkdir -p "$work/root" "$work/src" "$work/mod"
trap 'rm -rf "$work"' EXIT

# The image: only the compressed kernel and configfs.ko (the package holds every module).
dpkg-deb --fsys-tarfile "$(deb "linux-image-$kver")" |
    tar -x -C "$work/root" "./boot/vmlinuz-$kver" "./lib/modules/$kver/kernel/fs/configfs/configfs.ko"
# Headers and kbuild are small: unpack them whole (the -amd64 tree links into the other two).
for p in "linux-headers-$kver" "linux-headers-$kcommon" linux-kbuild-6.1; do
    dpkg -x "$(deb "$p")" "$work/root"
done
# The source: only the files the module needs, and extract-vmlinux.
dpkg-deb --fsys-tarfile "$(deb linux-source-6.1)" | tar -x -C "$work/root" ./usr/src/linux-source-6.1.tar.xz
tar -xJf "$work/root/usr/src/linux-source-6.1.tar.xz" -C "$work/src" --strip-components=1 \
    linux-source-6.1/drivers/gpio/gpio-sim.c linux-source-6.1/drivers/gpio/gpiolib.h \
    linux-source-6.1/include/linux/irq_sim.h linux-source-6.1/kernel/irq/irq_sim.c \
    linux-source-6.1/scripts/extract-vmlinux
rm -f "$work/root/usr/src/linux-source-6.1.tar.xz"

# The module: gpio-sim.c renamed so that the module can keep the name gpio-sim, irq_sim.c beside it.
cp "$work/src/drivers/gpio/gpio-sim.c" "$work/mod/gpio-sim-main.c"
cp "$work/src/drivers/gpio/gpiolib.h" "$work/src/kernel/irq/irq_sim.c" "$work/mod/"
mkdir -p "$work/mod/include/linux"
cp "$work/src/include/linux/irq_sim.h" "$work/mod/include/linux/"
sed -i -e '/^EXPORT_SYMBOL/d' \
       -e 's/^\([[:space:]]*\)irqnum = irq_find_mapping(work_ctx->domain, offset);/\1generic_handle_domain_irq(work_ctx->domain, offset);/' \
       -e '/^[[:space:]]*handle_simple_irq(irq_to_desc(irqnum));$/d' \
       -e '/^[[:space:]]*int irqnum;$/d' "$work/mod/irq_sim.c"
if ! grep -q 'generic_handle_domain_irq(work_ctx->domain, offset);' "$work/mod/irq_sim.c" ||
    grep -q 'irq_to_desc\|EXPORT_SYMBOL' "$work/mod/irq_sim.c"; then
    die "irq_sim.c of $version does not look as expected: the out-of-tree changes did not apply"
fi
cat > "$work/mod/Kbuild" <<'KBUILD'
obj-m := gpio-sim.o
gpio-sim-y := gpio-sim-main.o irq_sim.o
ccflags-y := -I$(src)/include
KBUILD
# The headers' Makefile includes the -common tree by its installed path: point it at the unpacked one.
hdr="$work/root/usr/src/linux-headers-$kver"
sed -i "s|^include /usr/src/|include $work/root/usr/src/|" "$hdr/Makefile"
grep -q "^include $work/root/usr/src/linux-headers-$kcommon/Makefile" "$hdr/Makefile" ||
    die "unexpected $hdr/Makefile: $(cat "$hdr/Makefile")"
make -s -C "$hdr" M="$work/mod" modules >"$work/make.log" 2>&1 ||
    { cat "$work/make.log" >&2; die "building gpio-sim.ko failed"; }
[ -f "$work/mod/gpio-sim.ko" ] || die "no gpio-sim.ko after make"

# The uncompressed kernel boots through PVH, twice as fast as the bzImage under emulation.
mkdir -p "$out.tmp"
bash "$work/src/scripts/extract-vmlinux" "$work/root/boot/vmlinuz-$kver" >"$out.tmp/vmlinux" ||
    die "extract-vmlinux failed"
cp "$work/mod/gpio-sim.ko" "$work/root/lib/modules/$kver/kernel/fs/configfs/configfs.ko" "$out.tmp/"
echo "$kver $version" >"$out.tmp/stamp"
rm -rf "$out"
mv "$out.tmp" "$out"
ln -sfn "$(basename "$out")" "$CACHE/kernel"
echo "==> gpiosim-vm: built $out"
