/* telecentred: the site daemon. One Manager-like struct owns every module and event source; modules
 * are started in order and stopped in reverse, and every exit path this process controls drives the
 * doors to their safe state before the GPIO lines are released. Only this file logs (plus the sim GPIO
 * backend, whose purpose is printing). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "config.h"
#include "door.h"
#include "gpio.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "reader.h"
#include "store.h"
#include "version.h"

#define SWEEP_INTERVAL_MS 60000u
/* Retention ([privacy] log_retention_days): at start, then once a day; one bounded purge step per loop
 * turn, so a tap never waits behind a whole purge. A failed run is tried again sooner. */
#define RETENTION_INTERVAL_MS (24u * 3600u * 1000u)
#define RETENTION_RETRY_MS (3600u * 1000u)
/* The test hook (TELECENTRED_TEST_HOOKS=1): SIGUSR2 stalls the loop this long by default. */
#define TEST_STALL_DEFAULT_S 5
/* The relay's pulse is bounded (gpio_set_bounded) at exactly unlock_ms, the door's own relock time, so
 * it can never outlive unlock_ms even if this loop stalls. In normal operation the loop relocks at the
 * same instant; when it comes more than this late, the stall is worth a warning. */
#define RELAY_LATE_WARNING_MS 20
#define DOOR_OUTPUT_COUNT (DOOR_OUTPUT_BUZZER + 1)
/* Decisions the database could not record (a full disk) wait in memory, at most this many (the oldest
 * are dropped beyond, and counted), and are written in order once a write works again, tried at every
 * tap and every STORAGE_RETRY_MS. */
#define BACKLOG_MAX 10000
#define STORAGE_RETRY_MS 5000u

struct daemon;
struct door_unit;

enum door_input_kind {
    DOOR_INPUT_CONTACT,
    DOOR_INPUT_EXIT_BUTTON,
};

/* The userdata of an input line: which door, and what the line means to it. */
struct door_input {
    struct door_unit *unit;
    enum door_input_kind kind;
    struct gpio_line *line;     /* NULL: not wired */
};

struct door_unit {
    struct daemon *daemon;
    const struct door_config *cfg;
    struct door *door;
    struct gpio_line *outputs[DOOR_OUTPUT_COUNT];   /* NULL: not wired */
    struct door_input contact;
    struct door_input exit_button;
    bool relay_on;              /* we energised the relay and have not turned it off since */
    uint64_t relay_deadline_ms; /* when its guard ends the pulse (monotonic) */
};

struct reader_unit {
    struct daemon *daemon;
    struct reader *reader;
    struct door_unit *door;
    bool decided;             /* the current tap reached a decision (tap_decided ran) */
    bool lost;                /* reported offline and not back yet */
};

enum broker_state {
    BROKER_OFF,                 /* MQTT off ([mqtt] host empty) */
    BROKER_CONNECTING,          /* started, no result yet */
    BROKER_CONNECTED,
    BROKER_UNREACHABLE,         /* lost, or an attempt failed: the link retries in the background */
};

struct daemon {
    const char *config_path;
    struct config cfg;
    bool has_exit_reader;
    struct store *store;
    struct gpio *gpio;
    struct door_unit doors[CONFIG_MAX_DOORS];
    size_t n_doors;
    struct reader_unit readers[CONFIG_MAX_READERS];
    size_t n_readers;
    struct loop *loop;
    struct loop_timer *door_timer;
    struct loop_timer *sweep_timer;
    struct link *link;          /* NULL: MQTT off ([mqtt] host empty) */
    enum broker_state broker;
    /* systemd (src/notify.h): the watchdog ping, from this loop only, and the last STATUS= sent */
    struct loop_timer *watchdog_timer;
    uint64_t watchdog_ms;       /* systemd's WatchdogSec in ms; 0: no watchdog */
    char status[256];
    bool serving;               /* READY=1 sent and no reload under way: STATUS= changes are sent */
    /* retention: a purge runs over several loop turns */
    struct loop_timer *retention_timer;
    bool purging;
    int64_t purge_before;
    struct store_purge_counts purged;
    bool fatal;                 /* a reload left nothing runnable: the loop quits, exit status 1 */
    /* storage faults (docs/reliability.md, "A full disk"): decided but not yet recorded */
    struct access_record *backlog;
    size_t n_backlog, cap_backlog;
    int64_t backlog_dropped;    /* since the fault began */
    int db_fault;               /* 0, or the negative errno of the last failed write */
    char db_fault_msg[300];     /* what health and the status say about it */
    struct loop_timer *storage_timer;
};

/* ---- systemd status ---- */

/* One line a person reads in `systemctl status`: "serving: 2 doors, 2 readers (1 lost), broker
 * connected, outbox 0". */
static void format_status(struct daemon *dm, char *out, size_t size)
{
    size_t lost = 0;
    for (size_t i = 0; i < dm->n_readers; i++)
        lost += dm->readers[i].lost;
    char lost_text[32] = "";
    if (lost)
        snprintf(lost_text, sizeof lost_text, " (%zu lost)", lost);
    const char *broker = "MQTT off";
    switch (dm->broker) {
    case BROKER_OFF:
        break;
    case BROKER_CONNECTING:
        broker = "broker connecting";
        break;
    case BROKER_CONNECTED:
        broker = "broker connected";
        break;
    case BROKER_UNREACHABLE:
        broker = "broker unreachable";
        break;
    }
    char outbox[48] = "";
    struct outbox_stats os;
    if (dm->broker != BROKER_OFF && dm->store && store_outbox_stats(dm->store, &os) == 0)
        snprintf(outbox, sizeof outbox, ", outbox %lld", (long long)os.depth);
    char storage[96] = "";
    if (dm->db_fault)
        snprintf(storage, sizeof storage, ", DATABASE NOT WRITABLE: %s, %zu decision%s unrecorded",
                 strerror(-dm->db_fault), dm->n_backlog, dm->n_backlog == 1 ? "" : "s");
    snprintf(out, size, "serving: %zu door%s, %zu reader%s%s, %s%s%s", dm->n_doors, dm->n_doors == 1 ? "" : "s",
             dm->n_readers, dm->n_readers == 1 ? "" : "s", lost_text, broker, outbox, storage);
}

/* STATUS= when the line changed (reader lost or back, broker up or down, the outbox at each sweep). */
static void status_update(struct daemon *dm)
{
    if (!dm->serving)
        return;                 /* READY=1 will carry it */
    char now[sizeof dm->status];
    format_status(dm, now, sizeof now);
    if (strcmp(now, dm->status) == 0)
        return;
    snprintf(dm->status, sizeof dm->status, "%s", now);
    int r = notify_status("%s", now);
    if (r < 0)
        log_debug("sd_notify STATUS: %s", strerror(-r));
}

static void notify_serving(struct daemon *dm)
{
    format_status(dm, dm->status, sizeof dm->status);
    dm->serving = true;
    int r = notify_ready(dm->status);
    if (r < 0)
        log_warn("sd_notify READY=1: %s", strerror(-r));
}

/* ---- doors ---- */

