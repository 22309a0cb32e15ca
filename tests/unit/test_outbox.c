/* The store's MQTT side (schema v2): the outbox, the sync upserts and deletes, who asked for a remote
 * unlock in the access log, and the migration of a schema-v1 database that already holds data. A real
 * SQLite file in a temporary directory per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"

#define T0 1795000000

struct fixture {
    char dir[64];
    char path[128];
    struct store *st;
};

static int setup_dir(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_outbox.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/site.db", f->dir);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    setup_dir(state);
    struct fixture *f = *state;
    assert_int_equal(store_open(f->path, STORE_CREATE, &f->st), 0);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    testutil_remove_dir(f->dir);
    free(f);
    return 0;
}

struct rows {
    int n;
    struct access_record recs[8];
};

static int keep_row(const struct access_record *rec, void *userdata)
{
    struct rows *r = userdata;
    if (r->n < 8)
        r->recs[r->n] = *rec;
    r->n++;
    return 0;
}

/* ---- outbox ---- */

struct seen {
    int n;
    int64_t seqs[64];
    char text[1024];
    size_t len;
    int stop_after;
};

static int collect(const struct outbox_row *row, void *userdata)
{
    struct seen *s = userdata;
    if (s->n < 64)
        s->seqs[s->n] = row->seq;
    s->n++;
    int w = snprintf(s->text + s->len, sizeof s->text - s->len, "%s%lld %s %lld %s", s->len ? "|" : "",
                     (long long)row->seq, row->kind, (long long)row->at, row->payload);
    assert_true(w > 0 && (size_t)w < sizeof s->text - s->len);
    s->len += (size_t)w;
    return s->stop_after && s->n >= s->stop_after;
}

static int64_t add(struct store *st, const char *kind, int64_t at, const char *payload, int64_t max)
{
    int64_t seq = -1;
    int r = store_outbox_add(st, kind, at, payload, max, &seq);
    if (r != 0)
        fail_msg("store_outbox_add: %d %s", r, store_errmsg(st));
    assert_true(seq > 0);
    return seq;
}

static void test_outbox_order_and_foreach(void **state)
{
    struct fixture *f = *state;
    struct outbox_stats os;
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 0);
    assert_int_equal(os.oldest_seq, 0);
    assert_int_equal(os.oldest_at, 0);
    assert_string_equal(os.oldest_kind, "");
    assert_int_equal(os.newest_seq, 0);
    assert_int_equal(os.dropped, 0);

    assert_int_equal(add(f->st, "access", T0, "{\"a\":1}", 0), 1);
    assert_int_equal(add(f->st, "alarm", T0 + 1, "{\"b\":2}", 0), 2);
    assert_int_equal(add(f->st, "access", T0 + 2, "{\"c\":3}", 0), 3);
    assert_int_equal(store_outbox_add(f->st, "access", T0, "{}", 0, NULL), 0);   /* seq_out optional */

    struct seen s = {0};
    assert_int_equal(store_outbox_foreach(f->st, 0, 0, collect, &s), 4);
    char expect[256];
    snprintf(expect, sizeof expect, "1 access %d {\"a\":1}|2 alarm %d {\"b\":2}|3 access %d {\"c\":3}|4 access %d {}",
             T0, T0 + 1, T0 + 2, T0);
    assert_string_equal(s.text, expect);

    /* after_seq and limit: what the sender uses to resume and to cap what is in flight. */
    memset(&s, 0, sizeof s);
    assert_int_equal(store_outbox_foreach(f->st, 1, 2, collect, &s), 2);
    assert_int_equal(s.seqs[0], 2);
    assert_int_equal(s.seqs[1], 3);
    /* A callback stops the walk. */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    assert_int_equal(store_outbox_foreach(f->st, 0, 0, collect, &s), 1);

    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 4);
    assert_int_equal(os.oldest_seq, 1);
    assert_int_equal(os.oldest_at, T0);
    assert_string_equal(os.oldest_kind, "access");
    assert_int_equal(os.newest_seq, 4);

    assert_int_equal(store_outbox_add(f->st, "", T0, "{}", 0, NULL), -EINVAL);
    assert_int_equal(store_outbox_add(f->st, "a-kind-far-too-long", T0, "{}", 0, NULL), -EINVAL);
    assert_int_equal(store_outbox_add(f->st, "access", T0, NULL, 0, NULL), -EINVAL);
}

