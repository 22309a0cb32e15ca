#!/usr/bin/env bash
# telecentrectl backup while the real daemon (sim reader and GPIO) takes a continuous stream of taps:
# every backup passes PRAGMA integrity_check, holds a prefix of the live access log (a consistent
# snapshot: no row missing before its last one), and the daemon kept deciding taps while the copy ran.
# Also: the target is refused when it exists (unless --force), a bad directory fails with one line and
# exit 1, and nothing is left behind under the .tmp name. Waits are bounded polls, never fixed sleeps
# standing in for an event (the tap feeder paces itself; that is a rate, not a wait).
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
command -v sqlite3 >/dev/null || { echo "FAIL: no sqlite3 command-line tool (package sqlite3)" >&2; exit 1; }
setup_work backup

db=$work/site.db
ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }

cat >"$conf" <<EOF
[site]
id = backup-site
timezone = Europe/Paris

[database]
path = $db

[door.entrance]
relay = GPIO17
unlock_ms = 100

[reader.entrance]
driver = sim
fifo = $work/reader.fifo
door = entrance
direction = in

[gpio]
driver = sim
fifo = $work/gpio.fifo
EOF

ctl init >/dev/null
ctl member add k-1 --name "Kim" --role keyholder >/dev/null
ctl badge add 04112233 --member k-1 >/dev/null
# Enough history that a backup takes many steps (a few MB): rows from yesterday, inside retention.
sqlite3 "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
  INSERT INTO access_log(at, door, reader, direction, result, reason, member_id, badge_uid)
  SELECT strftime('%s','now') - 86400 + i, 'entrance', 'entrance', 'in', 'granted', 'keyholder', 'k-1', '04112233'
  FROM n;"
prefill=$(sqlite3 "$db" "SELECT count(*) FROM access_log")

"$TELECENTRED" -c "$conf" 2>"$log" &
daemon_pid=$!
wait_for "telecentred .* started" 10

# The stream of taps: one every 5 ms until told to stop.
stop_file=$work/stop-feeding
(
    exec 3>"$work/reader.fifo"
    while [[ ! -e $stop_file ]]; do
        printf '04112233\n' >&3
        sleep 0.005
    done
) &
other_pids+=($!)
feeder=$!
wait_for "access seq=.* granted keyholder" 10 20

decisions() { count "access seq=.* granted keyholder"; }

# ---- backups while the daemon writes ----
backups=()
for i in 1 2 3 4; do
    target=$work/backup-$i.db
    before=$(decisions)
    # Small steps with a pause: the copy lasts long enough for the daemon to commit taps meanwhile.
    out=$(ctl backup "$target" --step-pages 16 --pause-ms 2) || fail "backup $i failed: $out"
    after=$(decisions)
    [[ $out == "backed up $db to $target: "*" pages of "*" bytes) in "*" s" ]] || fail "backup $i printed '$out'"
    ((after > before)) || fail "backup $i: the daemon decided no tap while the copy ran ($before -> $after)"
    [[ -f $target && ! -e $target.tmp && ! -e $target.tmp-journal ]] || fail "backup $i: files left: $(ls "$work")"
    [[ $(stat -c %a "$target") == 600 ]] || fail "backup $i is not mode 0600"
    backups+=("$target")
    echo "   backup $i: $out; daemon decisions during it: $((after - before))"
done
pass "4 backups while the daemon took taps (it decided taps during every copy)"

# A copy through the JSON interface, in one step, for the figures.
json=$(ctl --json backup "$work/backup-json.db") || fail "JSON backup failed"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["ok"] and d["pages"] > 0 and d["bytes"] == d["pages"] * d["page_size"], d' "$json" ||
    fail "JSON backup output: $json"
backups+=("$work/backup-json.db")

touch "$stop_file"
wait "$feeder" || true
other_pids=()
# The feeder is stopped: let the daemon decide what is in the FIFO.
last=-1
deadline=$((SECONDS + $(tc_scaled 10)))
while (($(decisions) != last)); do
    last=$(decisions)
    ((SECONDS < deadline)) || fail "the daemon did not settle"
    sleep 0.2
done

# ---- each backup: intact, and a prefix of the live log ----
dump() { sqlite3 "$1" "SELECT seq, at, door, reader, direction, result, reason, member_id, badge_uid FROM access_log ORDER BY seq"; }
dump "$db" >"$work/live.txt"
live_rows=$(wc -l <"$work/live.txt")
prev=0
for b in "${backups[@]}"; do
    check=$(sqlite3 "$b" "PRAGMA integrity_check") || fail "$b: sqlite3 cannot open it"
    [[ $check == ok ]] || fail "$b: integrity_check says: $check"
    dump "$b" >"$work/b.txt"
    rows=$(wc -l <"$work/b.txt")
    head -n "$rows" "$work/live.txt" | cmp -s - "$work/b.txt" || fail "$b: its access log is not a prefix of the live one"
    ((rows > prefill)) || fail "$b: holds no tap of the daemon ($rows rows)"
    ((rows < live_rows)) || fail "$b: holds every row, so it was not taken while the daemon wrote"
    ((rows >= prev)) || fail "$b: fewer rows than the backup before it"
    prev=$rows
    [[ $(sqlite3 "$b" "SELECT name FROM members") == Kim ]] || fail "$b: member missing"
done
pass "every backup passes integrity_check and holds a prefix of the live log ($prefill prefilled, $live_rows at the end)"

# ---- refusals ----
set +e
err=$(ctl backup "${backups[0]}" 2>&1 >/dev/null)
status=$?
set -e
((status == 1)) || fail "backup over an existing file exited $status, expected 1"
[[ $err == "telecentrectl: backup ${backups[0]}: ${backups[0]} already exists (--force replaces it)" ]] ||
    fail "existing target: '$err'"
out=$(ctl backup "${backups[0]}" --force) || fail "--force did not replace the backup"
[[ $(sqlite3 "${backups[0]}" "SELECT count(*) FROM access_log") == "$live_rows" ]] || fail "--force: the copy is not the current database"
pass "an existing target is kept, and replaced with --force"

set +e
err=$(ctl backup "$work/no/such/dir/site.db" 2>&1 >/dev/null)
status=$?
set -e
((status == 1)) || fail "backup into a missing directory exited $status, expected 1"
(($(printf '%s\n' "$err" | wc -l) == 1)) || fail "more than one line for a bad directory: '$err'"
[[ $err == "telecentrectl: backup $work/no/such/dir/site.db: cannot create $work/no/such/dir/site.db.tmp: No such file or directory" ]] ||
    fail "bad directory: '$err'"
bad_dir_err=$err
set +e
err=$(ctl backup "$db" --force 2>&1 >/dev/null)
status=$?
set -e
((status == 1)) && [[ $err == *"is the database itself"* ]] || fail "backup onto the database itself: $status '$err'"
[[ $(sqlite3 "$db" "PRAGMA integrity_check") == ok ]] || fail "the live database was harmed"
pass "a bad directory fails with one line and exit 1 ($bad_dir_err); the database itself is refused"

kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon exited non-zero"
daemon_pid=
