/* The site's database on SQLite. See store.h for the contract.
 *
 * Query shapes matter more than anything else here: a badge decision must stay well under a millisecond
 * with a million bookings. Two facts keep every hot query to one or two index seeks:
 *  - confirmed bookings of one resource never overlap (store_booking_add refuses it), so "is the resource
 *    busy at t" is "the confirmed booking with the greatest start <= t ends after t";
 *  - no booking is longer than MAX_BOOKING_S, so "bookings overlapping [from, to)" only needs the starts in
 *    [from - MAX_BOOKING_S, to), a bounded range of an index on start. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_BOOKING_S (7 * 24 * 3600)
#define BUSY_TIMEOUT_MS 5000
#define BACKUP_PAGES_PER_STEP 256       /* 1 MiB at 4 KiB pages: a step stays a few ms on an SD card */
#define BACKUP_BUSY_WAIT_MS 10000
#define BACKUP_BUSY_SLEEP_MAX_MS 100

/* ---- schema and migrations ---- */

/* Schema v1. Bookings are indexed by (member_id, status, start_at) and (resource_id, status, start_at)
 * rather than by partial indexes on confirmed rows: the same index then serves the hot "confirmed
 * bookings of X near t" seeks (status is an equality prefix) AND the foreign-key lookups SQLite does on
 * every member or resource delete, which would otherwise scan the whole bookings table. */
static const char schema_v1[] =
    "CREATE TABLE members("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " role TEXT NOT NULL CHECK(role IN('member','keyholder','manager')),"
    " email TEXT NOT NULL DEFAULT '',"
    " valid_from INTEGER NOT NULL DEFAULT 0,"
    " valid_until INTEGER NOT NULL DEFAULT 0,"
    " suspended INTEGER NOT NULL DEFAULT 0,"
    " presence_visible INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE badges("
    " uid TEXT PRIMARY KEY,"
    " member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,"
    " label TEXT NOT NULL DEFAULT '',"
    " revoked_at INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX badges_member ON badges(member_id);"
    "CREATE TABLE resources("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL CHECK(kind IN('desk','room')),"
    " name TEXT NOT NULL DEFAULT '',"
    " seats INTEGER NOT NULL DEFAULT 1 CHECK(seats>=1));"
    "CREATE TABLE bookings("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,"
    " resource_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,"
    " start_at INTEGER NOT NULL,"
    " end_at INTEGER NOT NULL,"
    " status TEXT NOT NULL CHECK(status IN('confirmed','cancelled','released')),"
    " kind TEXT NOT NULL CHECK(kind IN('reserved','walk_in')),"
    " after_hours INTEGER NOT NULL DEFAULT 0,"
    " checked_in_at INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " CHECK(start_at < end_at));"
    "CREATE INDEX bookings_member ON bookings(member_id, status, start_at);"
    "CREATE INDEX bookings_resource ON bookings(resource_id, status, start_at, end_at);"
    "CREATE INDEX bookings_noshow ON bookings(start_at) WHERE status='confirmed' AND checked_in_at=0;"
    "CREATE INDEX bookings_start ON bookings(start_at);"
    "CREATE TABLE presence("
    " member_id TEXT PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,"
    " booking_id INTEGER NOT NULL DEFAULT 0,"
    " since INTEGER NOT NULL,"
    " expected_end INTEGER NOT NULL);"
    "CREATE INDEX presence_expected_end ON presence(expected_end);"
    "CREATE TABLE access_log("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " door TEXT NOT NULL,"
    " reader TEXT NOT NULL,"
    " direction TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " member_id TEXT NOT NULL DEFAULT '',"
    " booking_id INTEGER NOT NULL DEFAULT 0,"
    " badge_uid TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX access_denied_badge ON access_log(badge_uid, at) WHERE result='denied';"
    "CREATE INDEX access_denied_reader ON access_log(reader, at) WHERE result='denied';"
    "CREATE INDEX access_at ON access_log(at);"
    "CREATE TABLE closures("
    " day INTEGER PRIMARY KEY,"
    " reason TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE meta("
    " key TEXT PRIMARY KEY,"
    " value TEXT NOT NULL);";

/* v2: the MQTT outbox; who asked for a remote unlock. */
static const char schema_v2[] =
    "CREATE TABLE outbox("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " payload TEXT NOT NULL);"
    "ALTER TABLE access_log ADD COLUMN requested_by TEXT NOT NULL DEFAULT '';";

/* migrations[n] takes the schema from version n to n + 1. A new version appends one step and bumps
 * STORE_SCHEMA_VERSION; steps run in order inside one transaction at open. */
static const char *const migrations[] = {
    schema_v1,
    schema_v2,
};
_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "one migration step per schema version");

/* ---- prepared statements ---- */

#define BOOKING_COLS "id, member_id, resource_id, start_at, end_at, status, kind, after_hours, " \
                     "checked_in_at, created_at"
