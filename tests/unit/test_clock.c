/* Timezone conversions, parsers and formatters; the test clock; badge UID normalisation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "clock.h"
#include "uid.h"

static void test_tz_set_rejects_unknown_zones(void **state)
{
    assert_int_equal(tz_set("Europe/Nowhere"), -ENOENT);
    assert_int_equal(tz_set("../etc/passwd"), -EINVAL);
    assert_int_equal(tz_set("/etc/localtime"), -EINVAL);
    assert_int_equal(tz_set("Europe/Paris"), 0);
    assert_string_equal(tz_name(), "Europe/Paris");
}

static void test_local_to_utc_across_dst(void **state)
{
    int64_t t;
    assert_int_equal(tz_set("Europe/Paris"), 0);
    /* Winter: UTC+1. */
    assert_int_equal(tz_local_to_utc(20261123, 8 * 60, &t), 0);
    assert_int_equal(t, 1795417200);           /* 2026-11-23T07:00:00Z */
    /* Summer: UTC+2. */
    assert_int_equal(tz_local_to_utc(20270329, 8 * 60, &t), 0);
    assert_int_equal(t, 1806300000);           /* 2027-03-29T06:00:00Z */
    /* 02:30 on 2027-03-28 never happens in Paris. */
    assert_int_equal(tz_local_to_utc(20270328, 2 * 60 + 30, &t), -ERANGE);
    assert_int_equal(tz_parse_local_datetime("2027-03-28 02:30", &t), -ERANGE);
    /* 02:30 on 2026-10-25 happens twice: the earlier one (CEST, 00:30Z) is taken. */
    assert_int_equal(tz_local_to_utc(20261025, 2 * 60 + 30, &t), 0);
    assert_int_equal(t, 1792888200);           /* 2026-10-25T00:30:00Z */
    /* A three-hour local span over the spring gap lasts two hours. */
    int64_t a, b;
    assert_int_equal(tz_parse_local_datetime("2027-03-28 01:00", &a), 0);
    assert_int_equal(tz_parse_local_datetime("2027-03-28 04:00", &b), 0);
    assert_int_equal(b - a, 2 * 3600);
    /* 24:00 is the next midnight. */
    assert_int_equal(tz_local_to_utc(20261123, 1440, &a), 0);
    assert_int_equal(tz_local_to_utc(20261124, 0, &b), 0);
    assert_int_equal(a, b);
}

static void test_local_fields(void **state)
{
    assert_int_equal(tz_set("Europe/Paris"), 0);
    int64_t t = 1795417200;                    /* Monday 2026-11-23 08:00 in Paris */
    assert_int_equal(tz_local_ymd(t), 20261123);
    assert_int_equal(tz_local_wday(t), 1);
    assert_int_equal(tz_local_minute_of_day(t), 480);
    assert_int_equal(tz_local_ymd(1795388400 /* 2026-11-22T23:00Z */), 20261123);
    assert_int_equal(tz_ymd_wday(20261122), 0);
    assert_int_equal(tz_ymd_add_days(20261231, 1), 20270101);
    assert_int_equal(tz_ymd_add_days(20280228, 1), 20280229);
    assert_int_equal(tz_ymd_add_days(20270301, -1), 20270228);
}

static void test_parsers(void **state)
{
    int ymd, minute;
    int64_t t;
    assert_int_equal(tz_set("Europe/Paris"), 0);
    assert_int_equal(tz_parse_date("2026-11-23", &ymd), 0);
    assert_int_equal(ymd, 20261123);
    assert_int_equal(tz_parse_date("2026-02-29", &ymd), -EINVAL);
    assert_int_equal(tz_parse_date("2028-02-29", &ymd), 0);
    assert_int_equal(tz_parse_date("2026-13-01", &ymd), -EINVAL);
    assert_int_equal(tz_parse_date("2026-11-23x", &ymd), -EINVAL);
    assert_int_equal(tz_parse_date("26-11-23", &ymd), -EINVAL);
    assert_int_equal(tz_parse_date("", &ymd), -EINVAL);
    assert_int_equal(tz_parse_hhmm("08:00", &minute), 0);
    assert_int_equal(minute, 480);
    assert_int_equal(tz_parse_hhmm("24:00", &minute), 0);
    assert_int_equal(minute, 1440);
    assert_int_equal(tz_parse_hhmm("24:01", &minute), -EINVAL);
    assert_int_equal(tz_parse_hhmm("8:00", &minute), -EINVAL);
    assert_int_equal(tz_parse_hhmm("12:60", &minute), -EINVAL);
    assert_int_equal(tz_parse_local_datetime("2026-11-23 08:00", &t), 0);
    assert_int_equal(t, 1795417200);
    assert_int_equal(tz_parse_local_datetime("2026-11-23T08:00", &t), 0);
    assert_int_equal(tz_parse_local_datetime("2026-11-23 24:00", &t), -EINVAL);
    assert_int_equal(tz_parse_local_datetime("2026-11-23  08:00", &t), -EINVAL);
    assert_int_equal(tz_parse_local_datetime("2026-11-23", &t), -EINVAL);
    assert_int_equal(tz_parse_iso_utc("2026-11-23T08:02:11Z", &t), 0);
    assert_int_equal(t, 1795420931);
    assert_int_equal(tz_parse_iso_utc("2026-11-23T08:02Z", &t), 0);
    assert_int_equal(tz_parse_iso_utc("2026-11-23T08:02:11.250Z", &t), 0);
    assert_int_equal(t, 1795420931);
    assert_int_equal(tz_parse_iso_utc("2026-11-23T08:02:11", &t), -EINVAL);
    assert_int_equal(tz_parse_iso_utc("2026-11-23T08:02:11+01:00", &t), -EINVAL);
}

