#!/usr/bin/env bash
# Reload on SIGHUP, end to end on simulated hardware. A good new configuration takes effect (a longer
# unlock_ms, a new reader on its own FIFO, another database); a bad one is refused with FILE:LINE in the
# log and the daemon keeps deciding with the running one; one that parses but cannot be started (a
# reader FIFO in a directory that does not exist) falls back to the running one; and when even that
# cannot be started again, the daemon exits 1 with the relay off. Door safety: a relay pulse in progress
# ends at the reload, no output is ever driven on during a reload, and a tap right after one works.
# The sim GPIO logs every output change, so the relay's whole history is in the log.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
setup_work reload

ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }
tap() { write_fifo "$1" "$2"$'\n'; }

mkdir -p "$work/fifos"
entrance_fifo=$work/fifos/entrance.fifo
side_fifo=$work/fifos/side.fifo

# write_conf UNLOCK_MS DATABASE [SIDE_READER_FIFO]
write_conf() {
    cat >"$conf" <<EOF
[site]
id = reload-site
timezone = Europe/Paris

[database]
path = $2

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
led_green = GPIO5
led_red = GPIO6
unlock_ms = $1

[reader.entrance]
driver = sim
fifo = $entrance_fifo
door = entrance

[gpio]
driver = sim
fifo = $work/gpio.fifo
EOF
    if [[ -n ${3:-} ]]; then
        printf '\n[reader.side]\ndriver = sim\nfifo = %s\ndoor = entrance\n' "$3" >>"$conf"
    fi
}

# relay_pulse_s: waits for the next relay pulse (on, then off) and prints how long it lasted, in seconds,
# as seen from here: an observation delay makes it shorter, never longer, so it is a lower bound.
relay_on=0
relay_pulse_s() {
    relay_on=$((relay_on + 1))
    local off
    off=$(count "gpio GPIO17=0")
    wait_for "gpio GPIO17=1" 10 "$relay_on"
    local t_on=$EPOCHREALTIME
    wait_for "gpio GPIO17=0" 15 $((off + 1))
    local t_off=$EPOCHREALTIME
    awk -v a="$t_on" -v b="$t_off" 'BEGIN { printf "%.2f\n", b - a }'
}

# at_least VALUE MIN: VALUE >= MIN, as decimals.
at_least() { awk -v v="$1" -v m="$2" 'BEGIN { exit !(v >= m) }'; }

# reload PATTERN: SIGHUP, then waits for PATTERN (the reload's outcome) in the log.
reload() {
    local n
    n=$(count "$1")
    kill -HUP "$daemon_pid"
    wait_for "$1" 15 $((n + 1))
}

db1=$work/site.db
db2=$work/other.db
write_conf 2000 "$db2"
ctl init >/dev/null     # another site's database: nobody in it
write_conf 2000 "$db1"
ctl init >/dev/null
ctl member add k-1 --name Kim --role keyholder >/dev/null
ctl badge add 04112233 --member k-1 >/dev/null

"$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
wait_for "telecentred .* started: site reload-site, 1 door, 1 reader" 10

# ---- a good new configuration, while a relay pulse is in progress ----
tap "$entrance_fifo" 04112233
wait_for "reader=entrance in granted keyholder" 5
relay_on=1
wait_for "gpio GPIO17=1" 5 1
write_conf 4000 "$db1" "$side_fifo"
reload "reloaded:"
grep -q "reloaded: door entrance changed; reader side added (1 door, 2 readers)" "$log" ||
    fail "the reload did not say what changed: $(grep 'reloaded:' "$log")"
# The pulse was on when the reload began and was ended by it, not by its own timeout.
awk '/gpio GPIO17=/ { on = ($NF ~ /=1$/) }
     /reloading the configuration/ { exit !on }' "$log" || fail "the relay pulse was not in progress at the reload"
awk '/reloading the configuration/ { r = 1 }
     r && /unlocked -> locked \(timeout\)/ { exit 1 }
     r && /gpio GPIO17=0/ { exit 0 }' "$log" || fail "the pulse was not ended by the reload"
pass "good configuration applied, the pulse in progress ended by the reload"

