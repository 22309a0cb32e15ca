/* The generic GPIO layer: the line list, active-low mapping and dispatch to the chosen backend. */
#include "gpio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gpio_open(enum gpio_driver driver, const char *fifo, gpio_input_cb cb, void *userdata,
              struct gpio **out)
{
    const struct gpio_backend_ops *ops = NULL;
    switch (driver) {
    case GPIO_DRIVER_SIM:
        ops = &gpio_sim_ops;
        break;
    case GPIO_DRIVER_GPIOD:
        return -ENOTSUP;    /* gpio_gpiod.c comes with libgpiod support */
    }
    if (!ops)
        return -EINVAL;

    struct gpio *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->ops = ops;
    g->cb = cb;
    g->cb_userdata = userdata;
    int r = ops->open(g, fifo);
    if (r < 0) {
        free(g);
        return r;
    }
    *out = g;
    return 0;
}

struct gpio *gpio_close(struct gpio *g)
{
    if (!g)
        return NULL;
    g->ops->close(g);
    while (g->lines) {
        struct gpio_line *line = g->lines;
        g->lines = line->next;
        free(line);
    }
    free(g);
    return NULL;
}

void gpio_set_problem_cb(struct gpio *g, gpio_problem_cb cb)
{
    g->problem_cb = cb;
}

static int line_new(struct gpio *g, const char *name, bool active_low, bool is_output,
                    struct gpio_line **out)
{
    if (!name || !*name)
        return -EINVAL;
    if (strlen(name) >= CONFIG_LINE_NAME_MAX)
        return -ENAMETOOLONG;
    if (gpio_find_line(g, name))
        return -EEXIST;
    struct gpio_line *line = calloc(1, sizeof(*line));
    if (!line)
        return -ENOMEM;
    line->gpio = g;
    strcpy(line->name, name);
    line->is_output = is_output;
    line->active_low = active_low;
    *out = line;
    return 0;
}

static void line_attach(struct gpio *g, struct gpio_line *line)
{
    line->next = g->lines;
    g->lines = line;
}

int gpio_request_output(struct gpio *g, const char *name, bool active_low, bool initial,
                        struct gpio_line **out)
{
    struct gpio_line *line;
    int r = line_new(g, name, active_low, true, &line);
    if (r < 0)
        return r;
    line->value = initial;
    r = g->ops->request_output(g, line, initial != active_low);
    if (r < 0) {
        free(line);
        return r;
    }
    line_attach(g, line);
    *out = line;
    return 0;
}

int gpio_request_input(struct gpio *g, const char *name, bool active_low, int debounce_ms,
                       struct gpio_line **out)
{
    struct gpio_line *line;
    int r = line_new(g, name, active_low, false, &line);
    if (r < 0)
        return r;
    line->debounce_ms = debounce_ms;
    line->value = false;    /* a backend that can read the line replaces this in request_input */
    r = g->ops->request_input(g, line);
    if (r < 0) {
        free(line);
        return r;
    }
    line_attach(g, line);
    *out = line;
    return 0;
}

int gpio_set(struct gpio_line *line, bool value)
{
    if (!line->is_output)
        return -EINVAL;
    int r = line->gpio->ops->set_physical(line->gpio, line, value != line->active_low);
    if (r < 0)
        return r;
    line->value = value;
    return 0;
}

bool gpio_get(const struct gpio_line *line)
{
    return line->value;
}

const char *gpio_line_name(const struct gpio_line *line)
{
    return line->name;
}

void gpio_line_set_userdata(struct gpio_line *line, void *userdata)
{
    line->userdata = userdata;
}

void *gpio_line_userdata(const struct gpio_line *line)
{
    return line->userdata;
}

int gpio_fd(struct gpio *g)
{
    return g->ops->fd ? g->ops->fd(g) : -1;
}

int gpio_dispatch(struct gpio *g)
{
    return g->ops->dispatch ? g->ops->dispatch(g) : 0;
}

struct gpio_line *gpio_find_line(struct gpio *g, const char *name)
{
    for (struct gpio_line *line = g->lines; line; line = line->next)
        if (strcmp(line->name, name) == 0)
            return line;
    return NULL;
}

void gpio_report_input(struct gpio_line *line, bool physical)
{
    if (line->is_output)
        return;
    bool value = physical != line->active_low;
    if (value == line->value)
        return;
    line->value = value;
    if (line->gpio->cb)
        line->gpio->cb(line, value, line->gpio->cb_userdata);
}

void gpio_report_problem(struct gpio *g, const char *fmt, ...)
{
    if (!g->problem_cb)
        return;
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);   /* a cut message is still worth logging */
    va_end(ap);
    g->problem_cb(message, g->cb_userdata);
}
