#!/usr/bin/env bash
# A burst of taps from several readers at once: four sim readers at two doors (an entry and an exit
# reader each) get all their taps at the same instant (one writer thread per FIFO, released together,
# each writing its whole block in one go), every tap a distinct member's badge so that order can be
# checked. Then:
#   - every tap is decided: exactly as many access-log rows and MQTT access events as taps written;
#   - each reader's taps are decided in the order they arrived (its FIFO's order), none lost or twice;
#   - the events' seq go up by one in the access log's order, and each event is the decision of the row
#     at the same place (same reader, same member);
#   - the doors end locked: the last retained state of each is "locked" and each relay's last output 0.
# Members come in one sync batch over MQTT (the portal's way); a real mosquitto on loopback.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
. "$(dirname "$0")/../lib/mqtt-test.sh"
setup_work reader-burst

site=burst
P=telecentre/$site
readers=(north-in north-out south-in south-out)
taps_per_reader=${BURST_TAPS_PER_READER:-400}
total=$((taps_per_reader * ${#readers[@]}))

mqtt_broker_start

cat >"$conf" <<EOF
[site]
id = $site
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

[door.north]
relay = GPIO17
unlock_ms = 300

[door.south]
relay = GPIO18
unlock_ms = 300

[reader.north-in]
driver = sim
fifo = $work/north-in.fifo
door = north
direction = in

[reader.north-out]
driver = sim
fifo = $work/north-out.fifo
door = north
direction = out

[reader.south-in]
driver = sim
fifo = $work/south-in.fifo
door = south
direction = in

[reader.south-out]
driver = sim
fifo = $work/south-out.fifo
door = south
direction = out

[gpio]
driver = sim
fifo = $work/gpio.fifo

[mqtt]
host = 127.0.0.1
port = $mqtt_port
keepalive_s = 5
EOF

"$TELECENTRECTL" -c "$conf" init >/dev/null

mqtt_sub site -t "$P/#" -q 1
site_out=$mqtt_sub_file

"$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
wait_for "started: site $site" 10
mqtt_wait_msg "$site_out" " $P/status online\$" 15
mqtt_wait_subscribed "telecentred-$site" "$P/sync" 10

# One keyholder per tap (granted in and out at any hour, never locked out), badge 04 + 12 hex digits.
python3 - "$work/sync.json" "$total" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
ops = []
for i in range(1, n + 1):
    ops.append({"op": "upsert", "member": {"id": f"m-{i:05d}", "name": f"Member {i}", "role": "keyholder"}})
    ops.append({"op": "upsert", "badge": {"uid": f"04B0{i:010X}", "member": f"m-{i:05d}"}})
json.dump({"version": 1, "ops": ops}, open(path, "w"))
PY
mqtt_pub -t "$P/sync" -q 1 -f "$work/sync.json" || fail "mosquitto_pub of the sync batch failed"
mqtt_wait_topic "$site_out" "$P/sync/ack" 30 1
ack=$(mqtt_last_payload "$site_out" "$P/sync/ack")
[[ $ack == *'"result":"applied"'* ]] || fail "sync batch not applied: $ack"
pass "$total keyholders and badges synced: $ack"

# The burst: reader k gets taps k, k+4, k+8, ... (interleaved member numbers, so that a mix-up between
# readers shows). All writers open their FIFO first, then wait at one barrier and write their whole block
# with a single write() each (a FIFO holds 64 KiB: no writer waits for the daemon).
python3 - "$work" "$taps_per_reader" "${readers[@]}" <<'PY'
import os, sys, threading
work, per, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
barrier = threading.Barrier(len(names))
errors = []

def writer(k, name):
    try:
        block = "".join(f"04B0{i:010X}\n" for i in range(k + 1, per * len(names) + 1, len(names)))
        with open(os.path.join(work, f"{name}.fifo"), "w") as f:      # the daemon holds the read side
            with open(os.path.join(work, f"sent-{name}.txt"), "w") as sent:
                sent.write(block)
            barrier.wait(timeout=10)
            f.write(block)
    except Exception as e:       # noqa: BLE001 -- reported below
        errors.append(f"{name}: {e}")

threads = [threading.Thread(target=writer, args=(k, n)) for k, n in enumerate(names)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit("burst writers failed: " + "; ".join(errors))
PY
pass "burst written: $taps_per_reader taps on each of ${readers[*]} at once ($total)"

# Until every tap is decided and its event received; or until nothing more comes for 10 s (then the
# checks below say what is missing), within 180 s at most.
settle() {
    local last=-1 now since=$SECONDS deadline=$((SECONDS + $(tc_scaled 180)))
    while :; do
        now="$(count "access seq=") $(mqtt_count_topic "$site_out" "$P/access")"
        [[ $now == "$total $total" ]] && return 0
        [[ $now != "$last" ]] && since=$SECONDS last=$now
        ((SECONDS - since < $(tc_scaled 10) && SECONDS < deadline)) || { echo "settled at (log lines, events): $now"; return 0; }
        kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon exited during the burst"
        sleep 0.05
    done
}
settle
"$TELECENTRECTL" -c "$conf" --json log --limit $((total + 100)) >"$work/log.json"

python3 - "$work" "$site_out" "$P" "$total" "${readers[@]}" <<'PY' || fail "burst checks failed (above)"
import json, os, sys
work, sub, P, total, names = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
problems = []
rows = json.load(open(os.path.join(work, "log.json")))
rows.sort(key=lambda r: r["seq"])
if len(rows) != total:
    problems.append(f"{len(rows)} access-log rows for {total} taps")
member_of = {f"04B0{i:010X}": f"m-{i:05d}" for i in range(1, total + 1)}

# Per reader: the decided UIDs in log order are exactly the UIDs written, in the order written.
for name in names:
    sent = open(os.path.join(work, f"sent-{name}.txt")).read().split()
    got = [r["uid"] for r in rows if r["reader"] == name]
    if got != sent:
        lost = sorted(set(sent) - set(got))
        dup = len(got) - len(set(got))
        first = next((i for i, (a, b) in enumerate(zip(got, sent)) if a != b), min(len(got), len(sent)))
        problems.append(f"reader {name}: {len(got)} decided of {len(sent)} sent, {len(lost)} lost, {dup} "
                        f"twice, first difference at tap {first}")
bad = [r for r in rows if r["result"] != "granted" or r["member"] != member_of.get(r["uid"])]
if bad:
    problems.append(f"{len(bad)} rows not granted to their badge's member, e.g. {bad[0]}")

# MQTT access events, in arrival order: seq +1 each, no duplicate, one per row and in the rows' order.
events = []
for line in open(sub):
    parts = line.rstrip("\n").split(" ", 4)
    if len(parts) == 5 and parts[3] == f"{P}/access":
        events.append(json.loads(parts[4]))
seqs = [e["seq"] for e in events]
if len(events) != total:
    problems.append(f"{len(events)} access events for {total} taps")
if len(set(seqs)) != len(seqs):
    problems.append(f"{len(seqs) - len(set(seqs))} duplicate events")
steps = [b - a for a, b in zip(seqs, seqs[1:])]
if any(s != 1 for s in steps):
    i = next(i for i, s in enumerate(steps) if s != 1)
    problems.append(f"event seq not +1 each in arrival order: ...{seqs[max(0, i - 2):i + 3]}...")
mism = [(r["seq"], e["seq"]) for r, e in zip(rows, events)
        if (r["reader"], r["member"], r["direction"]) != (e["reader"], e["member"], e["direction"])]
if mism:
    problems.append(f"{len(mism)} events differ from the access-log row at the same place, first (row seq, "
                    f"event seq) {mism[0]}")
# Not a check, for the record: how finely the loop interleaved the readers (runs of one reader's taps).
runs = 1 + sum(1 for a, b in zip(rows, rows[1:]) if a["reader"] != b["reader"])
print(f"interleaving: {runs} runs of one reader's taps in the log, longest "
      f"{max((sum(1 for _ in g) for _, g in __import__('itertools').groupby(r['reader'] for r in rows)), default=0)}")
for p in problems:
    print("burst:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
pass "all $total taps decided once each, in arrival order per reader; $total events, seq +1 each, in log order"

# The doors: each ends locked, relay off (the last grant's unlock_ms after the burst). Polled with a
# bound: a relock in the middle of the burst (a pause longer than unlock_ms) is fine, the end state counts.
door_settled() {
    local door=$1 relay=$2
    [[ $(mqtt_last_payload "$site_out" "$P/door/$door/state") == '{"state":"locked"'* ]] &&
        [[ $(grep -o "gpio $relay=[01]" "$log" | tail -n 1) == "gpio $relay=0" ]]
}
deadline=$((SECONDS + $(tc_scaled 15)))
for pair in north:GPIO17 south:GPIO18; do
    door=${pair%%:*} relay=${pair#*:}
    until door_settled "$door" "$relay"; do
        ((SECONDS < deadline)) || fail "door $door did not end locked with $relay off: last state" \
            "$(mqtt_last_payload "$site_out" "$P/door/$door/state"), last output $(grep -o "gpio $relay=[01]" "$log" | tail -n 1)"
        sleep 0.05
    done
    (($(count "door $door: locked -> unlocked") >= 1)) || fail "door $door never unlocked"
done
grep -q "NOT RECORDED\|database error" "$log" && fail "a tap was not recorded"
pass "both doors locked after the burst, both relays off; no tap unrecorded"
