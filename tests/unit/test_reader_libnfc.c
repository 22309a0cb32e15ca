/* The libnfc reader backend without a reader: the device path of a connstring, the device lock and who
 * holds it, a missing device reported offline once (and nothing more while it stays missing), a locked
 * one reported "in use by another process (PID n)", and the watchdog taking back a worker wedged inside
 * a libnfc call. The wedge is injected by defining nfc_open here: the backend, linked statically into
 * this program, calls this one instead of libnfc's. The reader with a real libnfc on an emulated PN532
 * is tests/integration/reader_pn532.sh. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "reader.h"

#ifdef TC_HAVE_LIBNFC
#include <dlfcn.h>
#include <nfc/nfc.h>

#include "reader_libnfc.h"

/* Set before a reader is opened; the worker inherits it with the rest of memory at fork(). */
static bool wedge_nfc_open;

nfc_device *nfc_open(nfc_context *context, const nfc_connstring connstring)
{
    if (wedge_nfc_open) {
        for (;;)
            pause();    /* a read that never returns */
    }
    nfc_device *(*real)(nfc_context *, const char *) =
        (nfc_device * (*)(nfc_context *, const char *)) dlsym(RTLD_NEXT, "nfc_open");
    return real ? real(context, connstring) : NULL;
}

struct seen {
    int offline;
    int online;
    int taps;
    char detail[256];
};

static void on_tap(struct reader *r, const char *uid, void *userdata)
{
    struct seen *s = userdata;
    s->taps++;
}

static void on_health(struct reader *r, enum reader_health health, const char *detail, void *userdata)
{
    struct seen *s = userdata;
    if (health == READER_OFFLINE)
        s->offline++;
    else
        s->online++;
    snprintf(s->detail, sizeof(s->detail), "%s", detail ? detail : "");
}

static struct reader *open_reader(const char *connstring, struct seen *s)
{
    struct reader_config cfg = {
        .name = "test",
        .driver = READER_DRIVER_LIBNFC,
        .door = "front",
        .poll_ms = 50,
    };
    snprintf(cfg.connstring, sizeof(cfg.connstring), "%s", connstring);
    struct reader *r = NULL;
    assert_int_equal(reader_open(&cfg, on_tap, s, &r), 0);
    reader_set_health_cb(r, on_health);
    return r;
}

/* Runs the reader as the daemon's loop would, for ms milliseconds or until *offline reaches want. */
static void run_reader(struct reader *r, struct seen *s, int want_offline, unsigned ms)
{
    uint64_t deadline = clock_mono_ms() + ms;
    for (;;) {
        uint64_t now = clock_mono_ms();
        if (now >= deadline || (want_offline && s->offline >= want_offline))
            return;
        struct pollfd p = {.fd = reader_fd(r), .events = POLLIN};
        int n = poll(&p, 1, (int)(deadline - now));
        assert_true(n >= 0 || errno == EINTR);
        if (n > 0)
            assert_int_equal(reader_dispatch(r), 0);
    }
}

static void test_device_path(void **state)
{
    char path[64];
    assert_int_equal(reader_libnfc_device_path("pn532_uart:/dev/ttyS0", path, sizeof(path)), 0);
    assert_string_equal(path, "/dev/ttyS0");
    assert_int_equal(reader_libnfc_device_path("pn532_uart:/dev/ttyUSB0:115200", path, sizeof(path)), 0);
    assert_string_equal(path, "/dev/ttyUSB0");
    assert_int_equal(reader_libnfc_device_path("pn532_spi:/dev/spidev0.0:500000", path, sizeof(path)), 0);
    assert_string_equal(path, "/dev/spidev0.0");
    assert_int_equal(reader_libnfc_device_path("pn532_i2c:/dev/i2c-1", path, sizeof(path)), 0);
    assert_string_equal(path, "/dev/i2c-1");
    assert_int_equal(reader_libnfc_device_path("pn532_uart:/tmp/rig/reader", path, sizeof(path)), 0);
    assert_string_equal(path, "/tmp/rig/reader");
    assert_int_equal(reader_libnfc_device_path("acr122_usb", path, sizeof(path)), 0);
    assert_string_equal(path, "");
    assert_int_equal(reader_libnfc_device_path("acr122_usb:001:004", path, sizeof(path)), 0);
    assert_string_equal(path, "");
    char tiny[8];
    assert_int_equal(reader_libnfc_device_path("pn532_uart:/dev/ttyUSB0", tiny, sizeof(tiny)), -ENAMETOOLONG);
}

