/* Sync batches: applied whole, or rejected whole with the database unchanged (a full dump of every table
 * compared before and after), and the reason naming the op. A real SQLite file per test. */
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
#include <unistd.h>

#include "sync.h"
#include "testutil.h"

#define NOW 1795420931   /* 2026-11-23T08:02:11Z */
#define HOUR 3600

struct fixture {
    char dir[64];
    char path[128];
    struct store *st;
};

static struct sync_result apply_scope(struct store *st, enum sync_scope scope, const char *payload)
{
    struct sync_result res;
    int r = sync_apply(st, scope, payload, strlen(payload), NOW, &res);
    if (r != 0)
        fail_msg("sync_apply: %d %s", r, res.error);
    return res;
}

static struct sync_result apply(struct store *st, const char *payload)
{
    return apply_scope(st, SYNC_SITE, payload);
}

static void must_apply(struct store *st, const char *payload)
{
    struct sync_result res = apply(st, payload);
    if (res.outcome != SYNC_APPLIED)
        fail_msg("%s: %s %s", payload, sync_outcome_name(res.outcome), res.error);
}

/* A site with a bit of everything, through the store's own calls. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_sync.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/site.db", f->dir);
    assert_int_equal(store_open(f->path, STORE_CREATE, &f->st), 0);
    must_apply(f->st, "{\"version\":1,\"ops\":["
                      "{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"Ana\"}},"
                      "{\"op\":\"upsert\",\"member\":{\"id\":\"m-2\",\"name\":\"Ben\",\"role\":\"keyholder\"}},"
                      "{\"op\":\"upsert\",\"badge\":{\"uid\":\"04:a1:b2:c3\",\"member\":\"m-1\"}},"
                      "{\"op\":\"upsert\",\"resource\":{\"id\":\"desk-1\",\"kind\":\"desk\"}},"
                      "{\"op\":\"upsert\",\"resource\":{\"id\":\"room-1\",\"kind\":\"room\",\"seats\":6}}]}");
    struct booking b = {.start = NOW + HOUR, .end = NOW + 2 * HOUR, .kind = BOOKING_RESERVED, .created_at = NOW};
    snprintf(b.member_id, sizeof b.member_id, "m-1");
    snprintf(b.resource_id, sizeof b.resource_id, "desk-1");
    assert_int_equal(store_booking_add(f->st, &b, NULL), 0);
    struct access_record rec = {.at = NOW, .result = ACCESS_GRANTED, .reason = REASON_BOOKING};
    snprintf(rec.member_id, sizeof rec.member_id, "m-1");
    assert_int_equal(store_access_log(f->st, &rec), 0);
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

static int count_one(const struct member *m, void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

static int count_members(struct store *st)
{
    int n = 0;
    return store_member_foreach(st, count_one, &n) < 0 ? -1 : n;
}

static void test_applied(void **state)
{
    struct fixture *f = *state;
    struct sync_result res = apply(f->st,
        "{\"version\":2,\"ops\":["
        "{\"op\":\"upsert\",\"member\":{\"id\":\"m-3\",\"name\":\"Chloé\",\"role\":\"manager\",\"email\":\"c@example.org\","
        "\"valid_from\":\"2026-01-01\",\"valid_until\":\"2027-06-30\",\"suspended\":false,\"presence_visible\":true}},"
        "{\"op\":\"upsert\",\"badge\":{\"uid\":\"04-11-22-33-44-55-66\",\"member\":\"m-3\",\"label\":\"blue\"}},"
        "{\"op\":\"upsert\",\"badge\":{\"uid\":\"04A1B2C3\",\"member\":\"m-2\",\"revoked\":true}},"
        "{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"Ana B.\",\"suspended\":true,\"email\":null,"
        "\"valid_until\":null}},"
        "{\"op\":\"upsert\",\"resource\":{\"id\":\"room-1\",\"kind\":\"room\",\"name\":\"Big room\",\"seats\":10}},"
        "{\"op\":\"delete\",\"badge\":{\"uid\":\"FF:FF:FF:FF\"}}"
        "]}");
    assert_int_equal(res.outcome, SYNC_APPLIED);
    assert_int_equal(res.version, 2);
    assert_int_equal(res.n_ops, 6);
    assert_true(res.resources_changed);
    assert_string_equal(res.error, "");

    struct member m;
    assert_int_equal(store_member_get(f->st, "m-3", &m), 0);
    assert_string_equal(m.name, "Chloé");
    assert_int_equal(m.role, ROLE_MANAGER);
    assert_string_equal(m.email, "c@example.org");
    assert_int_equal(m.valid_from, 20260101);
    assert_int_equal(m.valid_until, 20270630);
    assert_true(m.presence_visible);
    assert_int_equal(m.created_at, NOW);
    assert_int_equal(store_member_get(f->st, "m-1", &m), 0);
    assert_string_equal(m.name, "Ana B.");
    assert_true(m.suspended);
    assert_int_equal(m.role, ROLE_MEMBER);   /* an upsert states the whole member: omitted = default */

    struct badge b;
    assert_int_equal(store_badge_get(f->st, "04112233445566", &b), 0);   /* normalised */
    assert_string_equal(b.member_id, "m-3");
    assert_string_equal(b.label, "blue");
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &b), 0);
    assert_string_equal(b.member_id, "m-2");
    assert_true(b.revoked);
    assert_int_equal(b.revoked_at, NOW);
    struct resource r;
    assert_int_equal(store_resource_get(f->st, "room-1", &r), 0);
    assert_int_equal(r.seats, 10);
    assert_string_equal(r.name, "Big room");

    int64_t version, at;
    assert_int_equal(sync_last_version(f->st, SYNC_SITE, &version, &at), 0);
    assert_int_equal(version, 2);
    assert_int_equal(at, NOW);
    assert_int_equal(sync_last_version(f->st, SYNC_NETWORK, &version, &at), 0);
    assert_int_equal(version, 0);
    assert_int_equal(at, 0);

    json_t *ack = sync_ack_json(SYNC_SITE, &res);
    char *s = json_dumps(ack, JSON_COMPACT);
    assert_string_equal(s, "{\"version\":2,\"result\":\"applied\",\"ops\":6}");
    free(s);
    json_decref(ack);

    /* Members only: resources_changed tells the daemon whether to redo resource states and discovery. */
    res = apply(f->st, "{\"version\":3,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-9\",\"name\":\"Z\"}}]}");
    assert_int_equal(res.outcome, SYNC_APPLIED);
    assert_false(res.resources_changed);
    /* An empty batch moves the version. */
    res = apply(f->st, "{\"version\":4,\"ops\":[]}");
    assert_int_equal(res.outcome, SYNC_APPLIED);
    assert_int_equal(res.n_ops, 0);
}

