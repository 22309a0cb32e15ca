#include "access.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"

#define ACCESS_MAX_BOOKINGS 16   /* a member's bookings around one instant: more would be absurd */

static void copy_id(char dst[ID_MAX], const char *src)
{
    snprintf(dst, ID_MAX, "%s", src ? src : "");
}

/* When a present member is counted out if nobody taps out: at the booking's end without an exit
 * reader; with one, at the exit tap or, for a forgotten tap, at the next local midnight (or the
 * booking's end if later). A keyholder without a booking is counted until closing time, or until
 * midnight when the site is closed. */
static int64_t presence_end(const struct policy_config *pc, const struct access_request *req,
                            const struct decision *d, int64_t booking_end)
{
    int64_t midnight;
    if (tz_local_to_utc(tz_ymd_add_days(tz_local_ymd(req->now), 1), 0, &midnight) != 0)
        midnight = req->now + 86400;
    if (req->has_exit_reader)
        return booking_end > midnight ? booking_end : midnight;
    if (d->reason == REASON_KEYHOLDER) {
        int64_t closing = policy_closing_time(pc, req->now);
        return closing ? closing : midnight;
    }
    return booking_end > req->now ? booking_end : midnight;
}

static int gather(struct store *st, const struct policy_config *pc, const struct access_request *req,
                  struct policy_input *in, struct policy_member *pm, struct policy_booking *bookings)
{
    int r;
    struct badge badge;
    memset(in, 0, sizeof *in);
    in->now = req->now;
    in->direction = req->direction;

    /* Only what the policy will use is read: counts stop at their thresholds, and presence is only
     * needed when a capacity is set. */
    int64_t since = req->now - pc->denial_window_s;
    if (pc->max_badge_denials > 0) {
        r = store_count_denials_badge(st, req->uid, since, pc->max_badge_denials);
        if (r < 0)
            return r;
        in->badge_denials = r;
    }
    if (pc->max_reader_denials > 0 && req->reader && *req->reader) {
        r = store_count_denials_reader(st, req->reader, since, pc->max_reader_denials);
        if (r < 0)
            return r;
        in->reader_denials = r;
    }

    r = store_is_closure(st, tz_local_ymd(req->now));
    if (r < 0)
        return r;
    in->closure_today = r > 0;

    r = store_badge_get(st, req->uid, &badge);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    struct member m;
    r = store_member_get(st, badge.member_id, &m);
    if (r < 0)
        return r;   /* a badge without its member breaks a foreign key: report it */
    in->badge_known = true;
    in->badge_revoked = badge.revoked;
    copy_id(pm->id, m.id);
    pm->role = m.role;
    pm->suspended = m.suspended;
    pm->valid_from = m.valid_from;
    pm->valid_until = m.valid_until;
    in->member = pm;

    r = store_member_bookings(st, m.id, req->now - (int64_t)pc->late_minutes * 60,
                              req->now + (int64_t)pc->early_minutes * 60 + 1, bookings, ACCESS_MAX_BOOKINGS);
    if (r < 0)
        return r;
    in->bookings = bookings;
    in->n_bookings = (size_t)r;

    if (pc->capacity > 0) {
        r = store_member_is_present(st, m.id, req->now);
        if (r < 0)
            return r;
        in->member_present = r > 0;
        r = store_presence_count(st, req->now);
        if (r < 0)
            return r;
        in->present_count = r;
    }
    return 0;
}

static int record(struct store *st, const struct policy_config *pc, const struct access_request *req,
                  struct decision *d, struct access_record *rec)
{
    int r = 0;
    int64_t booking_end = 0;

    if (d->create_walk_in) {
        /* A no-show booking of this member not yet released by the minute sweep would collide with
         * the walk-in: release no-shows now, in this transaction. */
        r = access_sweep(st, pc, req->now);
        if (r < 0)
            return r;
        struct booking b = {.start = req->now, .end = d->walk_in_until, .status = BOOKING_CONFIRMED,
                            .kind = BOOKING_WALK_IN, .checked_in_at = req->now, .created_at = req->now};
        copy_id(b.member_id, rec->member_id);
        copy_id(b.resource_id, d->walk_in_resource);
        int64_t conflict = 0;
        r = store_booking_add(st, &b, &conflict);
        if (r < 0)
            return r;
        d->booking_id = b.id;
        d->check_in = false;   /* born checked in */
        booking_end = b.end;
    } else if (d->booking_id) {
        booking_end = d->booking_end;
        if (d->check_in && (r = store_booking_check_in(st, d->booking_id, req->now)) < 0)
            return r;
    }
    rec->booking_id = d->booking_id;

    if (d->result == ACCESS_GRANTED && req->direction == DIRECTION_IN) {
        r = store_presence_enter(st, rec->member_id, d->booking_id, req->now,
                                 presence_end(pc, req, d, booking_end));
        if (r < 0)
            return r;
    }
    if (d->check_out) {
        r = store_presence_leave(st, rec->member_id, req->now);
        if (r < 0 && r != -ENOENT)
            return r;
    }
    return store_access_log(st, rec);
}

/* The access event of rec into the outbox, inside the open transaction, so that it commits (or rolls
 * back) with its access-log row: a power cut can lose neither one without the other. */
