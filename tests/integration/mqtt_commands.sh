#!/usr/bin/env bash
# Commands the daemon takes over MQTT, with a real mosquitto on loopback and mosquitto_pub/mosquitto_sub
# as the central portal: sync batches (applied, rejected whole, 1,000 members in one message, old
# versions ignored, network-wide topic), malformed/oversized/unknown input rejected with a reason and
# the database unchanged, booking requests (accepted, refused on conflict, cancelled) answered on the v5
# response topic with the correlation data, and remote unlocks (fresh: relay and access event; retained,
# stale, unknown door: ignored with a warning). docs/mqtt.md is the contract.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
. "$(dirname "$0")/../lib/mqtt-test.sh"
setup_work mqtt-commands

site=cmd-site
P=telecentre/$site
mqtt_broker_start

ctl() {
    "$TELECENTRECTL" -c "$conf" "$@"
}

cat >"$conf" <<EOF
[site]
id = $site
name = Commands test site
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
unlock_ms = 200

[reader.entrance]
driver = sim
fifo = $work/reader-entrance.fifo
door = entrance
direction = in

[gpio]
driver = sim
fifo = $work/gpio.fifo

[mqtt]
host = 127.0.0.1
port = $mqtt_port
keepalive_s = 5
unlock_max_age_s = 10
network_sync_topic = telecentre/network/sync
EOF

ctl init >/dev/null
ctl member add m-1 --name "Alice Martin" >/dev/null
ctl member add m-2 --name "Bruno Petit" >/dev/null
ctl member add m-3 --name "Carla Suspendue" >/dev/null
ctl member suspend m-3 >/dev/null
ctl resource add desk-b1 --kind desk >/dev/null
ctl resource add desk-b2 --kind desk >/dev/null

tap() { write_fifo "$work/reader-$1.fifo" "$2"$'\n'; }

# The tables a command may change, in a stable order: "unchanged" compares two of these.
dump_db() {
    local t
    for t in members badges resources bookings presence closures meta; do
        echo "-- $t"
        sqlite3 -readonly "$work/site.db" "SELECT * FROM $t ORDER BY 1"
    done
}

# Everything under P/ (acks, events, states), and the portal's reply topic with its correlation data.
mqtt_sub site -t "$P/#" -q 1
site_out=$mqtt_sub_file
mqtt_sub replies -t 'portal/replies/#' -q 1 -F '%U %r %q %t %D|%p'
replies=$mqtt_sub_file

"$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
wait_for "started: site $site" 10
mqtt_wait_msg "$site_out" " $P/status online\$" 15
client=telecentred-$site
for filter in "$P/sync" "$P/booking/request" "$P/door/+/unlock" telecentre/network/sync; do
    mqtt_wait_subscribed "$client" "$filter" 10
done
pass "daemon connected and subscribed to sync, booking/request, door/+/unlock and the network sync topic"

# sync_pub PAYLOAD_FILE_OR_STRING [TOPIC]: publishes a sync batch and sets ack to the next ack (JSON).
# Not in $(...): it counts the acks seen in the test's shell.
acks_seen=0
sync_pub() {
    local topic=${2:-$P/sync}
    if [[ -f $1 ]]; then
        mqtt_pub -t "$topic" -q 1 -f "$1" || fail "mosquitto_pub of $1 failed"
    else
        mqtt_pub -t "$topic" -q 1 -m "$1" || fail "mosquitto_pub failed"
    fi
    acks_seen=$((acks_seen + 1))
    mqtt_wait_topic "$site_out" "$P/sync/ack" 30 "$acks_seen"
    ack=$(mqtt_payloads "$site_out" "$P/sync/ack" | sed -n "${acks_seen}p")
}

# jq-free JSON checks: json_check JSON PYTHON_EXPR (d is the document).
json_check() {
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert eval(sys.argv[2]), d' "$1" "$2" ||
        fail "JSON check '$2' failed on: $1"
}

