/* Remote unlock commands: only a live, fresh, well-formed {"at","by"} opens a door. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unlock.h"

#define NOW 1795421100   /* 2026-11-23T08:05:00Z */
#define MAX_AGE 10

static int parse(const char *payload, bool retained, int64_t now, char by[ID_MAX], char *why, size_t why_len)
{
    return unlock_parse(payload, strlen(payload), retained, now, MAX_AGE, by, why, why_len);
}

static void expect(const char *payload, bool retained, int64_t now, int r, const char *why_expected)
{
    char by[ID_MAX] = "x", why[200] = "x";
    int got = parse(payload, retained, now, by, why, sizeof why);
    if (got != r)
        fail_msg("%s: %d (%s), expected %d", payload, got, why, r);
    /* jansson's own words may change between versions: "...*" compares the prefix only. */
    size_t n = strlen(why_expected);
    if (n && why_expected[n - 1] == '*')
        assert_memory_equal(why, why_expected, n - 1);
    else
        assert_string_equal(why, why_expected);
    if (r < 0)
        assert_string_equal(by, "");   /* nothing half-filled on refusal */
}

static void test_accepted(void **state)
{
    char by[ID_MAX], why[200] = "x";
    assert_int_equal(parse("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"manager-07\"}", false, NOW, by, why,
                           sizeof why), 0);
    assert_string_equal(by, "manager-07");
    assert_string_equal(why, "");
    /* Either order, whitespace, fractions of a second, the widest accepted id. */
    assert_int_equal(parse(" { \"by\" : \"ops@site.example:a_b-c.d\" , \"at\" : \"2026-11-23T08:04:51.250Z\" } ",
                           false, NOW, by, NULL, 0), 0);
    assert_string_equal(by, "ops@site.example:a_b-c.d");
    char id63[80];
    memset(id63, 'a', 63);
    id63[63] = '\0';
    char payload[200];
    snprintf(payload, sizeof payload, "{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"%s\"}", id63);
    assert_int_equal(parse(payload, false, NOW, by, NULL, 0), 0);
    assert_string_equal(by, id63);
    /* Not NUL-terminated: only len bytes are read. */
    const char *buf = "{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"m\"}GARBAGE";
    assert_int_equal(unlock_parse(buf, strlen(buf) - 7, false, NOW, MAX_AGE, by, NULL, 0), 0);
    assert_string_equal(by, "m");
}

static void test_retained(void **state)
{
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"manager-07\"}", true, NOW, -EPERM,
           "retained command (only live commands are acted on)");
}

static void test_stale_and_future(void **state)
{
    const char *p = "{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"manager-07\"}";
    char by[ID_MAX];
    assert_int_equal(parse(p, false, NOW + MAX_AGE, by, NULL, 0), 0);       /* at the limit */
    assert_int_equal(parse(p, false, NOW - MAX_AGE, by, NULL, 0), 0);
    expect(p, false, NOW + MAX_AGE + 1, -ESTALE, "command is 11 s old (limit 10 s)");
    expect(p, false, NOW + 3600, -ESTALE, "command is 3600 s old (limit 10 s)");
    expect(p, false, NOW - MAX_AGE - 1, -ESTALE, "command is 11 s in the future (limit 10 s)");
    assert_int_equal(unlock_parse(p, strlen(p), false, NOW + 1, 0, by, NULL, 0), -ESTALE);
}

static void test_malformed(void **state)
{
    expect("", false, NOW, -EINVAL, "empty payload");
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"m\"", false, NOW, -EINVAL,
           "malformed JSON: *");
    expect("unlock", false, NOW, -EINVAL, "malformed JSON: *");
    expect("[\"2026-11-23T08:05:00Z\",\"m\"]", false, NOW, -EINVAL, "not a JSON object");
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"m\",\"by\":\"n\"}", false, NOW, -EINVAL,
           "malformed JSON: duplicate*");
    expect("{\"by\":\"m\"}", false, NOW, -EINVAL, "missing 'at'");
    expect("{\"at\":\"2026-11-23T08:05:00Z\"}", false, NOW, -EINVAL, "missing 'by'");
    expect("{\"at\":\"2026-11-23 08:05\",\"by\":\"m\"}", false, NOW, -EINVAL,
           "'at' is not an ISO 8601 UTC time (\"2026-11-23T08:05:00Z\")");
    expect("{\"at\":\"2026-11-23T08:05:00+01:00\",\"by\":\"m\"}", false, NOW, -EINVAL,
           "'at' is not an ISO 8601 UTC time (\"2026-11-23T08:05:00Z\")");
}

static void test_wrong_types(void **state)
{
    expect("{\"at\":1795421100,\"by\":\"m\"}", false, NOW, -EINVAL, "'at' must be a string");
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":7}", false, NOW, -EINVAL, "'by' must be a string");
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":null}", false, NOW, -EINVAL, "'by' must be a string");
    expect("{\"at\":[],\"by\":\"m\"}", false, NOW, -EINVAL, "'at' must be a string");
}

static void test_unknown_fields(void **state)
{
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"m\",\"door\":\"back\"}", false, NOW, -EINVAL,
           "unknown field 'door'");
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"m\",\"duration_s\":600}", false, NOW, -EINVAL,
           "unknown field 'duration_s'");
    /* The reason goes to the log: a key quoted in it cannot bring a line break (a forged log line) or
     * anything else outside printable ASCII (found by fuzz/fuzz_unlock.c). */
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"m\",\"x\\ntelecentred: notice: ok\":1}", false, NOW, -EINVAL,
           "unknown field 'x?telecentred: notice: ok'");
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"m\",\"caf\u00e9\":1}", false, NOW, -EINVAL,
           "unknown field 'caf?" "?'");   /* split: "??'" is a trigraph */
}

static void test_oversized(void **state)
{
    /* Valid JSON, fresh, but too big: refused unread. */
    char *big = malloc(UNLOCK_MAX_BYTES + 64);
    assert_non_null(big);
    int n = snprintf(big, UNLOCK_MAX_BYTES + 64, "{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"m\"}");
    memset(big + n, ' ', UNLOCK_MAX_BYTES + 1 - (size_t)n);
    big[UNLOCK_MAX_BYTES + 1] = '\0';
    char why[200];
    char by[ID_MAX];
    assert_int_equal(unlock_parse(big, UNLOCK_MAX_BYTES + 1, false, NOW, MAX_AGE, by, why, sizeof why), -EINVAL);
    assert_string_equal(why, "payload of 1025 bytes, over the 1024-byte limit");
    assert_int_equal(unlock_parse(big, UNLOCK_MAX_BYTES, false, NOW, MAX_AGE, by, why, sizeof why), 0);
    free(big);
}

static void test_bad_by(void **state)
{
    const char *why = "'by' must be 1-63 characters of A-Z a-z 0-9 . _ @ : -";
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"\"}", false, NOW, -EINVAL, why);
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"a b\"}", false, NOW, -EINVAL, why);
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"a\\nWARNING fake\"}", false, NOW, -EINVAL, why);
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"caf\\u00e9\"}", false, NOW, -EINVAL, why);
    expect("{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"a\\u0000b\"}", false, NOW, -EINVAL,
           "malformed JSON: *");
    char payload[200], id64[80];
    memset(id64, 'a', 64);
    id64[64] = '\0';
    snprintf(payload, sizeof payload, "{\"at\":\"2026-11-23T08:05:00Z\",\"by\":\"%s\"}", id64);
    expect(payload, false, NOW, -EINVAL, why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_retained),
        cmocka_unit_test(test_stale_and_future),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_bad_by),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