#define MEMBER_COLS "id, name, role, email, valid_from, valid_until, suspended, presence_visible, created_at"
#define ACCESS_COLS "seq, at, door, reader, direction, result, reason, member_id, booking_id, badge_uid, " \
                    "requested_by"

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,

    S_MEMBER_ADD,
    S_MEMBER_GET,
    S_MEMBER_EXISTS,
    S_MEMBER_SET_SUSPENDED,
    S_MEMBER_DEL_PRESENCE,
    S_MEMBER_DEL_BOOKINGS,
    S_MEMBER_DEL_BADGES,
    S_MEMBER_ANON_LOG,
    S_MEMBER_ANON_OUTBOX_MEMBER,
    S_MEMBER_ANON_OUTBOX_BY,
    S_MEMBER_DEL,
    S_MEMBER_LIST,

    S_BADGE_ADD,
    S_BADGE_GET,
    S_BADGE_REVOKE,
    S_BADGE_LIST,

    S_RESOURCE_ADD,
    S_RESOURCE_GET,
    S_RESOURCE_DEL_BOOKINGS,
    S_RESOURCE_DEL,
    S_RESOURCE_LIST,
    S_DESK_LIST,
    S_DATA_VERSION,
    S_RESOURCE_PREV_END,

    S_RESOURCE_PREV,        /* confirmed booking of a resource with the greatest start <= t */
    S_RESOURCE_NEXT,        /* confirmed booking of a resource with the smallest start >= t */
    S_MEMBER_DESK_OVERLAP,
    S_BOOKING_ADD,
    S_BOOKING_GET,
    S_BOOKING_CANCEL,
    S_BOOKING_CHECK_IN,
    S_BOOKING_RANGE,
    S_BOOKING_ALL,
    S_MEMBER_BOOKINGS,
    S_RELEASE_NO_SHOWS,

    S_PRESENCE_ENTER,
    S_PRESENCE_GET,
    S_PRESENCE_DEL,
    S_PRESENCE_COUNT,
    S_PRESENCE_IS,
    S_PRESENCE_LIST,
    S_PRESENCE_EXPIRE,

    S_ACCESS_ADD,
    S_DENIALS_BADGE,
    S_DENIALS_READER,
    S_ACCESS_LAST,
    S_ACCESS_PURGE,

    S_PURGE_ACCESS_BATCH,
    S_PURGE_PRESENCE,
    S_PURGE_COUNT_ACCESS,
    S_PURGE_COUNT_PRESENCE,

    S_MEMBER_BOOKING_LIST,
    S_PRESENCE_OF,
    S_MEMBER_ACCESS_LIST,

    S_CLOSURE_ADD,
    S_CLOSURE_DEL,
    S_CLOSURE_IS,
    S_CLOSURE_LIST,

    S_META_GET,
    S_META_SET,

    S_MEMBER_UPSERT,
    S_BADGE_UPSERT,
    S_BADGE_DEL,
    S_RESOURCE_UPSERT,

    S_OUTBOX_ADD,
    S_OUTBOX_BOUNDS,
    S_OUTBOX_DROP,
    S_OUTBOX_LIST,
    S_OUTBOX_DELETE_THROUGH,
    S_OUTBOX_COUNT,
    S_OUTBOX_OLDEST,

    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT store_op",
    [S_RELEASE] = "RELEASE store_op",
    [S_ROLLBACK_TO] = "ROLLBACK TO store_op",

    [S_MEMBER_ADD] = "INSERT INTO members(" MEMBER_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [S_MEMBER_GET] = "SELECT " MEMBER_COLS " FROM members WHERE id=?1",
    [S_MEMBER_EXISTS] = "SELECT 1 FROM members WHERE id=?1",
    [S_MEMBER_SET_SUSPENDED] = "UPDATE members SET suspended=?2 WHERE id=?1",
    [S_MEMBER_DEL_PRESENCE] = "DELETE FROM presence WHERE member_id=?1",
    [S_MEMBER_DEL_BOOKINGS] = "DELETE FROM bookings WHERE member_id=?1",
    [S_MEMBER_DEL_BADGES] = "DELETE FROM badges WHERE member_id=?1",
    /* Runs before the member's badges are deleted: it needs them to find the rows of their UIDs. A
     * scan of the log (no index on member_id): erasure is rare, and the tap path must not pay for
     * one more index on every insert. */
    [S_MEMBER_ANON_LOG] = "UPDATE access_log SET"
                          " member_id=CASE WHEN member_id=?1 THEN '' ELSE member_id END,"
                          " requested_by=CASE WHEN requested_by=?1 THEN '' ELSE requested_by END,"
                          " badge_uid=CASE WHEN badge_uid IN (SELECT uid FROM badges WHERE member_id=?1)"
                          " THEN '' ELSE badge_uid END"
                          " WHERE member_id=?1 OR requested_by=?1"
                          " OR badge_uid IN (SELECT uid FROM badges WHERE member_id=?1)",
    /* Undelivered events keep their place and seq (the broker still gets them, anonymised). instr()
     * skips parsing the payloads that cannot name the member; json_valid() keeps a malformed row from
     * failing the whole erasure. */
    [S_MEMBER_ANON_OUTBOX_MEMBER] = "UPDATE outbox SET payload=json_replace(payload,'$.member',NULL)"
                                    " WHERE instr(payload,?1)>0"
                                    " AND CASE WHEN json_valid(payload) THEN json_extract(payload,'$.member') END=?1",
    [S_MEMBER_ANON_OUTBOX_BY] = "UPDATE outbox SET payload=json_replace(payload,'$.by',NULL)"
                                " WHERE instr(payload,?1)>0"
                                " AND CASE WHEN json_valid(payload) THEN json_extract(payload,'$.by') END=?1",
    [S_MEMBER_DEL] = "DELETE FROM members WHERE id=?1",
    [S_MEMBER_LIST] = "SELECT " MEMBER_COLS " FROM members ORDER BY id",

    [S_BADGE_ADD] = "INSERT INTO badges(uid, member_id, label, revoked_at, created_at) VALUES(?1,?2,?3,?4,?5)",
    [S_BADGE_GET] = "SELECT uid, member_id, label, revoked_at, created_at FROM badges WHERE uid=?1",
    [S_BADGE_REVOKE] = "UPDATE badges SET revoked_at=?2 WHERE uid=?1 AND revoked_at=0",
    [S_BADGE_LIST] = "SELECT uid, member_id, label, revoked_at, created_at FROM badges ORDER BY member_id, uid",

    [S_RESOURCE_ADD] = "INSERT INTO resources(id, kind, name, seats) VALUES(?1,?2,?3,?4)",
    [S_RESOURCE_GET] = "SELECT id, kind, name, seats FROM resources WHERE id=?1",
    [S_RESOURCE_DEL_BOOKINGS] = "DELETE FROM bookings WHERE resource_id=?1",
    [S_RESOURCE_DEL] = "DELETE FROM resources WHERE id=?1",
    [S_RESOURCE_LIST] = "SELECT id, kind, name, seats FROM resources ORDER BY kind, id",
    /* Per desk, two seeks on the covering bookings_resource index: the end of the latest booking that
     * started by now (confirmed bookings of one resource never overlap, so only it can cover now), and,
     * only for a desk free now, the start of its next booking. */
    [S_DATA_VERSION] = "PRAGMA data_version",
    [S_DESK_LIST] = "SELECT id FROM resources WHERE kind='desk' ORDER BY id",
    /* The end of the latest confirmed booking of a resource that started by ?2: confirmed bookings of
     * one resource never overlap, so only it can cover ?2 (one seek on the covering index). */
    [S_RESOURCE_PREV_END] = "SELECT end_at FROM bookings WHERE resource_id=?1 AND status='confirmed'"
                            " AND start_at<=?2 ORDER BY start_at DESC LIMIT 1",

    [S_RESOURCE_PREV] = "SELECT " BOOKING_COLS " FROM bookings"
                        " WHERE resource_id=?1 AND status='confirmed' AND start_at<=?2"
                        " ORDER BY start_at DESC LIMIT 1",
    [S_RESOURCE_NEXT] = "SELECT id, start_at FROM bookings"
                        " WHERE resource_id=?1 AND status='confirmed' AND start_at>=?2"
                        " ORDER BY start_at LIMIT 1",
    [S_MEMBER_DESK_OVERLAP] = "SELECT b.id FROM bookings b JOIN resources r ON r.id=b.resource_id"
                              " WHERE b.member_id=?1 AND b.status='confirmed'"
                              " AND b.start_at<?3 AND b.start_at>=?2-?4 AND b.end_at>?2"
                              " AND r.kind='desk' ORDER BY b.start_at LIMIT 1",
    [S_BOOKING_ADD] = "INSERT INTO bookings(member_id, resource_id, start_at, end_at, status, kind,"
                      " after_hours, checked_in_at, created_at) VALUES(?1,?2,?3,?4,'confirmed',?5,?6,?7,?8)",
    [S_BOOKING_GET] = "SELECT " BOOKING_COLS " FROM bookings WHERE id=?1",
    [S_BOOKING_CANCEL] = "UPDATE bookings SET status='cancelled' WHERE id=?1 AND status='confirmed'",
    [S_BOOKING_CHECK_IN] = "UPDATE bookings SET checked_in_at=?2"
                           " WHERE id=?1 AND status='confirmed' AND checked_in_at=0",
    [S_BOOKING_RANGE] = "SELECT " BOOKING_COLS " FROM bookings"
                        " WHERE start_at<?2 AND start_at>=?1-?3 AND end_at>?1 ORDER BY start_at, id",
    [S_BOOKING_ALL] = "SELECT " BOOKING_COLS " FROM bookings ORDER BY start_at, id",
    [S_MEMBER_BOOKINGS] = "SELECT id, resource_id, start_at, end_at, after_hours, checked_in_at FROM bookings"
                          " WHERE member_id=?1 AND status='confirmed'"
                          " AND start_at<?3 AND start_at>=?2-?4 AND end_at>?2"
                          " ORDER BY start_at LIMIT ?5",
    [S_RELEASE_NO_SHOWS] = "UPDATE bookings SET status='released'"
                           " WHERE status='confirmed' AND checked_in_at=0 AND start_at<=?1"
                           " AND start_at>?2-?3 AND end_at>?2",

    [S_PRESENCE_ENTER] = "INSERT OR REPLACE INTO presence(member_id, booking_id, since, expected_end)"
                         " VALUES(?1,?2,?3,?4)",
    [S_PRESENCE_GET] = "SELECT expected_end FROM presence WHERE member_id=?1",
    [S_PRESENCE_DEL] = "DELETE FROM presence WHERE member_id=?1",
    [S_PRESENCE_COUNT] = "SELECT count(*) FROM presence WHERE expected_end>?1",
    [S_PRESENCE_IS] = "SELECT 1 FROM presence WHERE member_id=?1 AND expected_end>?2",
    [S_PRESENCE_LIST] = "SELECT p.member_id, p.booking_id, p.since, p.expected_end,"
                        " m.id, m.name, m.role, m.email, m.valid_from, m.valid_until, m.suspended,"
                        " m.presence_visible, m.created_at"
                        " FROM presence p JOIN members m ON m.id=p.member_id"
                        " WHERE p.expected_end>?1 ORDER BY p.since, p.member_id",
    [S_PRESENCE_EXPIRE] = "DELETE FROM presence WHERE expected_end<=?1",

    [S_ACCESS_ADD] = "INSERT INTO access_log(at, door, reader, direction, result, reason, member_id,"
                     " booking_id, badge_uid, requested_by) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    /* Counted up to a limit (?3): the policy only asks whether a threshold is reached, and a reader
     * under attack must not make each tap count thousands of rows. */
    [S_DENIALS_BADGE] = "SELECT count(*) FROM (SELECT 1 FROM access_log WHERE result='denied' AND badge_uid=?1"
                        " AND at>=?2 LIMIT ?3)",
    [S_DENIALS_READER] = "SELECT count(*) FROM (SELECT 1 FROM access_log WHERE result='denied' AND reader=?1"
                         " AND at>=?2 LIMIT ?3)",
    [S_ACCESS_LAST] = "SELECT " ACCESS_COLS " FROM (SELECT " ACCESS_COLS " FROM access_log"
                      " ORDER BY seq DESC LIMIT ?1) ORDER BY seq",
    [S_ACCESS_PURGE] = "DELETE FROM access_log WHERE at<?1",

    /* The oldest rows first, through the index on at: each step is a bounded range of it. */
    [S_PURGE_ACCESS_BATCH] = "DELETE FROM access_log WHERE seq IN"
                             " (SELECT seq FROM access_log WHERE at<?1 ORDER BY at LIMIT ?2)",
    [S_PURGE_PRESENCE] = "DELETE FROM presence WHERE expected_end<?1",
    [S_PURGE_COUNT_ACCESS] = "SELECT count(*) FROM access_log WHERE at<?1",
    [S_PURGE_COUNT_PRESENCE] = "SELECT count(*) FROM presence WHERE expected_end<?1",

    [S_MEMBER_BOOKING_LIST] = "SELECT " BOOKING_COLS " FROM bookings WHERE member_id=?1 ORDER BY start_at, id",
    [S_PRESENCE_OF] = "SELECT member_id, booking_id, since, expected_end FROM presence WHERE member_id=?1",
    /* The same rows S_MEMBER_ANON_LOG rewrites. */
    [S_MEMBER_ACCESS_LIST] = "SELECT " ACCESS_COLS " FROM access_log"
                             " WHERE member_id=?1 OR requested_by=?1"
                             " OR badge_uid IN (SELECT uid FROM badges WHERE member_id=?1) ORDER BY seq",

    [S_CLOSURE_ADD] = "INSERT INTO closures(day, reason) VALUES(?1,?2)",
    [S_CLOSURE_DEL] = "DELETE FROM closures WHERE day=?1",
    [S_CLOSURE_IS] = "SELECT 1 FROM closures WHERE day=?1",
    [S_CLOSURE_LIST] = "SELECT day, reason FROM closures ORDER BY day",

    [S_META_GET] = "SELECT value FROM meta WHERE key=?1",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES(?1,?2)"
                   " ON CONFLICT(key) DO UPDATE SET value=excluded.value",

    [S_MEMBER_UPSERT] = "INSERT INTO members(" MEMBER_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)"
                        " ON CONFLICT(id) DO UPDATE SET name=excluded.name, role=excluded.role,"
                        " email=excluded.email, valid_from=excluded.valid_from,"
                        " valid_until=excluded.valid_until, suspended=excluded.suspended,"
                        " presence_visible=excluded.presence_visible",
    /* A badge revoked again keeps the time of its first revocation (what the CLI shows). */
    [S_BADGE_UPSERT] = "INSERT INTO badges(uid, member_id, label, revoked_at, created_at) VALUES(?1,?2,?3,?4,?5)"
                       " ON CONFLICT(uid) DO UPDATE SET member_id=excluded.member_id, label=excluded.label,"
                       " revoked_at=CASE WHEN excluded.revoked_at=0 THEN 0"
                       " WHEN badges.revoked_at<>0 THEN badges.revoked_at ELSE excluded.revoked_at END",
    [S_BADGE_DEL] = "DELETE FROM badges WHERE uid=?1",
    [S_RESOURCE_UPSERT] = "INSERT INTO resources(id, kind, name, seats) VALUES(?1,?2,?3,?4)"
                          " ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, name=excluded.name,"
                          " seats=excluded.seats",

    [S_OUTBOX_ADD] = "INSERT INTO outbox(at, kind, payload) VALUES(?1,?2,?3)",
    /* Two sub-selects, because SQLite answers a lone min() or max() of the rowid with one seek but
     * scans the table for both in one SELECT. */
    [S_OUTBOX_BOUNDS] = "SELECT (SELECT min(seq) FROM outbox), (SELECT max(seq) FROM outbox)",
    [S_OUTBOX_DROP] = "DELETE FROM outbox WHERE seq<?1",
    [S_OUTBOX_LIST] = "SELECT seq, at, kind, payload FROM outbox WHERE seq>?1 ORDER BY seq LIMIT ?2",
    [S_OUTBOX_DELETE_THROUGH] = "DELETE FROM outbox WHERE seq<=?1",
    [S_OUTBOX_COUNT] = "SELECT count(*) FROM outbox",
    [S_OUTBOX_OLDEST] = "SELECT seq, at, kind FROM outbox ORDER BY seq LIMIT 1",
};

struct store {
    sqlite3 *db;
    bool readonly;
    bool exclusive;             /* opened by STORE_EXCLUSIVE_IF_FULL's fallback */
    char *migration_backup;     /* the copy store_open made before migrating, or NULL */
    int migrated_from;
    sqlite3_stmt *stmt[S_COUNT];
    char errmsg[1024];
    /* What each desk is doing, for walk-in searches: without it every attempt costs two index seeks
     * per desk. An entry holds from the instant it was read (read_at) until its next boundary (the end
     * of its current booking, or the start of its next one). It is dropped when this connection adds a
     * booking on that desk, and the whole cache when bookings are cancelled, released or removed, desks
     * added, a transaction rolled back, or another connection commits (PRAGMA data_version). */
    struct desk_state *desks;
    size_t n_desks;
    bool desks_loaded;
    int64_t desks_data_version;
};

struct desk_state {
    char id[ID_MAX];
    bool known;
    int64_t read_at, valid_until;
    int64_t busy_until;     /* end of the booking covering read_at; 0 = free */
    int64_t next_start;     /* when free: start of the next booking; 0 = none */
};

static void desk_cache_clear(struct store *st)
{
    free(st->desks);
    st->desks = NULL;
    st->n_desks = 0;
    st->desks_loaded = false;
}

static void desk_cache_forget(struct store *st, const char *resource_id)
{
    for (size_t i = 0; i < st->n_desks; i++)
        if (strcmp(st->desks[i].id, resource_id) == 0)
            st->desks[i].known = false;
}

/* ---- errors ---- */

static void set_err(struct store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct store *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof st->errmsg, fmt, ap);
    va_end(ap);
}

static int errno_from_sqlite(int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return -EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return -ENOENT;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
        return -EINVAL;
    }
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CANTOPEN:
        return -EACCES;
    case SQLITE_CONSTRAINT:
        return -EINVAL;
    case SQLITE_TOOBIG:
        return -E2BIG;
    default:
        return -EIO;
    }
}

/* Records the connection's message for a failed SQLite call and returns the matching errno. */
static int db_fail(struct store *st, int rc, const char *what)
{
    set_err(st, "%s: %s", what, st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
    /* For open and I/O failures the OS error says more (ENOENT directory, EACCES, EIO, ENOSPC). */
    int primary = rc & 0xff;
    if (st->db && (primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR)) {
        int e = sqlite3_system_errno(st->db);
        if (e > 0)
            return -e;
    }
    return errno_from_sqlite(rc);
}

/* ---- statement helpers ---- */

/* The prepared statement, or NULL (with the error set) if it is already stepping: a callback of a
 * foreach that re-enters the same query would otherwise reset the outer iteration under its feet. */
static sqlite3_stmt *stmt_get(struct store *st, enum stmt_id id)
{
    sqlite3_stmt *s = st->stmt[id];
    if (sqlite3_stmt_busy(s)) {
        set_err(st, "re-entrant use of a statement from a callback");
        return NULL;
    }
    return s;
}

static void stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    sqlite3_bind_text(s, i, v ? v : "", -1, SQLITE_STATIC);
}

static void col_text(sqlite3_stmt *s, int i, char *out, size_t size)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    snprintf(out, size, "%s", v ? (const char *)v : "");
}

/* Runs a statement that returns no row (or whose rows do not matter). */
static int exec_stmt(struct store *st, sqlite3_stmt *s, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    int r = rc == SQLITE_DONE ? 0 : db_fail(st, rc, what);
    stmt_done(s);
    return r;
}

static int exec_id(struct store *st, enum stmt_id id, const char *what)
{
    sqlite3_stmt *s = stmt_get(st, id);
    if (!s)
        return -EBUSY;
    return exec_stmt(st, s, what);
}