# ---- sync applied ----
sync_pub '{"version":1,"ops":[
  {"op":"upsert","member":{"id":"m-100","name":"Synced Person","role":"member","email":"s@example.org",
                           "valid_from":"2020-01-01","valid_until":null,"suspended":false,"presence_visible":true}},
  {"op":"upsert","badge":{"uid":"04:c0:00:00:01:00:01","member":"m-100","label":"blue card"}},
  {"op":"upsert","resource":{"id":"room-1","kind":"room","name":"Salle Aubrac","seats":6}},
  {"op":"upsert","member":{"id":"k-100","name":"Synced Keyholder","role":"keyholder"}},
  {"op":"upsert","badge":{"uid":"04C00101","member":"k-100"}}]}'
json_check "$ack" 'd == {"version": 1, "result": "applied", "ops": 5}'
json_check "$(ctl --json member show m-100)" '"m-100" in json.dumps(d) and "Synced Person" in json.dumps(d)'
ctl member list | grep -q "m-100" || fail "telecentrectl member list lacks m-100"
ctl badge list | grep -q "04C00000010001" || fail "telecentrectl badge list lacks the synced badge (normalised UID)"
ctl resource list | grep -q "room-1" || fail "telecentrectl resource list lacks room-1"
out=$(ctl sync) || fail "telecentrectl sync failed"
[[ $out == *"site sync: version 1, applied "* ]] || fail "telecentrectl sync: '$out'"
grants=$(count "granted keyholder member=k-100")
tap entrance 04C00101
wait_for "granted keyholder member=k-100" 5 $((grants + 1))
pass "sync applied: ack $ack; member, badge (UID normalised), resource visible to telecentrectl; the synced badge opens"

# ---- sync rejected whole on one bad record ----
before=$(dump_db)
sync_pub '{"version":2,"ops":[
  {"op":"upsert","member":{"id":"m-101","name":"Would Be Added"}},
  {"op":"upsert","badge":{"uid":"04C00199","member":"m-9"}},
  {"op":"delete","member":{"id":"m-2"}}]}'
json_check "$ack" 'd["version"] == 2 and d["result"] == "rejected" and d["error"].startswith("ops[1]") and "m-9" in d["error"]'
[[ $(dump_db) == "$before" ]] || fail "a rejected sync changed the database"
ctl member list | grep -q "m-101" && fail "m-101 of a rejected batch is in the database"
[[ $(ctl sync) == *"version 1,"* ]] || fail "a rejected sync moved the version: $(ctl sync)"
pass "sync rejected whole on one bad record: $ack; database unchanged"

sync_pub '{"version":2,"ops":[{"op":"upsert","member":{"id":"m-101","name":"Now Added"}},
  {"op":"upsert","badge":{"uid":"04C00199","member":"m-101"}},{"op":"delete","badge":{"uid":"04C00199"}}]}'
json_check "$ack" 'd == {"version": 2, "result": "applied", "ops": 3}'
ctl badge list | grep -q "04C00199" && fail "a badge deleted later in the same batch is still there"
pass "the rejected version is still free: version 2 applied ($ack), ops in order"

# ---- 1,000 members and 1,000 badges in one message ----
python3 - "$work/sync-1000.json" <<'PY'
import json, sys
ops = []
for i in range(1000):
    role = "keyholder" if i == 777 else "member"
    ops.append({"op": "upsert", "member": {"id": f"m-s{i:04d}", "name": f"Bulk Member {i:04d}", "role": role,
                                           "email": f"bulk{i}@example.org", "valid_until": "2099-12-31",
                                           "presence_visible": i % 2 == 0}})
for i in range(1000):
    ops.append({"op": "upsert", "badge": {"uid": f"04D0{i:010d}", "member": f"m-s{i:04d}"}})