static const char *output_name(enum door_output output)
{
    switch (output) {
    case DOOR_OUTPUT_RELAY:
        return "relay";
    case DOOR_OUTPUT_LED_GREEN:
        return "led_green";
    case DOOR_OUTPUT_LED_RED:
        return "led_red";
    case DOOR_OUTPUT_BUZZER:
        return "buzzer";
    }
    return "output";
}

static void door_unit_set_output(void *userdata, enum door_output output, bool on)
{
    struct door_unit *u = userdata;
    struct gpio_line *line = u->outputs[output];
    if (!line)
        return;
    int r;
    if (output == DOOR_OUTPUT_RELAY && on) {
        /* Bounded: a guard thread ends the pulse even if this loop stalls. */
        r = gpio_set_bounded(line, u->cfg->unlock_ms);
        u->relay_on = r >= 0;
        u->relay_deadline_ms = clock_mono_ms() + (uint64_t)u->cfg->unlock_ms;
    } else {
        uint64_t now = clock_mono_ms();
        if (output == DOOR_OUTPUT_RELAY && u->relay_on && !gpio_get(line) &&
            now > u->relay_deadline_ms + RELAY_LATE_WARNING_MS)
            log_warn("door %s: event loop %llu ms late; the relay guard had ended the pulse on time",
                     u->cfg->name, (unsigned long long)(now - u->relay_deadline_ms));
        if (output == DOOR_OUTPUT_RELAY)
            u->relay_on = false;
        r = gpio_set(line, on);
    }
    if (r < 0)
        log_err("door %s: cannot set %s (%s) to %d: %s", u->cfg->name, output_name(output),
                gpio_line_name(line), on, strerror(-r));
}

/* After a grant or an exit-button press. The door extends a pulse that is already running without
 * calling set_output (nothing changes at the relay), so the guard's deadline is moved along here:
 * both are now + unlock_ms. */
static void door_unit_relay_rearm(struct door_unit *u)
{
    struct gpio_line *line = u->outputs[DOOR_OUTPUT_RELAY];
    if (!line || !door_relay_on(u->door))
        return;
    int r = gpio_set_bounded(line, u->cfg->unlock_ms);
    if (r < 0) {
        log_err("door %s: cannot set relay (%s) to 1: %s", u->cfg->name, gpio_line_name(line), strerror(-r));
    } else {
        u->relay_on = true;
        u->relay_deadline_ms = clock_mono_ms() + (uint64_t)u->cfg->unlock_ms;
    }
}

static void door_unit_state_changed(void *userdata, enum door_state from, enum door_state to,
                                    const char *cause)
{
    struct door_unit *u = userdata;
    log_info("door %s: %s -> %s (%s)", u->cfg->name, door_state_name(from), door_state_name(to), cause);
    switch (to) {
    case DOOR_HELD_OPEN:
    case DOOR_FORCED:
        log_warn("alarm: door %s %s", u->cfg->name, door_state_name(to));
        break;
    case DOOR_LOCKED:
    case DOOR_UNLOCKED:
    case DOOR_OPEN:
        break;
    }
    /* MQTT: the retained door state, and alarms as events (active when the door enters forced or
     * held_open, inactive when it leaves). The link never affects the door. */
    struct link *lk = u->daemon->link;
    link_door_state(lk, u->cfg->name, to, clock_now(NULL));
    if ((from == DOOR_HELD_OPEN || from == DOOR_FORCED) && from != to)
        link_alarm(lk, door_state_name(from), false, u->cfg->name, NULL, NULL);
    if (to == DOOR_HELD_OPEN || to == DOOR_FORCED)
        link_alarm(lk, door_state_name(to), true, u->cfg->name, NULL, NULL);
}

static const struct door_ops door_unit_ops = {
    .set_output = door_unit_set_output,
    .state_changed = door_unit_state_changed,
};

/* The one door timer is re-armed for the earliest deadline of any door after every event. */
static void door_timer_follow(struct daemon *dm)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < dm->n_doors; i++) {
        uint64_t d = door_next_deadline(dm->doors[i].door);
        if (d < next)
            next = d;
    }
    uint64_t at = next == UINT64_MAX ? 0 : (next ? next : 1);   /* 0 would disarm */
    int r = loop_timer_arm(dm->door_timer, at);
    if (r < 0)
        log_err("cannot arm the door timer: %s", strerror(-r));
}

static void door_timer_fired(struct loop_timer *t, void *userdata)
{
    struct daemon *dm = userdata;
    uint64_t now = clock_mono_ms();
    for (size_t i = 0; i < dm->n_doors; i++)
        door_tick(dm->doors[i].door, now);
    door_timer_follow(dm);
}

static int request_output(struct door_unit *u, enum door_output output, const char *line, bool active_low)
{
    if (!*line)
        return 0;
    /* Requested already off: the safe state holds from the first instant, before the door exists. */
    int r = gpio_request_output(u->daemon->gpio, line, active_low, false, &u->outputs[output]);
    if (r < 0)
        log_err("door %s: cannot request output %s (%s): %s", u->cfg->name, output_name(output), line,
                strerror(-r));
    return r;
}

static int request_input(struct door_unit *u, struct door_input *in, enum door_input_kind kind,
                         const char *line_name, bool active_low)
{
    if (!*line_name)
        return 0;
    struct gpio_line *line;
    int r = gpio_request_input(u->daemon->gpio, line_name, active_low, u->cfg->debounce_ms, &line);
    if (r < 0) {
        log_err("door %s: cannot request input %s: %s", u->cfg->name, line_name, strerror(-r));
        return r;
    }
    *in = (struct door_input){.unit = u, .kind = kind, .line = line};
    gpio_line_set_userdata(line, in);
    return 0;
}

static int door_unit_start(struct daemon *dm, struct door_unit *u, const struct door_config *dc)
{
    u->daemon = dm;
    u->cfg = dc;
    int r;
    if ((r = request_output(u, DOOR_OUTPUT_RELAY, dc->relay, dc->relay_active_low)) < 0 ||
        (r = request_output(u, DOOR_OUTPUT_LED_GREEN, dc->led_green, false)) < 0 ||
        (r = request_output(u, DOOR_OUTPUT_LED_RED, dc->led_red, false)) < 0 ||
        (r = request_output(u, DOOR_OUTPUT_BUZZER, dc->buzzer, false)) < 0 ||
        (r = request_input(u, &u->contact, DOOR_INPUT_CONTACT, dc->contact, dc->contact_active_low)) < 0 ||
        (r = request_input(u, &u->exit_button, DOOR_INPUT_EXIT_BUTTON, dc->rex, dc->rex_active_low)) < 0)
        return r;

    struct door_params params;
    door_params_defaults(&params);
    params.unlock_ms = dc->unlock_ms;
    params.held_open_s = dc->held_open_s;
    params.has_contact = dc->contact[0] != '\0';
    u->door = door_new(dc->name, &params, &door_unit_ops, u);
    if (!u->door) {
        r = -errno;
        log_err("door %s: %s", dc->name, strerror(errno));
        return r;
    }
    return 0;
}

/* ---- GPIO inputs ---- */