static void test_outbox_delete_through(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 5; i++)
        add(f->st, "access", T0 + i, "{}", 0);
    assert_int_equal(store_outbox_delete_through(f->st, 3), 3);
    assert_int_equal(store_outbox_delete_through(f->st, 3), 0);   /* a repeated PUBACK batch */
    struct outbox_stats os;
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 2);
    assert_int_equal(os.oldest_seq, 4);
    assert_int_equal(os.oldest_at, T0 + 3);
    assert_int_equal(os.newest_seq, 5);
    assert_int_equal(os.dropped, 0);   /* acknowledged is not dropped */

    /* Emptied, seqs go on from where they were: never reused, even across a reopen. */
    assert_int_equal(store_outbox_delete_through(f->st, 5), 2);
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 0);
    assert_int_equal(os.newest_seq, 0);
    f->st = store_close(f->st);
    assert_int_equal(store_open(f->path, 0, &f->st), 0);
    assert_int_equal(add(f->st, "alarm", T0, "{}", 0), 6);
}

static void test_outbox_bound_drops_oldest(void **state)
{
    struct fixture *f = *state;
    for (int i = 1; i <= 5; i++)
        assert_int_equal(add(f->st, "access", T0 + i, "{}", 5), i);
    struct outbox_stats os;
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 5);
    assert_int_equal(os.dropped, 0);

    assert_int_equal(add(f->st, "access", T0 + 6, "{}", 5), 6);   /* drops #1 */
    assert_int_equal(add(f->st, "access", T0 + 7, "{}", 5), 7);   /* drops #2 */
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 5);
    assert_int_equal(os.oldest_seq, 3);
    assert_int_equal(os.newest_seq, 7);
    assert_int_equal(os.dropped, 2);

    /* A smaller bound (configuration changed) trims at once down to it. */
    assert_int_equal(add(f->st, "access", T0 + 8, "{}", 2), 8);
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 2);
    assert_int_equal(os.oldest_seq, 7);
    assert_int_equal(os.dropped, 6);

    /* max_depth 0: no bound. The counter persists across a reopen. */
    for (int i = 0; i < 10; i++)
        add(f->st, "access", T0, "{}", 0);
    f->st = store_close(f->st);
    assert_int_equal(store_open(f->path, 0, &f->st), 0);
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 12);
    assert_int_equal(os.dropped, 6);
    char v[32];
    assert_int_equal(store_meta_get(f->st, "outbox_dropped", v, sizeof v), 0);
    assert_string_equal(v, "6");

    /* The bound of 1 keeps only the newest. */
    assert_int_equal(add(f->st, "alarm", T0, "{}", 1), 19);
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 1);
    assert_int_equal(os.oldest_seq, 19);
    assert_int_equal(os.dropped, 18);
}

static void test_outbox_in_callers_transaction(void **state)
{
    struct fixture *f = *state;
    add(f->st, "access", T0, "{}", 0);

    /* Rolled back with the caller's transaction: the row and its seq are gone. */
    assert_int_equal(store_begin(f->st), 0);
    struct access_record rec = {.at = T0, .result = ACCESS_GRANTED, .reason = REASON_KEYHOLDER};
    assert_int_equal(store_access_log(f->st, &rec), 0);
    assert_int_equal(add(f->st, "access", T0, "{\"x\":1}", 0), 2);
    assert_int_equal(store_rollback(f->st), 0);
    struct outbox_stats os;
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 1);
    assert_int_equal(os.newest_seq, 1);
    struct rows rows = {0};
    assert_int_equal(store_access_foreach(f->st, 0, keep_row, &rows), 0);
    assert_int_equal(rows.n, 0);

    /* Rolled back, drops undo too: rows and counter. */
    assert_int_equal(store_begin(f->st), 0);
    add(f->st, "access", T0, "{}", 1);
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.dropped, 1);
    assert_int_equal(store_rollback(f->st), 0);
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 1);
    assert_int_equal(os.oldest_seq, 1);
    assert_int_equal(os.dropped, 0);

    /* Committed with it: the next seq follows the last committed one, no gap. */
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(add(f->st, "access", T0, "{}", 0), 2);
    assert_int_equal(store_commit(f->st), 0);
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 2);
}

