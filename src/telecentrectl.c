/* telecentrectl: the admin CLI for a site's database.
 *
 * Every command follows the same path: parse its own arguments (usage errors exit 2 before anything is
 * loaded), load the configuration and timezone, validate every value, and only then open the database
 * and make one store call, so that bad input changes nothing. Failures print exactly one line on stderr,
 * "telecentrectl: <what>: <why>", and exit 1. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "booking.h"
#include "clock.h"
#include "config.h"
#include "occupancy.h"
#include "policy.h"
#include "store.h"
#include "sync.h"
#include "uid.h"
#include "version.h"

#define PROG "telecentrectl"
#define EXIT_USAGE 2
#define ARGS_CONTINUE (-1)       /* parse_args: go on with the command */
#define LOG_DEFAULT_LIMIT 20
#define SEATS_MAX 1000

struct ctl {
    const char *config_path;     /* -c, else $TELECENTRED_CONF, else the default if it exists */
    const char *db_override;     /* -d */
    bool json;
    bool config_loaded;
    struct config cfg;
    const char *db_path;
    struct store *st;
    int64_t now;
};

/* ---------------------------------------------------------------- messages */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAILURE;
}

/* group: the command group whose help is the right hint ("member"), or NULL for the global help. */
static int usage_error(const char *group, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *group, const char *fmt, ...)
{
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (group)
        fprintf(stderr, "; see '" PROG " %s --help'\n", group);
    else
        fputs("; see '" PROG " --help'\n", stderr);
    return EXIT_USAGE;
}

static void die_oom(void)
{
    fputs(PROG ": out of memory\n", stderr);
    exit(EXIT_FAILURE);
}

static char *xstrdup(const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        die_oom();
    return copy;
}

/* Why a store call failed: errno text, plus SQLite's own words for database errors. */
static const char *store_why(const struct ctl *ctl, int r)
{
    static char buf[1280];
    const char *sqlite_msg = ctl->st ? store_errmsg(ctl->st) : NULL;
    if (sqlite_msg && *sqlite_msg && r != -ENOENT && r != -EEXIST)
        snprintf(buf, sizeof(buf), "%s (%s)", strerror(-r), sqlite_msg);
    else
        snprintf(buf, sizeof(buf), "%s", strerror(-r));
    return buf;
}

/* ---------------------------------------------------------------- help */

static const char global_help[] =
    "Usage: " PROG " [-c FILE] [-d DB] [--json] COMMAND ...\n"
    "\n"
    "Administer a telecentre site's database: members, badges, desks and rooms, bookings,\n"
    "closure days; ask what a badge tap would give; show occupancy and the access log.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   configuration file (default $TELECENTRED_CONF, else\n"
    "                      " CONFIG_DEFAULT_PATH " if it exists, else built-in defaults)\n"
    "  -d, --db DB         database file (default: [database] path of the configuration)\n"
    "      --json          machine-readable JSON on stdout\n"
    "  -h, --help          this help ('" PROG " COMMAND --help' for one command)\n"
    "      --version       print the version\n"
    "\n"
    "Commands:\n"
    "  init                                  create the database\n"
    "  member add ID --name NAME [--role member|keyholder|manager]\n"
    "             [--from DATE] [--until DATE] [--email ADDR] [--visible]\n"
    "  member list | show ID | suspend ID | resume ID | remove ID\n"
    "  badge add UID --member ID [--label TEXT]\n"
    "  badge list | revoke UID\n"
    "  resource add ID --kind desk|room [--name NAME] [--seats N]\n"
    "  resource list | remove ID\n"
    "  book --member ID --resource ID --from TIME --to TIME [--after-hours]\n"
    "  booking list [--day DATE] | cancel ID\n"
    "  check UID [--at TIME] [--door NAME]   what a tap would give, changing nothing\n"
    "  occupancy                             who is in, desks and rooms now\n"
    "  log [--limit N]                       the last N access decisions (default 20)\n"
    "  closure add DATE [--reason TEXT] | closure list | closure remove DATE\n"
    "  outbox                                MQTT events waiting for the broker\n"
    "  sync                                  the last sync batch applied from the network\n"
    "  backup FILE [--force]                 a consistent copy of the database, daemon running\n"
    "  export ID [--output FILE]             everything stored about one member, as JSON\n"
    "  purge [--dry-run]                     delete log and presence older than log_retention_days\n"
    "  help [COMMAND]\n"
    "\n"
    "DATE is YYYY-MM-DD, TIME is \"YYYY-MM-DD HH:MM\", both in the site's timezone.\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static const char help_init[] =
    "Usage: " PROG " init\n"
    "\n"
    "Creates the database (and its schema) if it does not exist; harmless if it does.\n";

static const char help_member[] =
    "Usage:\n"
    "  " PROG " member add ID --name NAME [--role member|keyholder|manager]\n"
    "                    [--from DATE] [--until DATE] [--email ADDR] [--visible]\n"
    "  " PROG " member list\n"
    "  " PROG " member show ID\n"
    "  " PROG " member suspend ID\n"
    "  " PROG " member resume ID\n"
    "  " PROG " member remove ID\n"
    "\n"
    "ID is 1 to 63 characters among A-Z a-z 0-9 . _ -. --from and --until (YYYY-MM-DD) bound the\n"
    "membership, both days included. --visible lets the member's name appear in published occupancy.\n"
    "remove erases the member: it deletes their badges, bookings and presence, and anonymises the\n"
    "access-log rows and the undelivered MQTT events about them (the rows stay, without the member id\n"
    "or badge UID). 'export ID' first if the member asked for a copy of their data.\n";

static const char help_badge[] =
    "Usage:\n"
    "  " PROG " badge add UID --member ID [--label TEXT]\n"
    "  " PROG " badge list\n"
    "  " PROG " badge revoke UID\n"
    "\n"
    "UID is hex, 4, 7 or 10 bytes; case and separators are ignored (04:a1:b2:c3 = 04A1B2C3).\n";

static const char help_resource[] =
    "Usage:\n"
    "  " PROG " resource add ID --kind desk|room [--name NAME] [--seats N]\n"
    "  " PROG " resource list\n"
    "  " PROG " resource remove ID\n"
    "\n"
    "--seats is 1..1000 (default 1); --name defaults to the id. A resource with a confirmed booking\n"
    "that has not ended cannot be removed: cancel the booking first.\n";

static const char help_book[] =
    "Usage: " PROG " book --member ID --resource ID --from TIME --to TIME [--after-hours]\n"
    "\n"
    "TIME is \"YYYY-MM-DD HH:MM\" in the site's timezone; --to is exclusive and must be after --from\n"
    "and after now. A booking is refused if it overlaps a confirmed booking of the resource, or\n"
    "(for desks) another desk booking of the member. --after-hours lets the booking admit its member\n"
    "outside opening hours. No-show bookings are released first, so they do not block.\n";

static const char help_booking[] =
    "Usage:\n"
    "  " PROG " booking list [--day YYYY-MM-DD]\n"
    "  " PROG " booking cancel ID\n"
    "\n"
    "list shows every booking (any status), or those overlapping one local day with --day.\n"
    "ID is b-<n> or <n>.\n";

static const char help_check[] =
    "Usage: " PROG " check UID [--at TIME] [--door NAME]\n"
    "\n"
    "Prints the decision a tap of UID on an entry reader would give (at TIME, default now), with its\n"
    "reason, without changing anything: no log row, no check-in, no walk-in booking. --door must name\n"
    "a configured door when doors are configured. The exit status is 0 whatever the decision:\n"
    "the decision is the output.\n";

static const char help_occupancy[] =
    "Usage: " PROG " occupancy\n"
    "\n"
    "Who is present, against the capacity; desks free, booked and occupied; rooms; the names of\n"
    "present members who opted in. --json prints the same document as the MQTT occupancy topic.\n";

static const char help_log[] =
    "Usage: " PROG " log [--limit N]\n"
    "\n"
    "The last N access decisions, oldest first (default 20, N >= 1). The local log shows the badge\n"
    "UID so that an unknown badge can be enrolled; it is never published.\n";

static const char help_closure[] =
    "Usage:\n"
    "  " PROG " closure add DATE [--reason TEXT]\n"
    "  " PROG " closure list\n"
    "  " PROG " closure remove DATE\n"
    "\n"
    "A closure day closes the site for the whole local day (keyholders still enter).\n";

static const char help_outbox[] =
    "Usage: " PROG " outbox\n"
    "\n"
    "The MQTT events (access decisions, alarms) waiting in the database for the broker's\n"
    "acknowledgement: how many, the oldest, and how many were ever dropped because the outbox\n"
    "reached [mqtt] outbox_max. Empty with MQTT off: no events are queued then.\n";

static const char help_sync[] =
    "Usage: " PROG " sync\n"
    "\n"
    "The version of the last sync batch applied from the central network (P/S/sync) and when,\n"
    "and the same for the network-wide topic ([mqtt] network_sync_topic).\n";

static const char help_backup[] =
    "Usage: " PROG " backup FILE [--force] [--step-pages N] [--pause-ms MS]\n"
    "\n"
    "Copies the database to FILE with SQLite's online backup API while the daemon runs: the copy\n"
    "is the database as it was when the backup started, and the daemon keeps deciding taps\n"
    "meanwhile. It is written to FILE.tmp, synced, then renamed to FILE, so FILE is always a\n"
    "whole backup. FILE is created mode 0600 (it holds personal data). An existing FILE is kept\n"
    "unless --force. --step-pages (default 256) and --pause-ms (default 0) throttle the copy on\n"
    "slow storage. Prints the size, pages and time taken.\n";

static const char help_export[] =
    "Usage: " PROG " export ID [--output FILE] [--force]\n"
    "\n"
    "Everything the database holds about member ID, as one JSON document (the member's right of\n"
    "access): the member record, their badges (with UIDs), their bookings (any status), their\n"
    "presence, and the access-log rows about them. On stdout, or written to FILE (mode 0600; an\n"
    "existing FILE is kept unless --force). See docs/cli.md for the format.\n";

static const char help_purge[] =
    "Usage: " PROG " purge [--dry-run]\n"
    "\n"
    "Deletes the access-log rows and the ended presence older than [privacy] log_retention_days\n"
    "(default 90), in small steps so that a running daemon is never held up. The daemon does the\n"
    "same every day; this runs it now. --dry-run counts what would go, deleting nothing.\n";

struct group {
    const char *name;
    const char *help;
    int (*run)(struct ctl *ctl, int argc, char **argv);   /* argv[0] = the group name */
};

/* ---------------------------------------------------------------- argument parsing */

struct optdef {
    const char *name;            /* long name without "--" */
    bool takes_value;
};

#define MAX_OPTS 8
#define MAX_POS 2

struct args {
    const char *val[MAX_OPTS];   /* NULL if absent; a flag given reads "" */
    const char *pos[MAX_POS];
    int n_pos;
};

