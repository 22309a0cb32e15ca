#!/usr/bin/env bash
# telecentrectl end to end: every command in human and JSON form, every error case (one line on stderr,
# non-zero exit, nothing changed), every reason of the access table that `check` can reach, and
# daylight-saving behaviour. Dates are in 2027 so that nothing is in the past.
#
# Not reachable here: site_full and too_many_attempts need presence and denials, which only real taps
# (the daemon) create; `check` changes nothing by design. The daemon's integration test covers them.
set -euo pipefail

: "${TELECENTRECTL:?set TELECENTRECTL to the telecentrectl binary}"
command -v python3 >/dev/null || { echo "cli.sh: python3 is needed for JSON assertions" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tc-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
CONF=$TMP/site.conf
CONF_NO_WALKIN=$TMP/no-walk-in.conf
DB=$TMP/site.db

write_config() {    # $1 = file, $2 = walk_in value
    cat >"$1" <<EOF
[site]
id = test-site
name = Test site
timezone = Europe/Paris
capacity = 3

[database]
path = $DB

[hours]
mon = 08:00-19:00
tue = 08:00-19:00
wed = 08:00-19:00
thu = 08:00-19:00
fri = 08:00-19:00
sat = closed
sun = closed

[policy]
early_minutes = 15
late_minutes = 15
no_show_minutes = 30
walk_in = $2

[door.entrance]
relay = GPIO17

[reader.entrance]
driver = sim
fifo = $TMP/reader-entrance.fifo
door = entrance
direction = in

[gpio]
driver = sim
fifo = $TMP/gpio.fifo
EOF
}
write_config "$CONF" true
write_config "$CONF_NO_WALKIN" false

n_checks=0
pass() { n_checks=$((n_checks + 1)); echo "ok $n_checks - $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

ctl() { "$TELECENTRECTL" -c "$CONF" "$@"; }

# Runs a command that must succeed; its stdout is in $OUT.
run_ok() {   # desc, cmd...
    local desc=$1; shift
    local err=$TMP/stderr rc=0
    OUT=$("$@" 2>"$err") || rc=$?
    [[ $rc -eq 0 ]] || die "$desc: exit $rc, stderr: $(cat "$err")"
    [[ ! -s $err ]] || die "$desc: unexpected stderr: $(cat "$err")"
}

# Asserts that stdout ($OUT) has a line equal to $2.
expect_line() {   # desc, line
    grep -qxF -- "$2" <<<"$OUT" || die "$1: expected a line '$2' in:"$'\n'"$OUT"
    pass "$1"
}
expect_match() {   # desc, extended regex (whole line)
    grep -qxE -- "$2" <<<"$OUT" || die "$1: expected a line matching /$2/ in:"$'\n'"$OUT"
    pass "$1"
}

# Evaluates a Python expression over the JSON document in $OUT (as d).
json_assert() {   # desc, expr
    python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
if not eval(sys.argv[1]):
    print(json.dumps(d, indent=1)[:3000], file=sys.stderr)
    sys.exit(1)
' "$2" <<<"$OUT" || die "$1: JSON assertion failed: $2"
    pass "$1"
}

# The whole observable state, to prove that a failure changed nothing. In the valgrind mode it is read
# with the plain binary (TC_VALGRIND_TELECENTRECTL): ten reads around every refused command would
# otherwise be most of the run, and the list commands run under valgrind elsewhere in this test.
snapshot() {
    local s=""
    for list in "member list" "badge list" "resource list" "booking list" "closure list"; do
        # shellcheck disable=SC2086
        s+=$("${TC_VALGRIND_TELECENTRECTL:-$TELECENTRECTL}" -c "$CONF" --json $list)
    done
    printf '%s' "$s"
}

# A command that must fail: exit status $2 (1 failure, 2 usage), exactly one line on stderr equal to
# $3 (or containing it when $3 starts with '~'), nothing on stdout, and no change in the database.
expect_fail() {   # desc, status, message, cmd...
    local desc=$1 want_rc=$2 want_msg=$3; shift 3
    local before after rc=0 out err
    before=$(snapshot)
    out=$("$@" 2>"$TMP/stderr") || rc=$?
    err=$(cat "$TMP/stderr")
    [[ $rc -eq $want_rc ]] || die "$desc: exit $rc, wanted $want_rc (stderr: $err)"
    [[ -z $out ]] || die "$desc: unexpected stdout: $out"
    [[ $(wc -l <"$TMP/stderr") -eq 1 && -n $err ]] || die "$desc: stderr is not exactly one line: $err"
    if [[ $want_msg == "~"* ]]; then
        [[ $err == *"${want_msg#\~}"* ]] || die "$desc: stderr '$err' does not contain '${want_msg#\~}'"
    else
        [[ $err == "$want_msg" ]] || die "$desc: stderr '$err', wanted '$want_msg'"
    fi
    after=$(snapshot)
    [[ $before == "$after" ]] || die "$desc: the database changed"
    pass "$desc (exit $rc: $err)"
}

check_is() {   # desc, expected line, check args...
    local desc=$1 want=$2; shift 2
    run_ok "$desc" ctl check "$@"
    [[ $OUT == "$want" ]] || die "$desc: got '$OUT', wanted '$want'"
    pass "check $desc -> $want"
}
check_matches() {   # desc, regex, check args...
    local desc=$1 want=$2; shift 2
    run_ok "$desc" ctl check "$@"
    [[ $OUT =~ ^$want$ ]] || die "$desc: got '$OUT', wanted /$want/"
    pass "check $desc -> $OUT"
}

echo "# telecentrectl: $TELECENTRECTL, in $TMP"

# ---------------------------------------------------------------- global options, help, init
run_ok "--version" "$TELECENTRECTL" --version
expect_match "--version prints the version" "telecentrectl [0-9]+\.[0-9]+\.[0-9]+.*"
run_ok "--help" "$TELECENTRECTL" --help
expect_match "--help shows the usage" "Usage: telecentrectl .*COMMAND.*"
run_ok "help member" "$TELECENTRECTL" help member
expect_match "help member shows member add" ".*member add ID --name NAME.*"
run_ok "member --help" "$TELECENTRECTL" member --help
expect_match "member --help shows member add" ".*member add ID --name NAME.*"
run_ok "book --help" "$TELECENTRECTL" book --help
expect_match "book --help" "Usage: telecentrectl book .*"

rc=0; err=$(ctl member list 2>&1 >/dev/null) || rc=$?
[[ $rc -eq 1 && $err == "telecentrectl: $DB: no database here; create it with 'telecentrectl init'" ]] ||
    die "missing database: exit $rc, '$err'"
[[ ! -e $DB ]] || die "a read command created the database"
pass "missing database is reported and not created"

run_ok "init" ctl init
expect_line "init creates" "created $DB (schema version 2)"
run_ok "init again" ctl init
expect_line "init again is harmless" "$DB already initialised (schema version 2)"
run_ok "init --json" ctl --json init
json_assert "init --json" 'd["ok"] is True and d["created"] is False and d["schema_version"] == 2'

# -d overrides the configured database; TELECENTRED_CONF names the configuration.
run_ok "-d init" ctl -d "$TMP/other.db" --json init
json_assert "-d creates another database" 'd["created"] is True and d["database"].endswith("other.db")'
run_ok "TELECENTRED_CONF" env TELECENTRED_CONF="$CONF" "$TELECENTRECTL" --json member list
json_assert "TELECENTRED_CONF is used" 'd == []'

# ---------------------------------------------------------------- members
run_ok "member add m-1" ctl member add m-1 --name "Alice Martin" --email alice@example.org --visible
expect_line "member add confirms" "added member m-1 (Alice Martin, member)"
run_ok "member add m-2 (options after, = form)" ctl member add --name="Bob Durand" m-2
run_ok "member add m-kh" ctl member add m-kh --name "Karine Keyholder" --role keyholder
run_ok "member add m-sus" ctl member add m-sus --name "Sam Suspended"
run_ok "member add m-exp" ctl member add m-exp --name "Eve Expired" --until 2027-03-01
run_ok "member add m-new" ctl --json member add m-new --name "Noé Nouveau" --from 2027-06-01 --until 2027-12-31
json_assert "member add --json" 'd["ok"] is True and d["member"]["id"] == "m-new" and d["member"]["valid_from"] == "2027-06-01" and d["member"]["valid_until"] == "2027-12-31"'
run_ok "member add manager" ctl member add mgr.1 --name "Marc Manager" --role manager

run_ok "member list" ctl member list
expect_match "member list header" "ID +NAME +ROLE +VALID +STATUS"
expect_match "member list row m-1" "m-1 +Alice Martin +member +always +active"
expect_match "member list row m-new (accented name aligned)" "m-new +Noé Nouveau +member +2027-06-01\.\.2027-12-31 +pending"
expect_match "member list row m-kh" "m-kh +Karine Keyholder +keyholder +always +active"
run_ok "member list --json" ctl member list --json
json_assert "member list --json" 'len(d) == 7 and [m["id"] for m in d] == sorted(m["id"] for m in d) and {m["id"]: m["role"] for m in d}["mgr.1"] == "manager" and [m for m in d if m["id"] == "m-1"][0]["presence_visible"] is True and [m for m in d if m["id"] == "m-1"][0]["email"] == "alice@example.org"'

run_ok "member suspend" ctl member suspend m-sus
expect_line "member suspend confirms" "suspended member m-sus (Sam Suspended)"
run_ok "member resume" ctl --json member resume m-sus
json_assert "member resume --json" 'd["ok"] and d["member"] == "m-sus" and d["suspended"] is False'
run_ok "member suspend again" ctl member suspend m-sus

# ---------------------------------------------------------------- badges
run_ok "badge add (separators, lower case)" ctl badge add 04:a1:b2:c3 --member m-1 --label "blue card"
expect_line "badge add confirms" "added badge 04A1B2C3 for m-1 (Alice Martin)"
run_ok "badge add 7 bytes" ctl badge add 04-11-22-33-44-55-66 --member m-1
run_ok "badge add m-kh" ctl badge add 04000001 --member m-kh
run_ok "badge add m-sus" ctl badge add 04000002 --member m-sus
run_ok "badge add m-exp" ctl badge add 04000003 --member m-exp
run_ok "badge add m-2 (to revoke)" ctl badge add 04000004 --member m-2 --label lost
run_ok "badge add m-2" ctl --json badge add 04000005 --member m-2
json_assert "badge add --json" 'd["ok"] and d["badge"]["uid"] == "04000005" and d["badge"]["member"] == "m-2"'
run_ok "badge add m-new" ctl badge add 04000006 --member m-new
run_ok "badge add 10 bytes" ctl badge add "04 00 00 00 00 00 00 00 00 07" --member mgr.1
run_ok "badge revoke" ctl badge revoke 04:00:00:04
expect_line "badge revoke confirms" "revoked badge 04000004 (m-2)"
run_ok "badge list" ctl badge list
expect_match "badge list header" "UID +MEMBER +LABEL +STATUS"
expect_match "badge list row" "04A1B2C3 +m-1 +blue card +active"
expect_match "badge list revoked row" "04000004 +m-2 +lost +revoked"
run_ok "badge list --json" ctl badge list --json
json_assert "badge list --json" 'len(d) == 9 and {b["uid"]: b["status"] for b in d}["04000004"] == "revoked" and {b["uid"]: b["member"] for b in d}["04112233445566"] == "m-1" and all(b["revoked_at"] for b in d if b["revoked"])'

# ---------------------------------------------------------------- resources
run_ok "resource add desk-01" ctl resource add desk-01 --kind desk --name "Desk 1"
expect_line "resource add confirms" "added desk desk-01 (Desk 1, 1 seat)"
run_ok "resource add desk-02" ctl resource add desk-02 --kind desk
run_ok "resource add room-a" ctl --json resource add room-a --kind room --name "Salle Aubrac" --seats 8
json_assert "resource add --json" 'd["ok"] and d["resource"] == {"id": "room-a", "kind": "room", "name": "Salle Aubrac", "seats": 8}'
run_ok "resource list" ctl resource list
expect_match "resource list header" "ID +KIND +NAME +SEATS +NOW"
expect_match "resource list row" "room-a +room +Salle Aubrac +8 +free"
run_ok "resource list --json" ctl resource list --json
json_assert "resource list --json" 'sorted(r["id"] for r in d) == ["desk-01", "desk-02", "room-a"] and all(r["state"] == "free" for r in d)'

# ---------------------------------------------------------------- bookings
run_ok "book B1" ctl --json book --member m-1 --resource desk-01 --from "2027-03-29 08:00" --to "2027-03-29 12:00"
json_assert "book --json" 'd["ok"] and d["booking"].startswith("b-") and d["details"]["start"] == "2027-03-29T06:00:00Z"'
B1=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["booking"])' <<<"$OUT")
run_ok "book B2 after hours" ctl book --member m-2 --resource desk-02 --from "2027-03-29 06:00" --to "2027-03-29 08:00" --after-hours
expect_match "book confirms" "booked b-[0-9]+: desk-02 for m-2, 2027-03-29 06:00–08:00 \(after hours allowed\)"
B2=$(sed -E 's/^booked (b-[0-9]+):.*/\1/' <<<"$OUT")
run_ok "book B5" ctl book --member m-kh --resource desk-01 --from "2027-03-31 09:00" --to "2027-03-31 18:00"
run_ok "book B6" ctl book --member m-2 --resource desk-02 --from "2027-03-31 09:00" --to "2027-03-31 18:00"

# Daylight saving: 2027-03-28 01:00 CET to 04:00 CEST is two hours; 2027-10-31 02:30 happens twice and
# means the first one (CEST, 00:30Z).
run_ok "book across spring-forward" ctl --json book --member m-1 --resource room-a --from "2027-03-28 01:00" --to "2027-03-28 04:00"
json_assert "spring-forward booking is 2 hours" 'd["details"]["start"] == "2027-03-28T00:00:00Z" and d["details"]["end"] == "2027-03-28T02:00:00Z"'
run_ok "book in the repeated hour" ctl --json book --member m-2 --resource room-a --from "2027-10-31 02:30" --to "2027-10-31 04:00"
json_assert "ambiguous 02:30 is the earlier instant" 'd["details"]["start"] == "2027-10-31T00:30:00Z" and d["details"]["end"] == "2027-10-31T03:00:00Z" and d["details"]["start_local"] == "2027-10-31 02:30"'

run_ok "booking list" ctl booking list
expect_match "booking list header" "ID +RESOURCE +MEMBER +FROM +TO +STATUS +KIND +CHECKED-IN"
expect_match "booking list row B1" "$B1 +desk-01 +m-1 +2027-03-29 08:00 +2027-03-29 12:00 +confirmed +reserved +-"
expect_match "booking list row B2 (after hours)" "$B2 +desk-02 +m-2 +2027-03-29 06:00 +2027-03-29 08:00 +confirmed +reserved\+after-hours +-"
run_ok "booking list --json" ctl booking list --json
json_assert "booking list --json has every booking" 'len(d) == 6 and all(b["id"].startswith("b-") and b["status"] == "confirmed" and b["kind"] == "reserved" for b in d)'
json_assert "booking list --json spring-forward times" '[(b["start"], b["end"], b["start_local"], b["end_local"]) for b in d if b["resource"] == "room-a" and b["member"] == "m-1"] == [("2027-03-28T00:00:00Z", "2027-03-28T02:00:00Z", "2027-03-28 01:00", "2027-03-28 04:00")]'
run_ok "booking list --day" ctl --json booking list --day 2027-03-29
json_assert "booking list --day 2027-03-29" 'sorted(b["id"] for b in d) == sorted(["'"$B1"'", "'"$B2"'"])'
run_ok "booking list --day (DST day)" ctl --json booking list --day 2027-03-28
json_assert "booking list --day 2027-03-28" 'len(d) == 1 and d[0]["resource"] == "room-a"'

run_ok "member show" ctl member show m-1
expect_line "member show id" "id:        m-1"
expect_line "member show name" "name:      Alice Martin"
expect_match "member show badge" " +04A1B2C3 +active +blue card"
expect_match "member show upcoming booking" " +$B1 +desk-01 +2027-03-29 08:00–12:00"
run_ok "member show --json" ctl --json member show m-1
json_assert "member show --json" 'd["id"] == "m-1" and len(d["badges"]) == 2 and "'"$B1"'" in [b["id"] for b in d["upcoming_bookings"]] and d["present"] is False'

# Cancel by "b-N" and by "N".
run_ok "book to cancel" ctl --json book --member m-1 --resource desk-01 --from "2027-04-01 09:00" --to "2027-04-01 10:00"
BC=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["booking"])' <<<"$OUT")
run_ok "booking cancel b-N" ctl booking cancel "$BC"
expect_match "booking cancel confirms" "cancelled $BC \(desk-01 for m-1, 2027-04-01 09:00–10:00\)"
run_ok "book again on the freed slot" ctl --json book --member m-2 --resource desk-01 --from "2027-04-01 09:00" --to "2027-04-01 10:00"
BD=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["booking"])' <<<"$OUT")
run_ok "booking cancel N" ctl --json booking cancel "${BD#b-}"
json_assert "booking cancel --json" 'd["ok"] and d["booking"] == "'"$BD"'"'
run_ok "booking list shows cancelled" ctl --json booking list --day 2027-04-01
json_assert "cancelled bookings are listed as cancelled" 'sorted(b["status"] for b in d) == ["cancelled", "cancelled"]'