/* ---- access log: requested_by ---- */

static void test_access_requested_by(void **state)
{
    struct fixture *f = *state;
    struct access_record rec = {.at = T0, .direction = DIRECTION_IN, .result = ACCESS_GRANTED,
                                .reason = REASON_REMOTE};
    snprintf(rec.door, sizeof rec.door, "entrance");
    snprintf(rec.requested_by, sizeof rec.requested_by, "manager-07");
    assert_int_equal(store_access_log(f->st, &rec), 0);
    struct access_record tap = {.at = T0 + 1, .direction = DIRECTION_IN, .result = ACCESS_DENIED,
                                .reason = REASON_UNKNOWN_BADGE};
    snprintf(tap.badge_uid, sizeof tap.badge_uid, "DEADBEEF");
    assert_int_equal(store_access_log(f->st, &tap), 0);

    struct rows rows = {0};
    assert_int_equal(store_access_foreach(f->st, 0, keep_row, &rows), 0);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.recs[0].requested_by, "manager-07");
    assert_int_equal(rows.recs[0].reason, REASON_REMOTE);
    assert_string_equal(rows.recs[0].door, "entrance");
    assert_string_equal(rows.recs[0].reader, "");
    assert_string_equal(rows.recs[1].requested_by, "");
    assert_string_equal(rows.recs[1].badge_uid, "DEADBEEF");
}

/* ---- upserts and deletes ---- */

static void test_member_upsert(void **state)
{
    struct fixture *f = *state;
    struct member m = {.role = ROLE_MEMBER, .created_at = T0, .valid_from = 20260101};
    snprintf(m.id, sizeof m.id, "m-1");
    snprintf(m.name, sizeof m.name, "Ana");
    assert_int_equal(store_member_upsert(f->st, &m), 0);
    struct member got;
    assert_int_equal(store_member_get(f->st, "m-1", &got), 0);
    assert_string_equal(got.name, "Ana");
    assert_int_equal(got.valid_from, 20260101);
    assert_int_equal(got.created_at, T0);

    /* Update: every field but id and created_at. */
    m.role = ROLE_KEYHOLDER;
    snprintf(m.name, sizeof m.name, "Ana B.");
    snprintf(m.email, sizeof m.email, "ana@example.org");
    m.valid_from = 0;
    m.valid_until = 20271231;
    m.suspended = true;
    m.presence_visible = true;
    m.created_at = T0 + 999;
    assert_int_equal(store_member_upsert(f->st, &m), 0);
    assert_int_equal(store_member_get(f->st, "m-1", &got), 0);
    assert_string_equal(got.name, "Ana B.");
    assert_int_equal(got.role, ROLE_KEYHOLDER);
    assert_string_equal(got.email, "ana@example.org");
    assert_int_equal(got.valid_from, 0);
    assert_int_equal(got.valid_until, 20271231);
    assert_true(got.suspended);
    assert_true(got.presence_visible);
    assert_int_equal(got.created_at, T0);
}

static void test_badge_upsert_delete(void **state)
{
    struct fixture *f = *state;
    struct member m = {.role = ROLE_MEMBER, .created_at = T0};
    snprintf(m.id, sizeof m.id, "m-1");
    assert_int_equal(store_member_upsert(f->st, &m), 0);
    snprintf(m.id, sizeof m.id, "m-2");
    assert_int_equal(store_member_upsert(f->st, &m), 0);

    struct badge b = {.created_at = T0};
    snprintf(b.uid, sizeof b.uid, "04A1B2C3");
    snprintf(b.member_id, sizeof b.member_id, "m-9");
    assert_int_equal(store_badge_upsert(f->st, &b), -ENOENT);
    assert_string_equal(store_errmsg(f->st), "no member 'm-9'");

    snprintf(b.member_id, sizeof b.member_id, "m-1");
    snprintf(b.label, sizeof b.label, "blue");
    assert_int_equal(store_badge_upsert(f->st, &b), 0);
    struct badge got;
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &got), 0);
    assert_string_equal(got.member_id, "m-1");
    assert_false(got.revoked);

    /* Moved to another member, relabelled, revoked; a second revocation keeps the first time. */
    snprintf(b.member_id, sizeof b.member_id, "m-2");
    snprintf(b.label, sizeof b.label, "red");
    b.revoked = true;
    b.revoked_at = T0 + 10;
    b.created_at = T0 + 5;
    assert_int_equal(store_badge_upsert(f->st, &b), 0);
    b.revoked_at = T0 + 20;
    assert_int_equal(store_badge_upsert(f->st, &b), 0);
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &got), 0);
    assert_string_equal(got.member_id, "m-2");
    assert_string_equal(got.label, "red");
    assert_true(got.revoked);
    assert_int_equal(got.revoked_at, T0 + 10);
    assert_int_equal(got.created_at, T0);
    /* Reinstated. */
    b.revoked = false;
    assert_int_equal(store_badge_upsert(f->st, &b), 0);
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &got), 0);
    assert_false(got.revoked);
    assert_int_equal(got.revoked_at, 0);

    assert_int_equal(store_badge_delete(f->st, "04A1B2C3"), 0);
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &got), -ENOENT);
    assert_int_equal(store_badge_delete(f->st, "04A1B2C3"), -ENOENT);
    assert_string_equal(store_errmsg(f->st), "no badge 04A1B2C3");
}

