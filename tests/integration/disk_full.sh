#!/usr/bin/env bash
# The database on a full filesystem: a 2 MiB tmpfs mounted in a private mount namespace (unshare -m: the
# mount disappears with the test; needs root, else the test is skipped, exit 77), filled by a filler
# file while the daemon runs (simulated readers and GPIO, a real mosquitto on loopback). Checked:
#   - doors are still decided: a keyholder's tap pulses the relay, an unknown badge is denied, the exit
#     button pulses the relay;
#   - the fault is reported: a log line with the database path and "No space left on device", the
#     systemd STATUS= line, and P/S/health ("database": "error: ...", "unrecorded": N);
#   - no crash and no busy loop (the daemon's CPU time over a few seconds of the fault stays small: under
#     2 s, times TC_TIMEOUT_SCALE under valgrind);
#   - nothing committed is lost: integrity_check ok, the rows and the outbox events from before the fill
#     are still there (the outbox ones are delivered once the broker is back);
#   - recovery by itself once space is freed (no tap needed: the retry timer): the decisions taken
#     meanwhile (kept in memory) are written in order as access-log rows with their events, delivered;
#     new taps are recorded again; health back to "ok", 0 unrecorded;
#   - a start on an already full disk: the daemon starts (exclusive mode: no room for "-shm"), decides
#     doors, reports the fault, and writes its backlog once space is freed.
# docs/reliability.md ("Crashes, power cuts and a full disk") describes the behaviour.
set -euo pipefail

if [[ ${TC_DISK_FULL_NS:-} != 1 ]]; then
    if [[ $(id -u) != 0 ]] || ! unshare -m --propagation private true 2>/dev/null; then
        echo "skipped: needs root and mount namespaces (unshare -m) for its small tmpfs"
        exit 77
    fi
    TC_DISK_FULL_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi

. "$(dirname "$0")/../lib/daemon-test.sh"
. "$(dirname "$0")/../lib/mqtt-test.sh"
setup_work disk-full

mnt=$work/db
mkdir -m 0700 "$mnt"
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$mnt"
cleanup_disk_full() {
    local pid
    for pid in "$daemon_pid" "${other_pids[@]}"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    umount -l "$mnt" 2>/dev/null || true
    cleanup_work
}
trap cleanup_disk_full EXIT

site=df-site
P=telecentre/$site
db=$mnt/site.db
mqtt_persistent=1       # the subscriber's session survives the broker's restart below
mqtt_broker_start

cat >"$conf" <<EOF
[site]
id = $site
name = Disk full site
timezone = UTC

[database]
path = $db

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
rex = GPIO22
unlock_ms = 150

[reader.entrance]
driver = sim
fifo = $work/reader-entrance.fifo
door = entrance
direction = in

[reader.exit]
driver = sim
fifo = $work/reader-exit.fifo
door = entrance
direction = out

[gpio]
driver = sim
fifo = $work/gpio.fifo

[mqtt]
host = 127.0.0.1
port = $mqtt_port
keepalive_s = 5
EOF

ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }
ctl init >/dev/null
ctl member add k-1 --name "Keyholder One" --role keyholder >/dev/null
ctl badge add 04B00001 --member k-1 >/dev/null
ctl member add k-2 --name "Keyholder Two" --role keyholder >/dev/null
ctl badge add 04B00002 --member k-2 >/dev/null

tap() { write_fifo "$work/reader-$1.fifo" "$2"$'\n'; }
press_exit_button() { write_fifo "$work/gpio.fifo" $'GPIO22 1\nGPIO22 0\n'; }
relay_pulses() { count "gpio GPIO17=1"; }
# relay_idle: until the relay's last change is "off", so that the next grant is a new pulse (a grant
# during a pulse only extends it, printing nothing).
relay_idle() {
    local deadline=$((SECONDS + $(tc_scaled 5)))
    until grep 'gpio GPIO17=' "$log" | tail -n 1 | grep -q '=0$'; do
        ((SECONDS < deadline)) || fail "the relay stayed on"
        sleep 0.02
    done
}

