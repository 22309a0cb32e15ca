/* The INI configuration (docs/configuration.md): the text goes through config_load_stream(), the very parse
 * config_load() runs on a file (libinih plus our line reader, section and key tables, value parsers and the
 * checks across sections), read here from memory with fmemopen.
 *
 * Besides crashes, leaks and undefined behaviour: a refused file gives one line "NAME[:LINE]: ..." and a
 * negative errno; an accepted one holds what the daemon relies on without checking again (a valid site id,
 * doors and readers within their bounds, every reader on a door that exists, ports and timings in range). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define NAME "fuzz.conf"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_set_timezone();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char empty[1];
    FILE *f = fmemopen(size ? (void *)data : empty, size, "r");
    FUZZ_CHECK(f != NULL);
    static struct config cfg;      /* large: off the stack */
    char err[1024];
    int r = config_load_stream(f, NAME, &cfg, err, sizeof err);
    fclose(f);
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL || r == -ENOMEM || r == -EIO);
        FUZZ_CHECK(!strncmp(err, NAME ":", strlen(NAME ":")) && !strchr(err, '\n'));
        return 0;
    }
    FUZZ_CHECK(r == 0 && err[0] == '\0');
    FUZZ_CHECK(id_is_valid(cfg.site_id));
    FUZZ_CHECK(cfg.n_doors <= CONFIG_MAX_DOORS && cfg.n_readers <= CONFIG_MAX_READERS);
    for (size_t i = 0; i < cfg.n_doors; i++) {
        const struct door_config *d = &cfg.doors[i];
        FUZZ_CHECK(d->name[0] && d->relay[0] && config_find_door(&cfg, d->name) == d);
        FUZZ_CHECK(d->unlock_ms >= 100 && d->unlock_ms <= 60000);
        FUZZ_CHECK(d->debounce_ms >= 0 && d->debounce_ms <= 1000 && d->held_open_s >= 0);
    }
    for (size_t i = 0; i < cfg.n_readers; i++) {
        const struct reader_config *rd = &cfg.readers[i];
        FUZZ_CHECK(rd->name[0] && config_find_reader(&cfg, rd->name) == rd);
        FUZZ_CHECK(config_find_door(&cfg, rd->door) != NULL);
        FUZZ_CHECK(rd->driver == READER_DRIVER_SIM ? rd->fifo[0] != '\0' : rd->connstring[0] != '\0');
    }
    FUZZ_CHECK(cfg.mqtt.port >= 1 && cfg.mqtt.port <= 65535);
    FUZZ_CHECK(cfg.mqtt.unlock_max_age_s >= 0 && cfg.mqtt.outbox_max >= 0);
    FUZZ_CHECK(cfg.gpio_driver != GPIO_DRIVER_SIM || cfg.gpio_fifo[0]);
    (void)config_has_exit_reader(&cfg);
    return 0;
}