static void gpio_input_changed(struct gpio_line *line, bool value, void *userdata)
{
    struct daemon *dm = userdata;
    struct door_input *in = gpio_line_userdata(line);
    if (!in)
        return;
    uint64_t now = clock_mono_ms();
    switch (in->kind) {
    case DOOR_INPUT_CONTACT:
        log_debug("door %s: contact %s", in->unit->cfg->name, value ? "open" : "closed");
        door_contact(in->unit->door, value, now);
        break;
    case DOOR_INPUT_EXIT_BUTTON:
        log_debug("door %s: exit button %s", in->unit->cfg->name, value ? "pressed" : "released");
        door_exit_button(in->unit->door, value, now);
        if (value)
            door_unit_relay_rearm(in->unit);
        break;
    }
    door_timer_follow(dm);
}

static void gpio_problem(const char *message, void *userdata)
{
    log_warn("%s", message);
}

static void gpio_readable(int fd, uint32_t events, void *userdata)
{
    struct daemon *dm = userdata;
    int r = gpio_dispatch(dm->gpio);
    if (r < 0) {
        /* Reading again would fail the same way, in a busy loop; the outputs still work. */
        log_err("gpio: reading inputs failed: %s; contact and exit button disabled", strerror(-r));
        loop_remove_fd(dm->loop, fd);
    }
}

/* ---- readers and access ---- */

/* event: the seq of its MQTT event in the outbox (0: none, MQTT off). The line is written after the
 * commit: a tap logged here is on disk (tests/integration/crash_kill.sh relies on it). */
static void log_access(const struct access_record *rec, int64_t event)
{
    char member[ID_MAX + 8] = "";
    char booking[40] = "";
    if (rec->member_id[0])
        snprintf(member, sizeof(member), " member=%s", rec->member_id);
    if (rec->booking_id)
        snprintf(booking, sizeof(booking), " booking=b-%lld", (long long)rec->booking_id);
    char by[ID_MAX + 8] = "";
    if (rec->requested_by[0])
        snprintf(by, sizeof(by), " by=%s", rec->requested_by);
    char ev[32] = "";
    if (event)
        snprintf(ev, sizeof(ev), " event=%lld", (long long)event);
    log_info("access seq=%lld door=%s reader=%s %s %s %s%s%s%s%s", (long long)rec->seq, rec->door, rec->reader,
             direction_name(rec->direction), access_result_name(rec->result),
             access_reason_name(rec->reason), member, booking, by, ev);
}

/* The door acts as soon as the decision is known, before the commit's fsync: durability follows. */
static void tap_decided(const struct decision *d, const struct access_record *rec, void *userdata)
{
    struct reader_unit *ru = userdata;
    ru->decided = true;
    if (d->result == ACCESS_GRANTED) {
        door_grant(ru->door->door, clock_mono_ms());
        door_unit_relay_rearm(ru->door);
    } else {
        door_deny(ru->door->door, clock_mono_ms());
    }
}

/* ---- storage faults: decisions kept in memory until the database can record them ---- */

/* The fault as the status line, health and its log line say it. */
static void storage_report(struct daemon *dm)
{
    status_update(dm);
    link_database_status(dm->link, dm->db_fault ? dm->db_fault_msg : NULL);
    link_database_backlog(dm->link, (int64_t)dm->n_backlog);
}

/* A write failed with err: the first failure of a fault says so loudly, once. */
static void storage_fault(struct daemon *dm, int err)
{
    const char *why = store_errmsg(dm->store);
    char detail[200] = "";
    if (why && *why)
        snprintf(detail, sizeof detail, " (%s)", why);
    if (dm->db_fault != err)
        log_err("database %s: %s%s: doors are still decided; decisions are kept in memory (up to %d) and "
                "written once the database can be written again", dm->cfg.db_path, strerror(-err), detail,
                BACKLOG_MAX);
    dm->db_fault = err;
    /* A long path is cut here (health, status): the log line above has it whole. */
    snprintf(dm->db_fault_msg, sizeof dm->db_fault_msg, "%.120s: %s%.120s", dm->cfg.db_path, strerror(-err), detail);
    int r = loop_timer_arm_in(dm->storage_timer, STORAGE_RETRY_MS);
    if (r < 0)
        log_err("cannot arm the storage timer: %s", strerror(-r));
}

static void backlog_add(struct daemon *dm, const struct access_record *rec)
{
    if (dm->n_backlog == BACKLOG_MAX) {
        memmove(dm->backlog, dm->backlog + 1, (BACKLOG_MAX - 1) * sizeof dm->backlog[0]);
        dm->n_backlog--;
        if (dm->backlog_dropped++ == 0)
            log_err("database %s: %d decisions wait to be recorded: the oldest are dropped from now on",
                    dm->cfg.db_path, BACKLOG_MAX);
    }
    if (dm->n_backlog == dm->cap_backlog) {
        size_t cap = dm->cap_backlog ? dm->cap_backlog * 2 : 64;
        if (cap > BACKLOG_MAX)
            cap = BACKLOG_MAX;
        struct access_record *b = realloc(dm->backlog, cap * sizeof *b);
        if (!b) {
            dm->backlog_dropped++;
            log_err("database %s: cannot keep a decision in memory: %s", dm->cfg.db_path, strerror(ENOMEM));
            return;
        }
        dm->backlog = b;
        dm->cap_backlog = cap;
    }
    dm->backlog[dm->n_backlog++] = *rec;
}

/* Writes what waits, oldest first, each as its access-log row and event; stops at the first failure.
 * With nothing waiting but a fault standing (a full disk met at start, or by a write other than a
 * decision's), a small write tells whether the database takes writes again. True when the fault is
 * over. */
static bool backlog_flush(struct daemon *dm)
{
    if (!dm->db_fault && !dm->n_backlog)
        return true;
    int64_t outbox_max = dm->link ? dm->cfg.mqtt.outbox_max : 0;
    size_t done = 0;
    int r = 0;
    while (done < dm->n_backlog) {
        int64_t event = 0;
        r = access_record_late(dm->store, &dm->backlog[done], outbox_max, &event);
        if (r < 0)
            break;
        log_access(&dm->backlog[done], event);
        done++;
    }
    if (r == 0 && done == 0) {
        char now[32];
        snprintf(now, sizeof now, "%lld", (long long)clock_now(NULL));
        r = store_meta_set(dm->store, "storage_checked_at", now);
    }
    if (done) {
        memmove(dm->backlog, dm->backlog + done, (dm->n_backlog - done) * sizeof dm->backlog[0]);
        dm->n_backlog -= done;
    }
    if (r < 0) {
        storage_fault(dm, r);
        storage_report(dm);
        return false;
    }
    log_notice("database %s: writable again; %zu decision%s taken meanwhile written to the access log%s", dm->cfg.db_path,
               done, done == 1 ? "" : "s", dm->backlog_dropped ? " (the oldest were dropped: see above)" : "");
    if (store_exclusive(dm->store))
        log_warn("database %s: opened in exclusive mode (the disk was full at start): telecentrectl cannot use "
                 "it until telecentred is restarted", dm->cfg.db_path);
    dm->db_fault = 0;
    dm->backlog_dropped = 0;
    loop_timer_arm(dm->storage_timer, 0);
    storage_report(dm);
    link_changed(dm->link);
    return true;
}