json.dump({"version": 3, "ops": ops}, open(sys.argv[1], "w"))
PY
t0=$(date +%s%N)
sync_pub "$work/sync-1000.json"
t1=$(date +%s%N)
json_check "$ack" 'd == {"version": 3, "result": "applied", "ops": 2000}'
n=$(ctl --json member list | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d if isinstance(d,list) else next(v for v in d.values() if isinstance(v,list)); print(sum(1 for m in d if m["id"].startswith("m-s")))')
((n == 1000)) || fail "$n bulk members in the database, expected 1000"
grants=$(count "granted keyholder member=m-s0777")
tap entrance 04D00000000777
wait_for "granted keyholder member=m-s0777" 5 $((grants + 1))
pass "sync of 1,000 members + 1,000 badges ($(stat -c %s "$work/sync-1000.json") bytes) applied in $(((t1 - t0) / 1000000)) ms (publish to ack); m-s0777 badged in"

# ---- old and repeated versions are acknowledged and ignored ----
before=$(dump_db)
sync_pub '{"version":2,"ops":[{"op":"upsert","member":{"id":"m-102","name":"Old Version"}}]}'
json_check "$ack" 'd["version"] == 2 and d["result"] == "ignored" and "3" in d["reason"]'
sync_pub '{"version":3,"ops":[{"op":"delete","member":{"id":"m-1"}}]}'
json_check "$ack" 'd["version"] == 3 and d["result"] == "ignored"'
[[ $(dump_db) == "$before" ]] || fail "an ignored sync changed the database"
pass "old version ignored ($ack); database unchanged"

# ---- the network-wide topic: its own version, scope "network" in the ack ----
sync_pub '{"version":1,"ops":[{"op":"upsert","member":{"id":"n-1","name":"Network Member"}}]}' \
    telecentre/network/sync
json_check "$ack" 'd["version"] == 1 and d["result"] == "applied" and d.get("scope") == "network"'
ctl member list | grep -q "n-1" || fail "the network member is not in the database"
[[ $(ctl sync) == *"network"*"version 1"* ]] || fail "telecentrectl sync lacks the network version: $(ctl sync)"
pass "network sync applied with its own version: $ack"

# ---- malformed, wrong types, unknown fields, oversized, unknown topics: rejected, nothing changes ----
before=$(dump_db)
reject() {
    local what=$1 payload=$2 expect=${3:-}
    local ack
    sync_pub "$payload"
    json_check "$ack" 'd["result"] == "rejected" and isinstance(d.get("error"), str) and len(d["error"]) > 3'
    if [[ -n $expect ]]; then
        [[ $ack == *"$expect"* ]] || fail "$what: the reason does not name '$expect': $ack"
    fi
    kill -0 "$daemon_pid" || fail "the daemon died on: $what"
    echo "   $what -> $ack"
}
reject "malformed JSON" '{"version":10,"ops":[{"op":"upsert",'
reject "not an object" '[1,2,3]'
reject "empty payload" ''
reject "version a string" '{"version":"10","ops":[]}' version
reject "version zero" '{"version":0,"ops":[]}' version
reject "version negative" '{"version":-4,"ops":[]}' version
reject "ops not an array" '{"version":10,"ops":{}}' ops
reject "unknown top-level field" '{"version":10,"ops":[],"extra":true}' extra
reject "unknown op" '{"version":10,"ops":[{"op":"merge","member":{"id":"m-1","name":"X"}}]}' 'ops[0]'
reject "two records in one op" \
    '{"version":10,"ops":[{"op":"upsert","member":{"id":"m-1","name":"X"},"badge":{"uid":"04AA","member":"m-1"}}]}' 'ops[0]'
reject "name a number" '{"version":10,"ops":[{"op":"upsert","member":{"id":"m-1","name":5}}]}' 'ops[0].member.name'
reject "unknown member field" \
    '{"version":10,"ops":[{"op":"upsert","member":{"id":"m-1","name":"X","nickname":"Y"}}]}' nickname
reject "bad role" '{"version":10,"ops":[{"op":"upsert","member":{"id":"m-1","name":"X","role":"boss"}}]}' role
reject "bad date" \
    '{"version":10,"ops":[{"op":"upsert","member":{"id":"m-1","name":"X","valid_until":"31/12/2030"}}]}' valid_until
reject "suspended a string" \
    '{"version":10,"ops":[{"op":"upsert","member":{"id":"m-1","name":"X","suspended":"yes"}}]}' suspended
reject "bad UID" '{"version":10,"ops":[{"op":"upsert","badge":{"uid":"not-hex","member":"m-1"}}]}' 'ops[0].badge.uid'
reject "bad resource kind" '{"version":10,"ops":[{"op":"upsert","resource":{"id":"x","kind":"sofa"}}]}' kind
reject "zero seats" '{"version":10,"ops":[{"op":"upsert","resource":{"id":"x","kind":"room","seats":0}}]}' seats
reject "a badge of a missing member, after a good op" \
    '{"version":10,"ops":[{"op":"upsert","member":{"id":"m-1","name":"Renamed"}},{"op":"upsert","badge":{"uid":"04FFFFFF","member":"m-404"}}]}' 'ops[1]'
python3 -c 'import sys; sys.stdout.write("{\"version\":10,\"ops\":[],\"pad\":\"" + "x" * (8 * 1024 * 1024) + "\"}")' \
    >"$work/oversized.json"
reject "oversized (8 MiB + 33 bytes)" "$work/oversized.json"
# Topics the daemon does not take: a message there must change nothing either.
for topic in "$P/nonsense" "$P/sync/extra" "$P/booking/request/x" "$P/door/entrance/unlock/x" "$P/status/x"; do
    mqtt_pub -t "$topic" -q 1 -m '{"version":11,"ops":[{"op":"delete","member":{"id":"m-1"}}]}'
done
mqtt_pub -t "$P/door/nosuchdoor/unlock" -q 1 -m "{\"at\":\"$(date -u +%FT%TZ)\",\"by\":\"manager-07\"}"
wait_for "warning: .*unlock" 5
# A good batch behind them: it is acted on, so everything before it was read (and refused).
sync_pub '{"version":10,"ops":[{"op":"upsert","member":{"id":"m-110","name":"After The Junk"}}]}'
json_check "$ack" 'd == {"version": 10, "result": "applied", "ops": 1}'
after=$(dump_db | grep -v "m-110\|sync")
[[ $after == "$(grep -v "sync" <<<"$before")" ]] || {
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "the rejected input changed the database"
}
kill -0 "$daemon_pid" || fail "the daemon died"
pass "malformed JSON, wrong types, unknown fields, oversized payload, unknown topics: rejected with a reason, daemon alive, database unchanged"

# ---- booking requests: response topic + correlation data ----
day=$(date -u -d tomorrow +%F)
t() { date -u -d "$day $1" +%FT%TZ; }
nreplies=0
# booking_req PAYLOAD CORRELATION [RESPONSE_TOPIC]: sets r to "CORRELATION|REPLY" of the next reply.
booking_req() {
    local payload=$1 corr=$2 rt=${3:-portal/replies/desk}
    mqtt_pub -t "$P/booking/request" -q 1 -m "$payload" -D publish response-topic "$rt" \
        -D publish correlation-data "$corr" || fail "mosquitto_pub of a booking request failed"
    nreplies=$((nreplies + 1))
    mqtt_wait_topic "$replies" "$rt" 10 "$nreplies"
    r=$(mqtt_payloads "$replies" "$rt" | sed -n "${nreplies}p")
}
reply_json() { echo "${1#*|}"; }

booking_req "{\"op\":\"book\",\"member\":\"m-1\",\"resource\":\"desk-b1\",\"from\":\"$(t 08:00)\",\"to\":\"$(t 12:00)\"}" corr-book-1
[[ ${r%%|*} == corr-book-1 ]] || fail "correlation data not echoed: $r"
body=$(reply_json "$r")
json_check "$body" "d['result'] == 'accepted' and d['booking'].startswith('b-') and d['resource'] == 'desk-b1' and d['from'] == '$(t 08:00)' and d['to'] == '$(t 12:00)'"
b1=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["booking"])' "$body")
ctl --json booking list --day "$day" | grep -q "\"$b1\"" || fail "$b1 not in telecentrectl booking list --day $day"
pass "booking request accepted: correlation data echoed, $body; $b1 in telecentrectl booking list"

