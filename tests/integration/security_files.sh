#!/usr/bin/env bash
# docs/security.md, "Files": the site's data is private whatever the umask, and neither the configuration
# nor the database, backup, export or FIFO paths can be used to make the daemon or telecentrectl write
# somewhere else. Runs the real binaries under umask 000 (the worst an operator's shell could have):
#  - the database, its -wal and -shm, a backup, an export and a .vN.bak migration copy are all 0600;
#  - a configuration file writable by others is refused (daemon, --check-config, telecentrectl);
#  - a database in a world-writable directory, or reached through a symbolic link at its own name or
#    at -wal/-journal, is refused and the link's target is untouched;
#  - a backup refuses a symbolic link, another user's file or a hard link at FILE.tmp, does not follow a
#    link at FILE.tmp-journal, and refuses a world-writable target directory;
#  - export refuses a symbolic link, and with --force another user's file; --force makes the file 0600;
#  - a sim FIFO path naming a regular file (or a link to one) is refused and the file is untouched.
# The "another user" cases need root (to chown a file to nobody); they are skipped otherwise.
set -euo pipefail

. "$(dirname "$0")/../lib/daemon-test.sh"
setup_work security-files
command -v python3 >/dev/null || fail "python3 is needed"

umask 000
ctl() { "$TELECENTRECTL" -c "$conf" "$@"; }
mode() { stat -c %a "$1"; }
expect_mode() { [[ $(mode "$1") == "$2" ]] || fail "$1 is mode $(mode "$1"), expected $2"; }
# expect_refused WHAT PATTERN CMD...: CMD exits non-zero and its stderr matches PATTERN (grep -E).
expect_refused() {
    local what=$1 pattern=$2
    shift 2
    if "$@" >"$work/out" 2>"$work/err"; then
        fail "$what: '$*' succeeded, expected a refusal"
    fi
    grep -Eq -- "$pattern" "$work/err" || fail "$what: stderr was '$(cat "$work/err")', expected /$pattern/"
}
# A file that must never change: its checksum now, compared by untouched.
canary() { printf 'canary %s\n' "$1" >"$1"; chmod 644 "$1"; }
untouched() { [[ $(cat "$1") == "canary $1" ]] || fail "$1 was written through: $(head -c 80 "$1" | od -c | head -3)"; }
is_root=false
[[ $(id -u) == 0 ]] && id nobody >/dev/null 2>&1 && is_root=true

write_conf() {   # write_conf DB [EXTRA...]: a site with one door, one sim reader and sim GPIO
    local db=$1
    shift
    cat >"$conf" <<EOF
[site]
id = sec-files
timezone = Europe/Paris

[database]
path = $db

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
unlock_ms = 300

[reader.entrance]
driver = sim
fifo = ${reader_fifo:-$work/reader.fifo}

[gpio]
driver = sim
fifo = $work/gpio.fifo
EOF
    chmod 644 "$conf"
}

start_daemon() {
    : >"$log"
    "$TELECENTRED" -c "$conf" 2>>"$log" &
    daemon_pid=$!
    wait_for "telecentred .* started" 10
}
stop_daemon() {
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || fail "the daemon exited non-zero at SIGTERM"
    daemon_pid=
}
# daemon_refuses PATTERN: the daemon exits non-zero at start with PATTERN in its log.
daemon_refuses() {
    : >"$log"
    if timeout 10 "$TELECENTRED" -c "$conf" 2>"$log"; then
        fail "the daemon started, expected it to refuse: $1"
    fi
    grep -Eq -- "$1" "$log" || fail "the daemon's refusal did not say /$1/: $(cat "$log")"
}

db=$work/site.db

# ---- 1. modes under umask 000 ----
write_conf "$db"
ctl init >/dev/null
ctl member add m-1 --name "Alice Martin" >/dev/null
ctl badge add 04A1B2C3 --member m-1 >/dev/null
expect_mode "$db" 600
start_daemon
write_fifo "$work/reader.fifo" $'04A1B2C3\n'
wait_for "in denied no_booking member=m-1\|in granted walk_in member=m-1\|in denied .* member=m-1" 5
for f in "$db-wal" "$db-shm"; do
    [[ -e $f ]] || fail "$f does not exist while the daemon runs"
    expect_mode "$f" 600