static void storage_timer_fired(struct loop_timer *t, void *userdata)
{
    backlog_flush(userdata);
}

/* A decision acted on but not recorded (err from access_decide or access_remote_unlock). */
static void decision_unrecorded(struct daemon *dm, const struct decision *d, struct access_record *rec, int err)
{
    if (d->create_walk_in)
        rec->booking_id = 0;    /* the walk-in's booking was rolled back with the row */
    storage_fault(dm, err);
    backlog_add(dm, rec);
    char member[ID_MAX + 8] = "";
    if (rec->member_id[0])
        snprintf(member, sizeof(member), " member=%s", rec->member_id);
    log_err("access door=%s reader=%s %s %s %s%s: NOT RECORDED yet, kept in memory (%zu waiting): %s", rec->door,
            rec->reader, direction_name(rec->direction), access_result_name(rec->result),
            access_reason_name(rec->reason), member, dm->n_backlog, strerror(-err));
    storage_report(dm);
}

static void reader_tapped(struct reader *r, const char *uid, void *userdata)
{
    struct reader_unit *ru = userdata;
    struct daemon *dm = ru->daemon;
    const struct reader_config *rc = reader_config(r);
    log_debug("reader %s: tap %s", rc->name, uid);

    int64_t event_seq = 0;
    struct access_request req = {
        .uid = uid,
        .door = ru->door->cfg->name,
        .reader = rc->name,
        .direction = rc->direction,
        .now = clock_now(NULL),
        .has_exit_reader = dm->has_exit_reader,
        .on_decided = tap_decided,
        .userdata = ru,
        .outbox_max = dm->link ? dm->cfg.mqtt.outbox_max : 0,
        .event_seq = &event_seq,
    };
    struct decision d;
    struct access_record rec;
    ru->decided = false;
    /* What waits is written first, so that the access log keeps the order of the decisions. */
    backlog_flush(dm);
    int err = access_decide(dm->store, &dm->cfg.policy, &req, true, &d, &rec);
    if (err < 0 && !ru->decided) {
        /* Fail secure: without the database there is no way to know who may enter. */
        door_deny(ru->door->door, clock_mono_ms());
        log_err("access door=%s reader=%s %s denied: database error: %s (%s)", req.door, req.reader,
                direction_name(req.direction), strerror(-err), store_errmsg(dm->store));
    } else if (err < 0) {
        /* Decided and acted on, but not recorded (disk full, I/O error): kept for later, said loudly. */
        decision_unrecorded(dm, &d, &rec, err);
    } else {
        log_access(&rec, event_seq);
    }
    door_timer_follow(dm);
    /* After the door acted: publishing waits for it, never the other way round. */
    if (!dm->db_fault)
        link_database_status(dm->link, err < 0 ? store_errmsg(dm->store) : NULL);
    link_changed(dm->link);
}

static void reader_problem(struct reader *r, int err, const char *raw, void *userdata)
{
    const char *name = reader_config(r)->name;
    switch (err) {
    case -EINVAL:
        log_warn("reader %s: ignored a malformed badge UID", name);
        log_debug("reader %s: malformed input \"%s\"", name, raw ? raw : "");
        break;
    case -EMSGSIZE:
        log_warn("reader %s: ignored an input line too long to be a badge UID", name);
        break;
    default:
        log_err("reader %s: %s", name, strerror(-err));
        break;
    }
}

/* The backend reports changes only; one line each way, so an unplugged reader never floods the log. */
static void reader_health_changed(struct reader *r, enum reader_health health, const char *detail,
                                  void *userdata)
{
    struct reader_unit *ru = userdata;
    const char *name = reader_config(r)->name;
    switch (health) {
    case READER_OFFLINE:
        if (!ru->lost) {
            log_warn("reader %s: lost (%s)", name, detail ? detail : "");
            link_reader_health(ru->daemon->link, name, false);
            link_alarm(ru->daemon->link, "reader_offline", true, NULL, name, detail);
        }
        ru->lost = true;
        status_update(ru->daemon);
        break;
    case READER_ONLINE:
        if (ru->lost) {
            log_notice("reader %s: back in service", name);
            link_reader_health(ru->daemon->link, name, true);
            link_alarm(ru->daemon->link, "reader_offline", false, NULL, name, NULL);
        } else {
            log_info("reader %s: in service (%s)", name, detail ? detail : "");
        }
        ru->lost = false;
        status_update(ru->daemon);
        break;
    }
}

static void reader_card_removed(struct reader *r, void *userdata)
{
    log_debug("reader %s: card removed", reader_config(r)->name);
}

static void reader_readable(int fd, uint32_t events, void *userdata)
{
    struct reader_unit *ru = userdata;
    int r = reader_dispatch(ru->reader);
    if (r < 0) {
        log_err("reader %s: read failed: %s; reader disabled", reader_config(ru->reader)->name,
                strerror(-r));
        loop_remove_fd(ru->daemon->loop, fd);
    }
}

static struct door_unit *find_door_unit(struct daemon *dm, const char *name)
{
    for (size_t i = 0; i < dm->n_doors; i++)
        if (strcmp(dm->doors[i].cfg->name, name) == 0)
            return &dm->doors[i];
    return NULL;
}

/* ---- MQTT ---- */

static void unlock_decided(const struct decision *d, const struct access_record *rec, void *userdata)
{
    struct door_unit *u = userdata;
    door_grant(u->door, clock_mono_ms());
    door_unit_relay_rearm(u);
}

/* A remote unlock the link has checked (not retained, fresh, this door, a valid "by"): granted like a
 * badge, one access-log row with who asked, and its event. */
static void remote_unlock(void *userdata, const char *door, const char *by)
{
    struct daemon *dm = userdata;
    struct door_unit *u = find_door_unit(dm, door);
    if (!u)
        return;
    int64_t event_seq = 0;
    struct access_request req = {
        .door = u->cfg->name,
        .reader = "",
        .direction = DIRECTION_IN,
        .now = clock_now(NULL),
        .on_decided = unlock_decided,
        .userdata = u,
        .outbox_max = dm->cfg.mqtt.outbox_max,
        .event_seq = &event_seq,
    };
    struct access_record rec;
    backlog_flush(dm);
    int err = access_remote_unlock(dm->store, &req, by, &rec);
    door_timer_follow(dm);
    if (err == -EINVAL) {
        log_err("access door=%s remote granted by=%s: refused: %s", u->cfg->name, by, strerror(-err));
    } else if (err < 0) {
        struct decision d = {.result = ACCESS_GRANTED, .reason = REASON_REMOTE};
        decision_unrecorded(dm, &d, &rec, err);
    } else {
        log_access(&rec, event_seq);
    }
    if (!dm->db_fault)
        link_database_status(dm->link, err < 0 ? store_errmsg(dm->store) : NULL);
}

