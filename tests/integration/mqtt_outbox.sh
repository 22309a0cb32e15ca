#!/usr/bin/env bash
# The MQTT event outbox end to end, with a real mosquitto on loopback and a real subscriber to '#':
# the fields of P/S/access events and that no badge UID and no member's name appears in any payload;
# 200 taps while the broker is down, all delivered in order once it is back (seq +1 each, the same
# decisions in the same order as the access log), also across a daemon restart (SIGTERM, and SIGKILL)
# while the broker is still down; `telecentrectl outbox` while waiting and after; and the bound
# (outbox_max): the oldest dropped and counted in health. docs/mqtt.md is the contract.
#
# The subscriber keeps a persistent session (-c, QoS 1) on a broker that saves it at a clean stop, so
# it misses nothing published while it reconnects after a broker restart.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
. "$(dirname "$0")/../lib/mqtt-test.sh"
setup_work mqtt-outbox

site=ob-site
P=telecentre/$site
mqtt_persistent=1
mqtt_broker_start

ctl() {
    "$TELECENTRECTL" -c "$conf" "$@"
}

write_conf() {
    local outbox_max=$1
    cat >"$conf" <<EOF
[site]
id = $site
name = Outbox test site
timezone = Europe/Paris
capacity = 100

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

[door.entrance]
relay = GPIO17
contact = GPIO27
unlock_ms = 200

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
outbox_max = $outbox_max
EOF
}
write_conf 100000

# ---- database: names and UIDs that must never be published ----
ctl init >/dev/null
local_time() { TZ=Europe/Paris date -d "$1" '+%Y-%m-%d %H:%M'; }
ctl member add m-1 --name "Zephyrine Quillbottom" >/dev/null
ctl badge add 04:A1:B2:C3 --member m-1 >/dev/null
ctl member add m-2 --name "Chloé Visible" --visible >/dev/null      # opted in: "Chloé V." in occupancy only
ctl badge add 04C10E02 --member m-2 >/dev/null
ctl resource add desk-01 --kind desk >/dev/null
ctl resource add desk-02 --kind desk >/dev/null
ctl book --member m-1 --resource desk-01 --from "$(local_time '-5 min')" --to "$(local_time '+3 hours')" >/dev/null
ctl book --member m-2 --resource desk-02 --from "$(local_time '-5 min')" --to "$(local_time '+3 hours')" >/dev/null
names=("Zephyrine Quillbottom" "Zephyrine" "Quillbottom" "Chloé Visible")
uids=(04A1B2C3 04C10E02 DEADBEEF)
for i in 0 1 2 3 4 5 6 7 8 9; do
    names+=("Keyholdername$i" "Surname$i")
    uids+=("04B0000$i")
    ctl member add "k-$i" --name "Keyholdername$i Surname$i" --role keyholder >/dev/null
    ctl badge add "04B0000$i" --member "k-$i" >/dev/null
done

tap() { write_fifo "$work/reader-$1.fifo" "$2"$'\n'; }

start_daemon() {
    "$TELECENTRED" -c "$conf" 2>>"$log" &
    daemon_pid=$!
}

stop_daemon() {
    local sig=$1
    kill -"$sig" "$daemon_pid"
    set +e
    wait "$daemon_pid" 2>/dev/null      # (bash would report a SIGKILL on stderr)
    local status=$?
    set -e
    daemon_pid=
    if [[ $sig == TERM ]]; then
        ((status == 0)) || fail "daemon exited $status on SIGTERM with the broker down, expected 0"
    fi
}

# Everything the broker carries, whatever the topic, for the whole test.
mqtt_sub all -t '#' -q 1 -c
all=$mqtt_sub_file

start_daemon
wait_for "started: site $site" 10
mqtt_wait_msg "$all" " $P/status online\$" 15
mqtt_wait_subscribed "telecentred-$site" "$P/sync" 10
pass "daemon connected: $P/status online"

outbox_json() { ctl --json outbox; }
outbox_field() { outbox_json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# wait_outbox_depth N [TIMEOUT_S]: PUBACKs delete rows once per loop wake; poll with a bound.
wait_outbox_depth() {
    local want=$1 timeout=${2:-30} depth
    local deadline=$((SECONDS + $(tc_scaled "$timeout")))
    while :; do
        depth=$(outbox_field depth) || fail "telecentrectl --json outbox failed"
        [[ $depth == "$want" ]] && return 0
        ((SECONDS < deadline)) || fail "outbox depth $depth after ${timeout}s, expected $want"
        sleep 0.1
    done
}

# ---- event fields ----
access_n=$(count "access seq=")
for t in entrance:04:a1:b2:c3 entrance:deadbeef exit:04A1B2C3; do    # one at a time: two FIFOs
    tap "${t%%:*}" "${t#*:}"
    access_n=$((access_n + 1))
    wait_for "access seq=" 5 "$access_n"
done
mqtt_wait_topic "$all" "$P/access" 10 3
mqtt_payloads "$all" "$P/access" >"$work/fields.json"
python3 - "$work/fields.json" <<'PY' || fail "access event fields: $(cat "$work/fields.json")"
import json, re, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert len(ev) == 3, ev
keys = {"seq", "at", "door", "reader", "direction", "result", "reason", "member", "booking", "by"}
for e in ev:
    missing = keys - e.keys()
    assert not missing, f"missing {missing} in {e}"
    assert isinstance(e["seq"], int) and e["seq"] > 0, e
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["at"]), e
    assert e["door"] == "entrance" and e["by"] is None, e