booking_req "{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-b1\",\"from\":\"$(t 10:00)\",\"to\":\"$(t 14:00)\",\"after_hours\":false}" corr-book-2
[[ ${r%%|*} == corr-book-2 ]] || fail "correlation data not echoed: $r"
body=$(reply_json "$r")
json_check "$body" "d['result'] == 'refused' and d['reason'] == 'conflict' and d['conflict'] == '$b1'"
pass "booking request refused on conflict, naming $b1: $body"

for case in \
    "unknown_member|{\"op\":\"book\",\"member\":\"m-404\",\"resource\":\"desk-b2\",\"from\":\"$(t 08:00)\",\"to\":\"$(t 09:00)\"}" \
    "unknown_resource|{\"op\":\"book\",\"member\":\"m-1\",\"resource\":\"desk-404\",\"from\":\"$(t 08:00)\",\"to\":\"$(t 09:00)\"}" \
    "member_suspended|{\"op\":\"book\",\"member\":\"m-3\",\"resource\":\"desk-b2\",\"from\":\"$(t 08:00)\",\"to\":\"$(t 09:00)\"}" \
    "invalid_time|{\"op\":\"book\",\"member\":\"m-1\",\"resource\":\"desk-b2\",\"from\":\"$(t 12:00)\",\"to\":\"$(t 09:00)\"}" \
    "invalid_request|{\"op\":\"book\",\"member\":\"m-1\",\"resource\":\"desk-b2\",\"from\":\"tomorrow\",\"to\":\"$(t 09:00)\"}" \
    "invalid_request|{\"op\":\"book\",\"member\":\"m-1\",\"resource\":\"desk-b2\",\"from\":\"$(t 08:00)\",\"to\":\"$(t 09:00)\",\"colour\":\"red\"}" \
    "invalid_request|{\"op\":\"book\",\"member\":1,\"resource\":\"desk-b2\",\"from\":\"$(t 08:00)\",\"to\":\"$(t 09:00)\"}" \
    "invalid_request|{\"op\":\"teleport\"}" \
    "invalid_request|{not json" \
    "not_found|{\"op\":\"cancel\",\"booking\":\"b-99999\"}"; do
    want=${case%%|*}
    booking_req "${case#*|}" "corr-$want"
    [[ ${r%%|*} == "corr-$want" ]] || fail "correlation data not echoed: $r"
    json_check "$(reply_json "$r")" "d['result'] == 'refused' and d['reason'] == '$want'"