static void link_log(void *userdata, int priority, const char *line)
{
    log_msg(priority, "%s", line);
}

static void link_connection(void *userdata, bool up)
{
    struct daemon *dm = userdata;
    dm->broker = up ? BROKER_CONNECTED : BROKER_UNREACHABLE;
    status_update(dm);
}

static const struct link_ops daemon_link_ops = {
    .unlock = remote_unlock,
    .log = link_log,
    .connection = link_connection,
};

/* MQTT on when [mqtt] host is set. A password file or TLS file that cannot be used is a start error; a
 * broker that is away is not (the link connects in the background). */
static int daemon_start_link(struct daemon *dm)
{
    if (!dm->cfg.mqtt.host[0])
        return 0;
    char err[1024];
    int r = link_new(&dm->cfg, dm->store, dm->loop, NULL, &daemon_link_ops, dm, &dm->link, err, sizeof(err));
    if (r < 0) {
        log_err("%s", err);
        return r;
    }
    int64_t now = clock_now(NULL);
    for (size_t i = 0; i < dm->n_doors; i++)
        link_door_state(dm->link, dm->doors[i].cfg->name, door_state(dm->doors[i].door), now);
    return 0;
}

static int reader_unit_start(struct daemon *dm, struct reader_unit *ru, const struct reader_config *rc)
{
    ru->daemon = dm;
    ru->door = find_door_unit(dm, rc->door);
    if (!ru->door) {
        log_err("reader %s: no door %s", rc->name, rc->door);
        return -EINVAL;
    }
    int r = reader_open(rc, reader_tapped, ru, &ru->reader);
    if (r == -ENOTSUP) {
        log_err("reader %s: driver libnfc: built without libnfc support", rc->name);
        return r;
    }
    if (r < 0) {
        log_err("reader %s: cannot open %s: %s", rc->name,
                rc->driver == READER_DRIVER_SIM ? rc->fifo : rc->connstring, strerror(-r));
        return r;
    }
    reader_set_problem_cb(ru->reader, reader_problem);
    reader_set_health_cb(ru->reader, reader_health_changed);
    reader_set_removed_cb(ru->reader, reader_card_removed);
    return 0;
}

/* ---- housekeeping ---- */

static void sweep(struct daemon *dm)
{
    int r = access_sweep(dm->store, &dm->cfg.policy, clock_now(NULL));
    if (r < 0)
        log_err("sweep: releasing no-show bookings failed: %s (%s)", strerror(-r), store_errmsg(dm->store));
    else if (r > 0)
        log_info("released %d no-show booking%s", r, r == 1 ? "" : "s");
    link_changed(dm->link);
    status_update(dm);      /* the outbox depth, once a minute */
}

static void sweep_timer_fired(struct loop_timer *t, void *userdata)
{
    struct daemon *dm = userdata;
    sweep(dm);
    int r = loop_timer_arm_in(t, clock_timer_ms(SWEEP_INTERVAL_MS));
    if (r < 0)
        log_err("cannot arm the sweep timer: %s", strerror(-r));
}

/* Access-log rows and ended presence older than log_retention_days. One step (STORE_PURGE_BATCH rows,
 * one short transaction) per firing; the timer fires again at once while rows remain, so taps and the
 * watchdog go in between the steps. */
static void retention_timer_fired(struct loop_timer *t, void *userdata)
{
    struct daemon *dm = userdata;
    int days = dm->cfg.log_retention_days;
    if (!dm->purging) {
        dm->purging = true;
        dm->purge_before = clock_now(NULL) - (int64_t)days * 86400;
        dm->purged = (struct store_purge_counts){0};
    }
    int r = store_purge_step(dm->store, dm->purge_before, STORE_PURGE_BATCH, &dm->purged);
    if (r == 1) {
        r = loop_timer_arm(t, 1);   /* an instant long past: due at once */
        if (r == 0)
            return;
        log_err("retention: cannot arm its timer: %s", strerror(-r));
    }
    dm->purging = false;
    uint64_t next = clock_timer_ms(RETENTION_INTERVAL_MS);     /* a simulated day under the test clock */
    if (r < 0) {
        log_err("retention: purging rows older than %d days failed: %s (%s); purged %lld access-log and "
                "%lld presence rows before that; trying again in an hour",
                days, strerror(-r), store_errmsg(dm->store), (long long)dm->purged.access_log,
                (long long)dm->purged.presence);
        next = clock_timer_ms(RETENTION_RETRY_MS);
    } else {
        log_info("retention: purged %lld access-log row%s and %lld presence row%s older than %d day%s",
                 (long long)dm->purged.access_log, dm->purged.access_log == 1 ? "" : "s",
                 (long long)dm->purged.presence, dm->purged.presence == 1 ? "" : "s", days,
                 days == 1 ? "" : "s");
    }
    r = loop_timer_arm_in(t, next);
    if (r < 0)
        log_err("retention: cannot arm its timer: %s", strerror(-r));
}

/* A purge now, from the start (at start, and after a reload that changed the database or the period). */
static void retention_restart(struct daemon *dm)
{
    dm->purging = false;
    int r = loop_timer_arm(dm->retention_timer, 1);
    if (r < 0)
        log_err("retention: cannot arm its timer: %s", strerror(-r));
}

/* WATCHDOG=1 at half systemd's interval, from a timer of this loop: a loop that stalls (a blocking call
 * that never returns, a busy callback) stops pinging and systemd restarts the daemon. */
static void watchdog_timer_fired(struct loop_timer *t, void *userdata)
{
    struct daemon *dm = userdata;
    int r = notify_watchdog();
    if (r < 0)
        log_debug("sd_notify WATCHDOG=1: %s", strerror(-r));
    uint64_t half = dm->watchdog_ms / 2;
    r = loop_timer_arm_in(t, half ? half : 1);
    if (r < 0)
        log_err("cannot arm the watchdog timer: %s", strerror(-r));
}

/* ---- start and stop ---- */

/* config_load() leaves process state alone, so the timezone is only checked against the zone files
 * there; tz_set() is what really selects it. A one-line message in err on failure. */
static int load_config(const char *path, struct config *cfg, char *err, size_t errlen)
{
    int r = config_load(path, cfg, err, errlen);
    if (r < 0)
        return r;
    r = tz_set(cfg->timezone);
    if (r < 0)
        snprintf(err, errlen, "%s: [site] timezone: cannot use '%s': %s", path, cfg->timezone, strerror(-r));
    return r;
}