static void test_ops_in_order(void **state)
{
    struct fixture *f = *state;
    /* A badge names a member made earlier in the batch; a member deleted then made again is new. */
    must_apply(f->st, "{\"version\":2,\"ops\":["
                      "{\"op\":\"upsert\",\"member\":{\"id\":\"m-5\",\"name\":\"Eve\"}},"
                      "{\"op\":\"upsert\",\"badge\":{\"uid\":\"0A0B0C0D\",\"member\":\"m-5\"}},"
                      "{\"op\":\"delete\",\"member\":{\"id\":\"m-1\"}},"
                      "{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"Ana again\"}}]}");
    struct badge b;
    assert_int_equal(store_badge_get(f->st, "0A0B0C0D", &b), 0);
    /* m-1's badge and booking went with the delete. */
    assert_int_equal(store_badge_get(f->st, "04A1B2C3", &b), -ENOENT);
    struct booking bk;
    assert_int_equal(store_booking_get(f->st, 1, &bk), -ENOENT);
    struct member m;
    assert_int_equal(store_member_get(f->st, "m-1", &m), 0);
    assert_string_equal(m.name, "Ana again");
}

static void test_rejected_whole(void **state)
{
    struct fixture *f = *state;
    char *before = testutil_db_dump(f->path);
    struct sync_result res = apply(f->st,
        "{\"version\":2,\"ops\":["
        "{\"op\":\"upsert\",\"member\":{\"id\":\"m-7\",\"name\":\"Gus\"}},"
        "{\"op\":\"delete\",\"member\":{\"id\":\"m-2\"}},"
        "{\"op\":\"upsert\",\"resource\":{\"id\":\"desk-2\",\"kind\":\"desk\"}},"
        "{\"op\":\"upsert\",\"badge\":{\"uid\":\"01020304\",\"member\":\"m-9\"}},"
        "{\"op\":\"upsert\",\"member\":{\"id\":\"m-8\",\"name\":\"Hal\"}}]}");
    assert_int_equal(res.outcome, SYNC_REJECTED);
    assert_int_equal(res.version, 2);
    assert_false(res.resources_changed);
    assert_string_equal(res.error, "ops[3].badge.member: no member 'm-9'");
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);
    int64_t version;
    assert_int_equal(sync_last_version(f->st, SYNC_SITE, &version, NULL), 0);
    assert_int_equal(version, 1);

    json_t *ack = sync_ack_json(SYNC_SITE, &res);
    char *s = json_dumps(ack, JSON_COMPACT);
    assert_string_equal(s, "{\"version\":2,\"result\":\"rejected\",\"error\":\"ops[3].badge.member: no member 'm-9'\"}");
    free(s);
    json_decref(ack);

    /* The same version, corrected, is then applied: a rejection does not consume it. */
    res = apply(f->st, "{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-9\",\"name\":\"Ida\"}},"
                       "{\"op\":\"upsert\",\"badge\":{\"uid\":\"01020304\",\"member\":\"m-9\"}}]}");
    assert_int_equal(res.outcome, SYNC_APPLIED);
    free(before);
    free(after);
}

