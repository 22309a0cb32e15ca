/* The site's database (SQLite): members, badges, resources, bookings, presence, access log, closures.
 *
 * All SQL lives in store.c. The database runs in WAL mode with foreign keys on; its schema is versioned
 * with PRAGMA user_version and migrated forward at open, inside a transaction. Statements are prepared
 * once per connection. Functions return 0 (or a count) on success and a negative errno on failure; they
 * never log: store_errmsg() gives the SQLite message of the last failure for the caller to report. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "uid.h"

#define STORE_SCHEMA_VERSION 1
#define NAME_MAX_LEN 128
#define TEXT_MAX 256

struct store;

enum store_open_flags {
    STORE_CREATE = 1 << 0,      /* create the file if missing (else -ENOENT) */
    STORE_READONLY = 1 << 1,
};
int store_open(const char *path, unsigned flags, struct store **out);
/* store_open() that also writes why it failed into err (may be NULL): the store, and so store_errmsg(),
 * does not exist after a failed open. -ENOENT missing file, -EPROTO schema from a newer version,
 * -EROFS a read-only open of a database that needs migrating. */
int store_open_ex(const char *path, unsigned flags, struct store **out, char *err, size_t err_size);
struct store *store_close(struct store *st);   /* accepts NULL, returns NULL */
const char *store_errmsg(const struct store *st);
int store_schema_version(struct store *st, int *version);

/* Explicit transactions for callers that group several calls (nesting is not supported). */
int store_begin(struct store *st);       /* BEGIN IMMEDIATE */
int store_commit(struct store *st);
int store_rollback(struct store *st);

/* ---- members ---- */
struct member {
    char id[ID_MAX];
    char name[NAME_MAX_LEN];
    enum member_role role;
    char email[NAME_MAX_LEN];          /* "" = none */
    int valid_from, valid_until;        /* yyyymmdd, 0 = no bound */
    bool suspended;
    bool presence_visible;              /* may appear by name in published occupancy */
    int64_t created_at;
};
int store_member_add(struct store *st, const struct member *m);          /* -EEXIST */
int store_member_get(struct store *st, const char *id, struct member *out); /* -ENOENT */
int store_member_set_suspended(struct store *st, const char *id, bool suspended); /* -ENOENT */
/* Removes the member with their badges, bookings and presence, and erases their id from the access
 * log (rows are kept, anonymised), all in one transaction. -ENOENT. */
int store_member_remove(struct store *st, const char *id);
typedef int (*store_member_cb)(const struct member *m, void *userdata);   /* non-zero stops */
int store_member_foreach(struct store *st, store_member_cb cb, void *userdata); /* ordered by id */

/* ---- badges ---- */
struct badge {
    char uid[UID_STR_MAX];             /* normalised */
    char member_id[ID_MAX];
    char label[NAME_MAX_LEN];
    bool revoked;
    int64_t created_at;
    int64_t revoked_at;                /* 0 = not revoked */
};
int store_badge_add(struct store *st, const struct badge *b);   /* -EEXIST uid, -ENOENT member */
int store_badge_get(struct store *st, const char *uid, struct badge *out); /* -ENOENT */
int store_badge_revoke(struct store *st, const char *uid, int64_t now);     /* -ENOENT, -EALREADY */
typedef int (*store_badge_cb)(const struct badge *b, void *userdata);
int store_badge_foreach(struct store *st, store_badge_cb cb, void *userdata); /* ordered by member, uid */

/* ---- resources ---- */
enum resource_kind {
    RESOURCE_DESK,
    RESOURCE_ROOM,
};
const char *resource_kind_name(enum resource_kind k);
int resource_kind_parse(const char *s, enum resource_kind *out);
struct resource {
    char id[ID_MAX];
    enum resource_kind kind;
    char name[NAME_MAX_LEN];
    int seats;                          /* >= 1 */
};
int store_resource_add(struct store *st, const struct resource *r);   /* -EEXIST */
int store_resource_get(struct store *st, const char *id, struct resource *out); /* -ENOENT */
/* -ENOENT; -EBUSY if a confirmed booking ends after now (its id in *blocking_booking). Past bookings
 * of the resource are deleted with it. */
int store_resource_remove(struct store *st, const char *id, int64_t now, int64_t *blocking_booking);
typedef int (*store_resource_cb)(const struct resource *r, void *userdata);
int store_resource_foreach(struct store *st, store_resource_cb cb, void *userdata); /* by kind, id */

/* ---- bookings ---- */
enum booking_status {
    BOOKING_CONFIRMED,
    BOOKING_CANCELLED,
    BOOKING_RELEASED,                   /* no-show: not checked in within no_show_minutes */
};
enum booking_kind {
    BOOKING_RESERVED,                   /* booked ahead (CLI, portal) */
    BOOKING_WALK_IN,                    /* made by a tap */
};
const char *booking_status_name(enum booking_status s);
const char *booking_kind_name(enum booking_kind k);
struct booking {
    int64_t id;                         /* shown as "b-<id>" */
    char member_id[ID_MAX];
    char resource_id[ID_MAX];
    int64_t start, end;                 /* UTC seconds, end exclusive */
    enum booking_status status;
    enum booking_kind kind;
    bool after_hours;
    int64_t checked_in_at;              /* 0 = not yet */
    int64_t created_at;
};
/* Adds a confirmed booking after checking, in the same transaction: member and resource exist
 * (-ENOENT, *conflict_id = 0), start < end (-EINVAL), no confirmed booking of the resource overlaps and
 * no confirmed desk booking of the member overlaps a desk booking (-EEXIST with *conflict_id set).
 * On success b->id is set. */
