/* The generic GPIO layer: the line list, active-low mapping, dispatch to the chosen backend, and the
 * guard thread that ends bounded pulses (gpio_set_bounded) whatever the event loop is doing. */
#include "gpio.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A guard that cannot turn its line off (the backend refused) tries again after this long: it cannot
 * log, and giving up would leave the relay energised. */
#define GUARD_RETRY_NS 50000000ull

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Called with g->lock held. Off both physically and in `value`, the bound cleared; on failure the bound
 * stays so that the guard tries again. */
static int line_off_locked(struct gpio_line *line)
{
    int r = line->gpio->ops->set_physical(line->gpio, line, line->active_low);
    if (r < 0)
        return r;
    line->value = false;
    line->guard_deadline_ns = 0;
    return 0;
}

/* The guard thread. It never logs (library code); the sim backend's set_physical prints the change,
 * which is that backend's purpose. */
static void *guard_main(void *arg)
{
    struct gpio *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->guard_quit) {
        uint64_t now = mono_ns();
        uint64_t next = 0;
        for (struct gpio_line *line = g->lines; line; line = line->next) {
            if (!line->guard_deadline_ns)
                continue;
            if (line->guard_deadline_ns <= now && line_off_locked(line) < 0)
                line->guard_deadline_ns = now + GUARD_RETRY_NS;
            if (line->guard_deadline_ns && (!next || line->guard_deadline_ns < next))
                next = line->guard_deadline_ns;
        }
        if (!next) {
            pthread_cond_wait(&g->guard_cond, &g->lock);
            continue;
        }
        struct timespec at = {.tv_sec = (time_t)(next / 1000000000ull), .tv_nsec = (long)(next % 1000000000ull)};
        pthread_cond_timedwait(&g->guard_cond, &g->lock, &at);   /* ETIMEDOUT or woken: look again */
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

static int guard_start(struct gpio *g)
{
    pthread_condattr_t attr;
    int r = pthread_condattr_init(&attr);
    if (r)
        return -r;
    r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!r)
        r = pthread_cond_init(&g->guard_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (r)
        return -r;
    if ((r = pthread_mutex_init(&g->lock, NULL))) {
        pthread_cond_destroy(&g->guard_cond);
        return -r;
    }
    /* The thread inherits the creator's signal mask: with everything blocked, SIGTERM and friends go
     * to the daemon's signalfd (which blocks them only later, in loop_add_signal), never to the guard,
     * where the default action would kill the process before the doors are made safe. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&g->guard_thread, NULL, guard_main, g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        pthread_mutex_destroy(&g->lock);
        pthread_cond_destroy(&g->guard_cond);
        return -r;
    }
    pthread_setname_np(g->guard_thread, GPIO_GUARD_THREAD_NAME);   /* for ps -L, top -H and the tests */
    g->guard_running = true;
    return 0;
}

static void guard_stop(struct gpio *g)
{
    if (!g->guard_running)
        return;
    pthread_mutex_lock(&g->lock);
    g->guard_quit = true;
    pthread_cond_signal(&g->guard_cond);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->guard_thread, NULL);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->guard_cond);
    g->guard_running = false;
}

int gpio_open(enum gpio_driver driver, const char *fifo, gpio_input_cb cb, void *userdata,
              struct gpio **out)
{
    const struct gpio_backend_ops *ops = NULL;
    switch (driver) {
    case GPIO_DRIVER_SIM:
        ops = &gpio_sim_ops;
        break;
    case GPIO_DRIVER_GPIOD:
#ifdef TC_HAVE_GPIOD
        ops = &gpio_gpiod_ops;
        break;
#else
        return -ENOTSUP;    /* a build without libgpiod (cmake/gpiod.cmake) */
#endif
    }
    if (!ops)
        return -EINVAL;

    struct gpio *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->ops = ops;
    g->cb = cb;
    g->cb_userdata = userdata;
    int r = guard_start(g);
    if (r < 0) {
        free(g);
        return r;
    }
    r = ops->open(g, fifo);
    if (r < 0) {
        guard_stop(g);
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
    /* A bounded pulse still running would otherwise outlive its guard. */
    pthread_mutex_lock(&g->lock);
    for (struct gpio_line *line = g->lines; line; line = line->next)
        if (line->guard_deadline_ns)
            (void)line_off_locked(line);   /* nothing more to try: the line is released next */
    pthread_mutex_unlock(&g->lock);
    guard_stop(g);
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
    pthread_mutex_lock(&g->lock);
    line->next = g->lines;
    g->lines = line;
    pthread_mutex_unlock(&g->lock);
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
    struct gpio *g = line->gpio;
    pthread_mutex_lock(&g->lock);
    int r = g->ops->set_physical(g, line, value != line->active_low);
    if (r >= 0) {
        line->value = value;
        if (!value)
            line->guard_deadline_ns = 0;   /* off before the deadline: nothing left to guard */
    }
    pthread_mutex_unlock(&g->lock);
    return r < 0 ? r : 0;
}

int gpio_set_bounded(struct gpio_line *line, int max_on_ms)
{
    if (!line->is_output || max_on_ms <= 0)
        return -EINVAL;
    struct gpio *g = line->gpio;
    pthread_mutex_lock(&g->lock);
    int r = g->ops->set_physical(g, line, !line->active_low);
    if (r >= 0) {
        line->value = true;
        line->guard_deadline_ns = mono_ns() + (uint64_t)max_on_ms * 1000000ull;
        pthread_cond_signal(&g->guard_cond);   /* it may be sleeping until a later deadline, or forever */
    }
    pthread_mutex_unlock(&g->lock);
    return r < 0 ? r : 0;
}

bool gpio_get(const struct gpio_line *line)
{
    if (!line->is_output)
        return line->value;   /* inputs change only in dispatch, on the caller's thread */
    pthread_mutex_lock(&line->gpio->lock);
    bool value = line->value;
    pthread_mutex_unlock(&line->gpio->lock);
    return value;
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
