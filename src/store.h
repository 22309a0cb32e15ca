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

#define STORE_SCHEMA_VERSION 2
#define NAME_MAX_LEN 128
#define TEXT_MAX 256

struct store;

enum store_open_flags {
    STORE_CREATE = 1 << 0,      /* create the file if missing (else -ENOENT) */
    STORE_READONLY = 1 << 1,
    /* When the disk is too full for WAL's shared-memory file ("-shm"), open in exclusive locking mode
     * rather than fail: the index lives in this process's memory, and no other process can use the
     * database until this connection is closed (store_exclusive() tells). For the daemon, which must
     * decide doors from the database whatever the disk. */
    STORE_EXCLUSIVE_IF_FULL = 1 << 2,
};
int store_open(const char *path, unsigned flags, struct store **out);
/* store_open() that also writes why it failed into err (may be NULL): the store, and so store_errmsg(),
 * does not exist after a failed open. -ENOENT missing file, -EPROTO schema from a newer version,
 * -EROFS a read-only open of a database that needs migrating. Before migrating a database that has a
 * schema, the open copies it (store_backup() under the write lock) to "<db>.v<old>.bak"; if that copy
 * fails the open fails with its errno, err says so, and nothing is migrated. */
int store_open_ex(const char *path, unsigned flags, struct store **out, char *err, size_t err_size);
struct store *store_close(struct store *st);   /* accepts NULL, returns NULL */
bool store_exclusive(const struct store *st);   /* opened by the STORE_EXCLUSIVE_IF_FULL fallback */
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
/* Erases the member (right to erasure), all in one transaction: deletes the member with their badges,
 * bookings and presence; in the access log (rows are kept, anonymised) blanks member_id and
 * requested_by where they are the member's id and badge_uid where it is one of the member's badges;
 * in the MQTT outbox (events not yet delivered) sets "member" and "by" to null where they name the
 * member. -ENOENT. */
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
    char requested_by[ID_MAX];          /* remote unlock: who asked ("" for a tap); schema v2 */
};
int store_access_log(struct store *st, struct access_record *rec);   /* sets rec->seq */
/* Denials since `since` (inclusive) of a badge / at a reader, counted up to `limit` (<= 0: no limit).
 * >= 0 or negative errno. */
int store_count_denials_badge(struct store *st, const char *uid, int64_t since, int limit);
int store_count_denials_reader(struct store *st, const char *reader, int64_t since, int limit);
typedef int (*store_access_cb)(const struct access_record *rec, void *userdata);
/* The last `limit` rows (all if limit <= 0), oldest first. */
int store_access_foreach(struct store *st, int limit, store_access_cb cb, void *userdata);
/* Deletes access log rows older than `before`, all in one statement. Returns the number deleted.
 * Retention uses store_purge_step()/store_purge(), which bound the write lock. */
int store_access_purge(struct store *st, int64_t before);

/* ---- retention ([privacy] log_retention_days) ---- */
struct store_purge_counts {
    int64_t access_log;                 /* access-log rows with at < before */
    int64_t presence;                   /* presence rows that ended (expected_end) before `before` */
};
#define STORE_PURGE_BATCH 1000
/* One bounded step, in one transaction (a savepoint inside the caller's): deletes the oldest access-log
 * rows with at < before, at most `limit` of them (<= 0: STORE_PURGE_BATCH), and every presence row that
 * ended before `before`. Adds what it deleted to *counts (not reset). Returns 1 if rows older than the
 * cutoff may remain (call again), 0 when done, or a negative errno. The daemon calls it from its loop,
 * one step per turn, so that no tap waits behind a whole purge. */
int store_purge_step(struct store *st, int64_t before, int limit, struct store_purge_counts *counts);
/* store_purge_step() until done, sleeping pause_ms between steps (when not inside a transaction) so
 * that another process's writer (the daemon) takes the write lock in between: a purge of a year of
 * rows never holds it for more than one step. *counts is reset first; steps already committed stay
 * purged on a failure (purging is idempotent: the next run finishes the job). */
int store_purge(struct store *st, int64_t before, int limit, int pause_ms, struct store_purge_counts *counts);
/* What store_purge() would delete now, deleting nothing. */
int store_purge_count(struct store *st, int64_t before, struct store_purge_counts *counts);

/* ---- a member's own data (right of access: telecentrectl export) ---- */
/* The member's bookings, any status, ordered by start. */
int store_member_booking_foreach(struct store *st, const char *member_id, store_booking_cb cb, void *userdata);
/* The member's presence row, ended or not. -ENOENT if none. */
int store_presence_get(struct store *st, const char *member_id, struct presence *out);
/* Access-log rows about the member, oldest first: the member's own, those they asked for (requested_by)
 * and those of one of their badges (taps before it was enrolled). The rows store_member_remove()
 * anonymises. */
int store_member_access_foreach(struct store *st, const char *member_id, store_access_cb cb, void *userdata);

