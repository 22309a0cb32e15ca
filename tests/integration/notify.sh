#!/usr/bin/env bash
# systemd notification end to end, without systemd: a python3 listener on its own AF_UNIX datagram socket
# stands in for NOTIFY_SOCKET and writes down every datagram the real daemon (simulated reader and GPIO)
# sends, with its arrival time. Checked: READY=1 with a STATUS= a person can read; WATCHDOG=1 at half
# WATCHDOG_USEC while the loop is healthy; no WATCHDOG=1 at all while the loop is stalled on purpose
# (test hook: TELECENTRED_TEST_HOOKS=1 and SIGUSR2), and the pings again after; STATUS= following the
# MQTT broker (a real mosquitto) going away and coming back; RELOADING=1 then READY=1 around a SIGHUP;
# STOPPING=1 on SIGTERM. Also: without the hook variable SIGUSR2 keeps its default action, and a
# WATCHDOG_PID that is not the daemon's means no pings. Waits are bounded polls on files.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
. "$(dirname "$0")/../lib/mqtt-test.sh"
setup_work notify

notify_sock=$work/notify.sock
notes=$work/notify.log
dump_files+=("$notes")
watchdog_usec=2000000       # 2 s: a ping every second
stall_s=4

# ---- the listener ----
cat >"$work/listener.py" <<'EOF'
import os, socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path + ".tmp")
os.rename(path + ".tmp", path)     # the socket appears only once it is bound
with open(out, "a", buffering=1) as f:
    while True:
        data = s.recv(4096)
        # one line per datagram: arrival time (monotonic), then its assignments joined by " | "
        f.write("%.6f %s\n" % (time.monotonic(), data.decode(errors="replace").strip().replace("\n", " | ")))
EOF
python3 "$work/listener.py" "$notify_sock" "$notes" &
other_pids+=($!)
deadline=$((SECONDS + 10))
until [[ -S $notify_sock ]]; do
    ((SECONDS < deadline)) || fail "the notify listener did not start"
    sleep 0.02
done
: >>"$notes"

mqtt_broker_start

write_conf() {
    cat >"$conf" <<EOF
[site]
id = notify-site
timezone = Europe/Paris

[database]
path = $work/site.db

[door.entrance]
relay = GPIO17
unlock_ms = ${1:-300}

[reader.entrance]
driver = sim
fifo = $work/reader-entrance.fifo
door = entrance

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
}
write_conf
"$TELECENTRECTL" -c "$conf" init >/dev/null

# notes_count PATTERN: datagrams matching PATTERN so far.
notes_count() { count "$1" "$notes"; }

# ---- start: as systemd would, with WATCHDOG_PID the daemon's own pid (sh execs it) ----
NOTIFY_SOCKET=$notify_sock WATCHDOG_USEC=$watchdog_usec TELECENTRED_TEST_HOOKS=1 \
    TELECENTRED_TEST_STALL_S=$stall_s \
    sh -c 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" -c "$1"' "$TELECENTRED" "$conf" 2>"$log" &
daemon_pid=$!

wait_for "READY=1" 10 1 "$notes"
ready=$(grep -m1 "READY=1" "$notes")
[[ $ready == *"STATUS=serving: 1 door, 2 readers, broker "* ]] || fail "READY=1 without the expected STATUS: $ready"
grep -q "telecentred .* started" "$log" || fail "READY=1 before the start was logged"
grep -q "watchdog: pinging systemd every 1000 ms" "$log" || fail "the watchdog interval was not taken from WATCHDOG_USEC"
pass "READY=1 with STATUS: ${ready#* }"

wait_for "STATUS=serving: 1 door, 2 readers, broker connected, outbox 0" 10 1 "$notes"
pass "STATUS follows the broker: connected, outbox 0"

# ---- watchdog pings while healthy ----
n=$(notes_count "WATCHDOG=1")
wait_for "WATCHDOG=1" 10 $((n + 4)) "$notes"
pass "periodic WATCHDOG=1 ($(notes_count "WATCHDOG=1") so far)"

