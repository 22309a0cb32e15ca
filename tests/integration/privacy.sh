#!/usr/bin/env bash
# The data-protection commands of telecentrectl end to end, on a database made with telecentrectl and
# given history with sqlite3 (old access-log rows, presence, undelivered MQTT events):
#  - export: everything about one member as JSON, and nothing about anyone else; --output FILE (0600,
#    kept unless --force);
#  - member remove: afterwards no table names the member, not even the raw file's bytes (secure_delete),
#    while the access-log rows stay (anonymised) and other members are untouched;
#  - purge [--dry-run]: [privacy] log_retention_days applied to the access log and ended presence.
set -euo pipefail

: "${TELECENTRECTL:?set TELECENTRECTL to the telecentrectl binary}"
command -v python3 >/dev/null || { echo "FAIL: python3 is needed for JSON assertions" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "FAIL: the sqlite3 command-line tool is needed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tc-privacy.XXXXXX")
trap 'rm -rf "$work"' EXIT
conf=$work/site.conf
db=$work/site.db

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }
# expect_error STATUS LINE CMD...: exits STATUS with exactly LINE on stderr and nothing on stdout.
expect_error() {
    local want_status=$1 want=$2 out err status
    shift 2
    set +e
    out=$("$@" 2>"$work/stderr")
    status=$?
    set -e
    err=$(cat "$work/stderr")
    ((status == want_status)) || fail "'$*' exited $status, expected $want_status (stderr: $err)"
    [[ $err == "$want" ]] || fail "'$*' said '$err', expected '$want'"
    [[ -z $out ]] || fail "'$*' printed on stdout: $out"
}
# py EXPR [JSON]: asserts a Python expression over the JSON document d (read from $json by default).
py() {
    python3 -c 'import json, sys; d = json.loads(sys.argv[2]); assert eval(sys.argv[1]), sys.argv[1]' "$1" "${2:-$json}" ||
        fail "JSON assertion failed: $1"
}

cat >"$conf" <<EOF
[site]
id = privacy-site
name = Privacy site
timezone = Europe/Paris

[database]
path = $db

[privacy]
log_retention_days = 30
EOF

# ---- a database with history ----
ctl init >/dev/null
ctl member add ana-lopez-7 --name "Ana Lopez" --email ana.lopez@example.org >/dev/null
ctl member add bo-8 --name "Bo Berg" >/dev/null
ctl badge add 04A1B2C3 --member ana-lopez-7 --label "blue card" >/dev/null
ctl badge add 04D5E6F7 --member bo-8 >/dev/null
ctl resource add desk-1 --kind desk >/dev/null
day() { TZ=Europe/Paris date -d "$1" '+%Y-%m-%d %H:%M'; }
ctl book --member ana-lopez-7 --resource desk-1 --from "$(day 'tomorrow 09:00')" --to "$(day 'tomorrow 12:00')" >/dev/null
ctl book --member ana-lopez-7 --resource desk-1 --from "$(day '+2 days 09:00')" --to "$(day '+2 days 12:00')" >/dev/null
ctl booking cancel 2 >/dev/null
ctl book --member bo-8 --resource desk-1 --from "$(day 'tomorrow 14:00')" --to "$(day 'tomorrow 16:00')" >/dev/null
now=$(date +%s)
old=$((now - 40 * 86400))     # beyond the 30 days of retention
recent=$((now - 86400))
sqlite3 "$db" <<EOF
INSERT INTO access_log(at, door, reader, direction, result, reason, member_id, badge_uid)
  VALUES($old, 'front', 'front', 'in', 'denied', 'unknown_badge', '', '04A1B2C3'),
         ($old + 60, 'front', 'front', 'in', 'granted', 'booking', 'ana-lopez-7', '04A1B2C3'),
         ($old + 120, 'front', 'front', 'in', 'granted', 'booking', 'bo-8', '04D5E6F7'),
         ($recent, 'front', 'front', 'in', 'granted', 'booking', 'ana-lopez-7', '04A1B2C3'),
         ($recent + 60, 'front', 'front', 'in', 'granted', 'booking', 'bo-8', '04D5E6F7');
INSERT INTO access_log(at, door, reader, direction, result, reason, requested_by)
  VALUES($recent + 120, 'front', '', 'in', 'granted', 'remote', 'ana-lopez-7');
INSERT INTO presence(member_id, booking_id, since, expected_end)
  VALUES('ana-lopez-7', 0, $now - 3600, $now + 3600),
        ('bo-8', 0, $old, $old + 3600);
INSERT INTO outbox(at, kind, payload) VALUES
  ($recent, 'access', '{"at":"x","door":"front","reader":"front","direction":"in","result":"granted","reason":"booking","member":"ana-lopez-7","booking":"b-1","by":null}'),
  ($recent, 'access', '{"at":"x","door":"front","reader":null,"direction":"in","result":"granted","reason":"remote","member":null,"booking":null,"by":"ana-lopez-7"}'),
  ($recent, 'access', '{"at":"x","door":"front","reader":"front","direction":"in","result":"granted","reason":"booking","member":"bo-8","booking":"b-3","by":null}');
EOF
pass "database with history made"