/* Runs a statement returning one integer (count(*), 1 for exists). *out = 0 when there is no row. */
static int query_int64(struct store *st, sqlite3_stmt *s, int64_t *out, const char *what)
{
    int rc = sqlite3_step(s);
    int r = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        *out = 0;
    else
        r = db_fail(st, rc, what);
    stmt_done(s);
    return r;
}

/* ---- transactions ---- */

int store_begin(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        set_err(st, "a transaction is already open");
        return -EALREADY;
    }
    return exec_id(st, S_BEGIN, "begin");
}

int store_commit(struct store *st)
{
    if (sqlite3_get_autocommit(st->db)) {
        set_err(st, "no transaction is open");
        return -EINVAL;
    }
    int r = exec_id(st, S_COMMIT, "commit");
    if (r < 0 && !sqlite3_get_autocommit(st->db))
        exec_id(st, S_ROLLBACK, "rollback");
    return r;
}

int store_rollback(struct store *st)
{
    desk_cache_clear(st);   /* entries read inside the transaction may describe undone rows */
    /* SQLite rolls back by itself on some errors (disk full, I/O): then there is nothing left to undo. */
    if (sqlite3_get_autocommit(st->db))
        return 0;
    return exec_id(st, S_ROLLBACK, "rollback");
}

/* Multi-statement operations run inside op_begin/op_end. Alone they take their own BEGIN IMMEDIATE
 * (the write lock up front, so a read-then-write cannot hit SQLITE_BUSY_SNAPSHOT). Inside a caller's
 * store_begin they use a savepoint instead, so a failed operation leaves the caller's transaction as
 * it was rather than half applied. */
struct op {
    bool own_transaction;
};

static int op_begin(struct store *st, struct op *op)
{
    op->own_transaction = sqlite3_get_autocommit(st->db);
    return exec_id(st, op->own_transaction ? S_BEGIN : S_SAVEPOINT, "begin");
}

static int op_end(struct store *st, struct op *op, int r)
{
    /* Keep the message of the failure, not of the rollback. */
    char saved[sizeof st->errmsg];
    if (op->own_transaction) {
        if (r >= 0) {
            int c = exec_id(st, S_COMMIT, "commit");
            if (c == 0)
                return r;
            r = c;
        }
        snprintf(saved, sizeof saved, "%s", st->errmsg);
        if (!sqlite3_get_autocommit(st->db))
            exec_id(st, S_ROLLBACK, "rollback");
    } else {
        if (r >= 0) {
            int c = exec_id(st, S_RELEASE, "release savepoint");
            if (c == 0)
                return r;
            r = c;
        }
        snprintf(saved, sizeof saved, "%s", st->errmsg);
        if (!sqlite3_get_autocommit(st->db)) {
            exec_id(st, S_ROLLBACK_TO, "rollback to savepoint");
            exec_id(st, S_RELEASE, "release savepoint");
        }
    }
    snprintf(st->errmsg, sizeof st->errmsg, "%s", saved);
    return r;
}

/* ---- enum names ---- */

const char *resource_kind_name(enum resource_kind k)
{
    switch (k) {
    case RESOURCE_DESK:
        return "desk";
    case RESOURCE_ROOM:
        return "room";
    }
    return "?";
}

int resource_kind_parse(const char *s, enum resource_kind *out)
{
    if (!s)
        return -EINVAL;
    if (!strcmp(s, "desk"))
        *out = RESOURCE_DESK;
    else if (!strcmp(s, "room"))
        *out = RESOURCE_ROOM;
    else
        return -EINVAL;
    return 0;
}

const char *booking_status_name(enum booking_status s)
{
    switch (s) {
    case BOOKING_CONFIRMED:
        return "confirmed";
    case BOOKING_CANCELLED:
        return "cancelled";
    case BOOKING_RELEASED:
        return "released";
    }
    return "?";
}

const char *booking_kind_name(enum booking_kind k)
{
    switch (k) {
    case BOOKING_RESERVED:
        return "reserved";
    case BOOKING_WALK_IN:
        return "walk_in";
    }
    return "?";
}

static int booking_status_parse(const char *s, enum booking_status *out)
{
    for (int i = BOOKING_CONFIRMED; i <= BOOKING_RELEASED; i++)
        if (!strcmp(booking_status_name((enum booking_status)i), s)) {
            *out = (enum booking_status)i;
            return 0;
        }
    return -EINVAL;
}

static int booking_kind_parse(const char *s, enum booking_kind *out)
{
    for (int i = BOOKING_RESERVED; i <= BOOKING_WALK_IN; i++)
        if (!strcmp(booking_kind_name((enum booking_kind)i), s)) {
            *out = (enum booking_kind)i;
            return 0;
        }
    return -EINVAL;
}

static int access_result_parse(const char *s, enum access_result *out)
{
    for (int i = ACCESS_GRANTED; i <= ACCESS_DENIED; i++)
        if (!strcmp(access_result_name((enum access_result)i), s)) {
            *out = (enum access_result)i;
            return 0;
        }
    return -EINVAL;
}

static int access_reason_parse(const char *s, enum access_reason *out)
{
    for (int i = 0; i < REASON_COUNT; i++)
        if (!strcmp(access_reason_name((enum access_reason)i), s)) {
            *out = (enum access_reason)i;
            return 0;
        }
    return -EINVAL;
}

static int bad_value(struct store *st, const char *column, const unsigned char *value)
{
    set_err(st, "unexpected value '%s' in %s", value ? (const char *)value : "(null)", column);
    return -EBADMSG;
}

/* ---- backup ---- */

static int check_dir_private(const char *path, char *msg, size_t size);

/* A failure on another connection than st->db (a backup's source or destination). */
static int conn_fail(struct store *st, sqlite3 *db, int rc, const char *what)
{
    set_err(st, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    int primary = rc & 0xff;
    if (db && (primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR)) {
        int e = sqlite3_system_errno(db);
        if (e > 0)
            return -e;
    }
    return errno_from_sqlite(rc);
}

static int sys_fail(struct store *st, int e, const char *what, const char *file)
{
    set_err(st, "%s %s: %s", what, file, strerror(e));
    return -e;
}

/* fsync of the directory holding path: without it the rename itself may not survive a power cut. */
static int fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int n;
    if (!slash)
        n = snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        n = snprintf(dir, sizeof dir, "/");
    else
        n = snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (n < 0 || (size_t)n >= sizeof dir)
        return -ENAMETOOLONG;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

/* rename() that, unless overwrite, fails with EEXIST rather than replacing a file that appeared since
 * the check at the start. */
static int rename_into_place(const char *tmp, const char *path, bool overwrite)
{
    if (overwrite)
        return rename(tmp, path) < 0 ? -errno : 0;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* A filesystem without RENAME_NOREPLACE (vfat on a USB stick): link() refuses an existing name too. */
    if (link(tmp, path) == 0) {
        unlink(tmp);
        return 0;
    }
    if (errno == EEXIST)
        return -EEXIST;
    if (access(path, F_OK) == 0)
        return -EEXIST;
    return rename(tmp, path) < 0 ? -errno : 0;
}

/* Runs the backup steps from src to dest, src's read snapshot already held. */
static int backup_steps(struct store *st, sqlite3 *src, sqlite3 *dest, const struct store_backup_options *opt,
                        struct store_backup_result *res)
{
    int pages_per_step = opt->pages_per_step > 0 ? opt->pages_per_step : BACKUP_PAGES_PER_STEP;
    int busy_wait_ms = opt->busy_wait_ms > 0 ? opt->busy_wait_ms : BACKUP_BUSY_WAIT_MS;
    sqlite3_backup *b = sqlite3_backup_init(dest, "main", src, "main");
    if (!b)
        return conn_fail(st, dest, sqlite3_errcode(dest), "starting the backup");
    int rc, busy_ms = 0, busy_sleep = 1;
    for (;;) {
        rc = sqlite3_backup_step(b, pages_per_step);
        int primary = rc & 0xff;
        if (rc == SQLITE_OK || rc == SQLITE_DONE) {
            res->steps++;
            busy_ms = 0;
            busy_sleep = 1;
            res->pages = sqlite3_backup_pagecount(b);
            if (opt->progress)
                opt->progress(sqlite3_backup_remaining(b), sqlite3_backup_pagecount(b), opt->userdata);
            if (rc == SQLITE_DONE)
                break;
            if (opt->pause_ms > 0)
                sqlite3_sleep(opt->pause_ms);
        } else if ((primary == SQLITE_BUSY || primary == SQLITE_LOCKED) && busy_ms < busy_wait_ms) {
            /* Another connection holds a lock the step needs (or a WAL recovery runs): wait, bounded. */
            res->busy_retries++;
            sqlite3_sleep(busy_sleep);
            busy_ms += busy_sleep;
            busy_sleep = busy_sleep * 2 > BACKUP_BUSY_SLEEP_MAX_MS ? BACKUP_BUSY_SLEEP_MAX_MS : busy_sleep * 2;
        } else {
            break;
        }
    }
    int finish = sqlite3_backup_finish(b);
    if (rc == SQLITE_DONE && finish == SQLITE_OK)
        return 0;
    int err = rc == SQLITE_DONE ? finish : rc;
    if ((err & 0xff) == SQLITE_BUSY || (err & 0xff) == SQLITE_LOCKED) {
        set_err(st, "the database stayed busy for %d ms", busy_ms);
        return -EBUSY;
    }
    /* A failure while reading the source is in src's message, one while writing in dest's. */
    sqlite3 *which = sqlite3_errcode(dest) != SQLITE_OK ? dest : src;
    return conn_fail(st, which, err, "copying the database");
}

/* Copies the database of src to path (see store_backup): through "<path>.tmp", under src's read
 * snapshot. */
static int backup_copy(struct store *st, sqlite3 *src, const char *path, const struct store_backup_options *opt,
                       struct store_backup_result *res)
{
    memset(res, 0, sizeof *res);
    char *tmp = NULL, *journal = NULL;
    int fd = -1, r;
    sqlite3 *dest = NULL;
    bool snapshot = false, made_tmp = false;
    if (asprintf(&tmp, "%s.tmp", path) < 0 || asprintf(&journal, "%s.tmp-journal", path) < 0) {
        r = -ENOMEM;
        goto out;
    }
    struct stat sb;
    if (!opt->overwrite && lstat(path, &sb) == 0) {
        set_err(st, "%s already exists", path);
        r = -EEXIST;
        goto out;
    }
    /* 0600: a backup holds the same personal data as the database. O_NOFOLLOW: the target directory
     * may be shared. */
    fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        r = sys_fail(st, errno, "cannot create", tmp);
        goto out;
    }
    /* flock, not SQLite's fcntl locks (which closing any descriptor of the file would drop): it
     * keeps a second backup to the same target out, and tells a live .tmp from a crash's leftover. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            set_err(st, "another backup is writing %s", tmp);
            r = -EBUSY;
        } else {
            r = sys_fail(st, errno, "cannot lock", tmp);
        }
        goto out;
    }
    made_tmp = true;
    /* A leftover .tmp is reused only if it is ours alone: not a file someone else made (and could read
     * the copy from), not a hard link to another of our files (which the truncate below would wipe). */
    if (fstat(fd, &sb) < 0) {
        r = sys_fail(st, errno, "cannot stat", tmp);
        goto out;
    }
    if (sb.st_uid != geteuid() || sb.st_nlink != 1) {
        set_err(st, "%s %s: refusing to write the copy into it", tmp,
                sb.st_uid != geteuid() ? "belongs to another user" : "has other hard links");
        made_tmp = false;   /* not ours to remove */
        r = -EPERM;
        goto out;
    }
    if (fchmod(fd, 0600) < 0) {
        r = sys_fail(st, errno, "cannot chmod", tmp);
        goto out;
    }
    /* A leftover from an interrupted backup: start from an empty file, without its hot journal. */
    if (ftruncate(fd, 0) < 0) {
        r = sys_fail(st, errno, "cannot truncate", tmp);
        goto out;
    }
    if (unlink(journal) < 0 && errno != ENOENT) {
        r = sys_fail(st, errno, "cannot remove", journal);
        goto out;
    }
    int rc = sqlite3_open_v2(tmp, &dest, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        char what[PATH_MAX + 32];
        snprintf(what, sizeof what, "cannot open %s", tmp);
        r = conn_fail(st, dest, rc, what);
        goto out;
    }
    sqlite3_extended_result_codes(dest, 1);
    /* No journal file beside the copy: SQLite would create "<path>.tmp-journal" following a symbolic
     * link planted there. The copy needs no rollback journal anyway: until the rename it is not a
     * backup, and an interrupted one is started again from an empty file. */
    rc = sqlite3_exec(dest, "PRAGMA journal_mode=MEMORY", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        r = conn_fail(st, dest, rc, "setting up the copy");
        goto out;
    }

    /* One read transaction over every step: the copy is this snapshot. Without it each step takes a
     * new snapshot and any commit by the daemon restarts the copy from page 1, so under a steady
     * stream of taps a backup might never finish. In WAL mode the open reader blocks no writer. */
    rc = sqlite3_exec(src, "BEGIN; SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        r = conn_fail(st, src, rc, "reading the database");
        goto out;
    }
    snapshot = true;
    if ((r = backup_steps(st, src, dest, opt, res)) < 0)
        goto out;
    sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);   /* a read transaction: ending it cannot fail */
    snapshot = false;

    sqlite3_stmt *ps;
    if (sqlite3_prepare_v2(dest, "PRAGMA page_size", -1, &ps, NULL) == SQLITE_OK) {
        if (sqlite3_step(ps) == SQLITE_ROW)
            res->page_size = sqlite3_column_int64(ps, 0);
        sqlite3_finalize(ps);
    }
    rc = sqlite3_close(dest);
    dest = NULL;
    if (rc != SQLITE_OK) {
        r = conn_fail(st, NULL, rc, "closing the copy");
        goto out;
    }
    if (fsync(fd) < 0) {
        r = sys_fail(st, errno, "cannot sync", tmp);
        goto out;
    }
    if (fstat(fd, &sb) == 0)
        res->bytes = sb.st_size;
    if ((r = rename_into_place(tmp, path, opt->overwrite)) < 0) {
        if (r == -EEXIST)
            set_err(st, "%s already exists", path);
        else
            sys_fail(st, -r, "cannot rename the copy to", path);
        goto out;
    }
    made_tmp = false;
    if ((r = fsync_parent(path)) < 0) {
        sys_fail(st, -r, "cannot sync the directory of", path);
        goto out;
    }
    r = 0;

