#!/usr/bin/env bash
# telecentred end to end on simulated hardware: a database made with telecentrectl, badge taps written
# to the reader FIFOs, door inputs written to the GPIO FIFO, and the daemon's log read back for the
# decisions, the door transitions and every relay change. Waits are bounded polls on the log, never
# fixed sleeps standing in for an event.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
setup_work sim

tap() { write_fifo "$work/reader-$1.fifo" "$2"$'\n'; }
gpio_input() { write_fifo "$work/gpio.fifo" "$1"$'\n'; }

ctl() {
    "$TELECENTRECTL" -c "$conf" "$@"
}

cat >"$conf" <<EOF
[site]
id = test-site
name = Test site
timezone = Europe/Paris
capacity = 2

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
rex = GPIO22
led_green = GPIO5
led_red = GPIO6
buzzer = GPIO13
unlock_ms = 400
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
EOF

# ---- configuration check ----
out=$("$TELECENTRED" -c "$conf" --check-config) || fail "--check-config refused a good file"
[[ $out == "$conf: ok" ]] || fail "--check-config printed '$out'"
pass "check-config accepts a good file"

sed 's/^unlock_ms = 400$/unlock_ms = soon/' "$conf" >"$work/bad.conf"
bad_line=$(grep -n '^unlock_ms = soon$' "$work/bad.conf" | cut -d: -f1)
set +e
err=$("$TELECENTRED" -c "$work/bad.conf" --check-config 2>&1)
status=$?
set -e
((status == 1)) || fail "--check-config on a bad file exited $status, expected 1"
[[ $err == *"$work/bad.conf:$bad_line:"*unlock_ms* ]] || fail "--check-config error lacks FILE:LINE and key: '$err'"
pass "check-config refuses a bad file with FILE:LINE ($err)"

# ---- database ----
local_time() { TZ=Europe/Paris date -d "$1" '+%Y-%m-%d %H:%M'; }
ctl init >/dev/null
ctl member add m-1 --name "Alice Martin" >/dev/null
ctl member add k-1 --name "Kim" --role keyholder >/dev/null
ctl badge add 04:A1:B2:C3 --member m-1 >/dev/null
ctl badge add 04112233 --member k-1 >/dev/null
ctl resource add desk-01 --kind desk >/dev/null
ctl member add m-2 --name "Bruno Walkin" >/dev/null
ctl member add m-3 --name "Chloé Late" >/dev/null
ctl badge add 04000002 --member m-2 >/dev/null
ctl badge add 04000003 --member m-3 >/dev/null
ctl resource add desk-02 --kind desk >/dev/null
ctl resource add desk-03 --kind desk >/dev/null
ctl book --member m-1 --resource desk-01 --from "$(local_time '-5 min')" --to "$(local_time '+3 hours')" >/dev/null
pass "database made with telecentrectl"

# ---- start ----
"$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
wait_for "telecentred .* started: site test-site, 1 door, 2 readers" 10
relay_on=0
relay_off=$(count "gpio GPIO17=0")
((relay_off >= 1)) || fail "the relay was not driven off at start"
pass "daemon started with the relay off"

# Expects exactly one more relay pulse: on, then off again after unlock_ms.
expect_relay_pulse() {
    relay_on=$((relay_on + 1))
    relay_off=$((relay_off + 1))
    wait_for "gpio GPIO17=1" 5 "$relay_on"
    wait_for "gpio GPIO17=0" 5 "$relay_off"
    expect_count "gpio GPIO17=1" "$relay_on"
}

# ---- a booked member ----
tap entrance "04:a1:b2:c3"
wait_for "access seq=[0-9]* door=entrance reader=entrance in granted booking member=m-1 booking=b-" 5
expect_relay_pulse
wait_for "door entrance: unlocked -> locked (timeout)" 5
grep -q "gpio GPIO5=1" "$log" || fail "no green LED on grant"
grep -qi "04A1B2C3" "$log" && fail "a badge UID reached the log above debug level"
pass "booking tap: granted, one relay pulse, relocked after unlock_ms"

# ---- an unknown badge ----
tap entrance "DEADBEEF"
wait_for "reader=entrance in denied unknown_badge" 5
expect_count "gpio GPIO17=1" "$relay_on"
wait_for "gpio GPIO6=1" 5
pass "unknown badge: denied, red LED, no relay pulse"

# ---- a keyholder, UID written in two parts: the partial line waits for its newline ----
write_fifo "$work/reader-entrance.fifo" "0411"
write_fifo "$work/reader-entrance.fifo" "2233"$'\n'
wait_for "reader=entrance in granted keyholder member=k-1" 5
expect_relay_pulse
expect_count "granted keyholder" 1
expect_count "malformed" 0
pass "keyholder: granted (UID split across writes)"

# ---- the exit reader ----
tap exit "04A1B2C3"
wait_for "reader=exit out granted check_out member=m-1" 5
expect_relay_pulse
pass "exit reader: check_out"

# ---- forced door ----
gpio_input "GPIO27 1"
wait_for "door entrance: locked -> forced (contact_open)" 5
wait_for "alarm: door entrance forced" 5
gpio_input "GPIO27 0"
wait_for "door entrance: forced -> locked (contact_closed)" 5
expect_count "gpio GPIO17=1" "$relay_on"
pass "door opened while locked: forced alarm, then locked on close"

