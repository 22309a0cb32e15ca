/* Door I/O lines behind one small interface; one file per backend (gpio_sim.c now, gpio_gpiod.c
 * for libgpiod). The daemon's core never includes a hardware header.
 * Values are logical: 1 = active (relay energised, door open, button pressed), after active_low. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct gpio;
struct gpio_line;

/* Backend ops, implemented once per driver (see gpio_sim.c). close() frees the backend's data and every
 * line's `backend` pointer; the generic layer frees the lines themselves afterwards.
 * Physical levels only: active_low is the generic layer's business, so a backend requests its lines
 * without any kernel-side inversion (no GPIOD_LINE_ACTIVE_LOW / set_active_low) and never inverts.
 * set_physical() is called with the generic layer's guard mutex held, from the caller's thread or from
 * the guard thread: it must not call back into the generic layer, and must be safe against the event
 * loop thread running request_*() and dispatch() on other lines at the same time. */
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
 * Also starts the struct's guard thread (see gpio_set_bounded), named GPIO_GUARD_THREAD_NAME, with every
 * signal blocked so that the daemon's signalfd keeps receiving them. The process is multi-threaded from
 * then on: a child forked afterwards must not touch this layer (the libnfc reader workers only close
 * their inherited fds, run libnfc and _exit()).
 * -ENOTSUP for GPIO_DRIVER_GPIOD in a build without libgpiod support; gpiod: -ENODEV when the machine
 * has no GPIO chip at all (no /dev/gpiochip*).
 * The gpiod driver: lines are "CHIP:OFFSET" (CHIP = a chip's device name like gpiochip0, or its label)
 * or a line name looked up on every chip (refused with -ENOTUNIQ when two chips have it). Consumer
 * "telecentred". Requests that fail say why through the problem callback. Debounce: the kernel's (2.x)
 * or a software window (1.6, or 2.x when the kernel refuses): an edge opens a window of debounce_ms, at
 * its end the line is read and reported if it changed.
 * The sim driver: the FIFO is created if missing (mode 0600); each line "LINE 1" / "LINE 0" sets the
 * physical level of an input; inputs start inactive (logical 0) and are not debounced (a FIFO does not
 * bounce); every output set, including the initial level at request, is logged "gpio LINE=0|1"
 * (physical level) through log_info(): printing is that backend's whole purpose. */
int gpio_open(enum gpio_driver driver, const char *fifo, gpio_input_cb cb, void *userdata,
              struct gpio **out);
/* Accepts NULL; returns NULL. A line still inside a gpio_set_bounded() pulse is turned off first (its
 * guard ends with the struct); other outputs are released as they are: the caller makes them safe. */
struct gpio *gpio_close(struct gpio *g);
/* Where backend problems go (called with gpio_open's userdata); without one they are dropped. */
void gpio_set_problem_cb(struct gpio *g, gpio_problem_cb cb);

/* Requests an output driven to `initial` (logical) from the first instant.
 * -EINVAL for an empty name, -ENAMETOOLONG, -EEXIST if the line is already requested. */
int gpio_request_output(struct gpio *g, const char *name, bool active_low, bool initial,
                        struct gpio_line **out);
/* Requests an input with edge events, debounced by debounce_ms. */
int gpio_request_input(struct gpio *g, const char *name, bool active_low, int debounce_ms,
                       struct gpio_line **out);
/* Turns an output on (logical 1) for at most max_on_ms: the struct's guard thread turns it off at that
 * deadline (CLOCK_MONOTONIC) even if the event loop stalls in a blocking call, so an unlock pulse can
 * never outlive unlock_ms. Calling it again while the line is on replaces the deadline (re-arm).
 * gpio_set(line, false) cancels the guard; gpio_set(line, true) leaves a pending deadline in place (only
 * turning the line off removes a bound). The guard runs in this process: a stopped (SIGSTOP) or killed
 * process takes it along, see docs/door-hardware.md.
 * -EINVAL on an input or max_on_ms <= 0; the backend's error if the line cannot be set. */
int gpio_set_bounded(struct gpio_line *line, int max_on_ms);
int gpio_set(struct gpio_line *line, bool value);   /* drives it even if unchanged; -EINVAL on an input */
bool gpio_get(const struct gpio_line *line);     /* last known logical value (thread-safe) */
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
    bool value;                 /* logical; outputs: written under gpio->lock */
    int debounce_ms;
    uint64_t guard_deadline_ns; /* CLOCK_MONOTONIC; 0 = no bounded pulse pending (under gpio->lock) */
    void *userdata;
    void *backend;              /* the backend's per-line data */
    struct gpio_line *next;
};
struct gpio {
    const struct gpio_backend_ops *ops;
    gpio_input_cb cb;
    void *cb_userdata;
    gpio_problem_cb problem_cb;
    struct gpio_line *lines;    /* the list is changed under lock (the guard thread walks it) */
    void *backend;              /* the backend's data */
    /* The bounded-pulse guard: one thread, sleeping on `guard_cond` (CLOCK_MONOTONIC) until the earliest
     * guard_deadline_ns. `lock` serialises every set_physical() call and the outputs' values. */
    pthread_mutex_t lock;
    pthread_cond_t guard_cond;
    pthread_t guard_thread;
    bool guard_running;
    bool guard_quit;
};
#define GPIO_GUARD_THREAD_NAME "gpio-guard"   /* the guard thread's name (comm) */
struct gpio_line *gpio_find_line(struct gpio *g, const char *name);
void gpio_report_input(struct gpio_line *line, bool physical);   /* from dispatch: logical change -> cb */
void gpio_report_problem(struct gpio *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern const struct gpio_backend_ops gpio_sim_ops;
#ifdef TC_HAVE_GPIOD
extern const struct gpio_backend_ops gpio_gpiod_ops;
#endif