done
python3 -c 'import sys; sys.stdout.write("{\"op\":\"cancel\",\"booking\":\"b-1\",\"pad\":\"" + "x" * 5000 + "\"}")' >"$work/big-request.json"
mqtt_pub -t "$P/booking/request" -q 1 -f "$work/big-request.json" -D publish response-topic portal/replies/desk \
    -D publish correlation-data corr-big
nreplies=$((nreplies + 1))
mqtt_wait_topic "$replies" portal/replies/desk 10 "$nreplies"
r=$(mqtt_payloads "$replies" portal/replies/desk | sed -n "${nreplies}p")
json_check "$(reply_json "$r")" "d['result'] == 'refused' and d['reason'] == 'invalid_request'"
ctl --json booking list --day "$day" | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d if isinstance(d,list) else next(v for v in d.values() if isinstance(v,list)); assert len(d) == 1, d' ||
    fail "a refused booking request left a booking behind"
pass "refusals: unknown_member, unknown_resource, member_suspended, invalid_time, invalid_request (bad time, unknown field, wrong type, bad op, bad JSON, 5,000 bytes), not_found"

# No response topic: the reply goes to P/S/booking/reply, with the correlation data if any.
mqtt_pub -t "$P/booking/request" -q 1 -D publish correlation-data corr-no-rt \
    -m "{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-b2\",\"from\":\"$(t 13:00)\",\"to\":\"$(t 15:00)\"}"
