/* The bounded-pulse guard of the generic GPIO layer (gpio_set_bounded), on the sim backend: a pulse ends
 * by itself with nobody calling into the layer, never before its deadline; turning the line off cancels
 * the guard; re-arming moves the deadline; several lines keep their own deadlines; gpio_close() with a
 * pulse pending turns it off and joins the thread cleanly; the guard thread never takes the daemon's
 * signals. Waits are on the line's state with a generous bound, never a sleep. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpio.h"

#define WAIT_BOUND_MS 5000   /* a failing guard, not a slow machine, is what exceeds this */

struct fixture {
    char dir[64];
    char fifo[128];
    struct gpio *g;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/test_gpio_guard.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->fifo, sizeof(f->fifo), "%s/in.fifo", f->dir);
    assert_int_equal(gpio_open(GPIO_DRIVER_SIM, f->fifo, NULL, NULL, &f->g), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    f->g = gpio_close(f->g);
    unlink(f->fifo);
    rmdir(f->dir);
    free(f);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Polls the line every millisecond until it is off; the time it was first seen off, or 0 if it stayed on
 * for WAIT_BOUND_MS. */
static uint64_t wait_off(struct gpio_line *line)
{
    uint64_t give_up = now_ms() + WAIT_BOUND_MS;
    while (gpio_get(line)) {
        if (now_ms() > give_up)
            return 0;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return now_ms();
}

static struct gpio_line *output(struct gpio *g, const char *name, bool active_low)
{
    struct gpio_line *line;
    assert_int_equal(gpio_request_output(g, name, active_low, false, &line), 0);
    return line;
}

static void test_pulse_ends_by_itself(void **state)
{
    struct fixture *f = *state;
    struct gpio_line *relay = output(f->g, "relay", false);
    uint64_t start = now_ms();
    assert_int_equal(gpio_set_bounded(relay, 50), 0);
    assert_true(gpio_get(relay));
    uint64_t off = wait_off(relay);
    assert_true(off != 0);
    assert_true(off - start >= 50);     /* never cut short */
}

static void test_off_cancels_the_guard(void **state)
{
    struct fixture *f = *state;
    struct gpio_line *relay = output(f->g, "relay", false);
    struct gpio_line *witness = output(f->g, "witness", false);
    assert_int_equal(gpio_set_bounded(relay, 100), 0);
    assert_int_equal(gpio_set(relay, false), 0);
    /* On again without a bound: a guard that survived the off would cut it at 100 ms. */
    assert_int_equal(gpio_set(relay, true), 0);
    assert_int_equal(gpio_set_bounded(witness, 200), 0);
    assert_true(wait_off(witness) != 0);
    assert_true(gpio_get(relay));
    assert_int_equal(gpio_set(relay, false), 0);
}

static void test_set_on_keeps_a_pending_bound(void **state)
{
    struct fixture *f = *state;
    struct gpio_line *relay = output(f->g, "relay", false);
    assert_int_equal(gpio_set_bounded(relay, 50), 0);
    assert_int_equal(gpio_set(relay, true), 0);    /* only turning it off removes the bound */
    assert_true(wait_off(relay) != 0);
}

static void test_rearm_moves_the_deadline(void **state)
{
    struct fixture *f = *state;
    struct gpio_line *relay = output(f->g, "relay", false);
    struct gpio_line *witness = output(f->g, "witness", false);
    assert_int_equal(gpio_set_bounded(relay, 150), 0);
    uint64_t rearmed = now_ms();
    assert_int_equal(gpio_set_bounded(relay, 600), 0);
    assert_int_equal(gpio_set_bounded(witness, 300), 0);
    /* The witness ends after the first deadline (150) and before the new one (600). */
    assert_true(wait_off(witness) != 0);
    assert_true(gpio_get(relay));
    uint64_t off = wait_off(relay);
    assert_true(off != 0);
    assert_true(off - rearmed >= 600);
}

static void test_several_lines(void **state)
{
    struct fixture *f = *state;
    struct gpio_line *a = output(f->g, "a", false);
    struct gpio_line *b = output(f->g, "b", true);   /* active-low: the bound is on the logical level */
    struct gpio_line *c = output(f->g, "c", false);
    uint64_t start = now_ms();
    assert_int_equal(gpio_set_bounded(c, 120), 0);
    assert_int_equal(gpio_set_bounded(a, 40), 0);
    assert_int_equal(gpio_set_bounded(b, 80), 0);
    uint64_t off_a = wait_off(a);
    assert_true(off_a != 0 && off_a - start >= 40);
    uint64_t off_b = wait_off(b);
    assert_true(off_b != 0 && off_b - start >= 80);
    uint64_t off_c = wait_off(c);
    assert_true(off_c != 0 && off_c - start >= 120);
}

static void test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    struct gpio_line *relay = output(f->g, "relay", false);
    struct gpio_line *contact;
    assert_int_equal(gpio_request_input(f->g, "contact", false, 20, &contact), 0);
    assert_int_equal(gpio_set_bounded(relay, 0), -EINVAL);
    assert_int_equal(gpio_set_bounded(relay, -5), -EINVAL);
    assert_int_equal(gpio_set_bounded(contact, 100), -EINVAL);
    assert_false(gpio_get(relay));
}

/* The sim backend prints every output change on stderr: capture it to see the physical levels. */
static void capture_stderr(const char *path, int *saved)
{
    fflush(stderr);
    *saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(*saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

static void restore_stderr(int saved)
{
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    size_t n = fread(buf, 1, len - 1, in);
    buf[n] = '\0';
    fclose(in);
}

static void test_close_with_a_pulse_pending(void **state)
{
    struct fixture *f = *state;
    char log[160];
    snprintf(log, sizeof(log), "%s/stderr.log", f->dir);
    struct gpio_line *relay = output(f->g, "relay", true);   /* physical 0 = energised */
    struct gpio_line *led = output(f->g, "led", false);
    int saved;
    capture_stderr(log, &saved);
    int r1 = gpio_set_bounded(relay, 60000);
    int r2 = gpio_set(led, true);   /* unbounded: the caller's to make safe, left as it is */
    f->g = gpio_close(f->g);        /* must neither wait a minute nor leave the relay energised */
    restore_stderr(saved);
    assert_int_equal(r1, 0);
    assert_int_equal(r2, 0);
    char text[512];
    read_file(log, text, sizeof(text));
    unlink(log);
    const char *on = strstr(text, "gpio relay=0");
    assert_non_null(on);
    assert_non_null(strstr(on, "gpio relay=1"));
    assert_null(strstr(text, "gpio led=0"));
}

static void test_guard_ends_pulse_printed_physical(void **state)
{
    struct fixture *f = *state;
    char log[160];
    snprintf(log, sizeof(log), "%s/stderr.log", f->dir);
    struct gpio_line *relay = output(f->g, "relay", true);
    int saved;
    capture_stderr(log, &saved);
    int r = gpio_set_bounded(relay, 30);
    uint64_t off = wait_off(relay);
    restore_stderr(saved);
    assert_int_equal(r, 0);
    assert_true(off != 0);
    char text[512];
    read_file(log, text, sizeof(text));
    unlink(log);
    const char *on = strstr(text, "gpio relay=0");
    assert_non_null(on);
    assert_non_null(strstr(on, "gpio relay=1"));
}

/* The daemon blocks its signals for signalfd only after opening the GPIO layer: the guard thread, which
 * exists by then, must not be a thread the kernel can hand SIGTERM to (its default action would kill the
 * process with the relay in whatever state). Read from the kernel: the other thread's blocked set. */
static void test_guard_thread_takes_no_signals(void **state)
{
    struct fixture *f = *state;
    f->g = gpio_close(f->g);
    sigset_t none, old;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, &old);   /* as the daemon is when it opens the GPIO layer */
    int r = gpio_open(GPIO_DRIVER_SIM, f->fifo, NULL, NULL, &f->g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(r, 0);
    /* A new thread starts with everything blocked and sets its own mask once running: let it work once. */
    struct gpio_line *relay = output(f->g, "relay", false);
    assert_int_equal(gpio_set_bounded(relay, 1), 0);
    assert_true(wait_off(relay) != 0);

    /* The guard is found by its name: a sanitizer may run threads of its own. */
    DIR *tasks = opendir("/proc/self/task");
    assert_non_null(tasks);
    int guards = 0;
    unsigned long long blocked = 0;
    struct dirent *d;
    while ((d = readdir(tasks))) {
        if (d->d_name[0] == '.')
            continue;
        char path[300], line[256] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", d->d_name);
        FILE *in = fopen(path, "r");
        if (!in)
            continue;   /* a thread that just ended */
        bool is_guard = fgets(line, sizeof(line), in) && strcmp(line, GPIO_GUARD_THREAD_NAME "\n") == 0;
        fclose(in);
        if (!is_guard)
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", d->d_name);
        in = fopen(path, "r");
        assert_non_null(in);
        while (fgets(line, sizeof(line), in))
            sscanf(line, "SigBlk: %llx", &blocked);
        fclose(in);
        guards++;
    }
    closedir(tasks);
    assert_int_equal(guards, 1);   /* one guard thread per struct gpio */
    const int daemon_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD};
    for (size_t i = 0; i < sizeof(daemon_signals) / sizeof(daemon_signals[0]); i++)
        assert_true(blocked & (1ull << (daemon_signals[i] - 1)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pulse_ends_by_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off_cancels_the_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_on_keeps_a_pending_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rearm_moves_the_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_a_pulse_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guard_ends_pulse_printed_physical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guard_thread_takes_no_signals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