out:
    if (snapshot)
        sqlite3_exec(src, "ROLLBACK", NULL, NULL, NULL);
    if (dest)
        sqlite3_close(dest);
    if (made_tmp) {
        unlink(tmp);
        unlink(journal);
    }
    if (fd >= 0)
        close(fd);   /* after SQLite closed its own descriptors: see the flock above */
    free(tmp);
    free(journal);
    return r;
}

int store_backup(struct store *st, const char *path, const struct store_backup_options *opt,
                 struct store_backup_result *out)
{
    static const struct store_backup_options defaults;
    struct store_backup_result unused;
    if (!opt)
        opt = &defaults;
    if (!out)
        out = &unused;
    memset(out, 0, sizeof *out);
    if (!path || !*path) {
        set_err(st, "no backup file given");
        return -EINVAL;
    }
    if (!sqlite3_get_autocommit(st->db)) {
        set_err(st, "a backup cannot run inside a transaction");
        return -EINVAL;
    }
    char msg[PATH_MAX + 256];
    int r = check_dir_private(path, msg, sizeof msg);
    if (r < 0) {
        set_err(st, "%s", msg);
        return r;
    }
    const char *db_path = sqlite3_db_filename(st->db, "main");
    struct stat target, db;
    if (db_path && *db_path && stat(path, &target) == 0 && stat(db_path, &db) == 0 && target.st_dev == db.st_dev &&
        target.st_ino == db.st_ino) {
        set_err(st, "%s is the database itself", path);
        return -EINVAL;
    }
    return backup_copy(st, st->db, path, opt, out);
}

const char *store_migration_backup(const struct store *st, int *old_version)
{
    if (old_version)
        *old_version = st->migration_backup ? st->migrated_from : 0;
    return st->migration_backup;
}

/* Before migrating from `version`, called with the write lock held (BEGIN IMMEDIATE): copies the
 * database as it is to "<db>.v<version>.bak" through a second connection (a connection cannot be the
 * source of a backup while it holds a write transaction; the lock we hold keeps every other writer
 * out, so the copy is exactly what is about to be migrated). An existing .bak is kept: the new one
 * takes the UTC time in its name. */
static int migration_backup(struct store *st, int version)
{
    const char *db_path = sqlite3_db_filename(st->db, "main");
    if (!db_path || !*db_path)
        return 0;   /* in memory: nothing to keep */
    sqlite3 *src = NULL;
    int rc = sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        int r = conn_fail(st, src, rc, "opening the database for the copy");
        sqlite3_close(src);
        return r;
    }
    sqlite3_extended_result_codes(src, 1);
    sqlite3_busy_timeout(src, BUSY_TIMEOUT_MS);

    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
    static const struct store_backup_options opt;   /* never overwrite */
    struct store_backup_result res;
    char *path = NULL;
    int r = -EEXIST;
    for (int attempt = 0; r == -EEXIST && attempt < 100; attempt++) {
        free(path);
        int n;
        if (attempt == 0)
            n = asprintf(&path, "%s.v%d.bak", db_path, version);
        else if (attempt == 1)
            n = asprintf(&path, "%s.v%d.%s.bak", db_path, version, stamp);
        else
            n = asprintf(&path, "%s.v%d.%s.%d.bak", db_path, version, stamp, attempt);
        if (n < 0) {
            path = NULL;
            r = -ENOMEM;
            break;
        }
        r = backup_copy(st, src, path, &opt, &res);
    }
    sqlite3_close(src);
    if (r < 0) {
        free(path);
        return r;
    }
    st->migration_backup = path;
    st->migrated_from = version;
    return 0;
}

/* ---- open, migrate, close ---- */

static int read_user_version(struct store *st, int *version)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db_fail(st, rc, "reading the schema version");
    int64_t v = 0;
    int r = query_int64(st, s, &v, "reading the schema version");
    sqlite3_finalize(s);
    *version = (int)v;
    return r;
}

static int db_exec(struct store *st, const char *sql, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(st, rc, what);
}

static int migrate(struct store *st)
{
    int version;
    int r = read_user_version(st, &version);
    if (r < 0)
        return r;
    if (version > STORE_SCHEMA_VERSION) {
        set_err(st, "database is from a newer version (schema %d, this program knows up to %d)", version,
                STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    if (version == STORE_SCHEMA_VERSION)
        return 0;
    if (st->readonly) {
        set_err(st, "database has schema %d and needs migrating to %d: open it read-write", version,
                STORE_SCHEMA_VERSION);
        return -EROFS;
    }

    r = db_exec(st, "BEGIN IMMEDIATE", "migration");
    if (r < 0)
        return r;
    /* Another process may have migrated between our first read and taking the write lock. */
    r = read_user_version(st, &version);
    /* A database with data is copied first; if the copy fails, nothing is migrated. */
    if (r == 0 && version >= 1 && version < STORE_SCHEMA_VERSION && (r = migration_backup(st, version)) < 0) {
        char why[sizeof st->errmsg];
        snprintf(why, sizeof why, "%s", st->errmsg);
        set_err(st, "database has schema %d and needs migrating to %d, but the copy made first failed, so "
                    "nothing was changed: %s", version, STORE_SCHEMA_VERSION, why);
    }
    for (int v = version; r == 0 && v < STORE_SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof what, "migrating schema %d to %d", v, v + 1);
        r = db_exec(st, migrations[v], what);
    }
    if (r == 0 && version < STORE_SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", STORE_SCHEMA_VERSION);
        r = db_exec(st, sql, "setting the schema version");
    }
    if (r == 0)
        r = db_exec(st, "COMMIT", "migration");
    if (r < 0 && !sqlite3_get_autocommit(st->db)) {
        char saved[sizeof st->errmsg];
        snprintf(saved, sizeof saved, "%s", st->errmsg);
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        snprintf(st->errmsg, sizeof st->errmsg, "%s", saved);
    }
    return r;
}

static int prepare_all(struct store *st)
{
    for (int i = 0; i < S_COUNT; i++) {
        int rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL);
        if (rc != SQLITE_OK)
            return db_fail(st, rc, "preparing statements");
    }
    return 0;
}

static bool is_special_path(const char *path)
{
    return !strcmp(path, ":memory:") || !strncmp(path, "file:", 5);
}

