/* The published JSON payloads: exact bytes (consumers parse them; field names are the contract), null
 * for "none", and never a badge UID or a member's name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define T0 1795420931   /* 2026-11-23T08:02:11Z */

static void test_time(void **state)
{
    char buf[21];
    assert_string_equal(event_time(T0, buf), "2026-11-23T08:02:11Z");
    assert_string_equal(event_time(0, buf), "1970-01-01T00:00:00Z");
}

static void test_access_booking(void **state)
{
    struct access_record rec = {.seq = 7, .at = T0, .direction = DIRECTION_IN, .result = ACCESS_GRANTED,
                                .reason = REASON_BOOKING, .booking_id = 917};
    snprintf(rec.door, sizeof rec.door, "entrance");
    snprintf(rec.reader, sizeof rec.reader, "entrance");
    snprintf(rec.member_id, sizeof rec.member_id, "m-0042");
    snprintf(rec.badge_uid, sizeof rec.badge_uid, "04A1B2C3D4E5F6");
    char *s = event_access_json(&rec);
    assert_non_null(s);
    assert_string_equal(s, "{\"at\":\"2026-11-23T08:02:11Z\",\"door\":\"entrance\",\"reader\":\"entrance\","
                           "\"direction\":\"in\",\"result\":\"granted\",\"reason\":\"booking\","
                           "\"member\":\"m-0042\",\"booking\":\"b-917\",\"by\":null}");
    /* The access-log seq is not the event's: the outbox gives its own. */
    assert_null(strstr(s, "seq"));
    assert_null(strstr(s, "04A1B2C3D4E5F6"));
    free(s);
}

static void test_access_denied_unknown_badge(void **state)
{
    struct access_record rec = {.at = T0, .direction = DIRECTION_OUT, .result = ACCESS_DENIED,
                                .reason = REASON_UNKNOWN_BADGE};
    snprintf(rec.door, sizeof rec.door, "entrance");
    snprintf(rec.reader, sizeof rec.reader, "exit");
    snprintf(rec.badge_uid, sizeof rec.badge_uid, "DEADBEEF");
    char *s = event_access_json(&rec);
    assert_non_null(s);
    assert_string_equal(s, "{\"at\":\"2026-11-23T08:02:11Z\",\"door\":\"entrance\",\"reader\":\"exit\","
                           "\"direction\":\"out\",\"result\":\"denied\",\"reason\":\"unknown_badge\","
                           "\"member\":null,\"booking\":null,\"by\":null}");
    assert_null(strstr(s, "DEADBEEF"));
    free(s);
}

static void test_access_remote(void **state)
{
    struct access_record rec = {.at = T0, .direction = DIRECTION_IN, .result = ACCESS_GRANTED,
                                .reason = REASON_REMOTE};
    snprintf(rec.door, sizeof rec.door, "entrance");
    snprintf(rec.requested_by, sizeof rec.requested_by, "manager-07");
    char *s = event_access_json(&rec);
    assert_non_null(s);
    assert_string_equal(s, "{\"at\":\"2026-11-23T08:02:11Z\",\"door\":\"entrance\",\"reader\":null,"
                           "\"direction\":\"in\",\"result\":\"granted\",\"reason\":\"remote\","
                           "\"member\":null,\"booking\":null,\"by\":\"manager-07\"}");
    free(s);
}

static void test_access_escapes(void **state)
{
    /* Ids are checked where they enter, but the JSON must stay valid whatever they hold. */
    struct access_record rec = {.at = T0, .result = ACCESS_GRANTED, .reason = REASON_KEYHOLDER};
    snprintf(rec.door, sizeof rec.door, "a\"b\\c");
    char *s = event_access_json(&rec);
    assert_non_null(s);
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "door")), "a\"b\\c");
    json_decref(j);
    free(s);
    errno = 0;
    assert_null(event_access_json(NULL));
    assert_int_equal(errno, EINVAL);
}

static void test_alarm(void **state)
{
    char *s = event_alarm_json(T0, "forced", true, "entrance", NULL, "");
    assert_non_null(s);
    assert_string_equal(s, "{\"at\":\"2026-11-23T08:02:11Z\",\"alarm\":\"forced\",\"active\":true,"
                           "\"door\":\"entrance\",\"reader\":null,\"detail\":null}");
    free(s);
    s = event_alarm_json(T0, "reader_offline", false, "", "front", "no answer for 3 s");
    assert_non_null(s);
    assert_string_equal(s, "{\"at\":\"2026-11-23T08:02:11Z\",\"alarm\":\"reader_offline\",\"active\":false,"
                           "\"door\":null,\"reader\":\"front\",\"detail\":\"no answer for 3 s\"}");
    free(s);
    errno = 0;
    assert_null(event_alarm_json(T0, NULL, true, NULL, NULL, NULL));
    assert_int_equal(errno, EINVAL);
}

static void test_with_seq(void **state)
{
    char *s = event_with_seq(118, "{\"at\":\"x\",\"door\":null}");
    assert_non_null(s);
    assert_string_equal(s, "{\"seq\":118,\"at\":\"x\",\"door\":null}");
    free(s);
    s = event_with_seq(1, "{}");
    assert_non_null(s);
    assert_string_equal(s, "{\"seq\":1}");
    free(s);
    s = event_with_seq(9007199254740993LL, "{ }");
    assert_non_null(s);
    assert_string_equal(s, "{\"seq\":9007199254740993}");
    free(s);
    errno = 0;
    assert_null(event_with_seq(1, "[1]"));
    assert_int_equal(errno, EINVAL);
    assert_null(event_with_seq(1, NULL));

    /* The spliced text is valid JSON with seq first. */
    struct access_record rec = {.at = T0, .result = ACCESS_GRANTED, .reason = REASON_WALK_IN, .booking_id = 3};
    snprintf(rec.member_id, sizeof rec.member_id, "m-1");
    char *body = event_access_json(&rec);
    s = event_with_seq(42, body);
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "booking")), "b-3");
    assert_string_equal(json_object_iter_key(json_object_iter(j)), "seq");
    json_decref(j);
    free(body);
    free(s);
}

static void test_door_state(void **state)
{
    char *s = event_door_state_json(DOOR_HELD_OPEN, T0);
    assert_non_null(s);
    assert_string_equal(s, "{\"state\":\"held_open\",\"since\":\"2026-11-23T08:02:11Z\"}");
    free(s);
    s = event_door_state_json(DOOR_LOCKED, T0 + 1);
    assert_string_equal(s, "{\"state\":\"locked\",\"since\":\"2026-11-23T08:02:12Z\"}");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_access_booking),
        cmocka_unit_test(test_access_denied_unknown_badge),
        cmocka_unit_test(test_access_remote),
        cmocka_unit_test(test_access_escapes),
        cmocka_unit_test(test_alarm),
        cmocka_unit_test(test_with_seq),
        cmocka_unit_test(test_door_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
