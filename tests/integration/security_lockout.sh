#!/usr/bin/env bash
# docs/security.md, "Repeated denials": the two lock-outs end to end through the daemon on simulated
# hardware, with small limits (max_badge_denials 3, max_reader_denials 5, denial_window_s 4):
#  - a revoked badge tapped again and again: denied badge_revoked 3 times, then too_many_attempts, on
#    any reader (the lock is the badge's);
#  - made-up UIDs at one reader: after 5 denials that reader refuses a valid member's badge with
#    too_many_attempts (no relay), still admits a keyholder, and the other reader is unaffected;
#  - the lock-out ends by itself once the window has passed: the member is granted at that reader;
#  - every step is in the daemon's log, the access log (telecentrectl log) and the queued MQTT events
#    (reason too_many_attempts, no badge UID in them).
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
setup_work security-lockout
command -v python3 >/dev/null || fail "python3 is needed"

tap() { write_fifo "$work/reader-$1.fifo" "$2"$'\n'; }
ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }
window=4

cat >"$conf" <<EOF
[site]
id = sec-lockout
timezone = Europe/Paris

[database]
path = $work/site.db

[hours]
mon = 00:00-24:00
tue = 00:00-24:00
wed = 00:00-24:00
thu = 00:00-24:00
fri = 00:00-24:00
sat = 00:00-24:00
sun = 00:00-24:00

[policy]
max_badge_denials = 3
max_reader_denials = 5
denial_window_s = $window

[door.entrance]
relay = GPIO17
unlock_ms = 200

[reader.entrance]
driver = sim
fifo = $work/reader-entrance.fifo

[reader.side]
driver = sim
fifo = $work/reader-side.fifo

[gpio]
driver = sim
fifo = $work/gpio.fifo

[mqtt]
; nobody listens there: the events stay queued in the outbox, where this test reads them
host = 127.0.0.1
port = 1
EOF

ctl init >/dev/null
ctl member add m-1 --name "Alice Martin" >/dev/null
ctl member add k-1 --name "Kim Keys" --role keyholder >/dev/null
ctl member add m-2 --name "Lost Card" >/dev/null
ctl badge add 04A1B2C3 --member m-1 >/dev/null
ctl badge add 04112233 --member k-1 >/dev/null
ctl badge add 04DEAD01 --member m-2 >/dev/null
ctl badge revoke 04DEAD01 >/dev/null
ctl resource add desk-1 --kind desk >/dev/null

"$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
wait_for "telecentred .* started: site sec-lockout, 1 door, 2 readers" 10
pulses() { count "gpio GPIO17=1"; }

# Denials at a reader are counted over the last $window s: wait, on the clock, until the newest one is
# out of the window (the lock-out is a rule about time, so time is what we wait for).
wait_window_after_last_denial() {
    local last
    last=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(
        "SELECT max(at) FROM access_log WHERE result = '"'denied'"'").fetchone()[0])' "$work/site.db")
    local deadline=$((SECONDS + window + 10))
    while (($(date +%s) <= last + window)); do
        ((SECONDS < deadline)) || fail "the clock did not pass the denial window"
        sleep 0.1
    done
}

# ---- badge lock-out: a revoked badge, tapped until it is locked out ----
for i in 1 2 3; do
    tap side 04DEAD01
    wait_for "reader=side in denied badge_revoked member=m-2" 5 "$i"
done
tap side 04DEAD01
wait_for "reader=side in denied too_many_attempts member=m-2" 5
tap entrance 04:de:ad:01
wait_for "reader=entrance in denied too_many_attempts member=m-2" 5
[[ $(ctl check 04DEAD01) == "denied: too_many_attempts" ]] || fail "check does not see the badge lock-out"
((  $(pulses) == 0 )) || fail "the relay moved during the badge lock-out"
pass "badge lock-out: revoked x3, then too_many_attempts on this reader and on the other one (also by check)"

wait_window_after_last_denial
[[ $(ctl check 04DEAD01) == "denied: badge_revoked" ]] || fail "the badge lock-out did not end after the window"

# ---- reader lock-out: made-up UIDs at the entrance ----
for i in 1 2 3 4 5; do
    tap entrance "0400000$i"
    wait_for "reader=entrance in denied unknown_badge event=" 5 "$i"
done
tap entrance 04A1B2C3
wait_for "reader=entrance in denied too_many_attempts member=m-1" 5
((  $(pulses) == 0 )) || fail "the relay moved for a member at a locked-out reader"
tap entrance 04112233
wait_for "reader=entrance in granted keyholder member=k-1" 5
wait_for "gpio GPIO17=1" 5 1
wait_for "unlocked -> locked" 5 1
tap side 04A1B2C3
wait_for "reader=side in granted [a-z_]* member=m-1" 5
wait_for "gpio GPIO17=1" 5 2
pass "reader lock-out: after 5 unknown badges the entrance refuses a member (too_many_attempts, no relay), admits a keyholder; the side reader still admits the member"

# ---- the lock-out ends after the window ----
wait_window_after_last_denial
tap entrance 04A1B2C3
wait_for "reader=entrance in granted [a-z_]* member=m-1" 5
wait_for "gpio GPIO17=1" 5 3
pass "the reader lock-out ended by itself after denial_window_s ($window s): the member is granted at the entrance"

# ---- what the access log and the queued events say ----
reasons=$(ctl --json log --limit 100 | python3 -c '
import json, sys
print(" ".join(r["reader"] + ":" + r["reason"] for r in json.load(sys.stdin)))')
want="side:badge_revoked side:badge_revoked side:badge_revoked side:too_many_attempts entrance:too_many_attempts"
want+=" entrance:unknown_badge entrance:unknown_badge entrance:unknown_badge entrance:unknown_badge entrance:unknown_badge"
want+=" entrance:too_many_attempts entrance:keyholder side:walk_in entrance:booking"
[[ $reasons == "$want" ]] || fail "telecentrectl log says: $reasons"
python3 - "$work/site.db" <<'EOF' || fail "the queued access events do not match the access log"
import json, sqlite3, sys
rows = [json.loads(p) for (p,) in sqlite3.connect(sys.argv[1]).execute(
    "SELECT payload FROM outbox WHERE kind = 'access' ORDER BY seq")]
got = [(e["reader"], e["reason"], e["member"]) for e in rows]
assert got[3] == ("side", "too_many_attempts", "m-2"), got
assert got[10] == ("entrance", "too_many_attempts", "m-1"), got
assert [r for r in got if r[1] == "unknown_badge"] == [("entrance", "unknown_badge", None)] * 5, got
text = json.dumps(rows).lower()
assert not any(u in text for u in ("04dead01", "de:ad:01", "04a1b2c3", "04112233", "0400000")), text
EOF
pass "the access log and the queued MQTT events record each denial and both lock-outs (too_many_attempts with the member, no UID)"

kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon exited non-zero at SIGTERM"
daemon_pid=
echo "security_lockout: all checks passed"
