#!/usr/bin/env bash
# The daemon killed with SIGKILL at random moments, hundreds of times, under a continuous stream of taps
# and sync batches, restarted each time; nothing acknowledged may be lost. docs/reliability.md
# ("Crashes, power cuts and a full disk") says what this proves and what it does not.
#
# Rig: simulated readers (entrance: in, exit: out) and simulated GPIO, a real mosquitto on a free
# loopback port, a mosquitto_sub recording every P/S/access, P/S/alarm and P/S/sync/ack with a persistent
# QoS 1 session, and a driver (python3, below) that starts the daemon, taps (keyholders, members with a
# booking, walk-ins, a suspended member, unknown badges, members added by sync; in and out), publishes
# sync batches with increasing versions (one mosquitto_pub -l), and kills the daemon after a random
# delay: in its first milliseconds, at any time, a few ms after a tap, or a few ms after a sync batch
# (a batch upserts 40 rows, so the kill often lands inside its transaction).
#
# "Acknowledged" (what the daemon promises, docs/reliability.md):
#   - a tap: its "access seq=N ... event=E" log line, written after the commit (the door acts before
#     the commit: a kill between the two loses that one tap's row, which was never acknowledged), or
#     its event delivered on MQTT;
#   - an outbox event: its tap acknowledged, or the event seen in the outbox by an earlier check;
#   - a sync batch: its {"result":"applied"} ack received on P/S/sync/ack (published after the commit).
# After each kill, before the restart (read-only, on exactly the files the crash left):
#   - PRAGMA integrity_check is "ok" (and foreign_key_check is empty);
#   - every acknowledged access-log row is there, and so is every row an earlier check saw;
#   - every acknowledged outbox event is still in the outbox or was delivered;
#   - every acknowledged sync batch is applied (its member and badge exist, sync_version >= it);
#   - the run's log shows the relay requested off, and never on before "started" (door locked).
# At the end, broker up and daemon running: the outbox drains; the delivered events' seqs are exactly
# 1..max (no gap; duplicates allowed, QoS 1, with the same payload); the access events, in seq order,
# are the access-log rows in order, field by field (every committed row's event was delivered); every
# acknowledged sync is applied; a SIGTERM stops the daemon cleanly.
#
# TC_KILLS (default 300; 100 under the sanitizer build, where each start is slower) sets the number of
# kills; TC_SEED the random seed (printed, to replay a run). Figures are printed at the end.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
. "$(dirname "$0")/../lib/mqtt-test.sh"
setup_work crash-kill

sanitized=0
if ldd "$TELECENTRED" 2>/dev/null | grep -q 'libasan\|libubsan'; then
    sanitized=1
fi
kills=${TC_KILLS:-$((sanitized ? 100 : 300))}
seed=${TC_SEED:-$RANDOM$RANDOM}

site=ck-site
P=telecentre/$site
mqtt_broker_start

ctl() {
    "$TELECENTRECTL" -c "$conf" "$@"
}

cat >"$conf" <<EOF
[site]
id = $site
name = Crash test site
timezone = UTC
capacity = 200

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
max_reader_denials = 10000

[door.entrance]
relay = GPIO17
unlock_ms = 100

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

ctl init >/dev/null
utc() { TZ=UTC date -d "$1" '+%Y-%m-%d %H:%M'; }
for i in 0 1 2 3; do
    ctl member add "k-$i" --name "Keyholder $i" --role keyholder >/dev/null
    ctl badge add "04B0000$i" --member "k-$i" >/dev/null
    ctl member add "b-$i" --name "Booked $i" >/dev/null
    ctl badge add "04C0000$i" --member "b-$i" >/dev/null
done
for i in 0 1 2 3 4 5 6 7 8 9 10 11; do
    ctl resource add "desk-$i" --kind desk >/dev/null
done
for i in 0 1 2 3; do
    ctl book --member "b-$i" --resource "desk-$i" --from "$(utc '-5 min')" --to "$(utc '+8 hours')" >/dev/null