/* The directory part of path ("." for a bare name). */
static int parent_dir(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    int n;
    if (!slash)
        n = snprintf(dir, size, ".");
    else if (slash == path)
        n = snprintf(dir, size, "/");
    else
        n = snprintf(dir, size, "%.*s", (int)(slash - path), path);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Someone who may write the directory of the database (or of a copy of it) may plant a symbolic link
 * at a name SQLite opens with O_CREAT and no O_NOFOLLOW ("-wal", "-journal", a backup's temporary
 * file), and the daemon would write the site's data through it, or a file of theirs to read it from.
 * So such a directory is refused, sticky bit or not. Group-writable is the operator's choice. A
 * missing directory is left to the open, which says so. */
static int check_dir_private(const char *path, char *msg, size_t size)
{
    char dir[PATH_MAX];
    struct stat sb;
    if (parent_dir(path, dir, sizeof dir) < 0 || stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return 0;
    if (sb.st_mode & S_IWOTH) {
        snprintf(msg, size, "%s: its directory %s is writable by others (mode %04o): refusing to keep the "
                            "site's data there (use a directory only its owner can write)",
                 path, dir, (unsigned)(sb.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* Defence in depth for the same threat in a private directory: the database and the files SQLite
 * makes beside it are never reached through a symbolic link (SQLite would follow one at "-wal" or
 * "-journal"). */
static int check_no_symlinks(const char *path, char *msg, size_t size)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char name[PATH_MAX];
        struct stat sb;
        int n = snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
        if (n < 0 || (size_t)n >= sizeof name)
            return -ENAMETOOLONG;
        if (lstat(name, &sb) == 0 && S_ISLNK(sb.st_mode)) {
            snprintf(msg, size, "%s is a symbolic link: refusing to follow it (point [database] path at the "
                                "real file)", name);
            return -ELOOP;
        }
    }
    return 0;
}

/* A new database is created here, 0600 whatever the umask: SQLite would make it 0644 minus the umask,
 * and it gives "-wal", "-shm" and "-journal" the database file's own mode. */
static void create_private(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;   /* it exists now, or cannot be made: sqlite3_open_v2 reports the latter */
    (void)fchmod(fd, 0600);   /* mode 0600 even under a umask such as 0277 */
    close(fd);
}

/* st->db on path, with extended result codes and the busy timeout every connection of ours has. */
static int open_connection(struct store *st, const char *path, int oflags)
{
    int rc = sqlite3_open_v2(path, &st->db, oflags, NULL);
    if (rc != SQLITE_OK)
        return db_fail(st, rc, path);
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    return 0;
}

int store_open_ex(const char *path, unsigned flags, struct store **out, char *err, size_t err_size)
{
    *out = NULL;
    if (err && err_size)
        err[0] = '\0';
    if (!path || !*path) {
        if (err)
            snprintf(err, err_size, "no database path");
        return -EINVAL;
    }
    bool readonly = flags & STORE_READONLY;
    if ((readonly || !(flags & STORE_CREATE)) && !is_special_path(path) && access(path, F_OK) < 0) {
        int e = errno;
        if (err)
            snprintf(err, err_size, "%s: %s", path, strerror(e));
        return -e;
    }

    if (!is_special_path(path)) {
        char msg[PATH_MAX + 256];
        int r = check_dir_private(path, msg, sizeof msg);
        if (r == 0)
            r = check_no_symlinks(path, msg, sizeof msg);
        if (r < 0) {
            if (err)
                snprintf(err, err_size, "%s", msg);
            return r;
        }
        if (!readonly && (flags & STORE_CREATE))
            create_private(path);
    }

    struct store *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->readonly = readonly;

    int oflags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                 SQLITE_OPEN_URI;
    int r;
    if ((r = open_connection(st, path, oflags)) < 0)
        goto fail;

    /* WAL lets the CLI read while the daemon writes. synchronous=FULL because an access event or a
     * booking acknowledged at the door must survive the power cut that follows it. */
    if (!readonly && (r = db_exec(st, "PRAGMA journal_mode=WAL", "enabling WAL")) < 0) {
        /* A full disk has no room for the "-shm" index that WAL shares between processes (32 KiB).
         * In exclusive locking mode SQLite keeps that index in this process's memory instead: the
         * door can still be decided from the database. */
        if (r != -ENOSPC || !(flags & STORE_EXCLUSIVE_IF_FULL))
            goto fail;
        sqlite3_close_v2(st->db);
        st->db = NULL;
        if ((r = open_connection(st, path, oflags)) < 0)
            goto fail;
        if ((r = db_exec(st, "PRAGMA locking_mode=EXCLUSIVE", "exclusive locking")) < 0 ||
            (r = db_exec(st, "PRAGMA journal_mode=WAL", "enabling WAL (exclusive)")) < 0)
            goto fail;
        st->exclusive = true;
    }
    if ((r = db_exec(st, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL", "setting pragmas")) < 0)
        goto fail;
    if ((r = migrate(st)) < 0)
        goto fail;
    if ((r = prepare_all(st)) < 0)
        goto fail;
    st->errmsg[0] = '\0';
    *out = st;
    return 0;

fail:
    if (err)
        snprintf(err, err_size, "%s", st->errmsg);
    store_close(st);
    return r;
}

bool store_exclusive(const struct store *st)
{
    return st->exclusive;
}

int store_open(const char *path, unsigned flags, struct store **out)
{
    return store_open_ex(path, flags, out, NULL, 0);
}

struct store *store_close(struct store *st)
{
    if (!st)
        return NULL;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    sqlite3_close_v2(st->db);
    desk_cache_clear(st);
    free(st->migration_backup);
    free(st);
    return NULL;
}

const char *store_errmsg(const struct store *st)
{
    if (!st)
        return "no database";
    return st->errmsg[0] ? st->errmsg : "no error";
}

int store_schema_version(struct store *st, int *version)
{
    return read_user_version(st, version);
}

/* ---- members ---- */

static int row_member(struct store *st, sqlite3_stmt *s, int c, struct member *m)
{
    memset(m, 0, sizeof *m);
    col_text(s, c + 0, m->id, sizeof m->id);
    col_text(s, c + 1, m->name, sizeof m->name);
    const unsigned char *role = sqlite3_column_text(s, c + 2);
    if (!role || member_role_parse((const char *)role, &m->role) < 0)
        return bad_value(st, "members.role", role);
    col_text(s, c + 3, m->email, sizeof m->email);
    m->valid_from = sqlite3_column_int(s, c + 4);
    m->valid_until = sqlite3_column_int(s, c + 5);
    m->suspended = sqlite3_column_int(s, c + 6) != 0;
    m->presence_visible = sqlite3_column_int(s, c + 7) != 0;
    m->created_at = sqlite3_column_int64(s, c + 8);
    return 0;
}

/* The nine columns of S_MEMBER_ADD and S_MEMBER_UPSERT, in the same order. */
static void bind_member(sqlite3_stmt *s, const struct member *m)
{
    bind_text(s, 1, m->id);
    bind_text(s, 2, m->name);
    bind_text(s, 3, member_role_name(m->role));
    bind_text(s, 4, m->email);
    sqlite3_bind_int(s, 5, m->valid_from);
    sqlite3_bind_int(s, 6, m->valid_until);
    sqlite3_bind_int(s, 7, m->suspended);
    sqlite3_bind_int(s, 8, m->presence_visible);
    sqlite3_bind_int64(s, 9, m->created_at);
}

int store_member_add(struct store *st, const struct member *m)
{
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_ADD);
    if (!s)
        return -EBUSY;
    bind_member(s, m);
    int r = exec_stmt(st, s, "adding member");
    if (r == -EEXIST)
        set_err(st, "member '%s' already exists", m->id);
    return r;
}

int store_member_get(struct store *st, const char *id, struct member *out)
{
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_GET);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    int r;
    if (rc == SQLITE_ROW)
        r = row_member(st, s, 0, out);
    else if (rc == SQLITE_DONE) {
        set_err(st, "no member '%s'", id);
        r = -ENOENT;
    } else
        r = db_fail(st, rc, "reading member");
    stmt_done(s);
    return r;
}

static int member_exists(struct store *st, const char *id)
{
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_EXISTS);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, id);
    int64_t found;
    int r = query_int64(st, s, &found, "reading member");
    if (r < 0)
        return r;
    if (!found) {
        set_err(st, "no member '%s'", id);
        return -ENOENT;
    }
    return 0;
}

int store_member_set_suspended(struct store *st, const char *id, bool suspended)
{
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_SET_SUSPENDED);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, id);
    sqlite3_bind_int(s, 2, suspended);
    int r = exec_stmt(st, s, "updating member");
    if (r == 0 && sqlite3_changes(st->db) == 0) {
        set_err(st, "no member '%s'", id);
        r = -ENOENT;
    }
    return r;
}

static int exec_with_id(struct store *st, enum stmt_id sid, const char *id, const char *what)
{
    sqlite3_stmt *s = stmt_get(st, sid);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, id);
    return exec_stmt(st, s, what);
}

/* PRAGMA secure_delete's current value (0 or 1), or -1. */
static int secure_delete_get(struct store *st)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA secure_delete", -1, &s, NULL) != SQLITE_OK)
        return -1;
    int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    return v;
}

int store_member_remove(struct store *st, const char *id)
{
    desk_cache_clear(st);   /* may free a desk */
    struct op op;
    int r = op_begin(st, &op);
    if (r < 0)
        return r;
    /* Erasure means the bytes too: with secure_delete the cells freed (and the old text of the rows
     * rewritten) are zeroed in the pages instead of lingering in the file's free space. Only for this
     * operation: zeroing on every delete would cost the purge and the outbox for nothing. */
    int secure_delete = secure_delete_get(st);
    if (secure_delete == 0)
        sqlite3_exec(st->db, "PRAGMA secure_delete=ON", NULL, NULL, NULL);
    r = member_exists(st, id);
    /* Explicit deletes rather than relying on ON DELETE CASCADE alone: the access log is not a child
     * table (its rows outlive the member, anonymised), and the order keeps each step an index lookup. */
    if (r == 0)
        r = exec_with_id(st, S_MEMBER_DEL_PRESENCE, id, "removing presence");
    if (r == 0)
        r = exec_with_id(st, S_MEMBER_DEL_BOOKINGS, id, "removing bookings");
    if (r == 0)
        r = exec_with_id(st, S_MEMBER_ANON_LOG, id, "anonymising the access log");
    if (r == 0)
        r = exec_with_id(st, S_MEMBER_DEL_BADGES, id, "removing badges");
    if (r == 0)
        r = exec_with_id(st, S_MEMBER_ANON_OUTBOX_MEMBER, id, "anonymising the outbox");
    if (r == 0)
        r = exec_with_id(st, S_MEMBER_ANON_OUTBOX_BY, id, "anonymising the outbox");
    if (r == 0)
        r = exec_with_id(st, S_MEMBER_DEL, id, "removing member");
    r = op_end(st, &op, r);
    if (secure_delete == 0)
        sqlite3_exec(st->db, "PRAGMA secure_delete=OFF", NULL, NULL, NULL);
    /* Committed: copy the zeroed pages over the old ones in the database file now, as far as readers
     * allow (PASSIVE never waits). Older frames in the WAL are overwritten as it cycles. */
    if (r == 0 && op.own_transaction)
        sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return r;
}

int store_member_foreach(struct store *st, store_member_cb cb, void *userdata)
{
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_LIST);
    if (!s)
        return -EBUSY;
    int r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct member m;
        if ((r = row_member(st, s, 0, &m)) < 0 || (r = cb(&m, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "listing members");
    stmt_done(s);
    return r;
}

/* ---- badges ---- */

static void row_badge(sqlite3_stmt *s, struct badge *b)
{
    memset(b, 0, sizeof *b);
    col_text(s, 0, b->uid, sizeof b->uid);
    col_text(s, 1, b->member_id, sizeof b->member_id);
    col_text(s, 2, b->label, sizeof b->label);
    b->revoked_at = sqlite3_column_int64(s, 3);
    b->revoked = b->revoked_at != 0;
    b->created_at = sqlite3_column_int64(s, 4);
}

/* The five columns of S_BADGE_ADD and S_BADGE_UPSERT. revoked_at != 0 is what "revoked" means in the
 * table: `revoked` decides, and a revoked badge without a time still needs a non-zero mark. */
static void bind_badge(sqlite3_stmt *s, const struct badge *b)
{
    int64_t revoked_at = 0;
    if (b->revoked)
        revoked_at = b->revoked_at ? b->revoked_at : b->created_at > 0 ? b->created_at : 1;
    bind_text(s, 1, b->uid);
    bind_text(s, 2, b->member_id);
    bind_text(s, 3, b->label);
    sqlite3_bind_int64(s, 4, revoked_at);
    sqlite3_bind_int64(s, 5, b->created_at);
}

int store_badge_add(struct store *st, const struct badge *b)
{
    sqlite3_stmt *s = stmt_get(st, S_BADGE_ADD);
    if (!s)
        return -EBUSY;
    bind_badge(s, b);
    int r = exec_stmt(st, s, "adding badge");
    if (r == -EEXIST)
        set_err(st, "badge %s already exists", b->uid);
    else if (r == -ENOENT)
        set_err(st, "no member '%s'", b->member_id);
    return r;
}

int store_badge_get(struct store *st, const char *uid, struct badge *out)
{
    sqlite3_stmt *s = stmt_get(st, S_BADGE_GET);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, uid);
    int rc = sqlite3_step(s);
    int r = 0;
    if (rc == SQLITE_ROW)
        row_badge(s, out);
    else if (rc == SQLITE_DONE) {
        set_err(st, "no badge %s", uid);
        r = -ENOENT;
    } else
        r = db_fail(st, rc, "reading badge");
    stmt_done(s);
    return r;
}

int store_badge_revoke(struct store *st, const char *uid, int64_t now)
{
    sqlite3_stmt *s = stmt_get(st, S_BADGE_REVOKE);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, uid);
    sqlite3_bind_int64(s, 2, now > 0 ? now : 1);
    int r = exec_stmt(st, s, "revoking badge");
    if (r < 0 || sqlite3_changes(st->db) > 0)
        return r;
    struct badge b;
    r = store_badge_get(st, uid, &b);
    if (r < 0)
        return r;
    set_err(st, "badge %s is already revoked", uid);
    return -EALREADY;
}

