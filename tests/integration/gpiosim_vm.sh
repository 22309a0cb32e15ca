#!/usr/bin/env bash
# telecentred on real libgpiod against the kernel's gpio-sim, in a qemu VM (software emulation), for
# libgpiod 1.6 (this build) and 2.x (a second build against Debian trixie's libgpiod, unpacked in the build
# tree). See docs/test-rigs.md, "gpio-sim VM", and tests/rigs/gpiosim-vm/.
#
# Everything is started from here and cached in BUILD/gpiosim-vm-cache (BUILD = the directory of
# $TELECENTRED): Debian bookworm's kernel packages, the out-of-tree gpio-sim.ko, the uncompressed kernel,
# libgpiod 2 and its build. A second run rebuilds only the initramfs (cheap) and boots. The downloads and
# the kernel (not tied to a build) can come from another build's cache: TC_GPIOSIM_DOWNLOADS=DIR (scripts/test
# points the sanitizer stage at the first stage's).
# In the sanitizer build (TC_SANITIZE=ON) both variants are built with ASan+UBSan, the guest gets the
# sanitizer runtimes (ldd lists them) and ASAN_OPTIONS/UBSAN_OPTIONS, and a report in the guest fails the
# check no_sanitizer_report.
# Exit 77 (ctest: skipped) on a host that is not x86_64.
set -euo pipefail

: "${TELECENTRED:?set TELECENTRED to the telecentred binary}"
: "${TELECENTRECTL:?set TELECENTRECTL to the telecentrectl binary}"
: "${TC_SOURCE_DIR:?set TC_SOURCE_DIR to the source tree}"

skip() { echo "SKIP: gpiosim_vm: $*"; exit 77; }
fail() { echo "FAIL: gpiosim_vm: $*" >&2; exit 1; }

arch=$(uname -m)
[ "$arch" = x86_64 ] || skip "the VM boots Debian's amd64 kernel under qemu-system-x86_64; this host is $arch"
sanitize=OFF
case "${TC_SANITIZE:-OFF}" in
    ON|on|1|TRUE|true|YES|yes) sanitize=ON ;;
esac
for tool in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio make:make apt-get:apt \
            dpkg-deb:dpkg flock:util-linux xz:xz-utils cc:gcc cmake:cmake; do
    command -v "${tool%%:*}" >/dev/null || fail "${tool%%:*} not found (package ${tool#*:}; scripts/test installs it)"
done

rigs=$TC_SOURCE_DIR/tests/rigs/gpiosim-vm
build=$(cd "$(dirname "$TELECENTRED")" && pwd)
cache=${TC_GPIOSIM_CACHE:-$build/gpiosim-vm-cache}
downloads=${TC_GPIOSIM_DOWNLOADS:-$cache}
vm_timeout=${TC_GPIOSIM_VM_TIMEOUT:-240}
mkdir -p "$cache"
t_start=$SECONDS

# ---- kernel and module (downloaded and built once) ----
bash "$rigs/build-kernel.sh" "$downloads" || fail "could not build the kernel and gpio-sim.ko"
kdir=$downloads/kernel

# ---- the guest's sampling helper: static, so it needs no library ----
probe=$cache/gpiosim-probe
if [ ! -x "$probe" ] || [ "$rigs/probe.c" -nt "$probe" ]; then
    "${CC:-cc}" -O2 -std=c17 -Wall -Wextra -Wshadow -Wformat=2 -Werror -static -o "$probe.tmp" "$rigs/probe.c" ||
        fail "building gpiosim-probe failed"
    mv "$probe.tmp" "$probe"
fi

# ---- libgpiod 2.x: Debian trixie's packages unpacked here, and a second build against them ----
gpiod2=$downloads/libgpiod2
build2=$cache/build-gpiod2
bash "$TC_SOURCE_DIR/tests/rigs/fetch-libgpiod2.sh" "$gpiod2" || fail "could not fetch libgpiod 2"
build_type=RelWithDebInfo
if [ "$sanitize" = ON ]; then
    build_type=Debug    # as scripts/test's sanitizer stage
    # The guest's options (build-initramfs.sh writes them into /etc/gpiosim-vm.env): the caller's, or
    # scripts/test's.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
cmake -S "$TC_SOURCE_DIR" -B "$build2" -DTELECENTRED_GPIOD_ROOT="$gpiod2" -DTELECENTRED_WERROR=ON \
    -DTELECENTRED_TESTS=OFF -DTELECENTRED_BENCH=OFF -DTELECENTRED_SANITIZE="$sanitize" \
    -DCMAKE_BUILD_TYPE="$build_type" >"$cache/build-gpiod2.log" 2>&1 ||
    { cat "$cache/build-gpiod2.log" >&2; fail "configuring the libgpiod 2 build failed"; }