# ---------------------------------------------------------------- closures
run_ok "closure add" ctl closure add 2027-05-06 --reason "Ascension"
expect_line "closure add confirms" "added closure 2027-05-06 (Thursday, Ascension)"
run_ok "closure add (no reason)" ctl --json closure add 2027-12-24
json_assert "closure add --json" 'd["ok"] and d["date"] == "2027-12-24"'
run_ok "closure list" ctl closure list
expect_match "closure list header" "DATE +DAY +REASON"
expect_match "closure list row" "2027-05-06 +Thursday +Ascension"
run_ok "closure list --json" ctl closure list --json
json_assert "closure list --json" '[c["date"] for c in d] == ["2027-05-06", "2027-12-24"] and d[0]["reason"] == "Ascension"'

# ---------------------------------------------------------------- check: every reason it can reach
check_is "keyholder on a Sunday night" "granted: keyholder" 04000001 --at "2027-04-04 03:00"
check_is "manager (10-byte UID)" "granted: keyholder" 04000000000000000007 --at "2027-04-03 23:00"
check_is "booking" "granted: booking ($B1 on desk-01)" 04A1B2C3 --at "2027-03-29 08:05"
check_is "booking, 7-byte badge, --door" "granted: booking ($B1 on desk-01)" 04:11:22:33:44:55:66 --at "2027-03-29 08:05" --door entrance
# 12:10 is inside late_minutes after the booking's end, but `check` never checked it in, so it counts as a
# no-show (released 30 minutes after its start) and the member would get a walk-in instead.
check_matches "booking never checked in is a no-show" "granted: walk_in \(desk-0[12] until 19:00\)" \
    04A1B2C3 --at "2027-03-29 12:10"
