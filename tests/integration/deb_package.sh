#!/usr/bin/env bash
# The .deb from `cpack -G DEB`, installed, upgraded twice, removed and purged by the real dpkg in a scratch
# root (`dpkg --root`, maintainer scripts run outside it with DPKG_ROOT set: --force-script-chrootless;
# dependencies are not installed there: --force-depends). Checks:
# - install: every file of the package lands; postinst makes the user (in gpio, i2c, spi) and
#   /var/lib/telecentred (0750, owned by it); nothing is enabled;
# - upgrade to a higher version: an edited conffile is kept without a question, the database and its
#   data are kept; upgrade to a version whose example configuration changed (--force-confold, as
#   unattended upgrades do): the site's configuration is kept, the new example is left beside it;
# - remove: the programs go, configuration and database stay; purge: nothing of the package is left but
#   the user and group (which Debian keeps).
# The upgrades are the package rebuilt with dpkg-deb at a higher version (and, for the second, another
# example configuration): the same build, so no second compile.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
: "${TC_BINARY_DIR:?set TC_BINARY_DIR to the build directory}"
: "${TC_SOURCE_DIR:?set TC_SOURCE_DIR to the source directory}"
setup_work deb-package

for tool in cpack dpkg dpkg-deb dpkg-shlibdeps systemd-sysusers systemd-tmpfiles; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/test installs it: packages dpkg-dev, systemd)"
done
((EUID == 0)) || { echo "deb_package.sh: dpkg --root needs root to give files their owners: skipped"; exit 77; }

# ---- build ----
(cd "$TC_BINARY_DIR" && cpack -G DEB -B "$work/pkg") >"$work/cpack.log" 2>&1 ||
    { cat "$work/cpack.log" >&2; fail "cpack -G DEB failed"; }