mqtt_wait_topic "$site_out" "$P/booking/reply" 10
body=$(mqtt_last_payload "$site_out" "$P/booking/reply")
json_check "$body" "d['result'] == 'accepted' and d['resource'] == 'desk-b2'"
pass "a request without a response topic is answered on $P/booking/reply: $body"

# A retained request would be carried out again at every reconnect: never acted on, not answered.
warned=$(count "warning: .*booking request")
mqtt_pub -t "$P/booking/request" -q 1 -r -D publish response-topic portal/replies/desk -D publish correlation-data \
    corr-retained -m "{\"op\":\"book\",\"member\":\"m-1\",\"resource\":\"desk-b2\",\"from\":\"$(t 16:00)\",\"to\":\"$(t 17:00)\"}"
wait_for "warning: .*booking request" 5 $((warned + 1))
mqtt_pub -t "$P/booking/request" -q 1 -r -n
wait_for "warning: .*booking request" 5 $((warned + 2))
ctl --json booking list --day "$day" | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d if isinstance(d,list) else next(v for v in d.values() if isinstance(v,list)); assert len(d) == 2, d' ||
    fail "a retained booking request was carried out"
grep -q "corr-retained" "$replies" && fail "a retained booking request was answered"
pass "a retained booking request is ignored with a warning: $(grep "warning: .*booking request" "$log" | tail -n 1)"

booking_req "{\"op\":\"cancel\",\"booking\":\"$b1\"}" corr-cancel
[[ ${r%%|*} == corr-cancel ]] || fail "correlation data not echoed: $r"
json_check "$(reply_json "$r")" "d['result'] == 'accepted' and d['booking'] == '$b1'"
ctl --json booking list --day "$day" | python3 -c "
import json,sys
d=json.load(sys.stdin); d=d if isinstance(d,list) else next(v for v in d.values() if isinstance(v,list))
b=[x for x in d if x['id'] == '$b1']
assert not b or b[0]['status'] != 'confirmed', b" || fail "$b1 still confirmed after its cancel"
booking_req "{\"op\":\"cancel\",\"booking\":\"$b1\"}" corr-cancel-2
json_check "$(reply_json "$r")" "d['result'] == 'refused' and d['reason'] == 'not_confirmed'"
booking_req "{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-b1\",\"from\":\"$(t 10:00)\",\"to\":\"$(t 12:00)\"}" corr-rebook
json_check "$(reply_json "$r")" "d['result'] == 'accepted'"
sync_pub '{"version":11,"ops":[{"op":"delete","resource":{"id":"desk-b1"}}]}'
json_check "$ack" 'd["result"] == "rejected" and d["error"].startswith("ops[0]")'
ctl resource list | grep -q desk-b1 || fail "desk-b1, booked ahead, was deleted by a sync"
echo "   sync deleting a booked resource -> $ack"
pass "cancel accepted ($b1 no longer confirmed), cancelled twice: not_confirmed; the freed slot can be booked again"

# ---- remote unlock ----
pulses=$(count "gpio GPIO17=1")
warnings=$(count "warning: .*unlock")
remote=$(grep -c '"reason":"remote"' "$site_out" || true)
now_iso() { date -u -d "${1:-now}" +%FT%TZ; }
mqtt_pub -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso)\",\"by\":\"manager-07\"}"
wait_for "gpio GPIO17=1" 5 $((pulses + 1))
pulses=$((pulses + 1))
mqtt_wait_msg "$site_out" " $P/access .*\"reason\":\"remote\"" 10 $((remote + 1))
remote=$((remote + 1))
ev=$(mqtt_payloads "$site_out" "$P/access" | grep '"reason":"remote"' | tail -n 1)
json_check "$ev" 'd["door"] == "entrance" and d["reader"] is None and d["direction"] == "in" and d["result"] == "granted" and d["by"] == "manager-07" and d["member"] is None and d["booking"] is None and isinstance(d["seq"], int)'
ctl log --limit 1 | grep -q "remote" || fail "the access log lacks the remote unlock"
expect_count "warning: .*unlock" "$warnings"
pass "fresh unlock: relay pulse, access event $ev"