done
pass "umask 000: telecentrectl init makes the database 0600; the running daemon's -wal and -shm are 0600"

# A leftover FILE.tmp of ours with a wide mode: the backup is still 0600.
install -m 666 /dev/null "$work/site-backup.db.tmp"
ctl backup "$work/site-backup.db" >/dev/null
expect_mode "$work/site-backup.db" 600
[[ ! -e $work/site-backup.db.tmp ]] || fail "the backup left its .tmp behind"
ctl export m-1 --output "$work/m-1.json" >/dev/null
expect_mode "$work/m-1.json" 600
install -m 644 /dev/null "$work/m-1-again.json"
ctl export m-1 --output "$work/m-1-again.json" --force >/dev/null
expect_mode "$work/m-1-again.json" 600
pass "umask 000: backup (over a 0666 leftover .tmp) 0600; export 0600; export --force over a 0644 file makes it 0600"
stop_daemon

# A database the daemon creates itself, and the copy made before a migration.
write_conf "$work/fresh.db"
start_daemon
stop_daemon
expect_mode "$work/fresh.db" 600
write_conf "$db"
ctl -d "$work/old.db" init >/dev/null
python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript("DROP TABLE outbox; ALTER TABLE access_log DROP COLUMN requested_by; PRAGMA user_version=1;")
c.close()' "$work/old.db"
chmod 600 "$work/old.db"
ctl -d "$work/old.db" member list >/dev/null 2>&1 || fail "migrating old.db failed"
expect_mode "$work/old.db.v1.bak" 600
pass "umask 000: a database created by the daemon is 0600; the .v1.bak migration copy is 0600"

# A database made wider by hand: the daemon says so at start.
chmod 644 "$db"
start_daemon
grep -q "warning: database $db is open to others (mode 0644)" "$log" || fail "no warning about a 0644 database"
stop_daemon
chmod 600 "$db"
pass "a database readable by others: the daemon warns at start"

# ---- 2. the configuration file ----
chmod 666 "$conf"
daemon_refuses "$conf: writable by others \(mode 0666\): refusing it"
expect_refused "--check-config" "writable by others" "$TELECENTRED" -c "$conf" --check-config
expect_refused "telecentrectl" "writable by others" ctl member list
chmod 664 "$conf"
"$TELECENTRED" -c "$conf" --check-config >/dev/null || fail "a group-writable configuration was refused"
chmod 644 "$conf"
pass "a configuration file writable by others is refused by the daemon, --check-config and telecentrectl; group-writable is accepted"

sed -i "s|^path = .*|path = site.db|" "$conf"
expect_refused "relative db path" "\[database\] path: must be an absolute path" "$TELECENTRED" -c "$conf" --check-config
write_conf "$db"
pass "a relative [database] path is refused"

# ---- 3. the database's directory and names ----
mkdir -m 1777 "$work/public"
write_conf "$work/public/site.db"
daemon_refuses "its directory $work/public is writable by others \(mode 1777\)"
[[ ! -e $work/public/site.db ]] || fail "the database was created in a world-writable directory"
expect_refused "telecentrectl init in a world-writable directory" "writable by others" ctl init
pass "a database in a world-writable directory (sticky or not) is refused and not created"

mkdir -m 700 "$work/private"
cp "$db" "$work/private/real.db"
ln -s "$work/private/real.db" "$work/private/link.db"
write_conf "$work/private/link.db"
daemon_refuses "$work/private/link.db is a symbolic link: refusing to follow it"
expect_refused "telecentrectl on a linked database" "is a symbolic link" ctl member list

