/* config.c: a full file parses to the right values, each kind of mistake is refused with the file, the
 * exact line and the key, and the shipped example and demo template load cleanly. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

struct fixture {
    char dir[256];
    char path[300];
    struct config cfg;
    char err[512];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/test_config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/telecentred.conf", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int load_text(struct fixture *fx, const char *text)
{
    write_text(fx->path, text);
    fx->err[0] = '\0';
    return config_load(fx->path, &fx->cfg, fx->err, sizeof fx->err);
}

/* Asserts the load fails with -EINVAL and exactly "PATH:<suffix>". */
static void assert_refused(struct fixture *fx, const char *text, const char *suffix)
{
    int r = load_text(fx, text);
    char expected[2048];
    snprintf(expected, sizeof expected, "%s:%s", fx->path, suffix);
    if (r != -EINVAL || strcmp(fx->err, expected) != 0)
        fail_msg("r=%d\n got: %s\nwant: %s", r, fx->err, expected);
}

#define SITE "[site]\nid = s1\n"

static const char full_config[] =
    "; a full configuration\n"                         /* 1 */
    "[site]\n"                                         /* 2 */
    "id = florac\n"                                    /* 3 */
    "name = Télécentre de Florac\n"                    /* 4 */
    "timezone = Europe/Paris\n"                        /* 5 */
    "capacity = 12\n"                                  /* 6 */
    "\n"                                               /* 7 */
    "[database]\n"                                     /* 8 */
    "path = /srv/tc/site.db\n"                         /* 9 */
    "[hours]\n"                                        /* 10 */
    "mon = 08:00-19:00\n"                              /* 11 */
    "tue = 7:30-12:00\n"                               /* 12 */
    "wed = 09:00 - 24:00\n"                            /* 13 */
    "sat = 09:00-13:00\n"                              /* 14 */
    "sun = closed\n"                                   /* 15 */
    "fri = Closed ; inline comment\n"                  /* 16 */
    "[policy]\n"                                       /* 17 */
    "early_minutes = 10\n"                             /* 18 */
    "late_minutes = 5\n"                               /* 19 */
    "no_show_minutes = 45\n"                           /* 20 */
    "walk_in = off\n"                                  /* 21 */
    "walk_in_min_minutes = 60\n"                       /* 22 */
    "max_badge_denials = 3\n"                          /* 23 */
    "max_reader_denials = 20\n"                        /* 24 */
    "denial_window_s = 120\n"                          /* 25 */
    "[door.entrance]\n"                                /* 26 */
    "  relay = gpiochip0:17\n"                         /* 27: indented, not a continuation */
    "\trelay_active_low = yes\n"                       /* indented after a key: still a key */
    "unlock_ms = 4000\n"
    "contact = GPIO27\n"
    "contact_active_low = TRUE\n"
    "rex = GPIO22\n"
    "led_green = GPIO23\n"
    "led_red = GPIO24\n"
    "buzzer = gpiochip1:1023\n"
    "[door.garden]\n"
    "relay = GPIO5\n"
    "[reader.front]\n"
    "driver = libnfc\n"
    "connstring = pn532_uart:/dev/ttyAMA0\n"
    "door = entrance\n"
    "[reader.back-out]\n"
    "driver = sim\n"
    "fifo = /run/tc/back.fifo\n"
    "door = garden\n"
    "direction = out\n"
    "[gpio]\n"
    "driver = sim\n"
    "fifo = /run/tc/gpio.fifo\n"
    "[mqtt]\n"
    "host = broker.example.org\n"
    "tls_ca = /etc/ssl/certs/ca.pem\n"
    "username = florac\n"
    "password_file = /etc/tc/pw\n"
    "ha_discovery = 0\n"
    "[privacy]\n"
    "log_retention_days = 30\n";