static int open_store(const struct config *cfg, struct store **out)
{
    bool db_existed = access(cfg->db_path, F_OK) == 0;
    char why[512];
    int r = store_open_ex(cfg->db_path, STORE_CREATE | STORE_EXCLUSIVE_IF_FULL, out, why, sizeof(why));
    if (r < 0) {
        log_err("database %s: %s", cfg->db_path, why);
        return r;
    }
    if (!db_existed)
        log_notice("created a new database at %s", cfg->db_path);
    struct stat sb;
    if (stat(cfg->db_path, &sb) == 0 && (sb.st_mode & (S_IRWXG | S_IRWXO)))
        log_warn("database %s is open to %s (mode %04o): it holds personal data; chmod 600 it and its -wal and "
                 "-shm files", cfg->db_path, (sb.st_mode & S_IRWXO) ? "others" : "its group",
                 (unsigned)(sb.st_mode & 07777));
    int old_version = 0;
    const char *copy = store_migration_backup(*out, &old_version);
    if (copy)
        log_notice("database %s: migrated from schema %d to %d; the old one is kept as %s", cfg->db_path,
                   old_version, STORE_SCHEMA_VERSION, copy);
    if (store_exclusive(*out))
        log_err("database %s: %s: no room for its shared-memory file: opened in exclusive mode (doors are "
                "decided; telecentrectl cannot use the database until telecentred is restarted with space free)",
                cfg->db_path, strerror(ENOSPC));
    return 0;
}

/* The doors, GPIO, readers and MQTT link of dm->cfg: everything a reload rebuilds. On failure the
 * caller runs daemon_stop_units(), which undoes whatever was started. */
static int daemon_start_units(struct daemon *dm)
{
    const struct config *cfg = &dm->cfg;
    dm->has_exit_reader = config_has_exit_reader(cfg);
    int r = gpio_open(cfg->gpio_driver, cfg->gpio_driver == GPIO_DRIVER_SIM ? cfg->gpio_fifo : NULL,
                      gpio_input_changed, dm, &dm->gpio);
    if (r == -ENOTSUP) {
        log_err("gpio: driver gpiod: built without libgpiod support");
        return r;
    }
    if (r == -ENODEV && cfg->gpio_driver == GPIO_DRIVER_GPIOD) {
        log_err("gpio: driver gpiod: no GPIO chip on this machine (no /dev/gpiochip*)");
        return r;
    }
    if (r < 0) {
        if (cfg->gpio_driver == GPIO_DRIVER_SIM)
            log_err("gpio: cannot open the sim FIFO %s: %s", cfg->gpio_fifo, strerror(-r));
        else
            log_err("gpio: cannot open the gpiod driver: %s", strerror(-r));
        return r;
    }
    gpio_set_problem_cb(dm->gpio, gpio_problem);
    int fd = gpio_fd(dm->gpio);
    if (fd >= 0 && (r = loop_add_fd(dm->loop, fd, EPOLLIN, gpio_readable, dm)) < 0) {
        log_err("gpio: cannot watch inputs: %s", strerror(-r));
        return r;
    }

    for (size_t i = 0; i < cfg->n_doors; i++) {
        r = door_unit_start(dm, &dm->doors[i], &cfg->doors[i]);
        if (dm->doors[i].door)
            dm->n_doors = i + 1;
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < cfg->n_readers; i++) {
        struct reader_unit *ru = &dm->readers[i];
        r = reader_unit_start(dm, ru, &cfg->readers[i]);
        if (r < 0)
            return r;
        dm->n_readers = i + 1;
        fd = reader_fd(ru->reader);
        if (fd >= 0 && (r = loop_add_fd(dm->loop, fd, EPOLLIN, reader_readable, ru)) < 0) {
            log_err("reader %s: cannot watch: %s", cfg->readers[i].name, strerror(-r));
            return r;
        }
    }
    r = daemon_start_link(dm);
    if (r < 0)
        return r;

    /* A door already open when we start was opened without us: treat it as forced. */
    uint64_t now = clock_mono_ms();
    for (size_t i = 0; i < dm->n_doors; i++) {
        struct door_unit *u = &dm->doors[i];
        if (u->contact.line && gpio_get(u->contact.line))
            door_contact(u->door, true, now);
    }
    door_timer_follow(dm);
    if (dm->link) {
        r = link_start(dm->link);
        if (r < 0) {
            log_err("mqtt: cannot start: %s", strerror(-r));
            return r;
        }
        dm->broker = BROKER_CONNECTING;
        log_info("mqtt: connecting to %s:%d in the background", cfg->mqtt.host, cfg->mqtt.port);
    }
    return 0;
}

/* Reverse order of daemon_start_units(), for a stop, a reload and a start that failed half-way. Doors
 * first: door_free() drives every output off (door_make_safe) while the lines are still held, which also
 * cancels a running relay guard; then the lines are released. A door whose start failed after its
 * outputs were requested has no door object, but its outputs were requested off and never set. */
static void daemon_stop_units(struct daemon *dm)
{
    /* "offline" first (bounded wait), while the doors are still held; the link never touches them. */
    link_stop(dm->link);
    for (size_t i = 0; i < dm->n_doors; i++)
        dm->doors[i].door = door_free(dm->doors[i].door);
    /* Out of the loop before closing: a later fd with the same number must not meet a stale watch. */
    int fd = dm->gpio ? gpio_fd(dm->gpio) : -1;
    if (fd >= 0)
        loop_remove_fd(dm->loop, fd);
    dm->gpio = gpio_close(dm->gpio);
    for (size_t i = 0; i < dm->n_readers; i++) {
        struct reader_unit *ru = &dm->readers[i];
        fd = ru->reader ? reader_fd(ru->reader) : -1;
        if (fd >= 0)
            loop_remove_fd(dm->loop, fd);
        ru->reader = reader_close(ru->reader);
    }
    dm->link = link_free(dm->link);     /* before the loop: it watches the transport there */
    dm->broker = BROKER_OFF;
    memset(dm->doors, 0, sizeof dm->doors);
    memset(dm->readers, 0, sizeof dm->readers);
    dm->n_doors = dm->n_readers = 0;
    if (dm->door_timer)
        loop_timer_arm(dm->door_timer, 0);
}

