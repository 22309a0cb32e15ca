#!/usr/bin/env bash
# The PN532 emulator (tests/rigs/pn532_emu.c) through the REAL libnfc: Debian's nfc-list must list the
# card we put in the field (4, 7 and 10-byte UIDs), find nothing without one, and work again after the
# reader is unplugged and plugged back; nfc_probe (tests/rigs/nfc_probe.c, a select / presence loop like a
# door daemon's) must see cards arrive and leave (MIFARE Classic, Ultralight, DESFire, a card swapped for
# another), a mute chip as a timeout that does not hang, an unplugged reader as an error, a reopen once it
# is back, and a chip reset in place. Every wait is a bounded poll on a file, never a fixed sleep.
set -euo pipefail

: "${PN532_EMU:?set PN532_EMU to the pn532_emu binary}"
NFC_PROBE=${NFC_PROBE:-$(dirname "$PN532_EMU")/nfc_probe}
command -v nfc-list >/dev/null ||
    { echo "pn532_emu.sh: nfc-list is missing (Debian package libnfc-bin, see scripts/lib/deps.sh)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tc-pn532.XXXXXX")
link=$work/reader
ctl=$work/control
events=$work/events
probe_out=$work/probe.out
emu_pid=
probe_pid=

cleanup() {
    local pid
    for pid in "$probe_pid" "$emu_pid"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$events" "$probe_out" "$work/emu.err" "$work/nfc-list.out"; do
        if [[ -s $f ]]; then
            echo "---- $(basename "$f") ----" >&2
            tail -n 40 "$f" >&2
        fi
    done
    exit 1
}

pass() {
    echo "ok: $*"
}

lines() {
    if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi
}

# wait_line FILE FROM REGEX [TIMEOUT_S]: until a line after line FROM of FILE matches REGEX (extended);
# prints that line.
wait_line() {
    local file=$1 from=$2 regex=$3 timeout=${4:-10} line
    local deadline=$((SECONDS + timeout))
    while :; do
        if line=$(tail -n +"$((from + 1))" "$file" 2>/dev/null | grep -E -m1 -- "$regex"); then
            echo "$line"
            return 0
        fi
        ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for /$regex/ in $(basename "$file")"
        kill -0 "$emu_pid" 2>/dev/null || fail "the emulator exited while waiting for /$regex/"
        sleep 0.02
    done
}

# control LINE: one command to the emulator (the FIFO stays open on fd 7).
control() {
    echo "$1" >&7
}

nfc_list() {
    LIBNFC_DEVICE=pn532_uart:$link LIBNFC_INTRUSIVE_SCAN=false timeout 30 nfc-list \
        >"$work/nfc-list.out" 2>&1 || true
}

# "04  a1  b2  c3" in nfc-list's output, as "04A1B2C3"
listed_uids() {
    sed -n 's/.*UID (NFCID1): //p' "$work/nfc-list.out" | tr -d ' ' | tr '[:lower:]' '[:upper:]'
}

"$PN532_EMU" --link "$link" --control "$ctl" --events "$events" 2>"$work/emu.err" &
emu_pid=$!
wait_line "$events" 0 '^[0-9]+ ready /dev/pts/[0-9]+$' >/dev/null
exec 7>"$ctl"
[[ -L $link && -c $link ]] || fail "the link $link is not a symlink to a character device"
pass "emulator ready on $(readlink "$link")"

# ---- bad arguments ---------------------------------------------------------------------------------------
if "$PN532_EMU" --link "$work/x" 2>"$work/usage.err"; then fail "no --control was accepted"; fi
grep -q -- '--control' "$work/usage.err" || fail "no clear message for a missing --control"
if "$PN532_EMU" --link "$work/x" --control "$work/y" --baud fast 2>"$work/usage.err"; then
    fail "--baud fast was accepted"
fi
pass "bad arguments: non-zero exit with a message"

# ---- the protocol itself, byte by byte (what libnfc never exercises) ------------------------------------
python3 - "$link" "$ctl" <<'PY' || fail "protocol checks"
import os, select, sys, time, tty

link, ctl = sys.argv[1], sys.argv[2]
fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)
ACK = bytes.fromhex("0000ff00ff00")