assert [e["seq"] for e in ev] == list(range(ev[0]["seq"], ev[0]["seq"] + 3)), ev
a, b, c = ev
assert (a["reader"], a["direction"], a["result"], a["reason"], a["member"]) == \
    ("entrance", "in", "granted", "booking", "m-1"), a
assert re.fullmatch(r"b-\d+", a["booking"] or ""), a
assert (b["reader"], b["direction"], b["result"], b["reason"], b["member"], b["booking"]) == \
    ("entrance", "in", "denied", "unknown_badge", None, None), b
assert (c["reader"], c["direction"], c["result"], c["reason"], c["member"]) == \
    ("exit", "out", "granted", "check_out", "m-1"), c
PY
# The same decisions as the access log, booking id included.
ctl --json log --limit 3 >"$work/log3.json"
python3 - "$work/fields.json" "$work/log3.json" <<'PY' || fail "access events differ from the access log"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
log = json.load(open(sys.argv[2]))
log = log if isinstance(log, list) else next(v for v in log.values() if isinstance(v, list))
for e, r in zip(ev, log[-3:]):
    for k in ("at", "door", "reader", "direction", "result", "reason", "member", "booking"):
        assert e[k] == r[k], (k, e, r)
PY
pass "access events: seq, at, door, reader, direction, result, reason, member, booking, by; as in the access log"

# ---- occupancy shows the opted-in member by short name only (checked with every payload at the end) ----
tap entrance 04C10E02
mqtt_wait_msg "$all" " $P/occupancy .*\"Chloé V\.\"" 10
pass "occupancy lists the opted-in member as 'Chloé V.'"

# check_delivery BEFORE N [gap]: the access events received after the first BEFORE ones are exactly N
# new seqs, and they match the N newest access-log rows, in order; seqs never go back and step by +1
# (with "gap", one jump is allowed before these N: rows dropped by the bound). A duplicate (a seq
# received again) must carry the same payload: a consumer drops it by seq.
check_delivery() {
    local before=$1 n=$2 gap=${3:-}
    mqtt_payloads "$all" "$P/access" >"$work/access.json"
    ctl --json log --limit "$n" >"$work/log.json"
    python3 - "$work/access.json" "$work/log.json" "$before" "$n" "$gap" <<'PY' || fail "delivery check failed"
import json, sys
raw = [json.loads(l) for l in open(sys.argv[1])]
log = json.load(open(sys.argv[2]))
log = log if isinstance(log, list) else next(v for v in log.values() if isinstance(v, list))
before, n, gap = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "gap"
first, order = {}, []
for e in raw:
    s = e["seq"]
    if s in first:
        assert first[s] == e, f"duplicate seq {s} with another payload: {first[s]} / {e}"
        continue
    first[s] = e
    order.append(s)
new = {e["seq"] for e in raw[before:]} - {e["seq"] for e in raw[:before]}
assert len(new) == n, f"{len(new)} new events, expected {n}"
jumps = [(a, b) for a, b in zip(order, order[1:]) if b != a + 1]
assert all(b > a for a, b in jumps), f"seq went back: {jumps}"
if gap:
    assert len(jumps) <= 1 and all(b == order[-n] for a, b in jumps), f"unexpected seq jumps {jumps}"
else:
    assert not jumps, f"seq not +1: {jumps}"
last = [first[s] for s in order[-n:]]
assert set(e["seq"] for e in last) == new, "the new events are not the newest seqs"
assert len(log) == n, len(log)
for e, r in zip(last, log):
    for k in ("at", "door", "reader", "direction", "result", "reason", "member", "booking"):
        assert e[k] == r[k], f"event {e} != log row {r} on {k}"
dups = len(raw) - len(order)
print(f"{n} events seq {last[0]['seq']}..{last[-1]['seq']} in access-log order; {dups} duplicate(s) so far")
PY
}

# tap_keyholders N [FIRST]: N granted taps at the entrance cycling through k-0..k-9 in a scrambled
# order, so a reordering shows in the member sequence.
tap_keyholders() {
    local n=$1 first=${2:-0} i
    for ((i = first; i < first + n; i++)); do
        tap entrance "04B0000$(((i * 7) % 10))"
    done
}

# ---- 200 taps with the broker down, delivered in order when it is back ----
wait_outbox_depth 0
before=$(mqtt_count_topic "$all" "$P/access")
mqtt_broker_stop
access_n=$(count "access seq=")
tap_keyholders 200
wait_for "access seq=" 30 $((access_n + 200))
out=$(ctl outbox) || fail "telecentrectl outbox failed"
[[ $out == "outbox: 200 events waiting, oldest #"*"(access) at "*"; 0 dropped" ]] ||
    fail "telecentrectl outbox while the broker is down: '$out'"
