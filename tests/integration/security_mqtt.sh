#!/usr/bin/env bash
# docs/security.md, "The broker": commands reach the daemon only through the broker's access control.
# A real mosquitto with a password file and the ACL file of docs/mqtt.md ("Broker setup"): the site's
# user (florac, which the daemon uses), the portal's, another site's (mende), an intruder with valid
# credentials but no rights, an anonymous client, and an auditor that reads everything.
#  - anonymous clients are refused by the broker;
#  - the intruder's and the other site's sync, booking request and unlock on florac's topics never
#    reach the daemon: nothing in its log, no ack or reply, no relay, the database unchanged (the portal's
#    own messages, sent after theirs, are the barrier that shows the daemon has read everything before);
#  - the same commands from the portal are carried out (so the test can see a command when there is one);
#  - the site's own user cannot publish on another site's topics (an unlock, a fake access event);
#  - a retained sync batch is not applied, live or stored before the daemon subscribed, and its ack
#    says why (retained booking requests and unlocks: tests/integration/mqtt_commands.sh).
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
. "$(dirname "$0")/../lib/mqtt-test.sh"
setup_work security-mqtt
command -v mosquitto_passwd >/dev/null || PATH=$PATH:/usr/bin
command -v mosquitto_passwd >/dev/null || fail "mosquitto_passwd is not installed (package mosquitto)"

site=florac
P=telecentre/$site
ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }
tap() { write_fifo "$work/reader-entrance.fifo" "$1"$'\n'; }
now_iso() { date -u -d "${1:-now}" +%FT%TZ; }
json_check() {
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert eval(sys.argv[2]), d' "$1" "$2" ||
        fail "JSON check '$2' failed on: $1"
}

# ---- the broker: users and the ACL of docs/mqtt.md ----
passwd=$work/broker.passwd
: >"$passwd"
for user in florac mende portal intruder auditor; do
    mosquitto_passwd -b "$passwd" "$user" "pw-$user" 2>/dev/null || fail "mosquitto_passwd failed"
done
chmod 600 "$passwd"
site_acl() {   # the site block of docs/mqtt.md, for site $1
    cat <<EOF
user $1
topic write telecentre/$1/status
topic write telecentre/$1/occupancy
topic write telecentre/$1/health
topic write telecentre/$1/access
topic write telecentre/$1/alarm
topic write telecentre/$1/resource/+/state
topic write telecentre/$1/door/+/state
topic write telecentre/$1/sync/ack
topic write telecentre/$1/booking/reply
topic read  telecentre/$1/sync
topic read  telecentre/$1/booking/request
topic read  telecentre/$1/door/+/unlock
topic read  telecentre/network/sync
topic write homeassistant/+/telecentred_$1/+/config
topic write portal/replies/#

EOF
}
{
    site_acl florac
    site_acl mende
    cat <<'EOF'
user portal
topic write telecentre/+/sync
topic write telecentre/network/sync
topic write telecentre/+/booking/request
topic write telecentre/+/door/+/unlock
topic read  telecentre/#
topic read  portal/replies/#

# the test's observer: reads everything (and its own probe topic)
user auditor
topic read #
topic readwrite mqtt-test/#

# intruder: a valid account with no rule at all
EOF
} >"$work/broker.acl"
mqtt_broker_start "allow_anonymous false" "password_file $passwd" "acl_file $work/broker.acl"

as() { local u=$1; shift; mqtt_client_opts=(-u "$u" -P "pw-$u"); mqtt_pub "$@"; }

printf 'pw-florac\n' >"$work/mqtt-password"
chmod 600 "$work/mqtt-password"
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

[door.entrance]
relay = GPIO17
unlock_ms = 200

[reader.entrance]
driver = sim
fifo = $work/reader-entrance.fifo

[gpio]
driver = sim
fifo = $work/gpio.fifo

[mqtt]
host = 127.0.0.1
port = $mqtt_port
username = florac
password_file = $work/mqtt-password
keepalive_s = 5
EOF

ctl init >/dev/null
ctl member add m-1 --name "Alice Martin" >/dev/null
ctl resource add desk-1 --kind desk >/dev/null

dump_db() {
    python3 - "$work/site.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for t in ("members", "badges", "bookings", "presence", "access_log"):
    print("--", t)
    for row in c.execute(f"SELECT * FROM {t} ORDER BY 1"):
        print(row)
EOF
}

mqtt_client_opts=(-u auditor -P pw-auditor)
mqtt_sub all -t '#' -q 1 -F '%U %r %q %t %D|%p'
all=$mqtt_sub_file

start_daemon() {
    "$TELECENTRED" -c "$conf" 2>>"$log" &
    daemon_pid=$!
    wait_for "started: site $site" 10
}
start_daemon
mqtt_wait_msg "$all" " $P/status |online\$" 15
for filter in "$P/sync" "$P/booking/request" "$P/door/+/unlock"; do
    mqtt_wait_subscribed "telecentred-$site" "$filter" 10
done
pass "the daemon connected as florac to a broker with a password file and the ACL of docs/mqtt.md"

# ---- anonymous: refused at connect ----
mqtt_client_opts=()
if mqtt_pub -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso)\",\"by\":\"anon\"}" 2>"$work/anon.err"; then
    fail "an anonymous client could publish"
fi
grep -qi "not authori[sz]ed\|refused" "$work/anon.err" || fail "anonymous publish failed for another reason: $(cat "$work/anon.err")"
pass "an anonymous client is refused by the broker: $(head -n 1 "$work/anon.err")"

