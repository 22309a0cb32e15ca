/* The store against a real SQLite file in a temporary directory per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"

#define HOUR 3600
#define DAY (24 * HOUR)
#define T0 1795000000   /* some instant in 2026 */

struct fixture {
    char dir[64];
    char path[128];
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/site.db", f->dir);
    assert_int_equal(store_open(f->path, STORE_CREATE, &f->st), 0);
    *state = f;
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

/* ---- helpers ---- */

/* Accumulates what a foreach callback saw, for one string comparison. */
struct text {
    char s[1024];
    size_t len;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s + t->len, sizeof t->s - t->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof t->s - t->len);
    t->len += (size_t)n;
}

static void add_member(struct store *st, const char *id, enum member_role role)
{
    struct member m = {.role = role, .created_at = T0};
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.name, sizeof m.name, "Name of %s", id);
    assert_int_equal(store_member_add(st, &m), 0);
}

static void add_resource(struct store *st, const char *id, enum resource_kind kind)
{
    struct resource r = {.kind = kind, .seats = 1};
    snprintf(r.id, sizeof r.id, "%s", id);
    assert_int_equal(store_resource_add(st, &r), 0);
}

static void add_badge(struct store *st, const char *uid, const char *member)
{
    struct badge b = {.created_at = T0};
    snprintf(b.uid, sizeof b.uid, "%s", uid);
    snprintf(b.member_id, sizeof b.member_id, "%s", member);
    assert_int_equal(store_badge_add(st, &b), 0);
}

/* store_booking_add's result; *id gets the new id or the conflicting one. */
static int book(struct store *st, const char *member, const char *resource, int64_t start, int64_t end,
                int64_t *id)
{
    struct booking b = {.start = start, .end = end, .kind = BOOKING_RESERVED, .created_at = T0};
    snprintf(b.member_id, sizeof b.member_id, "%s", member);
    snprintf(b.resource_id, sizeof b.resource_id, "%s", resource);
    int64_t conflict = -1;
    int r = store_booking_add(st, &b, &conflict);
    if (id)
        *id = r == 0 ? b.id : conflict;
    if (r == 0)
        assert_int_equal(conflict, 0);
    return r;
}

static int64_t must_book(struct store *st, const char *member, const char *resource, int64_t start, int64_t end)
{
    int64_t id;
    int r = book(st, member, resource, start, end, &id);
    if (r != 0)
        fail_msg("booking %s %s failed: %d %s", member, resource, r, store_errmsg(st));
    assert_true(id > 0);
    return id;
}

static void log_access(struct store *st, int64_t at, const char *reader, enum access_result result,
                       enum access_reason reason, const char *member, const char *uid, int64_t *seq)
{
    struct access_record rec = {.at = at, .direction = DIRECTION_IN, .result = result, .reason = reason};
    snprintf(rec.door, sizeof rec.door, "front");
    snprintf(rec.reader, sizeof rec.reader, "%s", reader);
    snprintf(rec.member_id, sizeof rec.member_id, "%s", member);
    snprintf(rec.badge_uid, sizeof rec.badge_uid, "%s", uid);
    assert_int_equal(store_access_log(st, &rec), 0);
    if (seq)
        *seq = rec.seq;
}

/* ---- open, schema ---- */

static void test_open_create_and_reopen(void **state)
{
    struct fixture *f = *state;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.db", f->dir);
    struct store *st = (struct store *)1;
    assert_int_equal(store_open(missing, 0, &st), -ENOENT);
    assert_null(st);
    assert_int_equal(access(missing, F_OK), -1);   /* not created by the failed open */

    add_member(f->st, "m-1", ROLE_MEMBER);
    int v = 0;
    assert_int_equal(store_schema_version(f->st, &v), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    assert_int_equal(v, 2);
    f->st = store_close(f->st);
    assert_null(f->st);

    assert_int_equal(store_open(f->path, 0, &f->st), 0);
    struct member m;
    assert_int_equal(store_member_get(f->st, "m-1", &m), 0);
    assert_string_equal(m.name, "Name of m-1");
    assert_int_equal(store_schema_version(f->st, &v), 0);
    assert_int_equal(v, 2);
    assert_null(store_close(NULL));
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    f->st = store_close(f->st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    char err[256];
    assert_int_equal(store_open_ex(f->path, 0, &f->st, err, sizeof err), -EPROTO);
    assert_null(f->st);
    assert_non_null(strstr(err, "newer version"));
}

static void test_wal_and_foreign_keys(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);

    /* Foreign keys are on for the store's connection: children of unknown members are refused. */
    assert_int_equal(store_presence_enter(f->st, "nobody", 0, T0, T0 + HOUR), -ENOENT);
    struct badge b = {.uid = "04A1B2C3", .member_id = "nobody", .created_at = T0};
    assert_int_equal(store_badge_add(f->st, &b), -ENOENT);
    assert_non_null(strstr(store_errmsg(f->st), "nobody"));
}

static void test_readonly(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    struct store *ro;
    assert_int_equal(store_open(f->path, STORE_READONLY, &ro), 0);
    struct member m;
    assert_int_equal(store_member_get(ro, "m-1", &m), 0);
    struct member m2 = {.id = "m-2", .name = "x", .role = ROLE_MEMBER};
    assert_int_equal(store_member_add(ro, &m2), -EROFS);
    store_close(ro);
}

/* ---- members ---- */

static int collect_member_ids(const struct member *m, void *userdata)
{
    text_add(userdata, "%s,", m->id);
    return 0;
}

static int stop_after_first(const struct member *m, void *userdata)
{
    (*(int *)userdata)++;
    return 42;
}

static void test_members(void **state)
{
    struct fixture *f = *state;
    struct member m = {.id = "m-2", .name = "Élodie Martin", .role = ROLE_KEYHOLDER, .email = "e@example.org",
                       .valid_from = 20260101, .valid_until = 20261231, .presence_visible = true,
                       .created_at = T0};
    assert_int_equal(store_member_add(f->st, &m), 0);
    assert_int_equal(store_member_add(f->st, &m), -EEXIST);
    add_member(f->st, "m-1", ROLE_MEMBER);

    struct member got;
    assert_int_equal(store_member_get(f->st, "m-2", &got), 0);
    assert_string_equal(got.name, "Élodie Martin");
    assert_int_equal(got.role, ROLE_KEYHOLDER);
    assert_string_equal(got.email, "e@example.org");
    assert_int_equal(got.valid_from, 20260101);
    assert_int_equal(got.valid_until, 20261231);
    assert_false(got.suspended);
    assert_true(got.presence_visible);
    assert_int_equal(got.created_at, T0);
    assert_int_equal(store_member_get(f->st, "m-9", &got), -ENOENT);

    assert_int_equal(store_member_set_suspended(f->st, "m-2", true), 0);
    assert_int_equal(store_member_get(f->st, "m-2", &got), 0);
    assert_true(got.suspended);
    assert_int_equal(store_member_set_suspended(f->st, "m-2", false), 0);
    assert_int_equal(store_member_get(f->st, "m-2", &got), 0);
    assert_false(got.suspended);
    assert_int_equal(store_member_set_suspended(f->st, "m-9", true), -ENOENT);

    struct text ids = {0};
    assert_int_equal(store_member_foreach(f->st, collect_member_ids, &ids), 0);
    assert_string_equal(ids.s, "m-1,m-2,");
    int calls = 0;
    assert_int_equal(store_member_foreach(f->st, stop_after_first, &calls), 42);
    assert_int_equal(calls, 1);
}

static void test_long_strings_truncate(void **state)
{
    struct fixture *f = *state;
    /* Written straight into the table so the text is longer than the struct's buffer. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[1024];
    char name[400];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(sql, sizeof sql, "INSERT INTO members(id,name,role,created_at) VALUES('m-long','%s','member',0)",
             name);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct member m;
    assert_int_equal(store_member_get(f->st, "m-long", &m), 0);
    assert_int_equal(strlen(m.name), NAME_MAX_LEN - 1);
}

struct access_rows {
    int n;
    struct access_record rec[16];
};

static int collect_access(const struct access_record *rec, void *userdata)
{
    struct access_rows *rows = userdata;
    if (rows->n < 16)
        rows->rec[rows->n++] = *rec;
    return 0;
}

static void test_member_remove(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_member(f->st, "m-2", ROLE_MEMBER);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    add_resource(f->st, "desk-2", RESOURCE_DESK);
    add_badge(f->st, "04A1B2C3", "m-1");
    add_badge(f->st, "04A1B2C4", "m-2");
    int64_t b1 = must_book(f->st, "m-1", "desk-1", T0, T0 + HOUR);
    int64_t b2 = must_book(f->st, "m-2", "desk-2", T0, T0 + HOUR);
    assert_int_equal(store_presence_enter(f->st, "m-1", b1, T0, T0 + HOUR), 0);
    log_access(f->st, T0, "r1", ACCESS_GRANTED, REASON_BOOKING, "m-1", "04A1B2C3", NULL);
    log_access(f->st, T0, "r1", ACCESS_GRANTED, REASON_BOOKING, "m-2", "04A1B2C4", NULL);

    assert_int_equal(store_member_remove(f->st, "m-1"), 0);
    assert_int_equal(store_member_remove(f->st, "m-1"), -ENOENT);

    struct member m;
    struct badge b;
    struct booking bk;
    assert_int_equal(store_member_get(f->st, "m-1", &m), -ENOENT);
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &b), -ENOENT);
    assert_int_equal(store_booking_get(f->st, b1, &bk), -ENOENT);
    assert_int_equal(store_member_is_present(f->st, "m-1", T0 + 1), 0);
    /* The other member is untouched. */
    assert_int_equal(store_badge_get(f->st, "04A1B2C4", &b), 0);
    assert_int_equal(store_booking_get(f->st, b2, &bk), 0);

    struct access_rows rows = {0};
    assert_int_equal(store_access_foreach(f->st, 0, collect_access, &rows), 0);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.rec[0].member_id, "");
    assert_string_equal(rows.rec[1].member_id, "m-2");
    /* The desk is free again. */
    assert_int_equal(book(f->st, "m-2", "desk-1", T0 + 2 * HOUR, T0 + 3 * HOUR, NULL), 0);
}