# systemd's notify socket, as notify.sh does: one line per datagram.
notify_sock=$work/notify.sock
notes=$work/notify.log
dump_files+=("$notes")
cat >"$work/listener.py" <<'EOF'
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path + ".tmp")
os.rename(path + ".tmp", path)
with open(out, "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode(errors="replace").strip().replace("\n", " | ") + "\n")
EOF
python3 "$work/listener.py" "$notify_sock" "$notes" &
other_pids+=($!)
deadline=$((SECONDS + $(tc_scaled 10)))
until [[ -S $notify_sock ]]; do
    ((SECONDS < deadline)) || fail "the notify listener did not start"
    sleep 0.02
done
: >>"$notes"

start_daemon() {
    NOTIFY_SOCKET=$notify_sock "$TELECENTRED" -c "$conf" 2>>"$log" &
    daemon_pid=$!
}
stop_daemon() {
    kill -TERM "$daemon_pid"
    local status=0
    wait "$daemon_pid" || status=$?
    daemon_pid=
    ((status == 0)) || fail "the daemon exited $status on SIGTERM"
}

# Read-only looks at the database (the daemon may be running: WAL lets both in).
sql() { python3 - "$db" "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
for row in db.execute(sys.argv[2]):
    print("|".join(str(v) for v in row))
EOF
}
fill_disk() {
    # dd stops at ENOSPC (its failure is the point); the filler leaves not one block free.
    dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null || true
    sync -f "$mnt" 2>/dev/null || true
    local avail
    avail=$(df --output=avail -B1 "$mnt" | tail -n 1 | tr -d ' ')
    ((avail == 0)) || fail "the filesystem is not full: $avail bytes available"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$daemon_pid/stat"; }
health_field() {   # the last health payload's FIELD
    mqtt_last_payload "$sub" "$P/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
# wait_health PYTHON_EXPR [TIMEOUT]: until a health payload h satisfies the expression.
wait_health() {
    local expr=$1 timeout
    timeout=$(tc_scaled "${2:-20}")
    local deadline=$((SECONDS + timeout))
    until mqtt_payloads "$sub" "$P/health" | python3 -c '
import json, sys
ok = any(eval(sys.argv[1], {"h": json.loads(l)}) for l in sys.stdin if l.strip())
sys.exit(0 if ok else 1)' "$expr"; do
        ((SECONDS < deadline)) || fail "no health payload with $expr within ${timeout}s"
        sleep 0.1
    done
}

mqtt_sub all -t "$P/#" -q 1 -c
sub=$mqtt_sub_file

# ---- before: taps recorded and delivered; then 5 more with the broker down (they wait in the outbox) ----
start_daemon
wait_for "started: site $site" 10
mqtt_wait_msg "$sub" " $P/status online\$" 15
for i in 1 2 3; do
    tap entrance 04B00001
    wait_for "access seq=" 5 "$i"
done
mqtt_wait_topic "$sub" "$P/access" 10 3
mqtt_broker_stop
for i in 4 5 6 7 8; do
    tap exit 04B00002
    wait_for "access seq=" 5 "$i"
done
rows_before=$(sql "SELECT count(*) FROM access_log")
outbox_before=$(sql "SELECT group_concat(seq) FROM (SELECT seq FROM outbox ORDER BY seq)")
((rows_before == 8)) || fail "$rows_before access-log rows before the fill, expected 8"
[[ $outbox_before == "4,5,6,7,8" ]] || fail "outbox before the fill: '$outbox_before', expected 4..8"
pass "before the fill: 8 rows, events 1-3 delivered, 4-8 waiting in the outbox (broker down)"

# ---- the disk fills up ----
fill_disk
relay_idle
pulses=$(relay_pulses)
tap entrance 04B00001
wait_for "NOT RECORDED yet" 10 1
wait_for "gpio GPIO17=1" 5 $((pulses + 1))
grep -q "error: database $db: No space left on device" "$log" ||
    fail "no log line naming the database and 'No space left on device'"
pass "disk full: a keyholder's tap still pulses the relay; logged: $(grep -m1 "error: database $db: No space" "$log")"

tap entrance DEADBEEF
wait_for "NOT RECORDED yet" 10 2
grep "NOT RECORDED yet" "$log" | tail -n 1 | grep -q "denied unknown_badge" || fail "the unknown badge was not denied"
expect_count "gpio GPIO17=1" $((pulses + 1))
relay_idle
pulses=$(relay_pulses)
press_exit_button
wait_for "gpio GPIO17=1" 5 $((pulses + 1))
relay_idle
pulses=$(relay_pulses)
tap exit 04B00002
wait_for "NOT RECORDED yet" 10 3
wait_for "gpio GPIO17=1" 5 $((pulses + 1))
unrecorded=3
pass "disk full: unknown badge denied, the exit button and an exit tap pulse the relay"

wait_for "STATUS=.*DATABASE NOT WRITABLE: No space left on device, 3 decisions unrecorded" 10 1 "$notes"
pass "status: $(grep -o 'STATUS=[^|]*NOT WRITABLE[^|]*' "$notes" | tail -n 1)"

# The broker comes back while the disk is still full: health says so; the waiting events go out.
mqtt_broker_start
wait_health '"No space left on device" in h["database"] and h["database"].startswith("error: ") and h["unrecorded"] == 3' 30
mqtt_wait_topic "$sub" "$P/access" 30 8
pass "health while full: $(mqtt_last_payload "$sub" "$P/health" | python3 -c 'import json,sys; h=json.load(sys.stdin); print(json.dumps({k: h[k] for k in ("database", "unrecorded")}))')"

# Nothing committed is lost, and the daemon neither died nor spins.
[[ $(sql "PRAGMA integrity_check") == ok ]] || fail "integrity_check while full: $(sql 'PRAGMA integrity_check')"
(($(sql "SELECT count(*) FROM access_log") == rows_before)) || fail "access-log rows changed while full"
t0=$(cpu_ticks)
ticks_per_s=$(getconf CLK_TCK)
for i in 1 2 3 4 5 6 7 8 9 10; do           # taps spread over ~3 s: the loop must idle in between
    tap entrance 04B00002
    wait_for "NOT RECORDED yet" 10 $((unrecorded + i))
    sleep 0.3
done
unrecorded=$((unrecorded + 10))
kill -0 "$daemon_pid" || fail "the daemon died"
used=$(($(cpu_ticks) - t0))
((used < 2 * ticks_per_s * tc_timeout_scale)) || fail "the daemon used $used CPU ticks (${ticks_per_s}/s) over ~3 s of a full disk: spinning?"
pass "while full: integrity ok, $rows_before rows kept, events 4-8 delivered, $unrecorded decisions in memory, $used CPU ticks over ~3 s"

# ---- space is freed: recovery by itself (the retry timer, no tap) ----
rm -f "$mnt/filler"
wait_for "database $db: writable again; $unrecorded decisions taken meanwhile written" 20
rows=$(sql "SELECT count(*) FROM access_log")
((rows == rows_before + unrecorded)) || fail "$rows access-log rows after recovery, expected $((rows_before + unrecorded))"
sql "SELECT reader || ' ' || result || ' ' || reason FROM access_log WHERE seq > $rows_before ORDER BY seq" >"$work/late.txt"
python3 - "$work/late.txt" <<'EOF' || fail "the decisions written late: $(tr '\n' ';' <"$work/late.txt")"
import sys
rows = open(sys.argv[1]).read().split("\n")[:-1]
want = ["entrance granted keyholder", "entrance denied unknown_badge", "exit granted check_out"] + \
       ["entrance granted keyholder"] * 10
assert rows == want, rows
EOF
wait_health 'h["database"] == "ok" and h["unrecorded"] == 0' 20
mqtt_wait_topic "$sub" "$P/access" 30 $((8 + unrecorded))
tap entrance 04B00001
wait_for "access seq=$((rows_before + unrecorded + 1)) " 10
[[ $(sql "PRAGMA integrity_check") == ok ]] || fail "integrity_check after recovery"
python3 - "$sub" "$P/access" <<'EOF' || fail "events after recovery"
import json, sys
seqs = sorted({json.loads(l.split(" ", 4)[4])["seq"] for l in open(sys.argv[1]) if l.split(" ", 4)[3] == sys.argv[2]})
assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 21, seqs
EOF
deadline=$((SECONDS + $(tc_scaled 10)))
until grep 'STATUS=' "$notes" | tail -n 1 | grep -q 'STATUS=serving: .*broker connected' &&
    ! grep 'STATUS=' "$notes" | tail -n 1 | grep -q 'NOT WRITABLE'; do
    ((SECONDS < deadline)) || fail "the status still reports the fault: $(grep 'STATUS=' "$notes" | tail -n 1)"
    sleep 0.05
done
pass "space freed: recovered by itself; the $unrecorded decisions written in order with their events (seq 1..$((rows_before + unrecorded + 1)) without a gap); new taps recorded; health ok"

# ---- a start on an already full disk ----
rows_before=$(sql "SELECT count(*) FROM access_log")
stop_daemon             # the last connection: SQLite removes "-wal" and "-shm" (nothing reads it after)
[[ ! -e $db-shm ]] || fail "$db-shm is still there after a clean stop"
fill_disk
start_daemon
wait_for "started: site $site" 10 2
wait_for "opened in exclusive mode" 1
grep -q "error: database $db: No space left on device: no room for its shared-memory file" "$log" ||
    fail "the start on a full disk did not say so"
relay_idle
pulses=$(relay_pulses)
n=$(count "NOT RECORDED yet")
tap entrance 04B00002
wait_for "NOT RECORDED yet" 10 $((n + 1))
wait_for "gpio GPIO17=1" 5 $((pulses + 1))
relay_idle
press_exit_button
wait_for "gpio GPIO17=1" 5 $((pulses + 2))
wait_for "STATUS=.*DATABASE NOT WRITABLE: No space left on device, 1 decision unrecorded" 10 1 "$notes"
pass "started on a full disk: doors decided (a tap and the exit button pulse the relay), fault reported"
rm -f "$mnt/filler"
wait_for "writable again; 1 decision taken meanwhile written" 20 1
stop_daemon
[[ $(sql "PRAGMA integrity_check") == ok ]] || fail "integrity_check after the full start"
(($(sql "SELECT count(*) FROM access_log") == rows_before + 1)) || fail "the decision of the full start was not written"
pass "space freed after the full start: its decision written; integrity ok after a clean stop"
echo "disk_full: all checks passed"