/* Parses argv[1..] of one command (argv[0] is its name): options in any order, before or after the
 * positionals, "--opt VALUE" or "--opt=VALUE", "--" ends options. --json and -h/--help are accepted
 * everywhere. Returns ARGS_CONTINUE, or an exit status when the caller must stop (help shown: 0). */
static int parse_args(struct ctl *ctl, const struct group *g, const char *what, const struct optdef *defs,
                      size_t n_defs, int min_pos, int max_pos, const char *pos_names, int argc, char **argv,
                      struct args *a)
{
    memset(a, 0, sizeof(*a));
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || arg[1] == '\0') {
            if (a->n_pos >= max_pos)
                return usage_error(g->name, "%s: unexpected argument '%s'", what, arg);
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(g->help, stdout);
            return EXIT_SUCCESS;
        }
        if (strcmp(arg, "--json") == 0) {
            ctl->json = true;
            continue;
        }
        if (arg[1] != '-')
            return usage_error(g->name, "%s: unknown option '%s'", what, arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        size_t k;
        for (k = 0; k < n_defs; k++)
            if (strlen(defs[k].name) == name_len && strncmp(defs[k].name, name, name_len) == 0)
                break;
        if (k == n_defs)
            return usage_error(g->name, "%s: unknown option '%.*s'", what, (int)name_len + 2, arg);
        if (a->val[k])
            return usage_error(g->name, "%s: --%s given twice", what, defs[k].name);
        if (!defs[k].takes_value) {
            if (eq)
                return usage_error(g->name, "%s: --%s takes no value", what, defs[k].name);
            a->val[k] = "";
        } else if (eq) {
            a->val[k] = eq + 1;
        } else if (i + 1 < argc) {
            a->val[k] = argv[++i];
        } else {
            return usage_error(g->name, "%s: --%s needs a value", what, defs[k].name);
        }
    }
    if (a->n_pos < min_pos)
        return usage_error(g->name, "%s: missing %s", what, pos_names);
    return ARGS_CONTINUE;
}

/* ---------------------------------------------------------------- setup */

static int ctl_load_config(struct ctl *ctl)
{
    if (ctl->config_loaded)
        return 0;
    const char *path = ctl->config_path;
    if (!path) {
        const char *env = getenv("TELECENTRED_CONF");
        if (env && *env)
            path = env;
        else if (access(CONFIG_DEFAULT_PATH, F_OK) == 0)
            path = CONFIG_DEFAULT_PATH;
    }
    if (path) {
        char err[1024];
        if (config_load(path, &ctl->cfg, err, sizeof(err)) < 0)
            return fail("%s", err);
    } else {
        config_defaults(&ctl->cfg);
    }
    int r = tz_set(ctl->cfg.timezone);
    if (r < 0)
        return fail("timezone: '%s' is not an installed IANA timezone", ctl->cfg.timezone);
    ctl->db_path = ctl->db_override ? ctl->db_override : ctl->cfg.db_path;
    /* Test hook (TELECENTRED_TEST_HOOKS=1), the daemon's too: a compressed-time run books and checks at
     * the simulated time the daemon decides at. */
    r = clock_test_from_env();
    if (r < 0)
        return fail("TELECENTRED_TEST_CLOCK: '%s' is not START:SPEED[:ANCHOR_MS]",
                    getenv("TELECENTRED_TEST_CLOCK"));
    ctl->now = clock_now(NULL);
    if (r > 0) {
        char at[TZ_BUFSZ];
        fprintf(stderr, PROG ": note: test clock (TELECENTRED_TEST_CLOCK): simulated time %s\n",
                tz_format_local(ctl->now, at));
    }
    ctl->config_loaded = true;
    return 0;
}

/* A command that opened an older database migrated it: say so once, with where the old copy is. */
static void note_migration(const struct ctl *ctl)
{
    int old_version = 0;
    const char *copy = store_migration_backup(ctl->st, &old_version);
    if (copy)
        fprintf(stderr, PROG ": note: %s: migrated the database from schema %d to %d; the old one is kept as %s\n",
                ctl->db_path, old_version, STORE_SCHEMA_VERSION, copy);
}

static int ctl_open_store(struct ctl *ctl)
{
    char why[1024];
    int r = store_open_ex(ctl->db_path, 0, &ctl->st, why, sizeof why);
    if (r == -ENOENT && access(ctl->db_path, F_OK) != 0)
        return fail("%s: no database here; create it with '" PROG " init'", ctl->db_path);
    if (r < 0)
        return fail("%s: cannot open the database: %s", ctl->db_path, why);
    note_migration(ctl);
    return 0;
}

/* ---------------------------------------------------------------- value checks */

static int check_id(const char *what, const char *label, const char *s)
{
    if (id_is_valid(s))
        return 0;
    return fail("%s: '%s' is not a valid %s (1 to 63 of A-Z a-z 0-9 . _ -)", what, s, label);
}

/* Free text shown in one-line outputs: no control characters, fits its column. */
static int check_text(const char *what, const char *option, const char *s, size_t max, bool may_be_empty)
{
    if (!may_be_empty && s[0] == '\0')
        return fail("%s: %s must not be empty", what, option);
    if (strlen(s) >= max)
        return fail("%s: %s is too long (at most %zu bytes)", what, option, max - 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return fail("%s: %s must not contain control characters", what, option);
    return 0;
}

static int parse_time_arg(const char *option, const char *s, int64_t *out)
{
    int r = tz_parse_local_datetime(s, out);
    if (r == -ERANGE)
        return fail("%s: '%s' does not exist in %s (daylight-saving change)", option, s, tz_name());
    if (r < 0)
        return fail("%s: '%s' is not a valid time (expected YYYY-MM-DD HH:MM)", option, s);
    return 0;
}

static int parse_date_arg(const char *option, const char *s, int *ymd)
{
    if (tz_parse_date(s, ymd) < 0)
        return fail("%s: '%s' is not a valid date (expected YYYY-MM-DD)", option, s);
    return 0;
}

/* A whole decimal number in [min, max]. */
static bool parse_int_range(const char *s, long min, long max, long *out)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* "b-12" or "12". */
static bool parse_booking_id(const char *s, int64_t *out)
{
    if (strncmp(s, "b-", 2) == 0)
        s += 2;
    long v;
    if (!parse_int_range(s, 1, LONG_MAX, &v))
        return false;
    *out = v;
    return true;
}

/* ---------------------------------------------------------------- formatting */

static char *fmt_booking_id(int64_t id, char buf[TZ_BUFSZ])
{
    snprintf(buf, TZ_BUFSZ, "b-%" PRId64, id);
    return buf;
}

/* "2027-03-29 08:00–12:00" within a day, else both in full. */
static char *fmt_range(int64_t start, int64_t end, char *buf, size_t len)
{
    char a[TZ_BUFSZ], b[TZ_BUFSZ];
    tz_format_local(start, a);
    tz_format_local(end, b);
    if (tz_local_ymd(start) == tz_local_ymd(end) && strlen(b) > 11)
        snprintf(buf, len, "%s\u2013%s", a, b + 11);
    else
        snprintf(buf, len, "%s\u2013%s", a, b);
    return buf;
}

/* "19:00" when on the same local day as ref, else the full local time. */
static char *fmt_until(int64_t t, int64_t ref, char buf[TZ_BUFSZ])
{
    char full[TZ_BUFSZ];
    tz_format_local(t, full);
    if (tz_local_ymd(t) == tz_local_ymd(ref) && strlen(full) > 11)
        snprintf(buf, TZ_BUFSZ, "%s", full + 11);
    else
        snprintf(buf, TZ_BUFSZ, "%s", full);
    return buf;
}

static char *fmt_validity(const struct member *m, char *buf, size_t len)
{
    char a[TZ_BUFSZ] = "", b[TZ_BUFSZ] = "";
    if (!m->valid_from && !m->valid_until) {
        snprintf(buf, len, "always");
        return buf;
    }
    if (m->valid_from)
        tz_format_ymd(m->valid_from, a);
    if (m->valid_until)
        tz_format_ymd(m->valid_until, b);
    snprintf(buf, len, "%s..%s", a, b);
    return buf;
}

static const char *member_status(const struct member *m, int today)
{
    if (m->suspended)
        return "suspended";
    if (m->valid_until && today > m->valid_until)
        return "expired";
    if (m->valid_from && today < m->valid_from)
        return "pending";
    return "active";
}

/* ---------------------------------------------------------------- tables */

/* Aligned columns for people: collects the rows, then pads every column but the last. */
struct table {
    size_t n_cols, n_rows, cap;
    char **cells;
};

static void table_add_row(struct table *t, const char *const *row)
{
    if (t->n_rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, cap * t->n_cols * sizeof(*cells));
        if (!cells)
            die_oom();
        t->cells = cells;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->n_cols; c++)
        t->cells[t->n_rows * t->n_cols + c] = xstrdup(row[c] && *row[c] ? row[c] : "-");
    t->n_rows++;
}

static void table_init(struct table *t, size_t n_cols, const char *const *header)
{
    memset(t, 0, sizeof(*t));
    t->n_cols = n_cols;
    table_add_row(t, header);
}

/* Width on a terminal: UTF-8 code points (names carry accents). */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            w++;
    return w;
}

