/* The epoll loop: timers, fds and signals really fire, on time, and removal inside callbacks is safe.
 * Every test has a watchdog timer that ends the loop with a failure code instead of hanging. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "loop.h"

#define WATCHDOG_MS 5000
#define WATCHDOG_CODE (-1000)

static void watchdog_fired(struct loop_timer *t, void *userdata)
{
    loop_quit(userdata, WATCHDOG_CODE);
}

static struct loop *new_loop_with_watchdog(void)
{
    struct loop *l;
    assert_int_equal(loop_new(&l), 0);
    struct loop_timer *watchdog;
    assert_int_equal(loop_timer_new(l, watchdog_fired, l, &watchdog), 0);
    assert_int_equal(loop_timer_arm_in(watchdog, WATCHDOG_MS), 0);
    return l;
}

struct timer_probe {
    struct loop *loop;
    uint64_t fired_at;
    int fired;
    int quit_code;
};

static void probe_fired(struct loop_timer *t, void *userdata)
{
    struct timer_probe *p = userdata;
    p->fired_at = clock_mono_ms();
    p->fired++;
    if (p->quit_code)
        loop_quit(p->loop, p->quit_code);
}

static void test_timer_fires_at_its_time(void **state)
{
    struct loop *l = new_loop_with_watchdog();
    struct timer_probe probe = {.loop = l, .quit_code = 7};
    struct loop_timer *t;
    assert_int_equal(loop_timer_new(l, probe_fired, &probe, &t), 0);

    uint64_t due = clock_mono_ms() + 80;
    assert_int_equal(loop_timer_arm(t, due), 0);
    assert_int_equal(loop_run(l), 7);
    assert_int_equal(probe.fired, 1);
    assert_true(probe.fired_at >= due);
    assert_true(probe.fired_at < due + 1000);
    loop_free(l);
}

static void test_timer_arm_in_and_disarm(void **state)
{
    struct loop *l = new_loop_with_watchdog();
    struct timer_probe disarmed = {.loop = l};
    struct timer_probe later = {.loop = l, .quit_code = 3};
    struct loop_timer *t1, *t2;
    assert_int_equal(loop_timer_new(l, probe_fired, &disarmed, &t1), 0);
    assert_int_equal(loop_timer_new(l, probe_fired, &later, &t2), 0);

    uint64_t start = clock_mono_ms();
    assert_int_equal(loop_timer_arm_in(t1, 10), 0);
    assert_int_equal(loop_timer_arm(t1, 0), 0);
    assert_int_equal(loop_timer_arm_in(t2, 60), 0);
    assert_int_equal(loop_run(l), 3);
    assert_int_equal(disarmed.fired, 0);
    assert_int_equal(later.fired, 1);
    assert_true(later.fired_at >= start + 60);

    /* A time already past fires at once, and the loop can run again after a quit. */
    later.quit_code = 4;
    assert_int_equal(loop_timer_arm(t2, clock_mono_ms() - 50), 0);
    assert_int_equal(loop_run(l), 4);
    assert_int_equal(later.fired, 2);
    loop_free(l);
}

struct pipe_probe {
    struct loop *loop;
    int read_fds[2];
    int calls;
    char got;
};

static void pipe_readable(int fd, uint32_t events, void *userdata)
{
    struct pipe_probe *p = userdata;
    p->calls++;
    assert_true(events & EPOLLIN);
    assert_int_equal(read(fd, &p->got, 1), 1);
    loop_quit(p->loop, 11);
}

