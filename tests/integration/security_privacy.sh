#!/usr/bin/env bash
# docs/security.md, "Badge UIDs and names": a full day of a site through the daemon, with a real broker,
# run twice, at the default log level and with -v (debug):
#   grants (booking, walk-in, keyholder, exit), denials (unknown badge, revoked, suspended), a sync that
#   adds members with names and badges, a malformed sync whose parse error stops on a name and one that
#   stops on a UID, booking requests (accepted and refused), a remote unlock, a reload, a reader lost and
#   back, a malformed reader line;
# then greps the daemon's whole output and every payload published on '#' for every badge UID (upper and
# lower case, with and without colons) and every member name:
#   - default level: no UID and no name in the log; no UID and no full name or surname in any payload
#     (occupancy may carry "Alice M.", the first name and initial of a member who opted in);
#   - debug: names still never; UIDs do appear (the tap lines), which is what -v is documented to add,
#     and shows that the grep finds them when they are there.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
. "$(dirname "$0")/../lib/mqtt-test.sh"
setup_work security-privacy
command -v python3 >/dev/null || fail "python3 is needed"

site=priv
P=telecentre/$site
ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }
tap() { write_fifo "$work/reader-$1.fifo" "$2"$'\n'; }
now_iso() { date -u -d "${1:-now}" +%FT%TZ; }
local_time() { TZ=Europe/Paris date -d "$1" '+%Y-%m-%d %H:%M'; }

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

[door.entrance]
relay = GPIO17
unlock_ms = 200

[reader.entrance]
driver = sim
fifo = $work/reader-entrance.fifo

[reader.exit]
driver = sim
fifo = $work/reader-exit.fifo
direction = out

[gpio]
driver = sim
fifo = $work/gpio.fifo

[mqtt]
host = 127.0.0.1
port = $mqtt_port
keepalive_s = 5
EOF

# Every name and UID of the run. Names: full names, and surnames alone.
names=("Alice Martin" "Martin" "Bruno Petit" "Petit" "Kim Keys" "Keys" "Sam Suspendu" "Suspendu"
       "Chloé Vernet" "Vernet" "Zoé Malformed" "Malformed" "Rémi Revoked" "Revoked")
uids=(04A1B2C3 04B2C3D4 04C0FFEE 04DEAD99 04BADBAD 04C10E00000001 04D00D00)
uid_spellings() {   # every UID as upper/lower case, with and without colons
    local u
    for u in "${uids[@]}"; do
        local colons
        colons=$(sed 's/../&:/g; s/:$//' <<<"$u")
        printf '%s\n' "$u" "${u,,}" "$colons" "${colons,,}"
    done
}