static void full_config_parses(void **state)
{
    struct fixture *fx = *state;
    int r = load_text(fx, full_config);
    if (r)
        fail_msg("%d: %s", r, fx->err);
    const struct config *cfg = &fx->cfg;
    assert_string_equal(cfg->path, fx->path);
    assert_string_equal(cfg->site_id, "florac");
    assert_string_equal(cfg->site_name, "Télécentre de Florac");
    assert_string_equal(cfg->timezone, "Europe/Paris");
    assert_int_equal(cfg->policy.capacity, 12);
    assert_string_equal(cfg->db_path, "/srv/tc/site.db");

    /* Index 0 is Sunday. */
    assert_true(cfg->policy.hours[0].closed);
    assert_false(cfg->policy.hours[1].closed);
    assert_int_equal(cfg->policy.hours[1].open_min, 8 * 60);
    assert_int_equal(cfg->policy.hours[1].close_min, 19 * 60);
    assert_int_equal(cfg->policy.hours[2].open_min, 7 * 60 + 30);
    assert_int_equal(cfg->policy.hours[2].close_min, 12 * 60);
    assert_int_equal(cfg->policy.hours[3].open_min, 9 * 60);
    assert_int_equal(cfg->policy.hours[3].close_min, 24 * 60);
    /* Thursday not given: the default 08:00-19:00 stays. */
    assert_false(cfg->policy.hours[4].closed);
    assert_int_equal(cfg->policy.hours[4].open_min, 8 * 60);
    assert_int_equal(cfg->policy.hours[4].close_min, 19 * 60);
    assert_true(cfg->policy.hours[5].closed);
    assert_false(cfg->policy.hours[6].closed);
    assert_int_equal(cfg->policy.hours[6].open_min, 9 * 60);
    assert_int_equal(cfg->policy.hours[6].close_min, 13 * 60);

    assert_int_equal(cfg->policy.early_minutes, 10);
    assert_int_equal(cfg->policy.late_minutes, 5);
    assert_int_equal(cfg->policy.no_show_minutes, 45);
    assert_false(cfg->policy.walk_in);
    assert_int_equal(cfg->policy.walk_in_min_minutes, 60);
    assert_int_equal(cfg->policy.max_badge_denials, 3);
    assert_int_equal(cfg->policy.max_reader_denials, 20);
    assert_int_equal(cfg->policy.denial_window_s, 120);

    assert_int_equal(cfg->n_doors, 2);
    const struct door_config *entrance = config_find_door(cfg, "entrance");
    assert_ptr_equal(entrance, &cfg->doors[0]);
    assert_string_equal(entrance->relay, "gpiochip0:17");
    assert_true(entrance->relay_active_low);
    assert_int_equal(entrance->unlock_ms, 4000);
    assert_string_equal(entrance->contact, "GPIO27");
    assert_true(entrance->contact_active_low);
    assert_string_equal(entrance->rex, "GPIO22");
    assert_false(entrance->rex_active_low);
    assert_string_equal(entrance->led_green, "GPIO23");
    assert_string_equal(entrance->led_red, "GPIO24");
    assert_string_equal(entrance->buzzer, "gpiochip1:1023");
    assert_int_equal(entrance->held_open_s, 30);
    assert_int_equal(entrance->debounce_ms, 20);          /* default */
    const struct door_config *garden = config_find_door(cfg, "garden");
    assert_non_null(garden);
    assert_string_equal(garden->relay, "GPIO5");
    assert_false(garden->relay_active_low);
    assert_int_equal(garden->unlock_ms, 5000);
    assert_int_equal(garden->held_open_s, 30);
    assert_string_equal(garden->contact, "");
    assert_null(config_find_door(cfg, "cellar"));

    assert_int_equal(cfg->n_readers, 2);
    const struct reader_config *front = config_find_reader(cfg, "front");
    assert_ptr_equal(front, &cfg->readers[0]);
    assert_int_equal(front->driver, READER_DRIVER_LIBNFC);
    assert_string_equal(front->connstring, "pn532_uart:/dev/ttyAMA0");
    assert_string_equal(front->door, "entrance");
    assert_int_equal(front->direction, DIRECTION_IN);
    assert_int_equal(front->poll_ms, 30);                 /* defaults */
    assert_int_equal(front->rearm_s, 0);
    assert_int_equal(front->cpu, READER_CPU_LAST);
    const struct reader_config *back = config_find_reader(cfg, "back-out");
    assert_non_null(back);
    assert_int_equal(back->driver, READER_DRIVER_SIM);
    assert_string_equal(back->fifo, "/run/tc/back.fifo");
    assert_string_equal(back->door, "garden");
    assert_int_equal(back->direction, DIRECTION_OUT);
    assert_true(config_has_exit_reader(cfg));

    assert_int_equal(cfg->gpio_driver, GPIO_DRIVER_SIM);
    assert_string_equal(cfg->gpio_fifo, "/run/tc/gpio.fifo");

    assert_string_equal(cfg->mqtt.host, "broker.example.org");
    assert_int_equal(cfg->mqtt.port, 8883);    /* TLS default */
    assert_string_equal(cfg->mqtt.prefix, "telecentre");
    assert_string_equal(cfg->mqtt.client_id, "telecentred-florac");
    assert_string_equal(cfg->mqtt.username, "florac");
    assert_string_equal(cfg->mqtt.password_file, "/etc/tc/pw");
    assert_string_equal(cfg->mqtt.tls_ca, "/etc/ssl/certs/ca.pem");
    assert_false(cfg->mqtt.ha_discovery);
    assert_int_equal(cfg->log_retention_days, 30);
}

