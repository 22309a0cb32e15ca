/* Booking and cancelling ahead, with the same rules wherever the request comes from: telecentrectl's
 * `book` and `booking cancel`, and MQTT booking requests (P/S/booking/request). The store refuses double
 * bookings in the same transaction that inserts; no-show bookings are released first so a desk given up
 * can be booked again. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "store.h"

enum booking_refusal {
    BOOKING_OK,
    BOOKING_CONFLICT,           /* overlaps another booking: conflict_id is set */
    BOOKING_UNKNOWN_MEMBER,
    BOOKING_UNKNOWN_RESOURCE,
    BOOKING_MEMBER_SUSPENDED,
    BOOKING_INVALID_TIME,       /* from >= to, or already ended */
    BOOKING_NOT_FOUND,          /* cancel: no such booking */
    BOOKING_NOT_CONFIRMED,      /* cancel: already cancelled or released */
    BOOKING_INVALID_REQUEST,    /* MQTT: malformed JSON, wrong type, unknown field, too big */
    BOOKING_FAILED,             /* "error": the database failed; nothing changed (detail says why) */
};
const char *booking_refusal_name(enum booking_refusal r);  /* "conflict", "unknown_member", ... */

struct booking_outcome {
    enum booking_refusal refusal;   /* BOOKING_OK: accepted */
    int64_t booking_id;             /* accepted: the new (or cancelled) booking */
    int64_t conflict_id;            /* BOOKING_CONFLICT */
    struct booking conflict;        /* BOOKING_CONFLICT, when it could be read (conflict.id != 0) */
    struct booking booking;         /* accepted: the booking made or cancelled (as it was before);
                                       BOOKING_NOT_CONFIRMED: the booking, with its status */
    char detail[256];               /* one line for people: what was wrong */
};

/* Book ahead. Checks in this order: times (from < to, not already ended), member, resource, member
 * not suspended; then, in one transaction, releases no-shows and adds the booking (the store refuses an
 * overlap). Refused: nothing changed. Returns 0 with out filled (accepted or refused), or a negative
 * errno when the database failed (out->refusal BOOKING_FAILED, out->detail says so). b->id is set when
 * accepted; b->status and b->kind are set by the call (confirmed, reserved). */
int booking_book(struct store *st, const struct policy_config *pc, struct booking *b, int64_t now,
                 struct booking_outcome *out);
int booking_cancel(struct store *st, int64_t id, struct booking_outcome *out);

/* An MQTT booking request (JSON, len bytes, not NUL-terminated): {"op":"book","member","resource","from",
 * "to"[,"after_hours"]} or {"op":"cancel","booking":"b-917"}; times ISO 8601 UTC ("...Z").
 * Always gives a reply to send (new reference): {"result":"accepted","booking":"b-918",...} or
 * {"result":"refused","reason":"conflict","conflict":"b-877","detail":"..."}. *changed tells whether the
 * database changed (occupancy/resource states to republish). NULL only when out of memory. */
json_t *booking_request(struct store *st, const struct policy_config *pc, const char *payload, size_t len,
                        int64_t now, bool *changed);

#define BOOKING_REQUEST_MAX_BYTES 4096