static int add_event(struct store *st, const struct access_request *req, const struct access_record *rec)
{
    if (req->outbox_max <= 0)
        return 0;
    char *body = event_access_json(rec);
    if (!body)
        return -errno;
    int64_t seq = 0;
    int r = store_outbox_add(st, "access", rec->at, body, req->outbox_max, &seq);
    free(body);
    if (r == 0 && req->event_seq)
        *req->event_seq = seq;
    return r;
}

int access_decide(struct store *st, const struct policy_config *pc, const struct access_request *req,
                  bool apply, struct decision *d, struct access_record *rec)
{
    struct policy_input in;
    struct policy_member pm = {0};
    struct policy_booking bookings[ACCESS_MAX_BOOKINGS];
    struct access_record local_rec;
    if (!rec)
        rec = &local_rec;
    if (req->event_seq)
        *req->event_seq = 0;

    /* Gather and record in one transaction: nothing can change between the decision and its effects. */
    int r = apply ? store_begin(st) : 0;
    if (r < 0)
        return r;
    memset(d, 0, sizeof *d);
    d->result = ACCESS_DENIED;
    r = gather(st, pc, req, &in, &pm, bookings);
    if (r < 0)
        goto fail;

    policy_decide(pc, &in, d);
    if (d->need_free_desk) {
        int64_t min_free = (int64_t)pc->walk_in_min_minutes * 60;
        r = store_find_free_desk(st, req->now, d->walk_in_until, min_free, &in.free_desk);
        if (r < 0 && r != -ENOENT)
            goto fail;
        in.free_desk_searched = true;
        in.free_desk_found = r == 0;
        /* The member's own later booking bounds the walk-in (their bookings until closing time). */
        struct policy_booking later[ACCESS_MAX_BOOKINGS];
        r = store_member_bookings(st, pm.id, req->now, d->walk_in_until, later, ACCESS_MAX_BOOKINGS);
        if (r < 0)
            goto fail;
        for (int i = 0; i < r; i++)
            if (later[i].start > req->now && (!in.member_next_start || later[i].start < in.member_next_start))
                in.member_next_start = later[i].start;
        policy_decide(pc, &in, d);
    }

    memset(rec, 0, sizeof *rec);
    rec->at = req->now;
    copy_id(rec->door, req->door);
    copy_id(rec->reader, req->reader);
    rec->direction = req->direction;
    rec->result = d->result;
    rec->reason = d->reason;
    rec->booking_id = d->booking_id;
    if (in.member)
        copy_id(rec->member_id, in.member->id);
    snprintf(rec->badge_uid, sizeof rec->badge_uid, "%s", req->uid);
    if (!apply)
        return 0;

    r = record(st, pc, req, d, rec);
    if (req->on_decided)
        req->on_decided(d, rec, req->userdata);
    if (r < 0)
        goto fail;
    /* After the door has acted: the event is not on the door's path, only on the commit's. */
    r = add_event(st, req, rec);
    if (r < 0)
        goto fail;
    r = store_commit(st);
    if (r < 0)
        goto fail;
    return 0;
fail:
    if (apply)
        store_rollback(st);
    if (req->event_seq)
        *req->event_seq = 0;
    return r;
}

int access_remote_unlock(struct store *st, const struct access_request *req, const char *by,
                         struct access_record *rec)
{
    struct access_record local_rec;
    if (!rec)
        rec = &local_rec;
    if (req->event_seq)
        *req->event_seq = 0;
    if (!by || !*by || !req->door || !*req->door)
        return -EINVAL;
    memset(rec, 0, sizeof *rec);
    rec->at = req->now;
    copy_id(rec->door, req->door);
    rec->direction = DIRECTION_IN;
    rec->result = ACCESS_GRANTED;
    rec->reason = REASON_REMOTE;
    copy_id(rec->requested_by, by);
    struct decision d = {.result = ACCESS_GRANTED, .reason = REASON_REMOTE};

    /* As for a tap, the door opens even when the database cannot record it: the command was checked,
     * and who asked is still in the daemon's log. */
    int r = store_begin(st);
    bool began = r == 0;
    if (r == 0)
        r = store_access_log(st, rec);
    if (req->on_decided)
        req->on_decided(&d, rec, req->userdata);
    if (r == 0)
        r = add_event(st, req, rec);
    if (r == 0)
        r = store_commit(st);
    if (r < 0) {
        if (began)
            store_rollback(st);
        if (req->event_seq)
            *req->event_seq = 0;
    }
    return r;
}

int access_record_late(struct store *st, struct access_record *rec, int64_t outbox_max, int64_t *event_seq)
{
    struct access_request req = {.outbox_max = outbox_max, .event_seq = event_seq};
    if (event_seq)
        *event_seq = 0;
    int r = store_begin(st);
    if (r < 0)
        return r;
    if ((r = store_access_log(st, rec)) < 0 || (r = add_event(st, &req, rec)) < 0 || (r = store_commit(st)) < 0) {
        store_rollback(st);
        if (event_seq)
            *event_seq = 0;
        return r;
    }
    return 0;
}

int access_sweep(struct store *st, const struct policy_config *pc, int64_t now)
{
    return store_release_no_shows(st, now - (int64_t)pc->no_show_minutes * 60, 0);
}