check_is "after-hours booking before opening" "granted: booking ($B2 on desk-02)" 04000005 --at "2027-03-29 06:10"
check_is "after-hours booking in its early window" "granted: booking ($B2 on desk-02)" 04000005 --at "2027-03-29 05:50"
# The site opens at 08:00: a booking from 08:00 covers 07:50 (early_minutes = 15) but the site is closed
# and the booking is not after-hours, so the answer is closed; 07:40 is outside the early window too.
check_is "booking's early window before opening" "denied: closed" 04A1B2C3 --at "2027-03-29 07:50"
check_is "before opening" "denied: closed" 04A1B2C3 --at "2027-03-29 07:40"
# The day after the spring-forward change, 08:05 local is inside opening hours.
check_is "first Monday of summer time, 08:05" "granted: booking ($B1 on desk-01)" 04A1B2C3 --at "2027-03-29 08:05"
check_matches "walk_in" "granted: walk_in \(desk-0[12] until 19:00\)" 04000005 --at "2027-03-30 10:00"
check_matches "walk_in until the desk's next booking" "granted: walk_in \(desk-0[12] until 09:00\)" 04A1B2C3 --at "2027-03-31 08:00"
check_is "unknown_badge" "denied: unknown_badge" 04FFEEDD --at "2027-03-29 10:00"
check_is "badge_revoked" "denied: badge_revoked" 04000004 --at "2027-03-29 10:00"
check_is "member_suspended" "denied: member_suspended" 04000002 --at "2027-03-29 10:00"
check_matches "last valid day (inclusive)" "granted: walk_in \(desk-0[12] until 19:00\)" 04000003 --at "2027-03-01 10:00"
check_is "membership_expired (after until)" "denied: membership_expired" 04000003 --at "2027-03-02 10:00"
check_is "membership_expired (before from)" "denied: membership_expired" 04000006 --at "2027-05-31 10:00"
check_matches "first valid day (inclusive)" "granted: walk_in \(desk-0[12] until 19:00\)" 04000006 --at "2027-06-01 10:00"
check_is "closed on a Sunday" "denied: closed" 04A1B2C3 --at "2027-04-04 10:00"
check_is "closed on a Saturday" "denied: closed" 04A1B2C3 --at "2027-04-03 10:00"
check_is "closed after hours" "denied: closed" 04A1B2C3 --at "2027-03-30 19:00"
check_is "closed on a closure day" "denied: closed" 04A1B2C3 --at "2027-05-06 10:00"
check_is "keyholder on a closure day" "granted: keyholder" 04000001 --at "2027-05-06 10:00"
check_is "no_booking: every desk booked" "denied: no_booking" 04A1B2C3 --at "2027-03-31 09:05"
check_is "no_booking: desks free for less than walk_in_min_minutes" "denied: no_booking" 04A1B2C3 --at "2027-03-31 08:45"
run_ok "no_booking: walk-ins disabled" "$TELECENTRECTL" -c "$CONF_NO_WALKIN" check 04000005 --at "2027-03-30 10:00"
[[ $OUT == "denied: no_booking" ]] || die "walk_in=false: got '$OUT'"
pass "check with walk_in = false -> denied: no_booking"