static void test_resource_upsert(void **state)
{
    struct fixture *f = *state;
    struct resource r = {.kind = RESOURCE_DESK, .seats = 1};
    snprintf(r.id, sizeof r.id, "desk-1");
    snprintf(r.name, sizeof r.name, "Window");
    assert_int_equal(store_resource_upsert(f->st, &r), 0);
    struct resource got;
    assert_int_equal(store_resource_get(f->st, "desk-1", &got), 0);
    assert_string_equal(got.name, "Window");

    /* The free-desk cache sees the change of kind. */
    struct policy_free_desk fd;
    assert_int_equal(store_find_free_desk(f->st, T0, T0 + 3600, 60, &fd), 0);
    assert_string_equal(fd.resource_id, "desk-1");
    r.kind = RESOURCE_ROOM;
    r.seats = 8;
    snprintf(r.name, sizeof r.name, "Meeting");
    assert_int_equal(store_resource_upsert(f->st, &r), 0);
    assert_int_equal(store_resource_get(f->st, "desk-1", &got), 0);
    assert_int_equal(got.kind, RESOURCE_ROOM);
    assert_int_equal(got.seats, 8);
    assert_int_equal(store_find_free_desk(f->st, T0, T0 + 3600, 60, &fd), -ENOENT);

    r.seats = 0;
    assert_int_equal(store_resource_upsert(f->st, &r), -EINVAL);
}

static void test_upserts_in_callers_transaction(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_begin(f->st), 0);
    struct member m = {.role = ROLE_MEMBER, .created_at = T0};
    snprintf(m.id, sizeof m.id, "m-1");
    assert_int_equal(store_member_upsert(f->st, &m), 0);
    struct badge b = {.created_at = T0};
    snprintf(b.uid, sizeof b.uid, "AABBCCDD");
    snprintf(b.member_id, sizeof b.member_id, "m-1");   /* the member written just before */
    assert_int_equal(store_badge_upsert(f->st, &b), 0);
    struct resource r = {.kind = RESOURCE_DESK, .seats = 1};
    snprintf(r.id, sizeof r.id, "d-1");
    assert_int_equal(store_resource_upsert(f->st, &r), 0);
    /* A failing step leaves the transaction usable (the sync reports it and rolls back whole). */
    snprintf(b.member_id, sizeof b.member_id, "m-9");
    assert_int_equal(store_badge_upsert(f->st, &b), -ENOENT);
    assert_int_equal(store_rollback(f->st), 0);

    struct member got;
    assert_int_equal(store_member_get(f->st, "m-1", &got), -ENOENT);
    struct badge gb;
    assert_int_equal(store_badge_get(f->st, "AABBCCDD", &gb), -ENOENT);
    struct resource gr;
    assert_int_equal(store_resource_get(f->st, "d-1", &gr), -ENOENT);
}

/* ---- migration from schema v1 ---- */

/* Schema v1 exactly as telecentred 0.1 (issue 2) created it: a frozen copy, so that a change to the
 * current schema cannot quietly change what this test migrates from. */
static const char frozen_schema_v1[] =
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


static void exec_sql(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
}