static void minimal_config_gets_defaults(void **state)
{
    struct fixture *fx = *state;
    int r = load_text(fx, "[site]\nid = s1\n[door.main]\nrelay = GPIO4\n[reader.r1]\ndriver = sim\n"
                          "fifo = /tmp/r1.fifo\n");
    if (r)
        fail_msg("%d: %s", r, fx->err);
    const struct config *cfg = &fx->cfg;
    assert_string_equal(cfg->site_name, "s1");
    assert_string_equal(cfg->timezone, "Europe/Paris");
    assert_int_equal(cfg->policy.capacity, 0);
    assert_string_equal(cfg->db_path, "/var/lib/telecentred/telecentred.db");
    /* policy_config_defaults: mon-fri 08:00-19:00, weekend closed. */
    assert_true(cfg->policy.hours[0].closed);
    assert_true(cfg->policy.hours[6].closed);
    for (int wday = 1; wday <= 5; wday++) {
        assert_false(cfg->policy.hours[wday].closed);
        assert_int_equal(cfg->policy.hours[wday].open_min, 8 * 60);
        assert_int_equal(cfg->policy.hours[wday].close_min, 19 * 60);
    }
    assert_int_equal(cfg->policy.early_minutes, 15);
    assert_true(cfg->policy.walk_in);
    assert_int_equal(cfg->gpio_driver, GPIO_DRIVER_GPIOD);
    assert_string_equal(cfg->mqtt.host, "");
    assert_int_equal(cfg->mqtt.port, 1883);
    assert_string_equal(cfg->mqtt.prefix, "telecentre");
    assert_string_equal(cfg->mqtt.client_id, "telecentred-s1");
    assert_true(cfg->mqtt.ha_discovery);
    assert_int_equal(cfg->log_retention_days, 90);
    assert_int_equal(cfg->doors[0].unlock_ms, 5000);
    assert_int_equal(cfg->doors[0].held_open_s, 30);
    /* The only door is the reader's door; direction defaults to in. */
    assert_string_equal(cfg->readers[0].door, "main");
    assert_int_equal(cfg->readers[0].direction, DIRECTION_IN);
    assert_false(config_has_exit_reader(cfg));
}

static void explicit_mqtt_port_is_kept_with_tls(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(load_text(fx, SITE "[mqtt]\nhost = b\nport = 1884\ntls_ca = /ca.pem\n"), 0);
    assert_int_equal(fx->cfg.mqtt.port, 1884);
}

static void unknown_key(void **state)
{
    assert_refused(*state, SITE "[door.entrance]\nrelay = GPIO17\nunlock_sm = 3000\n",
                   "5: [door.entrance] unlock_sm: unknown key (known: relay, relay_active_low, unlock_ms, "
                   "contact, contact_active_low, rex, rex_active_low, led_green, led_red, buzzer, "
                   "held_open_s, debounce_ms)");
}

static void unknown_section(void **state)
{
    assert_refused(*state, SITE "\n[sitee]\nid = x\n",
                   "4: [sitee]: unknown section (known: site, database, hours, policy, door.NAME, "
                   "reader.NAME, gpio, mqtt, privacy)");
}