static void table_print_free(struct table *t)
{
    size_t *width = calloc(t->n_cols, sizeof(*width));
    if (!width)
        die_oom();
    for (size_t r = 0; r < t->n_rows; r++)
        for (size_t c = 0; c < t->n_cols; c++) {
            size_t w = display_width(t->cells[r * t->n_cols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *cell = t->cells[r * t->n_cols + c];
            fputs(cell, stdout);
            if (c + 1 < t->n_cols)
                for (size_t pad = display_width(cell); pad < width[c] + 2; pad++)
                    fputc(' ', stdout);
        }
        fputc('\n', stdout);
    }
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(width);
    memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------- JSON */

static json_t *json_checked(json_t *j)
{
    if (!j)
        die_oom();
    return j;
}

static void json_set(json_t *obj, const char *key, json_t *value)
{
    if (json_object_set_new(obj, key, json_checked(value)) < 0)
        die_oom();
}

static json_t *json_str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *json_time(int64_t t)
{
    char buf[TZ_BUFSZ];
    return t ? json_string(tz_format_iso_utc(t, buf)) : json_null();
}

static json_t *json_local(int64_t t)
{
    char buf[TZ_BUFSZ];
    return t ? json_string(tz_format_local(t, buf)) : json_null();
}

static json_t *json_ymd(int ymd)
{
    char buf[TZ_BUFSZ];
    return ymd ? json_string(tz_format_ymd(ymd, buf)) : json_null();
}

static json_t *json_booking_ref(int64_t id)
{
    char buf[TZ_BUFSZ];
    return id ? json_string(fmt_booking_id(id, buf)) : json_null();
}

/* Prints one document and takes its reference. */
static int json_print(json_t *doc)
{
    json_checked(doc);
    int r = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    fputc('\n', stdout);
    if (r < 0)
        return fail("output: cannot write JSON");
    return EXIT_SUCCESS;
}

/* The confirmation of a change: one line for people, {"ok":true,"message":...,extra} for programs. */
static int confirm(struct ctl *ctl, json_t *extra, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int confirm(struct ctl *ctl, json_t *extra, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!ctl->json) {
        json_decref(extra);
        puts(msg);
        return EXIT_SUCCESS;
    }
    json_t *doc = json_checked(json_object());
    json_set(doc, "ok", json_true());
    json_set(doc, "message", json_string(msg));
    if (extra) {
        if (json_object_update(doc, extra) < 0)
            die_oom();
        json_decref(extra);
    }
    return json_print(doc);
}

static json_t *member_json(const struct member *m, int today)
{
    json_t *o = json_checked(json_object());
    json_set(o, "id", json_string(m->id));
    json_set(o, "name", json_string(m->name));
    json_set(o, "role", json_string(member_role_name(m->role)));
    json_set(o, "email", json_str_or_null(m->email));
    json_set(o, "valid_from", json_ymd(m->valid_from));
    json_set(o, "valid_until", json_ymd(m->valid_until));
    json_set(o, "suspended", json_boolean(m->suspended));
    json_set(o, "presence_visible", json_boolean(m->presence_visible));
    json_set(o, "status", json_string(member_status(m, today)));
    json_set(o, "created_at", json_time(m->created_at));
    return o;
}

static const char *badge_status(const struct badge *b)
{
    return b->revoked ? "revoked" : "active";
}

static json_t *badge_json(const struct badge *b)
{
    json_t *o = json_checked(json_object());
    json_set(o, "uid", json_string(b->uid));
    json_set(o, "member", json_string(b->member_id));
    json_set(o, "label", json_str_or_null(b->label));
    json_set(o, "revoked", json_boolean(b->revoked));
    json_set(o, "status", json_string(badge_status(b)));
    json_set(o, "created_at", json_time(b->created_at));
    json_set(o, "revoked_at", json_time(b->revoked_at));
    return o;
}

static json_t *booking_json(const struct booking *b)
{
    json_t *o = json_checked(json_object());
    json_set(o, "id", json_booking_ref(b->id));
    json_set(o, "resource", json_string(b->resource_id));
    json_set(o, "member", json_string(b->member_id));
    json_set(o, "start", json_time(b->start));
    json_set(o, "end", json_time(b->end));
    json_set(o, "start_local", json_local(b->start));
    json_set(o, "end_local", json_local(b->end));
    json_set(o, "status", json_string(booking_status_name(b->status)));
    json_set(o, "kind", json_string(booking_kind_name(b->kind)));
    json_set(o, "after_hours", json_boolean(b->after_hours));
    json_set(o, "checked_in_at", json_time(b->checked_in_at));
    json_set(o, "created_at", json_time(b->created_at));
    return o;
}

/* ---------------------------------------------------------------- init */

static int cmd_init(struct ctl *ctl, int argc, char **argv);

static const struct group cmdgroup_init = {"init", help_init, cmd_init};

static int cmd_init(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_init, "init", NULL, 0, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)))
        return rc;
    bool existed = access(ctl->db_path, F_OK) == 0;
    char why[1024];
    int r = store_open_ex(ctl->db_path, STORE_CREATE, &ctl->st, why, sizeof why);
    if (r < 0)
        return fail("init %s: cannot %s the database: %s", ctl->db_path, existed ? "open" : "create", why);
    note_migration(ctl);
    int version = 0;
    r = store_schema_version(ctl->st, &version);
    if (r < 0)
        return fail("init %s: cannot read the schema version: %s", ctl->db_path, store_why(ctl, r));
    json_t *extra = json_pack("{s:s, s:b, s:i}", "database", ctl->db_path, "created", !existed,
                              "schema_version", version);
    if (existed)
        return confirm(ctl, extra, "%s already initialised (schema version %d)", ctl->db_path, version);
    return confirm(ctl, extra, "created %s (schema version %d)", ctl->db_path, version);
}

/* ---------------------------------------------------------------- member */

static int cmd_member(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_member = {"member", help_member, cmd_member};

static int member_lookup(struct ctl *ctl, const char *what, const char *id, struct member *m)
{
    int r = store_member_get(ctl->st, id, m);
    if (r == -ENOENT)
        return fail("%s: no member '%s'", what, id);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    return 0;
}

static int member_add(struct ctl *ctl, int argc, char **argv)
{
    enum { O_NAME, O_ROLE, O_FROM, O_UNTIL, O_EMAIL, O_VISIBLE };
    static const struct optdef defs[] = {
        {"name", true}, {"role", true}, {"from", true}, {"until", true}, {"email", true}, {"visible", false},
    };
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_member, "member add", defs, 6, 1, 1, "ID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if (!a.val[O_NAME])
        return usage_error("member", "member add: missing --name");
    if ((rc = ctl_load_config(ctl)))
        return rc;

    struct member m = {0};
    char what[128];
    snprintf(what, sizeof(what), "member add %s", a.pos[0]);
    if ((rc = check_id("member add", "member id", a.pos[0])))
        return rc;
    snprintf(m.id, sizeof(m.id), "%s", a.pos[0]);
    if ((rc = check_text(what, "--name", a.val[O_NAME], sizeof(m.name), false)))
        return rc;
    snprintf(m.name, sizeof(m.name), "%s", a.val[O_NAME]);
    m.role = ROLE_MEMBER;
    if (a.val[O_ROLE] && member_role_parse(a.val[O_ROLE], &m.role) < 0)
        return fail("%s: --role: '%s' is not a role (member, keyholder or manager)", what, a.val[O_ROLE]);
    if (a.val[O_FROM] && (rc = parse_date_arg("--from", a.val[O_FROM], &m.valid_from)))
        return rc;
    if (a.val[O_UNTIL] && (rc = parse_date_arg("--until", a.val[O_UNTIL], &m.valid_until)))
        return rc;
    if (m.valid_from && m.valid_until && m.valid_from > m.valid_until)
        return fail("--until: '%s' is before --from '%s'", a.val[O_UNTIL], a.val[O_FROM]);
    if (a.val[O_EMAIL]) {
        const char *e = a.val[O_EMAIL];
        if ((rc = check_text(what, "--email", e, sizeof(m.email), false)))
            return rc;
        const char *at = strchr(e, '@');
        if (!at || at == e || !at[1] || strchr(e, ' '))
            return fail("%s: --email: '%s' is not an e-mail address", what, e);
        snprintf(m.email, sizeof(m.email), "%s", e);
    }
    m.presence_visible = a.val[O_VISIBLE] != NULL;
    m.created_at = ctl->now;

    if ((rc = ctl_open_store(ctl)))
        return rc;
    int r = store_member_add(ctl->st, &m);
    if (r == -EEXIST)
        return fail("%s: already exists", what);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    return confirm(ctl, json_pack("{s:o}", "member", member_json(&m, tz_local_ymd(ctl->now))),
                   "added member %s (%s, %s)", m.id, m.name, member_role_name(m.role));
}

struct list_ctx {
    struct ctl *ctl;
    json_t *array;
    struct table table;
    int today;
    const char *member_filter;
};

static int member_list_cb(const struct member *m, void *userdata)
{
    struct list_ctx *lc = userdata;
    if (lc->array) {
        if (json_array_append_new(lc->array, member_json(m, lc->today)) < 0)
            die_oom();
        return 0;
    }
    char valid[64];
    const char *row[] = {m->id, m->name, member_role_name(m->role), fmt_validity(m, valid, sizeof(valid)),
                         member_status(m, lc->today)};
    table_add_row(&lc->table, row);
    return 0;
}

static int member_list(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_member, "member list", NULL, 0, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    struct list_ctx lc = {.ctl = ctl, .today = tz_local_ymd(ctl->now)};
    static const char *const header[] = {"ID", "NAME", "ROLE", "VALID", "STATUS"};
    if (ctl->json)
        lc.array = json_checked(json_array());
    else
        table_init(&lc.table, 5, header);
    int r = store_member_foreach(ctl->st, member_list_cb, &lc);
    if (r < 0) {
        json_decref(lc.array);
        return fail("member list: %s", store_why(ctl, r));
    }
    if (ctl->json)
        return json_print(lc.array);
    table_print_free(&lc.table);
    return EXIT_SUCCESS;
}

static int member_badges_cb(const struct badge *b, void *userdata)
{
    struct list_ctx *lc = userdata;
    if (strcmp(b->member_id, lc->member_filter) != 0)
        return 0;
    if (lc->array) {
        if (json_array_append_new(lc->array, badge_json(b)) < 0)
            die_oom();
    } else {
        printf("  %s  %s  %s\n", b->uid, badge_status(b), b->label[0] ? b->label : "");
    }
    return 0;
}

static int member_bookings_cb(const struct booking *b, void *userdata)
{
    struct list_ctx *lc = userdata;
    if (strcmp(b->member_id, lc->member_filter) != 0 || b->status != BOOKING_CONFIRMED)
        return 0;
    if (lc->array) {
        if (json_array_append_new(lc->array, booking_json(b)) < 0)
            die_oom();
    } else {
        char id[TZ_BUFSZ], range[96];
        printf("  %s  %s  %s%s%s\n", fmt_booking_id(b->id, id), b->resource_id,
               fmt_range(b->start, b->end, range, sizeof(range)), b->after_hours ? "  after-hours" : "",
               b->checked_in_at ? "  checked in" : "");
    }
    return 0;
}

static int member_show(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_member, "member show", NULL, 0, 1, 1, "ID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    char what[128];
    snprintf(what, sizeof(what), "member show %s", a.pos[0]);
    struct member m;
    if ((rc = member_lookup(ctl, what, a.pos[0], &m)))
        return rc;
    int today = tz_local_ymd(ctl->now);
    struct list_ctx lc = {.ctl = ctl, .today = today, .member_filter = m.id};
    int r;

    if (ctl->json) {
        json_t *doc = member_json(&m, today);
        lc.array = json_checked(json_array());
        r = store_badge_foreach(ctl->st, member_badges_cb, &lc);
        json_set(doc, "badges", lc.array);
        if (r >= 0) {
            lc.array = json_checked(json_array());
            r = store_booking_foreach(ctl->st, ctl->now, INT64_MAX, member_bookings_cb, &lc);
            json_set(doc, "upcoming_bookings", lc.array);
        }
        if (r >= 0)
            r = store_member_is_present(ctl->st, m.id, ctl->now);
        if (r < 0) {
            json_decref(doc);
            return fail("%s: %s", what, store_why(ctl, r));
        }
        json_set(doc, "present", json_boolean(r == 1));
        return json_print(doc);
    }

    /* Gather everything before printing, so that a failure leaves only the error line. */
    r = store_member_is_present(ctl->st, m.id, ctl->now);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    bool present = r == 1;
    char valid[64], created[TZ_BUFSZ];
    printf("id:        %s\n", m.id);
    printf("name:      %s\n", m.name);
    printf("role:      %s\n", member_role_name(m.role));
    printf("email:     %s\n", m.email[0] ? m.email : "-");
    printf("valid:     %s\n", fmt_validity(&m, valid, sizeof(valid)));
    printf("status:    %s\n", member_status(&m, today));
    printf("visible:   %s\n", m.presence_visible ? "yes (name may appear in occupancy)" : "no");
    printf("present:   %s\n", present ? "yes" : "no");
    printf("created:   %s\n", m.created_at ? tz_format_local(m.created_at, created) : "-");
    printf("badges:\n");
    fflush(stdout);
    r = store_badge_foreach(ctl->st, member_badges_cb, &lc);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    printf("upcoming bookings:\n");
    r = store_booking_foreach(ctl->st, ctl->now, INT64_MAX, member_bookings_cb, &lc);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    return EXIT_SUCCESS;
}

static int member_set_suspended(struct ctl *ctl, int argc, char **argv, bool suspend)
{
    const char *verb = suspend ? "suspend" : "resume";
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "member %s", verb);
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_member, cmd, NULL, 0, 1, 1, "ID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    char what[128];
    snprintf(what, sizeof(what), "%s %s", cmd, a.pos[0]);
    struct member m;
    if ((rc = member_lookup(ctl, what, a.pos[0], &m)))
        return rc;
    bool was = m.suspended;
    int r = store_member_set_suspended(ctl->st, m.id, suspend);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    json_t *extra = json_pack("{s:s, s:b, s:b}", "member", m.id, "suspended", suspend, "changed", was != suspend);
    if (was == suspend)
        return confirm(ctl, extra, "member %s was already %s", m.id, suspend ? "suspended" : "active");
    return confirm(ctl, extra, "%s member %s (%s)", suspend ? "suspended" : "resumed", m.id, m.name);
}

