#!/usr/bin/env bash
# `cmake --install` into a DESTDIR gives exactly the expected tree (every file listed below, nothing else),
# with the right modes; the unit names the daemon under the prefix chosen at install time; a second
# install keeps an edited /etc/telecentred/telecentred.conf.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
: "${TC_BINARY_DIR:?set TC_BINARY_DIR to the build directory}"
: "${TC_SOURCE_DIR:?set TC_SOURCE_DIR to the source directory}"
setup_work install-tree

install_to() {   # install_to ROOT PREFIX
    DESTDIR=$1 cmake --install "$TC_BINARY_DIR" --prefix "$2" >"$work/install.log" 2>&1 ||
        { cat "$work/install.log" >&2; fail "cmake --install --prefix $2 failed"; }
}

expected_tree() {   # expected_tree PREFIX: every file, sorted, with its mode
    local p=${1#/} doc
    {
        echo "755 $p/bin/telecentrectl"
        echo "755 $p/sbin/telecentred"
        echo "644 $p/lib/systemd/system/telecentred.service"
        echo "644 $p/lib/sysusers.d/telecentred.conf"
        echo "644 $p/lib/tmpfiles.d/telecentred.conf"
        echo "644 $p/share/man/man1/telecentrectl.1"
        echo "644 $p/share/man/man5/telecentred.conf.5"
        echo "644 $p/share/man/man8/telecentred.8"
        echo "644 $p/share/doc/telecentred/examples/telecentred.conf"
        for doc in install wiring operations privacy configuration cli access-rules readers door-hardware; do
            echo "644 $p/share/doc/telecentred/$doc.md"
        done
        # docs/mqtt.md comes with the MQTT work; installed when it is there.
        [[ -f $TC_SOURCE_DIR/docs/mqtt.md ]] && echo "644 $p/share/doc/telecentred/mqtt.md"
        echo "644 etc/telecentred/telecentred.conf"
    } | sort
}

actual_tree() {   # actual_tree ROOT: every file and symlink under ROOT, sorted, with its mode
    (cd "$1" && find . \( -type f -o -type l \) -printf '%m %P\n' | sort)
}

# ---- prefix /usr, as the .deb ----
root=$work/usr-root
install_to "$root" /usr
diff -u <(expected_tree /usr) <(actual_tree "$root") >"$work/tree.diff" ||
    fail "the installed tree differs from the expected one (- expected, + installed):
$(cat "$work/tree.diff")"
pass "cmake --install --prefix /usr gives the expected $(actual_tree "$root" | wc -l) files"

cmp -s "$TC_SOURCE_DIR/config/telecentred.conf" "$root/etc/telecentred/telecentred.conf" ||
    fail "/etc/telecentred/telecentred.conf is not the example configuration"
"$root/usr/sbin/telecentred" -c "$root/etc/telecentred/telecentred.conf" --check-config >/dev/null ||
    fail "the installed configuration is refused by the installed daemon"
grep -qx 'ExecStart=/usr/sbin/telecentred -c /etc/telecentred/telecentred.conf' \
    "$root/usr/lib/systemd/system/telecentred.service" || fail "the unit's ExecStart= is wrong for /usr"
[[ $("$root/usr/bin/telecentrectl" --version) == *"$(sed -n 's/^project(telecentred VERSION \([0-9.]*\).*/\1/p' \
    "$TC_SOURCE_DIR/CMakeLists.txt")"* ]] || fail "the installed telecentrectl reports another version"
pass "the example configuration installed and accepted; the unit runs /usr/sbin/telecentred"

# ---- a second install keeps an edited configuration ----
sed -i 's/^capacity = .*/capacity = 7/' "$root/etc/telecentred/telecentred.conf"
edited=$(sha256sum <"$root/etc/telecentred/telecentred.conf")
install_to "$root" /usr
[[ $(sha256sum <"$root/etc/telecentred/telecentred.conf") == "$edited" ]] ||
    fail "a re-install overwrote the edited /etc/telecentred/telecentred.conf"
grep -q "Kept: .*/etc/telecentred/telecentred.conf" "$work/install.log" ||
    fail "the re-install did not say it kept the configuration"
diff -u <(expected_tree /usr) <(actual_tree "$root") >"$work/tree.diff" ||
    fail "the tree after a re-install differs: $(cat "$work/tree.diff")"
pass "a re-install keeps an edited /etc/telecentred/telecentred.conf"

# ---- another prefix: the same build, the unit follows ----
root=$work/local-root
install_to "$root" /usr/local
diff -u <(expected_tree /usr/local) <(actual_tree "$root") >"$work/tree.diff" ||
    fail "the /usr/local tree differs: $(cat "$work/tree.diff")"
grep -qx 'ExecStart=/usr/local/sbin/telecentred -c /etc/telecentred/telecentred.conf' \
    "$root/usr/local/lib/systemd/system/telecentred.service" || fail "the unit's ExecStart= is wrong for /usr/local"
pass "cmake --install --prefix /usr/local: same tree under /usr/local, the unit runs /usr/local/sbin/telecentred"