# ---- export ----
json=$(ctl export ana-lopez-7) || fail "export failed"
py 'd["format"] == "telecentred-member-export/1" and d["site"]["id"] == "privacy-site" and d["log_retention_days"] == 30'
py 'd["member"]["id"] == "ana-lopez-7" and d["member"]["name"] == "Ana Lopez" and d["member"]["email"] == "ana.lopez@example.org"'
py '[b["uid"] for b in d["badges"]] == ["04A1B2C3"] and d["badges"][0]["label"] == "blue card"'
py '[(b["id"], b["status"]) for b in d["bookings"]] == [("b-1", "confirmed"), ("b-2", "cancelled")]'
py 'd["presence"] is not None and d["presence"]["present_now"] is True'
# Their rows: the tap before enrolment (their badge), their taps, the remote unlock they asked for.
py '[(r["reason"], r["member"], r["uid"], r["requested_by"]) for r in d["access_log"]] == [
    ("unknown_badge", None, "04A1B2C3", None), ("booking", "ana-lopez-7", "04A1B2C3", None),
    ("booking", "ana-lopez-7", "04A1B2C3", None), ("remote", None, None, "ana-lopez-7")]'
[[ $json != *bo-8* && $json != *04D5E6F7* && $json != *"Bo Berg"* ]] || fail "the export holds another member's data"
pass "export: member, badge, bookings (cancelled too), presence and 4 access-log rows, nobody else's data"

out=$(ctl export ana-lopez-7 --output "$work/ana.json") || fail "export --output failed"
[[ $out == "exported member ana-lopez-7 to $work/ana.json: 1 badge, 2 bookings, 4 access-log rows" ]] ||
    fail "export --output printed '$out'"
[[ $(stat -c %a "$work/ana.json") == 600 ]] || fail "the export file is not mode 0600"
python3 -c 'import json, sys; a = json.load(open(sys.argv[1])); b = json.loads(sys.argv[2]); a.pop("generated_at"); b.pop("generated_at"); assert a == b' \
    "$work/ana.json" "$json" || fail "the file differs from stdout"
expect_error 1 "telecentrectl: export ana-lopez-7: $work/ana.json already exists (--force replaces it)" \
    ctl export ana-lopez-7 --output "$work/ana.json"
ctl export ana-lopez-7 --output "$work/ana.json" --force >/dev/null || fail "export --force failed"
expect_error 1 "telecentrectl: export nobody: no member 'nobody'" ctl export nobody
expect_error 1 "telecentrectl: export ana-lopez-7: cannot create $work/none/ana.json: No such file or directory" \
    ctl export ana-lopez-7 --output "$work/none/ana.json"
pass "export --output: the same document, mode 0600, kept unless --force; clear errors"

# ---- purge ----
count() { sqlite3 "$db" "$1"; }
json=$(ctl --json purge --dry-run) || fail "purge --dry-run failed"
py 'd["ok"] and d["dry_run"] and d["log_retention_days"] == 30 and d["access_log"] == 3 and d["presence"] == 1'
[[ $(count "SELECT count(*) FROM access_log") == 6 ]] || fail "--dry-run deleted rows"
out=$(ctl purge) || fail "purge failed"
[[ $out == "purged 3 access-log rows and 1 presence row older than "*" (30 days)" ]] || fail "purge printed '$out'"
[[ $(count "SELECT count(*) FROM access_log WHERE at < $now - 30 * 86400") == 0 ]] || fail "old rows left"
[[ $(count "SELECT count(*) FROM access_log") == 3 ]] || fail "recent rows were purged"
[[ $(count "SELECT member_id FROM presence") == ana-lopez-7 ]] || fail "presence: the wrong rows went"
out=$(ctl purge) || fail "second purge failed"
[[ $out == "purged 0 access-log rows and 0 presence rows older than "* ]] || fail "second purge printed '$out'"
pass "purge: --dry-run counts, purge deletes only what is older than log_retention_days"

# ---- erasure ----
out=$(ctl member remove ana-lopez-7) || fail "member remove failed"
[[ $out == "removed member ana-lopez-7 (Ana Lopez) with their badges, bookings and presence; the access log and outbox no longer name them" ]] ||
    fail "member remove printed '$out'"
dump=$(sqlite3 "$db" .dump)
for needle in ana-lopez-7 "Ana Lopez" ana.lopez@example.org 04A1B2C3 "blue card"; do
    [[ $dump != *"$needle"* ]] || fail "after member remove, the database still holds '$needle'"
    # The file's bytes too: freed cells are zeroed, not left in free space.
    ! grep -a -q -F -- "$needle" "$db" "$db-wal" 2>/dev/null || fail "after member remove, the file's bytes still hold '$needle'"
done
[[ $(count "SELECT count(*) FROM access_log") == 3 ]] || fail "member remove deleted access-log rows"
[[ $(count "SELECT count(*) FROM access_log WHERE member_id = '' AND badge_uid = '' AND requested_by = ''") == 2 ]] ||
    fail "the member's log rows are not anonymised"
[[ $(count "SELECT count(*) FROM outbox WHERE json_extract(payload, '$.member') IS NULL AND json_extract(payload, '$.by') IS NULL") == 2 ]] ||
    fail "the outbox still names the member"
json=$(ctl --json member show bo-8) || fail "bo-8 is gone"
py 'd["badges"][0]["uid"] == "04D5E6F7" and len(d["upcoming_bookings"]) == 1'
[[ $(count "SELECT count(*) FROM access_log WHERE member_id = 'bo-8' AND badge_uid = '04D5E6F7'") == 1 ]] || fail "bo-8's log rows changed"
[[ $(count "SELECT count(*) FROM outbox WHERE payload LIKE '%\"member\":\"bo-8\"%'") == 1 ]] || fail "bo-8's event changed"
pass "member remove: nothing names the member in the tables or the file's bytes; rows kept anonymised; bo-8 untouched"