done
for i in 0 1 2 3 4 5; do      # no booking: a walk-in desk at their first tap in
    ctl member add "w-$i" --name "Walker $i" >/dev/null
    ctl badge add "04D0000$i" --member "w-$i" >/dev/null
done
ctl member add x-0 --name "Suspended" >/dev/null
ctl badge add 04E00000 --member x-0 >/dev/null
ctl member suspend x-0 >/dev/null

# Every event and sync ack, for the whole test, in a persistent QoS 1 session (the broker stays up).
mqtt_sub events -t "$P/access" -t "$P/alarm" -t "$P/sync/ack" -q 1 -c
events=$mqtt_sub_file

mkdir -p "$work/runs"
dump_files+=("$work/driver.log")
set +e
python3 - "$TELECENTRED" "$conf" "$work" "$events" "$P" "$mqtt_host" "$mqtt_port" "$kills" "$seed" \
    "$sanitized" <<'PY' 2>&1 | tee "$work/driver.log"
import json, os, random, re, signal, sqlite3, subprocess, sys, time

(daemon_bin, conf, work, events_path, P, mqtt_host, mqtt_port, kills, seed, sanitized) = sys.argv[1:]
kills, seed, sanitized = int(kills), int(seed), sanitized == "1"
db_path = f"{work}/site.db"
rng = random.Random(seed)
t_start = time.monotonic()

def fail(msg):
    print(f"FAIL: {msg} (seed {seed})", flush=True)
    stop_daemon()
    sys.exit(1)

# ---- the daemon ----
proc = None
run_log = None

def start_daemon(i):
    global proc, run_log
    run_log = f"{work}/runs/run-{i:04d}.log"
    with open(run_log, "wb") as f:
        proc = subprocess.Popen([daemon_bin, "-c", conf], stdout=subprocess.DEVNULL, stderr=f)

def stop_daemon():
    global proc
    if proc and proc.poll() is None:
        proc.kill()
        proc.wait()
    proc = None

def kill_daemon():
    global proc
    if proc.poll() is not None:
        fail(f"the daemon exited by itself with status {proc.returncode} ({run_log})")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc = None

def log_text():
    with open(run_log, "rb") as f:
        return f.read().decode("utf-8", "replace")

# ---- taps ----
badges = [f"04B0000{i}" for i in range(4)] + [f"04C0000{i}" for i in range(4)] + \
         [f"04D0000{i}" for i in range(6)] + ["04E00000", "DEAD0001", "DEAD0002", "0BADF00D"]
sync_badges = []
taps_written = 0