static void test_thousand_members(void **state)
{
    struct fixture *f = *state;
    size_t cap = 400 * 1000;
    char *p = malloc(cap);
    assert_non_null(p);
    size_t len = (size_t)snprintf(p, cap, "{\"version\":7,\"ops\":[");
    for (int i = 0; i < 1000; i++) {
        len += (size_t)snprintf(p + len, cap - len,
                                "%s{\"op\":\"upsert\",\"member\":{\"id\":\"net-%04d\",\"name\":\"Member number %d\","
                                "\"email\":\"m%d@example.org\",\"valid_until\":\"2027-12-31\",\"presence_visible\":%s}},"
                                "{\"op\":\"upsert\",\"badge\":{\"uid\":\"04%012X\",\"member\":\"net-%04d\","
                                "\"label\":\"card %d\"}}",
                                i ? "," : "", i, i, i, i % 2 ? "true" : "false", i, i, i);
        assert_true(len < cap);
    }
    len += (size_t)snprintf(p + len, cap - len, "]}");
    struct sync_result res;
    assert_int_equal(sync_apply(f->st, SYNC_SITE, p, len, NOW, &res), 0);
    assert_int_equal(res.outcome, SYNC_APPLIED);
    assert_int_equal(res.n_ops, 2000);
    assert_int_equal(count_members(f->st), 1002);
    struct member m;
    assert_int_equal(store_member_get(f->st, "net-0999", &m), 0);
    assert_string_equal(m.name, "Member number 999");
    struct badge b;
    assert_int_equal(store_badge_get(f->st, "0400000000003E7", &b), -ENOENT);   /* 7.5 bytes: not a UID */
    assert_int_equal(store_badge_get(f->st, "040000000003E7", &b), 0);
    assert_string_equal(b.member_id, "net-0999");

    /* One bad record at the very end rejects the thousand before it. */
    char *before = testutil_db_dump(f->path);
    p[len - 2] = '\0';
    len = strlen(p);
    len += (size_t)snprintf(p + len, cap - len, ",{\"op\":\"upsert\",\"member\":{\"id\":\"bad id\",\"name\":\"x\"}}]}");
    p[11] = '8';   /* "version":8 */
    assert_int_equal(sync_apply(f->st, SYNC_SITE, p, len, NOW, &res), 0);
    assert_int_equal(res.outcome, SYNC_REJECTED);
    assert_int_equal(res.version, 8);
    assert_string_equal(res.error, "ops[2000].member.id: not a valid id (1 to 63 of A-Z a-z 0-9 . _ -)");
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(p);
}