cp "$db" "$work/private/site.db"
canary "$work/private/victim"
for side in wal journal; do
    ln -sfn "$work/private/victim" "$work/private/site.db-$side"
    write_conf "$work/private/site.db"
    daemon_refuses "$work/private/site.db-$side is a symbolic link"
    expect_refused "telecentrectl with a link at -$side" "site.db-$side is a symbolic link" ctl member add m-9 --name X
    untouched "$work/private/victim"
    rm "$work/private/site.db-$side"
done
pass "a symbolic link as the database, or at its -wal or -journal, is refused; the link's target is untouched"
write_conf "$db"

# ---- 4. backup targets ----
canary "$work/victim"
ln -s "$work/victim" "$work/b1.db.tmp"
expect_refused "backup through a link at FILE.tmp" "cannot create $work/b1.db.tmp: Too many levels of symbolic links" ctl backup "$work/b1.db"
untouched "$work/victim"
[[ ! -e $work/b1.db ]] || fail "a backup was made through a link"
ln "$work/victim" "$work/b2.db.tmp"
expect_refused "backup into a hard link at FILE.tmp" "b2.db.tmp has other hard links: refusing" ctl backup "$work/b2.db"
untouched "$work/victim"
# A link at FILE.tmp-journal: the copy has no journal file, so the link is never followed.
ln -s "$work/victim" "$work/b3.db.tmp-journal"
ctl backup "$work/b3.db" >/dev/null || fail "backup with a stray link at FILE.tmp-journal failed"
untouched "$work/victim"
ctl backup "$work/public/b4.db" >/dev/null 2>"$work/err" && fail "a backup into a world-writable directory was made"
grep -q "its directory $work/public is writable by others" "$work/err" || fail "backup into /tmp-like dir said: $(cat "$work/err")"
[[ -z $(ls -A "$work/public") ]] || fail "the refused backup left files in $work/public: $(ls -A "$work/public")"
pass "backup: a link or hard link at FILE.tmp refused (target untouched); a link at FILE.tmp-journal not followed; a world-writable directory refused"

# ---- 5. export targets ----
ln -s "$work/victim" "$work/e1.json"
expect_refused "export through a link" "e1.json already exists" ctl export m-1 --output "$work/e1.json"
expect_refused "export --force through a link" "e1.json is a symbolic link" ctl export m-1 --output "$work/e1.json" --force
untouched "$work/victim"
ln "$work/victim" "$work/e2.json"
expect_refused "export --force into a hard link" "is not a file of this user alone" ctl export m-1 --output "$work/e2.json" --force
untouched "$work/victim"
pass "export: a symbolic link refused (also with --force), a hard link refused by --force; target untouched"

if $is_root; then
    chmod 755 "$work"
    canary "$work/theirs.json"
    chown nobody "$work/theirs.json"
    expect_refused "export --force into another user's file" "is not a file of this user alone" \
        ctl export m-1 --output "$work/theirs.json" --force
    untouched "$work/theirs.json"
    canary "$work/b5.db.tmp"
    chown nobody "$work/b5.db.tmp"
    expect_refused "backup into another user's FILE.tmp" "b5.db.tmp belongs to another user: refusing" ctl backup "$work/b5.db"
    untouched "$work/b5.db.tmp"
    [[ ! -e $work/b5.db ]] || fail "a backup was made through another user's .tmp"
    pass "another user's file: export --force and backup (at FILE.tmp) refuse it, untouched"
else
    echo "skip: another user's file (needs root to chown a file to nobody)"
fi

# ---- 6. sim FIFO paths ----
canary "$work/victim-fifo"
reader_fifo=$work/victim-fifo write_conf "$db"
daemon_refuses "reader entrance.*|sim FIFO|FIFO"
untouched "$work/victim-fifo"
ln -s "$work/victim" "$work/link.fifo"
reader_fifo=$work/link.fifo write_conf "$db"
daemon_refuses "reader entrance.*|sim FIFO|FIFO"
untouched "$work/victim"
pass "a sim FIFO path naming a regular file, or a link to one, is refused; the file is untouched"

echo "security_files: all checks passed"