/* ---- badges ---- */

static int collect_badges(const struct badge *b, void *userdata)
{
    text_add(userdata, "%s%s,", b->uid, b->revoked ? "-R" : "");
    return 0;
}

static void test_badges(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_member(f->st, "m-0", ROLE_MEMBER);
    struct badge b = {.uid = "04A1B2C3", .member_id = "m-9", .label = "blue card", .created_at = T0};
    assert_int_equal(store_badge_add(f->st, &b), -ENOENT);
    snprintf(b.member_id, sizeof b.member_id, "m-1");
    assert_int_equal(store_badge_add(f->st, &b), 0);
    assert_int_equal(store_badge_add(f->st, &b), -EEXIST);
    add_badge(f->st, "04000001", "m-0");

    struct badge got;
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &got), 0);
    assert_string_equal(got.member_id, "m-1");
    assert_string_equal(got.label, "blue card");
    assert_false(got.revoked);
    assert_int_equal(got.revoked_at, 0);
    assert_int_equal(got.created_at, T0);

    assert_int_equal(store_badge_revoke(f->st, "04A1B2C3", T0 + 10), 0);
    assert_int_equal(store_badge_revoke(f->st, "04A1B2C3", T0 + 20), -EALREADY);
    assert_int_equal(store_badge_revoke(f->st, "DEADBEEF", T0), -ENOENT);
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &got), 0);
    assert_true(got.revoked);
    assert_int_equal(got.revoked_at, T0 + 10);

    struct text list = {0};
    assert_int_equal(store_badge_foreach(f->st, collect_badges, &list), 0);
    assert_string_equal(list.s, "04000001,04A1B2C3-R,");   /* by member, then uid */
}

/* ---- bookings ---- */

static void test_booking_resource_conflicts(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_member(f->st, "m-2", ROLE_MEMBER);
    add_resource(f->st, "room-1", RESOURCE_ROOM);
    int64_t s = T0, e = T0 + 2 * HOUR;
    int64_t b1 = must_book(f->st, "m-1", "room-1", s, e);

    int64_t id;
    /* overlapping its start */
    assert_int_equal(book(f->st, "m-2", "room-1", s - HOUR, s + 1, &id), -EEXIST);
    assert_int_equal(id, b1);
    /* inside */
    assert_int_equal(book(f->st, "m-2", "room-1", s + 600, e - 600, &id), -EEXIST);
    assert_int_equal(id, b1);
    /* covering */
    assert_int_equal(book(f->st, "m-2", "room-1", s - HOUR, e + HOUR, &id), -EEXIST);
    assert_int_equal(id, b1);
    /* same span, and overlapping its end */
    assert_int_equal(book(f->st, "m-2", "room-1", s, e, &id), -EEXIST);
    assert_int_equal(book(f->st, "m-2", "room-1", e - 1, e + HOUR, &id), -EEXIST);
    assert_int_equal(id, b1);
    assert_non_null(strstr(store_errmsg(f->st), "room-1"));

    /* touching end-to-start on either side is not a conflict */
    int64_t before = must_book(f->st, "m-2", "room-1", s - HOUR, s);
    int64_t after = must_book(f->st, "m-2", "room-1", e, e + HOUR);
    assert_true(before != after);

    /* a cancelled booking frees its slot */
    assert_int_equal(store_booking_cancel(f->st, b1), 0);
    assert_int_equal(store_booking_cancel(f->st, b1), -EALREADY);
    assert_int_equal(store_booking_cancel(f->st, 999999), -ENOENT);
    int64_t b2 = must_book(f->st, "m-2", "room-1", s + 600, e - 600);
    struct booking got;
    assert_int_equal(store_booking_get(f->st, b1, &got), 0);
    assert_int_equal(got.status, BOOKING_CANCELLED);
    assert_int_equal(store_booking_get(f->st, b2, &got), 0);
    assert_int_equal(got.status, BOOKING_CONFIRMED);
    assert_int_equal(got.kind, BOOKING_RESERVED);
    assert_string_equal(got.member_id, "m-2");
    assert_string_equal(got.resource_id, "room-1");
    assert_int_equal(got.start, s + 600);
    assert_int_equal(got.end, e - 600);
    assert_int_equal(got.checked_in_at, 0);
}