def frame(cmd, data=b""):
    body = bytes([0xD4, cmd]) + data
    return b"\x00\x00\xff" + bytes([len(body), -len(body) & 0xFF]) + body + bytes([-sum(body) & 0xFF, 0])

def reply(cmd, data=b""):
    body = bytes([0xD5, cmd + 1]) + data
    return b"\x00\x00\xff" + bytes([len(body), -len(body) & 0xFF]) + body + bytes([-sum(body) & 0xFF, 0])

def read(n, timeout=2.0):
    buf, end = b"", time.monotonic() + timeout
    while len(buf) < n:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        buf += os.read(fd, n - len(buf))
    return buf

def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got.hex(' ')}, expected {want.hex(' ')}")
    print(f"ok: protocol: {what}")

os.write(fd, frame(0x02))
check("asleep at power-on: a frame without the 0x55 wake-up is ignored", read(6, 0.3), b"")
os.write(fd, b"\x55\x55" + bytes(14) + frame(0x14, b"\x01"))
check("wake-up, then SAMConfiguration: ACK and reply", read(15), ACK + reply(0x14))
os.write(fd, frame(0x02))
check("GetFirmwareVersion", read(19), ACK + reply(0x02, bytes.fromhex("32010607")))
os.write(fd, frame(0x08, bytes.fromhex("63055a6306a5")))
check("WriteRegister", read(15), ACK + reply(0x08))
os.write(fd, frame(0x06, bytes.fromhex("63056306")))
check("ReadRegister returns what was written, no status byte", read(17), ACK + reply(0x06, b"\x5a\xa5"))
os.write(fd, frame(0x60, b"\x01"))
check("an unknown command gets the error frame", read(14), ACK + bytes.fromhex("0000ff01ff7f8100"))
os.write(fd, frame(0x02)[:-2] + b"\x00\x00")
check("a bad data checksum is ignored", read(6, 0.3), b"")
body = bytes([0xD4, 0x00, 0x00]) + b"x" * 20
os.write(fd, b"\x00\x00\xff\xff\xff" + bytes([0, len(body), -len(body) & 0xFF]) + body
         + bytes([-sum(body) & 0xFF, 0]))
check("an extended frame is understood", read(6 + 7 + 21 + 2), ACK + reply(0x00, b"\x00" + b"x" * 20))

# pacing: 8N1 at 115200 baud is 86.8 us a byte; a burst can never come faster than that
payload = bytes(range(250))
t0 = time.monotonic()
os.write(fd, frame(0x00, b"\x00" + payload))
want = ACK + reply(0x00, b"\x00" + payload)
got = read(len(want))
took = time.monotonic() - t0
check("Diagnose echoes 250 bytes", got, want)
floor = (len(frame(0x00, b"\x00" + payload)) + len(want)) * 86.8e-6 * 0.95
if took < floor:
    sys.exit(f"{len(want)} bytes came back in {took * 1e3:.1f} ms: faster than 115200 baud ({floor * 1e3:.1f} ms)")
print(f"ok: protocol: paced at 115200 baud ({len(want)} bytes out in {took * 1e3:.1f} ms, floor {floor * 1e3:.1f} ms)")

# infinite retries and no card: only the ACK; a host ACK aborts; a card arriving answers
os.write(fd, frame(0x32, b"\x05\xff\xff\xff"))
read(15)
os.write(fd, frame(0x4A, b"\x01\x00"))
check("InListPassiveTarget with infinite retries waits", read(20, 0.3), ACK)
os.write(fd, ACK)
with open(ctl, "w") as c:
    c.write("tag 04a1b2c3\n")
check("a host ACK aborts it: no late answer", read(20, 0.3), b"")
with open(ctl, "w") as c:
    c.write("remove\n")
os.write(fd, frame(0x4A, b"\x01\x00"))
check("waiting again", read(20, 0.3), ACK)
os.write(fd, frame(0x02))
check("a new command ends the wait", read(19), ACK + reply(0x02, bytes.fromhex("32010607")))
with open(ctl, "w") as c:
    c.write("tag 04a1b2c3\n")
check("no late answer to the abandoned command", read(20, 0.3), b"")
with open(ctl, "w") as c:
    c.write("remove\n")
