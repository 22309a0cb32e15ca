/* One tap, end to end: gathers the facts from the store, asks the policy, and (when applying) records
 * the decision and its effects (access-log row, check-in, walk-in booking, presence) in one transaction.
 * telecentred applies; `telecentrectl check` only looks. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "store.h"

/* Called once the decision is known and its log row written, before the transaction's commit (and its
 * fsync): the door acts at once, durability follows. Also called when recording failed (the database is
 * full or broken): the door must still be decided. */
typedef void (*access_decided_cb)(const struct decision *d, const struct access_record *rec, void *userdata);

struct access_request {
    const char *uid;              /* normalised badge UID */
    const char *door;             /* "" when none (CLI check without --door) */
    const char *reader;           /* "" when none */
    enum direction direction;
    int64_t now;
    bool has_exit_reader;         /* presence ends at an exit tap rather than at the booking's end */
    access_decided_cb on_decided; /* optional, with apply */
    void *userdata;
    /* MQTT on: > 0, the outbox bound ([mqtt] outbox_max). With apply, the access event (event.h) goes
     * into the outbox in the same transaction as its access-log row (after on_decided: the door does
     * not wait for it); if either fails, neither is kept. 0: no event is written. */
    int64_t outbox_max;
    int64_t *event_seq;           /* optional: the outbox seq of the event once committed (0 = none) */
};

/* Decides. With apply, also records everything in one transaction and fills rec (with its seq).
 * Returns 0, or a negative errno: if the facts could not be read there is no decision (d->result is
 * ACCESS_DENIED and on_decided is not called: deny and report the fault); if only recording failed,
 * d holds the decision and on_decided was called with it. */
int access_decide(struct store *st, const struct policy_config *pc, const struct access_request *req,
                  bool apply, struct decision *d, struct access_record *rec);

/* A remote unlock (MQTT P/S/door/D/unlock, already checked by unlock_parse): one access-log row
 * (granted, reason "remote", requested_by = by, door = req->door, reader "") and, with outbox_max > 0,
 * its event, in one transaction; req->on_decided is called before the commit as for a tap. uid, reader,
 * direction and has_exit_reader of req are ignored. 0, -EINVAL when by or req->door is empty (nothing
 * done, on_decided not called), or another negative errno (recording failed: on_decided was still
 * called, nothing was kept). */
int access_remote_unlock(struct store *st, const struct access_request *req, const char *by,
                         struct access_record *rec);

/* A decision already acted on whose recording failed (the disk was full), written later: its access-log
 * row (rec as the failed access_decide or access_remote_unlock left it, rec->at the time of the
 * decision; rec->seq is set) and, with outbox_max > 0, its event, in one transaction. Only the row and
 * the event: the decision's other effects (check-in, walk-in booking, presence) are not replayed, so the
 * caller clears rec->booking_id of a walk-in, whose booking was never kept. 0 or a negative errno
 * (nothing kept). */
int access_record_late(struct store *st, struct access_record *rec, int64_t outbox_max, int64_t *event_seq);

/* Periodic housekeeping: releases no-show bookings. Returns the number released or -errno. */
int access_sweep(struct store *st, const struct policy_config *pc, int64_t now);