static int member_remove(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_member, "member remove", NULL, 0, 1, 1, "ID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    char what[128];
    snprintf(what, sizeof(what), "member remove %s", a.pos[0]);
    struct member m;
    if ((rc = member_lookup(ctl, what, a.pos[0], &m)))
        return rc;
    int r = store_member_remove(ctl->st, m.id);
    if (r == -ENOENT)
        return fail("%s: no member '%s'", what, m.id);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    return confirm(ctl, json_pack("{s:s}", "member", m.id),
                   "removed member %s (%s) with their badges, bookings and presence; the access log and "
                   "outbox no longer name them", m.id, m.name);
}

static int cmd_member(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("member", "member: missing subcommand (add, list, show, suspend, resume, remove)");
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(help_member, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(sub, "add") == 0)
        return member_add(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return member_list(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0)
        return member_show(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "suspend") == 0)
        return member_set_suspended(ctl, argc - 1, argv + 1, true);
    if (strcmp(sub, "resume") == 0)
        return member_set_suspended(ctl, argc - 1, argv + 1, false);
    if (strcmp(sub, "remove") == 0)
        return member_remove(ctl, argc - 1, argv + 1);
    return usage_error("member", "member: unknown subcommand '%s'", sub);
}

/* ---------------------------------------------------------------- badge */