/* The first column of the first row as an integer. */
static int query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    return v;
}

/* A schema-v1 database with one member, at path. */
static void make_v1(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_sql(db, "PRAGMA journal_mode=WAL");
    exec_sql(db, frozen_schema_v1);
    exec_sql(db, "INSERT INTO members(id, name, role, created_at) VALUES('m-1','Ana','member',1795000000);"
                 "PRAGMA user_version=1;");
    sqlite3_close(db);
}

static void test_migrate_v1_with_rows(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    exec_sql(db, "PRAGMA journal_mode=WAL");
    exec_sql(db, frozen_schema_v1);
    exec_sql(db,
             "INSERT INTO members(id, name, role, created_at) VALUES('m-1','Ana','member',1795000000);"
             "INSERT INTO badges(uid, member_id, created_at) VALUES('04A1B2C3','m-1',1795000000);"
             "INSERT INTO resources(id, kind, name) VALUES('desk-1','desk','Window');"
             "INSERT INTO bookings(member_id, resource_id, start_at, end_at, status, kind, created_at)"
             " VALUES('m-1','desk-1',1795003600,1795007200,'confirmed','reserved',1795000000);"
             "INSERT INTO access_log(at, door, reader, direction, result, reason, member_id, booking_id,"
             " badge_uid) VALUES(1795000100,'front','front','in','granted','booking','m-1',1,'04A1B2C3');"
             "INSERT INTO access_log(at, door, reader, direction, result, reason, badge_uid)"
             " VALUES(1795000200,'front','front','in','denied','unknown_badge','DEADBEEF');"
             "INSERT INTO meta(key, value) VALUES('site','x');"
             "PRAGMA user_version=1;");
    sqlite3_close(db);

    assert_int_equal(store_open(f->path, 0, &f->st), 0);
    int v = 0;
    assert_int_equal(store_schema_version(f->st, &v), 0);
    assert_int_equal(v, 2);

    struct member m;
    assert_int_equal(store_member_get(f->st, "m-1", &m), 0);
    assert_string_equal(m.name, "Ana");
    struct badge b;
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &b), 0);
    struct booking bk;
    assert_int_equal(store_booking_get(f->st, 1, &bk), 0);
    assert_string_equal(bk.resource_id, "desk-1");
    char value[16];
    assert_int_equal(store_meta_get(f->st, "site", value, sizeof value), 0);
    assert_string_equal(value, "x");

    struct rows rows = {0};
    assert_int_equal(store_access_foreach(f->st, 0, keep_row, &rows), 0);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.recs[0].seq, 1);
    assert_string_equal(rows.recs[0].member_id, "m-1");
    assert_string_equal(rows.recs[0].requested_by, "");   /* the new column's default */
    assert_int_equal(rows.recs[1].reason, REASON_UNKNOWN_BADGE);

    /* The new table works and the log goes on from its last seq. */
    assert_int_equal(add(f->st, "access", T0, "{}", 0), 1);
    struct access_record rec = {.at = T0, .result = ACCESS_GRANTED, .reason = REASON_REMOTE};
    snprintf(rec.requested_by, sizeof rec.requested_by, "manager-07");
    assert_int_equal(store_access_log(f->st, &rec), 0);
    assert_int_equal(rec.seq, 3);

    /* The copy made before migrating: schema 1, the rows as they were, intact. */
    int old_version = 0;
    char bak[256];
    snprintf(bak, sizeof bak, "%s.v1.bak", f->path);
    assert_non_null(store_migration_backup(f->st, &old_version));
    assert_string_equal(store_migration_backup(f->st, NULL), bak);
    assert_int_equal(old_version, 1);
    assert_int_equal(sqlite3_open(bak, &db), SQLITE_OK);
    assert_int_equal(query_int(db, "PRAGMA user_version"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM access_log"), 2);
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name='outbox'"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM members WHERE id='m-1'"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check='ok'"), 1);
    sqlite3_close(db);

    /* Reopening does not migrate again. */
    f->st = store_close(f->st);
    assert_int_equal(store_open(f->path, STORE_READONLY, &f->st), 0);
    assert_null(store_migration_backup(f->st, &old_version));
    assert_int_equal(old_version, 0);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_access_foreach(f->st, 0, keep_row, &rows), 0);
    assert_int_equal(rows.n, 3);
    assert_string_equal(rows.recs[2].requested_by, "manager-07");
}