def tap():
    """One badge on a reader, if the daemon has its FIFO open (else the tap is simply not made)."""
    global taps_written
    reader = "entrance" if rng.random() < 0.6 else "exit"
    pool = badges + sync_badges[-5:]
    uid = rng.choice(pool)
    try:
        fd = os.open(f"{work}/reader-{reader}.fifo", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False                 # ENXIO: no reader (daemon not up); ENOENT: FIFO not made yet
    try:
        os.write(fd, (uid + "\n").encode())
        taps_written += 1
    except OSError:
        pass                         # EAGAIN: pipe full
    finally:
        os.close(fd)
    return True

# ---- sync batches ----
pub = subprocess.Popen(["mosquitto_pub", "-V", "5", "-h", mqtt_host, "-p", mqtt_port, "-q", "1",
                        "-t", f"{P}/sync", "-l"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                       stderr=open(f"{work}/mosquitto_pub.err", "wb"))
version = 0
syncs_sent = 0

def sync_badge(v):
    return "05%06X" % v

def publish_sync():
    global version, syncs_sent
    version += 1
    v = version
    ops = [{"op": "upsert", "member": {"id": f"s-{v}", "name": f"Synced {v}", "role": "keyholder"}},
           {"op": "upsert", "badge": {"uid": sync_badge(v), "member": f"s-{v}", "label": f"v{v}"}}]
    for j in range(38):              # a bigger transaction: more room for a kill inside it
        ops.append({"op": "upsert", "member": {"id": f"p-{j}", "name": f"Pool {j} v{v}"}})
    pub.stdin.write((json.dumps({"version": v, "ops": ops}, separators=(",", ":")) + "\n").encode())
    pub.stdin.flush()
    sync_badges.append(sync_badge(v))
    syncs_sent += 1

# ---- what the subscriber received ----
events_off = 0
delivered = {}           # event seq -> payload (first seen)
deliveries = 0
duplicates = 0
acked_syncs = set()      # versions acknowledged "applied"
sync_acks = 0

def read_events():
    global events_off, deliveries, duplicates, sync_acks
    with open(events_path, "rb") as f:
        f.seek(events_off)
        data = f.read()
    end = data.rfind(b"\n") + 1
    events_off += end
    for line in data[:end].decode("utf-8", "replace").splitlines():
        parts = line.split(" ", 4)
        if len(parts) < 5:
            continue
        topic, payload = parts[3], parts[4]
        if topic in (f"{P}/access", f"{P}/alarm"):
            e = json.loads(payload)
            deliveries += 1
            s = e["seq"]
            if s in delivered:
                duplicates += 1
                if delivered[s] != (topic, e):
                    fail(f"seq {s} delivered twice with different payloads: {delivered[s]} / {e}")
            else:
                delivered[s] = (topic, e)
        elif topic == f"{P}/sync/ack":
            a = json.loads(payload)
            sync_acks += 1
            if a.get("result") == "applied":
                acked_syncs.add(a["version"])
            elif a.get("result") == "rejected":
                fail(f"a sync batch was rejected: {payload}")

# ---- checks ----
acked_rows = {}          # access-log seq -> its logged fields, from the daemon's post-commit log lines
acked_events = {}        # event seq -> access-log seq
pending_events = set()   # acknowledged events not yet seen delivered
seen_rows = (0, 0)       # (max access-log seq, row count) at the previous check
seen_outbox = set()      # outbox seqs at the previous check, not yet delivered
kills_before_started = 0
runs_connected = 0
# "access seq=N door=D reader=R DIR RESULT REASON[ member=M][ booking=b-B] event=E"
access_re = re.compile(r"access seq=(\d+) door=(\S*) reader=(\S*) (\S+) (\S+) (\S+)"
                       r"(?: member=(\S+))?(?: booking=b-(\d+))? event=(\d+)$")

def check_run_log(i, count=True):
    global kills_before_started, runs_connected
    text = log_text()
    if "NOT RECORDED" in text or "database error" in text:
        fail(f"run {i}: the database failed: {run_log}")
    started = False
    relay_lines = 0
    for line in text.splitlines():
        if "started: site" in line:
            started = True
        m = re.search(r"gpio GPIO17=(\d)", line)
        if m:
            relay_lines += 1
            if relay_lines == 1 and m.group(1) != "0":
                fail(f"run {i}: the relay was not requested off first: {line}")
            if not started and m.group(1) != "0":
                fail(f"run {i}: the relay went on before the daemon started: {line}")
        m = access_re.search(line)
        if m:
            seq, event = int(m.group(1)), int(m.group(9))
            row = (m.group(2), m.group(3), m.group(4), m.group(5), m.group(6), m.group(7) or "",
                   int(m.group(8) or 0))
            # Sequence ids are never reused once committed: one logged twice was lost the first time.
            if count and (seq in acked_rows or event in acked_events):
                fail(f"run {i}: access seq {seq} / event {event} acknowledged twice: the first was lost")
            acked_rows[seq] = row
            acked_events[event] = seq
            pending_events.add(event)
    if started and relay_lines == 0:
        fail(f"run {i}: started without requesting the relay off")
    if count and not started:
        kills_before_started += 1
    if count and "mqtt: connected" in text:
        runs_connected += 1

def db_check(i):
    global seen_rows, seen_outbox
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        ic = db.execute("PRAGMA integrity_check").fetchall()
        if ic != [("ok",)]:
            fail(f"check {i}: integrity_check: {ic}")
        fk = db.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            fail(f"check {i}: foreign_key_check: {fk[:5]}")
        rows = {r[0]: tuple(r[1:]) for r in db.execute(
            "SELECT seq, door, reader, direction, result, reason, member_id, booking_id FROM access_log")}
        outbox = {r[0] for r in db.execute("SELECT seq FROM outbox")}
        members = {r[0] for r in db.execute("SELECT id FROM members WHERE id LIKE 's-%'")}
        sbadges = {r[0] for r in db.execute("SELECT uid FROM badges WHERE member_id LIKE 's-%'")}
        vrow = db.execute("SELECT value FROM meta WHERE key='sync_version'").fetchone()
    finally:
        db.close()
    lost = [s for s, row in acked_rows.items() if rows.get(s) != row]
    if lost:
        s = min(lost)
        fail(f"check {i}: {len(lost)} acknowledged access-log rows missing, e.g. seq {s}: logged {acked_rows[s]}, "
             f"in the database {rows.get(s)}")
    prev_max, prev_count = seen_rows
    if sum(1 for s in rows if s <= prev_max) != prev_count:
        fail(f"check {i}: access-log rows seen by an earlier check are gone")
    seen_rows = (max(rows, default=0), len(rows))
    read_events()
    sync_version = int(vrow[0]) if vrow else 0
    for v in acked_syncs:
        if f"s-{v}" not in members or sync_badge(v) not in sbadges or sync_version < v:
            fail(f"check {i}: sync version {v} was acknowledged but is not applied "
                 f"(sync_version {sync_version})")
    # Acknowledged events, and events an earlier check saw in the outbox, must be in the outbox now or
    # delivered. One PUBACKed just before the kill may still be on its way to the subscriber: wait.
    want = {e for e in pending_events | seen_outbox if e not in outbox}
    deadline = time.monotonic() + 20
    while True:
        want = {e for e in want if e not in delivered}
        if not want:
            break
        if time.monotonic() > deadline:
            fail(f"check {i}: acknowledged outbox events neither in the outbox nor delivered: "
                 f"{sorted(want)[:10]}")
        time.sleep(0.02)
        read_events()
    pending_events.difference_update(delivered.keys())
    seen_outbox = {e for e in outbox if e not in delivered}

def wait_log(pattern, timeout):
    deadline = time.monotonic() + timeout
    while pattern not in log_text():
        if proc.poll() is not None:
            fail(f"the daemon exited with status {proc.returncode} waiting for '{pattern}' ({run_log})")
        if time.monotonic() > deadline:
            fail(f"timed out waiting for '{pattern}' ({run_log})")
        time.sleep(0.01)

# ---- the kill loop ----
modes = {"startup": 0, "random": 0, "tap": 0, "sync": 0}
wait_scale = 3.0 if sanitized else 1.0
for i in range(kills):
    start_daemon(i)
    t0 = time.monotonic()
    r = rng.random()
    mode = "startup" if r < 0.2 else "random" if r < 0.6 else "tap" if r < 0.85 else "sync"
    modes[mode] += 1
    if mode == "startup":
        time.sleep(rng.uniform(0, 0.015 * wait_scale))
    else:
        alive = rng.uniform(0.03, 0.4) * wait_scale
        if mode == "sync":
            # The batch must reach the daemon: after its subscription (the connect line comes first).
            deadline = time.monotonic() + 10
            while "mqtt: connected" not in log_text() and time.monotonic() < deadline and proc.poll() is None:
                tap()
                time.sleep(0.005)
        next_sync = time.monotonic() + rng.uniform(0, 0.15)
        while time.monotonic() - t0 < alive:
            tap()
            if time.monotonic() >= next_sync:
                publish_sync()
                next_sync = time.monotonic() + rng.uniform(0.05, 0.2)
            time.sleep(rng.uniform(0.002, 0.012))
        if mode == "tap":
            tap()
            time.sleep(rng.uniform(0, 0.006))
        elif mode == "sync":
            publish_sync()
            time.sleep(rng.uniform(0, 0.04))
    kill_daemon()
    check_run_log(i)
    db_check(i)
    if (i + 1) % 50 == 0:
        print(f"  {i + 1} kills: {len(acked_rows)} taps acknowledged, {len(delivered)} events delivered, "
              f"{len(acked_syncs)} syncs applied, {time.monotonic() - t_start:.0f} s", flush=True)

# ---- the end: broker up, daemon left running ----
start_daemon(kills)
wait_log("started: site", 20 * wait_scale)
wait_log("mqtt: connected", 20 * wait_scale)
before = len(acked_rows)
final_taps = 0
deadline = time.monotonic() + 30 * wait_scale
while final_taps < 20:
    if tap():
        final_taps += 1
    time.sleep(0.02)
publish_sync()
final_version = version
while True:
    check_run_log(kills, count=False)
    read_events()
    if len(acked_rows) >= before + 10 and final_version in acked_syncs:
        break
    if time.monotonic() > deadline:
        fail("the last taps or the last sync were not acknowledged by the running daemon")
    time.sleep(0.05)

def outbox_state():
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        depth = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        top = db.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone()
        return depth, top[0] if top else 0
    finally:
        db.close()

deadline = time.monotonic() + 60 * wait_scale
while True:
    read_events()
    depth, top = outbox_state()
    missing = [s for s in range(1, top + 1) if s not in delivered]
    if depth == 0 and not missing:
        break
    if time.monotonic() > deadline:
        fail(f"outbox depth {depth}; events never delivered: {missing[:20]} (largest seq {top})")
    time.sleep(0.1)
extra = [s for s in delivered if s > top]
if extra:
    fail(f"delivered seqs beyond the outbox's largest seq {top}: {extra[:10]}")

db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
rows = db.execute("SELECT seq, at, door, reader, direction, result, reason, member_id, booking_id "
                  "FROM access_log ORDER BY seq").fetchall()
ic = db.execute("PRAGMA integrity_check").fetchall()
reasons = dict(db.execute("SELECT reason, count(*) FROM access_log GROUP BY reason").fetchall())
db.close()
if ic != [("ok",)]:
    fail(f"final integrity_check: {ic}")
access_events = [e for s, (t, e) in sorted(delivered.items()) if t == f"{P}/access"]
if len(access_events) != len(rows):
    fail(f"{len(rows)} access-log rows but {len(access_events)} access events delivered")
for e, r in zip(access_events, rows):
    _, at, door, reader, direction, result, reason, member, booking = r
    want = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)), "door": door, "reader": reader or None,
            "direction": direction, "result": result, "reason": reason, "member": member or None,
            "booking": f"b-{booking}" if booking else None}
    got = {k: e[k] for k in want}
    if got != want:
        fail(f"access event seq {e['seq']} does not match access-log row {r[0]}: {got} != {want}")