static void test_old_version_ignored(void **state)
{
    struct fixture *f = *state;
    must_apply(f->st, "{\"version\":42,\"ops\":[]}");
    char *before = testutil_db_dump(f->path);
    struct sync_result res = apply(f->st, "{\"version\":42,\"ops\":[{\"op\":\"delete\",\"member\":{\"id\":\"m-1\"}}]}");
    assert_int_equal(res.outcome, SYNC_IGNORED);
    assert_string_equal(res.error, "version 42 is not newer than 42");
    res = apply(f->st, "{\"version\":41,\"ops\":[{\"op\":\"delete\",\"member\":{\"id\":\"m-1\"}}]}");
    assert_int_equal(res.outcome, SYNC_IGNORED);
    assert_int_equal(res.version, 41);
    assert_string_equal(res.error, "version 41 is not newer than 42");
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);
    json_t *ack = sync_ack_json(SYNC_SITE, &res);
    char *s = json_dumps(ack, JSON_COMPACT);
    assert_string_equal(s, "{\"version\":41,\"result\":\"ignored\",\"reason\":\"version 41 is not newer than 42\"}");
    free(s);
    json_decref(ack);
    free(before);
    free(after);
}

static void test_network_scope(void **state)
{
    struct fixture *f = *state;
    must_apply(f->st, "{\"version\":50,\"ops\":[]}");
    /* The network's versions are its own: 3 is new there. */
    struct sync_result res = apply_scope(f->st, SYNC_NETWORK,
        "{\"version\":3,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"net-1\",\"name\":\"Roaming\"}},"
        "{\"op\":\"upsert\",\"badge\":{\"uid\":\"0A0B0C0D\",\"member\":\"net-1\"}}]}");
    assert_int_equal(res.outcome, SYNC_APPLIED);
    json_t *ack = sync_ack_json(SYNC_NETWORK, &res);
    char *s = json_dumps(ack, JSON_COMPACT);
    assert_string_equal(s, "{\"version\":3,\"result\":\"applied\",\"ops\":2,\"scope\":\"network\"}");
    free(s);
    json_decref(ack);
    int64_t v;
    assert_int_equal(sync_last_version(f->st, SYNC_NETWORK, &v, NULL), 0);
    assert_int_equal(v, 3);
    assert_int_equal(sync_last_version(f->st, SYNC_SITE, &v, NULL), 0);
    assert_int_equal(v, 50);
    res = apply_scope(f->st, SYNC_NETWORK, "{\"version\":3,\"ops\":[]}");
    assert_int_equal(res.outcome, SYNC_IGNORED);
    res = apply(f->st, "{\"version\":51,\"ops\":[]}");
    assert_int_equal(res.outcome, SYNC_APPLIED);

    /* Desks and rooms belong to the site. */
    char *before = testutil_db_dump(f->path);
    res = apply_scope(f->st, SYNC_NETWORK, "{\"version\":4,\"ops\":[{\"op\":\"upsert\",\"resource\":"
                                           "{\"id\":\"desk-9\",\"kind\":\"desk\"}}]}");
    assert_int_equal(res.outcome, SYNC_REJECTED);
    assert_string_equal(res.error, "ops[0].resource: resources cannot be synced on the network topic");
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_resource_delete(void **state)
{
    struct fixture *f = *state;
    char *before = testutil_db_dump(f->path);
    struct sync_result res = apply(f->st, "{\"version\":2,\"ops\":[{\"op\":\"delete\",\"resource\":{\"id\":\"room-1\"}},"
                                          "{\"op\":\"delete\",\"resource\":{\"id\":\"desk-1\"}}]}");
    assert_int_equal(res.outcome, SYNC_REJECTED);
    assert_string_equal(res.error, "ops[1].resource: 'desk-1' has a confirmed booking to come (b-1)");
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);

    /* Cancelled, the booking no longer holds the desk. */
    assert_int_equal(store_booking_cancel(f->st, 1), 0);
    res = apply(f->st, "{\"version\":2,\"ops\":[{\"op\":\"delete\",\"resource\":{\"id\":\"room-1\"}},"
                       "{\"op\":\"delete\",\"resource\":{\"id\":\"desk-1\"}},"
                       "{\"op\":\"delete\",\"resource\":{\"id\":\"desk-404\"}},"
                       "{\"op\":\"delete\",\"member\":{\"id\":\"m-404\"}}]}");
    assert_int_equal(res.outcome, SYNC_APPLIED);
    assert_true(res.resources_changed);
    struct resource r;
    assert_int_equal(store_resource_get(f->st, "desk-1", &r), -ENOENT);
    free(before);
    free(after);
}

