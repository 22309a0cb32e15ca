/* Timezone conversions, parsers and formatters; badge UID normalisation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tz_set_rejects_unknown_zones),
        cmocka_unit_test(test_local_to_utc_across_dst),
        cmocka_unit_test(test_local_fields),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_formatters),
        cmocka_unit_test(test_uid_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
