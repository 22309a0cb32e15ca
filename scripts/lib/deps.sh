# Installs the Debian / Raspberry Pi OS packages a step needs, only those missing.
# Sourced by scripts/demo and scripts/test.

TC_BUILD_PACKAGES="build-essential cmake pkg-config libsqlite3-dev libinih-dev libjansson-dev tzdata libnfc-dev libgpiod-dev libsystemd-dev libmosquitto-dev"
TC_BENCH_PACKAGES="bc"
TC_TEST_PACKAGES="libcmocka-dev python3 sqlite3 libnfc-bin mosquitto mosquitto-clients openssl"
# The gpio-sim VM test, on x86_64 hosts only (it skips elsewhere): qemu, the initramfs, and the out-of-tree
# gpio-sim.ko (Debian's prebuilt objtool needs libelf1).
if [ "$(uname -m)" = x86_64 ]; then
    TC_TEST_PACKAGES="$TC_TEST_PACKAGES qemu-system-x86 busybox-static cpio xz-utils libelf1"
fi
# The unit, install and .deb tests: systemd-analyze, systemd-sysusers, systemd-tmpfiles, strace, and
# dpkg-shlibdeps for CPack's Depends.
TC_TEST_PACKAGES="$TC_TEST_PACKAGES systemd strace dpkg-dev"
# The valgrind stage of scripts/test (the integration tests under memcheck, tests/lib/valgrind-exec.sh).
TC_TEST_PACKAGES="$TC_TEST_PACKAGES valgrind"
# scripts/fuzz and the fuzz stage of scripts/test: clang and its runtime (libFuzzer, ASan, UBSan).
TC_FUZZ_PACKAGES="clang libclang-rt-dev"
# scripts/cross-build (arm64): Debian's cross toolchain, the :arm64 libraries (libnfc6 only: see there),
# qemu-user to run the unit tests.
TC_CROSS_PACKAGES="crossbuild-essential-arm64 qemu-user-static file dpkg-dev libsqlite3-dev:arm64
    libinih-dev:arm64 libjansson-dev:arm64 libgpiod-dev:arm64 libmosquitto-dev:arm64 libsystemd-dev:arm64
    libcmocka-dev:arm64 libnfc6:arm64"

tc_missing_packages() {
    local pkg missing=()
    for pkg in "$@"; do
        # One line per installed architecture (libfoo-dev and libfoo-dev:arm64 side by side).
        if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -qx 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    echo "${missing[@]:-}"
}

# tc_ensure_packages PKG...: installs what is missing with apt-get (as root, or through sudo).
tc_ensure_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "note: not a Debian-based system; make sure these are installed: $*" >&2
        return 0
    fi
    local missing
    missing=$(tc_missing_packages "$@")
    [ -z "$missing" ] && return 0
    echo "==> installing missing packages: $missing"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "error: these packages are missing and I am not root: $missing" >&2
            echo "       run: apt-get install $missing" >&2
            return 1
        fi
    fi
    # shellcheck disable=SC2086
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing ||
        { $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive \
              apt-get install -y -q --no-install-recommends $missing; }
}

tc_jobs() {
    nproc 2>/dev/null || echo 2
}
