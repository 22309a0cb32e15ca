/* Booking ahead and cancelling (booking_book, booking_cancel) and MQTT booking requests: accepted with
 * the id, refused with the reason (naming the conflicting booking), and nothing changed on refusal (a
 * full dump of every table compared). A real SQLite file per test. */
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

#include "booking.h"
#include "clock.h"
#include "testutil.h"

#define NOW 1795420931   /* 2026-11-23T08:02:11Z, Monday 09:02 in Paris */
#define HOUR 3600
#define T10 1795424400   /* 2026-11-23T09:00:00Z */

struct fixture {
    char dir[64];
    char path[128];
    struct store *st;
    struct policy_config pc;
    int64_t b1;          /* m-1 on desk-1, 09:00Z-11:00Z */
};

static void add_member(struct store *st, const char *id, bool suspended)
{
    struct member m = {.role = ROLE_MEMBER, .created_at = NOW, .suspended = suspended};
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

static struct booking booking_of(const char *member, const char *resource, int64_t start, int64_t end)
{
    struct booking b = {.start = start, .end = end, .created_at = NOW};
    snprintf(b.member_id, sizeof b.member_id, "%s", member);
    snprintf(b.resource_id, sizeof b.resource_id, "%s", resource);
    return b;
}

static int setup(void **state)
{
    assert_int_equal(tz_set("Europe/Paris"), 0);
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_booking.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/site.db", f->dir);
    assert_int_equal(store_open(f->path, STORE_CREATE, &f->st), 0);
    policy_config_defaults(&f->pc);
    add_member(f->st, "m-1", false);
    add_member(f->st, "m-2", false);
    add_member(f->st, "m-sus", true);
    add_resource(f->st, "desk-1", RESOURCE_DESK);
    add_resource(f->st, "desk-2", RESOURCE_DESK);
    add_resource(f->st, "room-1", RESOURCE_ROOM);
    struct booking b = booking_of("m-1", "desk-1", T10, T10 + 2 * HOUR);
    struct booking_outcome out;
    assert_int_equal(booking_book(f->st, &f->pc, &b, NOW, &out), 0);
    assert_int_equal(out.refusal, BOOKING_OK);
    f->b1 = b.id;
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

/* booking_book refused with `why` and `detail`, the database unchanged. */
static void expect_refused(struct fixture *f, struct booking b, enum booking_refusal why, const char *detail)
{
    char *before = testutil_db_dump(f->path);
    struct booking_outcome out;
    assert_int_equal(booking_book(f->st, &f->pc, &b, NOW, &out), 0);
    if (out.refusal != why)
        fail_msg("%s instead of %s (%s)", booking_refusal_name(out.refusal), booking_refusal_name(why), out.detail);
    assert_string_equal(out.detail, detail);
    assert_int_equal(b.id, 0);
    assert_int_equal(out.booking_id, 0);
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_book_accepted(void **state)
{
    struct fixture *f = *state;
    struct booking b = booking_of("m-2", "desk-1", T10 + 2 * HOUR, T10 + 4 * HOUR);   /* right after b1 */
    b.after_hours = true;
    struct booking_outcome out;
    assert_int_equal(booking_book(f->st, &f->pc, &b, NOW, &out), 0);
    assert_int_equal(out.refusal, BOOKING_OK);
    assert_true(b.id > f->b1);
    assert_int_equal(out.booking_id, b.id);
    assert_int_equal(out.booking.id, b.id);
    assert_string_equal(out.detail, "");
    struct booking got;
    assert_int_equal(store_booking_get(f->st, b.id, &got), 0);
    assert_int_equal(got.status, BOOKING_CONFIRMED);
    assert_int_equal(got.kind, BOOKING_RESERVED);
    assert_true(got.after_hours);
    assert_int_equal(got.created_at, NOW);
    /* A booking that already started but has not ended is fine. */
    b = booking_of("m-2", "room-1", NOW - HOUR, NOW + HOUR);
    assert_int_equal(booking_book(f->st, &f->pc, &b, NOW, &out), 0);
    assert_int_equal(out.refusal, BOOKING_OK);
}

static void test_book_conflicts(void **state)
{
    struct fixture *f = *state;
    char detail[200];
    snprintf(detail, sizeof detail, "desk-1 is already booked by b-%lld (2026-11-23T09:00:00Z to 2026-11-23T11:00:00Z)",
             (long long)f->b1);
    expect_refused(f, booking_of("m-2", "desk-1", T10 + HOUR, T10 + 3 * HOUR), BOOKING_CONFLICT, detail);
    struct booking_outcome out;
    struct booking b = booking_of("m-2", "desk-1", T10 - HOUR, T10 + 1);
    assert_int_equal(booking_book(f->st, &f->pc, &b, NOW, &out), 0);
    assert_int_equal(out.refusal, BOOKING_CONFLICT);
    assert_int_equal(out.conflict_id, f->b1);
    assert_int_equal(out.conflict.id, f->b1);
    assert_string_equal(out.conflict.member_id, "m-1");

    /* One desk at a time for a member. */
    snprintf(detail, sizeof detail, "m-1 already has desk booking b-%lld (desk-1, 2026-11-23T09:00:00Z to "
             "2026-11-23T11:00:00Z)", (long long)f->b1);
    expect_refused(f, booking_of("m-1", "desk-2", T10, T10 + HOUR), BOOKING_CONFLICT, detail);
    /* ... but a room alongside is fine. */
    b = booking_of("m-1", "room-1", T10, T10 + HOUR);
    assert_int_equal(booking_book(f->st, &f->pc, &b, NOW, &out), 0);
    assert_int_equal(out.refusal, BOOKING_OK);
}

static void test_book_refusals(void **state)
{
    struct fixture *f = *state;
    expect_refused(f, booking_of("m-9", "desk-2", T10, T10 + HOUR), BOOKING_UNKNOWN_MEMBER, "no member 'm-9'");
    expect_refused(f, booking_of("m-2", "desk-9", T10, T10 + HOUR), BOOKING_UNKNOWN_RESOURCE, "no resource 'desk-9'");
    expect_refused(f, booking_of("m-sus", "desk-2", T10, T10 + HOUR), BOOKING_MEMBER_SUSPENDED,
                   "member 'm-sus' is suspended");
    expect_refused(f, booking_of("m-2", "desk-2", T10, T10), BOOKING_INVALID_TIME,
                   "the booking must end after it starts");
    expect_refused(f, booking_of("m-2", "desk-2", T10, T10 - 1), BOOKING_INVALID_TIME,
                   "the booking must end after it starts");
    expect_refused(f, booking_of("m-2", "desk-2", NOW - 2 * HOUR, NOW), BOOKING_INVALID_TIME,
                   "the booking has already ended");
    expect_refused(f, booking_of("m-2", "desk-2", T10, T10 + 8 * 24 * HOUR), BOOKING_INVALID_TIME,
                   "booking longer than 7 days");
    /* Times are checked before the member: an ended booking of nobody is about time. */
    expect_refused(f, booking_of("m-9", "desk-9", NOW - 2 * HOUR, NOW - HOUR), BOOKING_INVALID_TIME,
                   "the booking has already ended");
}

static void test_book_after_no_show(void **state)
{
    struct fixture *f = *state;
    /* m-2 booked desk-2 from 40 minutes ago and never came: past the 30-minute no-show delay, the desk is
     * free again even before the periodic sweep. */
    struct booking noshow = booking_of("m-2", "desk-2", NOW - 40 * 60, NOW + 2 * HOUR);
    int64_t conflict;
    assert_int_equal(store_booking_add(f->st, &noshow, &conflict), 0);
    struct booking b = booking_of("m-sus", "desk-2", NOW, NOW + HOUR);
    struct booking_outcome out;
    assert_int_equal(booking_book(f->st, &f->pc, &b, NOW, &out), 0);
    assert_int_equal(out.refusal, BOOKING_MEMBER_SUSPENDED);   /* refused: the sweep is undone too */
    struct booking got;
    assert_int_equal(store_booking_get(f->st, noshow.id, &got), 0);
    assert_int_equal(got.status, BOOKING_CONFIRMED);

    b = booking_of("m-1", "desk-2", NOW, NOW + 30 * 60);
    assert_int_equal(booking_book(f->st, &f->pc, &b, NOW, &out), 0);
    assert_int_equal(out.refusal, BOOKING_OK);
    assert_int_equal(store_booking_get(f->st, noshow.id, &got), 0);
    assert_int_equal(got.status, BOOKING_RELEASED);
}

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    struct booking_outcome out;
    assert_int_equal(booking_cancel(f->st, f->b1, &out), 0);
    assert_int_equal(out.refusal, BOOKING_OK);
    assert_int_equal(out.booking_id, f->b1);
    assert_string_equal(out.booking.resource_id, "desk-1");
    assert_int_equal(out.booking.status, BOOKING_CONFIRMED);   /* as it was */
    struct booking got;
    assert_int_equal(store_booking_get(f->st, f->b1, &got), 0);
    assert_int_equal(got.status, BOOKING_CANCELLED);

    char *before = testutil_db_dump(f->path);
    assert_int_equal(booking_cancel(f->st, f->b1, &out), 0);
    assert_int_equal(out.refusal, BOOKING_NOT_CONFIRMED);
    assert_int_equal(out.booking.status, BOOKING_CANCELLED);
    char detail[64];
    snprintf(detail, sizeof detail, "b-%lld is already cancelled", (long long)f->b1);
    assert_string_equal(out.detail, detail);
    assert_int_equal(booking_cancel(f->st, 999, &out), 0);
    assert_int_equal(out.refusal, BOOKING_NOT_FOUND);
    assert_string_equal(out.detail, "no booking 'b-999'");
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* The slot is free again. */
    struct booking b = booking_of("m-2", "desk-1", T10, T10 + HOUR);
    assert_int_equal(booking_book(f->st, &f->pc, &b, NOW, &out), 0);
    assert_int_equal(out.refusal, BOOKING_OK);
}

static void test_names(void **state)
{
    static const char *const names[] = {"ok", "conflict", "unknown_member", "unknown_resource", "member_suspended",
                                        "invalid_time", "not_found", "not_confirmed", "invalid_request", "error"};
    for (int i = BOOKING_OK; i <= BOOKING_FAILED; i++)
        assert_string_equal(booking_refusal_name((enum booking_refusal)i), names[i]);
}

/* ---- MQTT requests ---- */

static char *request(struct fixture *f, const char *payload, bool *changed)
{
    json_t *reply = booking_request(f->st, &f->pc, payload, strlen(payload), NOW, changed);
    assert_non_null(reply);
    char *s = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    return s;
}

static void test_request_book_and_cancel(void **state)
{
    struct fixture *f = *state;
    bool changed = false;
    char *s = request(f, "{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\",\"from\":\"2026-11-23T09:00:00Z\","
                         "\"to\":\"2026-11-23T12:00:00Z\",\"after_hours\":false}", &changed);
    char expect[512];
    snprintf(expect, sizeof expect, "{\"result\":\"accepted\",\"booking\":\"b-%lld\",\"from\":\"2026-11-23T09:00:00Z\","
             "\"to\":\"2026-11-23T12:00:00Z\",\"resource\":\"desk-2\"}", (long long)f->b1 + 1);
    assert_string_equal(s, expect);
    assert_true(changed);
    free(s);
    struct booking got;
    assert_int_equal(store_booking_get(f->st, f->b1 + 1, &got), 0);
    assert_string_equal(got.member_id, "m-2");
    assert_false(got.after_hours);

    /* Refused on conflict, naming the booking in the way. */
    char *before = testutil_db_dump(f->path);
    changed = true;
    s = request(f, "{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-1\",\"from\":\"2026-11-23T10:00:00Z\","
                   "\"to\":\"2026-11-23T10:30:00.5Z\"}", &changed);
    snprintf(expect, sizeof expect, "{\"result\":\"refused\",\"reason\":\"conflict\",\"conflict\":\"b-%lld\","
             "\"detail\":\"desk-1 is already booked by b-%lld (2026-11-23T09:00:00Z to 2026-11-23T11:00:00Z)\"}",
             (long long)f->b1, (long long)f->b1);
    assert_string_equal(s, expect);
    assert_false(changed);
    free(s);
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* Cancel, then cancel again. */
    char payload[128];
    snprintf(payload, sizeof payload, "{\"op\":\"cancel\",\"booking\":\"b-%lld\"}", (long long)f->b1);
    s = request(f, payload, &changed);
    snprintf(expect, sizeof expect, "{\"result\":\"accepted\",\"booking\":\"b-%lld\",\"from\":\"2026-11-23T09:00:00Z\","
             "\"to\":\"2026-11-23T11:00:00Z\",\"resource\":\"desk-1\"}", (long long)f->b1);
    assert_string_equal(s, expect);
    assert_true(changed);
    free(s);
    s = request(f, payload, &changed);
    snprintf(expect, sizeof expect, "{\"result\":\"refused\",\"reason\":\"not_confirmed\",\"conflict\":null,"
             "\"detail\":\"b-%lld is already cancelled\"}", (long long)f->b1);
    assert_string_equal(s, expect);
    assert_false(changed);
    free(s);
    s = request(f, "{\"op\":\"cancel\",\"booking\":\"b-4242\"}", &changed);
    assert_string_equal(s, "{\"result\":\"refused\",\"reason\":\"not_found\",\"conflict\":null,"
                           "\"detail\":\"no booking 'b-4242'\"}");
    free(s);
    /* NULL changed is allowed. */
    json_decref(booking_request(f->st, &f->pc, "{}", 2, NOW, NULL));
}

/* Refused with this reason and detail; nothing changed. "...*" compares a prefix. */
static const struct {
    const char *payload;
    const char *reason;
    const char *detail;
} refused[] = {
    {"", "invalid_request", "empty request"},
    {"{\"op\":\"book\"", "invalid_request", "malformed JSON: *"},
    {"{\"op\":\"cancel\",\"booking\":\"b-1\",\"booking\":\"b-2\"}", "invalid_request", "malformed JSON: duplicate*"},
    {"[\"book\"]", "invalid_request", "not a JSON object"},
    {"{}", "invalid_request", "op: missing"},
    {"{\"op\":\"reserve\"}", "invalid_request", "op: must be \"book\" or \"cancel\""},
    {"{\"op\":1}", "invalid_request", "op: must be \"book\" or \"cancel\""},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\",\"from\":\"2026-11-23T09:00:00Z\","
     "\"to\":\"2026-11-23T12:00:00Z\",\"seats\":2}", "invalid_request", "unknown field 'seats'"},
    {"{\"op\":\"book\",\"resource\":\"desk-2\",\"from\":\"2026-11-23T09:00:00Z\",\"to\":\"2026-11-23T12:00:00Z\"}",
     "invalid_request", "member: missing"},
    {"{\"op\":\"book\",\"member\":42,\"resource\":\"desk-2\",\"from\":\"2026-11-23T09:00:00Z\","
     "\"to\":\"2026-11-23T12:00:00Z\"}", "invalid_request", "member: must be an id (1 to 63 of A-Z a-z 0-9 . _ -)"},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk 2\",\"from\":\"2026-11-23T09:00:00Z\","
     "\"to\":\"2026-11-23T12:00:00Z\"}", "invalid_request", "resource: must be an id (1 to 63 of A-Z a-z 0-9 . _ -)"},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\",\"to\":\"2026-11-23T12:00:00Z\"}",
     "invalid_request", "from: missing"},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\",\"from\":1795424400,\"to\":\"2026-11-23T12:00:00Z\"}",
     "invalid_request", "from: must be an ISO 8601 UTC time (\"2026-11-23T08:00:00Z\")"},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\",\"from\":\"2026-11-23T09:00:00Z\","
     "\"to\":\"2026-11-23 12:00\"}", "invalid_request", "to: must be an ISO 8601 UTC time (\"2026-11-23T08:00:00Z\")"},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\",\"from\":\"2026-11-23T09:00:00Z\","
     "\"to\":\"2026-11-23T12:00:00+01:00\"}", "invalid_request",
     "to: must be an ISO 8601 UTC time (\"2026-11-23T08:00:00Z\")"},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\",\"from\":\"2026-11-23T09:00:00Z\","
     "\"to\":\"2026-11-23T12:00:00Z\",\"after_hours\":\"yes\"}", "invalid_request", "after_hours: must be true or false"},
    {"{\"op\":\"cancel\"}", "invalid_request", "booking: missing"},
    {"{\"op\":\"cancel\",\"booking\":1}", "invalid_request", "booking: must be a booking id (\"b-917\")"},
    {"{\"op\":\"cancel\",\"booking\":\"917\"}", "invalid_request", "booking: must be a booking id (\"b-917\")"},
    {"{\"op\":\"cancel\",\"booking\":\"b-\"}", "invalid_request", "booking: must be a booking id (\"b-917\")"},
    {"{\"op\":\"cancel\",\"booking\":\"b-0\"}", "invalid_request", "booking: must be a booking id (\"b-917\")"},
    {"{\"op\":\"cancel\",\"booking\":\"b-99999999999999999999\"}", "invalid_request",
     "booking: must be a booking id (\"b-917\")"},
    {"{\"op\":\"cancel\",\"booking\":\"b-1\",\"reason\":\"sick\"}", "invalid_request", "unknown field 'reason'"},
    {"{\"op\":\"book\",\"member\":\"m-9\",\"resource\":\"desk-2\",\"from\":\"2026-11-23T09:00:00Z\","
     "\"to\":\"2026-11-23T12:00:00Z\"}", "unknown_member", "no member 'm-9'"},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-9\",\"from\":\"2026-11-23T09:00:00Z\","
     "\"to\":\"2026-11-23T12:00:00Z\"}", "unknown_resource", "no resource 'desk-9'"},
    {"{\"op\":\"book\",\"member\":\"m-sus\",\"resource\":\"desk-2\",\"from\":\"2026-11-23T09:00:00Z\","
     "\"to\":\"2026-11-23T12:00:00Z\"}", "member_suspended", "member 'm-sus' is suspended"},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\",\"from\":\"2026-11-23T12:00:00Z\","
     "\"to\":\"2026-11-23T09:00:00Z\"}", "invalid_time", "the booking must end after it starts"},
    {"{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\",\"from\":\"2026-11-22T09:00:00Z\","
     "\"to\":\"2026-11-22T12:00:00Z\"}", "invalid_time", "the booking has already ended"},
};

