/* The libgpiod backend: real GPIO lines through the kernel's character device, with libgpiod 1.6
 * (Debian / Raspberry Pi OS bookworm) or 2.x (trixie), chosen at build time by TC_GPIOD_API (set by
 * cmake/gpiod.cmake from the version pkg-config finds).
 *
 * - Lines are "CHIP:OFFSET" (CHIP = a chip's device name such as gpiochip0, or its label) or a line name
 *   searched on every /dev/gpiochip*: chip numbers are not stable (a Raspberry Pi 5's header is not on
 *   gpiochip0), so nothing assumes gpiochip0.
 * - Levels are physical: lines are requested without the kernel's active-low flag, and the generic layer
 *   (gpio.c) maps logical <-> physical. One place inverts, so nothing is inverted twice.
 * - Outputs are requested with their initial level in the request itself: the relay is locked from the
 *   first instant, with no glitch between "output" and "set".
 * - Inputs report both edges. Debounce: with 2.x the kernel's (per line, debounce_period_us), falling back
 *   to software if the kernel refuses it; with 1.6 always in software: an edge opens a window of
 *   debounce_ms, a timerfd fires at its end, the line is read and reported if it changed.
 * - One pollable fd for the daemon: an epoll set of every input's event fd plus the debounce timerfd.
 * Library code: errors are negative errno, explained through gpio_report_problem(); nothing is logged. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "gpio.h"

#ifndef TC_GPIOD_API
#error "TC_GPIOD_API (1 or 2) comes from cmake/gpiod.cmake"
#endif

#define CONSUMER "telecentred"
#define DEV_DIR "/dev"
#define CHIP_PATH_MAX 280
#define EVENTS_PER_READ 16

struct gpiod_backend {
    int epoll_fd;
    int timer_fd;                  /* software debounce windows; armed for the earliest end */
#if TC_GPIOD_API == 2
    struct gpiod_edge_event_buffer *events;
#endif
};