[[ $(outbox_field depth) == 200 ]] || fail "outbox --json depth is not 200"
pass "broker down: 200 taps decided locally; telecentrectl outbox: $out"
mqtt_broker_start
mqtt_wait_topic "$all" "$P/access" 90 $((before + 200))
wait_outbox_depth 0
out=$(ctl outbox)
[[ $out == "outbox: empty; 0 dropped" ]] || fail "telecentrectl outbox after delivery: '$out'"
delivered=$(check_delivery "$before" 200) || exit 1      # (check_delivery has said why)
pass "broker back: $delivered; outbox: $out"

# ---- the same with a daemon restart in between, broker still down: SIGTERM, then SIGKILL ----
for sig in TERM KILL; do
    before=$(mqtt_count_topic "$all" "$P/access")
    mqtt_broker_stop
    access_n=$(count "access seq=")
    tap_keyholders 100
    wait_for "access seq=" 30 $((access_n + 100))
    started=$(count "started: site $site")
    stop_daemon "$sig"
    [[ $(outbox_field depth) == 100 ]] || fail "outbox depth after SIG$sig is not 100"
    start_daemon
    wait_for "started: site $site" 10 $((started + 1))
    access_n=$(count "access seq=")
    tap_keyholders 100 3
    wait_for "access seq=" 30 $((access_n + 100))
    [[ $(outbox_field depth) == 200 ]] || fail "outbox depth after the restart and 100 more taps is not 200"
    mqtt_broker_start
    mqtt_wait_topic "$all" "$P/access" 90 $((before + 200))
    wait_outbox_depth 0
    delivered=$(check_delivery "$before" 200) || exit 1
    pass "daemon restarted by SIG$sig while the broker was down: $delivered"
done

# ---- no badge UID and no member name in any payload ----
n=$(python3 - "$all" "$P/occupancy" "${names[@]}" -- "${uids[@]}" <<'PY'
import re, sys
path, occ_topic = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
sep = rest.index("--")
names, uids = rest[:sep], rest[sep + 1:]
lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
n = 0
for line in lines:
    parts = line.split(" ", 4)
    topic, payload = parts[3], parts[4] if len(parts) > 4 else ""
    if topic.startswith("mqtt-test/"):
        continue
    n += 1
    low = payload.lower()
    for u in uids:
        pairs = [u[i:i + 2].lower() for i in range(0, len(u), 2)]
        for form in ("".join(pairs), ":".join(pairs), "-".join(pairs), " ".join(pairs)):
            assert form not in low, f"UID {u} ({form}) in {topic}: {payload}"
    for name in names:
        assert name.lower() not in payload.lower(), f"name '{name}' in {topic}: {payload}"
    if "Chloé V." in payload:
        assert topic == occ_topic, f"short name outside occupancy: {topic}"
print(n)
PY
) || fail "a UID or a name was published: $n"
pass "no badge UID (in any spelling) and no member name in any of the $n payloads published on '#'"

# ---- the bound: outbox_max = 100, 150 taps while down -> the newest 100 delivered, 50 dropped ----
online=$(count "^[0-9.]* 0 1 $P/status online\$" "$all")     # live births (retain flag 0 as delivered)
stop_daemon TERM
write_conf 100
start_daemon
wait_for "started: site $site" 10 4
mqtt_wait_msg "$all" "^[0-9.]* 0 1 $P/status online\$" 30 $((online + 1))
before=$(mqtt_count_topic "$all" "$P/access")
mqtt_broker_stop
access_n=$(count "access seq=")
tap_keyholders 150
wait_for "access seq=" 30 $((access_n + 150))
[[ $(outbox_field depth) == 100 ]] || fail "outbox depth at the bound is $(outbox_field depth), expected 100"
[[ $(outbox_field dropped) == 50 ]] || fail "outbox dropped is $(outbox_field dropped), expected 50"
out=$(ctl outbox)
[[ $out == "outbox: 100 events waiting, oldest #"*"; 50 dropped" ]] || fail "telecentrectl outbox at the bound: '$out'"
mqtt_broker_start
mqtt_wait_topic "$all" "$P/access" 90 $((before + 100))
wait_outbox_depth 0
delivered=$(check_delivery "$before" 100 gap) || exit 1
mqtt_wait_msg "$all" " $P/health .*\"dropped\":50" 70
health=$(mqtt_payloads "$all" "$P/health" | grep '"dropped":50' | tail -n 1)
python3 -c 'import json,sys; h=json.loads(sys.argv[1]); o=h["outbox"]; assert o["dropped"] == 50 and "depth" in o, h' \
    "$health" || fail "health after the drops: $health"
pass "bound: 150 taps at outbox_max 100 -> $delivered; health outbox.dropped 50; outbox: $out"

kill -0 "$daemon_pid" || fail "the daemon died"
echo "mqtt_outbox: all checks passed"