static void test_formatters(void **state)
{
    char buf[TZ_BUFSZ];
    assert_int_equal(tz_set("Europe/Paris"), 0);
    assert_string_equal(tz_format_local(1795417200, buf), "2026-11-23 08:00");
    assert_string_equal(tz_format_iso_utc(1795417200, buf), "2026-11-23T07:00:00Z");
    assert_string_equal(tz_format_ymd(20270101, buf), "2027-01-01");
}

static void test_uid_normalize(void **state)
{
    char out[UID_STR_MAX];
    assert_int_equal(uid_normalize("04:a1:b2:c3", out), 0);
    assert_string_equal(out, "04A1B2C3");
    assert_int_equal(uid_normalize("04A1B2C3", out), 0);
    assert_string_equal(out, "04A1B2C3");
    assert_int_equal(uid_normalize("04-a1-b2-c3-d4-e5-f6", out), 0);
    assert_string_equal(out, "04A1B2C3D4E5F6");
    assert_int_equal(uid_normalize("04 11 22 33 44 55 66 77 88 99", out), 0);
    assert_string_equal(out, "04112233445566778899");
    assert_int_equal(uid_normalize("04A1B2", out), -EINVAL);          /* 3 bytes */
    assert_int_equal(uid_normalize("04A1B2C3D4", out), -EINVAL);      /* 5 bytes */
    assert_int_equal(uid_normalize("04A1B2C", out), -EINVAL);         /* odd */
    assert_int_equal(uid_normalize("04:A1:Z2:C3", out), -EINVAL);
    assert_int_equal(uid_normalize("0411223344556677889900", out), -EINVAL);  /* 11 bytes */
    assert_int_equal(uid_normalize("", out), -EINVAL);
    const uint8_t raw[7] = {0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6};
    assert_int_equal(uid_from_bytes(raw, 7, out), 0);
    assert_string_equal(out, "04A1B2C3D4E5F6");
    assert_int_equal(uid_from_bytes(raw, 5, out), -EINVAL);
}

