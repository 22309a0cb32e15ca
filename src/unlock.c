/* Remote unlock commands. See unlock.h.
 *
 * An unlock opens a door, so the checks are strict and their order is deliberate: a retained message
 * (a broker replaying an old command to every new subscriber, for ever) and an oversized one are
 * refused before any parsing; then the JSON must be exactly {"at","by"}; last, the command's own
 * timestamp must be within max_age_s of now either way, so a command delayed in a queue or replayed
 * later is refused, and so is one from a badly set clock far in the future. */
#include "unlock.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"

static int fail(int r, char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(int r, char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
        /* The reason may quote what was sent (an unknown key, jansson's "near '...'") and goes to the log:
         * printable ASCII only, so a key holding a line break cannot forge a log line of its own. */
        log_printable(why);
    }
    return r;
}

static bool valid_by(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= ID_MAX)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '@' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int unlock_parse(const char *payload, size_t len, bool retained, int64_t now, int max_age_s,
                 char by[ID_MAX], char *why, size_t why_len)
{
    if (by)
        by[0] = '\0';
    if (why && why_len)
        why[0] = '\0';
    if (retained)
        return fail(-EPERM, why, why_len, "retained command (only live commands are acted on)");
    if (len > UNLOCK_MAX_BYTES)
        return fail(-EINVAL, why, why_len, "payload of %zu bytes, over the %u-byte limit", len,
                    (unsigned)UNLOCK_MAX_BYTES);
    if (!payload || len == 0)
        return fail(-EINVAL, why, why_len, "empty payload");

    json_error_t err;
    json_t *j = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        return fail(-EINVAL, why, why_len, "malformed JSON: %s", err.text);
    int r = 0;
    const char *key;
    json_t *value;
    const char *at_text = NULL, *by_text = NULL;
    if (!json_is_object(j)) {
        r = fail(-EINVAL, why, why_len, "not a JSON object");
        goto out;
    }
    json_object_foreach(j, key, value) {
        if (!strcmp(key, "at") || !strcmp(key, "by")) {
            if (!json_is_string(value)) {
                r = fail(-EINVAL, why, why_len, "'%s' must be a string", key);
                goto out;
            }
            *(!strcmp(key, "at") ? &at_text : &by_text) = json_string_value(value);
        } else {
            r = fail(-EINVAL, why, why_len, "unknown field '%.40s'", key);
            goto out;
        }
    }
    if (!at_text) {
        r = fail(-EINVAL, why, why_len, "missing 'at'");
        goto out;
    }
    if (!by_text) {
        r = fail(-EINVAL, why, why_len, "missing 'by'");
        goto out;
    }
    int64_t at;
    if (tz_parse_iso_utc(at_text, &at) < 0) {
        r = fail(-EINVAL, why, why_len, "'at' is not an ISO 8601 UTC time (\"2026-11-23T08:05:00Z\")");
        goto out;
    }
    if (!valid_by(by_text)) {
        r = fail(-EINVAL, why, why_len, "'by' must be 1-63 characters of A-Z a-z 0-9 . _ @ : -");
        goto out;
    }
    if (now - at > max_age_s) {
        r = fail(-ESTALE, why, why_len, "command is %lld s old (limit %d s)", (long long)(now - at), max_age_s);
        goto out;
    }
    if (at - now > max_age_s) {
        r = fail(-ESTALE, why, why_len, "command is %lld s in the future (limit %d s)", (long long)(at - now),
                 max_age_s);
        goto out;
    }
    if (by)
        snprintf(by, ID_MAX, "%s", by_text);
out:
    json_decref(j);
    return r;
}