static void empty_unknown_section_is_refused(void **state)
{
    /* No keys: inih never calls the handler for it, the line reader catches it. */
    assert_refused(*state, SITE "[colour]\n", "3: [colour]: unknown section (known: site, database, hours, "
                                              "policy, door.NAME, reader.NAME, gpio, mqtt, privacy)");
}

static void bad_integer(void **state)
{
    assert_refused(*state, SITE "[door.entrance]\nrelay = GPIO17\n\nunlock_ms = abc\n",
                   "6: [door.entrance] unlock_ms: must be a whole number between 100 and 60000, got 'abc'");
    assert_refused(*state, SITE "capacity = 12x\n",
                   "3: [site] capacity: must be a whole number between 0 and 100000, got '12x'");
    assert_refused(*state, SITE "capacity = +5\n",
                   "3: [site] capacity: must be a whole number between 0 and 100000, got '+5'");
}

static void repeated_section(void **state)
{
    assert_refused(*state, SITE "[door.a]\nrelay = GPIO1\n[site]\n", "5: [site]: section repeated (first at line 1)");
}

static void integer_out_of_range(void **state)
{
    assert_refused(*state, SITE "[privacy]\nlog_retention_days = 0\n",
                   "4: [privacy] log_retention_days: must be a whole number between 1 and 3650, got '0'");
    assert_refused(*state, SITE "[door.d]\nrelay = GPIO1\nunlock_ms = 99999999999999999999\n",
                   "5: [door.d] unlock_ms: must be a whole number between 100 and 60000, got "
                   "'99999999999999999999'");
    assert_refused(*state, SITE "capacity = -1\n",
                   "3: [site] capacity: must be a whole number between 0 and 100000, got '-1'");
}

static void bad_hours(void **state)
{
    assert_refused(*state, SITE "[hours]\nmon = 08:00-19:00\ntue = 19:00-08:00\n",
                   "5: [hours] tue: opening time must be before closing time (hours cannot run past "
                   "midnight; use 24:00 as closing time), got '19:00-08:00'");
    assert_refused(*state, SITE "[hours]\nsun = 8h-12h\n",
                   "4: [hours] sun: must be HH:MM-HH:MM (such as 08:00-19:00) or closed, got '8h-12h'");
    assert_refused(*state, SITE "[hours]\nsat = 09:00-24:30\n",
                   "4: [hours] sat: must be HH:MM-HH:MM (such as 08:00-19:00) or closed, got '09:00-24:30'");
    assert_refused(*state, SITE "[hours]\nsat = 09:60-12:00\n",
                   "4: [hours] sat: must be HH:MM-HH:MM (such as 08:00-19:00) or closed, got '09:60-12:00'");
    assert_refused(*state, SITE "[hours]\nmonday = closed\n",
                   "4: [hours] monday: unknown key (known: mon, tue, wed, thu, fri, sat, sun)");
}

static void bad_bool(void **state)
{
    assert_refused(*state, SITE "[policy]\nwalk_in = sometimes\n",
                   "4: [policy] walk_in: must be true or false (or yes/no, on/off, 1/0), got 'sometimes'");
}

static void reader_names_unknown_door(void **state)
{
    assert_refused(*state,
                   SITE "[door.entrance]\nrelay = GPIO17\n\n[reader.back]\ndriver = sim\n"
                        "fifo = /tmp/x.fifo\ndoor = garden\n",
                   "6: [reader.back] door: no such door 'garden' (no [door.garden] section)");
}

static void reader_door_required_with_several_doors(void **state)
{
    assert_refused(*state,
                   SITE "[door.a]\nrelay = GPIO1\n[door.b]\nrelay = GPIO2\n[reader.r]\ndriver = sim\n"
                        "fifo = /tmp/x.fifo\n",
                   "7: [reader.r] door: missing (required when there are several doors)");
}