/* Every class of bad input: rejected with this reason, version as given, database unchanged. */
static const struct {
    const char *payload;
    int64_t version;
    const char *error;   /* "...*": prefix (jansson's own words may change) */
} invalid[] = {
    {"", 0, "empty payload"},
    {"{\"version\":2,\"ops\":[", 0, "malformed JSON: *"},
    {"{\"version\":2,\"ops\":[]} trailing", 0, "malformed JSON: *"},
    {"[1,2]", 0, "not a JSON object"},
    {"{\"version\":2,\"ops\":[],\"version\":3}", 0, "malformed JSON: duplicate object key*"},
    {"{\"version\":2,\"ops\":[],\"signature\":\"x\"}", 0, "unknown field 'signature'"},
    {"{\"ops\":[]}", 0, "version: must be a positive integer"},
    {"{\"version\":0,\"ops\":[]}", 0, "version: must be a positive integer"},
    {"{\"version\":-3,\"ops\":[]}", 0, "version: must be a positive integer"},
    {"{\"version\":\"2\",\"ops\":[]}", 0, "version: must be a positive integer"},
    {"{\"version\":2.0,\"ops\":[]}", 0, "version: must be a positive integer"},
    {"{\"version\":2}", 2, "ops: must be an array"},
    {"{\"version\":2,\"ops\":{}}", 2, "ops: must be an array"},
    {"{\"version\":2,\"ops\":[1]}", 2, "ops[0]: must be an object"},
    {"{\"version\":2,\"ops\":[{\"member\":{\"id\":\"m-1\",\"name\":\"A\"}}]}", 2, "ops[0].op: missing"},
    {"{\"version\":2,\"ops\":[{\"op\":\"insert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\"}}]}", 2,
     "ops[0].op: must be \"upsert\" or \"delete\""},
    {"{\"version\":2,\"ops\":[{\"op\":true,\"member\":{}}]}", 2, "ops[0].op: must be \"upsert\" or \"delete\""},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\"}]}", 2, "ops[0]: exactly one of member, badge, resource"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\"},\"badge\":"
     "{\"uid\":\"01020304\",\"member\":\"m-1\"}}]}", 2, "ops[0]: exactly one of member, badge, resource"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\"},\"when\":1}]}", 2,
     "ops[0]: unknown field 'when'"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":[]}]}", 2, "ops[0].member: must be an object"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"nickname\":\"a\"}}]}", 2,
     "ops[0].member: unknown field 'nickname'"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"n\\u00e9\":1}}]}", 2,
     "ops[0].member: unknown field 'n?" "?'"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"name\":\"A\"}}]}", 2, "ops[0].member.id: missing"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":42,\"name\":\"A\"}}]}", 2,
     "ops[0].member.id: must be a string"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m 1\",\"name\":\"A\"}}]}", 2,
     "ops[0].member.id: not a valid id (1 to 63 of A-Z a-z 0-9 . _ -)"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\"}}]}", 2, "ops[0].member.name: missing"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":null}}]}", 2,
     "ops[0].member.name: must be a string"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"\"}}]}", 2,
     "ops[0].member.name: must not be empty"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\\nB\"}}]}", 2,
     "ops[0].member.name: must not contain control characters"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"role\":\"admin\"}}]}", 2,
     "ops[0].member.role: must be \"member\", \"keyholder\" or \"manager\""},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"email\":\"nobody\"}}]}", 2,
     "ops[0].member.email: not an e-mail address"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"email\":5}}]}", 2,
     "ops[0].member.email: must be a string or null"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"valid_from\":\"2026-02-30\"}}]}",
     2, "ops[0].member.valid_from: must be a date \"YYYY-MM-DD\" or null"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"valid_until\":20270101}}]}",
     2, "ops[0].member.valid_until: must be a date \"YYYY-MM-DD\" or null"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"valid_from\":\"2027-01-01\","
     "\"valid_until\":\"2026-01-01\"}}]}", 2, "ops[0].member.valid_until: before valid_from"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"suspended\":1}}]}", 2,
     "ops[0].member.suspended: must be true or false"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"A\",\"presence_visible\":\"yes\"}}]}",
     2, "ops[0].member.presence_visible: must be true or false"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"badge\":{\"member\":\"m-1\"}}]}", 2, "ops[0].badge.uid: missing"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"badge\":{\"uid\":\"XYZ\",\"member\":\"m-1\"}}]}", 2,
     "ops[0].badge.uid: not a badge UID (hex, 4, 7 or 10 bytes)"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"badge\":{\"uid\":\"010203\",\"member\":\"m-1\"}}]}", 2,
     "ops[0].badge.uid: not a badge UID (hex, 4, 7 or 10 bytes)"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"badge\":{\"uid\":\"01020304\"}}]}", 2, "ops[0].badge.member: missing"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"badge\":{\"uid\":\"01020304\",\"member\":\"m-1\",\"revoked\":\"no\"}}]}",
     2, "ops[0].badge.revoked: must be true or false"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"badge\":{\"uid\":\"01020304\",\"member\":\"m-1\",\"owner\":\"x\"}}]}",
     2, "ops[0].badge: unknown field 'owner'"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"resource\":{\"id\":\"d-9\"}}]}", 2, "ops[0].resource.kind: missing"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"resource\":{\"id\":\"d-9\",\"kind\":\"sofa\"}}]}", 2,
     "ops[0].resource.kind: must be \"desk\" or \"room\""},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"resource\":{\"id\":\"d-9\",\"kind\":\"desk\",\"seats\":0}}]}", 2,
     "ops[0].resource.seats: must be a whole number from 1"},
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"resource\":{\"id\":\"d-9\",\"kind\":\"desk\",\"seats\":\"2\"}}]}", 2,
     "ops[0].resource.seats: must be a whole number from 1"},
    {"{\"version\":2,\"ops\":[{\"op\":\"delete\",\"member\":{\"id\":\"m-1\",\"name\":\"A\"}}]}", 2,
     "ops[0].member: unknown field 'name'"},
    {"{\"version\":2,\"ops\":[{\"op\":\"delete\",\"badge\":{\"uid\":7}}]}", 2,
     "ops[0].badge.uid: not a badge UID (hex, 4, 7 or 10 bytes)"},
    {"{\"version\":2,\"ops\":[{\"op\":\"delete\",\"resource\":{}}]}", 2, "ops[0].resource.id: missing"},
    /* The first bad op is named, after good ones. */
    {"{\"version\":2,\"ops\":[{\"op\":\"upsert\",\"member\":{\"id\":\"m-5\",\"name\":\"E\"}},"
     "{\"op\":\"delete\",\"badge\":{\"uid\":\"04A1B2C3\"}},{\"op\":\"upsert\",\"member\":{\"id\":\"m-6\"}}]}", 2,
     "ops[2].member.name: missing"},
};