/* ---- backup ---- */
typedef void (*store_backup_progress_cb)(int remaining, int total, void *userdata);   /* in pages */
struct store_backup_options {
    bool overwrite;                     /* replace an existing file at the target (else -EEXIST) */
    int pages_per_step;                 /* <= 0: 256 */
    int pause_ms;                       /* sleep between steps (throttling on slow storage); 0: none */
    int busy_wait_ms;                   /* how long SQLITE_BUSY/LOCKED may last; <= 0: 10000 */
    store_backup_progress_cb progress;  /* after each step; may be NULL */
    void *userdata;
};
struct store_backup_result {
    int64_t pages, page_size;
    int64_t bytes;                      /* size of the copy on disk */
    int steps, busy_retries;
};
/* A consistent online copy of the open database at `path`, with SQLite's backup API. The copy is the
 * database as it was when the backup started: one read snapshot is held through every step, so in WAL
 * mode writers (the daemon) go on committing meanwhile and the copy never restarts. It is written to
 * "<path>.tmp" (locked with flock against a second backup to the same target; a stale one left by a
 * crash is reused), fsync'd, renamed to `path`, and the directory fsync'd: a half-written backup never
 * has the final name. opt and out may be NULL. -EEXIST the target exists and !overwrite; -EINVAL the
 * target is the database itself, or a transaction is open; -EBUSY another backup is writing the same
 * target, or SQLite stayed busy longer than busy_wait_ms; else the errno of the failed file operation
 * (-ENOENT, -ENOTDIR, -EACCES, -ENOSPC ...). store_errmsg() says which file and why. */
int store_backup(struct store *st, const char *path, const struct store_backup_options *opt,
                 struct store_backup_result *out);
/* After a store_open() that migrated the schema: the copy of the database it made first
 * ("<db>.v<old>.bak", or "<db>.v<old>.<UTC time>.bak" when that exists), and the old version. NULL
 * when the open did not migrate (a new database is not copied). */
const char *store_migration_backup(const struct store *st, int *old_version);

/* ---- closures (whole local days the site is closed) ---- */
int store_closure_add(struct store *st, int ymd, const char *reason);   /* -EEXIST */
int store_closure_remove(struct store *st, int ymd);                    /* -ENOENT */
int store_is_closure(struct store *st, int ymd);                        /* 1, 0 or -errno */
typedef int (*store_closure_cb)(int ymd, const char *reason, void *userdata);
int store_closure_foreach(struct store *st, store_closure_cb cb, void *userdata);

/* ---- upserts and deletes for the MQTT sync (schema v2 adds nothing for these) ----
 * Each works alone (its own transaction) or inside the caller's (store_begin): a sync batch is applied
 * in one transaction and rolled back whole on the first failure. */
/* Inserts, or updates every field but id and created_at (created_at is set on insert from m). */
int store_member_upsert(struct store *st, const struct member *m);
/* Inserts or updates (member, label, revoked_at). -ENOENT when the member does not exist. */
int store_badge_upsert(struct store *st, const struct badge *b);
int store_badge_delete(struct store *st, const char *uid);              /* -ENOENT */
/* Inserts or updates kind, name and seats. */
int store_resource_upsert(struct store *st, const struct resource *r);

/* ---- MQTT outbox (schema v2) ----
 * Events (access decisions, alarms) waiting for the broker's PUBACK, in order. Each row has a
 * sequence id (seq, AUTOINCREMENT: never reused, no gaps except rows dropped by the bound), a kind
 * ("access", "alarm": the topic under P/S/), the time and the JSON payload *without* its seq (the
 * publisher writes {"seq":N, ...} when it sends it). */
struct outbox_row {
    int64_t seq;
    int64_t at;
    char kind[16];
    const char *payload;                /* valid during the callback only */
};
/* Adds one event (inside the caller's transaction when there is one, so an access event commits with
 * its access-log row). With max_depth > 0 and max_depth rows already queued, first deletes the oldest
 * rows to make room and adds their number to the persistent dropped counter. *seq_out may be NULL. */
int store_outbox_add(struct store *st, const char *kind, int64_t at, const char *payload, int64_t max_depth,
                     int64_t *seq_out);
typedef int (*store_outbox_cb)(const struct outbox_row *row, void *userdata);  /* non-zero stops */
/* Rows with seq > after_seq, oldest first, at most limit (<= 0: all). Returns the number visited. */
int store_outbox_foreach(struct store *st, int64_t after_seq, int limit, store_outbox_cb cb, void *userdata);
/* Deletes every row with seq <= through_seq (acknowledged). Returns the number deleted. */
int store_outbox_delete_through(struct store *st, int64_t through_seq);
struct outbox_stats {
    int64_t depth;                      /* rows queued */
    int64_t oldest_seq, oldest_at;      /* 0 when empty */
    char oldest_kind[16];
    int64_t newest_seq;                 /* 0 when empty */
    int64_t dropped;                    /* rows ever dropped by the bound */
};
int store_outbox_stats(struct store *st, struct outbox_stats *out);

/* ---- meta (key/value for the store's users: sync version, ...) ---- */
int store_meta_get(struct store *st, const char *key, char *out, size_t size);  /* -ENOENT */
int store_meta_set(struct store *st, const char *key, const char *value);       /* insert or replace */

/* The SQLite query plan of one of the store's hot queries ("member_bookings", "resource_prev",
 * "resource_next", "member_desk_overlap", "booking_range", "release_no_shows", "presence_count",
 * "denials_badge", "denials_reader", "badge_get", "member_get"), steps joined by "; ".
 * For tests and benchmarks: proves the queries seek an index. -ENOENT unknown name, -ENOBUFS. */
int store_explain(struct store *st, const char *query, char *out, size_t size);
