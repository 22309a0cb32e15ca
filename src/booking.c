/* Booking ahead and cancelling, the same rules for telecentrectl and MQTT requests. See booking.h.
 *
 * The checks and the insert run in one transaction: the no-show sweep, the overlap check and the insert
 * see the same bookings, and a refusal leaves the database exactly as it was (the sweep included: the
 * daemon's periodic sweep does that work anyway). */
#include "booking.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "clock.h"
#include "event.h"
#include "log.h"

const char *booking_refusal_name(enum booking_refusal r)
{
    switch (r) {
    case BOOKING_OK:
        return "ok";
    case BOOKING_CONFLICT:
        return "conflict";
    case BOOKING_UNKNOWN_MEMBER:
        return "unknown_member";
    case BOOKING_UNKNOWN_RESOURCE:
        return "unknown_resource";
    case BOOKING_MEMBER_SUSPENDED:
        return "member_suspended";
    case BOOKING_INVALID_TIME:
        return "invalid_time";
    case BOOKING_NOT_FOUND:
        return "not_found";
    case BOOKING_NOT_CONFIRMED:
        return "not_confirmed";
    case BOOKING_INVALID_REQUEST:
        return "invalid_request";
    case BOOKING_FAILED:
        return "error";
    }
    return "?";
}

static int refuse(struct booking_outcome *out, enum booking_refusal why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define INVALID(out, ...) (refuse((out), BOOKING_INVALID_REQUEST, __VA_ARGS__), -EINVAL)
static int refuse(struct booking_outcome *out, enum booking_refusal why, const char *fmt, ...)
{
    out->refusal = why;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof out->detail, fmt, ap);
    va_end(ap);
    /* Details may quote what was sent: printable ASCII only, valid UTF-8 in the reply, one log line. */
    log_printable(out->detail);
    return 0;
}

/* The database failed: strerror and the store's message, as telecentrectl has always shown them. */
static int failed(struct store *st, struct booking_outcome *out, const char *what, int r)
{
    refuse(out, BOOKING_FAILED, "%s%s (%s)", what, strerror(-r), store_errmsg(st));
    return r;
}

static void range_utc(int64_t start, int64_t end, char *buf, size_t size)
{
    char a[21], b[21];
    snprintf(buf, size, "%s to %s", event_time(start, a), event_time(end, b));
}

static int book_locked(struct store *st, const struct policy_config *pc, struct booking *b, int64_t now,
                       struct booking_outcome *out)
{
    struct member m;
    int r = store_member_get(st, b->member_id, &m);
    if (r == -ENOENT)
        return refuse(out, BOOKING_UNKNOWN_MEMBER, "no member '%s'", b->member_id);
    if (r < 0)
        return failed(st, out, "", r);
    struct resource res;
    r = store_resource_get(st, b->resource_id, &res);
    if (r == -ENOENT)
        return refuse(out, BOOKING_UNKNOWN_RESOURCE, "no resource '%s'", b->resource_id);
    if (r < 0)
        return failed(st, out, "", r);
    if (m.suspended)
        return refuse(out, BOOKING_MEMBER_SUSPENDED, "member '%s' is suspended", m.id);

    /* A no-show booking still marked confirmed would otherwise block the desk it has given up. */
    r = access_sweep(st, pc, now);
    if (r < 0)
        return failed(st, out, "releasing no-show bookings failed: ", r);

    int64_t conflict = 0;
    r = store_booking_add(st, b, &conflict);
    if (r == -EEXIST) {
        out->refusal = BOOKING_CONFLICT;
        out->conflict_id = conflict;
        struct booking *other = &out->conflict;
        char range[64];
        if (!conflict || store_booking_get(st, conflict, other) < 0) {
            memset(other, 0, sizeof *other);
            return refuse(out, BOOKING_CONFLICT, "it overlaps another booking");
        }
        range_utc(other->start, other->end, range, sizeof range);
        if (strcmp(other->resource_id, b->resource_id) == 0)
            return refuse(out, BOOKING_CONFLICT, "%s is already booked by b-%" PRId64 " (%s)", b->resource_id,
                          other->id, range);
        return refuse(out, BOOKING_CONFLICT, "%s already has desk booking b-%" PRId64 " (%s, %s)", b->member_id,
                      other->id, other->resource_id, range);
    }
    if (r == -EINVAL)   /* the store's own bound: longer than 7 days */
        return refuse(out, BOOKING_INVALID_TIME, "%s", store_errmsg(st));
    if (r < 0)
        return failed(st, out, "", r);
    out->booking_id = b->id;
    out->booking = *b;
    return 0;
}