static void test_migrate_v1_readonly_refused(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    exec_sql(db, frozen_schema_v1);
    exec_sql(db, "PRAGMA user_version=1");
    sqlite3_close(db);
    char err[256];
    assert_int_equal(store_open_ex(f->path, STORE_READONLY, &f->st, err, sizeof err), -EROFS);
    assert_string_equal(err, "database has schema 1 and needs migrating to 2: open it read-write");
}


/* A .bak from an earlier upgrade is kept: the new copy takes the time in its name. */
static void test_migrate_keeps_existing_backup(void **state)
{
    struct fixture *f = *state;
    char bak[256];
    snprintf(bak, sizeof bak, "%s.v1.bak", f->path);
    FILE *old = fopen(bak, "w");
    assert_non_null(old);
    fputs("the earlier copy", old);
    fclose(old);
    make_v1(f->path);

    assert_int_equal(store_open(f->path, 0, &f->st), 0);
    const char *copy = store_migration_backup(f->st, NULL);
    assert_non_null(copy);
    /* "<db>.v1.YYYYmmddTHHMMSSZ.bak" */
    size_t base = strlen(f->path) + strlen(".v1.");
    assert_int_equal(strlen(copy), base + strlen("20261118T080000Z") + strlen(".bak"));
    assert_memory_equal(copy, bak, base);
    assert_int_equal(copy[base + 8], 'T');
    assert_string_equal(copy + base + 15, "Z.bak");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(copy, &db), SQLITE_OK);
    assert_int_equal(query_int(db, "PRAGMA user_version"), 1);
    sqlite3_close(db);

    char text[64] = "";
    assert_non_null(old = fopen(bak, "r"));
    assert_non_null(fgets(text, sizeof text, old));
    fclose(old);
    assert_string_equal(text, "the earlier copy");
}

/* If the copy fails, the open fails, says why, and the database is not migrated. */
static void test_migrate_refused_when_backup_fails(void **state)
{
    struct fixture *f = *state;
    make_v1(f->path);
    char blocker[256];
    snprintf(blocker, sizeof blocker, "%s.v1.bak.tmp", f->path);   /* a directory where the copy goes */
    assert_int_equal(mkdir(blocker, 0700), 0);

    char err[1024];
    int r = store_open_ex(f->path, 0, &f->st, err, sizeof err);
    rmdir(blocker);
    assert_int_equal(r, -EISDIR);
    assert_null(f->st);
    char want[1024];
    snprintf(want, sizeof want,
             "database has schema 1 and needs migrating to 2, but the copy made first failed, so nothing was "
             "changed: cannot create %s: Is a directory",
             blocker);
    assert_string_equal(err, want);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(query_int(db, "PRAGMA user_version"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name='outbox'"), 0);
    sqlite3_close(db);
    char bak[256];
    snprintf(bak, sizeof bak, "%s.v1.bak", f->path);
    assert_int_not_equal(access(bak, F_OK), 0);

    /* Once the obstacle is gone, the next open copies and migrates. */
    assert_int_equal(store_open(f->path, 0, &f->st), 0);
    assert_string_equal(store_migration_backup(f->st, NULL), bak);
}

/* A new database has nothing to keep: no copy. */
static void test_new_database_not_copied(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_open(f->path, STORE_CREATE, &f->st), 0);
    assert_null(store_migration_backup(f->st, NULL));
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        assert_null(strstr(e->d_name, ".bak"));
    closedir(d);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define T_EMPTY(name) cmocka_unit_test_setup_teardown(name, setup_dir, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_outbox_order_and_foreach),
        T(test_outbox_delete_through),
        T(test_outbox_bound_drops_oldest),
        T(test_outbox_in_callers_transaction),
        T(test_access_requested_by),
        T(test_member_upsert),
        T(test_badge_upsert_delete),
        T(test_resource_upsert),
        T(test_upserts_in_callers_transaction),
        T_EMPTY(test_migrate_v1_with_rows),
        T_EMPTY(test_migrate_v1_readonly_refused),
        T_EMPTY(test_migrate_keeps_existing_backup),
        T_EMPTY(test_migrate_refused_when_backup_fails),
        T_EMPTY(test_new_database_not_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