os.write(fd, frame(0x4A, b"\x01\x00"))
check("waiting again", read(20, 0.3), ACK)
with open(ctl, "w") as c:
    c.write("tag 04:11:22:33:44:55:66 desfire\n")
check("a DESFire entering the field ends the wait, with its ATS", read(7 + 14 + 6 + 2),
      reply(0x4A, bytes.fromhex("01 01 0344 20 07 04112233445566 067577810280")))
os.write(fd, frame(0x16, b"\xf0"))
check("PowerDown", read(16), ACK + reply(0x16, b"\x00"))
os.write(fd, frame(0x02))
check("asleep after PowerDown", read(6, 0.3), b"")
with open(ctl, "w") as c:
    c.write("remove\n")
os.close(fd)
PY

# ---- nfc-list ----------------------------------------------------------------------------------------------
nfc_list
grep -q 'NFC device: .* opened' "$work/nfc-list.out" || fail "nfc-list did not open the emulated reader"
grep -q 'UID' "$work/nfc-list.out" && fail "nfc-list found a card in an empty field"
pass "nfc-list: device opened, no target in an empty field"

for uid in 04A1B2C3 04112233445566 04112233445566778899; do
    mark=$(lines "$events")
    control "tag $uid"
    nfc_list
    [[ $(listed_uids) == "$uid" ]] || fail "nfc-list listed '$(listed_uids)', expected $uid"
    wait_line "$events" "$mark" "^[0-9]+ selected $uid\$" >/dev/null
    pass "nfc-list: $((${#uid} / 2))-byte UID $uid listed"
done
grep -q 'ATQA (SENS_RES): 00  44' "$work/nfc-list.out" || fail "a 10-byte card should have ATQA 00 44"

mark=$(lines "$events")
control vanish
wait_line "$events" "$mark" '^[0-9]+ vanish$' >/dev/null
[[ -e $link ]] && fail "the link still exists after vanish"
nfc_list
grep -q 'NFC device: .* opened' "$work/nfc-list.out" && fail "nfc-list opened a vanished reader"
control return
wait_line "$events" "$mark" '^[0-9]+ return /dev/pts/[0-9]+$' >/dev/null
nfc_list
[[ $(listed_uids) == 04112233445566778899 ]] || fail "after return nfc-list listed '$(listed_uids)'"
pass "nfc-list: vanish loses the reader, return brings it back with the card"

control remove

# No spin while nobody holds the pty open (the master then reports POLLHUP at once): a gross bound that
# only a busy loop breaks, over a one-second window (a measurement window, not a wait for an event).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$emu_pid/stat"; }
t0=$(cpu_ticks)
sleep 1
used=$(($(cpu_ticks) - t0))
hz=$(getconf CLK_TCK)
((used * 100 < hz * 30)) || fail "the emulator used $used of $hz CPU ticks in 1 s with nobody on the pty: a busy loop"
pass "no busy loop with nobody on the pty ($used/$hz ticks in 1 s)"

# ---- nfc_probe: a daemon-style loop ---------------------------------------------------------------------
if [[ ! -x $NFC_PROBE ]]; then
    fail "nfc_probe was not built ($NFC_PROBE): is libnfc-dev installed?"
fi
"$NFC_PROBE" "pn532_uart:$link" --period-ms 50 >"$probe_out" 2>"$work/probe.err" &
probe_pid=$!
wait_line "$probe_out" 0 '^[0-9]+ empty$' >/dev/null
pass "probe: opened, empty field"

