/* notify.c against a real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"

struct fixture {
    char dir[64];
    char path[96];
    int fd;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/tc-notify.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/notify", f->dir);
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setenv("NOTIFY_SOCKET", f->path, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    close(f->fd);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void expect_datagram(struct fixture *f, const char *want)
{
    char buf[1024];
    ssize_t n = recv(f->fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void sends_each_state(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(notify_ready("serving: 1 door"), 0);
    expect_datagram(f, "READY=1\nSTATUS=serving: 1 door");
    assert_int_equal(notify_status("reader %s lost", "front"), 0);
    expect_datagram(f, "STATUS=reader front lost");
    assert_int_equal(notify_watchdog(), 0);
    expect_datagram(f, "WATCHDOG=1");
    assert_int_equal(notify_reloading(NULL), 0);
    expect_datagram(f, "RELOADING=1");
    assert_int_equal(notify_stopping("stopping"), 0);
    expect_datagram(f, "STOPPING=1\nSTATUS=stopping");
}

static void no_socket_is_a_no_op(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_ready("x"), 0);
    assert_int_equal(notify_watchdog(), 0);
    assert_int_equal(notify_watchdog_interval_ms(), 0);
}

static void watchdog_interval_for_this_pid_only(void **state)
{
    char pid[32];
    setenv("WATCHDOG_USEC", "30000000", 1);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_watchdog_interval_ms(), 30000);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_watchdog_interval_ms(), 0);   /* meant for another process */
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(notify_watchdog_interval_ms(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sends_each_state, setup, teardown),
        cmocka_unit_test_setup_teardown(no_socket_is_a_no_op, setup, teardown),
        cmocka_unit_test_setup_teardown(watchdog_interval_for_this_pid_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
