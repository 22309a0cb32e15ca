/* The simulated reader: one FIFO per reader, one UID per line. */
#include <errno.h>
#include <stddef.h>

#include "reader.h"
#include "sim_fifo.h"

static int sim_open(struct reader *r, const struct reader_config *cfg)
{
    struct sim_fifo *f;
    int err = sim_fifo_open(cfg->fifo, &f);
    if (err < 0)
        return err;
    r->backend = f;
    return 0;
}

static int sim_fd(struct reader *r)
{
    return sim_fifo_fd(r->backend);
}

static void sim_tap_line(const char *line, bool too_long, void *userdata)
{
    struct reader *r = userdata;
    if (too_long)
        reader_report_problem(r, -EMSGSIZE, NULL);
    else if (reader_report_tap(r, line) < 0)
        reader_report_problem(r, -EINVAL, line);
}

static int sim_dispatch(struct reader *r)
{
    return sim_fifo_read_lines(r->backend, sim_tap_line, r);
}

static void sim_close(struct reader *r)
{
    r->backend = sim_fifo_close(r->backend);
}

const struct reader_backend_ops reader_sim_ops = {
    .name = "sim",
    .open = sim_open,
    .fd = sim_fd,
    .dispatch = sim_dispatch,
    .close = sim_close,
};