static void reader_driver_requirements(void **state)
{
    assert_refused(*state, SITE "[door.a]\nrelay = GPIO1\n[reader.r]\ndriver = sim\n",
                   "5: [reader.r] fifo: missing (required with driver = sim)");
    assert_refused(*state, SITE "[door.a]\nrelay = GPIO1\n[reader.r]\ndriver = libnfc\n",
                   "5: [reader.r] connstring: missing (required with driver = libnfc, such as "
                   "pn532_uart:/dev/ttyAMA0)");
    assert_refused(*state, SITE "[door.a]\nrelay = GPIO1\n[reader.r]\nfifo = /tmp/f\n",
                   "5: [reader.r] driver: missing (required: libnfc or sim)");
    assert_refused(*state, SITE "[door.a]\nrelay = GPIO1\n[reader.r]\ndriver = nfc\n",
                   "6: [reader.r] driver: must be libnfc or sim, got 'nfc'");
    assert_refused(*state, SITE "[door.a]\nrelay = GPIO1\n[reader.r]\ndriver = sim\nfifo = /f\n"
                                "direction = up\n",
                   "8: [reader.r] direction: must be in or out, got 'up'");
    assert_refused(*state, SITE "[door.a]\nrelay = GPIO1\n[reader.r]\ndriver = sim\nfifo = /f\n"
                                "cpu = -1\n",
                   "8: [reader.r] cpu: must be last, any or a CPU number from 0 to 1023, got '-1'");
    assert_refused(*state, SITE "[door.a]\nrelay = GPIO1\n[reader.r]\ndriver = sim\nfifo = /f\n"
                                "cpu = 1024\n",
                   "8: [reader.r] cpu: must be last, any or a CPU number from 0 to 1023, got '1024'");
}

static void reader_cpu_choices(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *value;
        int cpu;
    } cases[] = {{"last", READER_CPU_LAST}, {"any", READER_CPU_ANY}, {"0", 0}, {"3", 3}, {"1023", 1023}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        snprintf(text, sizeof text, SITE "[door.a]\nrelay = GPIO1\n[reader.r]\ndriver = sim\nfifo = /f\ncpu = %s\n",
                 cases[i].value);
        assert_int_equal(load_text(fx, text), 0);
        assert_int_equal(fx->cfg.readers[0].cpu, cases[i].cpu);
    }
}

static void gpio_sim_needs_fifo(void **state)
{
    assert_refused(*state, SITE "\n[gpio]\ndriver = sim\n",
                   "4: [gpio] fifo: missing (required with driver = sim)");
}

static void door_needs_relay(void **state)
{
    assert_refused(*state, SITE "[door.front]\ncontact = GPIO2\n",
                   "3: [door.front] relay: missing (required: the GPIO line of the lock relay)");
    assert_refused(*state, SITE "[door.front]\nrelay =\n", "4: [door.front] relay: must not be empty");
}

static void gpio_line_used_twice(void **state)
{
    assert_refused(*state, SITE "[door.a]\nrelay = GPIO1\n[door.b]\nrelay = GPIO2\nbuzzer = GPIO1\n",
                   "5: [door.b] buzzer: GPIO line GPIO1 is already used by [door.a] relay");
}

static void missing_site_id(void **state)
{
    assert_refused(*state, "; comment\n[site]\nname = Florac\n", "2: [site] id: missing (required)");
    struct fixture *fx = *state;
    assert_int_equal(load_text(fx, "[database]\npath = /x.db\n"), -EINVAL);
    char expected[2048];
    snprintf(expected, sizeof expected, "%s: [site] id: missing (required; the file has no [site] section)",
             fx->path);
    assert_string_equal(fx->err, expected);
    assert_refused(*state, "[site]\nid =\n",
                   "2: [site] id: must be 1 to 63 characters from A-Z a-z 0-9 . _ -, got ''");
    assert_refused(*state, "[site]\nid = my site\n",
                   "2: [site] id: must be 1 to 63 characters from A-Z a-z 0-9 . _ -, got 'my site'");
}

static void duplicate_key(void **state)
{
    assert_refused(*state, SITE "[door.d]\nrelay = GPIO1\nunlock_ms = 100\n\nunlock_ms = 200\n",
                   "7: [door.d] unlock_ms: duplicate key (first set at line 5)");
}

static void bad_gpio_line_name(void **state)
{
    const char *bad[] = {"gpiochip0:1024", "gpiochip0:", ":17", "GPIO 17", "gpiochip0:17:1", "gpiochip0:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256], suffix[512];
        snprintf(text, sizeof text, SITE "[door.d]\nrelay = GPIO1\ncontact = %s\n", bad[i]);
        snprintf(suffix, sizeof suffix,
                 "5: [door.d] contact: must be a GPIO line as CHIP:OFFSET (gpiochip0:17, offset 0..1023) "
                 "or a line name (GPIO17), got '%s'",
                 bad[i]);
        assert_refused(*state, text, suffix);
    }
}