cmake --build "$build2" --target telecentred telecentrectl -j"$(nproc 2>/dev/null || echo 2)" \
    >>"$cache/build-gpiod2.log" 2>&1 ||
    { cat "$cache/build-gpiod2.log" >&2; fail "building against libgpiod 2 failed"; }
echo "==> gpiosim_vm: ready after $((SECONDS - t_start)) s (kernel, module, libgpiod 2 build)"

# libgpiod_of BINARY: "libgpiod.so.N PATH" as the binary resolves it, or nothing
libgpiod_of() { ldd "$1" 2>/dev/null | awk '$1 ~ /^libgpiod\.so/ { print $1, $3 }'; }

# The checks every guest run must pass (tests/rigs/gpiosim-vm/init).
checks=(start_safe pulse grant_feedback deny_feedback relock held_open forced exit_button stalled_loop sigterm_safe
        no_sanitizer_report)

failed=0
# run_variant NAME TELECENTRED TELECENTRECTL WANT_SONAME
run_variant() {
    local name=$1 daemon=$2 ctl=$3 want=$4 lib
    lib=$(libgpiod_of "$daemon")
    if [[ $lib != "$want "* ]]; then
        echo "FAIL: gpiosim_vm[$name]: $daemon links '${lib:-no libgpiod}', expected $want" >&2
        failed=1
        return
    fi
    local initrd=$cache/initramfs-$name.cpio results=$cache/results-$name.txt console=$cache/console-$name.txt
    TC_GUEST_SANITIZE=$sanitize bash "$rigs/build-initramfs.sh" "$initrd" "$kdir" "$name (${lib% *})" \
        "$daemon" "$ctl" "$probe" ||
        { echo "FAIL: gpiosim_vm[$name]: building the initramfs failed" >&2; failed=1; return; }
    local t0=$SECONDS status=0
    bash "$rigs/run-vm.sh" "$kdir" "$initrd" "$results" "$console" "$vm_timeout" || status=$?
    local took=$((SECONDS - t0))
    local text=""
    [ -f "$results" ] && text=$(tr -d '\r' <"$results")
    local ok=1
    if ((status == 124)); then
        echo "FAIL: gpiosim_vm[$name]: the VM did not power off within ${vm_timeout} s (killed)" >&2
        ok=0
    elif ((status != 0)); then
        echo "FAIL: gpiosim_vm[$name]: qemu exited $status" >&2
        ok=0
    fi
    grep -E '^(BOOTED|INFO|PASS|FAIL) ' <<<"$text" | sed "s/^/[$name] /" || true
    grep -q '^DONE .* fail=0$' <<<"$text" || ok=0
    local c
    for c in "${checks[@]}"; do
        if ! grep -q "^PASS $c: " <<<"$text"; then
            grep -q "^FAIL $c: " <<<"$text" || echo "FAIL: gpiosim_vm[$name]: check $c did not run" >&2
            ok=0
        fi
    done
    if ((ok)); then
        echo "ok: gpiosim_vm[$name]: ${#checks[@]} checks passed; VM ran ${took} s"
    else
        failed=1
        echo "---- [$name] daemon log ----" >&2
        sed -n '/^LOG-BEGIN$/,/^LOG-END$/p' <<<"$text" | sed '1d;$d' >&2
        echo "---- [$name] console (last 40 lines) ----" >&2
        tr -d '\r' <"$console" 2>/dev/null | tail -n 40 >&2 || true
    fi
}

if [[ $(libgpiod_of "$TELECENTRED") == libgpiod.so.3* ]]; then
    # This build tree itself was made against libgpiod 2 (TELECENTRED_GPIOD_ROOT): its binaries are the
    # 2.x variant; the 1.6 variant is covered by the default build.
    echo "note: gpiosim_vm: this build links libgpiod 2; running the 2.x variant with it"
    run_variant gpiod2 "$TELECENTRED" "$TELECENTRECTL" libgpiod.so.3
else
    run_variant gpiod1 "$TELECENTRED" "$TELECENTRECTL" libgpiod.so.2
    run_variant gpiod2 "$build2/telecentred" "$build2/telecentrectl" libgpiod.so.3
fi

((failed == 0)) || fail "see above"
echo "gpiosim_vm: all checks passed for libgpiod 1.6 and 2.x in $((SECONDS - t_start)) s (sanitizers: $sanitize)"
