/* Access decisions and their outbox events: the event commits with its access-log row or neither is
 * kept; the event never carries a badge UID or a member's name; remote unlocks are logged like a grant
 * with who asked. A real SQLite file per test; failures are injected with a trigger made through a
 * second connection, as a full disk would make the insert fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "event.h"
#include "store.h"
#include "testutil.h"

#define NOW 1795420931   /* 2026-11-23T08:02:11Z, a Monday, 09:02 in Paris: open */
#define UID "04A1B2C3D4E5F6"
#define NAME "Ana Secret-Name"

struct fixture {
    char dir[64];
    char path[128];
    struct store *st;
    struct policy_config pc;
    int decided;
    struct decision last;
    int log_rows_at_decision;
};

static int setup(void **state)
{
    assert_int_equal(tz_set("Europe/Paris"), 0);
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_access_outbox.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/site.db", f->dir);
    assert_int_equal(store_open(f->path, STORE_CREATE, &f->st), 0);
    policy_config_defaults(&f->pc);

    struct member m = {.role = ROLE_MEMBER, .created_at = NOW};
    snprintf(m.id, sizeof m.id, "m-0042");
    snprintf(m.name, sizeof m.name, NAME);
    assert_int_equal(store_member_add(f->st, &m), 0);
    struct badge b = {.created_at = NOW};
    snprintf(b.uid, sizeof b.uid, UID);
    snprintf(b.member_id, sizeof b.member_id, "m-0042");
    assert_int_equal(store_badge_add(f->st, &b), 0);
    struct resource r = {.kind = RESOURCE_DESK, .seats = 1};
    snprintf(r.id, sizeof r.id, "desk-1");
    assert_int_equal(store_resource_add(f->st, &r), 0);
    struct booking bk = {.start = NOW - 600, .end = NOW + 3600, .kind = BOOKING_RESERVED, .created_at = NOW};
    snprintf(bk.member_id, sizeof bk.member_id, "m-0042");
    snprintf(bk.resource_id, sizeof bk.resource_id, "desk-1");
    assert_int_equal(store_booking_add(f->st, &bk, NULL), 0);
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

static int count_row(const struct access_record *rec, void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

static int log_rows(struct store *st)
{
    int n = 0;
    assert_int_equal(store_access_foreach(st, 0, count_row, &n), 0);
    return n;
}

static int64_t outbox_depth(struct store *st)
{
    struct outbox_stats os;
    assert_int_equal(store_outbox_stats(st, &os), 0);
    return os.depth;
}

static void on_decided(const struct decision *d, const struct access_record *rec, void *userdata)
{
    struct fixture *f = userdata;
    f->decided++;
    f->last = *d;
}

static struct access_request tap(struct fixture *f, int64_t outbox_max, int64_t *event_seq)
{
    return (struct access_request){.uid = UID, .door = "entrance", .reader = "entrance",
                                   .direction = DIRECTION_IN, .now = NOW, .on_decided = on_decided,
                                   .userdata = f, .outbox_max = outbox_max, .event_seq = event_seq};
}

struct payloads {
    int n;
    int64_t seq;
    char payload[1024];
};

static int keep_payload(const struct outbox_row *row, void *userdata)
{
    struct payloads *p = userdata;
    p->n++;
    p->seq = row->seq;
    assert_string_equal(row->kind, "access");
    snprintf(p->payload, sizeof p->payload, "%s", row->payload);
    return 0;
}

/* A second connection, as another process: adds a trigger that makes inserts into `table` fail. */
static void break_inserts(const char *path, const char *table)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE TRIGGER broken BEFORE INSERT ON %s BEGIN SELECT RAISE(ABORT, 'disk full"
             " (test)'); END", table);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s", err);
    sqlite3_close(db);
}

static void test_tap_writes_one_event(void **state)
{
    struct fixture *f = *state;
    int64_t event_seq = -1;
    struct access_request req = tap(f, 100, &event_seq);
    struct decision d;
    struct access_record rec;
    assert_int_equal(access_decide(f->st, &f->pc, &req, true, &d, &rec), 0);
    assert_int_equal(d.result, ACCESS_GRANTED);
    assert_int_equal(d.reason, REASON_BOOKING);
    assert_int_equal(f->decided, 1);
    assert_int_equal(log_rows(f->st), 1);

    struct payloads p = {0};
    assert_int_equal(store_outbox_foreach(f->st, 0, 0, keep_payload, &p), 1);
    assert_int_equal(event_seq, p.seq);
    assert_int_equal(p.seq, 1);
    char *expect = event_access_json(&rec);
    assert_string_equal(p.payload, expect);
    free(expect);
    assert_null(strstr(p.payload, UID));
    assert_null(strstr(p.payload, NAME));
    assert_null(strstr(p.payload, "Ana"));

    json_error_t err;
    json_t *j = json_loads(p.payload, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "member")), "m-0042");
    assert_string_equal(json_string_value(json_object_get(j, "booking")), "b-1");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "booking");
    assert_true(json_is_null(json_object_get(j, "by")));
    assert_null(json_object_get(j, "seq"));
    assert_int_equal(json_object_size(j), 9);
    json_decref(j);

    /* A denied unknown badge: an event too, still without the UID. */
    req.uid = "DEADBEEF";
    assert_int_equal(access_decide(f->st, &f->pc, &req, true, &d, &rec), 0);
    assert_int_equal(d.reason, REASON_UNKNOWN_BADGE);
    assert_int_equal(event_seq, 2);
    p = (struct payloads){0};
    assert_int_equal(store_outbox_foreach(f->st, 1, 0, keep_payload, &p), 1);
    assert_null(strstr(p.payload, "DEADBEEF"));
    assert_non_null(strstr(p.payload, "\"member\":null"));
}