static void test_request_refused(void **state)
{
    struct fixture *f = *state;
    char *before = testutil_db_dump(f->path);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        bool changed = true;
        json_t *reply = booking_request(f->st, &f->pc, refused[i].payload, strlen(refused[i].payload), NOW, &changed);
        assert_non_null(reply);
        const char *result = json_string_value(json_object_get(reply, "result"));
        const char *reason = json_string_value(json_object_get(reply, "reason"));
        const char *detail = json_string_value(json_object_get(reply, "detail"));
        if (!result || strcmp(result, "refused") || !reason || strcmp(reason, refused[i].reason))
            fail_msg("%s: %s %s (%s)", refused[i].payload, result, reason, detail);
        size_t n = strlen(refused[i].detail);
        bool ok = refused[i].detail[n - 1] == '*' ? !strncmp(detail, refused[i].detail, n - 1)
                                                   : !strcmp(detail, refused[i].detail);
        if (!ok)
            fail_msg("%s:\n got  %s\n want %s", refused[i].payload, detail, refused[i].detail);
        assert_true(json_is_null(json_object_get(reply, "conflict")));
        assert_int_equal(json_object_size(reply), 4);
        assert_false(changed);
        json_decref(reply);
    }
    char *after = testutil_db_dump(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_request_oversized(void **state)
{
    struct fixture *f = *state;
    char *big = malloc(BOOKING_REQUEST_MAX_BYTES + 2);
    assert_non_null(big);
    int n = snprintf(big, BOOKING_REQUEST_MAX_BYTES + 2, "{\"op\":\"book\",\"member\":\"m-2\",\"resource\":\"desk-2\","
                     "\"from\":\"2026-11-23T09:00:00Z\",\"to\":\"2026-11-23T12:00:00Z\"}");
    memset(big + n, ' ', BOOKING_REQUEST_MAX_BYTES + 1 - (size_t)n);
    big[BOOKING_REQUEST_MAX_BYTES + 1] = '\0';
    bool changed = true;
    char *s = request(f, big, &changed);
    assert_string_equal(s, "{\"result\":\"refused\",\"reason\":\"invalid_request\",\"conflict\":null,"
                           "\"detail\":\"request of 4097 bytes, over the 4096-byte limit\"}");
    assert_false(changed);
    free(s);
    /* At the limit it is read. */
    json_t *reply = booking_request(f->st, &f->pc, big, BOOKING_REQUEST_MAX_BYTES, NOW, &changed);
    assert_string_equal(json_string_value(json_object_get(reply, "result")), "accepted");
    assert_true(changed);
    json_decref(reply);
    free(big);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_book_accepted),
        T(test_book_conflicts),
        T(test_book_refusals),
        T(test_book_after_no_show),
        T(test_cancel),
        cmocka_unit_test(test_names),
        T(test_request_book_and_cancel),
        T(test_request_refused),
        T(test_request_oversized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
