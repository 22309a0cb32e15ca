#!/usr/bin/env bash
# The systemd side of an install, checked without a running systemd (there is none in CI containers):
# - `cmake --install` into a scratch root; `systemd-analyze verify` is clean on the installed unit, with
#   its Documentation= man pages looked up in that root (only ExecStart= is pointed into the root);
# - `systemd-analyze security --offline` scores it at most 2.0 (the score is printed; docs/install.md
#   records it);
# - the sysusers.d and tmpfiles.d snippets, applied to the scratch root, make the user, its groups and
#   /var/lib/telecentred;
# - the real daemon under strace, with a simulated reader and a libnfc reader on an emulated PN532 (its
#   worker process included), makes only system calls the unit's SystemCallFilter= allows and opens only
#   sockets of RestrictAddressFamilies=.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
: "${TC_BINARY_DIR:?set TC_BINARY_DIR to the build directory}"
: "${TC_SOURCE_DIR:?set TC_SOURCE_DIR to the source directory}"
setup_work systemd-unit

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles strace; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/test installs it: packages systemd, strace)"
done

root=$work/root
DESTDIR=$root cmake --install "$TC_BINARY_DIR" --prefix /usr >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install failed"; }
unit=$root/usr/lib/systemd/system/telecentred.service
[[ -f $unit ]] || fail "no unit at /usr/lib/systemd/system/telecentred.service"

# ---- the unit names the installed daemon ----
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[[ $exec_start == "/usr/sbin/telecentred -c /etc/telecentred/telecentred.conf" ]] ||
    fail "ExecStart= is '$exec_start'"
[[ -x $root/usr/sbin/telecentred ]] || fail "ExecStart's /usr/sbin/telecentred is not installed"
pass "ExecStart= names the installed daemon and configuration"

# ---- systemd-analyze verify ----
# verify checks that ExecStart's binary exists on this machine, so the copy it reads points into the
# root; everything else is the installed file as it is.
mkdir "$work/verify"
sed "s|^ExecStart=/usr/sbin/|ExecStart=$root/usr/sbin/|" "$unit" >"$work/verify/telecentred.service"
set +e
out=$(cd "$work" && MANPATH=$root/usr/share/man systemd-analyze verify "$work/verify/telecentred.service" 2>&1)
status=$?
set -e
((status == 0)) || fail "systemd-analyze verify exited $status: $out"
[[ -z $out ]] || fail "systemd-analyze verify is not clean: $out"
pass "systemd-analyze verify is clean, man pages included"

# ---- systemd-analyze security ----
security=$(cd "$work" && systemd-analyze security --offline=yes --no-pager "$work/verify/telecentred.service" 2>&1) || true
score=$(sed -n 's/.*Overall exposure level for telecentred.service: \([0-9.]*\) .*/\1/p' <<<"$security")
[[ -n $score ]] || fail "no score from systemd-analyze security: $security"
echo "systemd-analyze security: exposure $score"
(cd "$work" && systemd-analyze security --offline=yes --threshold=20 "$work/verify/telecentred.service" \
    >/dev/null 2>&1) || fail "exposure $score is above 2.0: a hardening setting was lost"
pass "systemd-analyze security exposure $score (at most 2.0)"

# ---- sysusers.d and tmpfiles.d ----
out=$(systemd-sysusers --root="$root" telecentred.conf 2>&1) || fail "systemd-sysusers failed: $out"
grep -q '^telecentred:x:[0-9]*:[0-9]*:.*:/var/lib/telecentred:/usr/sbin/nologin$' "$root/etc/passwd" ||
    fail "no telecentred system user: $(cat "$root/etc/passwd")"
for group in gpio i2c spi; do
    grep -q "^$group:x:[0-9]*:\(.*,\)\{0,1\}telecentred\(,.*\)\{0,1\}$" "$root/etc/group" ||
        fail "telecentred is not in group $group: $(cat "$root/etc/group")"
done
out=$(systemd-tmpfiles --root="$root" --create telecentred.conf 2>&1) || fail "systemd-tmpfiles failed: $out"
[[ $(stat -c %a "$root/var/lib/telecentred") == 750 ]] || fail "/var/lib/telecentred is not mode 0750"
pass "sysusers.d makes the user in gpio, i2c and spi; tmpfiles.d makes /var/lib/telecentred 0750"