int booking_book(struct store *st, const struct policy_config *pc, struct booking *b, int64_t now,
                 struct booking_outcome *out)
{
    memset(out, 0, sizeof *out);
    b->status = BOOKING_CONFIRMED;
    b->kind = BOOKING_RESERVED;
    if (b->end <= b->start)
        return refuse(out, BOOKING_INVALID_TIME, "the booking must end after it starts");
    if (b->end <= now)
        return refuse(out, BOOKING_INVALID_TIME, "the booking has already ended");

    int r = store_begin(st);
    if (r < 0)
        return failed(st, out, "", r);
    r = book_locked(st, pc, b, now, out);
    if (r == 0 && out->refusal == BOOKING_OK && (r = store_commit(st)) < 0)
        failed(st, out, "", r);
    if (r < 0 || out->refusal != BOOKING_OK) {
        store_rollback(st);
        b->id = 0;
        out->booking_id = 0;
    }
    return r;
}

int booking_cancel(struct store *st, int64_t id, struct booking_outcome *out)
{
    memset(out, 0, sizeof *out);
    struct booking b;
    int r = store_begin(st);
    if (r < 0)
        return failed(st, out, "", r);
    r = store_booking_get(st, id, &b);
    if (r == -ENOENT) {
        refuse(out, BOOKING_NOT_FOUND, "no booking 'b-%" PRId64 "'", id);
        r = 0;
    } else if (r < 0) {
        failed(st, out, "", r);
    } else if ((r = store_booking_cancel(st, id)) == -EALREADY) {
        out->booking = b;
        refuse(out, BOOKING_NOT_CONFIRMED, "b-%" PRId64 " is already %s", id, booking_status_name(b.status));
        r = 0;
    } else if (r < 0) {
        failed(st, out, "", r);
    } else if ((r = store_commit(st)) < 0) {
        failed(st, out, "", r);
    } else {
        out->booking_id = id;
        out->booking = b;
        return 0;
    }
    store_rollback(st);
    return r;
}

/* ---- MQTT requests ---- */

static int check_fields(json_t *obj, const char *const *allowed, struct booking_outcome *out)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = !strcmp(key, *a);
        if (!known)
            return INVALID(out, "unknown field '%.40s'", key);
    }
    return 0;
}

static int get_id(json_t *req, const char *field, char out_id[ID_MAX], struct booking_outcome *out)
{
    json_t *v = json_object_get(req, field);
    if (!v)
        return INVALID(out, "%s: missing", field);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) || !id_is_valid(json_string_value(v)))
        return INVALID(out, "%s: must be an id (1 to 63 of A-Z a-z 0-9 . _ -)", field);
    snprintf(out_id, ID_MAX, "%s", json_string_value(v));
    return 0;
}

static int get_time(json_t *req, const char *field, int64_t *t, struct booking_outcome *out)
{
    json_t *v = json_object_get(req, field);
    if (!v)
        return INVALID(out, "%s: missing", field);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        tz_parse_iso_utc(json_string_value(v), t) < 0)
        return INVALID(out, "%s: must be an ISO 8601 UTC time (\"2026-11-23T08:00:00Z\")", field);
    return 0;
}