# ---- the intruder and the other site, on florac's command topics ----
before=$(dump_db)
pulses=$(count "gpio GPIO17=1")
intrude() {   # intrude USER
    as "$1" -t "$P/sync" -q 1 -m '{"version":9,"ops":[
        {"op":"upsert","member":{"id":"x-1","name":"Eve Intruder","role":"keyholder"}},
        {"op":"upsert","badge":{"uid":"04EEEEEE","member":"x-1"}}]}' || true
    as "$1" -t "$P/booking/request" -q 1 -D publish response-topic portal/replies/x -m \
        '{"op":"book","member":"m-1","resource":"desk-1","from":"'"$(now_iso '+1 day')"'","to":"'"$(now_iso '+1 day 2 hours')"'"}' || true
    as "$1" -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso)\",\"by\":\"$1\"}" || true
}
intrude intruder
intrude mende
# The barrier: the portal's sync, published after them, reaches the daemon through the same
# subscription, in order. Once its ack is out, anything of theirs that had got through would be in.
as portal -t "$P/sync" -q 1 -m '{"version":1,"ops":[{"op":"upsert","resource":{"id":"desk-2","kind":"desk"}}]}'
mqtt_wait_msg "$all" " $P/sync/ack .*\"version\":1,\"result\":\"applied\"" 10
grep -q "sync version 9\|Eve Intruder\|04EEEEEE\|booking request\|remote unlock" "$log" &&
    fail "a command of the intruder or of another site reached the daemon: $(grep "sync version 9\|booking request\|remote unlock" "$log")"
((  $(count "gpio GPIO17=1") == pulses )) || fail "the relay moved"
grep -q " $P/sync .*Eve Intruder\| $P/door/entrance/unlock \| $P/booking/request " "$all" &&
    fail "the broker delivered a denied publication: $(grep "Eve Intruder\|unlock \|booking/request " "$all")"
grep -q "portal/replies/x" "$all" && fail "a booking reply was sent to the intruder's response topic"
after=$(dump_db)
[[ $before == "$after" ]] || fail "the database changed: $(diff <(echo "$before") <(echo "$after"))"
pass "the intruder's and site mende's sync, booking request and unlock on florac's topics never reached the daemon: no log line, no ack, no reply, no relay, database unchanged"

# ---- the same commands from the portal are carried out ----
as portal -t "$P/sync" -q 1 -m '{"version":2,"ops":[
    {"op":"upsert","member":{"id":"m-2","name":"Bruno Petit"}},
    {"op":"upsert","badge":{"uid":"04B0B0B0","member":"m-2"}}]}'
mqtt_wait_msg "$all" " $P/sync/ack .*\"version\":2,\"result\":\"applied\"" 10
as portal -t "$P/booking/request" -q 1 -D publish response-topic portal/replies/florac -D publish correlation-data r1 -m \
    '{"op":"book","member":"m-1","resource":"desk-1","from":"'"$(now_iso '+1 day')"'","to":"'"$(now_iso '+1 day 2 hours')"'"}'
mqtt_wait_msg "$all" " portal/replies/florac r1|{\"result\":\"accepted\"" 10
as portal -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso)\",\"by\":\"manager-07\"}"
wait_for "gpio GPIO17=1" 5 $((pulses + 1))
wait_for "in granted remote by=manager-07" 5
pass "the portal's sync, booking request and unlock are carried out (the checks above could see them)"

# ---- a site's user cannot speak for another site ----
as florac -t telecentre/mende/door/entrance/unlock -q 1 -m "{\"at\":\"$(now_iso)\",\"by\":\"florac\"}" || true
as florac -t telecentre/mende/access -q 1 -m '{"seq":1,"result":"granted","reason":"booking","member":"m-1"}' || true
as florac -t telecentre/mende/sync -q 1 -m '{"version":1,"ops":[]}' || true
as mende -t telecentre/mende/status -q 1 -m 'barrier' || fail "mende cannot publish on its own topic"
mqtt_wait_msg "$all" " telecentre/mende/status |barrier\$" 10
grep -q " telecentre/mende/door/entrance/unlock \| telecentre/mende/access \| telecentre/mende/sync " "$all" &&
    fail "the florac user published on mende's topics"
pass "the site's user cannot publish on another site's topics (unlock, access event, sync): the broker drops them"

# ---- retained sync batches are not applied ----
as portal -t "$P/sync" -q 1 -r -m '{"version":3,"ops":[{"op":"upsert","member":{"id":"m-3","name":"Retained Ghost"}}]}'
mqtt_wait_msg "$all" " $P/sync/ack .*\"version\":3,\"result\":\"rejected\",\"error\":\"retained message" 10
grep -q "warning: mqtt: sync rejected: retained message" "$log" || fail "no warning for a retained sync"
ctl member show m-3 >/dev/null 2>&1 && fail "a retained sync batch was applied"
# Stored on the broker: delivered again at the next subscription, and refused again.
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon exited non-zero at SIGTERM"
daemon_pid=
start_daemon
mqtt_wait_msg "$all" " $P/sync/ack .*\"version\":3,\"result\":\"rejected\",\"error\":\"retained message" 15 2
ctl member show m-3 >/dev/null 2>&1 && fail "a retained sync batch was applied after a restart"
as portal -t "$P/sync" -q 1 -r -n      # clears it
as portal -t "$P/sync" -q 1 -m '{"version":3,"ops":[{"op":"upsert","member":{"id":"m-3","name":"Live Now"}}]}'
mqtt_wait_msg "$all" " $P/sync/ack .*\"version\":3,\"result\":\"applied\"" 10
pass "a retained sync batch is refused with a 'rejected' ack (live and when stored before the subscription); the same batch sent live is applied"

kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon exited non-zero at SIGTERM"
daemon_pid=
echo "security_mqtt: all checks passed"