int store_badge_foreach(struct store *st, store_badge_cb cb, void *userdata)
{
    sqlite3_stmt *s = stmt_get(st, S_BADGE_LIST);
    if (!s)
        return -EBUSY;
    int r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct badge b;
        row_badge(s, &b);
        if ((r = cb(&b, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "listing badges");
    stmt_done(s);
    return r;
}

/* ---- resources ---- */

static int row_resource(struct store *st, sqlite3_stmt *s, struct resource *res)
{
    memset(res, 0, sizeof *res);
    col_text(s, 0, res->id, sizeof res->id);
    const unsigned char *kind = sqlite3_column_text(s, 1);
    if (!kind || resource_kind_parse((const char *)kind, &res->kind) < 0)
        return bad_value(st, "resources.kind", kind);
    col_text(s, 2, res->name, sizeof res->name);
    res->seats = sqlite3_column_int(s, 3);
    return 0;
}

/* The four columns of S_RESOURCE_ADD and S_RESOURCE_UPSERT. */
static void bind_resource(sqlite3_stmt *s, const struct resource *res)
{
    bind_text(s, 1, res->id);
    bind_text(s, 2, resource_kind_name(res->kind));
    bind_text(s, 3, res->name);
    sqlite3_bind_int(s, 4, res->seats);
}

int store_resource_add(struct store *st, const struct resource *res)
{
    desk_cache_clear(st);   /* may free a desk */
    sqlite3_stmt *s = stmt_get(st, S_RESOURCE_ADD);
    if (!s)
        return -EBUSY;
    bind_resource(s, res);
    int r = exec_stmt(st, s, "adding resource");
    if (r == -EEXIST)
        set_err(st, "resource '%s' already exists", res->id);
    else if (r == -EINVAL)
        set_err(st, "resource '%s': seats must be at least 1", res->id);
    return r;
}

int store_resource_get(struct store *st, const char *id, struct resource *out)
{
    sqlite3_stmt *s = stmt_get(st, S_RESOURCE_GET);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    int r;
    if (rc == SQLITE_ROW)
        r = row_resource(st, s, out);
    else if (rc == SQLITE_DONE) {
        set_err(st, "no resource '%s'", id);
        r = -ENOENT;
    } else
        r = db_fail(st, rc, "reading resource");
    stmt_done(s);
    return r;
}

int store_resource_foreach(struct store *st, store_resource_cb cb, void *userdata)
{
    sqlite3_stmt *s = stmt_get(st, S_RESOURCE_LIST);
    if (!s)
        return -EBUSY;
    int r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct resource res;
        if ((r = row_resource(st, s, &res)) < 0 || (r = cb(&res, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "listing resources");
    stmt_done(s);
    return r;
}

/* ---- bookings ---- */

static int row_booking(struct store *st, sqlite3_stmt *s, struct booking *b)
{
    memset(b, 0, sizeof *b);
    b->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, b->member_id, sizeof b->member_id);
    col_text(s, 2, b->resource_id, sizeof b->resource_id);
    b->start = sqlite3_column_int64(s, 3);
    b->end = sqlite3_column_int64(s, 4);
    const unsigned char *status = sqlite3_column_text(s, 5);
    if (!status || booking_status_parse((const char *)status, &b->status) < 0)
        return bad_value(st, "bookings.status", status);
    const unsigned char *kind = sqlite3_column_text(s, 6);
    if (!kind || booking_kind_parse((const char *)kind, &b->kind) < 0)
        return bad_value(st, "bookings.kind", kind);
    b->after_hours = sqlite3_column_int(s, 7) != 0;
    b->checked_in_at = sqlite3_column_int64(s, 8);
    b->created_at = sqlite3_column_int64(s, 9);
    return 0;
}

/* The confirmed booking of the resource with the greatest start <= t: since a resource's confirmed
 * bookings never overlap, it is the only one that can cover t. 1 if found (out filled), 0 if none. */
static int resource_prev_booking(struct store *st, const char *resource_id, int64_t t, struct booking *out)
{
    sqlite3_stmt *s = stmt_get(st, S_RESOURCE_PREV);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, resource_id);
    sqlite3_bind_int64(s, 2, t);
    int rc = sqlite3_step(s);
    int r;
    if (rc == SQLITE_ROW)
        r = row_booking(st, s, out) < 0 ? -EBADMSG : 1;
    else if (rc == SQLITE_DONE)
        r = 0;
    else
        r = db_fail(st, rc, "reading bookings");
    stmt_done(s);
    return r;
}

/* The confirmed booking of the resource with the smallest start >= t. 1 if found, 0 if none. */
static int resource_next_booking(struct store *st, const char *resource_id, int64_t t, int64_t *id,
                                 int64_t *start)
{
    sqlite3_stmt *s = stmt_get(st, S_RESOURCE_NEXT);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, resource_id);
    sqlite3_bind_int64(s, 2, t);
    int rc = sqlite3_step(s);
    int r;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        *start = sqlite3_column_int64(s, 1);
        r = 1;
    } else if (rc == SQLITE_DONE)
        r = 0;
    else
        r = db_fail(st, rc, "reading bookings");
    stmt_done(s);
    return r;
}

/* A confirmed booking of the resource overlapping [start, end): its id, or 0, or a negative errno. */
static int64_t resource_conflict(struct store *st, const char *resource_id, int64_t start, int64_t end)
{
    struct booking prev;
    int r = resource_prev_booking(st, resource_id, start, &prev);
    if (r < 0)
        return r;
    if (r == 1 && prev.end > start)
        return prev.id;
    int64_t next_id, next_start;
    r = resource_next_booking(st, resource_id, start, &next_id, &next_start);
    if (r < 0)
        return r;
    if (r == 1 && next_start < end)
        return next_id;
    return 0;
}

static int64_t member_desk_conflict(struct store *st, const char *member_id, int64_t start, int64_t end)
{
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_DESK_OVERLAP);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, member_id);
    sqlite3_bind_int64(s, 2, start);
    sqlite3_bind_int64(s, 3, end);
    sqlite3_bind_int64(s, 4, MAX_BOOKING_S);
    int64_t id;
    int r = query_int64(st, s, &id, "reading bookings");
    return r < 0 ? r : id;
}

static int booking_add_locked(struct store *st, struct booking *b, int64_t *conflict_id)
{
    int r = member_exists(st, b->member_id);
    if (r < 0)
        return r;
    struct resource res;
    if ((r = store_resource_get(st, b->resource_id, &res)) < 0)
        return r;
    if (b->start >= b->end) {
        set_err(st, "booking must end after it starts");
        return -EINVAL;
    }
    /* Every range query on bookings relies on this bound; see the top of the file. */
    if (b->end - b->start > MAX_BOOKING_S) {
        set_err(st, "booking longer than 7 days");
        return -EINVAL;
    }
    int64_t conflict = resource_conflict(st, b->resource_id, b->start, b->end);
    if (conflict < 0)
        return (int)conflict;
    if (conflict > 0) {
        set_err(st, "%s is already booked (b-%lld)", b->resource_id, (long long)conflict);
        *conflict_id = conflict;
        return -EEXIST;
    }
    if (res.kind == RESOURCE_DESK) {
        conflict = member_desk_conflict(st, b->member_id, b->start, b->end);
        if (conflict < 0)
            return (int)conflict;
        if (conflict > 0) {
            set_err(st, "%s already has a desk booked then (b-%lld)", b->member_id, (long long)conflict);
            *conflict_id = conflict;
            return -EEXIST;
        }
    }

    sqlite3_stmt *s = stmt_get(st, S_BOOKING_ADD);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, b->member_id);
    bind_text(s, 2, b->resource_id);
    sqlite3_bind_int64(s, 3, b->start);
    sqlite3_bind_int64(s, 4, b->end);
    bind_text(s, 5, booking_kind_name(b->kind));
    sqlite3_bind_int(s, 6, b->after_hours);
    sqlite3_bind_int64(s, 7, b->checked_in_at);
    sqlite3_bind_int64(s, 8, b->created_at);
    if ((r = exec_stmt(st, s, "adding booking")) < 0)
        return r;
    b->id = sqlite3_last_insert_rowid(st->db);
    b->status = BOOKING_CONFIRMED;
    return 0;
}

int store_booking_add(struct store *st, struct booking *b, int64_t *conflict_id)
{
    desk_cache_forget(st, b->resource_id);   /* its state changes with this booking */
    int64_t unused;
    if (!conflict_id)
        conflict_id = &unused;
    *conflict_id = 0;
    struct op op;
    int r = op_begin(st, &op);
    if (r < 0)
        return r;
    return op_end(st, &op, booking_add_locked(st, b, conflict_id));
}

int store_booking_get(struct store *st, int64_t id, struct booking *out)
{
    sqlite3_stmt *s = stmt_get(st, S_BOOKING_GET);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    int r;
    if (rc == SQLITE_ROW)
        r = row_booking(st, s, out);
    else if (rc == SQLITE_DONE) {
        set_err(st, "no booking b-%lld", (long long)id);
        r = -ENOENT;
    } else
        r = db_fail(st, rc, "reading booking");
    stmt_done(s);
    return r;
}

/* After an UPDATE ... WHERE id=? AND status='confirmed' changed nothing: why. */
static int booking_not_updated(struct store *st, int64_t id, const char *what)
{
    struct booking b;
    int r = store_booking_get(st, id, &b);
    if (r < 0)
        return r;
    set_err(st, "booking b-%lld is %s%s", (long long)id, booking_status_name(b.status), what);
    return -EALREADY;
}

int store_booking_cancel(struct store *st, int64_t id)
{
    desk_cache_clear(st);   /* may free a desk */
    sqlite3_stmt *s = stmt_get(st, S_BOOKING_CANCEL);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, id);
    int r = exec_stmt(st, s, "cancelling booking");
    if (r < 0 || sqlite3_changes(st->db) > 0)
        return r;
    return booking_not_updated(st, id, "");
}

int store_booking_check_in(struct store *st, int64_t id, int64_t now)
{
    sqlite3_stmt *s = stmt_get(st, S_BOOKING_CHECK_IN);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now > 0 ? now : 1);
    int r = exec_stmt(st, s, "checking in");
    if (r < 0 || sqlite3_changes(st->db) > 0)
        return r;
    struct booking b;
    if ((r = store_booking_get(st, id, &b)) < 0)
        return r;
    if (b.status == BOOKING_CONFIRMED)
        return 0;       /* already checked in: the first time stands */
    return booking_not_updated(st, id, ", not confirmed");
}

int store_booking_foreach(struct store *st, int64_t from, int64_t to, store_booking_cb cb, void *userdata)
{
    bool all = from == 0 && to == 0;
    sqlite3_stmt *s = stmt_get(st, all ? S_BOOKING_ALL : S_BOOKING_RANGE);
    if (!s)
        return -EBUSY;
    if (!all) {
        sqlite3_bind_int64(s, 1, from);
        sqlite3_bind_int64(s, 2, to);
        sqlite3_bind_int64(s, 3, MAX_BOOKING_S);
    }
    int r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct booking b;
        if ((r = row_booking(st, s, &b)) < 0 || (r = cb(&b, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "listing bookings");
    stmt_done(s);
    return r;
}

int store_member_bookings(struct store *st, const char *member_id, int64_t from, int64_t to,
                          struct policy_booking *out, size_t max)
{
    if (max == 0)
        return 0;
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_BOOKINGS);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, member_id);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, to);
    sqlite3_bind_int64(s, 4, MAX_BOOKING_S);
    sqlite3_bind_int64(s, 5, max > INT32_MAX ? INT32_MAX : (int64_t)max);
    int n = 0, rc = SQLITE_DONE;
    while ((size_t)n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct policy_booking *pb = &out[n++];
        memset(pb, 0, sizeof *pb);
        pb->id = sqlite3_column_int64(s, 0);
        col_text(s, 1, pb->resource_id, sizeof pb->resource_id);
        pb->start = sqlite3_column_int64(s, 2);
        pb->end = sqlite3_column_int64(s, 3);
        pb->after_hours = sqlite3_column_int(s, 4) != 0;
        pb->checked_in = sqlite3_column_int64(s, 5) != 0;
    }
    int r = n;
    if ((size_t)n < max && rc != SQLITE_DONE)
        r = db_fail(st, rc, "reading bookings");
    stmt_done(s);
    return r;
}

int store_release_no_shows(struct store *st, int64_t start_cutoff, int64_t end_after)
{
    sqlite3_stmt *s = stmt_get(st, S_RELEASE_NO_SHOWS);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, start_cutoff);
    sqlite3_bind_int64(s, 2, end_after);
    /* Without this bound the scan would also walk every old booking that ended unchecked while the
     * daemon was down: they stay confirmed and in the no-show index for ever. */
    sqlite3_bind_int64(s, 3, MAX_BOOKING_S);
    int r = exec_stmt(st, s, "releasing no-shows");
    if (r < 0)
        return r;
    r = sqlite3_changes(st->db);
    if (r > 0)
        desk_cache_clear(st);   /* released desks are free again */
    return r;
}