static void make_device_file(char *path, size_t len)
{
    snprintf(path, len, "/tmp/test_reader_libnfc.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

static void test_lock(void **state)
{
    char path[64], link[80];
    make_device_file(path, sizeof(path));
    snprintf(link, sizeof(link), "%s.link", path);
    assert_int_equal(symlink(path, link), 0);

    pid_t holder = -1;
    int fd = reader_libnfc_lock_device(path, &holder);
    assert_true(fd >= 0);
    /* Through the symlink it is the same device, so the same lock. */
    assert_int_equal(reader_libnfc_lock_device(link, &holder), -EBUSY);
    assert_int_equal(holder, getpid());
    close(fd);
    fd = reader_libnfc_lock_device(link, &holder);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(reader_libnfc_lock_device("/nonexistent/ttyUSB9", &holder), -ENOENT);
    unlink(link);
    unlink(path);
}

/* Unplugged at start: one OFFLINE, then silence while retries fail (no flood), and a clean close. */
static void test_missing_device_reported_once(void **state)
{
    struct seen s = {0};
    struct reader *r = open_reader("pn532_uart:/nonexistent/ttyUSB9", &s);
    run_reader(r, &s, 1, 3000);
    assert_int_equal(s.offline, 1);
    assert_non_null(strstr(s.detail, "no device at /nonexistent/ttyUSB9"));
    run_reader(r, &s, 0, 1500);
    assert_int_equal(s.offline, 1);
    assert_int_equal(s.online, 0);
    assert_int_equal(s.taps, 0);
    uint64_t t0 = clock_mono_ms();
    reader_close(r);
    assert_true(clock_mono_ms() - t0 < 1000);   /* the worker stops between retries at once */
}

static void test_locked_device(void **state)
{
    char path[64];
    make_device_file(path, sizeof(path));
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);

    struct seen s = {0};
    char connstring[96], want[96];
    snprintf(connstring, sizeof(connstring), "pn532_uart:%s", path);
    struct reader *r = open_reader(connstring, &s);
    run_reader(r, &s, 1, 3000);
    assert_int_equal(s.offline, 1);
    snprintf(want, sizeof(want), "in use by another process (PID %d)", (int)getpid());
    assert_non_null(strstr(s.detail, want));
    reader_close(r);
    close(fd);
    unlink(path);
}

/* A worker stuck in a libnfc call is killed and replaced; the loop never waits for it. */
static void test_watchdog(void **state)
{
    char path[64];
    make_device_file(path, sizeof(path));
    char connstring[96];
    snprintf(connstring, sizeof(connstring), "pn532_uart:%s", path);

    wedge_nfc_open = true;
    struct seen s = {0};
    struct reader *r = open_reader(connstring, &s);
    uint64_t t0 = clock_mono_ms();
    run_reader(r, &s, 1, 8000);
    wedge_nfc_open = false;
    uint64_t took = clock_mono_ms() - t0;
    assert_int_equal(s.offline, 1);
    assert_non_null(strstr(s.detail, "stuck in nfc_open"));
    assert_true(took >= 3000);
    /* The replacement wedges too (it forked with the flag set): reported once, not again. */
    run_reader(r, &s, 0, 5000);
    assert_int_equal(s.offline, 1);
    uint64_t c0 = clock_mono_ms();
    reader_close(r);   /* a wedged worker cannot stop itself: killed after the grace period */
    assert_true(clock_mono_ms() - c0 < 3000);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_path),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_missing_device_reported_once),
        cmocka_unit_test(test_locked_device),
        cmocka_unit_test(test_watchdog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else

static void test_without_libnfc(void **state)
{
    struct reader_config cfg = {.name = "test", .driver = READER_DRIVER_LIBNFC, .poll_ms = 100};
    struct reader *r = NULL;
    assert_int_equal(reader_open(&cfg, NULL, NULL, &r), -ENOTSUP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_libnfc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
