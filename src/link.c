/* The daemon's MQTT side (link.h; docs/mqtt.md for topics and payloads). Runs on the loop's thread only:
 * the transport's callbacks arrive through mqtt_dispatch(). */
#include "link.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <syslog.h>

#include "booking.h"
#include "event.h"
#include "mqtt.h"
#include "occupancy.h"
#include "sync.h"
#include "unlock.h"
#include "version.h"

#define TOPIC_MAX 512

struct inflight {
    int mid;
    int64_t seq;
    bool acked;
};

/* What was last published for a resource; entries live while the resource exists (and until its
 * clearing is published once it is gone). */
struct resource_entry {
    char id[ID_MAX];
    enum resource_kind kind;
    char name[NAME_MAX_LEN];
    char *state;                /* last published state payload; NULL: not yet */
    char *ha;                   /* last published discovery config; NULL: not yet */
    bool seen;                  /* found at the current scan */
    /* filled by the scan from today's bookings */
    bool has_current;
    struct booking current;
    int64_t next_start;         /* 0: no later booking today */
};

struct door_entry {
    char name[ID_MAX];
    char *state;                /* latest payload (published again on every connect) */
};

struct reader_entry {
    char name[ID_MAX];
    bool online;
};

struct link {
    const struct config *cfg;
    struct store *st;
    struct loop *loop;
    struct clock clock;
    struct link_ops ops;
    void *userdata;
    struct mqtt *mqtt;
    struct loop_timer *timer;
    bool fd_watched;
    bool started, stopped;
    uint64_t started_mono;
    int64_t outbox_max;

    char base[ID_MAX * 2 + 8];  /* PREFIX/SITE */
    char node[ID_MAX + 16];     /* Home Assistant node id */
    char t_status[TOPIC_MAX], t_sync[TOPIC_MAX], t_sync_ack[TOPIC_MAX], t_booking[TOPIC_MAX],
        t_booking_reply[TOPIC_MAX], t_unlock_filter[TOPIC_MAX];

    /* outbox pump */
    struct inflight inflight[LINK_MAX_INFLIGHT];    /* in seq order */
    size_t n_inflight;
    int64_t last_sent;          /* highest seq handed to the transport */
    bool resend_barrier;        /* reconnected with messages in flight: wait for them first */
    bool acks_pending;          /* PUBACKs of outbox rows seen in this wake */
    bool pump_blocked;          /* this pump() met a failed publish: try again at the next wake */
    bool pump_failing;          /* a publish failed and was said; cleared by the next success */

    /* retained state */
    char *occupancy_key;        /* last published occupancy without "at", keys sorted */
    struct resource_entry *res;
    size_t n_res, cap_res;
    struct door_entry doors[CONFIG_MAX_DOORS];
    size_t n_doors;
    struct reader_entry readers[CONFIG_MAX_READERS];
    size_t n_readers;
    char db_error[300];         /* "" = ok */
    int64_t db_backlog;         /* decisions waiting in the daemon's memory to be written (disk full) */
    int64_t dropped_seen;       /* outbox dropped counter at the last health */
    unsigned ticks;

    /* connection reports: one warning per outage, the rest at debug */
    bool outage_reported;
    bool ever_connected;
};

static void say(struct link *lk, int priority, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(struct link *lk, int priority, const char *fmt, ...)
{
    if (!lk->ops.log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lk->ops.log(lk->userdata, priority, line);
}

static int64_t now_wall(struct link *lk)
{
    return clock_now(&lk->clock);
}

void link_ha_node_id(const char *site_id, char *out, size_t size)
{
    int n = snprintf(out, size, "telecentred_%s", site_id);
    if (n < 0)
        return;
    for (char *p = out + strlen("telecentred_"); p < out + strlen(out); p++) {
        bool ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                  *p == '_' || *p == '-';
        if (!ok)
            *p = '_';
    }
}

static void object_id(const char *prefix, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s%s", prefix, name);
    for (char *p = out; *p; p++) {
        bool ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                  *p == '_' || *p == '-';
        if (!ok)
            *p = '_';
    }
}

static void set_db_error(struct link *lk, const char *what, int err)
{
    char msg[sizeof lk->db_error];
    snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(-err), store_errmsg(lk->st));
    bool changed = strcmp(msg, lk->db_error) != 0;
    snprintf(lk->db_error, sizeof lk->db_error, "%s", msg);
    if (changed)
        say(lk, LOG_ERR, "mqtt: %s", msg);
}

/* ---- publishing ---- */

static bool connected(const struct link *lk)
{
    return lk->started && !lk->stopped && mqtt_connected(lk->mqtt);
}

/* Retained QoS 1; false (and a debug line) when the transport refused it. */
static bool publish_retained(struct link *lk, const char *topic, const char *payload)
{
    int r = mqtt_publish(lk->mqtt, topic, payload, strlen(payload), 1, true, NULL);
    if (r < 0) {
        say(lk, LOG_DEBUG, "mqtt: cannot publish %s: %s", topic, strerror(-r));
        return false;
    }
    return true;
}

static char *dump(json_t *j, size_t flags)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | flags) : NULL;
    return s;
}