/* A line's backend data. */
struct gline {
    char chip_path[CHIP_PATH_MAX];
    unsigned int offset;
    int event_fd;                  /* inputs: in the epoll set; -1 for outputs */
    bool soft_debounce;            /* window in software (1.6, or 2.x when the kernel refused) */
    uint64_t window_end_ns;        /* CLOCK_MONOTONIC end of an open debounce window; 0 = none */
#if TC_GPIOD_API == 2
    struct gpiod_line_request *request;
#else
    struct gpiod_chip *chip;       /* 1.6: a line lives as long as its chip handle */
    struct gpiod_line *line;
#endif
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the two library versions behind a few helpers ---- */

#if TC_GPIOD_API == 2
static const char *chip_label(struct gpiod_chip *chip, char *buf, size_t len)
{
    struct gpiod_chip_info *info = gpiod_chip_get_info(chip);
    snprintf(buf, len, "%s", info ? gpiod_chip_info_get_label(info) : "");
    gpiod_chip_info_free(info);
    return buf;
}

static unsigned int chip_num_lines(struct gpiod_chip *chip)
{
    struct gpiod_chip_info *info = gpiod_chip_get_info(chip);
    unsigned int n = info ? (unsigned int)gpiod_chip_info_get_num_lines(info) : 0;
    gpiod_chip_info_free(info);
    return n;
}

/* The offset of the line named `name`, or -1 when the chip has none. */
static int chip_find_line(struct gpiod_chip *chip, const char *name)
{
    return gpiod_chip_get_line_offset_from_name(chip, name);
}

/* Who holds a busy line, for the message. */
static void line_consumer(struct gpiod_chip *chip, unsigned int offset, char *buf, size_t len)
{
    struct gpiod_line_info *info = gpiod_chip_get_line_info(chip, offset);
    const char *c = info && gpiod_line_info_is_used(info) ? gpiod_line_info_get_consumer(info) : NULL;
    snprintf(buf, len, "%s", c ? c : "");
    gpiod_line_info_free(info);
}
#else
static const char *chip_label(struct gpiod_chip *chip, char *buf, size_t len)
{
    const char *label = gpiod_chip_label(chip);
    snprintf(buf, len, "%s", label ? label : "");
    return buf;
}

static unsigned int chip_num_lines(struct gpiod_chip *chip)
{
    return gpiod_chip_num_lines(chip);
}

static int chip_find_line(struct gpiod_chip *chip, const char *name)
{
    struct gpiod_line *line = gpiod_chip_find_line(chip, name);
    return line ? (int)gpiod_line_offset(line) : -1;
}

static void line_consumer(struct gpiod_chip *chip, unsigned int offset, char *buf, size_t len)
{
    struct gpiod_line *line = gpiod_chip_get_line(chip, offset);
    const char *c = line && gpiod_line_is_used(line) ? gpiod_line_consumer(line) : NULL;
    snprintf(buf, len, "%s", c ? c : "");
}
#endif

/* ---- finding a line ---- */

static int chip_dirent_filter(const struct dirent *d)
{
    return strncmp(d->d_name, "gpiochip", 8) == 0;
}

/* The machine's chips, in number order: gpiochip2 before gpiochip10. */
static int list_chips(struct dirent ***names)
{
    int n = scandir(DEV_DIR, names, chip_dirent_filter, versionsort);
    return n < 0 ? -errno : n;
}

static void free_chip_list(struct dirent **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Opens the chip of `line` and finds its offset: "CHIP:OFFSET" or a line name. On failure, a problem
 * saying why has been reported. */
static int resolve_line(struct gpio *g, const struct gpio_line *line, struct gpiod_chip **chip_out,
                        struct gline *gl)
{
    char spec[CONFIG_LINE_NAME_MAX];
    snprintf(spec, sizeof(spec), "%s", line->name);
    char *colon = strrchr(spec, ':');
    const char *chip_spec = NULL;
    unsigned long offset = 0;
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
        *colon = '\0';
        chip_spec = spec;
        offset = strtoul(colon + 1, NULL, 10);
    }

    struct dirent **names;
    int n = list_chips(&names);
    if (n < 0) {
        gpio_report_problem(g, "gpio %s: cannot list " DEV_DIR ": %s", line->name, strerror(-n));
        return n;
    }
    if (n == 0) {
        free(names);
        gpio_report_problem(g, "gpio %s: no GPIO chip on this machine (no " DEV_DIR "/gpiochip*)", line->name);
        return -ENODEV;
    }

    /* A chip given by number ("0:17") means gpiochip0. */
    char by_number[CONFIG_LINE_NAME_MAX + 16] = "";
    if (chip_spec && strspn(chip_spec, "0123456789") == strlen(chip_spec) && *chip_spec)
        snprintf(by_number, sizeof(by_number), "gpiochip%s", chip_spec);

    /* A device name is unique and wins over labels. */
    int exact = -1;
    for (int i = 0; chip_spec && i < n && exact < 0; i++)
        if (strcmp(names[i]->d_name, chip_spec) == 0 || strcmp(names[i]->d_name, by_number) == 0)
            exact = i;

    struct gpiod_chip *found = NULL;
    char found_path[CHIP_PATH_MAX] = "";
    int found_offset = -1;
    int r = 0;
    int open_errno = 0;            /* a chip we could not look into, for the "not found" message */
    char open_failed[CHIP_PATH_MAX] = "";
    for (int i = 0; i < n && r == 0; i++) {
        char path[CHIP_PATH_MAX];
        snprintf(path, sizeof(path), DEV_DIR "/%s", names[i]->d_name);
        if (exact >= 0 && i != exact)
            continue;
        bool name_match = i == exact;
        struct gpiod_chip *chip = gpiod_chip_open(path);
        if (!chip) {
            if (name_match) {
                r = -errno;
                gpio_report_problem(g, "gpio %s: cannot open %s: %s", line->name, path, strerror(errno));
                break;
            }
            if (!open_errno) {
                open_errno = errno;
                snprintf(open_failed, sizeof(open_failed), "%s", path);
            }
            continue;
        }
        int this_offset = -1;
        if (chip_spec) {
            char label[128];
            if (name_match || strcmp(chip_label(chip, label, sizeof(label)), chip_spec) == 0)
                this_offset = (int)(offset > (unsigned long)INT32_MAX ? INT32_MAX : offset);
        } else {
            this_offset = chip_find_line(chip, line->name);
        }
        if (this_offset < 0) {
            gpiod_chip_close(chip);
            continue;
        }
        if (found) {
            /* Two chips answer: a label or line name used twice. Guessing could drive the wrong pin. */
            gpio_report_problem(g, "gpio %s: %s %s is on both %s and %s; name the line as CHIP:OFFSET with "
                                "the chip's device name", line->name, chip_spec ? "chip label" : "line name",
                                chip_spec ? chip_spec : line->name, found_path, path);
            gpiod_chip_close(chip);
            r = -ENOTUNIQ;
            break;
        }
        found = chip;
        found_offset = this_offset;
        snprintf(found_path, sizeof(found_path), "%s", path);
    }
    free_chip_list(names, n);
    if (r < 0) {
        if (found)
            gpiod_chip_close(found);
        return r;
    }
    if (!found) {
        char also[CHIP_PATH_MAX + 64] = "";
        if (open_errno)
            snprintf(also, sizeof(also), " (could not look into %s: %s)", open_failed, strerror(open_errno));
        if (chip_spec)
            gpio_report_problem(g, "gpio %s: no GPIO chip named or labelled %s%s", line->name, chip_spec, also);
        else
            gpio_report_problem(g, "gpio %s: no GPIO line named %s on any chip%s", line->name, line->name, also);
        return -ENODEV;
    }
    unsigned int num_lines = chip_num_lines(found);
    if ((unsigned int)found_offset >= num_lines) {
        gpio_report_problem(g, "gpio %s: %s has %u lines (0..%u); no line %d", line->name, found_path,
                            num_lines, num_lines ? num_lines - 1 : 0, found_offset);
        gpiod_chip_close(found);
        return -EINVAL;
    }
    *chip_out = found;
    gl->offset = (unsigned int)found_offset;
    snprintf(gl->chip_path, sizeof(gl->chip_path), "%s", found_path);
    return 0;
}

static void report_request_failure(struct gpio *g, const struct gpio_line *line, struct gpiod_chip *chip,
                                   const struct gline *gl, const char *what, int err)
{
    char consumer[64] = "";
    if (err == EBUSY)
        line_consumer(chip, gl->offset, consumer, sizeof(consumer));
    gpio_report_problem(g, "gpio %s: cannot request %s:%u as %s: %s%s%s%s", line->name, gl->chip_path,
                        gl->offset, what, strerror(err), *consumer ? " (held by \"" : "", consumer,
                        *consumer ? "\")" : "");
}

/* ---- requests ---- */

#if TC_GPIOD_API == 2
static struct gpiod_line_request *request_line(struct gpiod_chip *chip, unsigned int offset, bool output,
                                               bool initial_physical, int debounce_ms)
{
    struct gpiod_line_settings *settings = gpiod_line_settings_new();
    struct gpiod_line_config *line_cfg = gpiod_line_config_new();
    struct gpiod_request_config *req_cfg = gpiod_request_config_new();
    struct gpiod_line_request *request = NULL;
    if (!settings || !line_cfg || !req_cfg) {
        errno = ENOMEM;
        goto out;
    }
    if (output) {
        /* Direction and value in one request: the line never drives anything but initial_physical. */
        gpiod_line_settings_set_direction(settings, GPIOD_LINE_DIRECTION_OUTPUT);
        gpiod_line_settings_set_output_value(settings, initial_physical ? GPIOD_LINE_VALUE_ACTIVE
                                                                        : GPIOD_LINE_VALUE_INACTIVE);
    } else {
        gpiod_line_settings_set_direction(settings, GPIOD_LINE_DIRECTION_INPUT);
        gpiod_line_settings_set_edge_detection(settings, GPIOD_LINE_EDGE_BOTH);
        if (debounce_ms > 0)
            gpiod_line_settings_set_debounce_period_us(settings, (unsigned long)debounce_ms * 1000ul);
    }
    if (gpiod_line_config_add_line_settings(line_cfg, &offset, 1, settings) < 0)
        goto out;
    gpiod_request_config_set_consumer(req_cfg, CONSUMER);
    request = gpiod_chip_request_lines(chip, req_cfg, line_cfg);
out:;
    int saved = errno;
    gpiod_request_config_free(req_cfg);
    gpiod_line_config_free(line_cfg);
    gpiod_line_settings_free(settings);
    errno = saved;
    return request;
}

static int line_read(struct gline *gl)
{
    enum gpiod_line_value v = gpiod_line_request_get_value(gl->request, gl->offset);
    if (v == GPIOD_LINE_VALUE_ERROR)
        return -errno;
    return v == GPIOD_LINE_VALUE_ACTIVE;
}
#else
static int line_read(struct gline *gl)
{
    int v = gpiod_line_get_value(gl->line);
    return v < 0 ? -errno : v;
}
#endif

static struct gline *gline_new(void)
{
    struct gline *gl = calloc(1, sizeof(*gl));
    if (gl)
        gl->event_fd = -1;
    return gl;
}

/* Releases the line (the kernel keeps an output's level on most chips: callers make outputs safe first). */
static void gline_free(struct gline *gl)
{
    if (!gl)
        return;
#if TC_GPIOD_API == 2
    if (gl->request)
        gpiod_line_request_release(gl->request);
#else
    if (gl->line)
        gpiod_line_release(gl->line);
    if (gl->chip)
        gpiod_chip_close(gl->chip);
#endif
    free(gl);
}

static int gpiod_request_output(struct gpio *g, struct gpio_line *line, bool initial_physical)
{
    struct gline *gl = gline_new();
    if (!gl)
        return -ENOMEM;
    struct gpiod_chip *chip;
    int r = resolve_line(g, line, &chip, gl);
    if (r < 0) {
        free(gl);
        return r;
    }
#if TC_GPIOD_API == 2
    gl->request = request_line(chip, gl->offset, true, initial_physical, 0);
    if (!gl->request) {
        r = -errno;
        report_request_failure(g, line, chip, gl, "output", errno);
    }
    gpiod_chip_close(chip);   /* a request lives on without its chip */
#else
    gl->chip = chip;
    gl->line = gpiod_chip_get_line(chip, gl->offset);
    struct gpiod_line_request_config cfg = {
        .consumer = CONSUMER,
        .request_type = GPIOD_LINE_REQUEST_DIRECTION_OUTPUT,
        .flags = 0,            /* no GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW: gpio.c inverts */
    };
    /* default_val is applied by the same ioctl that makes the line an output: no glitch. */
    if (!gl->line || gpiod_line_request(gl->line, &cfg, initial_physical) < 0) {
        r = -errno;
        report_request_failure(g, line, chip, gl, "output", errno);
        gl->line = NULL;       /* not requested: nothing to release */
    }
#endif
    if (r < 0) {
        gline_free(gl);
        return r;
    }
    line->backend = gl;
    return 0;
}

static int watch_fd(struct gpio *g, int fd, void *ptr)
{
    struct gpiod_backend *be = g->backend;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
    return epoll_ctl(be->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int gpiod_request_input(struct gpio *g, struct gpio_line *line)
{
    struct gline *gl = gline_new();
    if (!gl)
        return -ENOMEM;
    struct gpiod_chip *chip;
    int r = resolve_line(g, line, &chip, gl);
    if (r < 0) {
        free(gl);
        return r;
    }
#if TC_GPIOD_API == 2
    gl->request = request_line(chip, gl->offset, false, false, line->debounce_ms);
    if (!gl->request && line->debounce_ms > 0 && errno != EBUSY) {
        /* Some kernels or chips refuse a debounce period: do it in software rather than not at all. */
        int err = errno;
        gl->request = request_line(chip, gl->offset, false, false, 0);
        if (gl->request) {
            gl->soft_debounce = true;
            gpio_report_problem(g, "gpio %s: the kernel refused a %d ms debounce (%s); debouncing in software",
                                line->name, line->debounce_ms, strerror(err));
        }
    }
    if (!gl->request) {
        r = -errno;
        report_request_failure(g, line, chip, gl, "input with edge events", errno);
    } else {
        gl->event_fd = gpiod_line_request_get_fd(gl->request);
    }
    gpiod_chip_close(chip);
#else
    gl->chip = chip;
    gl->line = gpiod_chip_get_line(chip, gl->offset);
    struct gpiod_line_request_config cfg = {
        .consumer = CONSUMER,
        .request_type = GPIOD_LINE_REQUEST_EVENT_BOTH_EDGES,
        .flags = 0,
    };
    if (!gl->line || gpiod_line_request(gl->line, &cfg, 0) < 0) {
        r = -errno;
        report_request_failure(g, line, chip, gl, "input with edge events", errno);
        gl->line = NULL;
    } else {
        gl->event_fd = gpiod_line_event_get_fd(gl->line);
        gl->soft_debounce = line->debounce_ms > 0;   /* 1.6 has no debounce setting */
    }
#endif
    if (r == 0 && gl->event_fd < 0) {
        r = -EBADF;
        gpio_report_problem(g, "gpio %s: no event descriptor for %s:%u", line->name, gl->chip_path, gl->offset);
    }
    if (r == 0) {
        /* Edges only tell changes: the level now is the starting point (a door already open). */
        int v = line_read(gl);
        if (v < 0) {
            r = v;
            gpio_report_problem(g, "gpio %s: cannot read %s:%u: %s", line->name, gl->chip_path, gl->offset,
                                strerror(-v));
        } else {
            line->value = (v != 0) != line->active_low;
        }
    }
    if (r == 0 && (r = watch_fd(g, gl->event_fd, line)) < 0)
        gpio_report_problem(g, "gpio %s: cannot watch its events: %s", line->name, strerror(-r));
    if (r < 0) {
        gline_free(gl);
        return r;
    }
    line->backend = gl;
    return 0;
}

static int gpiod_set_physical(struct gpio *g, struct gpio_line *line, bool physical)
{
    struct gline *gl = line->backend;
#if TC_GPIOD_API == 2
    int r = gpiod_line_request_set_value(gl->request, gl->offset,
                                         physical ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE);
#else
    int r = gpiod_line_set_value(gl->line, physical);
#endif
    return r < 0 ? -errno : 0;
}

/* ---- events and debounce ---- */

static int gpiod_fd(struct gpio *g)
{
    struct gpiod_backend *be = g->backend;
    return be->epoll_fd;
}

/* The timerfd follows the earliest open window (or is disarmed). */
static int timer_follow(struct gpio *g)
{
    struct gpiod_backend *be = g->backend;
    uint64_t next = 0;
    for (struct gpio_line *line = g->lines; line; line = line->next) {
        struct gline *gl = line->backend;
        if (gl && gl->window_end_ns && (!next || gl->window_end_ns < next))
            next = gl->window_end_ns;
    }
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(next / 1000000000ull), .tv_nsec = (long)(next % 1000000000ull)},
    };
    return timerfd_settime(be->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ? -errno : 0;
}

static void line_edge(struct gpio *g, struct gpio_line *line, bool rising)
{
    struct gline *gl = line->backend;
    if (!gl->soft_debounce) {
        gpio_report_input(line, rising);
        return;
    }
    /* The first edge opens the window; later edges inside it are bounce, settled by the read at its end.
     * An edge after the end opens a new one, so the last level is always read eventually. */
    if (!gl->window_end_ns)
        gl->window_end_ns = mono_ns() + (uint64_t)line->debounce_ms * 1000000ull;
}

/* Stops listening to a line whose events cannot be read (chip gone): reading again would fail in a busy
 * loop. The other lines go on. */
static void line_disable(struct gpio *g, struct gpio_line *line, int err)
{
    struct gpiod_backend *be = g->backend;
    struct gline *gl = line->backend;
    epoll_ctl(be->epoll_fd, EPOLL_CTL_DEL, gl->event_fd, NULL);
    gl->window_end_ns = 0;
    gpio_report_problem(g, "gpio %s: reading its events failed: %s; input disabled", line->name, strerror(err));
}

static void line_read_events(struct gpio *g, struct gpio_line *line)
{
    struct gline *gl = line->backend;
#if TC_GPIOD_API == 2
    struct gpiod_backend *be = g->backend;
    int n = gpiod_line_request_read_edge_events(gl->request, be->events, EVENTS_PER_READ);
    if (n < 0) {
        line_disable(g, line, errno);
        return;
    }
    for (int i = 0; i < n; i++) {
        struct gpiod_edge_event *ev = gpiod_edge_event_buffer_get_event(be->events, (unsigned long)i);
        line_edge(g, line, gpiod_edge_event_get_event_type(ev) == GPIOD_EDGE_EVENT_RISING_EDGE);
    }
#else
    struct gpiod_line_event events[EVENTS_PER_READ];
    int n = gpiod_line_event_read_multiple(gl->line, events, EVENTS_PER_READ);
    if (n < 0) {
        line_disable(g, line, errno);
        return;
    }
    for (int i = 0; i < n; i++)
        line_edge(g, line, events[i].event_type == GPIOD_LINE_EVENT_RISING_EDGE);
#endif
}

static void windows_expired(struct gpio *g)
{
    struct gpiod_backend *be = g->backend;
    uint64_t expirations;
    if (read(be->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        gpio_report_problem(g, "gpio: reading the debounce timer failed: %s", strerror(errno));
    uint64_t now = mono_ns();
    for (struct gpio_line *line = g->lines; line; line = line->next) {
        struct gline *gl = line->backend;
        if (line->is_output || !gl || !gl->window_end_ns || gl->window_end_ns > now)
            continue;
        gl->window_end_ns = 0;
        int v = line_read(gl);
        if (v < 0)
            gpio_report_problem(g, "gpio %s: cannot read %s:%u: %s", line->name, gl->chip_path, gl->offset,
                                strerror(-v));
        else
            gpio_report_input(line, v != 0);   /* reported only if it changed */
    }
}

static int gpiod_dispatch(struct gpio *g)
{
    struct gpiod_backend *be = g->backend;
    struct epoll_event ready[8];
    int n = epoll_wait(be->epoll_fd, ready, 8, 0);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        if (ready[i].data.ptr)
            line_read_events(g, ready[i].data.ptr);
        else
            windows_expired(g);
    }
    return timer_follow(g);
}

/* ---- open and close ---- */

static int gpiod_open(struct gpio *g, const char *fifo)
{
    struct dirent **names;
    int n = list_chips(&names);
    if (n < 0)
        return n;
    free_chip_list(names, n);
    if (n == 0)
        return -ENODEV;     /* no /dev/gpiochip*: this machine has no GPIO the kernel exposes */

    struct gpiod_backend *be = calloc(1, sizeof(*be));
    if (!be)
        return -ENOMEM;
    be->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    be->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int r = 0;
    if (be->epoll_fd < 0 || be->timer_fd < 0)
        r = -errno;
#if TC_GPIOD_API == 2
    if (r == 0 && !(be->events = gpiod_edge_event_buffer_new(EVENTS_PER_READ)))
        r = -errno;
#endif
    g->backend = be;
    if (r == 0)
        r = watch_fd(g, be->timer_fd, NULL);
    if (r < 0) {
#if TC_GPIOD_API == 2
        gpiod_edge_event_buffer_free(be->events);
#endif
        if (be->timer_fd >= 0)
            close(be->timer_fd);
        if (be->epoll_fd >= 0)
            close(be->epoll_fd);
        free(be);
        g->backend = NULL;
        return r;
    }
    return 0;
}

static void gpiod_close(struct gpio *g)
{
    struct gpiod_backend *be = g->backend;
    for (struct gpio_line *line = g->lines; line; line = line->next) {
        gline_free(line->backend);
        line->backend = NULL;
    }
    if (!be)
        return;
#if TC_GPIOD_API == 2
    gpiod_edge_event_buffer_free(be->events);
#endif
    close(be->timer_fd);
    close(be->epoll_fd);
    free(be);
    g->backend = NULL;
}

const struct gpio_backend_ops gpio_gpiod_ops = {
    .name = "gpiod",
    .open = gpiod_open,
    .request_output = gpiod_request_output,
    .request_input = gpiod_request_input,
    .set_physical = gpiod_set_physical,
    .fd = gpiod_fd,
    .dispatch = gpiod_dispatch,
    .close = gpiod_close,
};