/* Appends "; item" (or "item" first) to a summary. */
static void add_change(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_change(char *out, size_t size, const char *fmt, ...)
{
    size_t len = strlen(out);
    if (len + 3 >= size)
        return;
    if (len) {
        memcpy(out + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + len, size - len, fmt, ap);
    va_end(ap);
}

/* What a reload changes, at a high level, for its log line. Both configurations come from
 * config_load(), which zeroes the whole struct first, so comparing sections byte for byte is exact. */
static void describe_changes(const struct config *a, const struct config *b, char *out, size_t size)
{
    out[0] = '\0';
    if (strcmp(a->site_id, b->site_id) != 0 || strcmp(a->site_name, b->site_name) != 0)
        add_change(out, size, "site");
    if (strcmp(a->timezone, b->timezone) != 0)
        add_change(out, size, "timezone %s -> %s", a->timezone, b->timezone);
    if (strcmp(a->db_path, b->db_path) != 0)
        add_change(out, size, "database %s -> %s", a->db_path, b->db_path);
    if (memcmp(&a->policy, &b->policy, sizeof a->policy) != 0)
        add_change(out, size, "hours and policy");
    for (size_t i = 0; i < b->n_doors; i++) {
        const struct door_config *d = config_find_door(a, b->doors[i].name);
        if (!d)
            add_change(out, size, "door %s added", b->doors[i].name);
        else if (memcmp(d, &b->doors[i], sizeof *d) != 0)
            add_change(out, size, "door %s changed", b->doors[i].name);
    }
    for (size_t i = 0; i < a->n_doors; i++)
        if (!config_find_door(b, a->doors[i].name))
            add_change(out, size, "door %s removed", a->doors[i].name);
    for (size_t i = 0; i < b->n_readers; i++) {
        const struct reader_config *rc = config_find_reader(a, b->readers[i].name);
        if (!rc)
            add_change(out, size, "reader %s added", b->readers[i].name);
        else if (memcmp(rc, &b->readers[i], sizeof *rc) != 0)
            add_change(out, size, "reader %s changed", b->readers[i].name);
    }
    for (size_t i = 0; i < a->n_readers; i++)
        if (!config_find_reader(b, a->readers[i].name))
            add_change(out, size, "reader %s removed", a->readers[i].name);
    if (a->gpio_driver != b->gpio_driver || strcmp(a->gpio_fifo, b->gpio_fifo) != 0)
        add_change(out, size, "gpio");
    if (memcmp(&a->mqtt, &b->mqtt, sizeof a->mqtt) != 0)
        add_change(out, size, "mqtt");
    if (a->log_retention_days != b->log_retention_days)
        add_change(out, size, "log_retention_days %d -> %d", a->log_retention_days, b->log_retention_days);
    if (!out[0])
        snprintf(out, size, "no change");
}

/* SIGHUP. The new file is checked whole first: a bad one changes nothing. A good one is applied by a
 * rebuild: every door output safe and every line released (daemon_stop_units, as on a stop: a pulse in
 * progress ends, nothing is ever driven to "unlocked"), then the doors, GPIO, readers and link started
 * from the new configuration. The loop and the database stay (a new [database] path opens the new one,
 * and the old one is closed only once the new configuration runs). If the new configuration cannot be
 * started, the previous one is started again; if even that fails, the daemon exits non-zero with every
 * relay safe, and systemd restarts it. */
static void daemon_reload(struct daemon *dm)
{
    log_notice("reloading the configuration from %s", dm->config_path);
    dm->serving = false;
    int r = notify_reloading("reloading the configuration");
    if (r < 0)
        log_debug("sd_notify RELOADING=1: %s", strerror(-r));
    struct config *next = calloc(1, sizeof *next);
    struct config *prev = calloc(1, sizeof *prev);
    char err[1024];
    if (!next || !prev) {
        log_err("reload refused: %s; keeping the running configuration", strerror(ENOMEM));
        goto done;
    }
    if (load_config(dm->config_path, next, err, sizeof err) < 0) {
        log_err("reload refused: %s; keeping the running configuration", err);
        goto done;
    }
    char changes[600];
    describe_changes(&dm->cfg, next, changes, sizeof changes);
    *prev = dm->cfg;

    for (size_t i = 0; i < dm->n_doors; i++)
        if (door_relay_on(dm->doors[i].door))
            log_notice("door %s: the reload ends the unlock in progress", dm->doors[i].cfg->name);
    daemon_stop_units(dm);
    dm->cfg = *next;
    struct store *old_store = NULL;
    r = 0;
    if (strcmp(dm->cfg.db_path, prev->db_path) != 0) {
        struct store *st;
        r = open_store(&dm->cfg, &st);
        if (r >= 0) {
            old_store = dm->store;
            dm->store = st;
        }
    }
    if (r >= 0)
        r = daemon_start_units(dm);
    if (r >= 0) {
        store_close(old_store);
        log_notice("reloaded: %s (%zu door%s, %zu reader%s)", changes, dm->n_doors, dm->n_doors == 1 ? "" : "s",
                   dm->n_readers, dm->n_readers == 1 ? "" : "s");
    } else {
        log_err("reload failed: the new configuration could not be started (above); starting the previous "
                "one again");
        daemon_stop_units(dm);
        if (old_store) {
            store_close(dm->store);
            dm->store = old_store;
        }
        dm->cfg = *prev;
        int t = tz_set(dm->cfg.timezone);
        if (t < 0)
            log_err("cannot select the timezone %s again: %s", dm->cfg.timezone, strerror(-t));
        r = daemon_start_units(dm);
        if (r < 0) {
            log_err("cannot start the previous configuration again either: exiting with every relay safe");
            daemon_stop_units(dm);
            dm->fatal = true;
            loop_quit(dm->loop, r);
            goto done;
        }
        log_warn("reload failed: still running the previous configuration");
    }
    if (strcmp(dm->cfg.db_path, prev->db_path) != 0 || dm->cfg.log_retention_days != prev->log_retention_days)
        retention_restart(dm);
    sweep(dm);
done:
    free(next);
    free(prev);
    if (!dm->fatal)
        notify_serving(dm);
}

/* ---- signals ---- */

static void stop_signal(int signo, void *userdata)
{
    struct daemon *dm = userdata;
    const char *abbrev = sigabbrev_np(signo);
    log_notice("stopping (signal %s)", abbrev ? abbrev : "?");
    loop_quit(dm->loop, 0);
}

static void reload_signal(int signo, void *userdata)
{
    daemon_reload(userdata);
}

/* Test hook, only with TELECENTRED_TEST_HOOKS=1 in the environment: SIGUSR2 blocks the loop for
 * TELECENTRED_TEST_STALL_S seconds (default 5), the way a hung call would, so that a test can see the
 * watchdog pings stop. The relay guard still bounds a pulse meanwhile. */
static void test_stall_signal(int signo, void *userdata)
{
    int secs = TEST_STALL_DEFAULT_S;
    const char *v = getenv("TELECENTRED_TEST_STALL_S");
    if (v && *v) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end == '\0' && n >= 0 && n <= 3600)
            secs = (int)n;
    }
    struct daemon *dm = userdata;
    log_warn("test hook: stalling the event loop for %d s (SIGUSR2)", secs);
    /* STATUS= marks around the stall: on the notify socket, no WATCHDOG=1 may come between them. */
    notify_status("test hook: event loop stalled for %d s", secs);
    struct timespec ts = {.tv_sec = secs};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    log_notice("test hook: the event loop runs again");
    notify_status("%s", dm->status);
}

/* Test hook, only with TELECENTRED_TEST_HOOKS=1: TELECENTRED_TEST_CLOCK="START:SPEED[:ANCHOR_MS]" runs
 * the wall clock from START, SPEED times faster (src/clock.h), for compressed-time soak runs. Set before
 * anything reads the clock; a malformed value stops the start rather than run on the real clock. */
static int test_clock_start(void)
{
    const char *value = getenv("TELECENTRED_TEST_CLOCK");
    int r = clock_test_from_env();
    if (r < 0) {
        log_err("TELECENTRED_TEST_CLOCK='%s': expected START:SPEED[:ANCHOR_MS] (START in seconds since the "
                "epoch or YYYY-MM-DDTHH:MM:SSZ, SPEED 1-%d, ANCHOR_MS a CLOCK_MONOTONIC instant in ms)",
                value, CLOCK_TEST_SPEED_MAX);
        return r;
    }
    if (r == 0) {
        if (value && *value)
            log_warn("TELECENTRED_TEST_CLOCK ignored: test hooks are off (TELECENTRED_TEST_HOOKS=1)");
        return 0;
    }
    const struct test_clock *tc = clock_test_installed();
    char at[TZ_BUFSZ];
    log_warn("test hook: the wall clock is simulated: %s now, running %lld times faster than real time "
             "(TELECENTRED_TEST_CLOCK)", tz_format_iso_utc(clock_now(NULL), at), (long long)tc->speed);
    return 0;
}

