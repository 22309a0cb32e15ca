/* Door I/O lines behind one small interface; one file per backend (gpio_sim.c now, gpio_gpiod.c
 * for libgpiod). The daemon's core never includes a hardware header.
 * Values are logical: 1 = active (relay energised, door open, button pressed), after active_low. */
#pragma once
#include <stdbool.h>

#include "config.h"

struct gpio;
struct gpio_line;

/* Backend ops, implemented once per driver (see gpio_sim.c). close() frees the backend's data and every
 * line's `backend` pointer; the generic layer frees the lines themselves afterwards. */
struct gpio_backend_ops {
    const char *name;
    int (*open)(struct gpio *g, const char *fifo_or_null);
    int (*request_output)(struct gpio *g, struct gpio_line *line, bool initial_physical);
    int (*request_input)(struct gpio *g, struct gpio_line *line);
    int (*set_physical)(struct gpio *g, struct gpio_line *line, bool physical);
    int (*fd)(struct gpio *g);
    /* reads what is pending and calls gpio_report_input() per input change */
    int (*dispatch)(struct gpio *g);
    void (*close)(struct gpio *g);
};

typedef void (*gpio_input_cb)(struct gpio_line *line, bool value, void *userdata);
/* Input the backend could not use (sim: an unknown line, an output, a bad value or an overlong line in
 * the FIFO), as one line of text for the daemon to log; the input itself is skipped. */
typedef void (*gpio_problem_cb)(const char *message, void *userdata);

/* Opens the driver; fifo is the sim input FIFO (NULL for gpiod). Inputs are reported to cb.
 * -ENOTSUP for GPIO_DRIVER_GPIOD in a build without libgpiod support.
 * The sim driver: the FIFO is created if missing (mode 0600); each line "LINE 1" / "LINE 0" sets the
 * physical level of an input; inputs start inactive (logical 0) and are not debounced (a FIFO does not
 * bounce); every output set, including the initial level at request, is logged "gpio LINE=0|1"
 * (physical level) through log_info(): printing is that backend's whole purpose. */
int gpio_open(enum gpio_driver driver, const char *fifo, gpio_input_cb cb, void *userdata,
              struct gpio **out);
struct gpio *gpio_close(struct gpio *g);   /* accepts NULL; returns NULL */
/* Where backend problems go (called with gpio_open's userdata); without one they are dropped. */
void gpio_set_problem_cb(struct gpio *g, gpio_problem_cb cb);

/* Requests an output driven to `initial` (logical) from the first instant.
 * -EINVAL for an empty name, -ENAMETOOLONG, -EEXIST if the line is already requested. */
int gpio_request_output(struct gpio *g, const char *name, bool active_low, bool initial,
                        struct gpio_line **out);
/* Requests an input with edge events, debounced by debounce_ms. */
int gpio_request_input(struct gpio *g, const char *name, bool active_low, int debounce_ms,
                       struct gpio_line **out);
/* Turns an output on for at most max_on_ms: a guard outside the event loop (a thread or a kernel
 * timer) turns it off at that deadline even if the loop stalls, so an unlock pulse can never outlive
 * unlock_ms. gpio_set(line, false) before the deadline cancels the guard. */
int gpio_set_bounded(struct gpio_line *line, int max_on_ms);
int gpio_set(struct gpio_line *line, bool value);   /* drives it even if unchanged; -EINVAL on an input */
bool gpio_get(const struct gpio_line *line);     /* last known logical value */
const char *gpio_line_name(const struct gpio_line *line);
void gpio_line_set_userdata(struct gpio_line *line, void *userdata);
void *gpio_line_userdata(const struct gpio_line *line);

int gpio_fd(struct gpio *g);                      /* pollable fd, -1 if none */
int gpio_dispatch(struct gpio *g);                /* call when gpio_fd is readable */

/* For backends. */
struct gpio_line {
    struct gpio *gpio;
    char name[CONFIG_LINE_NAME_MAX];
    bool is_output;
    bool active_low;
    bool value;                 /* logical */
    int debounce_ms;
    void *userdata;
    void *backend;              /* the backend's per-line data */
    struct gpio_line *next;
};
struct gpio {
    const struct gpio_backend_ops *ops;
    gpio_input_cb cb;
    void *cb_userdata;
    gpio_problem_cb problem_cb;
    struct gpio_line *lines;
    void *backend;              /* the backend's data */
};
struct gpio_line *gpio_find_line(struct gpio *g, const char *name);
void gpio_report_input(struct gpio_line *line, bool physical);   /* from dispatch: logical change -> cb */
void gpio_report_problem(struct gpio *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern const struct gpio_backend_ops gpio_sim_ops;