static void test_booking_invalid(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    int64_t id = -1;
    assert_int_equal(book(f->st, "m-9", "desk-1", T0, T0 + HOUR, &id), -ENOENT);
    assert_int_equal(id, 0);
    assert_non_null(strstr(store_errmsg(f->st), "m-9"));
    assert_int_equal(book(f->st, "m-1", "desk-9", T0, T0 + HOUR, &id), -ENOENT);
    assert_non_null(strstr(store_errmsg(f->st), "desk-9"));
    assert_int_equal(book(f->st, "m-1", "desk-1", T0, T0, &id), -EINVAL);
    assert_int_equal(book(f->st, "m-1", "desk-1", T0 + 1, T0, &id), -EINVAL);
    assert_int_equal(book(f->st, "m-1", "desk-1", T0, T0 + 7 * DAY + 1, &id), -EINVAL);
    assert_int_equal(book(f->st, "m-1", "desk-1", T0, T0 + 7 * DAY, &id), 0);
    /* the 7-day bound still finds a week-long booking from its last hour */
    struct policy_booking pb[4];
    assert_int_equal(store_member_bookings(f->st, "m-1", T0 + 7 * DAY - 60, T0 + 7 * DAY, pb, 4), 1);
    assert_int_equal(pb[0].id, id);
}

static void test_member_desk_double_booking(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    add_resource(f->st, "desk-2", RESOURCE_DESK);
    add_resource(f->st, "room-1", RESOURCE_ROOM);
    int64_t d1 = must_book(f->st, "m-1", "desk-1", T0, T0 + 4 * HOUR);

    int64_t id;
    assert_int_equal(book(f->st, "m-1", "desk-2", T0 + HOUR, T0 + 5 * HOUR, &id), -EEXIST);
    assert_int_equal(id, d1);
    assert_int_equal(book(f->st, "m-1", "desk-2", T0 - HOUR, T0 + 1, &id), -EEXIST);
    assert_int_equal(id, d1);
    /* a room during a desk booking is fine, and so is a desk right after */
    must_book(f->st, "m-1", "room-1", T0 + HOUR, T0 + 2 * HOUR);
    must_book(f->st, "m-1", "desk-2", T0 + 4 * HOUR, T0 + 5 * HOUR);
    /* once the first desk booking is cancelled, the other desk can be taken */
    assert_int_equal(store_booking_cancel(f->st, d1), 0);
    must_book(f->st, "m-1", "desk-2", T0, T0 + 4 * HOUR);
}

static void test_booking_check_in_and_member_bookings(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    add_resource(f->st, "room-1", RESOURCE_ROOM);
    int64_t a = must_book(f->st, "m-1", "desk-1", T0, T0 + 4 * HOUR);
    int64_t b = must_book(f->st, "m-1", "room-1", T0 + HOUR, T0 + 2 * HOUR);
    int64_t c = must_book(f->st, "m-1", "desk-1", T0 + DAY, T0 + DAY + HOUR);
    int64_t cancelled = must_book(f->st, "m-1", "room-1", T0 + 3 * HOUR, T0 + 5 * HOUR);
    assert_int_equal(store_booking_cancel(f->st, cancelled), 0);

    assert_int_equal(store_booking_check_in(f->st, a, T0 + 60), 0);
    assert_int_equal(store_booking_check_in(f->st, a, T0 + 120), 0);
    struct booking got;
    assert_int_equal(store_booking_get(f->st, a, &got), 0);
    assert_int_equal(got.checked_in_at, T0 + 60);
    assert_int_equal(store_booking_check_in(f->st, cancelled, T0), -EALREADY);
    assert_int_equal(store_booking_check_in(f->st, 424242, T0), -ENOENT);

    struct policy_booking pb[8];
    int n = store_member_bookings(f->st, "m-1", T0 + HOUR + 1, T0 + HOUR + 2, pb, 8);
    assert_int_equal(n, 2);
    assert_int_equal(pb[0].id, a);
    assert_true(pb[0].checked_in);
    assert_string_equal(pb[0].resource_id, "desk-1");
    assert_int_equal(pb[1].id, b);
    assert_false(pb[1].checked_in);
    assert_int_equal(store_member_bookings(f->st, "m-1", T0 + HOUR + 1, T0 + HOUR + 2, pb, 1), 1);
    /* [from, to) is half-open on both sides */
    assert_int_equal(store_member_bookings(f->st, "m-1", T0 + 4 * HOUR, T0 + DAY, pb, 8), 0);
    assert_int_equal(store_member_bookings(f->st, "m-1", T0 + 4 * HOUR, T0 + DAY + 1, pb, 8), 1);
    assert_int_equal(pb[0].id, c);
    assert_int_equal(store_member_bookings(f->st, "m-2", T0, T0 + DAY, pb, 8), 0);
}