debs=("$work"/pkg/telecentred_*.deb)
[[ -f ${debs[0]} && ${#debs[@]} == 1 ]] || fail "cpack made no single telecentred_*.deb: ${debs[*]}"
deb1=${debs[0]}
v1=$(dpkg-deb -f "$deb1" Version)
depends=$(dpkg-deb -f "$deb1" Depends)
for dep in systemd tzdata libc6 libsqlite3-0 libinih1; do
    [[ ", $depends," == *", $dep"[\ ,]* ]] || fail "Depends lacks $dep: $depends"
done
[[ $(dpkg-deb -f "$deb1" Architecture) == "$(dpkg --print-architecture)" ]] || fail "wrong Architecture"
[[ $(dpkg-deb --ctrl-tarfile "$deb1" | tar -xO ./conffiles) == /etc/telecentred/telecentred.conf ]] ||
    fail "conffiles does not list /etc/telecentred/telecentred.conf"
pass "cpack made $(basename "$deb1"): Depends: $depends"

repack() {   # repack VERSION OUT [CONFIG]: the package at another version, optionally another example config
    local dir=$work/repack-$1
    dpkg-deb -R "$deb1" "$dir"
    sed -i "s/^Version: .*/Version: $1/" "$dir/DEBIAN/control"
    if [[ -n ${3:-} ]]; then
        cp "$3" "$dir/etc/telecentred/telecentred.conf"
        (cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort | xargs md5sum) \
            >"$dir/DEBIAN/md5sums"
    fi
    dpkg-deb --root-owner-group -b "$dir" "$2" >/dev/null
}
repack "$v1+upgrade1" "$work/v2.deb"
sed 's/^; telecentred.conf: the documented example configuration\.$/&\n; (changed in a later version)/' \
    "$TC_SOURCE_DIR/config/telecentred.conf" >"$work/example-v3.conf"
repack "$v1+upgrade2" "$work/v3.deb" "$work/example-v3.conf"

# ---- a scratch root with an empty dpkg database ----
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/log"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
rdpkg() {
    # stdin from /dev/null: a question (a conffile prompt) fails instead of waiting.
    dpkg --root="$root" --force-script-chrootless --force-depends "$@" </dev/null >>"$work/dpkg.log" 2>&1 ||
        fail "dpkg $* failed: $(tail -n 20 "$work/dpkg.log")"
}
status() { dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status} ${Version}' telecentred 2>/dev/null || true; }
conf=$root/etc/telecentred/telecentred.conf
db=$root/var/lib/telecentred/telecentred.db
rctl() { "$root/usr/bin/telecentrectl" -c "$conf" -d "$db" "$@"; }

# ---- install ----
rdpkg -i "$deb1"
[[ $(status) == "install ok installed $v1" ]] || fail "status after install: $(status)"
while read -r path; do
    [[ -e $root/$path || -L $root/$path ]] || fail "$path of the package is not in the root"
done < <(dpkg-deb --fsys-tarfile "$deb1" | tar -t | sed 's|^\./||; /\/$/d')
uid=$(awk -F: '$1 == "telecentred" { print $3 }' "$root/etc/passwd")
[[ -n $uid ]] || fail "postinst made no telecentred user"
for group in gpio i2c spi; do
    grep -q "^$group:.*[:,]telecentred\(,\|$\)" "$root/etc/group" || fail "telecentred is not in group $group"
done
[[ $(stat -c '%a %u' "$root/var/lib/telecentred") == "750 $uid" ]] ||
    fail "/var/lib/telecentred is $(stat -c '%a %u' "$root/var/lib/telecentred"), want 750 $uid"
enabled=$(find "$root/etc/systemd" -name 'telecentred*' 2>/dev/null || true)
[[ -z $enabled ]] || fail "the package enabled the service: $enabled"
pass "install: $(dpkg-deb --fsys-tarfile "$deb1" | tar -t | grep -vc '/$') files, user uid $uid, state directory, nothing enabled"

# A site: an edited configuration and a database with a member.
sed -i 's/^capacity = .*/capacity = 7/' "$conf"
edited=$(sha256sum <"$conf")
rctl init >/dev/null
rctl member add m-1 --name "Upgrade Test" >/dev/null
rctl member list | grep -q m-1 || fail "no member in the test database"

# ---- upgrade, same example configuration ----
rdpkg -i "$work/v2.deb"
[[ $(status) == "install ok installed $v1+upgrade1" ]] || fail "status after the upgrade: $(status)"
[[ $(sha256sum <"$conf") == "$edited" ]] || fail "the upgrade changed the edited configuration"
rctl member list | grep -q m-1 || fail "the upgrade lost the database's member"
pass "upgrade to $v1+upgrade1: edited configuration kept without a question, database kept"

# ---- upgrade, the package's example configuration changed ----
rdpkg --force-confold -i "$work/v3.deb"
[[ $(status) == "install ok installed $v1+upgrade2" ]] || fail "status after the second upgrade: $(status)"
[[ $(sha256sum <"$conf") == "$edited" ]] || fail "the second upgrade replaced the edited configuration"
cmp -s "$conf.dpkg-dist" "$work/example-v3.conf" || fail "the new example is not left as $conf.dpkg-dist"
rctl member list | grep -q m-1 || fail "the second upgrade lost the database's member"
pass "upgrade to $v1+upgrade2 (new example configuration): the site's kept, the new one in .dpkg-dist"

# ---- remove, then purge ----
rdpkg -r telecentred
[[ $(status) == "deinstall ok config-files $v1+upgrade2" ]] || fail "status after remove: $(status)"
for path in usr/sbin/telecentred usr/bin/telecentrectl usr/lib/systemd/system/telecentred.service; do
    [[ ! -e $root/$path ]] || fail "remove left $path"
done
[[ $(sha256sum <"$conf") == "$edited" ]] || fail "remove did not keep the configuration"
[[ -f $db ]] || fail "remove did not keep the database"
pass "remove: programs gone, configuration and database kept"

rdpkg -P telecentred
[[ -z $(status) || $(status) == "purge ok not-installed"* ]] || fail "status after purge: $(status)"
left=$(cd "$root" && find . -mindepth 1 \
    ! -path './var' ! -path './var/lib' ! -path './var/lib/dpkg' ! -path './var/lib/dpkg/*' \
    ! -path './var/log' ! -path './var/log/dpkg.log' \
    ! -path './etc' ! -regex './etc/\(passwd\|group\|shadow\|gshadow\)-?' ! -path './etc/.pwd.lock' | sort)
[[ -z $left ]] || fail "purge left: $(tr "\n" " " <<<"$left")"
grep -q '^telecentred:' "$root/etc/passwd" || fail "purge removed the system user (Debian keeps them)"
pass "purge: nothing of the package left (the telecentred user stays)"
