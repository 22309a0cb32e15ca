#!/usr/bin/env bash
# Retention ([privacy] log_retention_days) in the daemon: access-log rows and ended presence older than
# the period are purged at start (and daily), in bounded steps from the event loop, with one log line
# giving the counts; recent rows and presence still running stay. A reload that shortens the period
# purges again at once. Old rows are seeded with sqlite3 (more than one purge step's worth).
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
setup_work retention

command -v sqlite3 >/dev/null || fail "sqlite3 is not installed (Debian package sqlite3)"
db=$work/site.db
sql() { sqlite3 -batch "$db" "$@"; }

write_conf() {
    cat >"$conf" <<EOF
[site]
id = retention-site
timezone = Europe/Paris

[database]
path = $db

[door.entrance]
relay = GPIO17
unlock_ms = 200

[reader.entrance]
driver = sim
fifo = $work/reader-entrance.fifo
door = entrance

[gpio]
driver = sim
fifo = $work/gpio.fifo

[privacy]
log_retention_days = $1
EOF
}
write_conf 30

ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }
ctl init >/dev/null
for m in m-1 m-2 m-3 m-4; do ctl member add "$m" --name "Member $m" >/dev/null; done

now=$(date +%s)
day=86400
old_rows=2500      # more than STORE_PURGE_BATCH (1000): several steps
sql <<EOF
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $old_rows)
INSERT INTO access_log(at, door, reader, direction, result, reason, member_id)
    SELECT $now - 40 * $day - i, 'entrance', 'entrance', 'in', 'granted', 'booking', 'm-1' FROM n;
INSERT INTO access_log(at, door, reader, direction, result, reason, member_id) VALUES
    ($now - 10 * $day, 'entrance', 'entrance', 'in', 'granted', 'booking', 'm-2'),
    ($now - 10 * $day, 'entrance', 'entrance', 'out', 'granted', 'check_out', 'm-2'),
    ($now - 3600, 'entrance', 'entrance', 'in', 'denied', 'unknown_badge', '');
INSERT INTO presence(member_id, booking_id, since, expected_end) VALUES
    ('m-1', 0, $now - 41 * $day, $now - 40 * $day),
    ('m-2', 0, $now - 36 * $day, $now - 35 * $day),
    ('m-3', 0, $now - 9 * $day, $now - 8 * $day),
    ('m-4', 0, $now - 3600, $now + 3600);
EOF
(($(sql "SELECT count(*) FROM access_log") == old_rows + 3)) || fail "seeding the access log failed"

"$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
wait_for "telecentred .* started" 10
wait_for "retention: purged" 20
grep -q "retention: purged $old_rows access-log rows and 2 presence rows older than 30 days" "$log" ||
    fail "unexpected counts: $(grep 'retention:' "$log")"
(($(sql "SELECT count(*) FROM access_log") == 3)) || fail "access-log rows left: $(sql "SELECT count(*) FROM access_log")"
(($(sql "SELECT count(*) FROM access_log WHERE at < $now - 30 * $day") == 0)) || fail "old access-log rows left"
[[ $(sql "SELECT group_concat(member_id, ',') FROM (SELECT member_id FROM presence ORDER BY member_id)") == m-3,m-4 ]] ||
    fail "presence left: $(sql "SELECT member_id FROM presence")"
pass "at start: $old_rows old access-log rows and 2 ended presences purged, recent rows kept"

# The daemon still decides taps (the purge ran in steps from the loop, not in one long lock).
write_fifo "$work/reader-entrance.fifo" "DEADBEEF"$'\n'
wait_for "reader=entrance in denied unknown_badge" 5
pass "taps decided after the purge"

# ---- a shorter period through a reload: purged again at once ----
write_conf 7
n=$(count "retention: purged")
kill -HUP "$daemon_pid"
wait_for "reloaded: log_retention_days 30 -> 7" 10
wait_for "retention: purged" 10 $((n + 1))
grep -q "retention: purged 2 access-log rows and 1 presence row older than 7 days" "$log" ||
    fail "unexpected counts after the reload: $(grep 'retention:' "$log" | tail -n 1)"
(($(sql "SELECT count(*) FROM access_log") == 2)) || fail "access-log rows left: $(sql "SELECT count(*) FROM access_log")"
[[ $(sql "SELECT member_id FROM presence") == m-4 ]] || fail "presence left: $(sql "SELECT member_id FROM presence")"
pass "a reload to log_retention_days = 7 purges the rows older than that at once"

kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon exited $? on SIGTERM"
daemon_pid=