int store_booking_add(struct store *st, struct booking *b, int64_t *conflict_id);
int store_booking_get(struct store *st, int64_t id, struct booking *out);  /* -ENOENT */
int store_booking_cancel(struct store *st, int64_t id);       /* -ENOENT, -EALREADY if not confirmed */
/* -ENOENT; -EALREADY if not confirmed; checking in twice keeps the first time and returns 0. */
int store_booking_check_in(struct store *st, int64_t id, int64_t now);
typedef int (*store_booking_cb)(const struct booking *b, void *userdata);
/* Bookings (any status) overlapping [from, to), ordered by start; from = to = 0 means all. */
int store_booking_foreach(struct store *st, int64_t from, int64_t to, store_booking_cb cb, void *userdata);
/* The member's confirmed bookings overlapping [from, to), at most max, ordered by start.
 * Returns the number written to out (<= max) or a negative errno. */
int store_member_bookings(struct store *st, const char *member_id, int64_t from, int64_t to,
                          struct policy_booking *out, size_t max);
/* Releases (status -> released) confirmed bookings not checked in whose start <= cutoff and whose
 * end > cutoff_end_after. Returns the number released. */
int store_release_no_shows(struct store *st, int64_t start_cutoff, int64_t end_after);
/* Finds a desk with no confirmed booking over [now, now + min_free_s): prefers a desk free until
 * `until` (then returns at once), else the one free the longest. 0 and *out filled, or -ENOENT. */
int store_find_free_desk(struct store *st, int64_t now, int64_t until, int64_t min_free_s,
                         struct policy_free_desk *out);
/* The confirmed booking of a resource covering now (start <= now < end), 0 or -ENOENT. */
int store_resource_current_booking(struct store *st, const char *resource_id, int64_t now,
                                   struct booking *out);

/* ---- presence ---- */
/* A member is present from an entry until an exit tap or until expected_end, whichever comes first. */
int store_presence_enter(struct store *st, const char *member_id, int64_t booking_id, int64_t now,
                         int64_t expected_end);     /* replaces an open presence of the member */
int store_presence_leave(struct store *st, const char *member_id, int64_t now); /* -ENOENT if not in */
int store_presence_count(struct store *st, int64_t now);   /* >= 0 or negative errno */
int store_member_is_present(struct store *st, const char *member_id, int64_t now); /* 1, 0 or -errno */
struct presence {
    char member_id[ID_MAX];
    int64_t booking_id;
    int64_t since, expected_end;
};
typedef int (*store_presence_cb)(const struct presence *p, const struct member *m, void *userdata);
int store_presence_foreach(struct store *st, int64_t now, store_presence_cb cb, void *userdata);
/* Deletes presence rows that ended at or before now (housekeeping). Returns the number deleted. */
int store_presence_expire(struct store *st, int64_t now);

/* ---- access log ---- */
struct access_record {
    int64_t seq;                        /* set by store_access_log(): the event's sequence id */
    int64_t at;
    char door[ID_MAX];
    char reader[ID_MAX];
    enum direction direction;
    enum access_result result;
    enum access_reason reason;
    char member_id[ID_MAX];             /* "" = none */
    int64_t booking_id;                 /* 0 = none */
    char badge_uid[UID_STR_MAX];        /* kept locally for enrolment and lock-out; never published */
};
int store_access_log(struct store *st, struct access_record *rec);   /* sets rec->seq */
/* Denials since `since` (inclusive) of a badge / at a reader, counted up to `limit` (<= 0: no limit).
 * >= 0 or negative errno. */
int store_count_denials_badge(struct store *st, const char *uid, int64_t since, int limit);
int store_count_denials_reader(struct store *st, const char *reader, int64_t since, int limit);
typedef int (*store_access_cb)(const struct access_record *rec, void *userdata);
/* The last `limit` rows (all if limit <= 0), oldest first. */
int store_access_foreach(struct store *st, int limit, store_access_cb cb, void *userdata);
/* Deletes access log rows older than `before` ([privacy] log_retention_days). Returns the number deleted. */
int store_access_purge(struct store *st, int64_t before);

/* ---- closures (whole local days the site is closed) ---- */
int store_closure_add(struct store *st, int ymd, const char *reason);   /* -EEXIST */
int store_closure_remove(struct store *st, int ymd);                    /* -ENOENT */
int store_is_closure(struct store *st, int ymd);                        /* 1, 0 or -errno */
typedef int (*store_closure_cb)(int ymd, const char *reason, void *userdata);
int store_closure_foreach(struct store *st, store_closure_cb cb, void *userdata);

/* ---- meta (key/value for the store's users: sync version, ...) ---- */
int store_meta_get(struct store *st, const char *key, char *out, size_t size);  /* -ENOENT */
int store_meta_set(struct store *st, const char *key, const char *value);       /* insert or replace */

/* The SQLite query plan of one of the store's hot queries ("member_bookings", "resource_prev",
 * "resource_next", "member_desk_overlap", "booking_range", "release_no_shows", "presence_count",
 * "denials_badge", "denials_reader", "badge_get", "member_get"), steps joined by "; ".
 * For tests and benchmarks: proves the queries seek an index. -ENOENT unknown name, -ENOBUFS. */
int store_explain(struct store *st, const char *query, char *out, size_t size);
