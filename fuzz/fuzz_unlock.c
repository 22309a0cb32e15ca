/* Remote unlock commands (P/S/door/D/unlock; docs/mqtt.md "Remote unlock"): the payload goes through
 * unlock_parse() with the daemon's default limit (10 s), at the fixed FUZZ_NOW. An unlock opens a door: the
 * checks are that nothing but a live, fresh, well-formed command is accepted.
 *
 * Input: a first byte of flags (bit 0: the message is retained; bit 1: no 'why' buffer; bits 2-7: the age
 * limit in seconds, 0 meaning the default 10), then the payload.
 *
 * Besides crashes, leaks and undefined behaviour: an accepted command is not retained, its "at" is within the
 * limit of now either way, its "by" is an id of the documented characters; a refused one gives an empty "by",
 * a known errno and a reason for the log that is one printable line. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "clock.h"
#include "fuzz.h"
#include "unlock.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_set_timezone();
    return 0;
}

static bool by_is_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n < ID_MAX && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@:-") == n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool retained = data[0] & 1;
    bool with_why = !(data[0] & 2);
    int max_age = data[0] >> 2 ? data[0] >> 2 : 10;
    data++;
    size--;

    char by[ID_MAX];
    char why[200];
    memset(by, 'x', sizeof by);
    int r = unlock_parse((const char *)data, size, retained, FUZZ_NOW, max_age, by, with_why ? why : NULL,
                         with_why ? sizeof why : 0);
    FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ESTALE || r == -EPERM);
    if (r == 0) {
        FUZZ_CHECK(!retained);
        FUZZ_CHECK(by_is_valid(by));
        FUZZ_CHECK(size <= UNLOCK_MAX_BYTES);
        /* Read "at" again, independently: the command must be fresh either way. */
        json_t *j = json_loadb((const char *)data, size, 0, NULL);
        int64_t at;
        FUZZ_CHECK(j && tz_parse_iso_utc(json_string_value(json_object_get(j, "at")), &at) == 0);
        FUZZ_CHECK(at >= FUZZ_NOW - max_age && at <= FUZZ_NOW + max_age);
        json_decref(j);
    } else {
        FUZZ_CHECK(by[0] == '\0');
        if (with_why)
            FUZZ_CHECK(why[0] && fuzz_is_printable(why));
    }
    if (retained)
        FUZZ_CHECK(r == -EPERM);
    return 0;
}