static void bad_section_names(void **state)
{
    assert_refused(*state, SITE "[door.front door]\nrelay = GPIO1\n",
                   "3: [door.front door]: a door section is named [door.NAME], NAME being 1 to 63 "
                   "characters from A-Z a-z 0-9 _ -");
    assert_refused(*state, SITE "[reader]\ndriver = sim\n",
                   "3: [reader]: a reader section is named [reader.NAME], NAME being 1 to 63 "
                   "characters from A-Z a-z 0-9 _ -");
}

static void syntax_errors(void **state)
{
    assert_refused(*state, SITE "\n[door.x\nrelay = GPIO1\n",
                   "4: syntax error: section header without closing ']'");
    assert_refused(*state, SITE "capacity 12\n",
                   "3: syntax error: expected [section], key = value, or a comment starting with ; or #");
    assert_refused(*state, SITE "[door.x] extra\n", "3: syntax error: text after the section header's ']'");
    assert_refused(*state, "id = x\n[site]\n", "1: id: key outside any section (put it under [site], ...)");
}

static void long_line_is_refused(void **state)
{
    char text[512];
    char name[300];
    memset(name, 'a', 250);
    name[250] = '\0';
    snprintf(text, sizeof text, "[site]\nid = s1\nname = %s\n", name);
    assert_refused(*state, text, "3: line too long (at most 197 characters)");
}

static void bad_timezone(void **state)
{
    unsetenv("TZDIR");   /* the messages name the default zone directory */
    assert_refused(*state, SITE "timezone = Europe/Lozere\n",
                   "3: [site] timezone: unknown timezone 'Europe/Lozere' (no zone file "
                   "/usr/share/zoneinfo/Europe/Lozere; is tzdata installed?)");
    assert_refused(*state, SITE "timezone = ../../etc/passwd\n",
                   "3: [site] timezone: must be an IANA timezone name such as Europe/Paris, got "
                   "'../../etc/passwd'");
    assert_refused(*state, SITE "timezone = /etc/localtime\n",
                   "3: [site] timezone: must be an IANA timezone name such as Europe/Paris, got "
                   "'/etc/localtime'");
    /* A regular file in the zone directory that is not a compiled zone. */
    assert_refused(*state, SITE "timezone = zone.tab\n",
                   "3: [site] timezone: unknown timezone 'zone.tab' (no zone file "
                   "/usr/share/zoneinfo/zone.tab; is tzdata installed?)");
}

static void relative_path_is_refused(void **state)
{
    assert_refused(*state, SITE "[database]\npath = data/tc.db\n",
                   "4: [database] path: must be an absolute path (starting with '/'), got 'data/tc.db'");
}

static void mqtt_checks(void **state)
{
    assert_refused(*state, SITE "[mqtt]\nhost = b\ntls_cert = /c.pem\n",
                   "3: [mqtt] tls_key: tls_cert and tls_key go together (client certificate authentication)");
    assert_refused(*state, SITE "[mqtt]\nprefix = a/#\n",
                   "4: [mqtt] prefix: must be topic levels of A-Z a-z 0-9 . _ - separated by single '/' "
                   "(such as telecentre or lozere/telecentre), got 'a/#'");
    assert_refused(*state, SITE "[mqtt]\npassword_file = /pw\n",
                   "3: [mqtt] username: missing (required with password_file)");
}

static void missing_file(void **state)
{
    struct fixture *fx = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/nope.conf", fx->dir);
    assert_int_equal(config_load(path, &fx->cfg, fx->err, sizeof fx->err), -ENOENT);
    char expected[PATH_MAX];
    snprintf(expected, sizeof expected, "%s: cannot open: No such file or directory", path);
    assert_string_equal(fx->err, expected);
    assert_int_equal(config_load(fx->dir, &fx->cfg, fx->err, sizeof fx->err), -EISDIR);
}