# ignored_unlock WHAT REASON_PATTERN [mosquitto_pub ARG...]: one warning naming the reason, no relay.
ignored_unlock() {
    local what=$1 why=$2
    shift 2
    mqtt_pub "$@"
    warnings=$((warnings + 1))
    wait_for "warning: .*unlock" 5 "$warnings"
    grep "warning: .*unlock" "$log" | tail -n 1 | grep -qi -- "$why" ||
        fail "$what: the warning does not say '$why': $(grep "warning: .*unlock" "$log" | tail -n 1)"
    echo "   $what -> $(grep "warning: .*unlock" "$log" | tail -n 1)"
}
ignored_unlock "stale (60 s old)" "old\|stale\|age" \
    -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso '-60 sec')\",\"by\":\"manager-07\"}"
ignored_unlock "from the future (60 s ahead)" "ahead\|future\|stale\|age" \
    -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso '+60 sec')\",\"by\":\"manager-07\"}"
ignored_unlock "no by" "by" -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso)\"}"
ignored_unlock "bad by" "by" -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso)\",\"by\":\"a b\"}"
ignored_unlock "unknown field" "field\|extra\|unknown" \
    -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso)\",\"by\":\"manager-07\",\"extra\":1}"
ignored_unlock "malformed" "json\|malformed\|invalid\|parse" -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":"
python3 -c 'import sys; sys.stdout.write("{\"at\":\"x\",\"by\":\"" + "m" * 2000 + "\"}")' >"$work/big-unlock.json"
ignored_unlock "oversized (2 kB)" "large\|big\|size\|bytes" -t "$P/door/entrance/unlock" -q 1 -f "$work/big-unlock.json"
# A retained unlock, as a daemon (re)subscribing finds it: stored while the daemon is away.
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon did not stop cleanly"
daemon_pid=
mqtt_pub -t "$P/door/entrance/unlock" -q 1 -r -m "{\"at\":\"$(now_iso)\",\"by\":\"manager-07\"}"
"$TELECENTRED" -c "$conf" 2>>"$log" &
daemon_pid=$!
warnings=$((warnings + 1))
wait_for "warning: .*unlock" 10 "$warnings"
grep "warning: .*unlock" "$log" | tail -n 1 | grep -qi "retain" ||
    fail "the retained unlock's warning does not say retained: $(grep "warning: .*unlock" "$log" | tail -n 1)"
echo "   retained, at (re)subscribe -> $(grep "warning: .*unlock" "$log" | tail -n 1)"
mqtt_pub -t "$P/door/entrance/unlock" -q 1 -r -n      # clear it (the daemon logs the empty command)
warnings=$((warnings + 1))
wait_for "warning: .*unlock" 5 "$warnings"
# Retained as published to a daemon already subscribed: ignored as well.
ignored_unlock "retained, live" "retain" -t "$P/door/entrance/unlock" -q 1 -r -m "{\"at\":\"$(now_iso)\",\"by\":\"manager-07\"}"
mqtt_pub -t "$P/door/entrance/unlock" -q 1 -r -n
warnings=$((warnings + 1))
wait_for "warning: .*unlock" 5 "$warnings"
# A fresh one behind them all: acted on, so the ones before were read and ignored.
mqtt_pub -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso)\",\"by\":\"manager-08\"}"
mqtt_wait_msg "$site_out" " $P/access .*\"by\":\"manager-08\"" 10
expect_count "gpio GPIO17=1" $((pulses + 1))
[[ $(grep -c '"reason":"remote"' "$site_out") == $((remote + 1)) ]] || fail "an ignored unlock published an access event"
pass "stale, future, malformed, oversized and retained unlocks ignored with one warning each; no relay, no event"

kill -0 "$daemon_pid" || fail "the daemon died"
echo "mqtt_commands: all checks passed"