# ---- a tap right after it, on the new reader: the new unlock_ms (4000 ms, was 2000) ----
tap "$side_fifo" 04112233
wait_for "reader=side in granted keyholder" 5
d=$(relay_pulse_s)
at_least "$d" 3.0 || fail "the relay pulse lasted ${d}s: the new unlock_ms was not applied"
pass "tap right after the reload on the new reader works, pulse ${d}s with the new unlock_ms"

# ---- a bad configuration: refused with FILE:LINE, the running one kept ----
sed -i 's/^unlock_ms = 4000$/unlock_ms = soon/' "$conf"
bad_line=$(grep -n '^unlock_ms = soon$' "$conf" | cut -d: -f1)
reload "reload refused:"
grep -q "reload refused: $conf:$bad_line: .*unlock_ms.*; keeping the running configuration" "$log" ||
    fail "the refusal lacks FILE:LINE and the key: $(grep 'reload refused' "$log")"
tap "$side_fifo" 04112233
wait_for "reader=side in granted keyholder" 5 2
d=$(relay_pulse_s)
at_least "$d" 3.0 || fail "after a refused reload the pulse lasted ${d}s, not the running 4000 ms"
pass "bad configuration refused ($(grep -o 'reload refused: .*' "$log" | tail -n 1 | cut -c1-90)...), taps decided with the running one"

# ---- one that parses but cannot be started: back to the running one ----
write_conf 2000 "$db2" "$work/no-such-dir/side.fifo"
reload "reload failed: still running the previous configuration"
grep -q "reader side: cannot open $work/no-such-dir/side.fifo" "$log" || fail "the start failure was not logged"
tap "$side_fifo" 04112233
wait_for "reader=side in granted keyholder" 5 3
d=$(relay_pulse_s)
at_least "$d" 3.0 || fail "after a failed reload the pulse lasted ${d}s, not the previous 4000 ms"
pass "a configuration that cannot start: previous one (and its database) running again"

# ---- another database ----
write_conf 2000 "$db2" "$side_fifo"
reload "reloaded:"
grep -q "reloaded: database $db1 -> $db2; door entrance changed" "$log" || fail "$(grep 'reloaded:' "$log" | tail -n 1)"
tap "$entrance_fifo" 04112233
wait_for "reader=entrance in denied unknown_badge" 5
write_conf 2000 "$db1" "$side_fifo"
reload "reloaded:"
tap "$entrance_fifo" 04112233
wait_for "reader=entrance in granted keyholder" 5 2
relay_pulse_s >/dev/null
pass "a new [database] path is opened by a reload (and the old one again)"

# ---- no output ever driven on during a reload ----
awk '/reloading the configuration/ { r = 1; next }
     r && /gpio GPIO[0-9]*=1/ { print "on during a reload: " $0; bad = 1 }
     r && /gpio GPIO17=/ { relay = $NF }
     r && /reloaded:|reload refused:|still running the previous/ {
         r = 0; n++
         if (relay ~ /=1$/) { print "relay left on at: " $0; bad = 1 }
     }
     END { if (n < 5) { print "only " n " reloads seen"; bad = 1 } exit bad }' "$log" >"$work/safety.txt" ||
    fail "door safety across reloads: $(cat "$work/safety.txt")"
pass "no output driven on during any of the reloads"

# ---- neither the new nor the previous configuration can start: exit 1, relay safe ----
tap "$side_fifo" 04112233
wait_for "reader=side in granted keyholder" 5 4
wait_for "gpio GPIO17=1" 5 $((relay_on + 1))
write_conf 2000 "$db1" "$work/no-such-dir/side.fifo"
rm -rf "$work/fifos"    # the running configuration's readers cannot be opened again either
kill -HUP "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=
((status == 1)) || fail "exit status $status when no configuration can start, expected 1"
grep -q "cannot start the previous configuration again either: exiting with every relay safe" "$log" ||
    fail "no fatal reload message"
last=$(grep -o "gpio GPIO17=[01]" "$log" | tail -n 1)
[[ $last == "gpio GPIO17=0" ]] || fail "the relay was left at '$last'"
pass "no configuration can start: exit 1 with the relay off"