# tap_and_remove UID [TYPE]: select finds the card, presence checks keep finding it while it is held,
# target_is_present fails once it is taken away.
tap_and_remove() {
    local uid=$1 type=${2:-} mark
    mark=$(lines "$probe_out")
    control "tag $uid${type:+ $type}"
    wait_line "$probe_out" "$mark" "^[0-9]+ selected $uid " >/dev/null
    wait_line "$probe_out" "$mark" "^[0-9]+ held $uid\$" >/dev/null
    grep -q ' removed ' <(tail -n +"$((mark + 1))" "$probe_out") && fail "card $uid was seen removed while held"
    mark=$(lines "$probe_out")
    control remove
    wait_line "$probe_out" "$mark" '^[0-9]+ removed -10 ' >/dev/null
    wait_line "$probe_out" "$mark" '^[0-9]+ empty$' >/dev/null
    pass "probe: ${type:-default} card $uid selected, held, then seen removed"
}
tap_and_remove 04A1B2C3                     # classic: presence is a re-select by UID
tap_and_remove 04112233445566               # ultralight: presence is READ through InDataExchange
tap_and_remove 04A1B2C3D4E5F6 classic       # 7-byte classic
tap_and_remove 04A1B2C3D4E5F6 desfire       # presence is an R-block through InCommunicateThru
tap_and_remove 0102030405060708090A         # 10-byte UID (ATQA 00 44, SAK 00: read like an Ultralight)
tap_and_remove 0102030405060708090A classic # 10-byte classic: re-selected with a two-level cascade UID
grep -q 'gone-seen' "$events" || fail "the emulator never reported gone-seen"

mark=$(lines "$probe_out")
control "tag AABBCCDD"
wait_line "$probe_out" "$mark" '^[0-9]+ selected AABBCCDD ' >/dev/null
mark=$(lines "$probe_out")
control "tag 11223344"                      # another card replaces it between two presence checks
wait_line "$probe_out" "$mark" '^[0-9]+ removed -10 ' >/dev/null
wait_line "$probe_out" "$mark" '^[0-9]+ selected 11223344 ' >/dev/null
control remove
wait_line "$probe_out" "$mark" '^[0-9]+ empty$' >/dev/null
pass "probe: a classic card swapped for another is seen as removed, then the new one selected"

# mute: a timeout (-6, about 300 ms), no hang; unmute: reopened
mark=$(lines "$probe_out")
control mute
line=$(wait_line "$probe_out" "$mark" '^[0-9]+ error (select|present) ' 10)
read -r _ _ _ code ms <<<"$line"
[[ $code == -6 ]] || fail "a mute chip gave error $code, expected -6 (NFC_ETIMEOUT)"
((ms >= 100 && ms <= 2000)) || fail "a mute chip took ${ms} ms to time out"
wait_line "$probe_out" "$mark" '^[0-9]+ closed [0-9]+$' 10 >/dev/null
mark=$(lines "$probe_out")
control unmute
wait_line "$probe_out" "$mark" '^[0-9]+ opened [0-9]+$' 10 >/dev/null
tap_and_remove 04C0FFEE
pass "probe: mute gives NFC_ETIMEOUT after ${ms} ms, unmute and it is back"

# vanish: an error at once; return: reopened, and a card is seen again
mark=$(lines "$probe_out")
control vanish
line=$(wait_line "$probe_out" "$mark" '^[0-9]+ error (select|present) ' 10)
read -r _ _ _ code ms <<<"$line"
[[ $code == -1 ]] || fail "an unplugged reader gave error $code, expected -1 (NFC_EIO)"
wait_line "$probe_out" "$mark" '^[0-9]+ open-failed$' 10 >/dev/null
mark=$(lines "$probe_out")
control return
wait_line "$probe_out" "$mark" '^[0-9]+ opened [0-9]+$' 10 >/dev/null
tap_and_remove 04D00D00
pass "probe: vanish gives NFC_EIO after ${ms} ms, return and it reopens"

# reset: the chip forgets everything and sleeps; the host times out, reopens (waking it) and goes on
mark=$(lines "$probe_out")
control reset
wait_line "$probe_out" "$mark" '^[0-9]+ error (select|present) -6 ' 10 >/dev/null
wait_line "$probe_out" "$mark" '^[0-9]+ opened [0-9]+$' 10 >/dev/null
tap_and_remove 04BEEF01
pass "probe: a chip reset in place is a timeout, then a reopen"

kill -TERM "$probe_pid"
wait "$probe_pid" || fail "nfc_probe did not exit cleanly"
probe_pid=

# quit: exit 0 and the link is gone
control quit
rc=0
wait "$emu_pid" || rc=$?
emu_pid=
((rc == 0)) || fail "the emulator exited $rc on quit"
[[ -e $link || -L $link ]] && fail "the link is left behind after quit"
pass "quit: exit 0, link removed"
