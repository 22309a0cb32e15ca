#!/usr/bin/env bash
# docs/security.md, "Privileges": the daemon needs no privilege.
#  - the systemd unit runs it as User=telecentred with an empty capability bounding set, no new
#    privileges, UMask=0077 and a 0750 state directory (the unit's score and system calls:
#    tests/integration/systemd_unit.sh);
#  - run as nobody (setpriv: no capability, no supplementary group) on simulated hardware with a state
#    directory it owns, it starts, decides a tap, drives the relay, creates its database 0600 owned by
#    itself, and its /proc status shows no capability and no root id;
#  - started as root outside systemd it runs (scripts/demo does) but says in the log that it should not.
# Needs root to switch to nobody; exits 77 (skipped) otherwise.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
: "${TC_SOURCE_DIR:=$(cd "$(dirname "$0")/../.." && pwd)}"

# ---- the unit ----
unit=$TC_SOURCE_DIR/systemd/telecentred.service.in
for line in "User=telecentred" "CapabilityBoundingSet=" "NoNewPrivileges=yes" "UMask=0077" "StateDirectoryMode=0750"; do
    grep -qx -- "$line" "$unit" || { echo "FAIL: $unit lacks the line '$line'" >&2; exit 1; }
done
grep -q "^AmbientCapabilities=." "$unit" && { echo "FAIL: the unit grants ambient capabilities" >&2; exit 1; }
grep -qx "d /var/lib/telecentred 0750 telecentred telecentred -" "$TC_SOURCE_DIR/systemd/telecentred.tmpfiles" ||
    { echo "FAIL: tmpfiles.d does not make /var/lib/telecentred 0750 telecentred" >&2; exit 1; }
echo "ok: the unit: User=telecentred, empty CapabilityBoundingSet=, NoNewPrivileges=yes, UMask=0077, state directory 0750"

if ((EUID != 0)) || ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1; then
    echo "security_unprivileged: switching to nobody needs root and setpriv: the rest is skipped"
    exit 77
fi
setup_work security-unprivileged
chmod 711 "$work"                       # nobody may pass through, not list
run=$work/state
mkdir -m 700 "$run"
chown nobody:nogroup "$run"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all -- "$@"; }

write_conf() {   # write_conf FILE STATE_DIR
    cat >"$1" <<EOF
[site]
id = unpriv
timezone = Europe/Paris

[database]
path = $2/site.db

[hours]
mon = 00:00-24:00
tue = 00:00-24:00
wed = 00:00-24:00
thu = 00:00-24:00
fri = 00:00-24:00
sat = 00:00-24:00
sun = 00:00-24:00

[door.entrance]
relay = GPIO17
unlock_ms = 200

[reader.entrance]
driver = sim
fifo = $2/reader.fifo

[gpio]
driver = sim
fifo = $2/gpio.fifo
EOF
    chmod 644 "$1"
}
write_conf "$conf" "$run"

# ---- as nobody ----
# setpriv itself (not the function, which would run in a subshell): it execs the daemon, so $! is it.
setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all -- \
    "$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
wait_for "telecentred .* started: site unpriv" 10
status=/proc/$daemon_pid/status
grep -Eq "^Uid:\s+65534\s+65534\s+65534\s+65534$" "$status" || fail "not running as nobody: $(grep Uid: "$status")"
grep -Eq "^Gid:\s+65534\s+65534\s+65534\s+65534$" "$status" || fail "not running as nogroup: $(grep Gid: "$status")"
grep -Eq "^Groups:\s*$" "$status" || fail "supplementary groups: $(grep Groups: "$status")"
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
    grep -Eq "^$cap:\s+0+$" "$status" || fail "$cap is not empty: $(grep "$cap:" "$status")"
done
grep -q "running as root" "$log" && fail "the root warning was logged for nobody"
as_nobody "$TELECENTRECTL" -c "$conf" member add k-1 --name "Kim Keys" --role keyholder >/dev/null ||
    fail "telecentrectl as nobody failed"
as_nobody "$TELECENTRECTL" -c "$conf" badge add 04112233 --member k-1 >/dev/null
write_fifo "$run/reader.fifo" $'04112233\n'
wait_for "in granted keyholder member=k-1" 5
wait_for "gpio GPIO17=1" 5
[[ $(stat -c '%U %a' "$run/site.db") == "nobody 600" ]] || fail "the database is $(stat -c '%U %a' "$run/site.db")"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon exited non-zero at SIGTERM"
daemon_pid=
pass "as nobody with no capability and no group: started, decided a tap, drove the relay; database nobody 0600"

# ---- as root, outside systemd ----
mkdir -m 700 "$work/root-state"
write_conf "$work/root.conf" "$work/root-state"
: >"$log"
"$TELECENTRED" -c "$work/root.conf" 2>"$log" &
daemon_pid=$!
wait_for "telecentred .* started: site unpriv" 10
grep -q "warning: running as root: nothing here needs it" "$log" || fail "no warning when started as root"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon exited non-zero at SIGTERM"
daemon_pid=
pass "started as root outside systemd: it runs, with a warning in the log"

echo "security_unprivileged: all checks passed"