static void test_no_event_without_mqtt_or_apply(void **state)
{
    struct fixture *f = *state;
    int64_t event_seq = -1;
    struct access_request req = tap(f, 0, &event_seq);
    struct decision d;
    assert_int_equal(access_decide(f->st, &f->pc, &req, true, &d, NULL), 0);
    assert_int_equal(event_seq, 0);
    assert_int_equal(log_rows(f->st), 1);
    assert_int_equal(outbox_depth(f->st), 0);

    /* `telecentrectl check` looks only. */
    event_seq = -1;
    req = tap(f, 100, &event_seq);
    req.on_decided = NULL;
    assert_int_equal(access_decide(f->st, &f->pc, &req, false, &d, NULL), 0);
    assert_int_equal(event_seq, 0);
    assert_int_equal(log_rows(f->st), 1);
    assert_int_equal(outbox_depth(f->st), 0);
}

static void test_bound_applies(void **state)
{
    struct fixture *f = *state;
    struct decision d;
    for (int i = 0; i < 5; i++) {
        struct access_request req = tap(f, 3, NULL);
        req.now = NOW + i;
        assert_int_equal(access_decide(f->st, &f->pc, &req, true, &d, NULL), 0);
    }
    struct outbox_stats os;
    assert_int_equal(store_outbox_stats(f->st, &os), 0);
    assert_int_equal(os.depth, 3);
    assert_int_equal(os.oldest_seq, 3);
    assert_int_equal(os.dropped, 2);
    assert_int_equal(log_rows(f->st), 5);   /* the log keeps everything */
}

static void test_failed_outbox_keeps_neither(void **state)
{
    struct fixture *f = *state;
    break_inserts(f->path, "outbox");
    int64_t event_seq = -1;
    struct access_request req = tap(f, 100, &event_seq);
    struct decision d;
    assert_true(access_decide(f->st, &f->pc, &req, true, &d, NULL) < 0);
    /* The door was still decided ... */
    assert_int_equal(f->decided, 1);
    assert_int_equal(f->last.result, ACCESS_GRANTED);
    /* ... and nothing of the tap was kept: no log row, no check-in, no presence, no event. */
    assert_int_equal(event_seq, 0);
    assert_int_equal(log_rows(f->st), 0);
    assert_int_equal(outbox_depth(f->st), 0);
    struct booking b;
    assert_int_equal(store_booking_get(f->st, 1, &b), 0);
    assert_int_equal(b.checked_in_at, 0);
    assert_int_equal(store_presence_count(f->st, NOW), 0);
}

