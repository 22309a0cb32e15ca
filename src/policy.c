#include "policy.h"

#include <errno.h>
#include <string.h>

#include "clock.h"

const char *access_result_name(enum access_result r)
{
    switch (r) {
    case ACCESS_GRANTED: return "granted";
    case ACCESS_DENIED: return "denied";
    }
    return "?";
}

const char *access_reason_name(enum access_reason r)
{
    switch (r) {
    case REASON_KEYHOLDER: return "keyholder";
    case REASON_BOOKING: return "booking";
    case REASON_WALK_IN: return "walk_in";
    case REASON_CHECK_OUT: return "check_out";
    case REASON_REMOTE: return "remote";
    case REASON_UNKNOWN_BADGE: return "unknown_badge";
    case REASON_BADGE_REVOKED: return "badge_revoked";
    case REASON_MEMBER_SUSPENDED: return "member_suspended";
    case REASON_MEMBERSHIP_EXPIRED: return "membership_expired";
    case REASON_CLOSED: return "closed";
    case REASON_NO_BOOKING: return "no_booking";
    case REASON_SITE_FULL: return "site_full";
    case REASON_TOO_MANY_ATTEMPTS: return "too_many_attempts";
    }
    return "?";
}

const char *direction_name(enum direction d)
{
    switch (d) {
    case DIRECTION_IN: return "in";
    case DIRECTION_OUT: return "out";
    }
    return "?";
}

const char *member_role_name(enum member_role r)
{
    switch (r) {
    case ROLE_MEMBER: return "member";
    case ROLE_KEYHOLDER: return "keyholder";
    case ROLE_MANAGER: return "manager";
    }
    return "?";
}

int member_role_parse(const char *s, enum member_role *out)
{
    static const enum member_role roles[] = {ROLE_MEMBER, ROLE_KEYHOLDER, ROLE_MANAGER};
    for (size_t i = 0; s && i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(s, member_role_name(roles[i])) == 0) {
            *out = roles[i];
            return 0;
        }
    return -EINVAL;
}

int direction_parse(const char *s, enum direction *out)
{
    if (s && strcmp(s, "in") == 0)
        *out = DIRECTION_IN;
    else if (s && strcmp(s, "out") == 0)
        *out = DIRECTION_OUT;
    else
        return -EINVAL;
    return 0;
}

void policy_config_defaults(struct policy_config *pc)
{
    memset(pc, 0, sizeof *pc);
    for (int wday = 0; wday < 7; wday++) {
        bool weekend = wday == 0 || wday == 6;
        pc->hours[wday] = (struct day_hours){.closed = weekend, .open_min = 8 * 60, .close_min = 19 * 60};
    }
    pc->early_minutes = 15;
    pc->late_minutes = 15;
    pc->no_show_minutes = 30;
    pc->walk_in = true;
    pc->walk_in_min_minutes = 30;
    pc->capacity = 0;
    pc->max_badge_denials = 5;
    pc->max_reader_denials = 10;
    pc->denial_window_s = 60;
}

bool policy_site_open(const struct policy_config *pc, bool closure_today, int64_t now)
{
    if (closure_today)
        return false;
    const struct day_hours *h = &pc->hours[tz_local_wday(now)];
    int minute = tz_local_minute_of_day(now);
    return !h->closed && minute >= h->open_min && minute < h->close_min;
}

int64_t policy_closing_time(const struct policy_config *pc, int64_t now)
{
    const struct day_hours *h = &pc->hours[tz_local_wday(now)];
    int minute = tz_local_minute_of_day(now);
    if (h->closed || minute < h->open_min || minute >= h->close_min)
        return 0;
    int64_t close;
    if (tz_local_to_utc(tz_local_ymd(now), h->close_min, &close) == 0 && close > now)
        return close;
    /* The closing minute itself was skipped by a daylight-saving change: count wall minutes. */
    return now + (int64_t)(h->close_min - minute) * 60;
}

static bool membership_valid(const struct policy_member *m, int64_t now)
{
    if (!m->valid_from && !m->valid_until)
        return true;
    int today = tz_local_ymd(now);
    return (!m->valid_from || today >= m->valid_from) && (!m->valid_until || today <= m->valid_until);
}

/* A booking admits from early_minutes before its start to late_minutes after its end, unless it was
 * never checked in and its no-show delay has passed (it is released, or about to be). */