/* "b-917" -> 917. */
static bool parse_booking_ref(json_t *v, int64_t *id)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    if (strncmp(s, "b-", 2) != 0 || !s[2] || strlen(s) != json_string_length(v) || strlen(s) > 20)
        return false;
    int64_t n = 0;
    for (const char *p = s + 2; *p; p++) {
        if (*p < '0' || *p > '9' || n > (INT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (*p - '0');
    }
    *id = n;
    return n > 0;
}

static void handle(struct store *st, const struct policy_config *pc, const char *payload, size_t len,
                   int64_t now, struct booking_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (len > BOOKING_REQUEST_MAX_BYTES) {
        refuse(out, BOOKING_INVALID_REQUEST, "request of %zu bytes, over the %u-byte limit", len,
               (unsigned)BOOKING_REQUEST_MAX_BYTES);
        return;
    }
    if (!payload || len == 0) {
        refuse(out, BOOKING_INVALID_REQUEST, "empty request");
        return;
    }
    json_error_t err;
    json_t *req = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
    if (!req) {
        refuse(out, BOOKING_INVALID_REQUEST, "malformed JSON: %s", err.text);
        return;
    }
    if (!json_is_object(req)) {
        refuse(out, BOOKING_INVALID_REQUEST, "not a JSON object");
        goto done;
    }
    json_t *op = json_object_get(req, "op");
    if (!op) {
        refuse(out, BOOKING_INVALID_REQUEST, "op: missing");
        goto done;
    }
    if (json_is_string(op) && !strcmp(json_string_value(op), "book")) {
        static const char *const fields[] = {"op", "member", "resource", "from", "to", "after_hours", NULL};
        struct booking b = {.created_at = now};
        if (check_fields(req, fields, out) < 0 || get_id(req, "member", b.member_id, out) < 0 ||
            get_id(req, "resource", b.resource_id, out) < 0 || get_time(req, "from", &b.start, out) < 0 ||
            get_time(req, "to", &b.end, out) < 0)
            goto done;
        json_t *ah = json_object_get(req, "after_hours");
        if (ah && !json_is_boolean(ah)) {
            refuse(out, BOOKING_INVALID_REQUEST, "after_hours: must be true or false");
            goto done;
        }
        b.after_hours = ah && json_is_true(ah);
        booking_book(st, pc, &b, now, out);
    } else if (json_is_string(op) && !strcmp(json_string_value(op), "cancel")) {
        static const char *const fields[] = {"op", "booking", NULL};
        if (check_fields(req, fields, out) < 0)
            goto done;
        json_t *ref = json_object_get(req, "booking");
        int64_t id;
        if (!ref) {
            refuse(out, BOOKING_INVALID_REQUEST, "booking: missing");
            goto done;
        }
        if (!parse_booking_ref(ref, &id)) {
            refuse(out, BOOKING_INVALID_REQUEST, "booking: must be a booking id (\"b-917\")");
            goto done;
        }
        booking_cancel(st, id, out);
    } else {
        refuse(out, BOOKING_INVALID_REQUEST, "op: must be \"book\" or \"cancel\"");
    }
done:
    json_decref(req);
}

static json_t *booking_ref(int64_t id)
{
    char buf[32];
    snprintf(buf, sizeof buf, "b-%" PRId64, id);
    return json_string(buf);
}

static json_t *time_or_null(int64_t t)
{
    char buf[21];
    return t ? json_string(event_time(t, buf)) : json_null();
}

json_t *booking_request(struct store *st, const struct policy_config *pc, const char *payload, size_t len,
                        int64_t now, bool *changed)
{
    struct booking_outcome out;
    handle(st, pc, payload, len, now, &out);
    if (changed)
        *changed = out.refusal == BOOKING_OK;
    json_t *o = json_object();
    if (!o)
        return NULL;
    int e;
    if (out.refusal == BOOKING_OK) {
        e = json_object_set_new(o, "result", json_string("accepted"));
        e |= json_object_set_new(o, "booking", booking_ref(out.booking_id));
        e |= json_object_set_new(o, "from", time_or_null(out.booking.start));
        e |= json_object_set_new(o, "to", time_or_null(out.booking.end));
        e |= json_object_set_new(o, "resource", json_string(out.booking.resource_id));
    } else {
        e = json_object_set_new(o, "result", json_string("refused"));
        e |= json_object_set_new(o, "reason", json_string(booking_refusal_name(out.refusal)));
        e |= json_object_set_new(o, "conflict", out.refusal == BOOKING_CONFLICT && out.conflict_id
                                                    ? booking_ref(out.conflict_id) : json_null());
        e |= json_object_set_new(o, "detail", json_string(out.detail));
    }
    if (e) {
        json_decref(o);
        return NULL;
    }
    return o;
}