static int64_t data_version(struct store *st)
{
    int64_t v = -1;
    sqlite3_stmt *s = stmt_get(st, S_DATA_VERSION);
    if (s && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    if (s)
        stmt_done(s);
    return v;
}

static int desk_cache_load(struct store *st)
{
    sqlite3_stmt *s = stmt_get(st, S_DESK_LIST);
    if (!s)
        return -EBUSY;
    size_t cap = 0;
    int rc, r = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (st->n_desks == cap) {
            cap = cap ? cap * 2 : 64;
            struct desk_state *grown = realloc(st->desks, cap * sizeof *grown);
            if (!grown) {
                r = -ENOMEM;
                break;
            }
            st->desks = grown;
        }
        struct desk_state *d = &st->desks[st->n_desks++];
        memset(d, 0, sizeof *d);
        col_text(s, 0, d->id, sizeof d->id);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(st, rc, "listing desks");
    stmt_done(s);
    if (r < 0) {
        desk_cache_clear(st);
        return r;
    }
    st->desks_loaded = true;
    return 0;
}

static int desk_state_read(struct store *st, struct desk_state *d, int64_t now)
{
    sqlite3_stmt *s = stmt_get(st, S_RESOURCE_PREV_END);
    if (!s)
        return -EBUSY;
    sqlite3_bind_text(s, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    int rc = sqlite3_step(s);
    int64_t prev_end = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    stmt_done(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(st, rc, "reading a desk's booking");
    d->read_at = now;
    d->next_start = 0;
    if (prev_end > now) {
        d->busy_until = d->valid_until = prev_end;
    } else {
        int64_t next_id;
        int r = resource_next_booking(st, d->id, now + 1, &next_id, &d->next_start);
        if (r < 0)
            return r;
        if (r == 0)
            d->next_start = 0;
        d->busy_until = 0;
        d->valid_until = d->next_start ? d->next_start : INT64_MAX;
    }
    d->known = true;
    return 0;
}

int store_find_free_desk(struct store *st, int64_t now, int64_t until, int64_t min_free_s,
                         struct policy_free_desk *out)
{
    int64_t version = data_version(st);
    if (version < 0 || version != st->desks_data_version)
        desk_cache_clear(st);
    st->desks_data_version = version;
    int r = st->desks_loaded ? 0 : desk_cache_load(st);
    if (r < 0)
        return r;

    const struct desk_state *best = NULL;
    for (size_t i = 0; i < st->n_desks; i++) {
        struct desk_state *d = &st->desks[i];
        if (!d->known || now < d->read_at || now >= d->valid_until) {
            if ((r = desk_state_read(st, d, now)) < 0)
                return r;
        }
        if (d->busy_until)
            continue;
        if (d->next_start == 0 || d->next_start >= until) {
            best = d;                       /* free until closing: cannot do better */
            break;
        }
        if (d->next_start - now >= min_free_s && (!best || d->next_start > best->next_start))
            best = d;
    }
    if (!best) {
        set_err(st, "no free desk");
        return -ENOENT;
    }
    snprintf(out->resource_id, sizeof out->resource_id, "%s", best->id);
    out->next_start = best->next_start;
    return 0;
}

int store_resource_current_booking(struct store *st, const char *resource_id, int64_t now,
                                   struct booking *out)
{
    struct booking b;
    int r = resource_prev_booking(st, resource_id, now, &b);
    if (r < 0)
        return r;
    if (r == 0 || b.end <= now) {
        set_err(st, "%s has no booking now", resource_id);
        return -ENOENT;
    }
    *out = b;
    return 0;
}

static int resource_remove_locked(struct store *st, const char *id, int64_t now, int64_t *blocking)
{
    struct resource res;
    int r = store_resource_get(st, id, &res);
    if (r < 0)
        return r;
    /* A confirmed booking ending after now either covers now or starts after now: two seeks. */
    struct booking cur;
    int64_t block = 0;
    if ((r = resource_prev_booking(st, id, now, &cur)) < 0)
        return r;
    if (r == 1 && cur.end > now)
        block = cur.id;
    if (!block) {
        int64_t next_start;
        if ((r = resource_next_booking(st, id, now + 1, &block, &next_start)) < 0)
            return r;
        if (r == 0)
            block = 0;
    }
    if (block) {
        *blocking = block;
        set_err(st, "%s has a booking to come (b-%lld)", id, (long long)block);
        return -EBUSY;
    }
    if ((r = exec_with_id(st, S_RESOURCE_DEL_BOOKINGS, id, "removing bookings")) < 0)
        return r;
    return exec_with_id(st, S_RESOURCE_DEL, id, "removing resource");
}

int store_resource_remove(struct store *st, const char *id, int64_t now, int64_t *blocking_booking)
{
    desk_cache_clear(st);
    int64_t unused;
    if (!blocking_booking)
        blocking_booking = &unused;
    *blocking_booking = 0;
    struct op op;
    int r = op_begin(st, &op);
    if (r < 0)
        return r;
    return op_end(st, &op, resource_remove_locked(st, id, now, blocking_booking));
}

/* ---- presence ---- */

int store_presence_enter(struct store *st, const char *member_id, int64_t booking_id, int64_t now,
                         int64_t expected_end)
{
    sqlite3_stmt *s = stmt_get(st, S_PRESENCE_ENTER);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, member_id);
    sqlite3_bind_int64(s, 2, booking_id);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_int64(s, 4, expected_end);
    int r = exec_stmt(st, s, "recording presence");
    if (r == -ENOENT)
        set_err(st, "no member '%s'", member_id);
    return r;
}

int store_presence_leave(struct store *st, const char *member_id, int64_t now)
{
    sqlite3_stmt *s = stmt_get(st, S_PRESENCE_GET);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, member_id);
    int64_t expected_end;
    int r = query_int64(st, s, &expected_end, "reading presence");
    if (r < 0)
        return r;
    /* An expired row is deleted too: it means nothing any more. */
    if ((r = exec_with_id(st, S_PRESENCE_DEL, member_id, "ending presence")) < 0)
        return r;
    if (sqlite3_changes(st->db) == 0 || expected_end <= now) {
        set_err(st, "%s is not present", member_id);
        return -ENOENT;
    }
    return 0;
}

int store_presence_count(struct store *st, int64_t now)
{
    sqlite3_stmt *s = stmt_get(st, S_PRESENCE_COUNT);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, now);
    int64_t n;
    int r = query_int64(st, s, &n, "counting presence");
    return r < 0 ? r : (int)n;
}

int store_member_is_present(struct store *st, const char *member_id, int64_t now)
{
    sqlite3_stmt *s = stmt_get(st, S_PRESENCE_IS);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, member_id);
    sqlite3_bind_int64(s, 2, now);
    int64_t found;
    int r = query_int64(st, s, &found, "reading presence");
    return r < 0 ? r : found != 0;
}

int store_presence_foreach(struct store *st, int64_t now, store_presence_cb cb, void *userdata)
{
    sqlite3_stmt *s = stmt_get(st, S_PRESENCE_LIST);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, now);
    int r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct presence p = {0};
        struct member m;
        col_text(s, 0, p.member_id, sizeof p.member_id);
        p.booking_id = sqlite3_column_int64(s, 1);
        p.since = sqlite3_column_int64(s, 2);
        p.expected_end = sqlite3_column_int64(s, 3);
        if ((r = row_member(st, s, 4, &m)) < 0 || (r = cb(&p, &m, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "listing presence");
    stmt_done(s);
    return r;
}

int store_presence_expire(struct store *st, int64_t now)
{
    sqlite3_stmt *s = stmt_get(st, S_PRESENCE_EXPIRE);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, now);
    int r = exec_stmt(st, s, "expiring presence");
    return r < 0 ? r : sqlite3_changes(st->db);
}

/* ---- access log ---- */

int store_access_log(struct store *st, struct access_record *rec)
{
    sqlite3_stmt *s = stmt_get(st, S_ACCESS_ADD);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, rec->at);
    bind_text(s, 2, rec->door);
    bind_text(s, 3, rec->reader);
    bind_text(s, 4, direction_name(rec->direction));
    bind_text(s, 5, access_result_name(rec->result));
    bind_text(s, 6, access_reason_name(rec->reason));
    bind_text(s, 7, rec->member_id);
    sqlite3_bind_int64(s, 8, rec->booking_id);
    bind_text(s, 9, rec->badge_uid);
    bind_text(s, 10, rec->requested_by);
    int r = exec_stmt(st, s, "writing the access log");
    if (r == 0)
        rec->seq = sqlite3_last_insert_rowid(st->db);
    return r;
}

static int count_denials(struct store *st, enum stmt_id sid, const char *key, int64_t since, int limit)
{
    sqlite3_stmt *s = stmt_get(st, sid);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, key);
    sqlite3_bind_int64(s, 2, since);
    sqlite3_bind_int64(s, 3, limit > 0 ? limit : INT32_MAX);
    int64_t n;
    int r = query_int64(st, s, &n, "counting denials");
    return r < 0 ? r : (int)n;
}

int store_count_denials_badge(struct store *st, const char *uid, int64_t since, int limit)
{
    return count_denials(st, S_DENIALS_BADGE, uid, since, limit);
}

int store_count_denials_reader(struct store *st, const char *reader, int64_t since, int limit)
{
    return count_denials(st, S_DENIALS_READER, reader, since, limit);
}

static int row_access(struct store *st, sqlite3_stmt *s, struct access_record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->seq = sqlite3_column_int64(s, 0);
    rec->at = sqlite3_column_int64(s, 1);
    col_text(s, 2, rec->door, sizeof rec->door);
    col_text(s, 3, rec->reader, sizeof rec->reader);
    const unsigned char *v = sqlite3_column_text(s, 4);
    if (!v || direction_parse((const char *)v, &rec->direction) < 0)
        return bad_value(st, "access_log.direction", v);
    v = sqlite3_column_text(s, 5);
    if (!v || access_result_parse((const char *)v, &rec->result) < 0)
        return bad_value(st, "access_log.result", v);
    v = sqlite3_column_text(s, 6);
    if (!v || access_reason_parse((const char *)v, &rec->reason) < 0)
        return bad_value(st, "access_log.reason", v);
    col_text(s, 7, rec->member_id, sizeof rec->member_id);
    rec->booking_id = sqlite3_column_int64(s, 8);
    col_text(s, 9, rec->badge_uid, sizeof rec->badge_uid);
    col_text(s, 10, rec->requested_by, sizeof rec->requested_by);
    return 0;
}

int store_access_foreach(struct store *st, int limit, store_access_cb cb, void *userdata)
{
    sqlite3_stmt *s = stmt_get(st, S_ACCESS_LAST);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int(s, 1, limit > 0 ? limit : -1);   /* LIMIT -1: no limit */
    int r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct access_record rec;
        if ((r = row_access(st, s, &rec)) < 0 || (r = cb(&rec, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "reading the access log");
    stmt_done(s);
    return r;
}

int store_access_purge(struct store *st, int64_t before)
{
    sqlite3_stmt *s = stmt_get(st, S_ACCESS_PURGE);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, before);
    int r = exec_stmt(st, s, "purging the access log");
    return r < 0 ? r : sqlite3_changes(st->db);
}

/* ---- retention ---- */

static int purge_step_locked(struct store *st, int64_t before, int limit, struct store_purge_counts *counts)
{
    sqlite3_stmt *s = stmt_get(st, S_PURGE_ACCESS_BATCH);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, before);
    sqlite3_bind_int(s, 2, limit);
    int r = exec_stmt(st, s, "purging the access log");
    if (r < 0)
        return r;
    int64_t deleted = sqlite3_changes64(st->db);
    counts->access_log += deleted;
    if (!(s = stmt_get(st, S_PURGE_PRESENCE)))
        return -EBUSY;
    sqlite3_bind_int64(s, 1, before);
    if ((r = exec_stmt(st, s, "purging presence")) < 0)
        return r;
    counts->presence += sqlite3_changes64(st->db);
    return deleted >= limit ? 1 : 0;
}

int store_purge_step(struct store *st, int64_t before, int limit, struct store_purge_counts *counts)
{
    if (limit <= 0)
        limit = STORE_PURGE_BATCH;
    /* Counted apart, so that a step rolled back adds nothing. */
    struct store_purge_counts step = {0};
    struct op op;
    int r = op_begin(st, &op);
    if (r < 0)
        return r;
    r = op_end(st, &op, purge_step_locked(st, before, limit, &step));
    if (r >= 0) {
        counts->access_log += step.access_log;
        counts->presence += step.presence;
    }
    return r;
}

int store_purge(struct store *st, int64_t before, int limit, int pause_ms, struct store_purge_counts *counts)
{
    memset(counts, 0, sizeof *counts);
    int r;
    while ((r = store_purge_step(st, before, limit, counts)) == 1) {
        /* SQLite's busy handler polls; without a pause this loop would take the lock straight back and
         * a waiting writer in another process could starve until the whole purge is over. */
        if (pause_ms > 0 && sqlite3_get_autocommit(st->db))
            sqlite3_sleep(pause_ms);
    }
    return r;
}

int store_purge_count(struct store *st, int64_t before, struct store_purge_counts *counts)
{
    memset(counts, 0, sizeof *counts);
    sqlite3_stmt *s = stmt_get(st, S_PURGE_COUNT_ACCESS);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, before);
    int r = query_int64(st, s, &counts->access_log, "counting the access log");
    if (r < 0)
        return r;
    if (!(s = stmt_get(st, S_PURGE_COUNT_PRESENCE)))
        return -EBUSY;
    sqlite3_bind_int64(s, 1, before);
    return query_int64(st, s, &counts->presence, "counting presence");
}

/* ---- a member's own data ---- */