static int cmd_badge(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_badge = {"badge", help_badge, cmd_badge};

static int parse_uid_arg(const char *what, const char *raw, char uid[UID_STR_MAX])
{
    if (uid_normalize(raw, uid) < 0)
        return fail("%s: '%s' is not a badge UID (hex, 4, 7 or 10 bytes)", what, raw);
    return 0;
}

static int badge_add(struct ctl *ctl, int argc, char **argv)
{
    enum { O_MEMBER, O_LABEL };
    static const struct optdef defs[] = {{"member", true}, {"label", true}};
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_badge, "badge add", defs, 2, 1, 1, "UID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if (!a.val[O_MEMBER])
        return usage_error("badge", "badge add: missing --member");
    if ((rc = ctl_load_config(ctl)))
        return rc;
    struct badge b = {0};
    if ((rc = parse_uid_arg("badge add", a.pos[0], b.uid)))
        return rc;
    char what[128];
    snprintf(what, sizeof(what), "badge add %s", b.uid);
    if (a.val[O_LABEL]) {
        if ((rc = check_text(what, "--label", a.val[O_LABEL], sizeof(b.label), true)))
            return rc;
        snprintf(b.label, sizeof(b.label), "%s", a.val[O_LABEL]);
    }
    if ((rc = ctl_open_store(ctl)))
        return rc;
    struct member m;
    if ((rc = member_lookup(ctl, what, a.val[O_MEMBER], &m)))
        return rc;
    snprintf(b.member_id, sizeof(b.member_id), "%s", m.id);
    b.created_at = ctl->now;
    int r = store_badge_add(ctl->st, &b);
    if (r == -EEXIST) {
        struct badge old;
        if (store_badge_get(ctl->st, b.uid, &old) == 0)
            return fail("%s: already exists (member %s%s)", what, old.member_id, old.revoked ? ", revoked" : "");
        return fail("%s: already exists", what);
    }
    if (r == -ENOENT)
        return fail("%s: no member '%s'", what, m.id);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    return confirm(ctl, json_pack("{s:o}", "badge", badge_json(&b)), "added badge %s for %s (%s)", b.uid, m.id,
                   m.name);
}

static int badge_list_cb(const struct badge *b, void *userdata)
{
    struct list_ctx *lc = userdata;
    if (lc->array) {
        if (json_array_append_new(lc->array, badge_json(b)) < 0)
            die_oom();
        return 0;
    }
    const char *row[] = {b->uid, b->member_id, b->label, badge_status(b)};
    table_add_row(&lc->table, row);
    return 0;
}

static int badge_list(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_badge, "badge list", NULL, 0, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    struct list_ctx lc = {.ctl = ctl};
    static const char *const header[] = {"UID", "MEMBER", "LABEL", "STATUS"};
    if (ctl->json)
        lc.array = json_checked(json_array());
    else
        table_init(&lc.table, 4, header);
    int r = store_badge_foreach(ctl->st, badge_list_cb, &lc);
    if (r < 0) {
        json_decref(lc.array);
        return fail("badge list: %s", store_why(ctl, r));
    }
    if (ctl->json)
        return json_print(lc.array);
    table_print_free(&lc.table);
    return EXIT_SUCCESS;
}

static int badge_revoke(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_badge, "badge revoke", NULL, 0, 1, 1, "UID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)))
        return rc;
    char uid[UID_STR_MAX];
    if ((rc = parse_uid_arg("badge revoke", a.pos[0], uid)))
        return rc;
    if ((rc = ctl_open_store(ctl)))
        return rc;
    char what[128];
    snprintf(what, sizeof(what), "badge revoke %s", uid);
    struct badge b;
    int r = store_badge_get(ctl->st, uid, &b);
    if (r == -ENOENT)
        return fail("%s: no badge '%s'", what, uid);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    r = store_badge_revoke(ctl->st, uid, ctl->now);
    if (r == -EALREADY)
        return fail("%s: already revoked", what);
    if (r == -ENOENT)
        return fail("%s: no badge '%s'", what, uid);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    return confirm(ctl, json_pack("{s:s, s:s}", "badge", uid, "member", b.member_id), "revoked badge %s (%s)", uid,
                   b.member_id);
}

static int cmd_badge(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("badge", "badge: missing subcommand (add, list, revoke)");
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(help_badge, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(sub, "add") == 0)
        return badge_add(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return badge_list(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "revoke") == 0)
        return badge_revoke(ctl, argc - 1, argv + 1);
    return usage_error("badge", "badge: unknown subcommand '%s'", sub);
}

/* ---------------------------------------------------------------- resource */

static int cmd_resource(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_resource = {"resource", help_resource, cmd_resource};

static int resource_add(struct ctl *ctl, int argc, char **argv)
{
    enum { O_KIND, O_NAME, O_SEATS };
    static const struct optdef defs[] = {{"kind", true}, {"name", true}, {"seats", true}};
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_resource, "resource add", defs, 3, 1, 1, "ID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if (!a.val[O_KIND])
        return usage_error("resource", "resource add: missing --kind");
    if ((rc = ctl_load_config(ctl)))
        return rc;
    if ((rc = check_id("resource add", "resource id", a.pos[0])))
        return rc;
    struct resource res = {.seats = 1};
    char what[128];
    snprintf(what, sizeof(what), "resource add %s", a.pos[0]);
    snprintf(res.id, sizeof(res.id), "%s", a.pos[0]);
    if (resource_kind_parse(a.val[O_KIND], &res.kind) < 0)
        return fail("%s: --kind: '%s' is not a kind (desk or room)", what, a.val[O_KIND]);
    const char *name = a.val[O_NAME] ? a.val[O_NAME] : res.id;
    if ((rc = check_text(what, "--name", name, sizeof(res.name), false)))
        return rc;
    snprintf(res.name, sizeof(res.name), "%s", name);
    if (a.val[O_SEATS]) {
        long seats;
        if (!parse_int_range(a.val[O_SEATS], 1, SEATS_MAX, &seats))
            return fail("%s: --seats: '%s' is not a number of seats (1..%d)", what, a.val[O_SEATS], SEATS_MAX);
        res.seats = (int)seats;
    }
    if ((rc = ctl_open_store(ctl)))
        return rc;
    int r = store_resource_add(ctl->st, &res);
    if (r == -EEXIST)
        return fail("%s: already exists", what);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    json_t *extra = json_pack("{s:{s:s, s:s, s:s, s:i}}", "resource", "id", res.id, "kind",
                              resource_kind_name(res.kind), "name", res.name, "seats", res.seats);
    return confirm(ctl, extra, "added %s %s (%s, %d seat%s)", resource_kind_name(res.kind), res.id, res.name,
                   res.seats, res.seats == 1 ? "" : "s");
}

struct resource_list_ctx {
    struct ctl *ctl;
    json_t *array;
    struct table table;
    int error;
};

static int resource_list_cb(const struct resource *res, void *userdata)
{
    struct resource_list_ctx *lc = userdata;
    struct booking cur;
    int r = store_resource_current_booking(lc->ctl->st, res->id, lc->ctl->now, &cur);
    if (r < 0 && r != -ENOENT) {
        lc->error = r;
        return 1;
    }
    bool busy = r == 0;
    const char *state = !busy ? "free" : cur.checked_in_at ? "occupied" : "booked";
    if (lc->array) {
        json_t *o = json_checked(json_object());
        json_set(o, "id", json_string(res->id));
        json_set(o, "kind", json_string(resource_kind_name(res->kind)));
        json_set(o, "name", json_string(res->name));
        json_set(o, "seats", json_integer(res->seats));
        json_set(o, "state", json_string(state));
        json_set(o, "booking", busy ? json_booking_ref(cur.id) : json_null());
        json_set(o, "until", busy ? json_time(cur.end) : json_null());
        json_set(o, "until_local", busy ? json_local(cur.end) : json_null());
        if (json_array_append_new(lc->array, o) < 0)
            die_oom();
        return 0;
    }
    char seats[16], now_state[96] = "free", id[TZ_BUFSZ], until[TZ_BUFSZ];
    snprintf(seats, sizeof(seats), "%d", res->seats);
    if (busy)
        snprintf(now_state, sizeof(now_state), "%s until %s (%s)", state, fmt_until(cur.end, lc->ctl->now, until),
                 fmt_booking_id(cur.id, id));
    const char *row[] = {res->id, resource_kind_name(res->kind), res->name, seats, now_state};
    table_add_row(&lc->table, row);
    return 0;
}

static int resource_list(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_resource, "resource list", NULL, 0, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    struct resource_list_ctx lc = {.ctl = ctl};
    static const char *const header[] = {"ID", "KIND", "NAME", "SEATS", "NOW"};
    if (ctl->json)
        lc.array = json_checked(json_array());
    else
        table_init(&lc.table, 5, header);
    int r = store_resource_foreach(ctl->st, resource_list_cb, &lc);
    if (r >= 0 && lc.error < 0)
        r = lc.error;
    if (r < 0) {
        json_decref(lc.array);
        if (!ctl->json)
            table_print_free(&lc.table);
        return fail("resource list: %s", store_why(ctl, r));
    }
    if (ctl->json)
        return json_print(lc.array);
    table_print_free(&lc.table);
    return EXIT_SUCCESS;
}

static int resource_remove(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_resource, "resource remove", NULL, 0, 1, 1, "ID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    char what[128];
    snprintf(what, sizeof(what), "resource remove %s", a.pos[0]);
    struct resource res;
    int r = store_resource_get(ctl->st, a.pos[0], &res);
    if (r == -ENOENT)
        return fail("%s: no resource '%s'", what, a.pos[0]);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    int64_t blocking = 0;
    r = store_resource_remove(ctl->st, res.id, ctl->now, &blocking);
    if (r == -EBUSY) {
        struct booking b;
        char id[TZ_BUFSZ], range[96];
        if (blocking && store_booking_get(ctl->st, blocking, &b) == 0)
            return fail("%s: booked by %s (%s, %s); cancel it first", what, fmt_booking_id(b.id, id), b.member_id,
                        fmt_range(b.start, b.end, range, sizeof(range)));
        return fail("%s: it has bookings that have not ended; cancel them first", what);
    }
    if (r == -ENOENT)
        return fail("%s: no resource '%s'", what, res.id);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    return confirm(ctl, json_pack("{s:s}", "resource", res.id), "removed %s %s (%s)", resource_kind_name(res.kind),
                   res.id, res.name);
}

static int cmd_resource(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("resource", "resource: missing subcommand (add, list, remove)");
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(help_resource, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(sub, "add") == 0)
        return resource_add(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return resource_list(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "remove") == 0)
        return resource_remove(ctl, argc - 1, argv + 1);
    return usage_error("resource", "resource: unknown subcommand '%s'", sub);
}

/* ---------------------------------------------------------------- book, booking */

static int cmd_book(struct ctl *ctl, int argc, char **argv);
static int cmd_booking(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_book = {"book", help_book, cmd_book};
static const struct group cmdgroup_booking = {"booking", help_booking, cmd_booking};

static int cmd_book(struct ctl *ctl, int argc, char **argv)
{
    enum { O_MEMBER, O_RESOURCE, O_FROM, O_TO, O_AFTER_HOURS };
    static const struct optdef defs[] = {
        {"member", true}, {"resource", true}, {"from", true}, {"to", true}, {"after-hours", false},
    };
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_book, "book", defs, 5, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    for (int k = O_MEMBER; k <= O_TO; k++)
        if (!a.val[k])
            return usage_error("book", "book: missing --%s", defs[k].name);
    if ((rc = ctl_load_config(ctl)))
        return rc;
    struct booking b = {.status = BOOKING_CONFIRMED, .kind = BOOKING_RESERVED};
    if ((rc = parse_time_arg("--from", a.val[O_FROM], &b.start)) || (rc = parse_time_arg("--to", a.val[O_TO], &b.end)))
        return rc;
    if (b.end <= b.start)
        return fail("--to: '%s' is not after --from '%s'", a.val[O_TO], a.val[O_FROM]);
    char range[96];
    fmt_range(b.start, b.end, range, sizeof(range));
    if (b.end <= ctl->now)
        return fail("booking refused: %s has already ended", range);
    b.after_hours = a.val[O_AFTER_HOURS] != NULL;
    b.created_at = ctl->now;

    if ((rc = ctl_open_store(ctl)))
        return rc;
    /* An id too long for the table cannot name anyone (and must not be cut into someone else's). */
    if (strlen(a.val[O_MEMBER]) >= sizeof(b.member_id))
        return fail("booking refused: no member '%s'", a.val[O_MEMBER]);
    if (strlen(a.val[O_RESOURCE]) >= sizeof(b.resource_id))
        return fail("booking refused: no resource '%s'", a.val[O_RESOURCE]);
    snprintf(b.member_id, sizeof(b.member_id), "%s", a.val[O_MEMBER]);
    snprintf(b.resource_id, sizeof(b.resource_id), "%s", a.val[O_RESOURCE]);

    /* The rules live in booking.c, shared with MQTT booking requests; the words stay the CLI's. */
    struct booking_outcome out;
    int r = booking_book(ctl->st, &ctl->cfg.policy, &b, ctl->now, &out);
    switch (out.refusal) {
    case BOOKING_OK:
        break;
    case BOOKING_UNKNOWN_MEMBER:
        return fail("booking refused: no member '%s'", a.val[O_MEMBER]);
    case BOOKING_UNKNOWN_RESOURCE:
        return fail("booking refused: no resource '%s'", a.val[O_RESOURCE]);
    case BOOKING_MEMBER_SUSPENDED:
        return fail("booking refused: member '%s' is suspended", b.member_id);
    case BOOKING_CONFLICT: {
        const struct booking *other = &out.conflict;
        char id[TZ_BUFSZ], other_range[96];
        if (!other->id)
            return fail("booking refused: it overlaps another booking");
        fmt_booking_id(other->id, id);
        fmt_range(other->start, other->end, other_range, sizeof(other_range));
        if (strcmp(other->resource_id, b.resource_id) == 0)
            return fail("booking refused: %s is already booked by %s (%s)", b.resource_id, id, other_range);
        return fail("booking refused: %s already has desk booking %s (%s, %s)", b.member_id, id, other->resource_id,
                    other_range);
    }
    case BOOKING_INVALID_TIME:
        /* The times were checked above: this is the store's own bound (7 days). */
        return fail("booking refused: %s (%s)", strerror(EINVAL), out.detail);
    case BOOKING_NOT_FOUND:
    case BOOKING_NOT_CONFIRMED:
    case BOOKING_INVALID_REQUEST:
    case BOOKING_FAILED:
        return fail("booking refused: %s", out.detail);
    }
    if (r < 0)
        return fail("booking refused: %s", out.detail);
    char id[TZ_BUFSZ];
    fmt_booking_id(b.id, id);
    return confirm(ctl, json_pack("{s:s, s:o}", "booking", id, "details", booking_json(&b)), "booked %s: %s for %s, %s%s",
                   id, b.resource_id, b.member_id, range, b.after_hours ? " (after hours allowed)" : "");
}

static int booking_list_cb(const struct booking *b, void *userdata)
{
    struct list_ctx *lc = userdata;
    if (lc->array) {
        if (json_array_append_new(lc->array, booking_json(b)) < 0)
            die_oom();
        return 0;
    }
    char id[TZ_BUFSZ], from[TZ_BUFSZ], to[TZ_BUFSZ], checked[TZ_BUFSZ] = "";
    char kind[32];
    snprintf(kind, sizeof(kind), "%s%s", booking_kind_name(b->kind), b->after_hours ? "+after-hours" : "");
    if (b->checked_in_at)
        tz_format_local(b->checked_in_at, checked);
    const char *row[] = {fmt_booking_id(b->id, id), b->resource_id, b->member_id, tz_format_local(b->start, from),
                         tz_format_local(b->end, to), booking_status_name(b->status), kind, checked};
    table_add_row(&lc->table, row);
    return 0;
}

static int booking_list(struct ctl *ctl, int argc, char **argv)
{
    enum { O_DAY };
    static const struct optdef defs[] = {{"day", true}};
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_booking, "booking list", defs, 1, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)))
        return rc;
    int64_t from = 0, to = 0;
    if (a.val[O_DAY]) {
        int ymd;
        if ((rc = parse_date_arg("--day", a.val[O_DAY], &ymd)))
            return rc;
        if (tz_local_to_utc(ymd, 0, &from) < 0 || tz_local_to_utc(tz_ymd_add_days(ymd, 1), 0, &to) < 0)
            return fail("--day: '%s': its midnight does not exist in %s", a.val[O_DAY], tz_name());
    }
    if ((rc = ctl_open_store(ctl)))
        return rc;
    struct list_ctx lc = {.ctl = ctl};
    static const char *const header[] = {"ID", "RESOURCE", "MEMBER", "FROM", "TO", "STATUS", "KIND", "CHECKED-IN"};
    if (ctl->json)
        lc.array = json_checked(json_array());
    else
        table_init(&lc.table, 8, header);
    int r = store_booking_foreach(ctl->st, from, to, booking_list_cb, &lc);
    if (r < 0) {
        json_decref(lc.array);
        if (!ctl->json)
            table_print_free(&lc.table);
        return fail("booking list: %s", store_why(ctl, r));
    }
    if (ctl->json)
        return json_print(lc.array);
    table_print_free(&lc.table);
    return EXIT_SUCCESS;
}

static int booking_cancel_cmd(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_booking, "booking cancel", NULL, 0, 1, 1, "ID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)))
        return rc;
    int64_t bid;
    if (!parse_booking_id(a.pos[0], &bid))
        return fail("booking cancel: '%s' is not a booking id (b-<n> or <n>)", a.pos[0]);
    if ((rc = ctl_open_store(ctl)))
        return rc;
    char id[TZ_BUFSZ], what[64], range[96];
    fmt_booking_id(bid, id);
    snprintf(what, sizeof(what), "booking cancel %s", id);
    struct booking_outcome out;
    booking_cancel(ctl->st, bid, &out);
    const struct booking b = out.booking;
    switch (out.refusal) {
    case BOOKING_OK:
        break;
    case BOOKING_NOT_FOUND:
        return fail("%s: no booking '%s'", what, id);
    case BOOKING_NOT_CONFIRMED:
        return fail("%s: it is already %s", what, booking_status_name(b.status));
    case BOOKING_CONFLICT:
    case BOOKING_UNKNOWN_MEMBER:
    case BOOKING_UNKNOWN_RESOURCE:
    case BOOKING_MEMBER_SUSPENDED:
    case BOOKING_INVALID_TIME:
    case BOOKING_INVALID_REQUEST:
    case BOOKING_FAILED:
        return fail("%s: %s", what, out.detail);
    }
    return confirm(ctl, json_pack("{s:s}", "booking", id), "cancelled %s (%s for %s, %s)", id, b.resource_id,
                   b.member_id, fmt_range(b.start, b.end, range, sizeof(range)));
}