static void test_failed_log_keeps_neither(void **state)
{
    struct fixture *f = *state;
    break_inserts(f->path, "access_log");
    int64_t event_seq = -1;
    struct access_request req = tap(f, 100, &event_seq);
    struct decision d;
    assert_true(access_decide(f->st, &f->pc, &req, true, &d, NULL) < 0);
    assert_int_equal(f->decided, 1);
    assert_int_equal(event_seq, 0);
    assert_int_equal(log_rows(f->st), 0);
    assert_int_equal(outbox_depth(f->st), 0);
}

static void test_remote_unlock(void **state)
{
    struct fixture *f = *state;
    int64_t event_seq = -1;
    struct access_request req = {.door = "entrance", .reader = "ignored", .uid = "ignored", .now = NOW,
                                 .direction = DIRECTION_OUT, .on_decided = on_decided, .userdata = f,
                                 .outbox_max = 100, .event_seq = &event_seq};
    struct access_record rec;
    assert_int_equal(access_remote_unlock(f->st, &req, "manager-07", &rec), 0);
    assert_int_equal(f->decided, 1);
    assert_int_equal(f->last.result, ACCESS_GRANTED);
    assert_int_equal(f->last.reason, REASON_REMOTE);
    assert_int_equal(event_seq, 1);
    assert_true(rec.seq > 0);
    assert_string_equal(rec.requested_by, "manager-07");
    assert_string_equal(rec.reader, "");
    assert_string_equal(rec.badge_uid, "");
    assert_int_equal(rec.direction, DIRECTION_IN);

    struct payloads p = {0};
    assert_int_equal(store_outbox_foreach(f->st, 0, 0, keep_payload, &p), 1);
    assert_string_equal(p.payload, "{\"at\":\"2026-11-23T08:02:11Z\",\"door\":\"entrance\",\"reader\":null,"
                                   "\"direction\":\"in\",\"result\":\"granted\",\"reason\":\"remote\","
                                   "\"member\":null,\"booking\":null,\"by\":\"manager-07\"}");
    assert_int_equal(log_rows(f->st), 1);
    /* No presence: nobody badged in. */
    assert_int_equal(store_presence_count(f->st, NOW), 0);

    /* Without MQTT: the log row only. */
    req.outbox_max = 0;
    assert_int_equal(access_remote_unlock(f->st, &req, "manager-07", NULL), 0);
    assert_int_equal(event_seq, 0);
    assert_int_equal(log_rows(f->st), 2);
    assert_int_equal(outbox_depth(f->st), 1);

    /* Nothing to do without who or where. */
    assert_int_equal(access_remote_unlock(f->st, &req, "", NULL), -EINVAL);
    req.door = "";
    assert_int_equal(access_remote_unlock(f->st, &req, "manager-07", NULL), -EINVAL);
    assert_int_equal(f->decided, 2);
    assert_int_equal(log_rows(f->st), 2);
}

static void test_remote_unlock_failure(void **state)
{
    struct fixture *f = *state;
    break_inserts(f->path, "outbox");
    int64_t event_seq = -1;
    struct access_request req = {.door = "entrance", .now = NOW, .on_decided = on_decided, .userdata = f,
                                 .outbox_max = 100, .event_seq = &event_seq};
    assert_true(access_remote_unlock(f->st, &req, "manager-07", NULL) < 0);
    assert_int_equal(f->decided, 1);   /* the door still opens */
    assert_int_equal(event_seq, 0);
    assert_int_equal(log_rows(f->st), 0);
    assert_int_equal(outbox_depth(f->st), 0);
    /* The connection is usable afterwards (no transaction left open). */
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_rollback(f->st), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_tap_writes_one_event),
        T(test_no_event_without_mqtt_or_apply),
        T(test_bound_applies),
        T(test_failed_outbox_keeps_neither),
        T(test_failed_log_keeps_neither),
        T(test_remote_unlock),
        T(test_remote_unlock_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
