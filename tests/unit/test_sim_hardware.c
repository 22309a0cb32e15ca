/* The simulated hardware through the generic gpio and reader layers: FIFO creation, line splitting,
 * partial lines, active-low mapping, and malformed input reported instead of acted on. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpio.h"
#include "reader.h"

struct fixture {
    char dir[64];
    char fifo[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/test_sim_hw.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->fifo, sizeof(f->fifo), "%s/in.fifo", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->fifo);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The FIFO has a reader (the module under test), so a non-blocking writer opens at once. */
static void write_fifo(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static bool fd_ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* ---- gpio ---- */

struct gpio_events {
    char inputs[256];
    int problems;
    char last_problem[256];
};

static void on_input(struct gpio_line *line, bool value, void *userdata)
{
    struct gpio_events *ev = userdata;
    size_t len = strlen(ev->inputs);
    snprintf(ev->inputs + len, sizeof(ev->inputs) - len, "%s%s=%d", len ? " " : "", gpio_line_name(line),
             value);
    assert_ptr_equal(gpio_line_userdata(line), ev);
}

static void on_gpio_problem(const char *message, void *userdata)
{
    struct gpio_events *ev = userdata;
    ev->problems++;
    snprintf(ev->last_problem, sizeof(ev->last_problem), "%s", message);
}

static void test_gpio_sim_inputs_and_outputs(void **state)
{
    struct fixture *f = *state;
    struct gpio_events ev = {0};
    struct gpio *g;
    assert_int_equal(gpio_open(GPIO_DRIVER_SIM, f->fifo, on_input, &ev, &g), 0);
    gpio_set_problem_cb(g, on_gpio_problem);

    struct stat st;
    assert_int_equal(stat(f->fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 0077, 0);

    struct gpio_line *relay, *contact, *button;
    assert_int_equal(gpio_request_output(g, "GPIO17", true, false, &relay), 0);
    assert_int_equal(gpio_request_output(g, "GPIO17", false, false, &relay), -EEXIST);
    assert_int_equal(gpio_request_output(g, "", false, false, &relay), -EINVAL);
    assert_int_equal(gpio_request_input(g, "GPIO27", true, 0, &contact), 0);
    assert_int_equal(gpio_request_input(g, "GPIO22", false, 0, &button), 0);
    gpio_line_set_userdata(contact, &ev);
    gpio_line_set_userdata(button, &ev);
    assert_ptr_equal(gpio_find_line(g, "GPIO27"), contact);
    assert_null(gpio_find_line(g, "GPIO99"));

    assert_false(gpio_get(relay));
    assert_int_equal(gpio_set(relay, true), 0);
    assert_true(gpio_get(relay));
    assert_int_equal(gpio_set(contact, true), -EINVAL);
    /* Inputs start inactive whatever their polarity. */
    assert_false(gpio_get(contact));
    assert_false(gpio_get(button));

    /* GPIO27 is active low: physical 0 = logical 1 (open). The bad lines are reported, not applied. */
    write_fifo(f->fifo, "GPIO27 0\n GPIO22 1 \nGPIO99 1\nGPIO22 x\nGPIO17 1\nGPIO22\nGPIO22 1 1\n\n");
    assert_true(fd_ready(gpio_fd(g)));
    assert_int_equal(gpio_dispatch(g), 0);
    assert_string_equal(ev.inputs, "GPIO27=1 GPIO22=1");
    assert_int_equal(ev.problems, 5);
    assert_non_null(strstr(ev.last_problem, "GPIO22 1 1"));
    assert_true(gpio_get(contact));

    /* An unchanged level is not an event; the writer went away but the FIFO is not at end-of-file. */
    ev.inputs[0] = '\0';
    write_fifo(f->fifo, "GPIO22 1\nGPIO27 1\n");
    assert_int_equal(gpio_dispatch(g), 0);
    assert_string_equal(ev.inputs, "GPIO27=0");
    assert_false(fd_ready(gpio_fd(g)));
    assert_int_equal(gpio_dispatch(g), 0);

    assert_null(gpio_close(g));
    assert_null(gpio_close(NULL));
}

static void test_gpio_sim_problem_without_callback_and_bad_fifo(void **state)
{
    struct fixture *f = *state;
    struct gpio *g;
    assert_int_equal(gpio_open(GPIO_DRIVER_SIM, f->fifo, NULL, NULL, &g), 0);
    write_fifo(f->fifo, "NOPE 1\n");
    assert_int_equal(gpio_dispatch(g), 0);     /* dropped quietly: nobody asked */
    gpio_close(g);

    assert_int_equal(gpio_open(GPIO_DRIVER_SIM, NULL, NULL, NULL, &g), -EINVAL);
    unlink(f->fifo);
    FILE *plain = fopen(f->fifo, "w");
    assert_non_null(plain);
    fclose(plain);
    assert_int_equal(gpio_open(GPIO_DRIVER_SIM, f->fifo, NULL, NULL, &g), -EEXIST);
}

static void test_drivers_not_built(void **state)
{
    struct gpio *g;
#ifndef TC_HAVE_GPIOD   /* with libgpiod: tests/unit/test_gpio_gpiod.c */
    assert_int_equal(gpio_open(GPIO_DRIVER_GPIOD, NULL, NULL, NULL, &g), -ENOTSUP);
#else
    (void)g;
#endif
#ifndef TC_HAVE_LIBNFC  /* with libnfc: tests/unit/test_reader_libnfc.c */
    struct reader_config rc = {.name = "entrance", .driver = READER_DRIVER_LIBNFC, .door = "entrance"};
    struct reader *r;
    assert_int_equal(reader_open(&rc, NULL, NULL, &r), -ENOTSUP);
#endif
}

/* ---- reader ---- */

struct reader_events {
    char taps[256];
    int problems;
    int last_err;
    char last_raw[64];
};

static void on_tap(struct reader *r, const char *uid, void *userdata)
{
    struct reader_events *ev = userdata;
    size_t len = strlen(ev->taps);
    snprintf(ev->taps + len, sizeof(ev->taps) - len, "%s%s", len ? " " : "", uid);
    assert_string_equal(reader_config(r)->name, "entrance");
}

static void on_reader_problem(struct reader *r, int err, const char *raw, void *userdata)
{
    struct reader_events *ev = userdata;
    ev->problems++;
    ev->last_err = err;
    snprintf(ev->last_raw, sizeof(ev->last_raw), "%s", raw ? raw : "(null)");
}

static void test_reader_sim(void **state)
{
    struct fixture *f = *state;
    struct reader_config rc = {.name = "entrance", .driver = READER_DRIVER_SIM, .door = "entrance"};
    snprintf(rc.fifo, sizeof(rc.fifo), "%s", f->fifo);
    struct reader_events ev = {0};
    struct reader *r;
    assert_int_equal(reader_open(&rc, on_tap, &ev, &r), 0);
    reader_set_problem_cb(r, on_reader_problem);
    assert_string_equal(reader_config(r)->fifo, f->fifo);

    /* Normalised, trimmed, blank lines skipped, the partial line kept for later. */
    write_fifo(f->fifo, "04:a1:b2:c3\n   \n\t04-11-22-33 \n0411");
    assert_int_equal(reader_dispatch(r), 0);
    assert_string_equal(ev.taps, "04A1B2C3 04112233");
    assert_int_equal(ev.problems, 0);

    ev.taps[0] = '\0';
    write_fifo(f->fifo, "2233\r\n");
    assert_int_equal(reader_dispatch(r), 0);
    assert_string_equal(ev.taps, "04112233");

    write_fifo(f->fifo, "not-a-uid\n");
    assert_int_equal(reader_dispatch(r), 0);
    assert_int_equal(ev.problems, 1);
    assert_int_equal(ev.last_err, -EINVAL);
    assert_string_equal(ev.last_raw, "not-a-uid");

    /* An overlong line is dropped whole, and the next line is read normally. */
    char big[700];
    memset(big, 'A', sizeof(big) - 2);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    write_fifo(f->fifo, big);
    write_fifo(f->fifo, "04A1B2C3\n");
    ev.taps[0] = '\0';
    /* One dispatch reads at most SIM_FIFO_READ_MAX bytes (a busy FIFO must not hold the loop): the
     * rest stays readable for the next. */
    assert_int_equal(reader_dispatch(r), 0);
    assert_int_equal(ev.problems, 1);
    assert_true(fd_ready(reader_fd(r)));
    assert_int_equal(reader_dispatch(r), 0);
    assert_int_equal(ev.problems, 2);
    assert_int_equal(ev.last_err, -EMSGSIZE);
    assert_string_equal(ev.last_raw, "(null)");
    assert_string_equal(ev.taps, "04A1B2C3");

    assert_false(fd_ready(reader_fd(r)));
    assert_null(reader_close(r));
    assert_null(reader_close(NULL));
}

/* The health callback gets reader_open's userdata (the tap events): its own record is here. */
static char health_seen[256];

static void on_health(struct reader *r, enum reader_health health, const char *detail, void *userdata)
{
    size_t len = strlen(health_seen);
    snprintf(health_seen + len, sizeof(health_seen) - len, "%s%s", len ? " " : "",
             health == READER_ONLINE ? "online" : "offline");
    assert_non_null(detail);
}

/* "!unplug" and "!plug": offline and back once each (changes only), taps in between dropped. */
static void test_reader_sim_unplug(void **state)
{
    struct fixture *f = *state;
    struct reader_config rc = {.name = "entrance", .driver = READER_DRIVER_SIM, .door = "entrance"};
    snprintf(rc.fifo, sizeof(rc.fifo), "%s", f->fifo);
    struct reader_events ev = {0};
    struct reader *r;
    assert_int_equal(reader_open(&rc, on_tap, &ev, &r), 0);
    reader_set_problem_cb(r, on_reader_problem);
    health_seen[0] = '\0';
    reader_set_health_cb(r, on_health);
    write_fifo(f->fifo, "04000001\n!plug\n!unplug\n04000002\n!unplug\nnot-a-uid\n!plug\n!plug\n04000003\n");
    assert_int_equal(reader_dispatch(r), 0);
    assert_string_equal(ev.taps, "04000001 04000003");
    assert_string_equal(health_seen, "offline online");
    assert_int_equal(ev.problems, 0);
    assert_null(reader_close(r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gpio_sim_inputs_and_outputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpio_sim_problem_without_callback_and_bad_fifo, setup, teardown),
        cmocka_unit_test(test_drivers_not_built),
        cmocka_unit_test_setup_teardown(test_reader_sim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_sim_unplug, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