/* ---- outbox pump ---- */

static int pump_row(const struct outbox_row *row, void *userdata)
{
    struct link *lk = userdata;
    char topic[TOPIC_MAX];
    snprintf(topic, sizeof topic, "%s/%s", lk->base, row->kind);
    char *payload = event_with_seq(row->seq, row->payload);
    if (!payload) {
        /* Not an object (never written by us): skip it rather than block the outbox behind it. */
        say(lk, LOG_WARNING, "mqtt: outbox event #%" PRId64 " is not a JSON object; skipped", row->seq);
        lk->last_sent = row->seq;
        lk->inflight[lk->n_inflight++] = (struct inflight){.mid = -1, .seq = row->seq, .acked = true};
        lk->acks_pending = true;
        return lk->n_inflight >= LINK_MAX_INFLIGHT;
    }
    int mid = 0;
    int r = mqtt_publish(lk->mqtt, topic, payload, strlen(payload), 1, false, &mid);
    free(payload);
    if (r < 0) {
        if (!lk->pump_failing)
            say(lk, LOG_WARNING, "mqtt: cannot publish event #%" PRId64 ": %s; will retry", row->seq,
                strerror(-r));
        lk->pump_failing = true;
        lk->pump_blocked = true;
        return 1;
    }
    lk->pump_failing = false;
    lk->last_sent = row->seq;
    lk->inflight[lk->n_inflight++] = (struct inflight){.mid = mid, .seq = row->seq};
    return lk->n_inflight >= LINK_MAX_INFLIGHT;
}

static void pump(struct link *lk)
{
    if (!connected(lk) || lk->resend_barrier)
        return;
    lk->pump_blocked = false;
    while (lk->n_inflight < LINK_MAX_INFLIGHT && !lk->pump_blocked) {
        int want = (int)(LINK_MAX_INFLIGHT - lk->n_inflight);
        size_t before = lk->n_inflight;
        int n = store_outbox_foreach(lk->st, lk->last_sent, want, pump_row, lk);
        if (n < 0) {
            set_db_error(lk, "reading the outbox", n);
            return;
        }
        if (n < want || lk->n_inflight == before)
            break;
    }
}

/* Once per wake: drops the acknowledged head of the in-flight list and deletes those rows. */
static void settle_acks(struct link *lk)
{
    if (!lk->acks_pending)
        return;
    lk->acks_pending = false;
    size_t k = 0;
    while (k < lk->n_inflight && lk->inflight[k].acked)
        k++;
    if (k == 0)
        return;
    int64_t through = lk->inflight[k - 1].seq;
    memmove(lk->inflight, lk->inflight + k, (lk->n_inflight - k) * sizeof lk->inflight[0]);
    lk->n_inflight -= k;
    if (lk->n_inflight == 0)
        lk->resend_barrier = false;
    int r = store_outbox_delete_through(lk->st, through);
    if (r < 0)
        set_db_error(lk, "deleting acknowledged events", r);   /* sent again later: duplicates, same seq */
}

/* ---- retained state ---- */

static void publish_occupancy(struct link *lk, bool force)
{
    json_t *o = occupancy_json(lk->st, &lk->cfg->policy, now_wall(lk));
    if (!o) {
        set_db_error(lk, "reading the occupancy", -errno);
        return;
    }
    char *full = dump(o, JSON_PRESERVE_ORDER);
    json_object_del(o, "at");
    char *key = dump(o, JSON_SORT_KEYS);
    json_decref(o);
    if (full && key && (force || !lk->occupancy_key || strcmp(key, lk->occupancy_key) != 0)) {
        char topic[TOPIC_MAX];
        snprintf(topic, sizeof topic, "%s/occupancy", lk->base);
        if (publish_retained(lk, topic, full)) {
            free(lk->occupancy_key);
            lk->occupancy_key = key;
            key = NULL;
        }
    }
    free(full);
    free(key);
}

static json_t *device_json(struct link *lk)
{
    char name[200];
    snprintf(name, sizeof name, "Telecentre %s", lk->cfg->site_name[0] ? lk->cfg->site_name : lk->cfg->site_id);
    return json_pack("{s:[s], s:s, s:s, s:s}", "identifiers", lk->node, "name", name, "manufacturer",
                     "telecentred", "sw_version", TELECENTRED_VERSION);
}

