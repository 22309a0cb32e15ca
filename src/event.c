/* The JSON payloads telecentred publishes. See event.h; docs/mqtt.md is the reference for consumers.
 *
 * Privacy is structural here: the functions take only what may be published. The access record holds
 * the badge UID (kept locally for enrolment and lock-out) but event_access_json never reads it, and no
 * function is given a member's name. */
#include "event.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

char *event_time(int64_t at, char *buf)
{
    time_t t = (time_t)at;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, 21, "1970-01-01T00:00:00Z");   /* out of range for struct tm: never in practice */
    return buf;
}

/* A string, or JSON null for "none" (NULL or ""): consumers test for null, not for "". */
static json_t *string_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *time_json(int64_t at)
{
    char buf[21];
    return json_string(event_time(at, buf));
}

/* Serialises and releases obj. json_object_set_new on NULL values fails and leaves the object
 * incomplete, so every set is checked through `ok`. */
static char *dump_and_free(json_t *obj, bool ok)
{
    char *s = ok && obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (!s)
        errno = ENOMEM;
    return s;
}

static bool set(json_t *obj, const char *key, json_t *value)
{
    return obj && json_object_set_new(obj, key, value) == 0;
}

char *event_access_json(const struct access_record *rec)
{
    if (!rec) {
        errno = EINVAL;
        return NULL;
    }
    char booking[32] = "";
    if (rec->booking_id > 0)
        snprintf(booking, sizeof booking, "b-%" PRId64, rec->booking_id);
    json_t *o = json_object();
    bool ok = set(o, "at", time_json(rec->at));
    ok = ok && set(o, "door", string_or_null(rec->door));
    ok = ok && set(o, "reader", string_or_null(rec->reader));
    ok = ok && set(o, "direction", json_string(direction_name(rec->direction)));
    ok = ok && set(o, "result", json_string(access_result_name(rec->result)));
    ok = ok && set(o, "reason", json_string(access_reason_name(rec->reason)));
    ok = ok && set(o, "member", string_or_null(rec->member_id));
    ok = ok && set(o, "booking", string_or_null(booking));
    ok = ok && set(o, "by", string_or_null(rec->requested_by));
    return dump_and_free(o, ok);
}

char *event_alarm_json(int64_t at, const char *alarm, bool active, const char *door, const char *reader,
                       const char *detail)
{
    if (!alarm || !*alarm) {
        errno = EINVAL;
        return NULL;
    }
    json_t *o = json_object();
    bool ok = set(o, "at", time_json(at));
    ok = ok && set(o, "alarm", json_string(alarm));
    ok = ok && set(o, "active", json_boolean(active));
    ok = ok && set(o, "door", string_or_null(door));
    ok = ok && set(o, "reader", string_or_null(reader));
    ok = ok && set(o, "detail", string_or_null(detail));
    return dump_and_free(o, ok);
}

/* Text splicing rather than parse-and-dump: a replay after an outage sends thousands of rows, and the
 * body was produced by this file in compact form, so "{" is always its first byte. */
char *event_with_seq(int64_t seq, const char *body)
{
    if (!body || body[0] != '{') {
        errno = EINVAL;
        return NULL;
    }
    const char *rest = body + 1;
    while (*rest == ' ' || *rest == '\n' || *rest == '\t' || *rest == '\r')
        rest++;
    char *out = NULL;
    int n = *rest == '}' ? asprintf(&out, "{\"seq\":%" PRId64 "}", seq)
                         : asprintf(&out, "{\"seq\":%" PRId64 ",%s", seq, rest);
    if (n < 0) {
        errno = ENOMEM;
        return NULL;
    }
    return out;
}

char *event_door_state_json(enum door_state state, int64_t since)
{
    json_t *o = json_object();
    bool ok = set(o, "state", json_string(door_state_name(state)));
    ok = ok && set(o, "since", time_json(since));
    return dump_and_free(o, ok);
}
