/* The INI configuration (libinih): parsed whole, validated, and refused with "FILE:LINE: [section] key:
 * what is wrong" on the first error. Unknown sections and keys are errors (a typo must not be ignored). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "policy.h"

#define CONFIG_DEFAULT_PATH "/etc/telecentred/telecentred.conf"
#define CONFIG_MAX_DOORS 8
#define CONFIG_MAX_READERS 16
#define CONFIG_PATH_MAX 512
#define CONFIG_LINE_NAME_MAX 64     /* "gpiochip0:17" or "GPIO17"; "" = not wired */

struct door_config {
    char name[ID_MAX];
    char relay[CONFIG_LINE_NAME_MAX];       /* required */
    bool relay_active_low;                  /* default false */
    int unlock_ms;                          /* default 5000, 100..60000 */
    char contact[CONFIG_LINE_NAME_MAX];     /* door contact: logical 1 = open */
    bool contact_active_low;
    char rex[CONFIG_LINE_NAME_MAX];         /* request-to-exit button: logical 1 = pressed */
    bool rex_active_low;
    char led_green[CONFIG_LINE_NAME_MAX];
    char led_red[CONFIG_LINE_NAME_MAX];
    char buzzer[CONFIG_LINE_NAME_MAX];
    int held_open_s;                        /* default 30 */
    int debounce_ms;                        /* contact and exit button, default 20, 0..1000 */
};

enum reader_driver {
    READER_DRIVER_SIM,
    READER_DRIVER_LIBNFC,
};
struct reader_config {
    char name[ID_MAX];
    enum reader_driver driver;
    char connstring[CONFIG_PATH_MAX];       /* libnfc */
    char fifo[CONFIG_PATH_MAX];             /* sim */
    char door[ID_MAX];                      /* must name a [door.NAME] */
    enum direction direction;               /* default in */
    int poll_ms;                            /* libnfc: the poll period, default 30 */
    int rearm_s;                            /* a card held this long is decided again; 0 = only after
                                               it is taken away (default) */
    int cpu;                                /* libnfc: the CPU its worker is pinned to, or READER_CPU_* */
};

enum {
    READER_CPU_LAST = -1,                   /* "last": the highest CPU the daemon may use (default) */
    READER_CPU_ANY = -2,                    /* "any": not pinned */
};

enum gpio_driver {
    GPIO_DRIVER_SIM,
    GPIO_DRIVER_GPIOD,
};

struct mqtt_config {                        /* parsed and validated now, used by the MQTT module */
    char host[256];                         /* "" = MQTT disabled */
    int port;                               /* default 1883 (8883 when tls_ca is set) */
    char prefix[ID_MAX];                    /* default "telecentre" */
    char client_id[ID_MAX];                 /* default "telecentred-<site id>" */
    char username[128];
    char password_file[CONFIG_PATH_MAX];
    char tls_ca[CONFIG_PATH_MAX];
    char tls_cert[CONFIG_PATH_MAX];
    char tls_key[CONFIG_PATH_MAX];
    bool ha_discovery;                      /* default true */
    int keepalive_s;                        /* default 30 */
    int outbox_max;                         /* events kept while the broker is away, default 100000 */
    int unlock_max_age_s;                   /* remote unlocks older (or further ahead) are ignored, 10 */
    char network_sync_topic[256];           /* "" = no network-wide sync (default) */
};

struct config {
    char path[CONFIG_PATH_MAX];             /* the file it came from */
    /* [site] */
    char site_id[ID_MAX];                   /* required */
    char site_name[128];
    char timezone[64];                      /* default "Europe/Paris" */
    /* [database] */
    char db_path[CONFIG_PATH_MAX];          /* default /var/lib/telecentred/telecentred.db */
    /* [hours], [policy] and [site] capacity */
    struct policy_config policy;
    /* [door.NAME], [reader.NAME] */
    struct door_config doors[CONFIG_MAX_DOORS];
    size_t n_doors;
    struct reader_config readers[CONFIG_MAX_READERS];
    size_t n_readers;
    /* [gpio] */
    enum gpio_driver gpio_driver;           /* default gpiod */
    char gpio_fifo[CONFIG_PATH_MAX];        /* sim */
    /* [mqtt] */
    struct mqtt_config mqtt;
    /* [privacy] */
    int log_retention_days;                 /* default 90 */
};

/* Fills defaults (no doors, no readers, gpio sim off). */
void config_defaults(struct config *cfg);
/* Parses and validates a file into cfg (which it initialises with defaults first).
 * 0, or a negative errno with a one-line message "FILE:LINE: [section] key: problem" (or "FILE: ...")
 * written into err: -errno when the file cannot be opened or read, -EINVAL for anything in it.
 * Changes no process state (the timezone is checked against the zone files, not applied). */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);
/* The same parse from an open stream (fuzz/fuzz_config.c reads its input through fmemopen), named `name` in
 * messages; the file checks of config_load (a directory, permissions) apply to files only. f stays open. */
int config_load_stream(FILE *f, const char *name, struct config *cfg, char *err, size_t errlen);
const struct door_config *config_find_door(const struct config *cfg, const char *name);
bool config_has_exit_reader(const struct config *cfg);
const struct reader_config *config_find_reader(const struct config *cfg, const char *name);
/* For logs and --check-config output. */
const char *reader_driver_name(enum reader_driver driver);   /* "sim" / "libnfc" */
const char *gpio_driver_name(enum gpio_driver driver);       /* "sim" / "gpiod" */