expect_fail "book for a suspended member" 1 "telecentrectl: booking refused: member 'm-sus' is suspended" \
    ctl book --member m-sus --resource desk-01 --from "2027-04-02 09:00" --to "2027-04-02 10:00"
run_ok "member resume m-sus" ctl member resume m-sus
check_matches "resumed member gets in again" "granted: walk_in \(desk-0[12] until 19:00\)" 04000002 --at "2027-03-29 10:00"
run_ok "closure remove" ctl closure remove 2027-05-06
expect_line "closure remove confirms" "removed closure 2027-05-06"
check_matches "after the closure is removed" "granted: walk_in \(desk-0[12] until 19:00\)" 04A1B2C3 --at "2027-05-06 10:00"

# check --json, and check changes nothing (no walk-in booking, no log row, no check-in).
before=$(snapshot)
run_ok "check --json booking" ctl --json check 04a1b2c3 --at "2027-03-29 08:05" --door entrance
json_assert "check --json booking" 'd["result"] == "granted" and d["reason"] == "booking" and d["booking"] == "'"$B1"'" and d["resource"] == "desk-01" and d["member"] == "m-1" and d["door"] == "entrance" and d["at"] == "2027-03-29T06:05:00Z" and d["walk_in"] is None'
run_ok "check --json walk_in" ctl check 04000005 --at "2027-03-30 10:00" --json
json_assert "check --json walk_in" 'd["result"] == "granted" and d["reason"] == "walk_in" and d["booking"] is None and d["walk_in"]["until"] == "2027-03-30T17:00:00Z" and d["walk_in"]["resource"] in ("desk-01", "desk-02")'
run_ok "check --json denied" ctl --json check 04FFEEDD --at "2027-03-29 10:00"
json_assert "check --json denied" 'd["result"] == "denied" and d["reason"] == "unknown_badge" and d["member"] is None'
[[ $(snapshot) == "$before" ]] || die "check changed the database"
run_ok "log after checks" ctl --json log
json_assert "check logs nothing" 'd == []'
pass "check changes nothing"

