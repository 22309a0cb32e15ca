/* telecentred: the site daemon. One Manager-like struct owns every module and event source; modules
 * are started in order and stopped in reverse, and every exit path this process controls drives the
 * doors to their safe state before the GPIO lines are released. Only this file logs (plus the sim GPIO
 * backend, whose purpose is printing). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "config.h"
#include "door.h"
#include "gpio.h"
#include "log.h"
#include "loop.h"
#include "reader.h"
#include "store.h"
#include "version.h"

#define SWEEP_INTERVAL_MS 60000u
/* The relay's pulse is bounded (gpio_set_bounded) at exactly unlock_ms, the door's own relock time, so
 * it can never outlive unlock_ms even if this loop stalls. In normal operation the loop relocks at the
 * same instant; when it comes more than this late, the stall is worth a warning. */
#define RELAY_LATE_WARNING_MS 20
#define DOOR_OUTPUT_COUNT (DOOR_OUTPUT_BUZZER + 1)

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

struct daemon {
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
};

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

static void log_access(const struct access_record *rec)
{
    char member[ID_MAX + 8] = "";
    char booking[40] = "";
    if (rec->member_id[0])
        snprintf(member, sizeof(member), " member=%s", rec->member_id);
    if (rec->booking_id)
        snprintf(booking, sizeof(booking), " booking=b-%lld", (long long)rec->booking_id);
    log_info("access seq=%lld door=%s reader=%s %s %s %s%s%s", (long long)rec->seq, rec->door, rec->reader,
             direction_name(rec->direction), access_result_name(rec->result),
             access_reason_name(rec->reason), member, booking);
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

static void reader_tapped(struct reader *r, const char *uid, void *userdata)
{
    struct reader_unit *ru = userdata;
    struct daemon *dm = ru->daemon;
    const struct reader_config *rc = reader_config(r);
    log_debug("reader %s: tap %s", rc->name, uid);

    struct access_request req = {
        .uid = uid,
        .door = ru->door->cfg->name,
        .reader = rc->name,
        .direction = rc->direction,
        .now = clock_now(NULL),
        .has_exit_reader = dm->has_exit_reader,
        .on_decided = tap_decided,
        .userdata = ru,
    };
    struct decision d;
    struct access_record rec;
    ru->decided = false;
    int err = access_decide(dm->store, &dm->cfg.policy, &req, true, &d, &rec);
    if (err < 0 && !ru->decided) {
        /* Fail secure: without the database there is no way to know who may enter. */
        door_deny(ru->door->door, clock_mono_ms());
        log_err("access door=%s reader=%s %s denied: database error: %s (%s)", req.door, req.reader,
                direction_name(req.direction), strerror(-err), store_errmsg(dm->store));
    } else if (err < 0) {
        /* Decided and acted on, but not recorded (disk full, I/O error): say so loudly. */
        log_err("access door=%s reader=%s %s %s %s: NOT RECORDED: %s (%s)", req.door, req.reader,
                direction_name(req.direction), access_result_name(d.result), access_reason_name(d.reason),
                strerror(-err), store_errmsg(dm->store));
    } else {
        log_access(&rec);
    }
    door_timer_follow(dm);
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
        if (!ru->lost)
            log_warn("reader %s: lost (%s)", name, detail ? detail : "");
        ru->lost = true;
        break;
    case READER_ONLINE:
        if (ru->lost)
            log_notice("reader %s: back in service", name);
        else
            log_info("reader %s: in service (%s)", name, detail ? detail : "");
        ru->lost = false;
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

/* ---- housekeeping and signals ---- */

static void sweep(struct daemon *dm)
{
    int r = access_sweep(dm->store, &dm->cfg.policy, clock_now(NULL));
    if (r < 0)
        log_err("sweep: releasing no-show bookings failed: %s (%s)", strerror(-r), store_errmsg(dm->store));
    else if (r > 0)
        log_info("released %d no-show booking%s", r, r == 1 ? "" : "s");
}

static void sweep_timer_fired(struct loop_timer *t, void *userdata)
{
    struct daemon *dm = userdata;
    sweep(dm);
    int r = loop_timer_arm_in(t, SWEEP_INTERVAL_MS);
    if (r < 0)
        log_err("cannot arm the sweep timer: %s", strerror(-r));
}

static void stop_signal(int signo, void *userdata)
{
    struct daemon *dm = userdata;
    const char *abbrev = sigabbrev_np(signo);
    log_notice("stopping (signal %s)", abbrev ? abbrev : "?");
    loop_quit(dm->loop, 0);
}

static void reload_signal(int signo, void *userdata)
{
    log_notice("reload is not supported yet; restart to apply a new configuration");
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
    int fd = gpio_fd(dm->gpio);
    if (fd >= 0 && (r = loop_add_fd(dm->loop, fd, EPOLLIN, gpio_readable, dm)) < 0) {
        log_err("gpio: cannot watch inputs: %s", strerror(-r));
        return r;
    }
    for (size_t i = 0; i < dm->n_readers; i++) {
        struct reader_unit *ru = &dm->readers[i];
        fd = reader_fd(ru->reader);
        if (fd >= 0 && (r = loop_add_fd(dm->loop, fd, EPOLLIN, reader_readable, ru)) < 0) {
            log_err("reader %s: cannot watch: %s", reader_config(ru->reader)->name, strerror(-r));
            return r;
        }
    }
    if ((r = loop_timer_new(dm->loop, door_timer_fired, dm, &dm->door_timer)) < 0 ||
        (r = loop_timer_new(dm->loop, sweep_timer_fired, dm, &dm->sweep_timer)) < 0 ||
        (r = loop_timer_arm_in(dm->sweep_timer, SWEEP_INTERVAL_MS)) < 0) {
        log_err("cannot create timers: %s", strerror(-r));
        return r;
    }
    return 0;
}

static int daemon_start(struct daemon *dm, const char *config_path)
{
    char err[1024];
    int r = load_config(config_path, &dm->cfg, err, sizeof(err));
    if (r < 0) {
        log_err("%s", err);
        return r;
    }
    const struct config *cfg = &dm->cfg;
    dm->has_exit_reader = config_has_exit_reader(cfg);

    bool db_existed = access(cfg->db_path, F_OK) == 0;
    char why[512];
    r = store_open_ex(cfg->db_path, STORE_CREATE, &dm->store, why, sizeof(why));
    if (r < 0) {
        log_err("database %s: %s", cfg->db_path, why);
        return r;
    }
    if (!db_existed)
        log_notice("created a new database at %s", cfg->db_path);

    r = gpio_open(cfg->gpio_driver, cfg->gpio_driver == GPIO_DRIVER_SIM ? cfg->gpio_fifo : NULL,
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

    for (size_t i = 0; i < cfg->n_doors; i++) {
        r = door_unit_start(dm, &dm->doors[i], &cfg->doors[i]);
        if (dm->doors[i].door)
            dm->n_doors = i + 1;
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < cfg->n_readers; i++) {
        r = reader_unit_start(dm, &dm->readers[i], &cfg->readers[i]);
        if (r < 0)
            return r;
        dm->n_readers = i + 1;
    }
    r = daemon_start_loop(dm);
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
    sweep(dm);

    log_info("telecentred %s started: site %s, %zu door%s, %zu reader%s", TELECENTRED_VERSION, cfg->site_id,
             dm->n_doors, dm->n_doors == 1 ? "" : "s", dm->n_readers, dm->n_readers == 1 ? "" : "s");
    return 0;
}

/* Reverse order of start, on every way out (clean stop, a start that failed half-way, a failed loop).
 * Doors first: door_free() drives every output off (door_make_safe) while the lines are still held, which
 * also cancels a running relay guard; then the lines are released. A door whose start failed after its
 * outputs were requested has no door object, but its outputs were requested off and never set. */
static void daemon_stop(struct daemon *dm)
{
    for (size_t i = 0; i < dm->n_doors; i++)
        dm->doors[i].door = door_free(dm->doors[i].door);
    dm->gpio = gpio_close(dm->gpio);
    for (size_t i = 0; i < dm->n_readers; i++)
        dm->readers[i].reader = reader_close(dm->readers[i].reader);
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

    struct daemon *dm = calloc(1, sizeof(*dm));
    if (!dm) {
        log_err("out of memory");
        return 1;
    }
    int r = daemon_start(dm, config_path);
    if (r >= 0) {
        r = loop_run(dm->loop);
        if (r < 0)
            log_err("event loop failed: %s", strerror(-r));
    }
    daemon_stop(dm);
    free(dm);
    return r < 0 ? 1 : 0;
}