# ---- exit button, then the door held open ----
write_fifo "$work/gpio.fifo" $'GPIO22 1\nGPIO22 0\nGPIO27 1\n'
wait_for "door entrance: locked -> unlocked (exit_button)" 5
wait_for "door entrance: unlocked -> open (contact_open)" 5
relay_on=$((relay_on + 1))
relay_off=$((relay_off + 1))
wait_for "gpio GPIO17=1" 5 "$relay_on"
wait_for "gpio GPIO17=0" 5 "$relay_off"       # unlock time over, door still open
wait_for "door entrance: open -> held_open (held_open_timeout)" 5
wait_for "alarm: door entrance held_open" 5
gpio_input "GPIO27 0"
wait_for "door entrance: held_open -> locked (contact_closed)" 5
expect_count "gpio GPIO17=1" "$relay_on"
pass "exit button unlocks; door held open raises the alarm; closing relocks"

# ---- malformed input is logged and ignored ----
tap entrance "not-a-uid"
wait_for "reader entrance: ignored a malformed badge UID" 5
gpio_input "GPIO99 1"
wait_for "no input line GPIO99" 5
gpio_input "GPIO27 maybe"
wait_for "expected \"LINE 0\" or \"LINE 1\"" 5
tap entrance "04112233"                     # still serving after bad input
wait_for "granted keyholder member=k-1" 5 2
expect_relay_pulse
pass "malformed UID and GPIO lines are logged and skipped"

# ---- SIGHUP reloads: the same file changes nothing and the daemon keeps serving (tests/integration/reload.sh
# has the rest) ----
kill -HUP "$daemon_pid"
wait_for "reloaded: no change (1 door, 2 readers)" 5
kill -0 "$daemon_pid" || fail "SIGHUP stopped the daemon"
relay_off=$(count "gpio GPIO17=0")     # the rebuild drives the relay off again
expect_count "gpio GPIO17=1" "$relay_on"
pass "SIGHUP reloads an unchanged configuration"

# ---- the access log through the CLI ----
ctl_log=$(ctl log --limit 50) || fail "telecentrectl log failed"
for want in "booking" "unknown_badge" "keyholder" "check_out"; do
    grep -q -- "$want" <<<"$ctl_log" || fail "telecentrectl log lacks '$want': $ctl_log"
done
pass "telecentrectl log shows the taps"

# ---- capacity: the keyholder is inside (1 of 2); a walk-in fills the site; the next member is refused ----
tap entrance 04000002
wait_for "reader=entrance in granted walk_in member=m-2 booking=b-" 5
expect_relay_pulse
tap entrance 04000003
wait_for "reader=entrance in denied site_full member=m-3" 5
expect_count "gpio GPIO17=1" "$relay_on"
out=$(ctl check 04000003) || fail "telecentrectl check failed"
[[ $out == "denied: site_full" ]] || fail "check on a full site said '$out'"
occupancy=$(ctl --json occupancy)
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["present"] == 2 and d["capacity"] == 2, d' \
    "$occupancy" || fail "occupancy does not show 2 of 2 present: $occupancy"
pass "site_full: denied at capacity (also by check), occupancy 2 of 2"

# ---- repeated denials of one badge lock it out ----
for _ in 1 2 3 4 5; do tap entrance 04BADBAD; done
wait_for "in denied unknown_badge$" 5 6          # the earlier unknown badge, and these five
tap entrance 04BADBAD
wait_for "reader=entrance in denied too_many_attempts" 5
expect_count "gpio GPIO17=1" "$relay_on"
out=$(ctl check 04BADBAD) || fail "telecentrectl check failed"
[[ $out == "denied: too_many_attempts" ]] || fail "check of a locked-out badge said '$out'"
pass "too_many_attempts: the sixth tap of a badge denied five times in a minute (also by check)"

# ---- clean stop, while the relay is energised ----
pulses=$(count "gpio GPIO17=1")
tap entrance 04112233
wait_for "gpio GPIO17=1" 5 $((pulses + 1))
kill -TERM "$daemon_pid"
set +e
wait "$daemon_pid"
status=$?
set -e
daemon_pid=
((status == 0)) || fail "daemon exited $status on SIGTERM, expected 0"
grep -q "stopping (signal TERM)" "$log" || fail "no 'stopping (signal TERM)' line"
for line in GPIO17 GPIO5 GPIO6 GPIO13; do
    last=$(grep -o "gpio $line=[01]" "$log" | tail -n 1)
    [[ $last == "gpio $line=0" ]] || fail "$line not left off at exit (last: '$last')"
done
grep -o "gpio GPIO17=[01]" "$log" | tail -n 1 | grep -q "=0" || fail "relay not safe"
sed -n '/stopping (signal TERM)/,$p' "$log" | grep -q "gpio GPIO17=0" ||
    fail "the relay, energised at SIGTERM, was not driven off at stop"
pass "SIGTERM during an unlock: exit 0, relay and every output driven off"

echo "daemon_sim: all checks passed"