static int cmd_booking(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("booking", "booking: missing subcommand (list, cancel)");
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(help_booking, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(sub, "list") == 0)
        return booking_list(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "cancel") == 0)
        return booking_cancel_cmd(ctl, argc - 1, argv + 1);
    return usage_error("booking", "booking: unknown subcommand '%s'", sub);
}

/* ---------------------------------------------------------------- check */

static int cmd_check(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_check = {"check", help_check, cmd_check};

static int door_names(const struct config *cfg, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->n_doors && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", cfg->doors[i].name);
        if (n < 0)
            return -EINVAL;
        used += (size_t)n;
    }
    return 0;
}

static int cmd_check(struct ctl *ctl, int argc, char **argv)
{
    enum { O_AT, O_DOOR };
    static const struct optdef defs[] = {{"at", true}, {"door", true}};
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_check, "check", defs, 2, 1, 1, "UID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)))
        return rc;
    char uid[UID_STR_MAX];
    if ((rc = parse_uid_arg("check", a.pos[0], uid)))
        return rc;
    int64_t at = ctl->now;
    if (a.val[O_AT] && (rc = parse_time_arg("--at", a.val[O_AT], &at)))
        return rc;
    const char *door = "";
    if (a.val[O_DOOR]) {
        if (ctl->cfg.n_doors == 0)
            return fail("--door: '%s': no doors are configured", a.val[O_DOOR]);
        if (!config_find_door(&ctl->cfg, a.val[O_DOOR])) {
            char names[512];
            door_names(&ctl->cfg, names, sizeof(names));
            return fail("--door: no door '%s' (configured: %s)", a.val[O_DOOR], names);
        }
        door = a.val[O_DOOR];
    }
    if ((rc = ctl_open_store(ctl)))
        return rc;

    struct access_request req = {
        .uid = uid,
        .door = door,
        .reader = "",
        .direction = DIRECTION_IN,
        .now = at,
        .has_exit_reader = config_has_exit_reader(&ctl->cfg),
    };
    struct decision d;
    struct access_record rec;
    memset(&d, 0, sizeof(d));
    memset(&rec, 0, sizeof(rec));
    int r = access_decide(ctl->st, &ctl->cfg.policy, &req, false, &d, &rec);
    if (r < 0)
        return fail("check %s: %s", uid, store_why(ctl, r));

    struct badge badge;
    const char *member_id = NULL;
    if (store_badge_get(ctl->st, uid, &badge) == 0)
        member_id = badge.member_id;
    struct booking booking;
    bool have_booking = d.booking_id && store_booking_get(ctl->st, d.booking_id, &booking) == 0;
    const char *result = access_result_name(d.result);
    const char *reason = access_reason_name(d.reason);
    char id[TZ_BUFSZ], until[TZ_BUFSZ];

    if (ctl->json) {
        json_t *doc = json_checked(json_object());
        json_set(doc, "result", json_string(result));
        json_set(doc, "reason", json_string(reason));
        json_set(doc, "booking", json_booking_ref(d.booking_id));
        json_set(doc, "resource",
                 have_booking ? json_string(booking.resource_id)
                              : d.create_walk_in ? json_string(d.walk_in_resource) : json_null());
        json_set(doc, "member", json_str_or_null(member_id));
        json_set(doc, "uid", json_string(uid));
        json_set(doc, "door", json_str_or_null(door));
        json_set(doc, "direction", json_string(direction_name(DIRECTION_IN)));
        json_set(doc, "at", json_time(at));
        json_set(doc, "at_local", json_local(at));
        json_set(doc, "check_in", json_boolean(d.check_in));
        if (d.create_walk_in) {
            json_set(doc, "walk_in", json_pack("{s:s, s:o, s:o}", "resource", d.walk_in_resource, "until",
                                               json_checked(json_time(d.walk_in_until)), "until_local",
                                               json_checked(json_local(d.walk_in_until))));
        } else {
            json_set(doc, "walk_in", json_null());
        }
        return json_print(doc);
    }
    if (d.create_walk_in)
        printf("%s: %s (%s until %s)\n", result, reason, d.walk_in_resource, fmt_until(d.walk_in_until, at, until));
    else if (have_booking)
        printf("%s: %s (%s on %s)\n", result, reason, fmt_booking_id(booking.id, id), booking.resource_id);
    else if (d.booking_id)
        printf("%s: %s (%s)\n", result, reason, fmt_booking_id(d.booking_id, id));
    else
        printf("%s: %s\n", result, reason);
    return EXIT_SUCCESS;
}

/* ---------------------------------------------------------------- occupancy */