# ---- the daemon's system calls and socket families against the unit's filters ----
allowed_calls() {
    # The unit's SystemCallFilter= lines: the first is an allow list, "~" lines remove from it.
    local line set name
    declare -A calls=()
    expand() {
        systemd-analyze syscall-filter --no-pager "$1" | sed '1d; /^ *#/d; s/^ *//; /^$/d' |
            while read -r name; do
                if [[ $name == @* ]]; then expand "$name"; else echo "$name"; fi
            done
    }
    while read -r line; do
        if [[ $line == '~'* ]]; then
            for set in ${line#\~}; do
                while read -r name; do unset "calls[$name]"; done < <(expand "$set")
            done
        else
            for set in $line; do
                while read -r name; do calls[$name]=1; done < <(expand "$set")
            done
        fi
    done < <(sed -n 's/^SystemCallFilter=//p' "$unit")
    printf '%s\n' "${!calls[@]}"
}
allowed_calls | sort -u >"$work/allowed"
(($(wc -l <"$work/allowed") > 100)) || fail "could not expand the unit's SystemCallFilter="

cat >"$conf" <<EOF
[site]
id = unit-test
[database]
path = $work/site.db
[door.entrance]
relay = GPIO17
contact = GPIO27
unlock_ms = 200
[reader.entrance]
driver = sim
fifo = $work/reader.fifo
[reader.pn532]
driver = libnfc
connstring = pn532_uart:$work/pn532.link
[gpio]
driver = sim
fifo = $work/gpio.fifo
[mqtt]
; nothing listens there: the link's connection attempts (AF_INET) are what is traced
host = 127.0.0.1
port = 1
EOF
# The libnfc reader on an emulated PN532 (tests/rigs/pn532_emu): its worker process forks, pins itself
# to a CPU, locks the device and polls through libnfc, all under the same filter.
PN532_EMU=${PN532_EMU:-$TC_BINARY_DIR/tests/rigs/pn532_emu}
[[ -x $PN532_EMU ]] || fail "no PN532 emulator at $PN532_EMU"
mkfifo "$work/pn532.ctl"
"$PN532_EMU" --link "$work/pn532.link" --control "$work/pn532.ctl" --events "$work/pn532.events" \
    2>"$work/pn532.err" &
other_pids+=($!)
dump_files=("$work/pn532.events" "$work/pn532.err")
wait_for " ready " 10 1 "$work/pn532.events"
exec 7>"$work/pn532.ctl"
"$TELECENTRECTL" -c "$conf" init >/dev/null
"$TELECENTRECTL" -c "$conf" member add m-1 --name "Unit Test" --role keyholder >/dev/null
"$TELECENTRECTL" -c "$conf" badge add 04A1B2C3 --member m-1 >/dev/null
# NOTIFY_SOCKET: sd_notify's AF_UNIX datagrams are traced too (nobody listens; the daemon goes on).
# LeakSanitizer cannot work under ptrace (sanitizer builds): leaks are the other tests' business.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" NOTIFY_SOCKET=$work/notify.sock strace -f -qq -o "$work/trace" "$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
wait_for "started: site unit-test" 20
wait_for "reader pn532: in service" 20
write_fifo "$work/reader.fifo" $'04A1B2C3\n'
wait_for "reader=entrance in granted keyholder" 10
wait_for "gpio GPIO17=0" 10 2
echo "tag 04A1B2C3" >&7
wait_for "reader=pn532 in granted keyholder" 10
wait_for "gpio GPIO17=0" 10 3
# Stop the daemon itself (strace's child), not strace: strace then exits with the daemon's status.
traced=$(ps -o pid= --ppid "$daemon_pid" | tr -d ' ')
[[ -n $traced ]] || fail "no daemon process under strace"
kill -TERM "$traced"
wait "$daemon_pid" || fail "the daemon under strace exited with status $?"
daemon_pid=

# strace lines: "PID name(args) = ret", "PID <... name resumed>", signals and exits.
sed -n 's/^[0-9]\+ \+\([a-z_0-9]\+\)(.*/\1/p; s/^[0-9]\+ \+<\.\.\. \([a-z_0-9]\+\) resumed>.*/\1/p' "$work/trace" |
    sort -u >"$work/used"
(($(wc -l <"$work/used") > 20)) || fail "strace recorded almost nothing"
# fchown (@chown, in ~@privileged): SQLite gives a journal it creates the database's owner, only when
# running as root (robustFchown); the service never runs as root.
exempt='^$'
(($(id -u) == 0)) && exempt='^fchown$'
denied=$(comm -23 "$work/used" "$work/allowed" | grep -v -E "$exempt" || true)
[[ -z $denied ]] || fail "system calls outside the unit's SystemCallFilter=: $(tr "\n" " " <<<"$denied")"
families=$(sed -n 's/^[0-9]\+ \+socket(\(AF_[A-Z0-9_]*\),.*/\1/p' "$work/trace" | sort -u)
[[ $families == *AF_INET* && $families == *AF_UNIX* ]] ||
    fail "the traced daemon opened no AF_INET (MQTT) or AF_UNIX (sd_notify) socket: '$families'"
allowed_families=" $(sed -n 's/^RestrictAddressFamilies=//p' "$unit" | tr '\n' ' ') "
for family in $families; do
    [[ $allowed_families == *" $family "* ]] ||
        fail "the daemon opened a socket of $family, outside RestrictAddressFamilies=$allowed_families"
done
pass "the daemon's $(wc -l <"$work/used") distinct system calls are all allowed by the unit (sockets: $(tr "\n" " " <<<"$families"))"