static void test_invalid(void **state)
{
    struct fixture *f = *state;
    char *before = testutil_db_dump(f->path);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        struct sync_result res;
        memset(&res, 0x5a, sizeof res);
        int r = sync_apply(f->st, SYNC_SITE, invalid[i].payload, strlen(invalid[i].payload), NOW, &res);
        if (r != 0 || res.outcome != SYNC_REJECTED)
            fail_msg("%s: %d %s", invalid[i].payload, r, sync_outcome_name(res.outcome));
        const char *want = invalid[i].error;
        size_t n = strlen(want);
        bool ok = want[n - 1] == '*' ? !strncmp(res.error, want, n - 1) : !strcmp(res.error, want);
        if (!ok)
            fail_msg("%s:\n got  %s\n want %s", invalid[i].payload, res.error, want);
        if (res.version != invalid[i].version)
            fail_msg("%s: version %lld", invalid[i].payload, (long long)res.version);
        assert_false(res.resources_changed);
        json_t *ack = sync_ack_json(SYNC_SITE, &res);
        assert_non_null(ack);
        if (invalid[i].version == 0)
            assert_true(json_is_null(json_object_get(ack, "version")));
        json_decref(ack);
    }
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_oversized_and_too_many_ops(void **state)
{
    struct fixture *f = *state;
    char *before = testutil_db_dump(f->path);
    /* Valid JSON, one byte over: refused unread. */
    size_t len = SYNC_MAX_BYTES + 1;
    char *p = malloc(len + 1);
    assert_non_null(p);
    int n = snprintf(p, len + 1, "{\"version\":9,\"ops\":[]}");
    memset(p + n, ' ', len - (size_t)n);
    p[len] = '\0';
    struct sync_result res;
    assert_int_equal(sync_apply(f->st, SYNC_SITE, p, len, NOW, &res), 0);
    assert_int_equal(res.outcome, SYNC_REJECTED);
    assert_int_equal(res.version, 0);
    assert_string_equal(res.error, "payload of 8388609 bytes, over the 8388608-byte limit");
    assert_int_equal(sync_apply(f->st, SYNC_SITE, p, len - 1, NOW, &res), 0);   /* at the limit: read */
    assert_int_equal(res.outcome, SYNC_APPLIED);
    free(p);

    /* One op over the limit. */
    size_t cap = 32 + (SYNC_MAX_OPS + 1) * 3;
    p = malloc(cap);
    assert_non_null(p);
    len = (size_t)snprintf(p, cap, "{\"version\":10,\"ops\":[");
    for (int i = 0; i <= SYNC_MAX_OPS; i++)
        len += (size_t)snprintf(p + len, cap - len, "%s{}", i ? "," : "");
    len += (size_t)snprintf(p + len, cap - len, "]}");
    assert_true(len < cap);
    assert_int_equal(sync_apply(f->st, SYNC_SITE, p, len, NOW, &res), 0);
    assert_int_equal(res.outcome, SYNC_REJECTED);
    assert_string_equal(res.error, "ops: 20001 ops, over the limit of 20000");
    free(p);

    /* The database changed only by the one accepted batch (version 9). */
    must_apply(f->st, "{\"version\":11,\"ops\":[]}");
    int64_t v;
    assert_int_equal(sync_last_version(f->st, SYNC_SITE, &v, NULL), 0);
    assert_int_equal(v, 11);
    free(before);
}

static void test_names(void **state)
{
    assert_string_equal(sync_outcome_name(SYNC_APPLIED), "applied");
    assert_string_equal(sync_outcome_name(SYNC_REJECTED), "rejected");
    assert_string_equal(sync_outcome_name(SYNC_IGNORED), "ignored");
    struct sync_result res = {.outcome = SYNC_REJECTED};
    snprintf(res.error, sizeof res.error, "malformed JSON: x");
    json_t *ack = sync_ack_json(SYNC_NETWORK, &res);
    char *s = json_dumps(ack, JSON_COMPACT);
    assert_string_equal(s, "{\"version\":null,\"result\":\"rejected\",\"error\":\"malformed JSON: x\",\"scope\":\"network\"}");
    free(s);
    json_decref(ack);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_applied),
        T(test_ops_in_order),
        T(test_rejected_whole),
        T(test_thousand_members),
        T(test_old_version_ignored),
        T(test_network_scope),
        T(test_resource_delete),
        T(test_invalid),
        T(test_oversized_and_too_many_ops),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