static int count_bookings(const struct booking *b, void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

static void test_booking_foreach(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_resource(f->st, "room-1", RESOURCE_ROOM);
    must_book(f->st, "m-1", "room-1", T0, T0 + HOUR);
    int64_t x = must_book(f->st, "m-1", "room-1", T0 + 2 * HOUR, T0 + 3 * HOUR);
    must_book(f->st, "m-1", "room-1", T0 + DAY, T0 + DAY + HOUR);
    assert_int_equal(store_booking_cancel(f->st, x), 0);
    int n = 0;
    assert_int_equal(store_booking_foreach(f->st, 0, 0, count_bookings, &n), 0);
    assert_int_equal(n, 3);
    n = 0;
    assert_int_equal(store_booking_foreach(f->st, T0 + 30 * 60, T0 + DAY, count_bookings, &n), 0);
    assert_int_equal(n, 2);   /* the first (overlapping from) and the cancelled one */
}

static void test_release_no_shows(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_member(f->st, "m-2", ROLE_MEMBER);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    add_resource(f->st, "desk-2", RESOURCE_DESK);
    add_resource(f->st, "desk-3", RESOURCE_DESK);
    int64_t shown = must_book(f->st, "m-1", "desk-1", T0, T0 + 4 * HOUR);
    int64_t no_show = must_book(f->st, "m-2", "desk-2", T0, T0 + 4 * HOUR);
    add_member(f->st, "m-3", ROLE_MEMBER);
    int64_t later = must_book(f->st, "m-3", "desk-3", T0 + HOUR, T0 + 4 * HOUR);
    int64_t over = must_book(f->st, "m-1", "desk-3", T0 - 2 * HOUR, T0 - 10);
    assert_int_equal(store_booking_check_in(f->st, shown, T0 + 5), 0);

    int64_t now = T0 + 30 * 60;
    assert_int_equal(store_release_no_shows(f->st, now - 30 * 60, now), 1);
    assert_int_equal(store_release_no_shows(f->st, now - 30 * 60, now), 0);
    struct booking got;
    assert_int_equal(store_booking_get(f->st, no_show, &got), 0);
    assert_int_equal(got.status, BOOKING_RELEASED);
    assert_int_equal(store_booking_get(f->st, shown, &got), 0);
    assert_int_equal(got.status, BOOKING_CONFIRMED);
    assert_int_equal(store_booking_get(f->st, later, &got), 0);
    assert_int_equal(got.status, BOOKING_CONFIRMED);
    assert_int_equal(store_booking_get(f->st, over, &got), 0);
    assert_int_equal(got.status, BOOKING_CONFIRMED);
    /* a released desk is free */
    add_member(f->st, "m-4", ROLE_MEMBER);
    must_book(f->st, "m-4", "desk-2", now, now + HOUR);
    assert_int_equal(store_booking_cancel(f->st, no_show), -EALREADY);
}

static void test_resource_current_booking(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_resource(f->st, "room-1", RESOURCE_ROOM);
    int64_t a = must_book(f->st, "m-1", "room-1", T0, T0 + HOUR);
    struct booking got;
    assert_int_equal(store_resource_current_booking(f->st, "room-1", T0 - 1, &got), -ENOENT);
    assert_int_equal(store_resource_current_booking(f->st, "room-1", T0, &got), 0);
    assert_int_equal(got.id, a);
    assert_int_equal(store_resource_current_booking(f->st, "room-1", T0 + HOUR - 1, &got), 0);
    assert_int_equal(store_resource_current_booking(f->st, "room-1", T0 + HOUR, &got), -ENOENT);
}

/* ---- free desks ---- */

static void test_find_free_desk(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_member(f->st, "m-2", ROLE_MEMBER);
    add_member(f->st, "m-3", ROLE_MEMBER);
    add_member(f->st, "m-4", ROLE_MEMBER);
    add_member(f->st, "m-5", ROLE_MEMBER);
    add_resource(f->st, "desk-a", RESOURCE_DESK);
    add_resource(f->st, "desk-b", RESOURCE_DESK);
    add_resource(f->st, "desk-c", RESOURCE_DESK);
    add_resource(f->st, "room-1", RESOURCE_ROOM);    /* free all day, but not a desk */
    int64_t now = T0, until = T0 + 8 * HOUR, min_free = 30 * 60;
    struct policy_free_desk fd;

    /* a busy now, b free for 1 h, c free for 3 h: no desk free until close, c is free the longest */
    must_book(f->st, "m-1", "desk-a", now - HOUR, now + 2 * HOUR);
    must_book(f->st, "m-2", "desk-b", now + HOUR, now + 2 * HOUR);
    must_book(f->st, "m-3", "desk-c", now + 3 * HOUR, now + 4 * HOUR);
    assert_int_equal(store_find_free_desk(f->st, now, until, min_free, &fd), 0);
    assert_string_equal(fd.resource_id, "desk-c");
    assert_int_equal(fd.next_start, now + 3 * HOUR);

    /* a desk free until close (its next booking starts at or after `until`) wins at once */
    add_resource(f->st, "desk-d", RESOURCE_DESK);
    must_book(f->st, "m-4", "desk-d", until, until + HOUR);
    assert_int_equal(store_find_free_desk(f->st, now, until, min_free, &fd), 0);
    assert_string_equal(fd.resource_id, "desk-d");
    assert_int_equal(fd.next_start, until);

    /* later, desk-a's booking is over and nothing follows: free until close, first by id */
    assert_int_equal(store_find_free_desk(f->st, now + 2 * HOUR, until, min_free, &fd), 0);
    assert_string_equal(fd.resource_id, "desk-a");
    assert_int_equal(fd.next_start, 0);

    /* a desk free for less than min_free does not count; busy desks never do */
    must_book(f->st, "m-5", "desk-a", now + 2 * HOUR + 20 * 60, now + 7 * HOUR);
    must_book(f->st, "m-2", "desk-b", now + 2 * HOUR, now + 7 * HOUR);
    must_book(f->st, "m-3", "desk-c", now + 2 * HOUR + 10 * 60, now + 3 * HOUR);
    must_book(f->st, "m-4", "desk-d", now + 2 * HOUR + 25 * 60, now + 3 * HOUR);
    assert_int_equal(store_find_free_desk(f->st, now + 2 * HOUR, until, min_free, &fd), -ENOENT);
    assert_int_equal(store_find_free_desk(f->st, now + 2 * HOUR, until, 20 * 60, &fd), 0);
    assert_string_equal(fd.resource_id, "desk-d");
    assert_int_equal(fd.next_start, now + 2 * HOUR + 25 * 60);
}

static void test_find_free_desk_none_at_all(void **state)
{
    struct fixture *f = *state;
    struct policy_free_desk fd;
    assert_int_equal(store_find_free_desk(f->st, T0, T0 + HOUR, 60, &fd), -ENOENT);
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_resource(f->st, "desk-a", RESOURCE_DESK);
    must_book(f->st, "m-1", "desk-a", T0 + 10 * 60, T0 + HOUR);
    assert_int_equal(store_find_free_desk(f->st, T0, T0 + 2 * HOUR, 30 * 60, &fd), -ENOENT);
    assert_int_equal(store_find_free_desk(f->st, T0, T0 + 2 * HOUR, 5 * 60, &fd), 0);
    assert_string_equal(fd.resource_id, "desk-a");
    assert_int_equal(fd.next_start, T0 + 10 * 60);
}

/* ---- presence ---- */

static int collect_presence(const struct presence *p, const struct member *m, void *userdata)
{
    text_add(userdata, "%s=%s,", p->member_id, m->name);
    return 0;
}

static void test_presence(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_member(f->st, "m-2", ROLE_MEMBER);
    assert_int_equal(store_presence_count(f->st, T0), 0);
    assert_int_equal(store_presence_enter(f->st, "m-1", 7, T0, T0 + HOUR), 0);
    assert_int_equal(store_presence_enter(f->st, "m-2", 0, T0 + 10, T0 + 2 * HOUR), 0);
    assert_int_equal(store_presence_count(f->st, T0 + 60), 2);
    assert_int_equal(store_member_is_present(f->st, "m-1", T0 + 60), 1);

    struct text list = {0};
    assert_int_equal(store_presence_foreach(f->st, T0 + 60, collect_presence, &list), 0);
    assert_string_equal(list.s, "m-1=Name of m-1,m-2=Name of m-2,");

    /* expiry: m-1's presence ends at expected_end */
    assert_int_equal(store_presence_count(f->st, T0 + HOUR), 1);
    assert_int_equal(store_member_is_present(f->st, "m-1", T0 + HOUR), 0);
    assert_int_equal(store_presence_leave(f->st, "m-1", T0 + HOUR), -ENOENT);

    /* re-entering replaces the old row */
    assert_int_equal(store_presence_enter(f->st, "m-1", 8, T0 + 2 * HOUR, T0 + 3 * HOUR), 0);
    assert_int_equal(store_presence_enter(f->st, "m-1", 9, T0 + 2 * HOUR, T0 + 4 * HOUR), 0);
    assert_int_equal(store_presence_count(f->st, T0 + 3 * HOUR + 1), 1);
    assert_int_equal(store_presence_leave(f->st, "m-1", T0 + 3 * HOUR + 1), 0);
    assert_int_equal(store_presence_leave(f->st, "m-1", T0 + 3 * HOUR + 2), -ENOENT);
    assert_int_equal(store_presence_count(f->st, T0 + 3 * HOUR + 2), 0);

    assert_int_equal(store_presence_expire(f->st, T0 + 2 * HOUR), 1);   /* m-2's old row */
}

/* ---- access log ---- */

static void test_access_log(void **state)
{
    struct fixture *f = *state;
    int64_t s1, s2, s3;
    log_access(f->st, T0, "r1", ACCESS_DENIED, REASON_UNKNOWN_BADGE, "", "AAAAAAAA", &s1);
    log_access(f->st, T0 + 10, "r1", ACCESS_DENIED, REASON_UNKNOWN_BADGE, "", "AAAAAAAA", &s2);
    log_access(f->st, T0 + 20, "r2", ACCESS_DENIED, REASON_UNKNOWN_BADGE, "", "AAAAAAAA", &s3);
    assert_true(s1 > 0 && s2 > s1 && s3 > s2);
    log_access(f->st, T0 + 30, "r1", ACCESS_DENIED, REASON_TOO_MANY_ATTEMPTS, "", "BBBBBBBB", NULL);
    log_access(f->st, T0 + 40, "r1", ACCESS_GRANTED, REASON_KEYHOLDER, "m-1", "AAAAAAAA", NULL);

    assert_int_equal(store_count_denials_badge(f->st, "AAAAAAAA", T0, 0), 3);
    assert_int_equal(store_count_denials_badge(f->st, "AAAAAAAA", T0 + 10, 0), 2);   /* since is inclusive */
    assert_int_equal(store_count_denials_badge(f->st, "AAAAAAAA", T0 + 11, 0), 1);
    assert_int_equal(store_count_denials_badge(f->st, "CCCCCCCC", T0, 0), 0);
    assert_int_equal(store_count_denials_reader(f->st, "r1", T0, 0), 3);
    assert_int_equal(store_count_denials_reader(f->st, "r1", T0 + 15, 0), 1);
    assert_int_equal(store_count_denials_reader(f->st, "r2", T0, 0), 1);
    assert_int_equal(store_count_denials_badge(f->st, "AAAAAAAA", T0, 2), 2);   /* counted up to the limit */
    assert_int_equal(store_count_denials_reader(f->st, "r1", T0, 1), 1);

    struct access_rows rows = {0};
    assert_int_equal(store_access_foreach(f->st, 2, collect_access, &rows), 0);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.rec[0].reason, REASON_TOO_MANY_ATTEMPTS);
    assert_int_equal(rows.rec[1].result, ACCESS_GRANTED);
    assert_int_equal(rows.rec[1].reason, REASON_KEYHOLDER);
    assert_int_equal(rows.rec[1].direction, DIRECTION_IN);
    assert_string_equal(rows.rec[1].member_id, "m-1");
    assert_string_equal(rows.rec[1].door, "front");
    assert_true(rows.rec[0].seq < rows.rec[1].seq);

    rows.n = 0;
    assert_int_equal(store_access_foreach(f->st, 0, collect_access, &rows), 0);
    assert_int_equal(rows.n, 5);
    assert_int_equal(rows.rec[0].seq, s1);

    assert_int_equal(store_access_purge(f->st, T0 + 15), 2);
    rows.n = 0;
    assert_int_equal(store_access_foreach(f->st, 0, collect_access, &rows), 0);
    assert_int_equal(rows.n, 3);
    /* sequence ids never go back, even after a purge */
    int64_t s6;
    log_access(f->st, T0 + 50, "r1", ACCESS_DENIED, REASON_CLOSED, "", "", &s6);
    assert_true(s6 > rows.rec[2].seq);
}

