#!/usr/bin/env bash
# The MQTT session end to end with a real mosquitto on loopback and real mosquitto_sub clients:
# the broker down at start (taps still decided, the daemon connects once it comes up); the status topic
# ("online" retained, "offline" through the last will on SIGKILL and published on a clean SIGTERM);
# retained occupancy after taps; retained door state and door alarms; Home Assistant discovery (and
# none with ha_discovery = false); a removed resource cleared; TLS with a CA, server and client
# certificates made here with openssl (the broker requires a client certificate) plus a password file;
# a password file its group may read refused at start. docs/mqtt.md is the contract.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
. "$(dirname "$0")/../lib/mqtt-test.sh"
setup_work mqtt-session

site=sess.site
P=telecentre/$site
node=telecentred_sess_site      # the site id with '.' replaced by '_'
mqtt_require
mqtt_port=$(mqtt_free_port)     # chosen now: the daemon starts before the broker

tap() { write_fifo "$work/reader-$1.fifo" "$2"$'\n'; }
gpio_input() { write_fifo "$work/gpio.fifo" "$1"$'\n'; }
ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }

# write_conf [EXTRA_MQTT_LINE...]
write_conf() {
    cat >"$conf" <<EOF
[site]
id = $site
name = Session test site
timezone = Europe/Paris
capacity = 10

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
held_open_s = 1

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
    local line
    for line in "$@"; do echo "$line" >>"$conf"; done
}

start_daemon() {
    : >"$log"
    "$TELECENTRED" -c "$conf" 2>"$log" &
    daemon_pid=$!
    wait_for "telecentred .* started: site $site" 10
}

stop_daemon() {
    local sig=${1:-TERM} status
    kill -"$sig" "$daemon_pid"
    set +e
    wait "$daemon_pid" 2>/dev/null     # no "Killed" line from bash for SIGKILL
    status=$?
    set -e
    daemon_pid=
    if [[ $sig == TERM ]]; then
        ((status == 0)) || fail "daemon exited $status on SIGTERM"
    fi
}

# json_field FILE TOPIC EXPR: evaluates a Python expression on the last JSON payload (as j) on TOPIC.
json_field() {
    mqtt_last_payload "$1" "$2" | python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$3"
}

write_conf
ctl init >/dev/null
ctl member add m-1 --name "Zoltan Brightwater" >/dev/null
ctl member add m-2 --name "Ysolde Marchbanks" >/dev/null
ctl member add k-1 --name "Kim Keyholder" --role keyholder >/dev/null
ctl badge add 04A1B2C3 --member m-1 >/dev/null
ctl badge add 04D5E6F7 --member m-2 >/dev/null
ctl badge add 04112233 --member k-1 >/dev/null
for d in 1 2 3; do ctl resource add "desk-0$d" --kind desk --name "Desk $d" >/dev/null; done
ctl resource add salle-1 --kind room --name "Meeting room" >/dev/null
pass "database made with telecentrectl"

# ---- the broker is down at start: doors are decided all the same ----
start_daemon
wait_for "mqtt: connecting to 127.0.0.1:$mqtt_port in the background" 5
tap entrance 04112233
wait_for "access seq=[0-9]* door=entrance reader=entrance in granted keyholder member=k-1" 5
wait_for "mqtt: 127.0.0.1:$mqtt_port: cannot connect" 10
pass "broker down at start: the daemon runs and decides taps; the failed connect logged once"

mqtt_broker_start
wait_for "mqtt: connected to 127.0.0.1:$mqtt_port as telecentred-$site" 30
pass "connected once the broker came up (backoff)"

# ---- status online, retained ----
# The "connected" line can come before the session thread has sent "online" (under valgrind, by far): a
# first subscriber may get it live. Once one has it, the broker holds it, and a second one must get it
# retained.
mqtt_sub status0 -t "$P/status" -q 1
mqtt_wait_msg "$mqtt_sub_file" "^[^ ]* [01] 1 $P/status online$" 10
mqtt_sub_stop
mqtt_sub status -t "$P/status" -q 1
mqtt_wait_msg "$mqtt_sub_file" "^[^ ]* 1 1 $P/status online$" 10
pass "status: online, retained, QoS 1"

