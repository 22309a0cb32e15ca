/* The daemon's MQTT side (docs/mqtt.md): what telecentred publishes and what it does with what it
 * receives, over the transport of mqtt.h.
 *
 * - The outbox pump: events (access, alarm) from the database outbox, in seq order, at most
 *   LINK_MAX_INFLIGHT waiting for their PUBACK; a row is deleted once it and every row before it are
 *   acknowledged (one delete per loop wake). After a reconnect libmosquitto resends what was in flight;
 *   nothing newer goes out until those are acknowledged, so a consumer never sees the order change.
 * - Retained state: occupancy, every resource's state, every door's state, health, Home Assistant
 *   discovery; published when it changes and all again on every connect. A resource that disappears
 *   gets an empty retained payload (state and discovery), which clears it on the broker.
 * - Incoming: sync batches (P/S/sync and the network topic), booking requests, remote unlocks; payloads
 *   over their size limit are refused unread; other topics are dropped.
 *
 * Library code: it never logs, it hands one line at a time to ops->log for the daemon to log. Nothing
 * here ever decides a door: a remote unlock that passes every check is handed to ops->unlock. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "config.h"
#include "door.h"
#include "loop.h"
#include "store.h"

#define LINK_MAX_INFLIGHT 100
#define LINK_CHECK_INTERVAL_MS 5000u      /* occupancy and resource states re-evaluated, drops noticed */
#define LINK_HEALTH_INTERVAL_S 60
#define LINK_STOP_TIMEOUT_MS 2000         /* the clean stop's wait for "offline" to be acknowledged */

struct link;

struct link_ops {
    /* A remote unlock passed every check (not retained, fresh, a configured door, a valid "by"): grant
     * the door like a badge grant and record it (access_remote_unlock). The link then sends its event. */
    void (*unlock)(void *userdata, const char *door, const char *by);
    /* One line for the daemon's log, with its syslog priority (LOG_ERR .. LOG_DEBUG). */
    void (*log)(void *userdata, int priority, const char *line);
    /* The broker connection came up (true), or went down or an attempt failed (false): for the
     * daemon's status line. May be NULL. */
    void (*connection)(void *userdata, bool up);
};

/* Reads the password file and checks the TLS files: a problem there is a start error (err says what,
 * in one line). Does not connect: link_start() does, in the background. cfg and st must outlive the
 * link; clock may be NULL (the real clock). */
int link_new(const struct config *cfg, struct store *st, struct loop *l, const struct clock *clock,
             const struct link_ops *ops, void *userdata, struct link **out, char *err, size_t errlen);
/* Watches the transport in the loop, arms the periodic check, starts connecting. Never fails because
 * the broker is away. */
int link_start(struct link *lk);

/* After a tap, a remote unlock, a sweep: new outbox rows may wait and the occupancy or resource states
 * may have changed. Cheap when nothing changed; does nothing while disconnected but keep the state. */
void link_changed(struct link *lk);
/* Every door transition (and each door's state at start); since is wall-clock time. */
void link_door_state(struct link *lk, const char *door, enum door_state state, int64_t since);
/* A reader lost or back: health is published again. */
void link_reader_health(struct link *lk, const char *reader, bool online);
/* An alarm into the outbox (its own transaction), then sent. alarm: "forced", "held_open",
 * "reader_offline", "fault". 0 or a negative errno (the link has logged it). */
int link_alarm(struct link *lk, const char *alarm, bool active, const char *door, const char *reader,
               const char *detail);
/* The database as the daemon last found it: NULL when a write worked, else what went wrong (health's
 * "database": "error: ..."). */
void link_database_status(struct link *lk, const char *error);
/* How many decisions the daemon holds in memory because the database could not record them (a full
 * disk): health's "unrecorded". Health is published again when it changes. */
void link_database_backlog(struct link *lk, int64_t waiting);

/* Clean stop: "offline" (retained), waited for at most LINK_STOP_TIMEOUT_MS, then disconnect;
 * acknowledgements that arrived meanwhile are applied to the outbox. */
void link_stop(struct link *lk);
struct link *link_free(struct link *lk);    /* stops if needed; accepts NULL; returns NULL */

/* "telecentred_" + site id with every character outside [A-Za-z0-9_-] replaced by '_'. */
void link_ha_node_id(const char *site_id, char *out, size_t size);