static bool booking_covers(const struct policy_config *pc, const struct policy_booking *b, int64_t now)
{
    if (now < b->start - (int64_t)pc->early_minutes * 60 || now >= b->end + (int64_t)pc->late_minutes * 60)
        return false;
    return b->checked_in || now < b->start + (int64_t)pc->no_show_minutes * 60;
}

static void grant(struct decision *out, enum access_reason reason)
{
    out->result = ACCESS_GRANTED;
    out->reason = reason;
}

static void deny(struct decision *out, enum access_reason reason)
{
    out->result = ACCESS_DENIED;
    out->reason = reason;
}

static bool capacity_reached(const struct policy_config *pc, const struct policy_input *in)
{
    return pc->capacity > 0 && !in->member_present && in->present_count >= pc->capacity;
}

void policy_decide(const struct policy_config *pc, const struct policy_input *in, struct decision *out)
{
    memset(out, 0, sizeof *out);
    const struct policy_member *m = in->badge_known ? in->member : NULL;
    bool usable = m && !in->badge_revoked && !m->suspended && membership_valid(m, in->now);
    bool staff = usable && (m->role == ROLE_KEYHOLDER || m->role == ROLE_MANAGER);

    /* Lock-outs come first so that probing gives nothing away. A reader under attack still admits
     * staff, so that a keyholder can always get in; a badge denied too often is refused outright. */
    if (pc->max_badge_denials > 0 && in->badge_denials >= pc->max_badge_denials)
        { deny(out, REASON_TOO_MANY_ATTEMPTS); return; }
    if (pc->max_reader_denials > 0 && in->reader_denials >= pc->max_reader_denials && !staff)
        { deny(out, REASON_TOO_MANY_ATTEMPTS); return; }

    if (!m)
        { deny(out, REASON_UNKNOWN_BADGE); return; }
    if (in->badge_revoked)
        { deny(out, REASON_BADGE_REVOKED); return; }
    if (m->suspended)
        { deny(out, REASON_MEMBER_SUSPENDED); return; }
    if (!membership_valid(m, in->now))
        { deny(out, REASON_MEMBERSHIP_EXPIRED); return; }

    if (in->direction == DIRECTION_OUT) {
        out->check_out = true;
        { grant(out, REASON_CHECK_OUT); return; }
    }
    if (staff)
        { grant(out, REASON_KEYHOLDER); return; }

    bool open = policy_site_open(pc, in->closure_today, in->now);
    const struct policy_booking *covering = NULL;
    for (size_t i = 0; i < in->n_bookings; i++) {
        const struct policy_booking *b = &in->bookings[i];
        if (!booking_covers(pc, b, in->now))
            continue;
        if (open || b->after_hours) {
            covering = b;
            break;
        }
        if (!covering)
            covering = b;     /* covers, but only inside opening hours: remember for "closed" */
    }
    if (covering) {
        if (!open && !covering->after_hours)
            { deny(out, REASON_CLOSED); return; }
        if (capacity_reached(pc, in))
            { deny(out, REASON_SITE_FULL); return; }
        out->booking_id = covering->id;
        out->booking_end = covering->end;
        out->check_in = !covering->checked_in;
        { grant(out, REASON_BOOKING); return; }
    }

    if (!open)
        { deny(out, REASON_CLOSED); return; }
    if (!pc->walk_in)
        { deny(out, REASON_NO_BOOKING); return; }
    if (capacity_reached(pc, in))
        { deny(out, REASON_SITE_FULL); return; }

    int64_t closing = policy_closing_time(pc, in->now);
    if (!in->free_desk_searched) {
        out->need_free_desk = true;
        out->walk_in_until = closing;
        { deny(out, REASON_NO_BOOKING); return; }
    }
    if (in->free_desk_found) {
        int64_t until = closing;
        if (in->free_desk.next_start > 0 && in->free_desk.next_start < until)
            until = in->free_desk.next_start;
        if (in->member_next_start > in->now && in->member_next_start < until)
            until = in->member_next_start;    /* the member's own later booking takes over */
        if (until - in->now >= (int64_t)pc->walk_in_min_minutes * 60) {
            out->create_walk_in = true;
            memcpy(out->walk_in_resource, in->free_desk.resource_id, sizeof out->walk_in_resource);
            out->walk_in_resource[sizeof out->walk_in_resource - 1] = '\0';
            out->walk_in_until = until;
            out->booking_end = until;
            out->check_in = true;
            { grant(out, REASON_WALK_IN); return; }
        }
    }
    { deny(out, REASON_NO_BOOKING); return; }
}

bool id_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n >= ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}