# ---- retained occupancy after taps (subscribed after them) ----
tap entrance 04A1B2C3
wait_for "reader=entrance in granted walk_in member=m-1" 5
tap entrance 04D5E6F7
wait_for "reader=entrance in granted walk_in member=m-2" 5
# Published as soon as the tap is decided: wait for the daemon to be past the second tap's publish by
# watching a live subscriber, then subscribe anew and read it retained.
mqtt_sub live -t "$P/occupancy" -t "$P/door/+/state" -t "$P/alarm" -t "$P/resource/+/state" -q 1
mqtt_wait_msg "$mqtt_sub_file" " $P/occupancy {.*\"present\":3" 10
mqtt_sub_stop
mqtt_sub occ -t "$P/occupancy" -q 1
mqtt_wait_msg "$mqtt_sub_file" "^[^ ]* 1 1 $P/occupancy {" 10
[[ $(json_field "$mqtt_sub_file" "$P/occupancy" 'j["present"]') == 3 ]] ||
    fail "retained occupancy: present is not 3: $(mqtt_last_payload "$mqtt_sub_file" "$P/occupancy")"
[[ $(json_field "$mqtt_sub_file" "$P/occupancy" 'j["desks"]["occupied"], j["desks"]["free"], j["capacity"]') == "(2, 1, 10)" ]] ||
    fail "retained occupancy: desks wrong: $(mqtt_last_payload "$mqtt_sub_file" "$P/occupancy")"
pass "occupancy retained after taps: present 3, 2 desks occupied, 1 free"

mqtt_sub res -t "$P/resource/+/state" -q 1
mqtt_wait_topic "$mqtt_sub_file" "$P/resource/salle-1/state" 10
occupied=$(grep -c "^[^ ]* 1 1 $P/resource/desk-0[123]/state {\"state\":\"occupied\",\"until\":\"[0-9T:-]*Z\",\"booking\":\"b-[0-9]*\"}$" "$mqtt_sub_file" || true)
((occupied == 2)) || fail "expected 2 retained occupied desk states, got $occupied"
grep -q "^[^ ]* 1 1 $P/resource/salle-1/state {\"state\":\"free\",\"until\":null,\"booking\":null}$" "$mqtt_sub_file" ||
    fail "the free room's retained state is wrong"
pass "resource states retained: occupied desks with until and booking, the free room with nulls"

# ---- door state and door alarms ----
mqtt_sub door -t "$P/door/entrance/state" -t "$P/alarm" -q 1
mqtt_wait_msg "$mqtt_sub_file" "^[^ ]* 1 1 $P/door/entrance/state {\"state\":\"locked\",\"since\":\"[0-9T:-]*Z\"}$" 10
gpio_input "GPIO27 1"
wait_for "door entrance: locked -> forced (contact_open)" 5
mqtt_wait_msg "$mqtt_sub_file" " $P/door/entrance/state {\"state\":\"forced\"" 10
mqtt_wait_msg "$mqtt_sub_file" " $P/alarm {\"seq\":[0-9]*,\"at\":\"[0-9T:-]*Z\",\"alarm\":\"forced\",\"active\":true,\"door\":\"entrance\",\"reader\":null" 10
gpio_input "GPIO27 0"
wait_for "door entrance: forced -> locked (contact_closed)" 5
mqtt_wait_msg "$mqtt_sub_file" " $P/alarm {.*\"alarm\":\"forced\",\"active\":false" 10
mqtt_wait_msg "$mqtt_sub_file" " $P/door/entrance/state {\"state\":\"locked\"" 10 2
mqtt_sub_stop
mqtt_sub door2 -t "$P/door/entrance/state" -q 1
mqtt_wait_msg "$mqtt_sub_file" "^[^ ]* 1 1 $P/door/entrance/state {\"state\":\"locked\"" 10
pass "door state retained on every transition; forced alarm active true, then false"

# ---- Home Assistant discovery ----
mqtt_sub ha -t "homeassistant/#" -q 1
for t in sensor/$node/present sensor/$node/desks_free sensor/$node/door_entrance sensor/$node/resource_desk-01 \
    sensor/$node/resource_salle-1 binary_sensor/$node/online; do
    mqtt_wait_topic "$mqtt_sub_file" "homeassistant/$t/config" 10
done
[[ $(json_field "$mqtt_sub_file" "homeassistant/sensor/$node/present/config" \
    'j["unique_id"], j["state_topic"], j["value_template"], j["availability_topic"], j["device"]["identifiers"]') == \
    "('${node}_present', '$P/occupancy', '{{ value_json.present }}', '$P/status', ['$node'])" ]] ||
    fail "present config: $(mqtt_last_payload "$mqtt_sub_file" "homeassistant/sensor/$node/present/config")"
[[ $(json_field "$mqtt_sub_file" "homeassistant/sensor/$node/desks_free/config" 'j["value_template"]') == \
    "{{ value_json.desks.free }}" ]] || fail "desks_free config has the wrong template"
