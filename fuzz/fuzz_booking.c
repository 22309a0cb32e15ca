/* Booking requests (P/S/booking/request; docs/mqtt.md "Booking requests"): the payload goes through
 * booking_request() against a real SQLite file (the same rules as telecentrectl book / booking cancel), and
 * the reply through the dump the link publishes, as src/link.c's handle_booking does.
 *
 * Besides crashes, leaks and undefined behaviour, it checks the contract: there is always a reply, "accepted"
 * or "refused" with a reason; a refused request changes nothing (a fingerprint of every table, before and
 * after) and says so (changed is false); an accepted booking is in the database, confirmed, with the reply's
 * times; the detail is printable ASCII. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "clock.h"
#include "fuzz.h"

static struct policy_config policy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_set_timezone();
    policy_config_defaults(&policy);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store *st = fuzz_site_open();
    uint64_t before = fuzz_site_fingerprint(st);

    bool changed = true;
    json_t *reply = booking_request(st, &policy, (const char *)data, size, FUZZ_NOW, &changed);
    FUZZ_CHECK(reply != NULL);
    char *text = json_dumps(reply, JSON_PRESERVE_ORDER | JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);

    const char *result = json_string_value(json_object_get(reply, "result"));
    FUZZ_CHECK(result != NULL);
    if (!strcmp(result, "accepted")) {
        FUZZ_CHECK(changed);
        const char *ref = json_string_value(json_object_get(reply, "booking"));
        FUZZ_CHECK(ref && !strncmp(ref, "b-", 2));
        struct booking b;
        FUZZ_CHECK(store_booking_get(st, strtoll(ref + 2, NULL, 10), &b) == 0);
        const char *from = json_string_value(json_object_get(reply, "from"));
        const char *to = json_string_value(json_object_get(reply, "to"));
        int64_t t_from, t_to;
        FUZZ_CHECK(from && tz_parse_iso_utc(from, &t_from) == 0 && t_from == b.start);
        FUZZ_CHECK(to && tz_parse_iso_utc(to, &t_to) == 0 && t_to == b.end);
        FUZZ_CHECK(b.start < b.end);
        /* A booking made is confirmed; a cancel leaves it cancelled. */
        FUZZ_CHECK(b.status == BOOKING_CONFIRMED || b.status == BOOKING_CANCELLED);
        FUZZ_CHECK(fuzz_site_fingerprint(st) != before);
    } else {
        FUZZ_CHECK(!strcmp(result, "refused"));
        FUZZ_CHECK(!changed);
        const char *reason = json_string_value(json_object_get(reply, "reason"));
        const char *detail = json_string_value(json_object_get(reply, "detail"));
        FUZZ_CHECK(reason && strcmp(reason, "ok") && strcmp(reason, "error"));
        FUZZ_CHECK(detail && fuzz_is_printable(detail));
        FUZZ_CHECK(fuzz_site_fingerprint(st) == before);
    }
    json_decref(reply);
    fuzz_site_close(st);
    return 0;
}