/* ---- erasure and a member's own data ---- */

static void log_remote(struct store *st, int64_t at, const char *by)
{
    struct access_record rec = {.at = at, .direction = DIRECTION_IN, .result = ACCESS_GRANTED,
                                .reason = REASON_REMOTE};
    snprintf(rec.door, sizeof rec.door, "front");
    snprintf(rec.requested_by, sizeof rec.requested_by, "%s", by);
    assert_int_equal(store_access_log(st, &rec), 0);
}

static int collect_booking_ids(const struct booking *b, void *userdata)
{
    text_add(userdata, "%lld:%s,", (long long)b->id, booking_status_name(b->status));
    return 0;
}

static int collect_outbox(const struct outbox_row *row, void *userdata)
{
    text_add(userdata, "%s\n", row->payload);
    return 0;
}

static void test_member_export_and_erasure(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_member(f->st, "m-10", ROLE_MEMBER);    /* contains "m-1": must not be caught */
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    add_badge(f->st, "04A1B2C3", "m-1");
    add_badge(f->st, "04A1B2C4", "m-10");
    int64_t b1 = must_book(f->st, "m-1", "desk-1", T0, T0 + HOUR);
    int64_t b2 = must_book(f->st, "m-1", "desk-1", T0 + DAY, T0 + DAY + HOUR);
    assert_int_equal(store_booking_cancel(f->st, b2), 0);
    must_book(f->st, "m-10", "desk-1", T0 + 2 * HOUR, T0 + 3 * HOUR);
    assert_int_equal(store_presence_enter(f->st, "m-1", b1, T0, T0 + HOUR), 0);

    int64_t seq_before_enrolment, seq_own, seq_other;
    log_access(f->st, T0 - 60, "r1", ACCESS_DENIED, REASON_UNKNOWN_BADGE, "", "04A1B2C3", &seq_before_enrolment);
    log_access(f->st, T0, "r1", ACCESS_GRANTED, REASON_BOOKING, "m-1", "04A1B2C3", &seq_own);
    log_remote(f->st, T0 + 10, "m-1");
    log_access(f->st, T0 + 20, "r1", ACCESS_GRANTED, REASON_BOOKING, "m-10", "04A1B2C4", &seq_other);
    log_remote(f->st, T0 + 30, "m-10");

    static const char *const payloads[] = {
        "{\"at\":\"2026-11-18T08:00:00Z\",\"door\":\"front\",\"reader\":\"r1\",\"direction\":\"in\","
        "\"result\":\"granted\",\"reason\":\"booking\",\"member\":\"m-1\",\"booking\":\"b-1\",\"by\":null}",
        "{\"at\":\"2026-11-18T08:00:10Z\",\"door\":\"front\",\"reader\":null,\"direction\":\"in\","
        "\"result\":\"granted\",\"reason\":\"remote\",\"member\":null,\"booking\":null,\"by\":\"m-1\"}",
        "{\"at\":\"2026-11-18T08:00:20Z\",\"door\":\"front\",\"reader\":\"r1\",\"direction\":\"in\","
        "\"result\":\"granted\",\"reason\":\"booking\",\"member\":\"m-10\",\"booking\":\"b-3\",\"by\":null}",
        "{\"at\":\"2026-11-18T08:00:30Z\",\"alarm\":\"fault\",\"active\":true,\"door\":null,\"reader\":null,"
        "\"detail\":\"m-1\"}",
        "not JSON, but naming m-1",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++)
        assert_int_equal(store_outbox_add(f->st, i == 3 ? "alarm" : "access", T0, payloads[i], 0, NULL), 0);

    /* What export reads: every booking (cancelled too), the presence, the log rows about m-1. */
    struct text bookings = {0};
    assert_int_equal(store_member_booking_foreach(f->st, "m-1", collect_booking_ids, &bookings), 0);
    char want[128];
    snprintf(want, sizeof want, "%lld:confirmed,%lld:cancelled,", (long long)b1, (long long)b2);
    assert_string_equal(bookings.s, want);
    struct presence p;
    assert_int_equal(store_presence_get(f->st, "m-1", &p), 0);
    assert_int_equal(p.booking_id, b1);
    assert_int_equal(p.since, T0);
    assert_int_equal(p.expected_end, T0 + HOUR);
    assert_int_equal(store_presence_get(f->st, "m-10", &p), -ENOENT);
    struct access_rows rows = {0};
    assert_int_equal(store_member_access_foreach(f->st, "m-1", collect_access, &rows), 0);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.rec[0].seq, seq_before_enrolment);
    assert_int_equal(rows.rec[1].seq, seq_own);
    assert_string_equal(rows.rec[2].requested_by, "m-1");

    assert_int_equal(store_member_remove(f->st, "m-1"), 0);

    /* Nothing about m-1 is left for export to find. */
    rows.n = 0;
    assert_int_equal(store_member_access_foreach(f->st, "m-1", collect_access, &rows), 0);
    assert_int_equal(rows.n, 0);
    assert_int_equal(store_presence_get(f->st, "m-1", &p), -ENOENT);
    memset(&bookings, 0, sizeof bookings);
    assert_int_equal(store_member_booking_foreach(f->st, "m-1", collect_booking_ids, &bookings), 0);
    assert_string_equal(bookings.s, "");

    /* The log keeps its rows, without the id or the UID; m-10's rows are untouched. */
    rows.n = 0;
    assert_int_equal(store_access_foreach(f->st, 0, collect_access, &rows), 0);
    assert_int_equal(rows.n, 5);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(rows.rec[i].member_id, "");
        assert_string_equal(rows.rec[i].badge_uid, "");
        assert_string_equal(rows.rec[i].requested_by, "");
    }
    assert_int_equal(rows.rec[1].reason, REASON_BOOKING);
    assert_int_equal(rows.rec[3].seq, seq_other);
    assert_string_equal(rows.rec[3].member_id, "m-10");
    assert_string_equal(rows.rec[3].badge_uid, "04A1B2C4");
    assert_string_equal(rows.rec[4].requested_by, "m-10");

    /* Undelivered events: "member" and "by" naming m-1 become null, byte for byte otherwise. */
    struct text outbox = {0};
    assert_int_equal(store_outbox_foreach(f->st, 0, 0, collect_outbox, &outbox), 5);
    char expected[1024];
    snprintf(expected, sizeof expected, "%s\n%s\n%s\n%s\n%s\n",
             "{\"at\":\"2026-11-18T08:00:00Z\",\"door\":\"front\",\"reader\":\"r1\",\"direction\":\"in\","
             "\"result\":\"granted\",\"reason\":\"booking\",\"member\":null,\"booking\":\"b-1\",\"by\":null}",
             "{\"at\":\"2026-11-18T08:00:10Z\",\"door\":\"front\",\"reader\":null,\"direction\":\"in\","
             "\"result\":\"granted\",\"reason\":\"remote\",\"member\":null,\"booking\":null,\"by\":null}",
             payloads[2], payloads[3], payloads[4]);
    assert_string_equal(outbox.s, expected);
}

