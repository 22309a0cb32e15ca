/* The access policy: a pure function from what is known at a tap to one decision and its reason.
 * No I/O, no clock reads: the caller (access.c) gathers the facts from the store and passes "now".
 * Local-time questions (is the site open, when does it close) go through clock.h's timezone. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_MAX 64        /* member, resource, door and reader ids: at most 63 bytes */
/* An id (member, resource, booking owner...): 1 to ID_MAX - 1 characters of A-Z a-z 0-9 . _ - */
bool id_is_valid(const char *s);

enum access_result {
    ACCESS_GRANTED,
    ACCESS_DENIED,
};

enum access_reason {
    REASON_KEYHOLDER,          /* granted: keyholder or manager, any time */
    REASON_BOOKING,            /* granted: a booking covers now */
    REASON_WALK_IN,            /* granted: a walk-in booking was made on a free desk */
    REASON_CHECK_OUT,          /* granted: a tap on an exit ("out") reader */
    REASON_REMOTE,             /* granted: a remote unlock (MQTT); never decided by policy_decide */
    REASON_UNKNOWN_BADGE,
    REASON_BADGE_REVOKED,
    REASON_MEMBER_SUSPENDED,
    REASON_MEMBERSHIP_EXPIRED,
    REASON_CLOSED,
    REASON_NO_BOOKING,
    REASON_SITE_FULL,
    REASON_TOO_MANY_ATTEMPTS,
};
#define REASON_COUNT (REASON_TOO_MANY_ATTEMPTS + 1)

enum direction {
    DIRECTION_IN,
    DIRECTION_OUT,
};

enum member_role {
    ROLE_MEMBER,
    ROLE_KEYHOLDER,
    ROLE_MANAGER,
};

const char *access_result_name(enum access_result r);   /* "granted" / "denied" */
const char *access_reason_name(enum access_reason r);   /* "keyholder", "walk_in", ... as in DESIGN */
const char *direction_name(enum direction d);           /* "in" / "out" */
const char *member_role_name(enum member_role r);
int member_role_parse(const char *s, enum member_role *out);  /* -EINVAL */
int direction_parse(const char *s, enum direction *out);      /* -EINVAL */

/* Opening hours per weekday, local wall-clock minutes; index 0 = Sunday (struct tm's tm_wday). */
struct day_hours {
    bool closed;
    int open_min;    /* 0..1439 */
    int close_min;   /* open_min < close_min <= 1440 */
};

struct policy_config {
    struct day_hours hours[7];
    int early_minutes;          /* a booking admits this long before its start (default 15) */
    int late_minutes;           /* ... and this long after its end (default 15) */
    int no_show_minutes;        /* a booking not checked in this long after its start is released (30) */
    bool walk_in;               /* walk-ins allowed (default true) */
    int walk_in_min_minutes;    /* a desk must be free at least this long for a walk-in (30) */
    int capacity;               /* people present at once; 0 = no limit */
    int max_badge_denials;      /* denials of one badge within denial_window_s before lock-out (5) */
    int max_reader_denials;     /* denials at one reader within denial_window_s before lock-out (10) */
    int denial_window_s;        /* (60) */
};
void policy_config_defaults(struct policy_config *pc);  /* mon-fri 08:00-19:00, weekend closed */

struct policy_member {
    char id[ID_MAX];
    enum member_role role;
    bool suspended;
    int valid_from;             /* yyyymmdd local date, inclusive; 0 = no bound */
    int valid_until;            /* yyyymmdd local date, inclusive; 0 = no bound */
};

/* One of the member's confirmed bookings near now (the caller passes every confirmed booking that
 * overlaps [now - late_minutes, now + early_minutes]). */
struct policy_booking {
    int64_t id;
    char resource_id[ID_MAX];
    int64_t start, end;         /* UTC seconds, end exclusive */
    bool after_hours;           /* the booking itself allows entry outside opening hours */
    bool checked_in;
};

struct policy_free_desk {
    char resource_id[ID_MAX];
    int64_t next_start;         /* start of the desk's next booking, 0 = none */
};

struct policy_input {
    int64_t now;
    enum direction direction;
    bool badge_known;
    bool badge_revoked;
    const struct policy_member *member;       /* NULL when the badge is unknown */
    const struct policy_booking *bookings;
    size_t n_bookings;
    bool closure_today;                        /* today is a closure day */
    bool member_present;                       /* already inside (re-entry does not count twice) */
    int present_count;
    int badge_denials;                         /* denials of this badge in the last denial_window_s */
    int reader_denials;                        /* denials at this reader in the last denial_window_s */
    int64_t member_next_start;                 /* start of the member's next booking after now, 0 = none
                                                  (filled with the free-desk search: bounds a walk-in) */
    bool free_desk_searched;                   /* the caller looked for a free desk ... */
    bool free_desk_found;                      /* ... and found this one */
    struct policy_free_desk free_desk;
};

struct decision {
    enum access_result result;
    enum access_reason reason;
    int64_t booking_id;            /* the booking that admits (0 = none) */
    int64_t booking_end;           /* ... and its end */
    bool check_in;                 /* first entry on that booking: mark it checked in */
    bool check_out;                /* end the member's presence */
    /* A walk-in is possible if a desk is free: the caller should search (free desk free from now
     * for at least walk_in_min_minutes, ideally until walk_in_until) and decide again. */
    bool need_free_desk;
    bool create_walk_in;           /* make a walk-in booking on walk_in_resource until walk_in_until */
    char walk_in_resource[ID_MAX];
    int64_t walk_in_until;
};

/* Local opening state at an instant. */
bool policy_site_open(const struct policy_config *pc, bool closure_today, int64_t now);
/* Today's closing instant (UTC) if open now, else 0. */
int64_t policy_closing_time(const struct policy_config *pc, int64_t now);

void policy_decide(const struct policy_config *pc, const struct policy_input *in, struct decision *out);