/* The test clock (TELECENTRED_TEST_CLOCK): parsing, the compressed-time arithmetic, scaled timers. */
static void test_test_clock(void **state)
{
    struct test_clock tc;
    assert_int_equal(clock_test_parse("1795417200:14400", 5000, &tc), 0);
    assert_int_equal(tc.start, 1795417200);
    assert_int_equal(tc.speed, 14400);
    assert_int_equal(tc.anchor_ms, 5000);           /* no anchor: the clock starts now */
    assert_int_equal(clock_test_at(&tc, 5000), 1795417200);
    assert_int_equal(clock_test_at(&tc, 5001), 1795417200 + 14);      /* 14.4 s: whole seconds */
    assert_int_equal(clock_test_at(&tc, 11000), 1795417200 + 86400);  /* 6 real s: one day */
    assert_int_equal(clock_test_at(&tc, 4999), 1795417200 - 15);      /* before the anchor: floor */
    /* An explicit anchor, and the ISO form. */
    assert_int_equal(clock_test_parse("2026-11-23T07:00:00Z:2:123456", 0, &tc), 0);
    assert_int_equal(tc.start, 1795417200);
    assert_int_equal(tc.speed, 2);
    assert_int_equal(tc.anchor_ms, 123456);
    assert_int_equal(clock_test_at(&tc, 123456 + 1500), 1795417200 + 3);
    assert_int_equal(clock_test_at(&tc, 123456 + 499), 1795417200);
    assert_int_equal(clock_test_at(&tc, 123456 - 1), 1795417199);
    assert_int_equal(clock_test_parse("2026-11-23T07:00Z:1", 9, &tc), 0);
    assert_int_equal(tc.start, 1795417200);
    assert_int_equal(tc.speed, 1);
    /* Speed 1 follows real time; the top speed over a month of uptime does not overflow. */
    assert_int_equal(clock_test_parse("0:1:0", 0, &tc), 0);
    assert_int_equal(clock_test_at(&tc, 86400000), 86400);
    assert_int_equal(clock_test_parse("0:1000000:0", 0, &tc), 0);
    assert_int_equal(clock_test_at(&tc, (uint64_t)30 * 86400000), (int64_t)30 * 86400 * 1000000);
    /* Malformed. */
    const char *bad[] = {"", ":", "1795417200", "1795417200:", "1795417200:0", "1795417200:-5",
                         "1795417200:1000001", "1795417200:1.5", "1795417200:10:", "1795417200:10:x",
                         "1795417200:10:5:6", "-1:10", "17954x7200:10", "2026-11-23T07:00:00:10",
                         "2026-13-23T07:00:00Z:10", "2026-11-23T07:00:00Z10", " 1795417200:10",
                         "1795417200 :10", "253402300800:10", "99999999999999999999999:10",
                         "1795417200:99999999999999999999", "abc:10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tc = (struct test_clock){.start = 42};
        assert_int_equal(clock_test_parse(bad[i], 0, &tc), -EINVAL);
        assert_int_equal(tc.start, 42);             /* untouched */
    }
    assert_int_equal(clock_test_parse(NULL, 0, &tc), -EINVAL);
    /* Scaled timers: a wall-clock period in real ms, with a floor. */
    assert_int_equal(clock_test_parse("0:14400:0", 0, &tc), 0);
    assert_int_equal(clock_test_interval_ms(&tc, 24u * 3600u * 1000u), 6000);
    assert_int_equal(clock_test_interval_ms(&tc, 60000), CLOCK_TEST_MIN_TIMER_MS);
    assert_int_equal(clock_test_interval_ms(NULL, 60000), 60000);
    /* Installed: clock_now() follows it, for a clock without its own `now` too; removed: real time. */
    const int64_t y2k = 946684800;                  /* far from the machine's real time */
    assert_int_equal(clock_test_parse("946684800:1", 0, &tc), 0);
    tc.anchor_ms = clock_mono_ms();
    clock_test_install(&tc);
    assert_non_null(clock_test_installed());
    struct clock plain = {0};
    assert_in_range(clock_now(NULL), y2k, y2k + 60);
    assert_in_range(clock_now(&plain), y2k, y2k + 60);
    assert_int_equal(clock_timer_ms(60000), 60000);
    clock_test_install(NULL);
    assert_null(clock_test_installed());
    assert_true(clock_now(NULL) > y2k + 86400);
}

/* TELECENTRED_TEST_CLOCK is taken only with TELECENTRED_TEST_HOOKS=1, and refused when malformed. */
static void test_test_clock_env(void **state)
{
    unsetenv("TELECENTRED_TEST_HOOKS");
    setenv("TELECENTRED_TEST_CLOCK", "1795417200:10", 1);
    assert_int_equal(clock_test_from_env(), 0);
    assert_null(clock_test_installed());
    setenv("TELECENTRED_TEST_HOOKS", "yes", 1);
    assert_int_equal(clock_test_from_env(), 0);
    setenv("TELECENTRED_TEST_HOOKS", "1", 1);
    setenv("TELECENTRED_TEST_CLOCK", "1795417200:ten", 1);
    assert_int_equal(clock_test_from_env(), -EINVAL);
    assert_null(clock_test_installed());
    unsetenv("TELECENTRED_TEST_CLOCK");
    assert_int_equal(clock_test_from_env(), 0);
    setenv("TELECENTRED_TEST_CLOCK", "946684800:10", 1);
    assert_int_equal(clock_test_from_env(), 1);
    assert_non_null(clock_test_installed());
    assert_int_equal(clock_test_installed()->speed, 10);
    assert_in_range(clock_now(NULL), 946684800, 946684800 + 600);
    clock_test_install(NULL);
    unsetenv("TELECENTRED_TEST_CLOCK");
    unsetenv("TELECENTRED_TEST_HOOKS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tz_set_rejects_unknown_zones),
        cmocka_unit_test(test_local_to_utc_across_dst),
        cmocka_unit_test(test_local_fields),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_formatters),
        cmocka_unit_test(test_uid_normalize),
        cmocka_unit_test(test_test_clock),
        cmocka_unit_test(test_test_clock_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