/* ---- retention ---- */

static int count_one(const struct access_record *rec, void *userdata)
{
    (void)rec;
    ++*(int *)userdata;
    return 0;
}

static int count_rows(struct store *st)
{
    int n = 0;
    assert_int_equal(store_access_foreach(st, 0, count_one, &n), 0);
    return n;
}

static void test_purge(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_member(f->st, "m-2", ROLE_MEMBER);
    add_member(f->st, "m-3", ROLE_MEMBER);
    /* Logged out of order, so "oldest first" is by time, not by seq. */
    for (int i = 9; i >= 0; i--)
        log_access(f->st, T0 + i, "r1", ACCESS_GRANTED, REASON_KEYHOLDER, "m-1", "", NULL);
    assert_int_equal(store_presence_enter(f->st, "m-1", 0, T0 - HOUR, T0 + 5), 0);     /* ended before */
    assert_int_equal(store_presence_enter(f->st, "m-2", 0, T0 - HOUR, T0 + 20), 0);    /* ended after */
    assert_int_equal(store_presence_enter(f->st, "m-3", 0, T0, T0 + DAY), 0);          /* still in */

    const int64_t cutoff = T0 + 7;   /* rows at T0 .. T0+6 go */
    struct store_purge_counts c;
    assert_int_equal(store_purge_count(f->st, cutoff, &c), 0);
    assert_int_equal(c.access_log, 7);
    assert_int_equal(c.presence, 1);
    assert_int_equal(count_rows(f->st), 10);    /* counting deletes nothing */

    /* Bounded steps: 3 rows each, 1 while more may remain. */
    memset(&c, 0, sizeof c);
    assert_int_equal(store_purge_step(f->st, cutoff, 3, &c), 1);
    assert_int_equal(c.access_log, 3);
    assert_int_equal(c.presence, 1);
    assert_int_equal(store_purge_step(f->st, cutoff, 3, &c), 1);
    assert_int_equal(store_purge_step(f->st, cutoff, 3, &c), 0);
    assert_int_equal(c.access_log, 7);
    assert_int_equal(c.presence, 1);
    struct access_rows rows = {0};
    assert_int_equal(store_access_foreach(f->st, 0, collect_access, &rows), 0);
    assert_int_equal(rows.n, 3);
    for (int i = 0; i < 3; i++)
        assert_true(rows.rec[i].at >= cutoff);
    struct presence p;
    assert_int_equal(store_presence_get(f->st, "m-1", &p), -ENOENT);
    assert_int_equal(store_presence_get(f->st, "m-2", &p), 0);
    assert_int_equal(store_presence_get(f->st, "m-3", &p), 0);

    /* Done: a second run finds nothing. */
    assert_int_equal(store_purge(f->st, cutoff, 0, 0, &c), 0);
    assert_int_equal(c.access_log, 0);
    assert_int_equal(c.presence, 0);

    /* Inside the caller's transaction: all of it in that one, undone by its rollback. */
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_purge(f->st, T0 + HOUR, 1, 1000, &c), 0);   /* no pause inside a transaction */
    assert_int_equal(c.access_log, 3);
    assert_int_equal(c.presence, 1);
    assert_int_equal(count_rows(f->st), 0);
    assert_int_equal(store_rollback(f->st), 0);
    assert_int_equal(count_rows(f->st), 3);
    assert_int_equal(store_presence_get(f->st, "m-2", &p), 0);

    /* Many small steps through store_purge. */
    assert_int_equal(store_purge(f->st, T0 + HOUR, 1, 0, &c), 0);
    assert_int_equal(c.access_log, 3);
    assert_int_equal(c.presence, 1);
    assert_int_equal(count_rows(f->st), 0);
    assert_int_equal(store_presence_get(f->st, "m-3", &p), 0);
}