static int cmd_occupancy(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_occupancy = {"occupancy", help_occupancy, cmd_occupancy};

static json_int_t json_int_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static int cmd_occupancy(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_occupancy, "occupancy", NULL, 0, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    json_t *occ = occupancy_json(ctl->st, &ctl->cfg.policy, ctl->now);
    if (!occ)
        return fail("occupancy: %s", store_why(ctl, errno ? -errno : -EIO));
    if (ctl->json)
        return json_print(occ);

    char local[TZ_BUFSZ];
    printf("at:        %s (%s)\n", tz_format_local(ctl->now, local), tz_name());
    json_int_t present = json_int_at(occ, "present"), capacity = json_int_at(occ, "capacity");
    if (capacity > 0)
        printf("present:   %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT "\n", present, capacity);
    else
        printf("present:   %" JSON_INTEGER_FORMAT " (no capacity limit)\n", present);
    json_t *desks = json_object_get(occ, "desks");
    printf("desks:     %" JSON_INTEGER_FORMAT " total, %" JSON_INTEGER_FORMAT " free, %" JSON_INTEGER_FORMAT
           " booked, %" JSON_INTEGER_FORMAT " occupied\n",
           json_int_at(desks, "total"), json_int_at(desks, "free"), json_int_at(desks, "booked"),
           json_int_at(desks, "occupied"));
    json_t *rooms = json_object_get(occ, "rooms");
    size_t i;
    json_t *room;
    if (json_array_size(rooms) == 0)
        printf("rooms:     none\n");
    else
        printf("rooms:\n");
    json_array_foreach(rooms, i, room)
    {
        const char *rid = json_string_value(json_object_get(room, "id"));
        const char *state = json_string_value(json_object_get(room, "state"));
        const char *until_iso = json_string_value(json_object_get(room, "until"));
        int64_t until;
        if (until_iso && tz_parse_iso_utc(until_iso, &until) == 0)
            printf("  %s  %s until %s\n", rid ? rid : "?", state ? state : "?", tz_format_local(until, local));
        else
            printf("  %s  %s\n", rid ? rid : "?", state ? state : "?");
    }
    json_t *members = json_object_get(occ, "members");
    json_t *name;
    printf("members:   ");
    if (json_array_size(members) == 0)
        printf("%s", present > 0 ? "(none opted in to be shown)" : "-");
    json_array_foreach(members, i, name) printf("%s%s", i ? ", " : "", json_string_value(name) ? json_string_value(name) : "?");
    printf("\n");
    json_decref(occ);
    return EXIT_SUCCESS;
}

/* ---------------------------------------------------------------- log */

static int cmd_log(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_log = {"log", help_log, cmd_log};

static json_t *access_json(const struct access_record *rec)
{
    char bid[TZ_BUFSZ] = "";
    if (rec->booking_id)
        fmt_booking_id(rec->booking_id, bid);
    json_t *o = json_checked(json_object());
    json_set(o, "seq", json_integer(rec->seq));
    json_set(o, "at", json_time(rec->at));
    json_set(o, "at_local", json_local(rec->at));
    json_set(o, "door", json_str_or_null(rec->door));
    json_set(o, "reader", json_str_or_null(rec->reader));
    json_set(o, "direction", json_string(direction_name(rec->direction)));
    json_set(o, "result", json_string(access_result_name(rec->result)));
    json_set(o, "reason", json_string(access_reason_name(rec->reason)));
    json_set(o, "member", json_str_or_null(rec->member_id));
    json_set(o, "booking", json_str_or_null(bid));
    json_set(o, "uid", json_str_or_null(rec->badge_uid));
    json_set(o, "requested_by", json_str_or_null(rec->requested_by));
    return o;
}

static int log_cb(const struct access_record *rec, void *userdata)
{
    struct list_ctx *lc = userdata;
    char bid[TZ_BUFSZ] = "";
    if (rec->booking_id)
        fmt_booking_id(rec->booking_id, bid);
    if (lc->array) {
        if (json_array_append_new(lc->array, access_json(rec)) < 0)
            die_oom();
        return 0;
    }
    char seq[32], at[TZ_BUFSZ], member[ID_MAX + 8];
    snprintf(seq, sizeof(seq), "%" PRId64, rec->seq);
    /* A remote unlock has no member: who asked for it goes in that column. */
    if (!rec->member_id[0] && rec->requested_by[0])
        snprintf(member, sizeof(member), "by %s", rec->requested_by);
    else
        snprintf(member, sizeof(member), "%s", rec->member_id);
    const char *row[] = {seq,
                         tz_format_local(rec->at, at),
                         rec->door,
                         rec->reader,
                         direction_name(rec->direction),
                         access_result_name(rec->result),
                         access_reason_name(rec->reason),
                         member,
                         bid,
                         rec->badge_uid};
    table_add_row(&lc->table, row);
    return 0;
}

static int cmd_log(struct ctl *ctl, int argc, char **argv)
{
    enum { O_LIMIT };
    static const struct optdef defs[] = {{"limit", true}};
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_log, "log", defs, 1, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    long limit = LOG_DEFAULT_LIMIT;
    if (a.val[O_LIMIT] && !parse_int_range(a.val[O_LIMIT], 1, 1000000, &limit))
        return fail("--limit: '%s' is not a number from 1 to 1000000", a.val[O_LIMIT]);
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    struct list_ctx lc = {.ctl = ctl};
    static const char *const header[] = {"SEQ",    "TIME",   "DOOR",   "READER",  "DIR",
                                         "RESULT", "REASON", "MEMBER", "BOOKING", "UID"};
    if (ctl->json)
        lc.array = json_checked(json_array());
    else
        table_init(&lc.table, 10, header);
    int r = store_access_foreach(ctl->st, (int)limit, log_cb, &lc);
    if (r < 0) {
        json_decref(lc.array);
        if (!ctl->json)
            table_print_free(&lc.table);
        return fail("log: %s", store_why(ctl, r));
    }
    if (ctl->json)
        return json_print(lc.array);
    table_print_free(&lc.table);
    return EXIT_SUCCESS;
}

/* ---------------------------------------------------------------- outbox, sync */

static int cmd_outbox(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_outbox = {"outbox", help_outbox, cmd_outbox};
static int cmd_sync(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_sync = {"sync", help_sync, cmd_sync};

static json_t *json_seq(int64_t seq)
{
    return seq ? json_integer(seq) : json_null();
}

static int cmd_outbox(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_outbox, "outbox", NULL, 0, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    struct outbox_stats os;
    int r = store_outbox_stats(ctl->st, &os);
    if (r < 0)
        return fail("outbox: %s", store_why(ctl, r));
    if (ctl->json) {
        json_t *o = json_checked(json_object());
        json_set(o, "depth", json_integer(os.depth));
        json_set(o, "oldest_seq", json_seq(os.oldest_seq));
        json_set(o, "oldest_at", json_time(os.depth ? os.oldest_at : 0));
        json_set(o, "oldest_kind", json_str_or_null(os.depth ? os.oldest_kind : NULL));
        json_set(o, "newest_seq", json_seq(os.newest_seq));
        json_set(o, "dropped", json_integer(os.dropped));
        return json_print(o);
    }
    if (os.depth == 0) {
        printf("outbox: empty; %" PRId64 " dropped\n", os.dropped);
        return EXIT_SUCCESS;
    }
    char local[TZ_BUFSZ];
    printf("outbox: %" PRId64 " event%s waiting, oldest #%" PRId64 " (%s) at %s; %" PRId64 " dropped\n", os.depth,
           os.depth == 1 ? "" : "s", os.oldest_seq, os.oldest_kind, tz_format_local(os.oldest_at, local), os.dropped);
    return EXIT_SUCCESS;
}

static json_t *sync_scope_json(int64_t version, int64_t applied_at)
{
    json_t *o = json_checked(json_object());
    json_set(o, "version", version ? json_integer(version) : json_null());
    json_set(o, "applied_at", json_time(version ? applied_at : 0));
    return o;
}

static void print_sync_line(const char *label, int64_t version, int64_t applied_at)
{
    char local[TZ_BUFSZ];
    if (!version)
        printf("%s: none applied yet\n", label);
    else
        printf("%s: version %" PRId64 ", applied %s\n", label, version, tz_format_local(applied_at, local));
}

static int cmd_sync(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_sync, "sync", NULL, 0, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    int64_t site_v, site_at, net_v, net_at;
    int r = sync_last_version(ctl->st, SYNC_SITE, &site_v, &site_at);
    if (r == 0)
        r = sync_last_version(ctl->st, SYNC_NETWORK, &net_v, &net_at);
    if (r < 0)
        return fail("sync: %s", store_why(ctl, r));
    if (ctl->json) {
        json_t *o = json_checked(json_object());
        json_set(o, "site", sync_scope_json(site_v, site_at));
        json_set(o, "network", sync_scope_json(net_v, net_at));
        return json_print(o);
    }
    print_sync_line("site sync", site_v, site_at);
    print_sync_line("network sync", net_v, net_at);
    return EXIT_SUCCESS;
}

/* ---------------------------------------------------------------- closure */

static int cmd_closure(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_closure = {"closure", help_closure, cmd_closure};

static const char *const weekday_names[7] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                             "Thursday", "Friday", "Saturday"};

static int closure_add(struct ctl *ctl, int argc, char **argv)
{
    enum { O_REASON };
    static const struct optdef defs[] = {{"reason", true}};
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_closure, "closure add", defs, 1, 1, 1, "DATE", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)))
        return rc;
    int ymd;
    if ((rc = parse_date_arg("closure add", a.pos[0], &ymd)))
        return rc;
    char date[TZ_BUFSZ], what[64];
    tz_format_ymd(ymd, date);
    snprintf(what, sizeof(what), "closure add %s", date);
    const char *reason = a.val[O_REASON] ? a.val[O_REASON] : "";
    if ((rc = check_text(what, "--reason", reason, TEXT_MAX, true)))
        return rc;
    if ((rc = ctl_open_store(ctl)))
        return rc;
    int r = store_closure_add(ctl->st, ymd, reason);
    if (r == -EEXIST)
        return fail("%s: already exists", what);
    if (r < 0)
        return fail("%s: %s", what, store_why(ctl, r));
    return confirm(ctl, json_pack("{s:s, s:s}", "date", date, "reason", reason), "added closure %s (%s%s%s)", date,
                   weekday_names[tz_ymd_wday(ymd)], *reason ? ", " : "", reason);
}

static int closure_list_cb(int ymd, const char *reason, void *userdata)
{
    struct list_ctx *lc = userdata;
    char date[TZ_BUFSZ];
    tz_format_ymd(ymd, date);
    if (lc->array) {
        json_t *o = json_pack("{s:s, s:s, s:o}", "date", date, "weekday", weekday_names[tz_ymd_wday(ymd)], "reason",
                              json_checked(json_str_or_null(reason)));
        if (json_array_append_new(lc->array, json_checked(o)) < 0)
            die_oom();
        return 0;
    }
    const char *row[] = {date, weekday_names[tz_ymd_wday(ymd)], reason};
    table_add_row(&lc->table, row);
    return 0;
}

static int closure_list(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_closure, "closure list", NULL, 0, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    struct list_ctx lc = {.ctl = ctl};
    static const char *const header[] = {"DATE", "DAY", "REASON"};
    if (ctl->json)
        lc.array = json_checked(json_array());
    else
        table_init(&lc.table, 3, header);
    int r = store_closure_foreach(ctl->st, closure_list_cb, &lc);
    if (r < 0) {
        json_decref(lc.array);
        if (!ctl->json)
            table_print_free(&lc.table);
        return fail("closure list: %s", store_why(ctl, r));
    }
    if (ctl->json)
        return json_print(lc.array);
    table_print_free(&lc.table);
    return EXIT_SUCCESS;
}

static int closure_remove(struct ctl *ctl, int argc, char **argv)
{
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_closure, "closure remove", NULL, 0, 1, 1, "DATE", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if ((rc = ctl_load_config(ctl)))
        return rc;
    int ymd;
    if ((rc = parse_date_arg("closure remove", a.pos[0], &ymd)))
        return rc;
    if ((rc = ctl_open_store(ctl)))
        return rc;
    char date[TZ_BUFSZ];
    tz_format_ymd(ymd, date);
    int r = store_closure_remove(ctl->st, ymd);
    if (r == -ENOENT)
        return fail("closure remove %s: no closure on that day", date);
    if (r < 0)
        return fail("closure remove %s: %s", date, store_why(ctl, r));
    return confirm(ctl, json_pack("{s:s}", "date", date), "removed closure %s", date);
}

static int cmd_closure(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("closure", "closure: missing subcommand (add, list, remove)");
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(help_closure, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(sub, "add") == 0)
        return closure_add(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return closure_list(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "remove") == 0)
        return closure_remove(ctl, argc - 1, argv + 1);
    return usage_error("closure", "closure: unknown subcommand '%s'", sub);
}

/* ---------------------------------------------------------------- backup */

static int cmd_backup(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_backup = {"backup", help_backup, cmd_backup};

static void backup_progress(int remaining, int total, void *userdata)
{
    (void)userdata;
    if (total > 0)
        fprintf(stderr, "\rbackup: %3d%%", (int)(100LL * (total - remaining) / total));
}

/* "1.2 MiB" */
static char *fmt_size(int64_t bytes, char *buf, size_t len)
{
    if (bytes < 1024)
        snprintf(buf, len, "%" PRId64 " bytes", bytes);
    else if (bytes < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", (double)bytes / 1024);
    else
        snprintf(buf, len, "%.1f MiB", (double)bytes / (1024 * 1024));
    return buf;
}

static int cmd_backup(struct ctl *ctl, int argc, char **argv)
{
    enum { O_FORCE, O_STEP_PAGES, O_PAUSE_MS };
    static const struct optdef defs[] = {{"force", false}, {"step-pages", true}, {"pause-ms", true}};
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_backup, "backup", defs, 3, 1, 1, "FILE", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    struct store_backup_options opt = {.overwrite = a.val[O_FORCE] != NULL};
    long v;
    if (a.val[O_STEP_PAGES]) {
        if (!parse_int_range(a.val[O_STEP_PAGES], 1, 1000000, &v))
            return fail("--step-pages: '%s' is not a number from 1 to 1000000", a.val[O_STEP_PAGES]);
        opt.pages_per_step = (int)v;
    }
    if (a.val[O_PAUSE_MS]) {
        if (!parse_int_range(a.val[O_PAUSE_MS], 0, 10000, &v))
            return fail("--pause-ms: '%s' is not a number from 0 to 10000", a.val[O_PAUSE_MS]);
        opt.pause_ms = (int)v;
    }
    const char *file = a.pos[0];
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    bool show_progress = !ctl->json && isatty(STDERR_FILENO);
    if (show_progress)
        opt.progress = backup_progress;
    struct store_backup_result res;
    uint64_t t0 = clock_mono_ms();
    int r = store_backup(ctl->st, file, &opt, &res);
    uint64_t ms = clock_mono_ms() - t0;
    if (show_progress && res.steps > 0)
        fputs("\r             \r", stderr);
    if (r == -EEXIST)
        return fail("backup %s: %s (--force replaces it)", file, store_errmsg(ctl->st));
    if (r < 0)
        return fail("backup %s: %s", file, store_errmsg(ctl->st));
    char size[32];
    json_t *extra = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:i}", "database", ctl->db_path, "file", file,
                              "bytes", (json_int_t)res.bytes, "pages", (json_int_t)res.pages, "page_size",
                              (json_int_t)res.page_size, "milliseconds", (json_int_t)ms, "steps", res.steps,
                              "busy_retries", res.busy_retries);
    return confirm(ctl, extra, "backed up %s to %s: %s (%" PRId64 " pages of %" PRId64 " bytes) in %.2f s", ctl->db_path,
                   file, fmt_size(res.bytes, size, sizeof size), res.pages, res.page_size, (double)ms / 1000.0);
}

/* ---------------------------------------------------------------- export */

static int cmd_export(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_export = {"export", help_export, cmd_export};

struct export_ctx {
    json_t *array;
    const char *member_id;
    int64_t count;
};

static int export_badge_cb(const struct badge *b, void *userdata)
{
    struct export_ctx *ec = userdata;
    if (strcmp(b->member_id, ec->member_id) != 0)
        return 0;
    if (json_array_append_new(ec->array, badge_json(b)) < 0)
        die_oom();
    ec->count++;
    return 0;
}

static int export_booking_cb(const struct booking *b, void *userdata)
{
    struct export_ctx *ec = userdata;
    if (json_array_append_new(ec->array, booking_json(b)) < 0)
        die_oom();
    ec->count++;
    return 0;
}

static int export_access_cb(const struct access_record *rec, void *userdata)
{
    struct export_ctx *ec = userdata;
    if (json_array_append_new(ec->array, access_json(rec)) < 0)
        die_oom();
    ec->count++;
    return 0;
}

/* Writes the document to a new file (mode 0600: it is personal data); on failure no file is left. */
static int export_write(const char *what, const char *file, bool force, json_t *doc)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (force ? 0 : O_EXCL), 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return fail("%s: %s already exists (--force replaces it)", what, file);
        if (errno == ELOOP)
            return fail("%s: %s is a symbolic link: refusing to follow it", what, file);
        return fail("%s: cannot create %s: %s", what, file, strerror(errno));
    }
    /* --force replaces only a file of ours alone, made private before anything is written: not one
     * someone else made (and could read), not a hard link to another file (truncated with it). */
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() || sb.st_nlink != 1) {
        close(fd);
        return fail("%s: %s is not a file of this user alone: refusing to replace it", what, file);
    }
    if (fchmod(fd, 0600) < 0 || ftruncate(fd, 0) < 0) {
        int e = errno;
        close(fd);
        return fail("%s: %s: %s", what, file, strerror(e));
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(file);
        return fail("%s: %s: %s", what, file, strerror(e));
    }
    int r = json_dumpf(doc, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (r == 0 && fputc('\n', f) == EOF)
        r = -1;
    if (r == 0 && fflush(f) != 0)
        r = -1;
    if (r == 0 && fsync(fileno(f)) != 0)
        r = -1;
    int e = errno;
    if (fclose(f) != 0 && r == 0) {
        r = -1;
        e = errno;
    }
    if (r < 0) {
        unlink(file);
        return fail("%s: cannot write %s: %s", what, file, strerror(e ? e : EIO));
    }
    return EXIT_SUCCESS;
}

static int cmd_export(struct ctl *ctl, int argc, char **argv)
{
    enum { O_OUTPUT, O_FORCE };
    static const struct optdef defs[] = {{"output", true}, {"force", false}};
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_export, "export", defs, 2, 1, 1, "ID", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    if (a.val[O_OUTPUT] && !*a.val[O_OUTPUT])
        return usage_error("export", "export: --output needs a file name");
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    char what[128];
    snprintf(what, sizeof(what), "export %s", a.pos[0]);
    struct member m;
    if ((rc = member_lookup(ctl, what, a.pos[0], &m)))
        return rc;

    int today = tz_local_ymd(ctl->now);
    json_t *doc = json_checked(json_object());
    json_set(doc, "format", json_string("telecentred-member-export/1"));
    json_set(doc, "generated_at", json_time(ctl->now));
    json_set(doc, "site", json_pack("{s:s, s:o}", "id", ctl->cfg.site_id, "name",
                                    json_checked(json_str_or_null(ctl->cfg.site_name))));
    json_set(doc, "log_retention_days", json_integer(ctl->cfg.log_retention_days));
    json_set(doc, "member", member_json(&m, today));

    struct export_ctx badges = {.array = json_checked(json_array()), .member_id = m.id};
    struct export_ctx bookings = {.array = json_checked(json_array()), .member_id = m.id};
    struct export_ctx log = {.array = json_checked(json_array()), .member_id = m.id};
    json_set(doc, "badges", badges.array);
    json_set(doc, "bookings", bookings.array);
    int r = store_badge_foreach(ctl->st, export_badge_cb, &badges);
    if (r >= 0)
        r = store_member_booking_foreach(ctl->st, m.id, export_booking_cb, &bookings);
    struct presence p;
    int have_presence = 0;
    if (r >= 0) {
        r = store_presence_get(ctl->st, m.id, &p);
        have_presence = r == 0;
        if (r == -ENOENT)
            r = 0;
    }
    if (have_presence) {
        json_t *o = json_checked(json_object());
        json_set(o, "since", json_time(p.since));
        json_set(o, "since_local", json_local(p.since));
        json_set(o, "expected_end", json_time(p.expected_end));
        json_set(o, "expected_end_local", json_local(p.expected_end));
        json_set(o, "booking", json_booking_ref(p.booking_id));
        json_set(o, "present_now", json_boolean(p.expected_end > ctl->now));
        json_set(doc, "presence", o);
    } else {
        json_set(doc, "presence", json_null());
    }
    json_set(doc, "access_log", log.array);
    if (r >= 0)
        r = store_member_access_foreach(ctl->st, m.id, export_access_cb, &log);
    if (r < 0) {
        json_decref(doc);
        return fail("%s: %s", what, store_why(ctl, r));
    }

    if (!a.val[O_OUTPUT])
        return json_print(doc);
    const char *file = a.val[O_OUTPUT];
    rc = export_write(what, file, a.val[O_FORCE] != NULL, doc);
    json_decref(doc);
    if (rc != EXIT_SUCCESS)
        return rc;
    json_t *extra = json_pack("{s:s, s:s, s:I, s:I, s:I}", "member", m.id, "file", file, "badges",
                              (json_int_t)badges.count, "bookings", (json_int_t)bookings.count, "access_log",
                              (json_int_t)log.count);
    return confirm(ctl, extra, "exported member %s to %s: %" PRId64 " badge%s, %" PRId64 " booking%s, %" PRId64
                   " access-log row%s", m.id, file, badges.count, badges.count == 1 ? "" : "s", bookings.count,
                   bookings.count == 1 ? "" : "s", log.count, log.count == 1 ? "" : "s");
}

/* ---------------------------------------------------------------- purge */

static int cmd_purge(struct ctl *ctl, int argc, char **argv);
static const struct group cmdgroup_purge = {"purge", help_purge, cmd_purge};

#define PURGE_PAUSE_MS 20   /* between steps: room for the daemon's writes */

static int cmd_purge(struct ctl *ctl, int argc, char **argv)
{
    enum { O_DRY_RUN };
    static const struct optdef defs[] = {{"dry-run", false}};
    struct args a;
    int rc = parse_args(ctl, &cmdgroup_purge, "purge", defs, 1, 0, 0, "", argc, argv, &a);
    if (rc != ARGS_CONTINUE)
        return rc;
    bool dry_run = a.val[O_DRY_RUN] != NULL;
    if ((rc = ctl_load_config(ctl)) || (rc = ctl_open_store(ctl)))
        return rc;
    int days = ctl->cfg.log_retention_days;
    int64_t before = ctl->now - (int64_t)days * 86400;
    struct store_purge_counts counts;
    int r = dry_run ? store_purge_count(ctl->st, before, &counts)
                    : store_purge(ctl->st, before, STORE_PURGE_BATCH, PURGE_PAUSE_MS, &counts);
    if (r < 0) {
        if (!dry_run && (counts.access_log || counts.presence))
            return fail("purge: %s (after deleting %" PRId64 " access-log rows and %" PRId64 " presence rows)",
                        store_why(ctl, r), counts.access_log, counts.presence);
        return fail("purge: %s", store_why(ctl, r));
    }
    char cutoff[TZ_BUFSZ];
    tz_format_local(before, cutoff);
    json_t *extra = json_pack("{s:b, s:i, s:o, s:I, s:I}", "dry_run", dry_run, "log_retention_days", days, "before",
                              json_checked(json_time(before)), "access_log", (json_int_t)counts.access_log,
                              "presence", (json_int_t)counts.presence);
    return confirm(ctl, extra, "%s %" PRId64 " access-log row%s and %" PRId64 " presence row%s older than %s (%d day%s)",
                   dry_run ? "would purge" : "purged", counts.access_log, counts.access_log == 1 ? "" : "s",
                   counts.presence, counts.presence == 1 ? "" : "s", cutoff, days, days == 1 ? "" : "s");
}

/* ---------------------------------------------------------------- main */

static const struct group *const groups[] = {
    &cmdgroup_init,  &cmdgroup_member, &cmdgroup_badge,     &cmdgroup_resource, &cmdgroup_book,
    &cmdgroup_booking, &cmdgroup_check, &cmdgroup_occupancy, &cmdgroup_log,      &cmdgroup_closure,
    &cmdgroup_outbox, &cmdgroup_sync,   &cmdgroup_backup, &cmdgroup_export, &cmdgroup_purge,
};
#define N_GROUPS (sizeof(groups) / sizeof(groups[0]))

static const struct group *find_group(const char *name)
{
    for (size_t i = 0; i < N_GROUPS; i++)
        if (strcmp(groups[i]->name, name) == 0)
            return groups[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        fputs(global_help, stdout);
        return EXIT_SUCCESS;
    }
    if (argc > 2)
        return usage_error(NULL, "help: unexpected argument '%s'", argv[2]);
    const struct group *g = find_group(argv[1]);
    if (!g)
        return usage_error(NULL, "help: unknown command '%s'", argv[1]);
    fputs(g->help, stdout);
    return EXIT_SUCCESS;
}

/* Global options stop at the command word: what follows belongs to the command. */
static int run(struct ctl *ctl, int argc, char **argv)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0')
            break;
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(global_help, stdout);
            return EXIT_SUCCESS;
        }
        if (strcmp(arg, "--version") == 0) {
            printf(PROG " %s\n", TELECENTRED_VERSION);
            return EXIT_SUCCESS;
        }
        if (strcmp(arg, "--json") == 0) {
            ctl->json = true;
            continue;
        }
        const char **target = NULL;
        const char *value = NULL;
        if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0)
            target = &ctl->config_path;
        else if (strcmp(arg, "-d") == 0 || strcmp(arg, "--db") == 0)
            target = &ctl->db_override;
        else if (strncmp(arg, "--config=", 9) == 0)
            target = &ctl->config_path, value = arg + 9;
        else if (strncmp(arg, "--db=", 5) == 0)
            target = &ctl->db_override, value = arg + 5;
        else
            return usage_error(NULL, "unknown option '%s'", arg);
        if (!value) {
            if (i + 1 >= argc)
                return usage_error(NULL, "%s needs a value", arg);
            value = argv[++i];
        }
        if (!*value)
            return usage_error(NULL, "%s needs a non-empty value", arg);
        *target = value;
    }
    if (i >= argc)
        return usage_error(NULL, "missing command");
    const char *command = argv[i];
    if (strcmp(command, "help") == 0)
        return cmd_help(argc - i, argv + i);
    const struct group *g = find_group(command);
    if (!g)
        return usage_error(NULL, "unknown command '%s'", command);
    return g->run(ctl, argc - i, argv + i);
}

int main(int argc, char **argv)
{
    struct ctl ctl;
    memset(&ctl, 0, sizeof(ctl));
    int rc = run(&ctl, argc, argv);
    store_close(ctl.st);
    if (fflush(stdout) != 0 && rc == EXIT_SUCCESS)
        return fail("output: %s", strerror(errno));
    return rc;
}