/* A discovery config for a sensor; NULL when out of memory. */
static char *ha_sensor(struct link *lk, const char *name, const char *object, const char *state_topic,
                       const char *template, bool measurement)
{
    char unique[ID_MAX + 200], status[TOPIC_MAX];
    snprintf(unique, sizeof unique, "%s_%s", lk->node, object);
    snprintf(status, sizeof status, "%s", lk->t_status);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "name", name, "unique_id", unique,
                          "state_topic", state_topic, "value_template", template, "availability_topic", status,
                          "payload_available", "online", "payload_not_available", "offline", "device",
                          device_json(lk));
    if (o && measurement)
        json_object_set_new(o, "state_class", json_string("measurement"));
    char *s = dump(o, JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

static void ha_topic(struct link *lk, const char *component, const char *object, char *out, size_t size)
{
    snprintf(out, size, "homeassistant/%s/%s/%s/config", component, lk->node, object);
}

static char *resource_ha_config(struct link *lk, const struct resource_entry *e)
{
    char object[ID_MAX + 16], state_topic[TOPIC_MAX];
    object_id("resource_", e->id, object, sizeof object);
    snprintf(state_topic, sizeof state_topic, "%s/resource/%s/state", lk->base, e->id);
    return ha_sensor(lk, e->name[0] ? e->name : e->id, object, state_topic, "{{ value_json.state }}", false);
}

/* The fixed discovery configs (site sensors, doors, online), or their removal when discovery is off
 * (a site that turns it off does not leave stale entities behind). */
static void publish_ha_fixed(struct link *lk)
{
    bool on = lk->cfg->mqtt.ha_discovery;
    char topic[TOPIC_MAX], state_topic[TOPIC_MAX];
    char *payload;

    snprintf(state_topic, sizeof state_topic, "%s/occupancy", lk->base);
    ha_topic(lk, "sensor", "present", topic, sizeof topic);
    payload = on ? ha_sensor(lk, "Present", "present", state_topic, "{{ value_json.present }}", true) : NULL;
    publish_retained(lk, topic, payload ? payload : "");
    free(payload);

    ha_topic(lk, "sensor", "desks_free", topic, sizeof topic);
    payload = on ? ha_sensor(lk, "Desks free", "desks_free", state_topic, "{{ value_json.desks.free }}", true)
                 : NULL;
    publish_retained(lk, topic, payload ? payload : "");
    free(payload);

    for (size_t i = 0; i < lk->n_doors; i++) {
        char object[ID_MAX + 16], name[ID_MAX + 16];
        object_id("door_", lk->doors[i].name, object, sizeof object);
        snprintf(name, sizeof name, "Door %s", lk->doors[i].name);
        snprintf(state_topic, sizeof state_topic, "%s/door/%s/state", lk->base, lk->doors[i].name);
        ha_topic(lk, "sensor", object, topic, sizeof topic);
        payload = on ? ha_sensor(lk, name, object, state_topic, "{{ value_json.state }}", false) : NULL;
        publish_retained(lk, topic, payload ? payload : "");
        free(payload);
    }

    ha_topic(lk, "binary_sensor", "online", topic, sizeof topic);
    payload = NULL;
    if (on) {
        char unique[ID_MAX + 32];
        snprintf(unique, sizeof unique, "%s_online", lk->node);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "name", "Online", "unique_id", unique,
                              "state_topic", lk->t_status, "payload_on", "online", "payload_off", "offline",
                              "device_class", "connectivity", "device", device_json(lk));
        payload = dump(o, JSON_PRESERVE_ORDER);
        json_decref(o);
    }
    publish_retained(lk, topic, payload ? payload : "");
    free(payload);
}

static struct resource_entry *find_resource(struct link *lk, const char *id)
{
    for (size_t i = 0; i < lk->n_res; i++)
        if (strcmp(lk->res[i].id, id) == 0)
            return &lk->res[i];
    return NULL;
}

static int scan_resource(const struct resource *r, void *userdata)
{
    struct link *lk = userdata;
    struct resource_entry *e = find_resource(lk, r->id);
    if (!e) {
        if (lk->n_res == lk->cap_res) {
            size_t cap = lk->cap_res ? lk->cap_res * 2 : 16;
            struct resource_entry *res = realloc(lk->res, cap * sizeof *res);
            if (!res)
                return -ENOMEM;
            lk->res = res;
            lk->cap_res = cap;
        }
        e = &lk->res[lk->n_res++];
        memset(e, 0, sizeof *e);
        snprintf(e->id, sizeof e->id, "%s", r->id);
    }
    e->kind = r->kind;
    snprintf(e->name, sizeof e->name, "%s", r->name);
    e->seen = true;
    e->has_current = false;
    e->next_start = 0;
    return 0;
}

struct booking_scan {
    struct link *lk;
    int64_t now;
};

static int scan_booking(const struct booking *b, void *userdata)
{
    struct booking_scan *bs = userdata;
    if (b->status != BOOKING_CONFIRMED)
        return 0;
    struct resource_entry *e = find_resource(bs->lk, b->resource_id);
    if (!e || !e->seen)
        return 0;
    if (b->start <= bs->now && bs->now < b->end) {
        if (!e->has_current || b->checked_in_at) {
            e->current = *b;
            e->has_current = true;
        }
    } else if (b->start > bs->now && (!e->next_start || b->start < e->next_start)) {
        e->next_start = b->start;
    }
    return 0;
}

/* The same rule as the occupancy (occupancy.c): a booking never checked in stops holding its resource
 * once its no-show delay has passed, even before the sweep releases it. */