[[ $(json_field "$mqtt_sub_file" "homeassistant/sensor/$node/door_entrance/config" 'j["state_topic"]') == \
    "$P/door/entrance/state" ]] || fail "door config has the wrong state topic"
[[ $(json_field "$mqtt_sub_file" "homeassistant/binary_sensor/$node/online/config" \
    'j["state_topic"], j["payload_on"], j["payload_off"], j["device_class"], "availability_topic" in j') == \
    "('$P/status', 'online', 'offline', 'connectivity', False)" ]] || fail "online config is wrong"
[[ $(json_field "$mqtt_sub_file" "homeassistant/sensor/$node/present/config" 'j["device"]["name"]') == \
    "Telecentre Session test site" ]] || fail "device name is wrong"
pass "Home Assistant discovery: present, desks_free, door, resources, online (retained)"

# ---- a removed resource: empty retained payloads clear its state and its discovery config ----
mqtt_sub rm -t "$P/resource/desk-03/state" -t "homeassistant/sensor/$node/resource_desk-03/config" -q 1
mqtt_wait_topic "$mqtt_sub_file" "$P/resource/desk-03/state" 10
ctl resource remove desk-03 >/dev/null
wait_for "mqtt: resource desk-03 removed" 15
mqtt_wait_msg "$mqtt_sub_file" " $P/resource/desk-03/state $" 10
mqtt_wait_msg "$mqtt_sub_file" " homeassistant/sensor/$node/resource_desk-03/config $" 10
mqtt_sub_stop
mqtt_sub rm2 -t "$P/resource/#" -t "homeassistant/sensor/$node/#" -q 1
mqtt_wait_topic "$mqtt_sub_file" "$P/resource/desk-01/state" 10
mqtt_wait_topic "$mqtt_sub_file" "homeassistant/sensor/$node/resource_desk-01/config" 10
(($(mqtt_count_topic "$mqtt_sub_file" "$P/resource/desk-03/state") == 0)) || fail "desk-03's state is still retained"
(($(mqtt_count_topic "$mqtt_sub_file" "homeassistant/sensor/$node/resource_desk-03/config") == 0)) ||
    fail "desk-03's discovery config is still retained"
mqtt_sub_stop
pass "a resource removed with telecentrectl: its retained state and discovery config cleared (within the 5 s check)"

# ---- nothing published names a badge or a member ----
for f in "$work"/sub-*.out; do
    ! grep -qiE "04A1B2C3|04D5E6F7|04112233|Zoltan|Ysolde|Brightwater|Marchbanks|Keyholder" "$f" ||
        fail "a badge UID or a name was published ($(basename "$f"))"
done
pass "no badge UID and no member name in any payload seen"

# ---- SIGKILL: the broker publishes the last will ----
mqtt_sub will -t "$P/status" -q 1
mqtt_wait_msg "$mqtt_sub_file" " $P/status online$" 10
stop_daemon KILL
mqtt_wait_msg "$mqtt_sub_file" " $P/status offline$" 20
pass "SIGKILL: offline through the last will"

# ---- clean SIGTERM: offline published by the daemon itself ----
start_daemon
mqtt_wait_msg "$mqtt_sub_file" " $P/status online$" 20 2
wait_for "mqtt: connected to" 10
offline_before=$(count " $P/status offline$" "$mqtt_sub_file")
stop_daemon TERM
grep -q "mqtt: published offline and disconnected" "$log" || fail "no 'published offline' line at the clean stop"
mqtt_wait_msg "$mqtt_sub_file" " $P/status offline$" 5 $((offline_before + 1))
mqtt_sub_stop
mqtt_sub after -t "$P/status" -q 1
mqtt_wait_msg "$mqtt_sub_file" "^[^ ]* 1 1 $P/status offline$" 10
mqtt_sub_stop
pass "SIGTERM: offline published (retained) before the daemon exited 0"

# ---- ha_discovery = false: no discovery configs (fresh broker, nothing retained) ----
mqtt_broker_restart
write_conf "ha_discovery = false"
start_daemon
wait_for "mqtt: connected to" 30
mqtt_sub noha -t "homeassistant/#" -t "$P/status" -q 1
mqtt_wait_msg "$mqtt_sub_file" "^[^ ]* [01] 1 $P/status online$" 10     # retained or live (see above)
grep -q " homeassistant/.*/config [^ ]" "$mqtt_sub_file" && fail "discovery configs published with ha_discovery = false"
mqtt_sub_stop
stop_daemon TERM
pass "ha_discovery = false: no discovery config retained"