check_run_log(kills, count=False)
db_check(kills)

proc.send_signal(signal.SIGTERM)
try:
    status = proc.wait(timeout=30)
except subprocess.TimeoutExpired:
    fail("the daemon did not stop on SIGTERM")
proc = None
if status != 0:
    fail(f"the daemon exited {status} on SIGTERM")
pub.stdin.close()
pub.wait(timeout=10)

elapsed = time.monotonic() - t_start
print(f"crash_kill: {kills} SIGKILLs (seed {seed}; {modes['startup']} in the first 15 ms, {modes['random']} at "
      f"random, {modes['tap']} just after a tap, {modes['sync']} just after a sync batch; "
      f"{kills_before_started} before 'started', {runs_connected} runs reached the broker), {kills + 1} starts, "
      f"{elapsed:.0f} s", flush=True)
print(f"crash_kill: {taps_written} taps written, {len(rows)} access-log rows committed "
      f"({len(acked_rows)} acknowledged by a log line), {len(delivered)} events delivered, largest seq {top}, "
      f"{duplicates} duplicate deliveries; {syncs_sent} sync batches sent, {len(acked_syncs)} acknowledged as "
      f"applied, all applied; reasons {dict(sorted(reasons.items()))}", flush=True)
PY
status=${PIPESTATUS[0]}
set -e
((status == 0)) || fail "the kill loop failed (above)"
pass "$kills kills: integrity ok, nothing acknowledged lost, relay off at every start, seqs without gaps"