# ---- a stalled loop stops pinging ----
statuses=$(notes_count "STATUS=serving:")
kill -USR2 "$daemon_pid"
wait_for "STATUS=test hook: event loop stalled for $stall_s s" 10 1 "$notes"
wait_for "test hook: the event loop runs again" $((stall_s + 10))
wait_for "STATUS=serving:" 10 $((statuses + 1)) "$notes"
n=$(notes_count "WATCHDOG=1")
wait_for "WATCHDOG=1" 10 $((n + 3)) "$notes"
# Datagrams from one sender arrive in order: none between the two marks; and the gap between the last
# ping before and the first after is the stall's length, more than systemd's interval.
awk -v usec="$watchdog_usec" -v stall="$stall_s" '
    / STATUS=test hook: event loop stalled/ { inside = 1; before = last; next }
    inside && / WATCHDOG=1/ && !after { after = $1; if (!resumed) { print "a WATCHDOG=1 while stalled"; bad = 1 } }
    inside && / STATUS=serving:/ { resumed = 1 }
    / WATCHDOG=1/ { last = $1 }
    END {
        if (!before || !after) { print "no pings around the stall"; exit 1 }
        gap = after - before
        printf "gap %.2f s\n", gap
        if (gap * 1e6 < usec || gap < stall - 0.5) { print "the pings did not stop for the stall"; exit 1 }
        exit bad
    }' "$notes" >"$work/stall.txt" || fail "stall check: $(cat "$work/stall.txt")"
pass "no WATCHDOG=1 while the loop stalled ($(tail -n 1 "$work/stall.txt")), pings again after"

# ---- the broker goes away and comes back ----
connected=$(notes_count "STATUS=serving: 1 door, 2 readers, broker connected")
mqtt_broker_stop
wait_for "STATUS=serving: 1 door, 2 readers, broker unreachable" 20 1 "$notes"
mqtt_broker_start
wait_for "STATUS=serving: 1 door, 2 readers, broker connected" 30 $((connected + 1)) "$notes"
pass "STATUS follows the broker: unreachable, then connected again"

# ---- reload ----
write_conf 400
n=$(notes_count "READY=1")
kill -HUP "$daemon_pid"
wait_for "reloaded: door entrance changed" 10
wait_for "READY=1" 10 $((n + 1)) "$notes"
awk '/RELOADING=1/ { r = NR } /READY=1/ { y = NR } END { exit !(r && y > r) }' "$notes" ||
    fail "no RELOADING=1 followed by READY=1"
pass "RELOADING=1 then READY=1 around a reload"

# ---- stop ----
kill -TERM "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=
((status == 0)) || fail "the daemon exited $status on SIGTERM"
wait_for "STOPPING=1" 5 1 "$notes"
pings=$(notes_count "WATCHDOG=1")
pass "STOPPING=1 on SIGTERM, clean exit"

# ---- without the hook variable SIGUSR2 is not ours; a WATCHDOG_PID of another process means no pings ----
: >"$log"
NOTIFY_SOCKET=$notify_sock WATCHDOG_USEC=$watchdog_usec WATCHDOG_PID=1 "$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
n=$(notes_count "READY=1")
wait_for "READY=1" 10 $((n + 1)) "$notes"
grep -q "watchdog: pinging" "$log" && fail "pinging although WATCHDOG_PID names another process"
grep -q "test hooks on" "$log" && fail "test hooks on without TELECENTRED_TEST_HOOKS"
kill -USR2 "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=
((status == 128 + 12)) || fail "SIGUSR2 without the hook variable: exit status $status, expected death by SIGUSR2"
(($(notes_count "WATCHDOG=1") == pings)) || fail "WATCHDOG=1 from a daemon whose WATCHDOG_PID is another process"
pass "without TELECENTRED_TEST_HOOKS=1 SIGUSR2 keeps its default action; no watchdog for another WATCHDOG_PID"