run_day() {   # run_day SUFFIX [DAEMON_ARG...]: one full scenario on a fresh database
    local sfx=$1
    shift
    rm -f "$work/site.db" "$work/site.db-wal" "$work/site.db-shm"
    ctl init >/dev/null
    ctl member add m-1 --name "Alice Martin" --visible >/dev/null
    ctl member add m-2 --name "Bruno Petit" >/dev/null
    ctl member add k-1 --name "Kim Keys" --role keyholder >/dev/null
    ctl member add m-4 --name "Sam Suspendu" >/dev/null
    ctl member add m-5 --name "Rémi Revoked" >/dev/null
    ctl badge add 04:a1:b2:c3 --member m-1 >/dev/null
    ctl badge add 04B2C3D4 --member m-2 >/dev/null
    ctl badge add 04c0ffee --member k-1 >/dev/null
    ctl badge add 04DEAD99 --member m-4 >/dev/null
    ctl badge add 04BADBAD --member m-5 >/dev/null
    ctl badge revoke 04BADBAD >/dev/null
    ctl member suspend m-4 >/dev/null
    ctl resource add desk-1 --kind desk >/dev/null
    ctl resource add desk-2 --kind desk >/dev/null
    ctl resource add desk-3 --kind desk >/dev/null
    ctl book --member m-1 --resource desk-1 --from "$(local_time '-5 min')" --to "$(local_time '+3 hours')" >/dev/null

    log=$work/daemon-$sfx.log
    mqtt_sub "all-$sfx" -t '#' -q 1 -F '%t %p'
    local out=$mqtt_sub_file
    "$TELECENTRED" -c "$conf" "$@" 2>"$log" &
    daemon_pid=$!
    wait_for "started: site $site" 10
    mqtt_wait_msg "$out" "^$P/status online\$" 15
    mqtt_wait_subscribed "telecentred-$site" "$P/door/+/unlock" 10 "$n_starts"

    tap entrance 04A1B2C3                       # booking, opted in: occupancy shows "Alice M."
    wait_for "in granted booking member=m-1" 5
    tap entrance 04:b2:c3:d4                    # walk-in
    wait_for "in granted walk_in member=m-2" 5
    tap entrance 04C0FFEE                       # keyholder
    wait_for "in granted keyholder member=k-1" 5
    tap entrance 04DEAD99                       # suspended
    wait_for "in denied member_suspended member=m-4" 5
    tap entrance 04badbad                       # revoked
    wait_for "in denied badge_revoked member=m-5" 5
    tap entrance 04F00F00F00F00                 # unknown (not one of $uids: the log may say nothing of it either)
    wait_for "in denied unknown_badge" 5
    tap exit 04B2C3D4                           # check-out
    wait_for "reader=exit out granted check_out member=m-2" 5
    tap entrance "04A1B2C3 Alice"               # a malformed reader line
    wait_for "ignored a malformed badge UID" 5

    # (One line: the subscriber's file is read line by line.)
    mqtt_pub -t "$P/sync" -q 1 -m '{"version":1,"ops":[{"op":"upsert","member":{"id":"m-6","name":"Chloé Vernet","presence_visible":false}},{"op":"upsert","badge":{"uid":"04:c1:0e:00:00:00:01","member":"m-6"}}]}'
    wait_for "sync version 1 applied" 10
    tap entrance 04C10E00000001
    wait_for "in granted walk_in member=m-6" 5
    # Parse errors that stop on a name and on a UID: the ack and the log say where, not what.
    mqtt_pub -t "$P/sync" -q 1 -m '{"version":2,"ops":[{"op":"upsert","member":{"id":"m-9" "Zoé Malformed"}}]}'
    mqtt_pub -t "$P/sync" -q 1 -m '{"version":2,"ops":[{"op":"delete","badge":{"uid" "04D00D00"}}]}'
    wait_for "sync rejected: malformed JSON" 10 2
    mqtt_pub -t "$P/booking/request" -q 1 -m \
        '{"op":"book","member":"m-2","resource":"desk-2","from":"'"$(now_iso '+1 day')"'","to":"'"$(now_iso '+1 day 2 hours')"'"}'
    wait_for "booking request accepted" 10
    mqtt_pub -t "$P/booking/request" -q 1 -m '{"op":"book","member":"m-404","resource":"desk-2","from":"x","to":"y"}'
    wait_for "booking request refused" 10
    mqtt_pub -t "$P/door/entrance/unlock" -q 1 -m "{\"at\":\"$(now_iso)\",\"by\":\"manager-07\"}"
    wait_for "in granted remote by=manager-07" 10
    kill -HUP "$daemon_pid"
    wait_for "reloaded" 10
    tap entrance '!unplug'
    wait_for "reader entrance: lost" 10
    tap entrance '!plug'
    wait_for "reader entrance: back in service" 10
    tap entrance 04A1B2C3
    wait_for "in granted booking member=m-1" 5 2
    mqtt_wait_msg "$out" "^$P/occupancy .*\"members\":\[\"Alice M.\"\]" 10
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || fail "the daemon exited non-zero at SIGTERM"
    daemon_pid=
    mqtt_sub_stop
    n_starts=$((n_starts + 1))
    # What the daemon published: everything but the test's own commands (the portal's sync batches do
    # carry names and UIDs) and the subscriber's probes.
    payloads=$work/published-$sfx.out
    grep -v "^$P/sync \|^$P/booking/request \|^$P/door/[^/]*/unlock \|^mqtt-test/" "$out" >"$payloads"
    grep -q "^$P/sync .*Chloé Vernet" "$out" || fail "the subscriber did not see the sync batch (so it would miss a leak too)"
}
n_starts=1

# found FILE: the UIDs (any spelling) and names in FILE, one per line.
found_uids() { uid_spellings | grep -o -F -f - "$1" | sort -u || true; }
found_names() { printf '%s\n' "${names[@]}" | grep -o -F -f - "$1" | sort -u || true; }

# ---- default level ----
run_day info
[[ -z $(found_uids "$log") ]] || fail "badge UIDs in the log at the default level: $(found_uids "$log" | tr '\n' ' ')"
[[ -z $(found_names "$log") ]] || fail "member names in the log at the default level: $(found_names "$log" | tr '\n' ' ')"
grep -q "debug:" "$log" && fail "debug lines at the default level"
[[ -z $(found_uids "$payloads") ]] || fail "badge UIDs in published payloads: $(found_uids "$payloads" | tr '\n' ' ')"
[[ -z $(found_names "$payloads") ]] || fail "member names in published payloads: $(found_names "$payloads" | tr '\n' ' ')"
grep -q "^$P/sync/ack .*malformed JSON" "$payloads" || fail "the malformed batches were not acknowledged"
pass "default level: $(wc -l <"$log") log lines and $(wc -l <"$payloads") payloads hold no badge UID (any spelling) and no member name (occupancy: \"Alice M.\" only)"

# ---- debug ----
run_day debug -v
[[ -z $(found_names "$log") ]] || fail "member names in the log at debug level: $(found_names "$log" | tr '\n' ' ')"
[[ -z $(found_names "$payloads") ]] || fail "member names in published payloads: $(found_names "$payloads" | tr '\n' ' ')"
[[ -z $(found_uids "$payloads") ]] || fail "badge UIDs in published payloads: $(found_uids "$payloads" | tr '\n' ' ')"
grep -q "debug: reader entrance: tap 04A1B2C3" "$log" || fail "no tap line with the UID at debug level"
pass "debug (-v): still no member name anywhere; badge UIDs appear only in debug lines ($(grep -c "debug: reader .*: tap" "$log") tap lines)"
grep -v "debug:" "$log" >"$work/above-debug.log"
[[ -z $(found_uids "$work/above-debug.log") ]] || fail "a UID in a line above debug with -v: $(found_uids "$work/above-debug.log")"
pass "debug (-v): every line that holds a UID is a debug line"

echo "security_privacy: all checks passed"