# ---------------------------------------------------------------- occupancy and log
# A room booked from this minute for two hours shows as booked now.
read -r NOW_LOCAL LATER_LOCAL < <(python3 -c '
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
now = datetime.now(ZoneInfo("Europe/Paris")).replace(second=0, microsecond=0)
later = (now.astimezone(ZoneInfo("UTC")) + timedelta(hours=2)).astimezone(ZoneInfo("Europe/Paris"))
print(now.strftime("%Y-%m-%dT%H:%M"), later.strftime("%Y-%m-%dT%H:%M"))')
run_ok "book the room now" ctl book --member m-kh --resource room-a --from "${NOW_LOCAL/T/ }" --to "${LATER_LOCAL/T/ }"
run_ok "occupancy" ctl occupancy
expect_line "occupancy present" "present:   0 of 3"
expect_line "occupancy desks" "desks:     2 total, 2 free, 0 booked, 0 occupied"
expect_match "occupancy room booked" " +room-a +booked until ${LATER_LOCAL/T/ }"
run_ok "occupancy --json" ctl --json occupancy
json_assert "occupancy --json" 'd["present"] == 0 and d["capacity"] == 3 and d["desks"]["total"] == 2 and d["desks"]["free"] == 2 and [r["state"] for r in d["rooms"] if r["id"] == "room-a"] == ["booked"] and d["members"] == []'
run_ok "resource list shows the room booked" ctl --json resource list
json_assert "resource list state" '[r["state"] for r in d if r["id"] == "room-a"] == ["booked"]'

run_ok "log" ctl log
expect_match "log header" "SEQ +TIME +DOOR +READER +DIR +RESULT +REASON +MEMBER +BOOKING +UID"
run_ok "log --limit --json" ctl --json log --limit 5
json_assert "log --json (empty: only taps write the log)" 'd == []'

# ---------------------------------------------------------------- every failure: one line, nothing changed
expect_fail "unknown command" 2 "telecentrectl: unknown command 'frobnicate'; see 'telecentrectl --help'" ctl frobnicate
expect_fail "missing command" 2 "~missing command" ctl
expect_fail "unknown global option" 2 "~unknown option '--frob'" ctl --frob member list
expect_fail "unknown subcommand" 2 "~member: unknown subcommand 'explode'" ctl member explode
expect_fail "unknown option" 2 "telecentrectl: member list: unknown option '--all'; see 'telecentrectl member --help'" ctl member list --all
expect_fail "missing argument" 2 "~member add: missing ID" ctl member add --name X
expect_fail "missing --name" 2 "~member add: missing --name" ctl member add m-3
expect_fail "option without value" 2 "~--name needs a value" ctl member add m-3 --name
expect_fail "extra argument" 2 "~unexpected argument 'm-4'" ctl member show m-1 m-4
expect_fail "missing --member" 2 "~badge add: missing --member" ctl badge add 04AABBCC
expect_fail "book missing --to" 2 "~book: missing --to" ctl book --member m-1 --resource desk-01 --from "2027-04-02 09:00"
expect_fail "bad config file" 1 "~$TMP/nope.conf" "$TELECENTRECTL" -c "$TMP/nope.conf" member list
expect_fail "missing database" 1 "telecentrectl: $TMP/none.db: no database here; create it with 'telecentrectl init'" ctl -d "$TMP/none.db" member list
[[ ! -e $TMP/none.db ]] || die "missing database was created"

expect_fail "duplicate member" 1 "telecentrectl: member add m-1: already exists" ctl member add m-1 --name "Alice Again"
expect_fail "bad member id" 1 "~'bad id!' is not a valid member id" ctl member add "bad id!" --name X
expect_fail "member id too long" 1 "~is not a valid member id" ctl member add "$(printf 'x%.0s' {1..64})" --name X
expect_fail "empty name" 1 "telecentrectl: member add m-3: --name must not be empty" ctl member add m-3 --name ""
expect_fail "bad role" 1 "~--role: 'boss' is not a role" ctl member add m-3 --name X --role boss
expect_fail "bad date" 1 "telecentrectl: --until: '2027-02-30' is not a valid date (expected YYYY-MM-DD)" ctl member add m-3 --name X --until 2027-02-30
expect_fail "from after until" 1 "~--until: '2027-01-01' is before --from '2027-06-01'" ctl member add m-3 --name X --from 2027-06-01 --until 2027-01-01
expect_fail "bad email" 1 "~is not an e-mail address" ctl member add m-3 --name X --email nobody
expect_fail "show unknown member" 1 "telecentrectl: member show m-9: no member 'm-9'" ctl member show m-9
expect_fail "suspend unknown member" 1 "~no member 'm-9'" ctl member suspend m-9
expect_fail "remove unknown member" 1 "~no member 'm-9'" ctl member remove m-9

expect_fail "badge for unknown member" 1 "telecentrectl: badge add 04A1B2C9: no member 'm-9'" ctl badge add 04a1b2c9 --member m-9
expect_fail "duplicate badge" 1 "~badge add 04A1B2C3: already exists" ctl badge add 04A1B2C3 --member m-2
expect_fail "bad UID" 1 "telecentrectl: badge add: '04:A1:Z2' is not a badge UID (hex, 4, 7 or 10 bytes)" ctl badge add 04:A1:Z2 --member m-1
expect_fail "UID of 5 bytes" 1 "~'0102030405' is not a badge UID" ctl badge add 0102030405 --member m-1
expect_fail "revoke unknown badge" 1 "~no badge '04999999'" ctl badge revoke 04999999
expect_fail "revoke twice" 1 "telecentrectl: badge revoke 04000004: already revoked" ctl badge revoke 04000004
expect_fail "check bad UID" 1 "~'04:A1:Z2' is not a badge UID" ctl check 04:A1:Z2

expect_fail "duplicate resource" 1 "telecentrectl: resource add desk-01: already exists" ctl resource add desk-01 --kind desk
expect_fail "bad resource id" 1 "~'desk 9' is not a valid resource id" ctl resource add "desk 9" --kind desk
expect_fail "bad kind" 1 "~--kind: 'sofa' is not a kind" ctl resource add sofa-1 --kind sofa
expect_fail "seats 0" 1 "~--seats: '0' is not a number of seats (1..1000)" ctl resource add room-b --kind room --seats 0
expect_fail "seats 1001" 1 "~--seats: '1001'" ctl resource add room-b --kind room --seats 1001
expect_fail "seats abc" 1 "~--seats: 'abc'" ctl resource add room-b --kind room --seats abc
expect_fail "remove unknown resource" 1 "~no resource 'desk-99'" ctl resource remove desk-99
expect_fail "remove a booked resource" 1 "~resource remove desk-02: booked by" ctl resource remove desk-02

expect_fail "overlap on the resource" 1 "telecentrectl: booking refused: desk-01 is already booked by $B1 (2027-03-29 08:00–12:00)" \
    ctl book --member m-2 --resource desk-01 --from "2027-03-29 11:00" --to "2027-03-29 13:00"
expect_fail "member's second desk" 1 "telecentrectl: booking refused: m-1 already has desk booking $B1 (desk-01, 2027-03-29 08:00–12:00)" \
    ctl book --member m-1 --resource desk-02 --from "2027-03-29 11:00" --to "2027-03-29 13:00"
expect_fail "malformed time" 1 "telecentrectl: --from: '2026-13-01 08:00' is not a valid time (expected YYYY-MM-DD HH:MM)" \
    ctl book --member m-1 --resource desk-01 --from "2026-13-01 08:00" --to "2026-13-01 09:00"
expect_fail "time skipped by DST" 1 "telecentrectl: --from: '2027-03-28 02:30' does not exist in Europe/Paris (daylight-saving change)" \
    ctl book --member m-1 --resource room-a --from "2027-03-28 02:30" --to "2027-03-28 05:00"
expect_fail "--to not after --from" 1 "telecentrectl: --to: '2027-04-02 09:00' is not after --from '2027-04-02 09:00'" \
    ctl book --member m-1 --resource desk-01 --from "2027-04-02 09:00" --to "2027-04-02 09:00"
expect_fail "booking in the past" 1 "~booking refused: 2020-01-06 09:00–10:00 has already ended" \
    ctl book --member m-1 --resource desk-01 --from "2020-01-06 09:00" --to "2020-01-06 10:00"
expect_fail "book unknown member" 1 "telecentrectl: booking refused: no member 'm-9'" \
    ctl book --member m-9 --resource desk-01 --from "2027-04-02 09:00" --to "2027-04-02 10:00"
expect_fail "book unknown resource" 1 "telecentrectl: booking refused: no resource 'desk-99'" \
    ctl book --member m-1 --resource desk-99 --from "2027-04-02 09:00" --to "2027-04-02 10:00"
expect_fail "cancel unknown booking" 1 "telecentrectl: booking cancel b-999999: no booking 'b-999999'" ctl booking cancel b-999999
expect_fail "cancel twice" 1 "telecentrectl: booking cancel $BC: it is already cancelled" ctl booking cancel "$BC"
expect_fail "cancel bad id" 1 "~'x-1' is not a booking id" ctl booking cancel x-1
expect_fail "booking list bad day" 1 "~--day: '2027-3-1' is not a valid date" ctl booking list --day 2027-3-1

expect_fail "check unknown door" 1 "telecentrectl: --door: no door 'back' (configured: entrance)" ctl check 04A1B2C3 --door back
expect_fail "check bad --at" 1 "~--at: '2027-03-29 25:00' is not a valid time" ctl check 04A1B2C3 --at "2027-03-29 25:00"
expect_fail "log --limit 0" 1 "~--limit: '0'" ctl log --limit 0
expect_fail "log --limit x" 1 "~--limit: 'x'" ctl log --limit x
expect_fail "duplicate closure" 1 "telecentrectl: closure add 2027-12-24: already exists" ctl closure add 2027-12-24
expect_fail "remove missing closure" 1 "~closure remove 2027-05-06: no closure" ctl closure remove 2027-05-06
expect_fail "closure bad date" 1 "~'2027-02-29' is not a valid date" ctl closure add 2027-02-29
expect_fail "failure with --json prints nothing on stdout" 1 "~no member 'm-9'" ctl --json member show m-9

# ---------------------------------------------------------------- removals
run_ok "resource add desk-03" ctl resource add desk-03 --kind desk
run_ok "resource remove desk-03" ctl resource remove desk-03
expect_line "resource remove confirms" "removed desk desk-03 (desk-03)"
run_ok "member add m-tmp" ctl member add m-tmp --name "Temp"
run_ok "badge for m-tmp" ctl badge add 04000099 --member m-tmp
run_ok "booking for m-tmp" ctl book --member m-tmp --resource desk-01 --from "2027-04-05 09:00" --to "2027-04-05 10:00"
run_ok "member remove" ctl member remove m-tmp
expect_match "member remove confirms" "removed member m-tmp \(Temp\).*"
run_ok "after member remove" ctl --json badge list
json_assert "member remove removes the badges" 'all(b["member"] != "m-tmp" for b in d)'
run_ok "after member remove" ctl --json booking list
json_assert "member remove removes the bookings" 'all(b["member"] != "m-tmp" for b in d)'
run_ok "after member remove" ctl --json member list
json_assert "member remove removes the member" 'all(m["id"] != "m-tmp" for m in d)'

# Default configuration: without -c or $TELECENTRED_CONF, built-in defaults (only when this machine has
# no /etc/telecentred/telecentred.conf to pick up instead).
if [[ ! -e /etc/telecentred/telecentred.conf ]]; then
    run_ok "defaults with -d" env -u TELECENTRED_CONF "$TELECENTRECTL" -d "$TMP/defaults.db" --json init
    json_assert "defaults: init with -d" 'd["created"] is True'
    run_ok "defaults: check" env -u TELECENTRED_CONF "$TELECENTRECTL" -d "$TMP/defaults.db" check 04A1B2C3 --at "2027-03-29 10:00"
    [[ $OUT == "denied: unknown_badge" ]] || die "defaults: got '$OUT'"
    pass "built-in defaults (Europe/Paris) work without a configuration file"
fi

# ---------------------------------------------------------------- outbox, sync
# Only the daemon writes these (MQTT events, sync batches); here rows and meta are written as it would.
run_ok "outbox empty" ctl outbox
expect_line "outbox empty" "outbox: empty; 0 dropped"
run_ok "outbox --json empty" ctl --json outbox
json_assert "outbox --json empty" 'd == {"depth": 0, "oldest_seq": None, "oldest_at": None, "oldest_kind": None, "newest_seq": None, "dropped": 0}'
run_ok "sync none" ctl sync
expect_line "sync: site none" "site sync: none applied yet"
expect_line "sync: network none" "network sync: none applied yet"
python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for at, kind in ((1806220800, "access"), (1806220860, "alarm"), (1806220920, "access")):
    c.execute("INSERT INTO outbox(at, kind, payload) VALUES(?, ?, ?)", (at, kind, "{}"))
c.execute("DELETE FROM outbox WHERE seq=1")
c.executemany("INSERT INTO meta(key, value) VALUES(?, ?)", [("outbox_dropped", "5"), ("sync_version", "42"),
              ("sync_applied_at", "1806220800"), ("sync_version_network", "7"), ("sync_applied_at_network", "1806224400")])
c.commit()' "$DB"
run_ok "outbox" ctl outbox
expect_line "outbox shows depth, oldest and drops" "outbox: 2 events waiting, oldest #2 (alarm) at 2027-03-28 10:01; 5 dropped"
run_ok "outbox --json" ctl --json outbox
json_assert "outbox --json" 'd == {"depth": 2, "oldest_seq": 2, "oldest_at": "2027-03-28T08:01:00Z", "oldest_kind": "alarm", "newest_seq": 3, "dropped": 5}'
run_ok "sync" ctl sync
expect_line "sync: site version" "site sync: version 42, applied 2027-03-28 10:00"
expect_line "sync: network version" "network sync: version 7, applied 2027-03-28 11:00"
run_ok "sync --json" ctl --json sync
json_assert "sync --json" 'd == {"site": {"version": 42, "applied_at": "2027-03-28T08:00:00Z"}, "network": {"version": 7, "applied_at": "2027-03-28T09:00:00Z"}}'
expect_fail "outbox takes no argument" 2 "~outbox: unexpected argument 'now'" ctl outbox now
# A remote unlock in the log: no member, no UID, who asked.
python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("INSERT INTO access_log(at, door, reader, direction, result, reason, requested_by)"
          " VALUES(1806220800, \"entrance\", \"\", \"in\", \"granted\", \"remote\", \"manager-07\")")
c.commit()' "$DB"
run_ok "log with a remote unlock" ctl log --limit 1
expect_match "log shows who asked for a remote unlock" "[0-9]+ +2027-03-28 10:00 +entrance +- +in +granted +remote +by manager-07 +- +-"
run_ok "log --json with a remote unlock" ctl --json log --limit 1
json_assert "log --json: requested_by" 'd[-1]["reason"] == "remote" and d[-1]["requested_by"] == "manager-07" and d[-1]["uid"] is None and d[-1]["reader"] is None'

# ---------------------------------------------------------------- backup, export, purge
# Their usage here; tests/integration/backup.sh and privacy.sh exercise them against real data.
run_ok "help lists backup, export, purge" ctl --help
expect_match "help: backup" "  backup FILE \[--force\] +a consistent copy of the database, daemon running"
expect_match "help: export" "  export ID \[--output FILE\] +everything stored about one member, as JSON"
expect_match "help: purge" "  purge \[--dry-run\] +delete log and presence older than log_retention_days"
expect_fail "backup needs a file" 2 "~backup: missing FILE" ctl backup
expect_fail "backup: bad --step-pages" 1 "telecentrectl: --step-pages: '0' is not a number from 1 to 1000000" \
    ctl backup "$TMP/b.db" --step-pages 0
expect_fail "export needs an id" 2 "~export: missing ID" ctl export
expect_fail "purge takes no argument" 2 "~purge: unexpected argument 'all'" ctl purge all
run_ok "backup" ctl backup "$TMP/b.db"
expect_match "backup reports size, pages and time" "backed up $DB to $TMP/b.db: [0-9.]+ KiB \([0-9]+ pages of 4096 bytes\) in [0-9.]+ s"

# An older database is copied, then migrated, by whichever program opens it first; the copy is named.
"$TELECENTRECTL" -c "$CONF" -d "$TMP/old.db" init >/dev/null
python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript("DROP TABLE outbox; ALTER TABLE access_log DROP COLUMN requested_by; PRAGMA user_version=1;")
c.close()' "$TMP/old.db"
OUT=$("$TELECENTRECTL" -c "$CONF" -d "$TMP/old.db" member list 2>"$TMP/stderr") || die "member list on a v1 database failed: $(cat "$TMP/stderr")"
[[ $(cat "$TMP/stderr") == "telecentrectl: note: $TMP/old.db: migrated the database from schema 1 to 2; the old one is kept as $TMP/old.db.v1.bak" ]] ||
    die "migration note: '$(cat "$TMP/stderr")'"
python3 -c '
import sqlite3, sys
v = lambda p: sqlite3.connect(p).execute("PRAGMA user_version").fetchone()[0]
assert v(sys.argv[1] + ".v1.bak") == 1 and v(sys.argv[1]) == 2' "$TMP/old.db" || die "migration: wrong schema versions"
pass "a v1 database is copied to .v1.bak, then migrated, with a note on stderr"

# A database written by a newer telecentred is refused, not migrated backwards or misread.
"$TELECENTRECTL" -c "$CONF" -d "$TMP/newer.db" init >/dev/null
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("PRAGMA user_version=7"); c.commit()' "$TMP/newer.db"
expect_fail "newer schema refused" 1 \
    "telecentrectl: $TMP/newer.db: cannot open the database: database is from a newer version (schema 7, this program knows up to 2)" \
    "$TELECENTRECTL" -c "$CONF" -d "$TMP/newer.db" member list

echo "# all $n_checks checks passed"
