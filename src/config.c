/* The INI configuration.
 *
 * libinih does the tokenising; everything else is ours. Debian's inih is built without
 * INI_HANDLER_LINENO, so the file is fed through our own line reader (ini_parse_stream), which counts
 * lines, parses section headers itself (inih truncates section names at 49 bytes, and a section with
 * no keys never reaches the handler) and refuses malformed lines with a precise message. Keys are mapped
 * declaratively to a parser and an offset in the target struct, one table per section kind. The first
 * error stops everything: the reader returns EOF as soon as an error is recorded.
 *
 * Nothing here changes process state (no tz_set, no setlocale): the daemon and the CLI both load the
 * file, and `telecentred --check-config` must be side-effect free. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROBLEM_MAX 320
#define SECTION_NAME_MAX 80
#define MAX_SECTIONS (16 + CONFIG_MAX_DOORS + CONFIG_MAX_READERS)
#define MAX_KEYS_PER_SECTION 16

/* ---------------------------------------------------------------------------------------------------
 * Value parsers. Each writes the parsed value into field, or returns -EINVAL with a problem text
 * ("must be ..., got '...'") that the caller prefixes with file, line, section and key. */

struct key_spec;
typedef int (*value_parser)(const struct key_spec *key, const char *value, void *field, char *problem,
                            size_t problem_len);

struct key_spec {
    const char *name;
    value_parser parse;
    size_t offset;        /* into struct config, struct door_config or struct reader_config */
    size_t size;          /* string fields: buffer size */
    int min, max;         /* integer fields */
    bool required;        /* an empty value is an error */
};

static bool is_ascii_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool chars_in(const char *s, const char *extra)
{
    for (; *s; s++)
        if (!is_ascii_alnum(*s) && !strchr(extra, *s))
            return false;
    return true;
}

/* 1..max_len characters from A-Z a-z 0-9 and extra. */
static bool is_token(const char *s, const char *extra, size_t max_len)
{
    size_t len = strlen(s);
    return len >= 1 && len <= max_len && chars_in(s, extra);
}

static bool has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static int store_string(const struct key_spec *key, const char *value, void *field, char *problem,
                        size_t problem_len)
{
    size_t len = strlen(value);
    if (len >= key->size) {
        snprintf(problem, problem_len, "too long (at most %zu bytes), got %zu", key->size - 1, len);
        return -EINVAL;
    }
    memcpy(field, value, len + 1);
    return 0;
}