int store_member_booking_foreach(struct store *st, const char *member_id, store_booking_cb cb, void *userdata)
{
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_BOOKING_LIST);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, member_id);
    int r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct booking b;
        if ((r = row_booking(st, s, &b)) < 0 || (r = cb(&b, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "listing bookings");
    stmt_done(s);
    return r;
}

int store_presence_get(struct store *st, const char *member_id, struct presence *out)
{
    sqlite3_stmt *s = stmt_get(st, S_PRESENCE_OF);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, member_id);
    int rc = sqlite3_step(s);
    int r = 0;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        col_text(s, 0, out->member_id, sizeof out->member_id);
        out->booking_id = sqlite3_column_int64(s, 1);
        out->since = sqlite3_column_int64(s, 2);
        out->expected_end = sqlite3_column_int64(s, 3);
    } else if (rc == SQLITE_DONE) {
        set_err(st, "%s has no presence", member_id);
        r = -ENOENT;
    } else
        r = db_fail(st, rc, "reading presence");
    stmt_done(s);
    return r;
}

int store_member_access_foreach(struct store *st, const char *member_id, store_access_cb cb, void *userdata)
{
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_ACCESS_LIST);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, member_id);
    int r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct access_record rec;
        if ((r = row_access(st, s, &rec)) < 0 || (r = cb(&rec, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "reading the access log");
    stmt_done(s);
    return r;
}

/* ---- closures ---- */

int store_closure_add(struct store *st, int ymd, const char *reason)
{
    sqlite3_stmt *s = stmt_get(st, S_CLOSURE_ADD);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int(s, 1, ymd);
    bind_text(s, 2, reason);
    int r = exec_stmt(st, s, "adding closure");
    if (r == -EEXIST)
        set_err(st, "%d is already a closure day", ymd);
    return r;
}

int store_closure_remove(struct store *st, int ymd)
{
    sqlite3_stmt *s = stmt_get(st, S_CLOSURE_DEL);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int(s, 1, ymd);
    int r = exec_stmt(st, s, "removing closure");
    if (r == 0 && sqlite3_changes(st->db) == 0) {
        set_err(st, "%d is not a closure day", ymd);
        r = -ENOENT;
    }
    return r;
}

int store_is_closure(struct store *st, int ymd)
{
    sqlite3_stmt *s = stmt_get(st, S_CLOSURE_IS);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int(s, 1, ymd);
    int64_t found;
    int r = query_int64(st, s, &found, "reading closures");
    return r < 0 ? r : found != 0;
}

int store_closure_foreach(struct store *st, store_closure_cb cb, void *userdata)
{
    sqlite3_stmt *s = stmt_get(st, S_CLOSURE_LIST);
    if (!s)
        return -EBUSY;
    int r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char reason[TEXT_MAX];
        col_text(s, 1, reason, sizeof reason);
        if ((r = cb(sqlite3_column_int(s, 0), reason, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "listing closures");
    stmt_done(s);
    return r;
}

/* ---- upserts and deletes for the sync ---- */

int store_member_upsert(struct store *st, const struct member *m)
{
    sqlite3_stmt *s = stmt_get(st, S_MEMBER_UPSERT);
    if (!s)
        return -EBUSY;
    bind_member(s, m);
    int r = exec_stmt(st, s, "writing member");
    if (r == -EINVAL)
        set_err(st, "member '%s': invalid field", m->id);
    return r;
}

int store_badge_upsert(struct store *st, const struct badge *b)
{
    sqlite3_stmt *s = stmt_get(st, S_BADGE_UPSERT);
    if (!s)
        return -EBUSY;
    bind_badge(s, b);
    int r = exec_stmt(st, s, "writing badge");
    if (r == -ENOENT)
        set_err(st, "no member '%s'", b->member_id);
    return r;
}

int store_badge_delete(struct store *st, const char *uid)
{
    int r = exec_with_id(st, S_BADGE_DEL, uid, "removing badge");
    if (r == 0 && sqlite3_changes(st->db) == 0) {
        set_err(st, "no badge %s", uid);
        r = -ENOENT;
    }
    return r;
}

int store_resource_upsert(struct store *st, const struct resource *res)
{
    desk_cache_clear(st);   /* a desk may appear, or turn into a room */
    sqlite3_stmt *s = stmt_get(st, S_RESOURCE_UPSERT);
    if (!s)
        return -EBUSY;
    bind_resource(s, res);
    int r = exec_stmt(st, s, "writing resource");
    if (r == -EINVAL)
        set_err(st, "resource '%s': seats must be at least 1", res->id);
    return r;
}

/* ---- outbox ----
 * Rows only ever leave from the oldest end (acknowledged, or dropped by the bound) and a rolled-back
 * insert takes its AUTOINCREMENT value with it, so the queued seqs are always one contiguous range:
 * the depth is max - min + 1, two seeks, where count(*) would walk the whole table on every tap of an
 * outage. */

#define META_OUTBOX_DROPPED "outbox_dropped"

static int outbox_bounds(struct store *st, int64_t *min, int64_t *max)
{
    sqlite3_stmt *s = stmt_get(st, S_OUTBOX_BOUNDS);
    if (!s)
        return -EBUSY;
    int rc = sqlite3_step(s);
    int r = 0;
    if (rc == SQLITE_ROW) {
        *min = sqlite3_column_int64(s, 0);   /* NULL (empty table) reads as 0 */
        *max = sqlite3_column_int64(s, 1);
    } else
        r = db_fail(st, rc, "reading the outbox");
    stmt_done(s);
    return r;
}

static int64_t outbox_dropped(struct store *st)
{
    char v[32];
    if (store_meta_get(st, META_OUTBOX_DROPPED, v, sizeof v) < 0)
        return 0;
    return strtoll(v, NULL, 10);
}

static int outbox_add_locked(struct store *st, const char *kind, int64_t at, const char *payload,
                             int64_t max_depth, int64_t *seq_out)
{
    int r;
    if (max_depth > 0) {
        int64_t min, max;
        if ((r = outbox_bounds(st, &min, &max)) < 0)
            return r;
        if (max > 0 && max - min + 1 >= max_depth) {
            /* Keep the newest max_depth - 1 so the new row makes max_depth. */
            sqlite3_stmt *s = stmt_get(st, S_OUTBOX_DROP);
            if (!s)
                return -EBUSY;
            sqlite3_bind_int64(s, 1, max - max_depth + 2);
            if ((r = exec_stmt(st, s, "dropping the oldest events")) < 0)
                return r;
            int64_t dropped = sqlite3_changes64(st->db);
            char v[32];
            snprintf(v, sizeof v, "%lld", (long long)(outbox_dropped(st) + dropped));
            if ((r = store_meta_set(st, META_OUTBOX_DROPPED, v)) < 0)
                return r;
        }
    }
    sqlite3_stmt *s = stmt_get(st, S_OUTBOX_ADD);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, at);
    bind_text(s, 2, kind);
    bind_text(s, 3, payload);
    if ((r = exec_stmt(st, s, "adding an event to the outbox")) < 0)
        return r;
    if (seq_out)
        *seq_out = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int store_outbox_add(struct store *st, const char *kind, int64_t at, const char *payload, int64_t max_depth,
                     int64_t *seq_out)
{
    if (!kind || !*kind || strlen(kind) >= sizeof ((struct outbox_row *)0)->kind || !payload) {
        set_err(st, "outbox: invalid event");
        return -EINVAL;
    }
    struct op op;
    int r = op_begin(st, &op);
    if (r < 0)
        return r;
    return op_end(st, &op, outbox_add_locked(st, kind, at, payload, max_depth, seq_out));
}

int store_outbox_foreach(struct store *st, int64_t after_seq, int limit, store_outbox_cb cb, void *userdata)
{
    sqlite3_stmt *s = stmt_get(st, S_OUTBOX_LIST);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, after_seq);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : -1);
    int n = 0, r = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct outbox_row row = {.seq = sqlite3_column_int64(s, 0), .at = sqlite3_column_int64(s, 1)};
        col_text(s, 2, row.kind, sizeof row.kind);
        const unsigned char *payload = sqlite3_column_text(s, 3);
        row.payload = payload ? (const char *)payload : "";
        n++;
        if ((r = cb(&row, userdata)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(st, rc, "reading the outbox");
    stmt_done(s);
    return r < 0 ? r : n;
}

int store_outbox_delete_through(struct store *st, int64_t through_seq)
{
    sqlite3_stmt *s = stmt_get(st, S_OUTBOX_DELETE_THROUGH);
    if (!s)
        return -EBUSY;
    sqlite3_bind_int64(s, 1, through_seq);
    int r = exec_stmt(st, s, "deleting acknowledged events");
    return r < 0 ? r : sqlite3_changes(st->db);
}

int store_outbox_stats(struct store *st, struct outbox_stats *out)
{
    memset(out, 0, sizeof *out);
    /* count(*) rather than the seq span: this is for people and health, not the tap path, and it stays
     * right even if someone deleted rows by hand. */
    sqlite3_stmt *s = stmt_get(st, S_OUTBOX_COUNT);
    if (!s)
        return -EBUSY;
    int r = query_int64(st, s, &out->depth, "counting the outbox");
    if (r < 0)
        return r;
    if (!(s = stmt_get(st, S_OUTBOX_OLDEST)))
        return -EBUSY;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->oldest_seq = sqlite3_column_int64(s, 0);
        out->oldest_at = sqlite3_column_int64(s, 1);
        col_text(s, 2, out->oldest_kind, sizeof out->oldest_kind);
    } else if (rc != SQLITE_DONE)
        r = db_fail(st, rc, "reading the outbox");
    stmt_done(s);
    if (r < 0)
        return r;
    int64_t min;
    if ((r = outbox_bounds(st, &min, &out->newest_seq)) < 0)
        return r;
    out->dropped = outbox_dropped(st);
    return 0;
}

/* ---- meta ---- */

int store_meta_get(struct store *st, const char *key, char *out, size_t size)
{
    sqlite3_stmt *s = stmt_get(st, S_META_GET);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, key);
    int rc = sqlite3_step(s);
    int r = 0;
    if (rc == SQLITE_ROW)
        col_text(s, 0, out, size);
    else if (rc == SQLITE_DONE) {
        set_err(st, "no meta key '%s'", key);
        r = -ENOENT;
    } else
        r = db_fail(st, rc, "reading meta");
    stmt_done(s);
    return r;
}

int store_meta_set(struct store *st, const char *key, const char *value)
{
    sqlite3_stmt *s = stmt_get(st, S_META_SET);
    if (!s)
        return -EBUSY;
    bind_text(s, 1, key);
    bind_text(s, 2, value);
    return exec_stmt(st, s, "writing meta");
}

/* ---- diagnostics ---- */

static const struct {
    const char *name;
    enum stmt_id id;
} explainable[] = {
    {"member_bookings", S_MEMBER_BOOKINGS},
    {"resource_prev", S_RESOURCE_PREV},
    {"resource_next", S_RESOURCE_NEXT},
    {"member_desk_overlap", S_MEMBER_DESK_OVERLAP},
    {"booking_range", S_BOOKING_RANGE},
    {"release_no_shows", S_RELEASE_NO_SHOWS},
    {"presence_count", S_PRESENCE_COUNT},
    {"denials_badge", S_DENIALS_BADGE},
    {"denials_reader", S_DENIALS_READER},
    {"badge_get", S_BADGE_GET},
    {"member_get", S_MEMBER_GET},
};

int store_explain(struct store *st, const char *query, char *out, size_t size)
{
    const char *sql = NULL;
    for (size_t i = 0; i < sizeof explainable / sizeof explainable[0]; i++)
        if (!strcmp(explainable[i].name, query))
            sql = stmt_sql[explainable[i].id];
    if (!sql) {
        set_err(st, "no query named '%s'", query);
        return -ENOENT;
    }
    char *text;
    if (asprintf(&text, "EXPLAIN QUERY PLAN %s", sql) < 0)
        return -ENOMEM;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, text, -1, &s, NULL);
    free(text);
    if (rc != SQLITE_OK)
        return db_fail(st, rc, "explaining");
    size_t len = 0;
    if (size)
        out[0] = '\0';
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *detail = sqlite3_column_text(s, 3);
        int n = snprintf(out + len, size - len, "%s%s", len ? "; " : "", detail ? (const char *)detail : "");
        if (n < 0 || (size_t)n >= size - len) {
            sqlite3_finalize(s);
            set_err(st, "query plan longer than the buffer");
            return -ENOBUFS;
        }
        len += (size_t)n;
    }
    int r = rc == SQLITE_DONE ? 0 : db_fail(st, rc, "explaining");
    sqlite3_finalize(s);
    return r;
}