/* The loop, its signals and timers, which live as long as the process (a reload keeps them). */
static int daemon_start_loop(struct daemon *dm)
{
    int r = loop_new(&dm->loop);
    if (r < 0) {
        log_err("cannot create the event loop: %s", strerror(-r));
        return r;
    }
    if ((r = loop_add_signal(dm->loop, SIGTERM, stop_signal, dm)) < 0 ||
        (r = loop_add_signal(dm->loop, SIGINT, stop_signal, dm)) < 0 ||
        (r = loop_add_signal(dm->loop, SIGHUP, reload_signal, dm)) < 0) {
        log_err("cannot watch signals: %s", strerror(-r));
        return r;
    }
    const char *hooks = getenv("TELECENTRED_TEST_HOOKS");
    if (hooks && strcmp(hooks, "1") == 0) {
        if ((r = loop_add_signal(dm->loop, SIGUSR2, test_stall_signal, dm)) < 0) {
            log_err("cannot watch signals: %s", strerror(-r));
            return r;
        }
        log_warn("test hooks on (TELECENTRED_TEST_HOOKS=1): SIGUSR2 stalls the event loop");
    }
    if ((r = loop_timer_new(dm->loop, door_timer_fired, dm, &dm->door_timer)) < 0 ||
        (r = loop_timer_new(dm->loop, sweep_timer_fired, dm, &dm->sweep_timer)) < 0 ||
        (r = loop_timer_arm_in(dm->sweep_timer, clock_timer_ms(SWEEP_INTERVAL_MS))) < 0 ||
        (r = loop_timer_new(dm->loop, retention_timer_fired, dm, &dm->retention_timer)) < 0 ||
        (r = loop_timer_new(dm->loop, storage_timer_fired, dm, &dm->storage_timer)) < 0) {
        log_err("cannot create timers: %s", strerror(-r));
        return r;
    }
    dm->watchdog_ms = notify_watchdog_interval_ms();
    if (dm->watchdog_ms) {
        uint64_t half = dm->watchdog_ms / 2;
        if ((r = loop_timer_new(dm->loop, watchdog_timer_fired, dm, &dm->watchdog_timer)) < 0 ||
            (r = loop_timer_arm_in(dm->watchdog_timer, half ? half : 1)) < 0) {
            log_err("cannot create the watchdog timer: %s", strerror(-r));
            return r;
        }
        log_info("watchdog: pinging systemd every %llu ms (WatchdogSec %llu ms)", (unsigned long long)half,
                 (unsigned long long)dm->watchdog_ms);
    }
    return 0;
}

static int daemon_start(struct daemon *dm)
{
    char err[1024];
    int r = load_config(dm->config_path, &dm->cfg, err, sizeof(err));
    if (r < 0) {
        log_err("%s", err);
        return r;
    }
    if ((r = open_store(&dm->cfg, &dm->store)) < 0 || (r = daemon_start_loop(dm)) < 0 ||
        (r = daemon_start_units(dm)) < 0)
        return r;
    if (store_exclusive(dm->store))
        storage_fault(dm, -ENOSPC);     /* the full disk met at open: probed until it takes writes */
    sweep(dm);
    retention_restart(dm);      /* the first purge runs from the loop, after READY */
    log_info("telecentred %s started: site %s, %zu door%s, %zu reader%s", TELECENTRED_VERSION, dm->cfg.site_id,
             dm->n_doors, dm->n_doors == 1 ? "" : "s", dm->n_readers, dm->n_readers == 1 ? "" : "s");
    notify_serving(dm);
    return 0;
}

/* Every way out: a clean stop, a start that failed half-way, a failed loop or reload. */
static void daemon_stop(struct daemon *dm)
{
    if (dm->store && dm->n_backlog && !backlog_flush(dm))
        log_err("database %s: %zu decision%s taken while it could not be written are lost (never recorded)",
                dm->cfg.db_path, dm->n_backlog, dm->n_backlog == 1 ? "" : "s");
    free(dm->backlog);
    dm->backlog = NULL;
    dm->n_backlog = dm->cap_backlog = 0;
    daemon_stop_units(dm);
    dm->loop = loop_free(dm->loop);     /* closes its timers */
    dm->store = store_close(dm->store);
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: telecentred [-c FILE] [--check-config] [--version] [-v] [-h]\n"
            "Door access and desk-booking daemon for a telecentre.\n"
            "\n"
            "  -c, --config FILE   configuration file (default %s)\n"
            "      --check-config  check the configuration, print \"FILE: ok\" and exit\n"
            "  -v, --verbose       log debug messages too (they include badge UIDs)\n"
            "      --version       print the version and exit\n"
            "  -h, --help          print this help and exit\n",
            CONFIG_DEFAULT_PATH);
}

static int check_config(const char *path)
{
    struct config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        fprintf(stderr, "%s: %s\n", path, strerror(ENOMEM));
        return 1;
    }
    char err[1024];
    int status = 0;
    if (load_config(path, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        status = 1;
    } else {
        printf("%s: ok\n", path);
    }
    free(cfg);
    return status;
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK_CONFIG = 256, OPT_VERSION };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
        {"version", no_argument, NULL, OPT_VERSION},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = CONFIG_DEFAULT_PATH;
    bool only_check = false;
    bool verbose = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:vh", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case OPT_CHECK_CONFIG:
            only_check = true;
            break;
        case OPT_VERSION:
            printf("telecentred %s\n", TELECENTRED_VERSION);
            return 0;
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "telecentred: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (only_check)
        return check_config(config_path);

    /* A reader or client going away must be an error return, never a killed daemon. */
    signal(SIGPIPE, SIG_IGN);
    log_init("telecentred", verbose ? LOG_DEBUG : LOG_INFO);
    /* Root is not refused (a bench or a demo may run it so), but nothing here needs it: a flaw in a
     * parser of badge, broker or reader input would then own the board. */
    if (geteuid() == 0)
        log_warn("running as root: nothing here needs it; run it as its own user (the systemd unit's "
                 "User=telecentred)");
    if (test_clock_start() < 0)
        return 1;

    struct daemon *dm = calloc(1, sizeof(*dm));
    if (!dm) {
        log_err("out of memory");
        return 1;
    }
    dm->config_path = config_path;
    int r = daemon_start(dm);
    if (r >= 0) {
        r = loop_run(dm->loop);
        if (r < 0 && !dm->fatal)
            log_err("event loop failed: %s", strerror(-r));
    }
    /* Before the stop itself, which may wait for the broker (LINK_STOP_TIMEOUT_MS). */
    notify_stopping(r < 0 ? "stopping after a failure" : "stopping");
    daemon_stop(dm);
    free(dm);
    return r < 0 ? 1 : 0;
}