static int parse_text(const struct key_spec *key, const char *value, void *field, char *problem,
                      size_t problem_len)
{
    if (key->required && !*value) {
        snprintf(problem, problem_len, "must not be empty");
        return -EINVAL;
    }
    if (has_control_chars(value)) {
        snprintf(problem, problem_len, "must not contain control characters");
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

/* Absolute, so that the daemon (cwd / under systemd) and telecentrectl run from anywhere agree on
 * which file they mean. Empty is allowed for optional keys ("not set"). */
static int parse_path(const struct key_spec *key, const char *value, void *field, char *problem,
                      size_t problem_len)
{
    if (!*value && !key->required)
        return store_string(key, value, field, problem, problem_len);
    if (value[0] != '/' || has_control_chars(value)) {
        snprintf(problem, problem_len, "must be an absolute path (starting with '/'), got '%s'", value);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

static int parse_site_id(const struct key_spec *key, const char *value, void *field, char *problem,
                         size_t problem_len)
{
    if (!is_token(value, "._-", key->size - 1)) {
        snprintf(problem, problem_len, "must be 1 to %zu characters from A-Z a-z 0-9 . _ -, got '%s'",
                 key->size - 1, value);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

static bool is_object_name(const char *s)
{
    return is_token(s, "_-", ID_MAX - 1);
}

static int parse_door_ref(const struct key_spec *key, const char *value, void *field, char *problem,
                          size_t problem_len)
{
    if (!is_object_name(value)) {
        snprintf(problem, problem_len,
                 "must name a [door.NAME] section (1 to %d characters from A-Z a-z 0-9 _ -), got '%s'",
                 ID_MAX - 1, value);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

static int parse_int(const struct key_spec *key, const char *value, void *field, char *problem,
                     size_t problem_len)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(value, &end, 10);
    /* strtol accepts leading blanks and a '+': "whole number" means digits, optionally a '-'. */
    bool digits_only = *value && (value[0] == '-' || (value[0] >= '0' && value[0] <= '9'));
    if (!digits_only || errno || end == value || *end || n < key->min || n > key->max) {
        snprintf(problem, problem_len, "must be a whole number between %d and %d, got '%s'", key->min,
                 key->max, value);
        return -EINVAL;
    }
    *(int *)field = (int)n;
    return 0;
}

static int parse_bool(const struct key_spec *key, const char *value, void *field, char *problem,
                      size_t problem_len)
{
    static const char *const truths[] = {"true", "yes", "on", "1"};
    static const char *const lies[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof truths / sizeof truths[0]; i++) {
        if (!strcasecmp(value, truths[i])) {
            *(bool *)field = true;
            return 0;
        }
        if (!strcasecmp(value, lies[i])) {
            *(bool *)field = false;
            return 0;
        }
    }
    snprintf(problem, problem_len, "must be true or false (or yes/no, on/off, 1/0), got '%s'", value);
    return -EINVAL;
}

/* An IANA name whose compiled zone file is installed. glibc silently falls back to UTC for an unknown
 * TZ, which would shift every opening hour: refuse it here, without touching the process's TZ. */
static int parse_timezone(const struct key_spec *key, const char *value, void *field, char *problem,
                          size_t problem_len)
{
    if (!is_token(value, "._+/-", key->size - 1) || value[0] == '/' || strstr(value, "..")) {
        snprintf(problem, problem_len, "must be an IANA timezone name such as Europe/Paris, got '%s'",
                 value);
        return -EINVAL;
    }
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, value) >= (int)sizeof path) {
        snprintf(problem, problem_len, "timezone name too long, got '%s'", value);
        return -EINVAL;
    }
    FILE *f = fopen(path, "re");
    char magic[4] = {0};
    bool is_zone = f && fread(magic, 1, sizeof magic, f) == sizeof magic && !memcmp(magic, "TZif", 4);
    if (f)
        fclose(f);
    if (!is_zone) {
        snprintf(problem, problem_len, "unknown timezone '%s' (no zone file %s; is tzdata installed?)",
                 value, path);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

/* "H:MM" or "HH:MM", 00:00..24:00, into minutes of the day; -1 when malformed. */
static int parse_clock_time(const char *s, size_t len)
{
    if (len < 4 || len > 5 || s[len - 3] != ':')
        return -1;
    int hours = 0;
    for (size_t i = 0; i < len - 3; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        hours = hours * 10 + (s[i] - '0');
    }
    if (s[len - 2] < '0' || s[len - 2] > '5' || s[len - 1] < '0' || s[len - 1] > '9')
        return -1;
    int minutes = (s[len - 2] - '0') * 10 + (s[len - 1] - '0');
    if (hours > 24 || (hours == 24 && minutes))
        return -1;
    return hours * 60 + minutes;
}

static int parse_hours(const struct key_spec *key, const char *value, void *field, char *problem,
                       size_t problem_len)
{
    struct day_hours *day = field;
    if (!strcasecmp(value, "closed")) {
        *day = (struct day_hours){.closed = true, .open_min = 0, .close_min = 0};
        return 0;
    }
    const char *dash = strchr(value, '-');
    int open_min = -1, close_min = -1;
    if (dash) {
        const char *open_end = dash, *close_start = dash + 1;
        while (open_end > value && (open_end[-1] == ' ' || open_end[-1] == '\t'))
            open_end--;
        while (*close_start == ' ' || *close_start == '\t')
            close_start++;
        open_min = parse_clock_time(value, (size_t)(open_end - value));
        close_min = parse_clock_time(close_start, strlen(close_start));
    }
    if (open_min < 0 || close_min < 0 || open_min == 24 * 60) {
        snprintf(problem, problem_len, "must be HH:MM-HH:MM (such as 08:00-19:00) or closed, got '%s'",
                 value);
        return -EINVAL;
    }
    if (open_min >= close_min) {
        snprintf(problem, problem_len,
                 "opening time must be before closing time (hours cannot run past midnight; "
                 "use 24:00 as closing time), got '%s'",
                 value);
        return -EINVAL;
    }
    *day = (struct day_hours){.closed = false, .open_min = open_min, .close_min = close_min};
    return 0;
}

static bool is_gpio_line_name(const char *s)
{
    if (strlen(s) >= CONFIG_LINE_NAME_MAX)
        return false;
    const char *colon = strchr(s, ':');
    if (!colon)
        return is_token(s, "_.-", CONFIG_LINE_NAME_MAX - 1);
    /* CHIP:OFFSET */
    char chip[CONFIG_LINE_NAME_MAX];
    size_t chip_len = (size_t)(colon - s);
    memcpy(chip, s, chip_len);
    chip[chip_len] = '\0';
    if (!is_token(chip, "_.-", sizeof chip - 1))
        return false;
    const char *offset = colon + 1;
    size_t offset_len = strlen(offset);
    if (offset_len < 1 || offset_len > 4 || strspn(offset, "0123456789") != offset_len)
        return false;
    return atoi(offset) <= 1023;
}

static int parse_gpio_line(const struct key_spec *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
    if (!*value) {
        if (!key->required)
            return store_string(key, value, field, problem, problem_len);
        snprintf(problem, problem_len, "must not be empty");
        return -EINVAL;
    }
    if (!is_gpio_line_name(value)) {
        snprintf(problem, problem_len,
                 "must be a GPIO line as CHIP:OFFSET (gpiochip0:17, offset 0..1023) or a line name "
                 "(GPIO17), got '%s'",
                 value);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

static int parse_reader_driver(const struct key_spec *key, const char *value, void *field, char *problem,
                               size_t problem_len)
{
    enum reader_driver *driver = field;
    if (!strcmp(value, "libnfc"))
        *driver = READER_DRIVER_LIBNFC;
    else if (!strcmp(value, "sim"))
        *driver = READER_DRIVER_SIM;
    else {
        snprintf(problem, problem_len, "must be libnfc or sim, got '%s'", value);
        return -EINVAL;
    }
    return 0;
}

static int parse_gpio_driver(const struct key_spec *key, const char *value, void *field, char *problem,
                             size_t problem_len)
{
    enum gpio_driver *driver = field;
    if (!strcmp(value, "gpiod"))
        *driver = GPIO_DRIVER_GPIOD;
    else if (!strcmp(value, "sim"))
        *driver = GPIO_DRIVER_SIM;
    else {
        snprintf(problem, problem_len, "must be gpiod or sim, got '%s'", value);
        return -EINVAL;
    }
    return 0;
}

static int parse_direction(const struct key_spec *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
    enum direction *direction = field;
    if (!strcmp(value, "in"))
        *direction = DIRECTION_IN;
    else if (!strcmp(value, "out"))
        *direction = DIRECTION_OUT;
    else {
        snprintf(problem, problem_len, "must be in or out, got '%s'", value);
        return -EINVAL;
    }
    return 0;
}

/* "last", "any" or a CPU number. */
static int parse_reader_cpu(const struct key_spec *key, const char *value, void *field, char *problem,
                            size_t problem_len)
{
    (void)key;
    int *cpu = field;
    char *end;
    if (!strcmp(value, "last")) {
        *cpu = READER_CPU_LAST;
        return 0;
    }
    if (!strcmp(value, "any")) {
        *cpu = READER_CPU_ANY;
        return 0;
    }
    errno = 0;
    long n = strtol(value, &end, 10);
    if (*value < '0' || *value > '9' || *end || errno || n > 1023) {
        snprintf(problem, problem_len, "must be last, any or a CPU number from 0 to 1023, got '%s'", value);
        return -EINVAL;
    }
    *cpu = (int)n;
    return 0;
}

/* libnfc connection strings: "pn532_uart:/dev/ttyAMA0", "pn532_i2c:/dev/i2c-1", "acr122_usb". */
static int parse_connstring(const struct key_spec *key, const char *value, void *field, char *problem,
                            size_t problem_len)
{
    if (*value && (has_control_chars(value) || strpbrk(value, " \t"))) {
        snprintf(problem, problem_len,
                 "must be a libnfc connection string such as pn532_uart:/dev/ttyAMA0, got '%s'", value);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

static int parse_mqtt_host(const struct key_spec *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
    if (*value && !is_token(value, ".:_-", key->size - 1)) {
        snprintf(problem, problem_len, "must be a host name or an IP address, got '%s'", value);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

/* A topic prefix: one or more levels, no wildcards, no '$' (reserved by brokers), no empty level. */
static int parse_mqtt_prefix(const struct key_spec *key, const char *value, void *field, char *problem,
                             size_t problem_len)
{
    size_t len = strlen(value);
    if (!is_token(value, "._/-", key->size - 1) || value[0] == '/' || value[len - 1] == '/' ||
        strstr(value, "//")) {
        snprintf(problem, problem_len,
                 "must be topic levels of A-Z a-z 0-9 . _ - separated by single '/' (such as "
                 "telecentre or lozere/telecentre), got '%s'",
                 value);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

static int parse_client_id(const struct key_spec *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
    if (!is_token(value, "._:-", key->size - 1)) {
        snprintf(problem, problem_len, "must be 1 to %zu characters from A-Z a-z 0-9 . _ : -, got '%s'",
                 key->size - 1, value);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

/* A full topic to subscribe to (no wildcards); empty: none. */
static int parse_mqtt_topic(const struct key_spec *key, const char *value, void *field, char *problem,
                            size_t problem_len)
{
    size_t len = strlen(value);
    if (len && (!is_token(value, "._/-", key->size - 1) || value[0] == '/' || value[len - 1] == '/' ||
                strstr(value, "//"))) {
        snprintf(problem, problem_len,
                 "must be topic levels of A-Z a-z 0-9 . _ - separated by single '/' (such as "
                 "telecentre/network/sync), got '%.200s'",
                 value);
        return -EINVAL;
    }
    return store_string(key, value, field, problem, problem_len);
}

/* ---------------------------------------------------------------------------------------------------
 * The key tables. */

#define CFG(member) offsetof(struct config, member), sizeof(((struct config *)0)->member)
#define DOOR(member) offsetof(struct door_config, member), sizeof(((struct door_config *)0)->member)
#define READER(member) offsetof(struct reader_config, member), sizeof(((struct reader_config *)0)->member)

static const struct key_spec site_keys[] = {
    {"id", parse_site_id, CFG(site_id), 0, 0, true},
    {"name", parse_text, CFG(site_name), 0, 0, false},
    {"timezone", parse_timezone, CFG(timezone), 0, 0, true},
    {"capacity", parse_int, CFG(policy.capacity), 0, 100000, true},
};
static const struct key_spec database_keys[] = {
    {"path", parse_path, CFG(db_path), 0, 0, true},
};
/* struct tm's weekday numbering: Sunday is 0. */
static const struct key_spec hours_keys[] = {
    {"mon", parse_hours, CFG(policy.hours[1]), 0, 0, true},
    {"tue", parse_hours, CFG(policy.hours[2]), 0, 0, true},
    {"wed", parse_hours, CFG(policy.hours[3]), 0, 0, true},
    {"thu", parse_hours, CFG(policy.hours[4]), 0, 0, true},
    {"fri", parse_hours, CFG(policy.hours[5]), 0, 0, true},
    {"sat", parse_hours, CFG(policy.hours[6]), 0, 0, true},
    {"sun", parse_hours, CFG(policy.hours[0]), 0, 0, true},
};
static const struct key_spec policy_keys[] = {
    {"early_minutes", parse_int, CFG(policy.early_minutes), 0, 720, true},
    {"late_minutes", parse_int, CFG(policy.late_minutes), 0, 720, true},
    {"no_show_minutes", parse_int, CFG(policy.no_show_minutes), 1, 1440, true},
    {"walk_in", parse_bool, CFG(policy.walk_in), 0, 0, true},
    {"walk_in_min_minutes", parse_int, CFG(policy.walk_in_min_minutes), 1, 1440, true},
    {"max_badge_denials", parse_int, CFG(policy.max_badge_denials), 1, 1000, true},
    {"max_reader_denials", parse_int, CFG(policy.max_reader_denials), 1, 10000, true},
    {"denial_window_s", parse_int, CFG(policy.denial_window_s), 1, 86400, true},
};
static const struct key_spec door_keys[] = {
    {"relay", parse_gpio_line, DOOR(relay), 0, 0, true},
    {"relay_active_low", parse_bool, DOOR(relay_active_low), 0, 0, true},
    {"unlock_ms", parse_int, DOOR(unlock_ms), 100, 60000, true},
    {"contact", parse_gpio_line, DOOR(contact), 0, 0, false},
    {"contact_active_low", parse_bool, DOOR(contact_active_low), 0, 0, true},
    {"rex", parse_gpio_line, DOOR(rex), 0, 0, false},
    {"rex_active_low", parse_bool, DOOR(rex_active_low), 0, 0, true},
    {"led_green", parse_gpio_line, DOOR(led_green), 0, 0, false},
    {"led_red", parse_gpio_line, DOOR(led_red), 0, 0, false},
    {"buzzer", parse_gpio_line, DOOR(buzzer), 0, 0, false},
    {"held_open_s", parse_int, DOOR(held_open_s), 1, 3600, true},
    {"debounce_ms", parse_int, DOOR(debounce_ms), 0, 1000, true},
};
static const struct key_spec reader_keys[] = {
    {"driver", parse_reader_driver, READER(driver), 0, 0, true},
    {"connstring", parse_connstring, READER(connstring), 0, 0, false},
    {"fifo", parse_path, READER(fifo), 0, 0, false},
    {"door", parse_door_ref, READER(door), 0, 0, true},
    {"direction", parse_direction, READER(direction), 0, 0, true},
    {"poll_ms", parse_int, READER(poll_ms), 20, 2000, true},
    {"rearm_s", parse_int, READER(rearm_s), 0, 3600, true},
    {"cpu", parse_reader_cpu, READER(cpu), 0, 0, true},
};
static const struct key_spec gpio_keys[] = {
    {"driver", parse_gpio_driver, CFG(gpio_driver), 0, 0, true},
    {"fifo", parse_path, CFG(gpio_fifo), 0, 0, false},
};
static const struct key_spec mqtt_keys[] = {
    {"host", parse_mqtt_host, CFG(mqtt.host), 0, 0, false},
    {"port", parse_int, CFG(mqtt.port), 1, 65535, true},
    {"prefix", parse_mqtt_prefix, CFG(mqtt.prefix), 0, 0, true},
    {"client_id", parse_client_id, CFG(mqtt.client_id), 0, 0, true},
    {"username", parse_text, CFG(mqtt.username), 0, 0, false},
    {"password_file", parse_path, CFG(mqtt.password_file), 0, 0, false},
    {"tls_ca", parse_path, CFG(mqtt.tls_ca), 0, 0, false},
    {"tls_cert", parse_path, CFG(mqtt.tls_cert), 0, 0, false},
    {"tls_key", parse_path, CFG(mqtt.tls_key), 0, 0, false},
    {"ha_discovery", parse_bool, CFG(mqtt.ha_discovery), 0, 0, true},
    {"keepalive_s", parse_int, CFG(mqtt.keepalive_s), 5, 3600, true},
    {"outbox_max", parse_int, CFG(mqtt.outbox_max), 100, 10000000, true},
    {"unlock_max_age_s", parse_int, CFG(mqtt.unlock_max_age_s), 1, 300, true},
    {"network_sync_topic", parse_mqtt_topic, CFG(mqtt.network_sync_topic), 0, 0, false},
};
static const struct key_spec privacy_keys[] = {
    {"log_retention_days", parse_int, CFG(log_retention_days), 1, 3650, true},
};

enum section_target {
    TARGET_CONFIG,
    TARGET_DOOR,
    TARGET_READER,
};

struct section_spec {
    const char *name;              /* "site", or the prefix of "door.NAME" */
    enum section_target target;    /* TARGET_DOOR and TARGET_READER are the named sections */
    const struct key_spec *keys;
    size_t n_keys;
};

#define SECTION(name, target, keys) {name, target, keys, sizeof keys / sizeof keys[0]}
static const struct section_spec sections[] = {
    SECTION("site", TARGET_CONFIG, site_keys),
    SECTION("database", TARGET_CONFIG, database_keys),
    SECTION("hours", TARGET_CONFIG, hours_keys),
    SECTION("policy", TARGET_CONFIG, policy_keys),
    SECTION("door", TARGET_DOOR, door_keys),
    SECTION("reader", TARGET_READER, reader_keys),
    SECTION("gpio", TARGET_CONFIG, gpio_keys),
    SECTION("mqtt", TARGET_CONFIG, mqtt_keys),
    SECTION("privacy", TARGET_CONFIG, privacy_keys),
};
_Static_assert(sizeof door_keys / sizeof door_keys[0] <= MAX_KEYS_PER_SECTION, "keys_seen is too small");
_Static_assert(sizeof mqtt_keys / sizeof mqtt_keys[0] <= MAX_KEYS_PER_SECTION, "keys_seen is too small");
_Static_assert(sizeof policy_keys / sizeof policy_keys[0] <= MAX_KEYS_PER_SECTION, "keys_seen is too small");
#define SECTION_SPEC(i) (&sections[i])
enum { SPEC_SITE, SPEC_DATABASE, SPEC_HOURS, SPEC_POLICY, SPEC_DOOR, SPEC_READER, SPEC_GPIO, SPEC_MQTT };

/* ---------------------------------------------------------------------------------------------------
 * Parse state. */

struct section_record {
    const struct section_spec *spec;
    char name[SECTION_NAME_MAX];   /* as written between the brackets */
    int line;                      /* of its header */
    size_t index;                  /* doors[] or readers[] */
    uint32_t keys_seen;            /* bit i: spec->keys[i] was set */
    int key_lines[MAX_KEYS_PER_SECTION];
};

struct parse_ctx {
    const char *path;
    FILE *file;
    struct config *cfg;
    int lineno;
    struct section_record records[MAX_SECTIONS];
    size_t n_records;
    struct section_record *current;
    bool failed;
    int error_line;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 5, 6))) static void fail_at(struct parse_ctx *ctx, int line,
                                                          const char *section, const char *key,
                                                          const char *fmt, ...)
{
    if (ctx->failed)
        return;
    ctx->failed = true;
    ctx->error_line = line;
    if (!ctx->err || !ctx->errlen)
        return;
    char problem[PROBLEM_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    char where[32] = "";
    if (line > 0)
        snprintf(where, sizeof where, ":%d", line);
    if (section && key)
        snprintf(ctx->err, ctx->errlen, "%s%s: [%s] %s: %s", ctx->path, where, section, key, problem);
    else if (section)
        snprintf(ctx->err, ctx->errlen, "%s%s: [%s]: %s", ctx->path, where, section, problem);
    else if (key)
        snprintf(ctx->err, ctx->errlen, "%s%s: %s: %s", ctx->path, where, key, problem);
    else
        snprintf(ctx->err, ctx->errlen, "%s%s: %s", ctx->path, where, problem);
}

static void list_keys(const struct section_spec *spec, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < spec->n_keys && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", spec->keys[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static struct section_record *find_record(struct parse_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->n_records; i++)
        if (!strcmp(ctx->records[i].name, name))
            return &ctx->records[i];
    return NULL;
}

static struct section_record *find_record_of(struct parse_ctx *ctx, const struct section_spec *spec,
                                             size_t index)
{
    for (size_t i = 0; i < ctx->n_records; i++)
        if (ctx->records[i].spec == spec && ctx->records[i].index == index)
            return &ctx->records[i];
    return NULL;
}

static int key_index(const struct section_spec *spec, const char *name)
{
    for (size_t i = 0; i < spec->n_keys; i++)
        if (!strcmp(spec->keys[i].name, name))
            return (int)i;
    return -1;
}

static bool key_seen(const struct section_record *rec, const char *name)
{
    int i = rec ? key_index(rec->spec, name) : -1;
    return i >= 0 && (rec->keys_seen & (1u << i));
}

static void *record_target(struct parse_ctx *ctx, const struct section_record *rec)
{
    switch (rec->spec->target) {
    case TARGET_CONFIG:
        return ctx->cfg;
    case TARGET_DOOR:
        return &ctx->cfg->doors[rec->index];
    case TARGET_READER:
        return &ctx->cfg->readers[rec->index];
    }
    return NULL;
}

static void door_defaults(struct door_config *door, const char *name)
{
    memset(door, 0, sizeof *door);
    snprintf(door->name, sizeof door->name, "%s", name);
    door->unlock_ms = 5000;
    door->held_open_s = 30;
    door->debounce_ms = 20;
}

static void reader_defaults(struct reader_config *reader, const char *name)
{
    memset(reader, 0, sizeof *reader);
    snprintf(reader->name, sizeof reader->name, "%s", name);
    reader->driver = READER_DRIVER_LIBNFC;
    reader->direction = DIRECTION_IN;
    reader->poll_ms = 30;
    reader->rearm_s = 0;
    reader->cpu = READER_CPU_LAST;
}

/* A new "[name]" seen by the line reader: validate it and make it current. */
static void begin_section(struct parse_ctx *ctx, const char *name)
{
    const struct section_spec *spec = NULL;
    const char *object_name = NULL;
    for (size_t i = 0; i < sizeof sections / sizeof sections[0] && !spec; i++) {
        size_t len = strlen(sections[i].name);
        bool named = sections[i].target != TARGET_CONFIG;
        if (!named && !strcmp(name, sections[i].name))
            spec = &sections[i];
        else if (named && !strncmp(name, sections[i].name, len) && (name[len] == '.' || !name[len])) {
            spec = &sections[i];
            object_name = name[len] ? name + len + 1 : "";
        }
    }
    if (!spec) {
        fail_at(ctx, ctx->lineno, name, NULL,
                "unknown section (known: site, database, hours, policy, door.NAME, reader.NAME, gpio, "
                "mqtt, privacy)");
        return;
    }
    if (object_name && !is_object_name(object_name)) {
        fail_at(ctx, ctx->lineno, name, NULL,
                "a %s section is named [%s.NAME], NAME being 1 to %d characters from A-Z a-z 0-9 _ -",
                spec->name, spec->name, ID_MAX - 1);
        return;
    }
    const struct section_record *previous = find_record(ctx, name);
    if (previous) {
        fail_at(ctx, ctx->lineno, name, NULL, "section repeated (first at line %d)", previous->line);
        return;
    }
    size_t index = 0;
    if (spec->target == TARGET_DOOR) {
        if (ctx->cfg->n_doors >= CONFIG_MAX_DOORS) {
            fail_at(ctx, ctx->lineno, name, NULL, "too many doors (at most %d)", CONFIG_MAX_DOORS);
            return;
        }
        index = ctx->cfg->n_doors++;
        door_defaults(&ctx->cfg->doors[index], object_name);
    } else if (spec->target == TARGET_READER) {
        if (ctx->cfg->n_readers >= CONFIG_MAX_READERS) {
            fail_at(ctx, ctx->lineno, name, NULL, "too many readers (at most %d)", CONFIG_MAX_READERS);
            return;
        }
        index = ctx->cfg->n_readers++;
        reader_defaults(&ctx->cfg->readers[index], object_name);
    }
    /* MAX_SECTIONS covers every fixed section once plus the door and reader limits. */
    struct section_record *rec = &ctx->records[ctx->n_records++];
    memset(rec, 0, sizeof *rec);
    rec->spec = spec;
    snprintf(rec->name, sizeof rec->name, "%s", name);
    rec->line = ctx->lineno;
    rec->index = index;
    ctx->current = rec;
}

/* inih's handler: one "key = value" of the current section. */
static int on_key(void *user, const char *inih_section, const char *name, const char *value)
{
    struct parse_ctx *ctx = user;
    if (ctx->failed)
        return 0;
    /* The section name comes from our own header parsing: inih's copy is truncated at 49 bytes. */
    struct section_record *rec = ctx->current;
    if (!rec) {
        fail_at(ctx, ctx->lineno, NULL, name, "key outside any section (put it under [site], ...)");
        return 0;
    }
    int i = key_index(rec->spec, name);
    if (i < 0) {
        char known[256];
        list_keys(rec->spec, known, sizeof known);
        fail_at(ctx, ctx->lineno, rec->name, name, "unknown key (known: %s)", known);
        return 0;
    }
    if (rec->keys_seen & (1u << i)) {
        fail_at(ctx, ctx->lineno, rec->name, name, "duplicate key (first set at line %d)",
                rec->key_lines[i]);
        return 0;
    }
    rec->keys_seen |= 1u << i;
    rec->key_lines[i] = ctx->lineno;
    const struct key_spec *key = &rec->spec->keys[i];
    char problem[PROBLEM_MAX] = "";
    void *field = (char *)record_target(ctx, rec) + key->offset;
    if (key->parse(key, value, field, problem, sizeof problem) < 0) {
        fail_at(ctx, ctx->lineno, rec->name, name, "%s", problem);
        return 0;
    }
    return 1;
}

/* The text of a line up to an inline comment (";" after a blank, as inih has it). */
static const char *find_outside_comment(const char *s, const char *chars)
{
    bool after_blank = false;
    for (; *s; s++) {
        if (strchr(chars, *s))
            return s;
        if (after_blank && *s == ';')
            return NULL;
        after_blank = *s == ' ' || *s == '\t';
    }
    return NULL;
}

/* Classifies the line as inih will, so that the first malformed line gets a precise message, and
 * parses section headers. */
static void inspect_line(struct parse_ctx *ctx, const char *line)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                   line[len - 1] == '\t'))
        len--;
    if (!len || line[0] == ';' || line[0] == '#')
        return;
    char text[SECTION_NAME_MAX];
    if (line[0] == '[') {
        const char *end = find_outside_comment(line + 1, "]");
        if (!end || (size_t)(end - line) > len) {
            fail_at(ctx, ctx->lineno, NULL, NULL, "syntax error: section header without closing ']'");
            return;
        }
        const char *rest = end + 1;
        rest += strspn(rest, " \t");
        if ((size_t)(rest - line) < len && *rest != ';' && *rest != '#') {
            fail_at(ctx, ctx->lineno, NULL, NULL, "syntax error: text after the section header's ']'");
            return;
        }
        size_t name_len = (size_t)(end - line - 1);
        if (name_len >= SECTION_NAME_MAX) {
            fail_at(ctx, ctx->lineno, NULL, NULL, "syntax error: section name too long");
            return;
        }
        memcpy(text, line + 1, name_len);
        text[name_len] = '\0';
        begin_section(ctx, text);
        return;
    }
    const char *separator = find_outside_comment(line, "=:");
    if (!separator || (size_t)(separator - line) > len) {
        fail_at(ctx, ctx->lineno, NULL, NULL,
                "syntax error: expected [section], key = value, or a comment starting with ; or #");
        return;
    }
    if (separator == line || strspn(line, " \t") == (size_t)(separator - line)) {
        fail_at(ctx, ctx->lineno, NULL, NULL, "syntax error: no key name before '%c'", *separator);
        return;
    }
}

/* inih's line source: fgets, counting lines. Returns NULL (end of input) once an error is recorded, so
 * the first error is the only one. Leading blanks are removed so that inih never takes an indented line
 * for a multi-line continuation of the previous key (an indented "unlock_ms = 1" would otherwise
 * silently become part of the previous value). */
static char *read_line(char *str, int num, void *stream)
{
    struct parse_ctx *ctx = stream;
    if (ctx->failed || !fgets(str, num, ctx->file))
        return NULL;
    ctx->lineno++;
    size_t len = strlen(str);
    if (len && str[len - 1] != '\n' && len == (size_t)num - 1) {
        int next = getc(ctx->file);
        if (next != EOF && next != '\n') {
            fail_at(ctx, ctx->lineno, NULL, NULL, "line too long (at most %d characters)", num - 3);
            return NULL;
        }
    }
    char *start = str;
    if (ctx->lineno == 1 && !memcmp(start, "\xEF\xBB\xBF", 3))
        start += 3;
    start += strspn(start, " \t");
    if (start != str)
        memmove(str, start, strlen(start) + 1);
    inspect_line(ctx, str);
    return ctx->failed ? NULL : str;
}

/* ---------------------------------------------------------------------------------------------------
 * Checks across keys and sections, after the whole file is read. */

struct line_use {
    const char *line;
    const char *door;
    const char *key;
};

static void check_doors(struct parse_ctx *ctx)
{
    struct config *cfg = ctx->cfg;
    struct line_use uses[CONFIG_MAX_DOORS * 6];
    size_t n_uses = 0;
    for (size_t d = 0; d < cfg->n_doors && !ctx->failed; d++) {
        struct door_config *door = &cfg->doors[d];
        const struct section_record *rec = find_record_of(ctx, SECTION_SPEC(SPEC_DOOR), d);
        if (!door->relay[0]) {
            fail_at(ctx, rec->line, rec->name, "relay", "missing (required: the GPIO line of the lock relay)");
            return;
        }
        const struct line_use lines[] = {
            {door->relay, door->name, "relay"},         {door->contact, door->name, "contact"},
            {door->rex, door->name, "rex"},             {door->led_green, door->name, "led_green"},
            {door->led_red, door->name, "led_red"},     {door->buzzer, door->name, "buzzer"},
        };
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
            if (!lines[i].line[0])
                continue;
            for (size_t j = 0; j < n_uses; j++) {
                if (!strcmp(uses[j].line, lines[i].line)) {
                    fail_at(ctx, rec->line, rec->name, lines[i].key, "GPIO line %s is already used by [door.%s] %s",
                            lines[i].line, uses[j].door, uses[j].key);
                    return;
                }
            }
            uses[n_uses++] = lines[i];
        }
    }
}

static void check_readers(struct parse_ctx *ctx)
{
    struct config *cfg = ctx->cfg;
    for (size_t r = 0; r < cfg->n_readers && !ctx->failed; r++) {
        struct reader_config *reader = &cfg->readers[r];
        const struct section_record *rec = find_record_of(ctx, SECTION_SPEC(SPEC_READER), r);
        if (!key_seen(rec, "driver")) {
            fail_at(ctx, rec->line, rec->name, "driver", "missing (required: libnfc or sim)");
            return;
        }
        switch (reader->driver) {
        case READER_DRIVER_SIM:
            if (!reader->fifo[0]) {
                fail_at(ctx, rec->line, rec->name, "fifo", "missing (required with driver = sim)");
                return;
            }
            if (reader->connstring[0]) {
                fail_at(ctx, rec->line, rec->name, "connstring", "only used with driver = libnfc");
                return;
            }
            break;
        case READER_DRIVER_LIBNFC:
            if (!reader->connstring[0]) {
                fail_at(ctx, rec->line, rec->name, "connstring",
                        "missing (required with driver = libnfc, such as pn532_uart:/dev/ttyAMA0)");
                return;
            }
            if (reader->fifo[0]) {
                fail_at(ctx, rec->line, rec->name, "fifo", "only used with driver = sim");
                return;
            }
            break;
        }
        if (!reader->door[0]) {
            if (cfg->n_doors != 1) {
                fail_at(ctx, rec->line, rec->name, "door", "%s",
                        cfg->n_doors ? "missing (required when there are several doors)"
                                     : "missing, and there is no [door.NAME] section");
                return;
            }
            snprintf(reader->door, sizeof reader->door, "%s", cfg->doors[0].name);
        } else if (!config_find_door(cfg, reader->door)) {
            fail_at(ctx, rec->line, rec->name, "door", "no such door '%s' (no [door.%s] section)",
                    reader->door, reader->door);
            return;
        }
        /* Two simulated inputs on one FIFO would steal each other's lines. */
        if (reader->driver == READER_DRIVER_SIM) {
            for (size_t other = 0; other < r; other++) {
                if (cfg->readers[other].driver == READER_DRIVER_SIM &&
                    !strcmp(cfg->readers[other].fifo, reader->fifo)) {
                    fail_at(ctx, rec->line, rec->name, "fifo", "%s is already used by [reader.%s]",
                            reader->fifo, cfg->readers[other].name);
                    return;
                }
            }
        }
    }
}

static void check_gpio(struct parse_ctx *ctx)
{
    struct config *cfg = ctx->cfg;
    const struct section_record *rec = find_record(ctx, "gpio");
    switch (cfg->gpio_driver) {
    case GPIO_DRIVER_SIM:
        if (!cfg->gpio_fifo[0]) {
            fail_at(ctx, rec ? rec->line : 0, "gpio", "fifo", "missing (required with driver = sim)");
            return;
        }
        for (size_t r = 0; r < cfg->n_readers; r++) {
            if (cfg->readers[r].driver == READER_DRIVER_SIM && !strcmp(cfg->readers[r].fifo, cfg->gpio_fifo)) {
                fail_at(ctx, rec ? rec->line : 0, "gpio", "fifo", "%s is already used by [reader.%s]",
                        cfg->gpio_fifo, cfg->readers[r].name);
                return;
            }
        }
        break;
    case GPIO_DRIVER_GPIOD:
        if (cfg->gpio_fifo[0]) {
            fail_at(ctx, rec ? rec->line : 0, "gpio", "fifo", "only used with driver = sim");
            return;
        }
        break;
    }
}

static void check_mqtt(struct parse_ctx *ctx)
{
    struct config *cfg = ctx->cfg;
    struct mqtt_config *mqtt = &cfg->mqtt;
    const struct section_record *rec = find_record(ctx, "mqtt");
    int line = rec ? rec->line : 0;
    if (!key_seen(rec, "port"))
        mqtt->port = mqtt->tls_ca[0] ? 8883 : 1883;
    if ((mqtt->tls_cert[0] != 0) != (mqtt->tls_key[0] != 0)) {
        fail_at(ctx, line, "mqtt", mqtt->tls_cert[0] ? "tls_key" : "tls_cert",
                "tls_cert and tls_key go together (client certificate authentication)");
        return;
    }
    if (mqtt->tls_cert[0] && !mqtt->tls_ca[0]) {
        fail_at(ctx, line, "mqtt", "tls_ca", "missing (required with tls_cert: it turns TLS on)");
        return;
    }
    if (mqtt->password_file[0] && !mqtt->username[0]) {
        fail_at(ctx, line, "mqtt", "username", "missing (required with password_file)");
        return;
    }
    if (!key_seen(rec, "client_id")) {
        int n = snprintf(mqtt->client_id, sizeof mqtt->client_id, "telecentred-%s", cfg->site_id);
        if (n >= (int)sizeof mqtt->client_id && mqtt->host[0]) {
            fail_at(ctx, line, "mqtt", "client_id",
                    "the default telecentred-<site id> is longer than %zu characters: set client_id",
                    sizeof mqtt->client_id - 1);
            return;
        }
    }
}

static void check_all(struct parse_ctx *ctx)
{
    struct config *cfg = ctx->cfg;
    const struct section_record *site = find_record(ctx, "site");
    if (!site) {
        fail_at(ctx, 0, "site", "id", "missing (required; the file has no [site] section)");
        return;
    }
    if (!cfg->site_id[0]) {
        fail_at(ctx, site->line, "site", "id", "missing (required)");
        return;
    }
    if (!cfg->site_name[0])
        snprintf(cfg->site_name, sizeof cfg->site_name, "%s", cfg->site_id);
    check_doors(ctx);
    if (!ctx->failed)
        check_readers(ctx);
    if (!ctx->failed)
        check_gpio(ctx);
    if (!ctx->failed)
        check_mqtt(ctx);
}

/* --------------------------------------------------------------------------------------------------- */

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    policy_config_defaults(&cfg->policy);
    cfg->policy.capacity = 0;
    snprintf(cfg->timezone, sizeof cfg->timezone, "Europe/Paris");
    snprintf(cfg->db_path, sizeof cfg->db_path, "/var/lib/telecentred/telecentred.db");
    cfg->gpio_driver = GPIO_DRIVER_GPIOD;
    cfg->mqtt.port = 1883;
    snprintf(cfg->mqtt.prefix, sizeof cfg->mqtt.prefix, "telecentre");
    cfg->mqtt.ha_discovery = true;
    cfg->mqtt.keepalive_s = 30;
    cfg->mqtt.outbox_max = 100000;
    cfg->mqtt.unlock_max_age_s = 10;
    cfg->log_retention_days = 90;
}

/* given: a stream to read instead of opening path (config_load_stream); path then only names it. */
static int load(const char *path, FILE *given, struct config *cfg, char *err, size_t errlen)
{
    config_defaults(cfg);
    if (err && errlen)
        err[0] = '\0';
    struct parse_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    ctx->path = path;
    ctx->cfg = cfg;
    ctx->err = err;
    ctx->errlen = errlen;

    int r = 0;
    if (strlen(path) >= sizeof cfg->path) {
        fail_at(ctx, 0, NULL, NULL, "cannot open: path too long");
        r = -ENAMETOOLONG;
        goto out;
    }
    snprintf(cfg->path, sizeof cfg->path, "%s", path);

    ctx->file = given ? given : fopen(path, "re");
    struct stat st;
    if (ctx->file && fstat(fileno(ctx->file), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(ctx->file);
        ctx->file = NULL;
        errno = EISDIR;
    }
    if (!ctx->file) {
        r = -errno;
        fail_at(ctx, 0, NULL, NULL, "cannot open: %s", strerror(errno));
        goto out;
    }
    /* Whoever can write the file chooses the database path, the broker and the doors' GPIO lines. */
    if (fstat(fileno(ctx->file), &st) == 0 && (st.st_mode & S_IWOTH)) {
        fail_at(ctx, 0, NULL, NULL, "writable by others (mode %04o): refusing it (chmod o-w it)",
                (unsigned)(st.st_mode & 07777));
        r = -EPERM;
        goto out;
    }

    int inih_line = ini_parse_stream(read_line, ctx, on_key, ctx);
    if (ferror(ctx->file)) {
        int read_errno = errno ? errno : EIO;
        ctx->failed = false;  /* a read error explains whatever the parse made of a partial file */
        fail_at(ctx, 0, NULL, NULL, "cannot read: %s", strerror(read_errno));
        r = -read_errno;
        goto out;
    }
    if (inih_line > 0 && (!ctx->failed || inih_line < ctx->error_line)) {
        ctx->failed = false;  /* inih saw a malformed line first: that one is reported */
        fail_at(ctx, inih_line, NULL, NULL, "syntax error");
    } else if (inih_line < 0 && !ctx->failed) {
        fail_at(ctx, 0, NULL, NULL, "cannot parse: out of memory");
        r = -ENOMEM;
        goto out;
    }
    if (!ctx->failed)
        check_all(ctx);
    r = ctx->failed ? -EINVAL : 0;

out:
    if (ctx->file && ctx->file != given)
        fclose(ctx->file);
    free(ctx);
    return r;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
    return load(path, NULL, cfg, err, errlen);
}

int config_load_stream(FILE *f, const char *name, struct config *cfg, char *err, size_t errlen)
{
    return load(name, f, cfg, err, errlen);
}

const struct door_config *config_find_door(const struct config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_doors; i++)
        if (!strcmp(cfg->doors[i].name, name))
            return &cfg->doors[i];
    return NULL;
}

const struct reader_config *config_find_reader(const struct config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_readers; i++)
        if (!strcmp(cfg->readers[i].name, name))
            return &cfg->readers[i];
    return NULL;
}

bool config_has_exit_reader(const struct config *cfg)
{
    for (size_t i = 0; cfg && i < cfg->n_readers; i++)
        if (cfg->readers[i].direction == DIRECTION_OUT)
            return true;
    return false;
}

const char *reader_driver_name(enum reader_driver driver)
{
    switch (driver) {
    case READER_DRIVER_SIM:
        return "sim";
    case READER_DRIVER_LIBNFC:
        return "libnfc";
    }
    return "?";
}

const char *gpio_driver_name(enum gpio_driver driver)
{
    switch (driver) {
    case GPIO_DRIVER_SIM:
        return "sim";
    case GPIO_DRIVER_GPIOD:
        return "gpiod";
    }
    return "?";
}
