/* The simulated reader: one FIFO per reader, one UID per line. Two control lines stand for a reader
 * unplugged and plugged back (soak runs, tests): "!unplug" reports it offline and drops the taps that
 * follow (an unplugged reader sees no card), "!plug" reports it back in service. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "sim_fifo.h"

struct sim_reader {
    struct sim_fifo *fifo;
    bool unplugged;
};

static int sim_open(struct reader *r, const struct reader_config *cfg)
{
    struct sim_reader *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int err = sim_fifo_open(cfg->fifo, &s->fifo);
    if (err < 0) {
        free(s);
        return err;
    }
    r->backend = s;
    return 0;
}

static int sim_fd(struct reader *r)
{
    struct sim_reader *s = r->backend;
    return sim_fifo_fd(s->fifo);
}

static void sim_tap_line(const char *line, bool too_long, void *userdata)
{
    struct reader *r = userdata;
    struct sim_reader *s = r->backend;
    if (!too_long && strcmp(line, "!unplug") == 0) {
        if (!s->unplugged)
            reader_report_health(r, READER_OFFLINE, "sim reader unplugged");
        s->unplugged = true;
    } else if (!too_long && strcmp(line, "!plug") == 0) {
        if (s->unplugged)
            reader_report_health(r, READER_ONLINE, "sim reader plugged back");
        s->unplugged = false;
    } else if (s->unplugged) {
        return;
    } else if (too_long)
        reader_report_problem(r, -EMSGSIZE, NULL);
    else if (reader_report_tap(r, line) < 0)
        reader_report_problem(r, -EINVAL, line);
}

static int sim_dispatch(struct reader *r)
{
    struct sim_reader *s = r->backend;
    return sim_fifo_read_lines(s->fifo, sim_tap_line, r);
}

static void sim_close(struct reader *r)
{
    struct sim_reader *s = r->backend;
    if (s)
        sim_fifo_close(s->fifo);
    free(s);
    r->backend = NULL;
}

const struct reader_backend_ops reader_sim_ops = {
    .name = "sim",
    .open = sim_open,
    .fd = sim_fd,
    .dispatch = sim_dispatch,
    .close = sim_close,
};