/* The repository root: $TC_SOURCE_DIR, or three levels above this file. */
static void source_path(const char *relative, char *out, size_t len)
{
    const char *root = getenv("TC_SOURCE_DIR");
    if (root && *root) {
        snprintf(out, len, "%s/%s", root, relative);
        return;
    }
    char here[PATH_MAX];
    snprintf(here, sizeof here, "%s", __FILE__);
    snprintf(out, len, "%s/../../%s", dirname(here), relative);
}

static void example_config_loads(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX];
    source_path("config/telecentred.conf", path, sizeof path);
    int r = config_load(path, &fx->cfg, fx->err, sizeof fx->err);
    if (r)
        fail_msg("%d: %s", r, fx->err);
    assert_string_equal(fx->cfg.site_id, "florac");
    assert_int_equal(fx->cfg.n_doors, 1);
    assert_int_equal(fx->cfg.n_readers, 2);
    assert_true(config_has_exit_reader(&fx->cfg));
}

static void demo_config_loads(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX];
    source_path("config/demo.conf", path, sizeof path);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    char template[8192];
    size_t n = fread(template, 1, sizeof template - 1, f);
    fclose(f);
    template[n] = '\0';

    /* What scripts/demo does: every @RUNDIR@ becomes the run directory. */
    char text[16384] = "";
    size_t used = 0;
    for (const char *s = template; *s;) {
        const char *token = strstr(s, "@RUNDIR@");
        size_t chunk = token ? (size_t)(token - s) : strlen(s);
        assert_true(used + chunk + strlen(fx->dir) < sizeof text);
        memcpy(text + used, s, chunk);
        used += chunk;
        if (!token)
            break;
        memcpy(text + used, fx->dir, strlen(fx->dir));
        used += strlen(fx->dir);
        s = token + strlen("@RUNDIR@");
    }
    text[used] = '\0';

    int r = load_text(fx, text);
    if (r)
        fail_msg("%d: %s", r, fx->err);
    const struct config *cfg = &fx->cfg;
    assert_string_equal(cfg->site_id, "demo-lozere");
    assert_int_equal(cfg->policy.capacity, 6);
    for (int wday = 0; wday < 7; wday++) {
        assert_false(cfg->policy.hours[wday].closed);
        assert_int_equal(cfg->policy.hours[wday].open_min, 0);
        assert_int_equal(cfg->policy.hours[wday].close_min, 24 * 60);
    }
    char expected[PATH_MAX + 64];
    snprintf(expected, sizeof expected, "%s/demo.db", fx->dir);
    assert_string_equal(cfg->db_path, expected);
    snprintf(expected, sizeof expected, "%s/reader-exit.fifo", fx->dir);
    assert_string_equal(config_find_reader(cfg, "exit")->fifo, expected);
    assert_int_equal(config_find_reader(cfg, "exit")->direction, DIRECTION_OUT);
    assert_int_equal(cfg->gpio_driver, GPIO_DRIVER_SIM);
    assert_int_equal(config_find_door(cfg, "entrance")->unlock_ms, 3000);
    assert_int_equal(config_find_door(cfg, "entrance")->held_open_s, 20);
    assert_string_equal(cfg->mqtt.host, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(full_config_parses, setup, teardown),
        cmocka_unit_test_setup_teardown(minimal_config_gets_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(explicit_mqtt_port_is_kept_with_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_section, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_unknown_section_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_integer, setup, teardown),
        cmocka_unit_test_setup_teardown(repeated_section, setup, teardown),
        cmocka_unit_test_setup_teardown(integer_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(reader_names_unknown_door, setup, teardown),
        cmocka_unit_test_setup_teardown(reader_door_required_with_several_doors, setup, teardown),
        cmocka_unit_test_setup_teardown(reader_driver_requirements, setup, teardown),
        cmocka_unit_test_setup_teardown(reader_cpu_choices, setup, teardown),
        cmocka_unit_test_setup_teardown(gpio_sim_needs_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(door_needs_relay, setup, teardown),
        cmocka_unit_test_setup_teardown(gpio_line_used_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_site_id, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_key, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_gpio_line_name, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_section_names, setup, teardown),
        cmocka_unit_test_setup_teardown(syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(long_line_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_timezone, setup, teardown),
        cmocka_unit_test_setup_teardown(relative_path_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(mqtt_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(example_config_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(demo_config_loads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