static char *resource_state_json(struct link *lk, const struct resource_entry *e, int64_t now)
{
    enum resource_state state = RESOURCE_FREE;
    if (e->has_current) {
        if (e->current.checked_in_at)
            state = RESOURCE_OCCUPIED;
        else if (now < e->current.start + (int64_t)lk->cfg->policy.no_show_minutes * 60)
            state = RESOURCE_BOOKED;
    }
    char until[TZ_BUFSZ], booking[32];
    json_t *o;
    if (state == RESOURCE_FREE) {
        o = json_pack("{s:s, s:o, s:n}", "state", resource_state_name(state), "until",
                      e->next_start ? json_string(tz_format_iso_utc(e->next_start, until)) : json_null(),
                      "booking");
    } else {
        snprintf(booking, sizeof booking, "b-%" PRId64, e->current.id);
        o = json_pack("{s:s, s:s, s:s}", "state", resource_state_name(state), "until",
                      tz_format_iso_utc(e->current.end, until), "booking", booking);
    }
    char *s = dump(o, JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

static int64_t end_of_local_day(int64_t now)
{
    int64_t eod;
    if (tz_local_to_utc(tz_ymd_add_days(tz_local_ymd(now), 1), 0, &eod) < 0 || eod <= now)
        eod = now + 24 * 3600;      /* midnight skipped by a DST change: a day is close enough */
    return eod;
}

static void remove_entry(struct link *lk, size_t i)
{
    free(lk->res[i].state);
    free(lk->res[i].ha);
    lk->res[i] = lk->res[--lk->n_res];
}

static void publish_resources(struct link *lk, bool force)
{
    int64_t now = now_wall(lk);
    for (size_t i = 0; i < lk->n_res; i++)
        lk->res[i].seen = false;
    int r = store_resource_foreach(lk->st, scan_resource, lk);
    if (r < 0) {
        set_db_error(lk, "reading the resources", r);
        return;
    }
    struct booking_scan bs = {.lk = lk, .now = now};
    r = store_booking_foreach(lk->st, now, end_of_local_day(now), scan_booking, &bs);
    if (r < 0) {
        set_db_error(lk, "reading the bookings", r);
        return;
    }
    char topic[TOPIC_MAX];
    for (size_t i = 0; i < lk->n_res;) {
        struct resource_entry *e = &lk->res[i];
        char object[ID_MAX + 16], ha_t[TOPIC_MAX];
        object_id("resource_", e->id, object, sizeof object);
        ha_topic(lk, "sensor", object, ha_t, sizeof ha_t);
        snprintf(topic, sizeof topic, "%s/resource/%s/state", lk->base, e->id);
        if (!e->seen) {
            /* Gone from the database: clear its retained state and its discovery config. */
            if (publish_retained(lk, topic, "") && publish_retained(lk, ha_t, "")) {
                say(lk, LOG_INFO, "mqtt: resource %s removed: its retained state is cleared", e->id);
                remove_entry(lk, i);
                continue;
            }
            i++;
            continue;
        }
        char *state = resource_state_json(lk, e, now);
        if (state && (force || !e->state || strcmp(state, e->state) != 0) && publish_retained(lk, topic, state)) {
            free(e->state);
            e->state = state;
            state = NULL;
        }
        free(state);
        char *ha = lk->cfg->mqtt.ha_discovery ? resource_ha_config(lk, e) : strdup("");
        if (ha && (force || !e->ha || strcmp(ha, e->ha) != 0) && publish_retained(lk, ha_t, ha)) {
            free(e->ha);
            e->ha = ha;
            ha = NULL;
        }
        free(ha);
        i++;
    }
}

static void publish_doors(struct link *lk)
{
    char topic[TOPIC_MAX];
    for (size_t i = 0; i < lk->n_doors; i++) {
        if (!lk->doors[i].state)
            continue;
        snprintf(topic, sizeof topic, "%s/door/%s/state", lk->base, lk->doors[i].name);
        publish_retained(lk, topic, lk->doors[i].state);
    }
}

static void publish_health(struct link *lk)
{
    if (!connected(lk))
        return;
    struct outbox_stats os;
    int r = store_outbox_stats(lk->st, &os);
    if (r < 0) {
        set_db_error(lk, "reading the outbox", r);
        memset(&os, 0, sizeof os);
    }
    lk->dropped_seen = os.dropped;
    char at[TZ_BUFSZ], oldest[TZ_BUFSZ], database[sizeof lk->db_error + 8];
    snprintf(database, sizeof database, "%s%s", lk->db_error[0] ? "error: " : "ok", lk->db_error);
    json_t *readers = json_object();
    for (size_t i = 0; readers && i < lk->n_readers; i++)
        json_object_set_new(readers, lk->readers[i].name, json_string(lk->readers[i].online ? "online" : "offline"));
    json_t *o = json_pack("{s:s, s:s, s:I, s:o, s:{s:I, s:o, s:I}, s:s, s:I}", "at",
                          tz_format_iso_utc(now_wall(lk), at), "version", TELECENTRED_VERSION, "uptime_s",
                          (json_int_t)((clock_mono_ms() - lk->started_mono) / 1000), "readers", readers, "outbox",
                          "depth", (json_int_t)os.depth, "oldest",
                          os.oldest_seq ? json_string(tz_format_iso_utc(os.oldest_at, oldest)) : json_null(),
                          "dropped", (json_int_t)os.dropped, "database", database, "unrecorded",
                          (json_int_t)lk->db_backlog);
    char *s = dump(o, JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s) {
        char topic[TOPIC_MAX];
        snprintf(topic, sizeof topic, "%s/health", lk->base);
        publish_retained(lk, topic, s);
        free(s);
    }
}

/* Occupancy and resource states, when they changed (force: all of them). */
static void publish_state(struct link *lk, bool force)
{
    if (!connected(lk))
        return;
    publish_occupancy(lk, force);
    publish_resources(lk, force);
}

static void publish_everything(struct link *lk)
{
    publish_health(lk);
    publish_doors(lk);
    publish_state(lk, true);
    publish_ha_fixed(lk);
}

/* ---- incoming ---- */

static void reply_json(struct link *lk, const char *topic, json_t *j, const struct mqtt_message *msg)
{
    char *s = dump(j, JSON_PRESERVE_ORDER);
    if (!s) {
        say(lk, LOG_ERR, "mqtt: cannot build the reply on %s: out of memory", topic);
        return;
    }
    int r = msg ? mqtt_publish_reply(lk->mqtt, topic, s, strlen(s), msg->correlation, msg->correlation_len, NULL)
                : mqtt_publish(lk->mqtt, topic, s, strlen(s), 1, false, NULL);
    if (r < 0)
        say(lk, LOG_WARNING, "mqtt: cannot publish the reply on %s: %s", topic, strerror(-r));
    free(s);
}

static void handle_sync(struct link *lk, enum sync_scope scope, const struct mqtt_message *msg)
{
    const char *what = scope == SYNC_NETWORK ? "network sync" : "sync";
    struct sync_result res = {.outcome = SYNC_REJECTED};
    if (msg->retain) {
        /* A retained batch is redelivered at every (re)connect, however old: on a new or restored
         * board, whose version counter is behind, it would bring back members and badges the network
         * has since removed or revoked. Batches are taken only live; the ack tells the portal to clear
         * the retained message. */
        json_t *j = msg->len <= SYNC_MAX_BYTES ? json_loadb(msg->payload, msg->len, 0, NULL) : NULL;
        json_t *v = json_object_get(j, "version");
        res.version = json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
        json_decref(j);
        snprintf(res.error, sizeof res.error,
                 "retained message: sync batches are applied only when published live (clear the retained "
                 "message)");
    } else if (msg->len > SYNC_MAX_BYTES) {
        snprintf(res.error, sizeof res.error, "payload of %zu bytes is over the limit of %u bytes", msg->len,
                 SYNC_MAX_BYTES);
    } else {
        int r = sync_apply(lk->st, scope, msg->payload, msg->len, now_wall(lk), &res);
        if (r < 0)
            set_db_error(lk, "applying a sync batch", r);
    }
    switch (res.outcome) {
    case SYNC_APPLIED:
        say(lk, LOG_INFO, "mqtt: %s version %" PRId64 " applied (%zu op%s)", what, res.version, res.n_ops,
            res.n_ops == 1 ? "" : "s");
        break;
    case SYNC_REJECTED:
        say(lk, LOG_WARNING, "mqtt: %s rejected: %s", what, res.error);
        break;
    case SYNC_IGNORED:
        say(lk, LOG_INFO, "mqtt: %s version %" PRId64 " ignored (not newer than the last applied)", what,
            res.version);
        break;
    }
    json_t *ack = sync_ack_json(scope, &res);
    if (ack) {
        reply_json(lk, lk->t_sync_ack, ack, NULL);
        json_decref(ack);
    }
    if (res.outcome == SYNC_APPLIED)
        publish_state(lk, false);
}

static void handle_booking(struct link *lk, const struct mqtt_message *msg)
{
    const char *reply_topic = msg->response_topic && *msg->response_topic ? msg->response_topic
                                                                          : lk->t_booking_reply;
    if (msg->retain) {
        /* A retained request would be carried out again at every reconnect (a cancelled booking booked
         * again): never act on one. */
        say(lk, LOG_WARNING, "mqtt: booking request ignored: it is a retained message");
        return;
    }
    json_t *reply;
    bool changed = false;
    if (msg->len > BOOKING_REQUEST_MAX_BYTES) {
        char detail[128];
        snprintf(detail, sizeof detail, "request of %zu bytes is over the limit of %d bytes", msg->len,
                 BOOKING_REQUEST_MAX_BYTES);
        reply = json_pack("{s:s, s:s, s:s}", "result", "refused", "reason", "invalid_request", "detail", detail);
    } else {
        reply = booking_request(lk->st, &lk->cfg->policy, msg->payload, msg->len, now_wall(lk), &changed);
    }
    if (!reply) {
        say(lk, LOG_ERR, "mqtt: booking request: out of memory");
        return;
    }
    const char *result = json_string_value(json_object_get(reply, "result"));
    const char *reason = json_string_value(json_object_get(reply, "reason"));
    const char *booking = json_string_value(json_object_get(reply, "booking"));
    if (result && strcmp(result, "accepted") == 0)
        say(lk, LOG_INFO, "mqtt: booking request accepted%s%s", booking ? ": " : "", booking ? booking : "");
    else
        say(lk, LOG_INFO, "mqtt: booking request refused: %s", reason ? reason : "?");
    reply_json(lk, reply_topic, reply, msg);
    json_decref(reply);
    if (changed)
        publish_state(lk, false);
}

/* "BASE/door/D/unlock" -> D (copied into door); false for any other topic. */
static bool unlock_topic_door(struct link *lk, const char *topic, char *door, size_t size)
{
    size_t blen = strlen(lk->base);
    if (strncmp(topic, lk->base, blen) != 0 || strncmp(topic + blen, "/door/", 6) != 0)
        return false;
    const char *d = topic + blen + 6;
    const char *slash = strchr(d, '/');
    if (!slash || slash == d || strcmp(slash, "/unlock") != 0 || (size_t)(slash - d) >= size)
        return false;
    memcpy(door, d, (size_t)(slash - d));
    door[slash - d] = '\0';
    return true;
}

static void handle_unlock(struct link *lk, const char *door, const struct mqtt_message *msg)
{
    if (msg->len > UNLOCK_MAX_BYTES) {
        say(lk, LOG_WARNING, "mqtt: remote unlock of door %s ignored: payload of %zu bytes is over the limit of %d",
            door, msg->len, UNLOCK_MAX_BYTES);
        return;
    }
    if (!config_find_door(lk->cfg, door)) {
        say(lk, LOG_WARNING, "mqtt: remote unlock ignored: no door '%s' here", door);
        return;
    }
    char by[ID_MAX], why[200] = "";
    int r = unlock_parse(msg->payload, msg->len, msg->retain, now_wall(lk), lk->cfg->mqtt.unlock_max_age_s, by,
                         why, sizeof why);
    if (r < 0) {
        say(lk, LOG_WARNING, "mqtt: remote unlock of door %s ignored: %s", door, why[0] ? why : strerror(-r));
        return;
    }
    if (lk->ops.unlock)
        lk->ops.unlock(lk->userdata, door, by);
    link_changed(lk);
}

static void on_message(void *userdata, const struct mqtt_message *msg)
{
    struct link *lk = userdata;
    if (lk->stopped)
        return;
    char door[ID_MAX];
    if (strcmp(msg->topic, lk->t_sync) == 0)
        handle_sync(lk, SYNC_SITE, msg);
    else if (lk->cfg->mqtt.network_sync_topic[0] && strcmp(msg->topic, lk->cfg->mqtt.network_sync_topic) == 0)
        handle_sync(lk, SYNC_NETWORK, msg);
    else if (strcmp(msg->topic, lk->t_booking) == 0)
        handle_booking(lk, msg);
    else if (unlock_topic_door(lk, msg->topic, door, sizeof door))
        handle_unlock(lk, door, msg);
    else
        say(lk, LOG_DEBUG, "mqtt: dropped a message on %s (not a topic of ours)", msg->topic);
}

/* ---- transport events ---- */

static void on_connected(void *userdata)
{
    struct link *lk = userdata;
    if (lk->stopped)
        return;
    say(lk, lk->outage_reported ? LOG_NOTICE : LOG_INFO, "mqtt: connected to %s:%d as %s%s",
        lk->cfg->mqtt.host, lk->cfg->mqtt.port, lk->cfg->mqtt.client_id,
        lk->cfg->mqtt.tls_ca[0] ? " (TLS)" : "");
    lk->outage_reported = false;
    lk->ever_connected = true;
    if (lk->ops.connection)
        lk->ops.connection(lk->userdata, true);
    /* libmosquitto sends what was in flight again, first; nothing newer until those are settled. */
    lk->resend_barrier = lk->n_inflight > 0;
    publish_everything(lk);
    pump(lk);
}

static void on_disconnected(void *userdata, bool was_connected, const char *why)
{
    struct link *lk = userdata;
    if (lk->stopped)
        return;
    if (!lk->outage_reported) {
        if (was_connected)
            say(lk, LOG_WARNING, "mqtt: %s; reconnecting (events wait in the outbox)", why);
        else
            say(lk, LOG_WARNING, "mqtt: %s:%d: %s; retrying in the background", lk->cfg->mqtt.host,
                lk->cfg->mqtt.port, why);
        lk->outage_reported = true;
    } else {
        say(lk, LOG_DEBUG, "mqtt: %s:%d: %s", lk->cfg->mqtt.host, lk->cfg->mqtt.port, why);
    }
    if (lk->ops.connection)
        lk->ops.connection(lk->userdata, false);
}

static void on_published(void *userdata, int mid, int reason_code)
{
    struct link *lk = userdata;
    for (size_t i = 0; i < lk->n_inflight; i++) {
        if (lk->inflight[i].mid == mid && !lk->inflight[i].acked) {
            if (reason_code >= 0x80)
                say(lk, LOG_WARNING, "mqtt: the broker refused event #%" PRId64 " (reason %d); not sent again",
                    lk->inflight[i].seq, reason_code);
            lk->inflight[i].acked = true;
            lk->acks_pending = true;
            return;
        }
    }
}

static void on_dropped(void *userdata, uint64_t count)
{
    struct link *lk = userdata;
    say(lk, LOG_WARNING, "mqtt: %" PRIu64 " incoming message%s dropped: too much waiting at once", count,
        count == 1 ? "" : "s");
}

static const struct mqtt_ops transport_ops = {
    .connected = on_connected,
    .disconnected = on_disconnected,
    .published = on_published,
    .message = on_message,
    .dropped = on_dropped,
};

static void transport_readable(int fd, uint32_t events, void *userdata)
{
    struct link *lk = userdata;
    mqtt_dispatch(lk->mqtt);
    settle_acks(lk);
    pump(lk);
}

static void check_timer_fired(struct loop_timer *t, void *userdata)
{
    struct link *lk = userdata;
    lk->ticks++;
    if (connected(lk)) {
        publish_state(lk, false);
        struct outbox_stats os;
        bool health_due = lk->ticks % (LINK_HEALTH_INTERVAL_S * 1000 / LINK_CHECK_INTERVAL_MS) == 0;
        if (!health_due && store_outbox_stats(lk->st, &os) == 0 && os.dropped != lk->dropped_seen) {
            say(lk, LOG_WARNING, "mqtt: outbox full: %" PRId64 " oldest event%s dropped so far", os.dropped,
                os.dropped == 1 ? "" : "s");
            health_due = true;
        }
        if (health_due)
            publish_health(lk);
        pump(lk);
    }
    loop_timer_arm_in(t, clock_timer_ms(LINK_CHECK_INTERVAL_MS));     /* simulated time under the test clock */
}

/* ---- public ---- */

int link_new(const struct config *cfg, struct store *st, struct loop *l, const struct clock *clock,
             const struct link_ops *ops, void *userdata, struct link **out, char *err, size_t errlen)
{
    *out = NULL;
    const struct mqtt_config *mc = &cfg->mqtt;
    struct link *lk = calloc(1, sizeof *lk);
    if (!lk) {
        snprintf(err, errlen, "mqtt: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    lk->cfg = cfg;
    lk->st = st;
    lk->loop = l;
    if (clock)
        lk->clock = *clock;
    lk->ops = *ops;
    lk->userdata = userdata;
    lk->outbox_max = mc->outbox_max;
    snprintf(lk->base, sizeof lk->base, "%s/%s", mc->prefix, cfg->site_id);
    link_ha_node_id(cfg->site_id, lk->node, sizeof lk->node);
    snprintf(lk->t_status, sizeof lk->t_status, "%s/status", lk->base);
    snprintf(lk->t_sync, sizeof lk->t_sync, "%s/sync", lk->base);
    snprintf(lk->t_sync_ack, sizeof lk->t_sync_ack, "%s/sync/ack", lk->base);
    snprintf(lk->t_booking, sizeof lk->t_booking, "%s/booking/request", lk->base);
    snprintf(lk->t_booking_reply, sizeof lk->t_booking_reply, "%s/booking/reply", lk->base);
    snprintf(lk->t_unlock_filter, sizeof lk->t_unlock_filter, "%s/door/+/unlock", lk->base);
    for (size_t i = 0; i < cfg->n_doors; i++)
        snprintf(lk->doors[i].name, sizeof lk->doors[i].name, "%s", cfg->doors[i].name);
    lk->n_doors = cfg->n_doors;
    for (size_t i = 0; i < cfg->n_readers; i++) {
        snprintf(lk->readers[i].name, sizeof lk->readers[i].name, "%s", cfg->readers[i].name);
        lk->readers[i].online = true;
    }
    lk->n_readers = cfg->n_readers;

    char password[512] = "";
    int r;
    if (mc->password_file[0]) {
        char why[600];
        r = mqtt_read_password_file(mc->password_file, password, sizeof password, why, sizeof why);
        if (r < 0) {
            snprintf(err, errlen, "[mqtt] password_file: %s", why);
            free(lk);
            return r;
        }
    }
    const char *subs[4] = {lk->t_sync, lk->t_booking, lk->t_unlock_filter};
    size_t n_subs = 3;
    if (mc->network_sync_topic[0])
        subs[n_subs++] = mc->network_sync_topic;
    struct mqtt_params p = {
        .host = mc->host,
        .port = mc->port,
        .client_id = mc->client_id,
        .username = mc->username,
        .password = mc->password_file[0] ? password : NULL,
        .tls_ca = mc->tls_ca,
        .tls_cert = mc->tls_cert,
        .tls_key = mc->tls_key,
        .keepalive_s = mc->keepalive_s,
        .status_topic = lk->t_status,
        .subscriptions = subs,
        .n_subscriptions = n_subs,
    };
    r = mqtt_new(&p, &transport_ops, lk, &lk->mqtt, err, errlen);
    explicit_bzero(password, sizeof password);
    if (r < 0) {
        free(lk);
        return r;
    }
    if ((r = loop_timer_new(l, check_timer_fired, lk, &lk->timer)) < 0) {
        snprintf(err, errlen, "mqtt: cannot create a timer: %s", strerror(-r));
        link_free(lk);
        return r;
    }
    *out = lk;
    return 0;
}

int link_start(struct link *lk)
{
    int r = loop_add_fd(lk->loop, mqtt_fd(lk->mqtt), EPOLLIN, transport_readable, lk);
    if (r < 0)
        return r;
    lk->fd_watched = true;
    if ((r = loop_timer_arm_in(lk->timer, clock_timer_ms(LINK_CHECK_INTERVAL_MS))) < 0)
        return r;
    lk->started_mono = clock_mono_ms();
    if ((r = mqtt_start(lk->mqtt)) < 0)
        return r;
    lk->started = true;
    return 0;
}

void link_changed(struct link *lk)
{
    if (!lk)
        return;
    pump(lk);
    publish_state(lk, false);
}

void link_door_state(struct link *lk, const char *door, enum door_state state, int64_t since)
{
    if (!lk)
        return;
    for (size_t i = 0; i < lk->n_doors; i++) {
        struct door_entry *d = &lk->doors[i];
        if (strcmp(d->name, door) != 0)
            continue;
        char *payload = event_door_state_json(state, since);
        if (!payload)
            return;
        free(d->state);
        d->state = payload;
        if (connected(lk)) {
            char topic[TOPIC_MAX];
            snprintf(topic, sizeof topic, "%s/door/%s/state", lk->base, d->name);
            publish_retained(lk, topic, payload);
        }
        return;
    }
}

void link_reader_health(struct link *lk, const char *reader, bool online)
{
    if (!lk)
        return;
    for (size_t i = 0; i < lk->n_readers; i++)
        if (strcmp(lk->readers[i].name, reader) == 0)
            lk->readers[i].online = online;
    publish_health(lk);
}

int link_alarm(struct link *lk, const char *alarm, bool active, const char *door, const char *reader,
               const char *detail)
{
    if (!lk)
        return 0;
    int64_t at = now_wall(lk);
    char *body = event_alarm_json(at, alarm, active, door, reader, detail);
    if (!body) {
        say(lk, LOG_ERR, "mqtt: alarm %s: %s", alarm, strerror(errno));
        return -errno;
    }
    int r = store_outbox_add(lk->st, "alarm", at, body, lk->outbox_max, NULL);
    free(body);
    if (r < 0) {
        set_db_error(lk, "adding an alarm to the outbox", r);
        return r;
    }
    pump(lk);
    return 0;
}

void link_database_status(struct link *lk, const char *error)
{
    if (!lk)
        return;
    char now[sizeof lk->db_error];
    snprintf(now, sizeof now, "%s", error ? error : "");
    if (strcmp(now, lk->db_error) == 0)
        return;
    snprintf(lk->db_error, sizeof lk->db_error, "%s", now);
    publish_health(lk);
}

void link_database_backlog(struct link *lk, int64_t waiting)
{
    if (!lk || waiting == lk->db_backlog)
        return;
    lk->db_backlog = waiting;
    publish_health(lk);
}

void link_stop(struct link *lk)
{
    if (!lk || !lk->started || lk->stopped)
        return;
    bool was_connected = mqtt_connected(lk->mqtt);
    lk->stopped = true;
    int r = mqtt_stop(lk->mqtt, LINK_STOP_TIMEOUT_MS);
    if (r == 0)
        say(lk, LOG_INFO, "mqtt: published offline and disconnected");
    else if (was_connected)
        say(lk, LOG_WARNING, "mqtt: \"offline\" not acknowledged (%s); the broker's will says it",
            strerror(-r));
    /* PUBACKs that came in meanwhile: those rows need not be sent again at the next start. */
    mqtt_dispatch(lk->mqtt);
    settle_acks(lk);
}

struct link *link_free(struct link *lk)
{
    if (!lk)
        return NULL;
    link_stop(lk);
    if (lk->fd_watched)
        loop_remove_fd(lk->loop, mqtt_fd(lk->mqtt));
    lk->timer = loop_timer_free(lk->timer);
    lk->mqtt = mqtt_free(lk->mqtt);
    free(lk->occupancy_key);
    for (size_t i = 0; i < lk->n_res; i++) {
        free(lk->res[i].state);
        free(lk->res[i].ha);
    }
    free(lk->res);
    for (size_t i = 0; i < lk->n_doors; i++)
        free(lk->doors[i].state);
    free(lk);
    return NULL;
}