/* ---- backup ---- */

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void path_in(const struct fixture *f, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", f->dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

/* Opens a copy and counts its access log. */
static int copy_rows(const char *path)
{
    struct store *copy;
    char err[256];
    if (store_open_ex(path, 0, &copy, err, sizeof err) != 0)
        fail_msg("cannot open the copy %s: %s", path, err);
    int n = count_rows(copy);
    struct member m;
    assert_int_equal(store_member_get(copy, "m-1", &m), 0);
    store_close(copy);
    return n;
}

struct writer {
    struct store *other;        /* a second connection, as the daemon would be */
    int calls, writes, max_writes;
    int last_remaining;
};

/* Progress callback that commits rows from another connection while the copy runs. */
static void write_meanwhile(int remaining, int total, void *userdata)
{
    struct writer *w = userdata;
    assert_true(remaining >= 0 && remaining < total);
    w->calls++;
    w->last_remaining = remaining;
    if (w->writes < w->max_writes) {
        log_access(w->other, T0 + 1000 + w->writes, "r1", ACCESS_GRANTED, REASON_KEYHOLDER, "m-1", "", NULL);
        w->writes++;
    }
}

static void test_backup(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    /* Several pages of log, so that one page per step makes many steps. */
    assert_int_equal(store_begin(f->st), 0);
    for (int i = 0; i < 2000; i++)
        log_access(f->st, T0 + i, "r1", ACCESS_GRANTED, REASON_KEYHOLDER, "m-1", "04A1B2C3", NULL);
    assert_int_equal(store_commit(f->st), 0);

    char copy[256], tmp[300];
    path_in(f, "copy.db", copy, sizeof copy);
    snprintf(tmp, sizeof tmp, "%s.tmp", copy);
    struct store_backup_result res;
    assert_int_equal(store_backup(f->st, copy, NULL, &res), 0);
    assert_true(res.pages > 10);
    assert_int_equal(res.page_size, 4096);
    assert_int_equal(res.bytes, res.pages * res.page_size);
    assert_true(res.steps >= 1);
    assert_false(exists(tmp));
    struct stat sb;
    assert_int_equal(stat(copy, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(copy_rows(copy), 2000);

    /* The target is kept unless overwrite. */
    assert_int_equal(store_backup(f->st, copy, NULL, &res), -EEXIST);
    char msg[400];
    snprintf(msg, sizeof msg, "%s already exists", copy);
    assert_string_equal(store_errmsg(f->st), msg);
    log_access(f->st, T0 + 5000, "r1", ACCESS_GRANTED, REASON_KEYHOLDER, "m-1", "", NULL);
    struct store_backup_options opt = {.overwrite = true};
    assert_int_equal(store_backup(f->st, copy, &opt, &res), 0);
    assert_int_equal(copy_rows(copy), 2001);

    /* One page per step while another connection commits: the copy is the snapshot of the start, and
     * the writes do not restart it (a restart would make more steps than pages). */
    struct writer w = {.max_writes = 5};
    assert_int_equal(store_open(f->path, 0, &w.other), 0);
    opt = (struct store_backup_options){.overwrite = true, .pages_per_step = 1, .progress = write_meanwhile,
                                        .userdata = &w};
    assert_int_equal(store_backup(f->st, copy, &opt, &res), 0);
    store_close(w.other);
    assert_int_equal(w.writes, 5);
    assert_int_equal(res.steps, res.pages);
    assert_int_equal(w.calls, res.steps);
    assert_int_equal(w.last_remaining, 0);
    assert_int_equal(copy_rows(copy), 2001);
    assert_int_equal(count_rows(f->st), 2006);

    /* A missing directory, the database itself, a transaction open. */
    assert_int_equal(store_backup(f->st, "/nonexistent-dir/copy.db", NULL, NULL), -ENOENT);
    assert_string_equal(store_errmsg(f->st),
                        "cannot create /nonexistent-dir/copy.db.tmp: No such file or directory");
    opt = (struct store_backup_options){.overwrite = true};
    assert_int_equal(store_backup(f->st, f->path, &opt, NULL), -EINVAL);
    assert_non_null(strstr(store_errmsg(f->st), "is the database itself"));
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_backup(f->st, copy, &opt, NULL), -EINVAL);
    assert_int_equal(store_rollback(f->st), 0);

    /* A leftover .tmp (and its journal) from an interrupted backup is reused. */
    char copy2[256], tmp2[300], journal2[320];
    path_in(f, "copy2.db", copy2, sizeof copy2);
    snprintf(tmp2, sizeof tmp2, "%s.tmp", copy2);
    snprintf(journal2, sizeof journal2, "%s.tmp-journal", copy2);
    FILE *junk = fopen(tmp2, "w");
    assert_non_null(junk);
    fputs("half a backup", junk);
    fclose(junk);
    assert_non_null(junk = fopen(journal2, "w"));
    fputs("a hot journal", junk);
    fclose(junk);
    assert_int_equal(store_backup(f->st, copy2, NULL, NULL), 0);
    assert_false(exists(tmp2));
    assert_false(exists(journal2));
    assert_int_equal(copy_rows(copy2), 2006);

    /* A .tmp locked by a backup in progress is left alone. */
    char copy3[256], tmp3[300];
    path_in(f, "copy3.db", copy3, sizeof copy3);
    snprintf(tmp3, sizeof tmp3, "%s.tmp", copy3);
    int fd = open(tmp3, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    assert_int_equal(store_backup(f->st, copy3, NULL, NULL), -EBUSY);
    snprintf(msg, sizeof msg, "another backup is writing %s", tmp3);
    assert_string_equal(store_errmsg(f->st), msg);
    assert_true(exists(tmp3));
    assert_false(exists(copy3));
    close(fd);
    assert_int_equal(store_backup(f->st, copy3, NULL, NULL), 0);
}

/* ---- closures ---- */

static int collect_closures(int ymd, const char *reason, void *userdata)
{
    text_add(userdata, "%d:%s,", ymd, reason);
    return 0;
}

static void test_closures(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_closure_add(f->st, 20261225, "Noël"), 0);
    assert_int_equal(store_closure_add(f->st, 20261111, ""), 0);
    assert_int_equal(store_closure_add(f->st, 20261225, "again"), -EEXIST);
    assert_int_equal(store_is_closure(f->st, 20261225), 1);
    assert_int_equal(store_is_closure(f->st, 20261224), 0);
    struct text list = {0};
    assert_int_equal(store_closure_foreach(f->st, collect_closures, &list), 0);
    assert_string_equal(list.s, "20261111:,20261225:Noël,");
    assert_int_equal(store_closure_remove(f->st, 20261225), 0);
    assert_int_equal(store_closure_remove(f->st, 20261225), -ENOENT);
    assert_int_equal(store_is_closure(f->st, 20261225), 0);
}

/* ---- resources ---- */

static int collect_resources(const struct resource *r, void *userdata)
{
    text_add(userdata, "%s,", r->id);
    return 0;
}

static void test_resources(void **state)
{
    struct fixture *f = *state;
    struct resource r = {.id = "salle-aubrac", .kind = RESOURCE_ROOM, .name = "Salle Aubrac", .seats = 8};
    assert_int_equal(store_resource_add(f->st, &r), 0);
    assert_int_equal(store_resource_add(f->st, &r), -EEXIST);
    struct resource bad = {.id = "desk-0", .kind = RESOURCE_DESK, .seats = 0};
    assert_int_equal(store_resource_add(f->st, &bad), -EINVAL);
    add_resource(f->st, "desk-2", RESOURCE_DESK);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    struct resource got;
    assert_int_equal(store_resource_get(f->st, "salle-aubrac", &got), 0);
    assert_int_equal(got.kind, RESOURCE_ROOM);
    assert_string_equal(got.name, "Salle Aubrac");
    assert_int_equal(got.seats, 8);
    assert_int_equal(store_resource_get(f->st, "nope", &got), -ENOENT);
    struct text list = {0};
    assert_int_equal(store_resource_foreach(f->st, collect_resources, &list), 0);
    assert_string_equal(list.s, "desk-1,desk-2,salle-aubrac,");

    enum resource_kind k;
    assert_int_equal(resource_kind_parse("room", &k), 0);
    assert_int_equal(k, RESOURCE_ROOM);
    assert_int_equal(resource_kind_parse("desk", &k), 0);
    assert_int_equal(k, RESOURCE_DESK);
    assert_int_equal(resource_kind_parse("sofa", &k), -EINVAL);
    assert_string_equal(resource_kind_name(RESOURCE_DESK), "desk");
    assert_string_equal(booking_status_name(BOOKING_RELEASED), "released");
    assert_string_equal(booking_kind_name(BOOKING_WALK_IN), "walk_in");
}

static void test_resource_remove(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    int64_t past = must_book(f->st, "m-1", "desk-1", T0 - DAY, T0 - DAY + HOUR);
    int64_t current = must_book(f->st, "m-1", "desk-1", T0 - HOUR, T0 + HOUR);
    int64_t future = must_book(f->st, "m-1", "desk-1", T0 + DAY, T0 + DAY + HOUR);
    int64_t blocking = -1;

    assert_int_equal(store_resource_remove(f->st, "nope", T0, &blocking), -ENOENT);
    assert_int_equal(store_resource_remove(f->st, "desk-1", T0, &blocking), -EBUSY);
    assert_int_equal(blocking, current);
    assert_int_equal(store_booking_cancel(f->st, current), 0);
    assert_int_equal(store_resource_remove(f->st, "desk-1", T0, &blocking), -EBUSY);
    assert_int_equal(blocking, future);
    assert_non_null(strstr(store_errmsg(f->st), "desk-1"));
    assert_int_equal(store_booking_cancel(f->st, future), 0);

    assert_int_equal(store_resource_remove(f->st, "desk-1", T0, &blocking), 0);
    assert_int_equal(blocking, 0);
    struct resource r;
    struct booking b;
    assert_int_equal(store_resource_get(f->st, "desk-1", &r), -ENOENT);
    assert_int_equal(store_booking_get(f->st, past, &b), -ENOENT);
    assert_int_equal(store_booking_get(f->st, future, &b), -ENOENT);
}

/* ---- transactions ---- */

static void test_transactions(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    int64_t kept = must_book(f->st, "m-1", "desk-1", T0, T0 + HOUR);

    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_begin(f->st), -EALREADY);
    int64_t inside = must_book(f->st, "m-1", "desk-1", T0 + HOUR, T0 + 2 * HOUR);
    /* a refused booking inside the caller's transaction leaves the rest of it intact */
    assert_int_equal(book(f->st, "m-1", "desk-1", T0, T0 + 2 * HOUR, NULL), -EEXIST);
    assert_int_equal(store_resource_remove(f->st, "desk-1", T0 - DAY, NULL), -EBUSY);
    struct booking b;
    assert_int_equal(store_booking_get(f->st, inside, &b), 0);
    assert_int_equal(store_rollback(f->st), 0);
    assert_int_equal(store_booking_get(f->st, inside, &b), -ENOENT);
    assert_int_equal(store_booking_get(f->st, kept, &b), 0);

    assert_int_equal(store_commit(f->st), -EINVAL);
    assert_int_equal(store_begin(f->st), 0);
    inside = must_book(f->st, "m-1", "desk-1", T0 + HOUR, T0 + 2 * HOUR);
    assert_int_equal(store_member_set_suspended(f->st, "m-1", true), 0);
    assert_int_equal(store_commit(f->st), 0);
    assert_int_equal(store_booking_get(f->st, inside, &b), 0);
}

static void test_meta(void **state)
{
    struct fixture *f = *state;
    char v[32];
    assert_int_equal(store_meta_get(f->st, "sync_version", v, sizeof v), -ENOENT);
    assert_int_equal(store_meta_set(f->st, "sync_version", "41"), 0);
    assert_int_equal(store_meta_set(f->st, "sync_version", "42"), 0);
    assert_int_equal(store_meta_get(f->st, "sync_version", v, sizeof v), 0);
    assert_string_equal(v, "42");
}

/* ---- query plans: the hot queries seek an index, never scan bookings ---- */

static void assert_uses_index(struct store *st, const char *query)
{
    char plan[1024];
    assert_int_equal(store_explain(st, query, plan, sizeof plan), 0);
    if (!strstr(plan, "USING INDEX") && !strstr(plan, "USING COVERING INDEX") &&
        !strstr(plan, "USING INTEGER PRIMARY KEY") && !strstr(plan, "USING PRIMARY KEY"))
        fail_msg("%s does not use an index: %s", query, plan);
    if (strstr(plan, "SCAN bookings") || strstr(plan, "SCAN b ") || strstr(plan, "SCAN access_log") ||
        strstr(plan, "SCAN presence"))
        fail_msg("%s scans a table: %s", query, plan);
}

static void test_query_plans(void **state)
{
    struct fixture *f = *state;
    add_member(f->st, "m-1", ROLE_MEMBER);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    must_book(f->st, "m-1", "desk-1", T0, T0 + HOUR);
    const char *hot[] = {"member_bookings", "resource_prev", "resource_next", "member_desk_overlap",
                         "booking_range", "release_no_shows", "presence_count", "denials_badge",
                         "denials_reader", "badge_get", "member_get"};
    for (size_t i = 0; i < sizeof hot / sizeof hot[0]; i++)
        assert_uses_index(f->st, hot[i]);
    char plan[1024];
    assert_int_equal(store_explain(f->st, "member_bookings", plan, sizeof plan), 0);
    assert_non_null(strstr(plan, "bookings_member"));
    assert_int_equal(store_explain(f->st, "resource_prev", plan, sizeof plan), 0);
    assert_non_null(strstr(plan, "bookings_resource"));
    assert_int_equal(store_explain(f->st, "no_such_query", plan, sizeof plan), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_open_create_and_reopen),
        T(test_newer_schema_refused),
        T(test_wal_and_foreign_keys),
        T(test_readonly),
        T(test_members),
        T(test_long_strings_truncate),
        T(test_member_remove),
        T(test_badges),
        T(test_booking_resource_conflicts),
        T(test_booking_invalid),
        T(test_member_desk_double_booking),
        T(test_booking_check_in_and_member_bookings),
        T(test_booking_foreach),
        T(test_release_no_shows),
        T(test_resource_current_booking),
        T(test_find_free_desk),
        T(test_find_free_desk_none_at_all),
        T(test_presence),
        T(test_access_log),
        T(test_member_export_and_erasure),
        T(test_purge),
        T(test_backup),
        T(test_closures),
        T(test_resources),
        T(test_resource_remove),
        T(test_transactions),
        T(test_meta),
        T(test_query_plans),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