# ---- TLS: a test CA, a server certificate, a client certificate; plus a user and password ----
tls=$work/tls
mkdir -p "$tls"
(
    cd "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=telecentred test CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 \
        -extfile server.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=telecentred-$site" 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 2>/dev/null
    chmod 600 ./*.key
) || fail "openssl could not make the test certificates"
mosquitto_passwd -b -c "$tls/broker.passwd" site-user 's3cret pass' 2>/dev/null || fail "mosquitto_passwd failed"
chmod 600 "$tls/broker.passwd"
printf 's3cret pass\n' >"$work/mqtt-password"
chmod 600 "$work/mqtt-password"

mqtt_broker_stop
mqtt_broker_start "cafile $tls/ca.crt" "certfile $tls/server.crt" "keyfile $tls/server.key" \
    "require_certificate true" "allow_anonymous false" "password_file $tls/broker.passwd"
mqtt_client_opts=(--cafile "$tls/ca.crt" --cert "$tls/client.crt" --key "$tls/client.key" -u site-user -P 's3cret pass')
write_conf "tls_ca = $tls/ca.crt" "tls_cert = $tls/client.crt" "tls_key = $tls/client.key" \
    "username = site-user" "password_file = $work/mqtt-password"
start_daemon
wait_for "mqtt: connected to 127.0.0.1:$mqtt_port as telecentred-$site (TLS)" 30
mqtt_sub tls -t "$P/status" -t "$P/occupancy" -q 1
mqtt_wait_msg "$mqtt_sub_file" "^[^ ]* [01] 1 $P/status online$" 10     # retained or live (see above)
# Retained, or live when the subscription came first (a slow daemon, e.g. under valgrind, publishes
# occupancy after status); retention itself is checked above.
mqtt_wait_msg "$mqtt_sub_file" "^[^ ]* [01] 1 $P/occupancy {" 10
tap entrance 04112233
wait_for "reader=entrance in granted keyholder member=k-1" 5
mqtt_sub_stop
stop_daemon TERM
pass "TLS with a client certificate and a password: connected, status and occupancy published"

# A client without a certificate is refused by this broker: the daemon keeps trying and keeps deciding.
write_conf "tls_ca = $tls/ca.crt" "username = site-user" "password_file = $work/mqtt-password"
start_daemon
wait_for "mqtt: 127.0.0.1:$mqtt_port: .*; retrying in the background" 20
tap entrance 04112233
wait_for "reader=entrance in granted keyholder member=k-1" 5
kill -0 "$daemon_pid" || fail "the daemon died when the broker refused it"
stop_daemon TERM
pass "refused by the broker (no client certificate): retried in the background, taps still decided"

# ---- a password file its group can read is refused at start ----
write_conf "tls_ca = $tls/ca.crt" "tls_cert = $tls/client.crt" "tls_key = $tls/client.key" \
    "username = site-user" "password_file = $work/mqtt-password"
chmod 640 "$work/mqtt-password"
set +e
timeout 10 "$TELECENTRED" -c "$conf" 2>"$work/refused.log"
status=$?
set -e
((status != 0 && status != 124)) || fail "the daemon started with a group-readable password file (exit $status)"
grep -q "password_file: $work/mqtt-password is readable by its group" "$work/refused.log" ||
    fail "no clear message for a group-readable password file: $(cat "$work/refused.log")"
grep -q "gpio GPIO17=1" "$work/refused.log" && fail "the relay moved during a refused start"
pass "a group-readable password file refused at start: $(grep -o 'password_file: .*' "$work/refused.log")"

# ---- a client key anyone can read is refused at start (its group may read it: 0640 root:ssl-cert) ----
chmod 600 "$work/mqtt-password"
chmod 644 "$tls/client.key"
set +e
timeout 10 "$TELECENTRED" -c "$conf" 2>"$work/refused-key.log"
status=$?
set -e
chmod 600 "$tls/client.key"
((status != 0 && status != 124)) || fail "the daemon started with a world-readable TLS key (exit $status)"
grep -q "tls_key: $tls/client.key is readable by others (mode 0644)" "$work/refused-key.log" ||
    fail "no clear message for a world-readable TLS key: $(cat "$work/refused-key.log")"
grep -q "gpio GPIO17=1" "$work/refused-key.log" && fail "the relay moved during a refused start"
pass "a world-readable TLS key refused at start: $(grep -o 'tls_key: .*' "$work/refused-key.log")"
