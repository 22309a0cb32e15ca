/* The simulated GPIO backend: inputs come from a FIFO ("LINE 1" / "LINE 0"), outputs are printed.
 * The one library module that logs, because printing the outputs is what it is for. */
#include <stdio.h>

#include "gpio.h"
#include "log.h"
#include "sim_fifo.h"

static int sim_open(struct gpio *g, const char *fifo)
{
    struct sim_fifo *f;
    int r = sim_fifo_open(fifo, &f);
    if (r < 0)
        return r;
    g->backend = f;
    return 0;
}

static int sim_request_output(struct gpio *g, struct gpio_line *line, bool initial_physical)
{
    log_info("gpio %s=%d", line->name, initial_physical);
    return 0;
}

static int sim_request_input(struct gpio *g, struct gpio_line *line)
{
    return 0;
}

static int sim_set_physical(struct gpio *g, struct gpio_line *line, bool physical)
{
    /* Only changes are printed (the level set at request time was printed then): a door made safe
     * twice, or a LED switched off that was off, is not news. */
    if (physical != (line->value != line->active_low))
        log_info("gpio %s=%d", line->name, physical);
    return 0;
}

static int sim_fd(struct gpio *g)
{
    return sim_fifo_fd(g->backend);
}

static void sim_input_line(const char *text, bool too_long, void *userdata)
{
    struct gpio *g = userdata;
    if (too_long) {
        gpio_report_problem(g, "gpio sim: input line too long, ignored");
        return;
    }
    char name[CONFIG_LINE_NAME_MAX];
    char level[2];
    char extra;
    /* %63s matches CONFIG_LINE_NAME_MAX - 1; a longer name cannot be a requested line anyway. */
    if (sscanf(text, "%63s %1s %c", name, level, &extra) != 2 || (level[0] != '0' && level[0] != '1')) {
        gpio_report_problem(g, "gpio sim: \"%s\": expected \"LINE 0\" or \"LINE 1\", ignored", text);
        return;
    }
    struct gpio_line *line = gpio_find_line(g, name);
    if (!line) {
        gpio_report_problem(g, "gpio sim: \"%s\": no input line %s, ignored", text, name);
        return;
    }
    if (line->is_output) {
        gpio_report_problem(g, "gpio sim: \"%s\": %s is an output, ignored", text, name);
        return;
    }
    gpio_report_input(line, level[0] == '1');
}

static int sim_dispatch(struct gpio *g)
{
    return sim_fifo_read_lines(g->backend, sim_input_line, g);
}

static void sim_close(struct gpio *g)
{
    g->backend = sim_fifo_close(g->backend);
}

const struct gpio_backend_ops gpio_sim_ops = {
    .name = "sim",
    .open = sim_open,
    .request_output = sim_request_output,
    .request_input = sim_request_input,
    .set_physical = sim_set_physical,
    .fd = sim_fd,
    .dispatch = sim_dispatch,
    .close = sim_close,
};