static void test_pipe_fd_callback(void **state)
{
    struct loop *l = new_loop_with_watchdog();
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct pipe_probe probe = {.loop = l};
    assert_int_equal(loop_add_fd(l, fds[0], EPOLLIN, pipe_readable, &probe), 0);
    assert_int_equal(loop_add_fd(l, fds[0], EPOLLIN, pipe_readable, &probe), -EEXIST);
    assert_int_equal(write(fds[1], "x", 1), 1);

    assert_int_equal(loop_run(l), 11);
    assert_int_equal(probe.calls, 1);
    assert_int_equal(probe.got, 'x');

    assert_int_equal(loop_remove_fd(l, fds[0]), 0);
    assert_int_equal(loop_remove_fd(l, fds[0]), -ENOENT);
    assert_int_equal(loop_remove_fd(l, 12345), -ENOENT);
    loop_free(l);
    close(fds[0]);
    close(fds[1]);
}

static void remove_both(int fd, uint32_t events, void *userdata)
{
    struct pipe_probe *p = userdata;
    p->calls++;
    assert_int_equal(loop_remove_fd(p->loop, p->read_fds[0]), 0);
    assert_int_equal(loop_remove_fd(p->loop, p->read_fds[1]), 0);
}

static void quit_later(struct loop_timer *t, void *userdata)
{
    loop_quit(userdata, 12);
    loop_timer_free(t);     /* freeing a timer from its own callback is allowed */
}

/* Two fds ready in the same epoll batch: the first callback removes both, the second must not run. */
static void test_remove_inside_callback(void **state)
{
    struct loop *l = new_loop_with_watchdog();
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    struct pipe_probe probe = {.loop = l, .read_fds = {a[0], b[0]}};
    assert_int_equal(loop_add_fd(l, a[0], EPOLLIN, remove_both, &probe), 0);
    assert_int_equal(loop_add_fd(l, b[0], EPOLLIN, remove_both, &probe), 0);
    assert_int_equal(write(a[1], "a", 1), 1);
    assert_int_equal(write(b[1], "b", 1), 1);

    /* The pipes stay readable: any leftover registration would call back again before the timer. */
    struct loop_timer *t;
    assert_int_equal(loop_timer_new(l, quit_later, l, &t), 0);
    assert_int_equal(loop_timer_arm_in(t, 100), 0);
    assert_int_equal(loop_run(l), 12);
    assert_int_equal(probe.calls, 1);
    loop_free(l);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
}

struct signal_probe {
    struct loop *loop;
    int signo;
    int calls;
};

static void signal_received(int signo, void *userdata)
{
    struct signal_probe *p = userdata;
    p->signo = signo;
    p->calls++;
    loop_quit(p->loop, 5);
}

static void test_signal_via_signalfd(void **state)
{
    struct loop *l = new_loop_with_watchdog();
    struct signal_probe probe = {.loop = l};
    assert_int_equal(loop_add_signal(l, SIGUSR1, signal_received, &probe), 0);
    assert_int_equal(loop_add_signal(l, SIGUSR2, signal_received, &probe), 0);
    assert_int_equal(loop_add_signal(l, 0, signal_received, &probe), -EINVAL);

    /* Blocked, so raise() leaves it pending for the signalfd instead of killing the process. */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(loop_run(l), 5);
    assert_int_equal(probe.calls, 1);
    assert_int_equal(probe.signo, SIGUSR1);

    assert_int_equal(raise(SIGUSR2), 0);
    assert_int_equal(loop_run(l), 5);
    assert_int_equal(probe.calls, 2);
    assert_int_equal(probe.signo, SIGUSR2);
    loop_free(l);
}

static void test_quit_code_and_free_null(void **state)
{
    struct loop *l = new_loop_with_watchdog();
    loop_quit(l, -42);
    assert_int_equal(loop_run(l), -42);
    loop_free(l);
    assert_null(loop_free(NULL));
    assert_null(loop_timer_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_fires_at_its_time),
        cmocka_unit_test(test_timer_arm_in_and_disarm),
        cmocka_unit_test(test_pipe_fd_callback),
        cmocka_unit_test(test_remove_inside_callback),
        cmocka_unit_test(test_signal_via_signalfd),
        cmocka_unit_test(test_quit_code_and_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
