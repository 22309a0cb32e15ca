/* The door state machine, driven step by step with a hand-set clock. Every output change and every
 * transition is recorded as one trace line, so each step asserts exactly what happened and nothing else. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "door.h"

static uint64_t now_ms;
static char trace[4096];

static const char *output_name(enum door_output o)
{
    switch (o) {
    case DOOR_OUTPUT_RELAY:
        return "relay";
    case DOOR_OUTPUT_LED_GREEN:
        return "green";
    case DOOR_OUTPUT_LED_RED:
        return "red";
    case DOOR_OUTPUT_BUZZER:
        return "buzzer";
    }
    return "?";
}

static void trace_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace_add(const char *fmt, ...)
{
    size_t len = strlen(trace);
    if (len)
        len += (size_t)snprintf(trace + len, sizeof(trace) - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(trace + len, sizeof(trace) - len, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(trace) - len);
}

static void record_output(void *userdata, enum door_output output, bool on)
{
    assert_ptr_equal(userdata, &now_ms);
    trace_add("%llu %s=%d", (unsigned long long)now_ms, output_name(output), on);
}

static void record_state(void *userdata, enum door_state from, enum door_state to, const char *cause)
{
    assert_ptr_equal(userdata, &now_ms);
    trace_add("%llu %s->%s(%s)", (unsigned long long)now_ms, door_state_name(from), door_state_name(to),
              cause);
}

static const struct door_ops recorder = {
    .set_output = record_output,
    .state_changed = record_state,
};

/* Asserts the trace since the last check, then clears it. */
#define expect_trace(expected)                 \
    do {                                       \
        assert_string_equal(trace, expected);  \
        trace[0] = '\0';                       \
    } while (0)

static struct door_params test_params(bool has_contact)
{
    struct door_params p;
    door_params_defaults(&p);
    p.unlock_ms = 400;
    p.held_open_s = 1;
    p.has_contact = has_contact;
    return p;
}

static struct door *new_door(const struct door_params *p)
{
    now_ms = 0;
    trace[0] = '\0';
    struct door *d = door_new("entrance", p, &recorder, &now_ms);
    assert_non_null(d);
    expect_trace("0 relay=0; 0 green=0; 0 red=0; 0 buzzer=0");
    assert_int_equal(door_state(d), DOOR_LOCKED);
    assert_false(door_relay_on(d));
    assert_int_equal(door_next_deadline(d), UINT64_MAX);
    return d;
}

/* Moves the clock and runs what is due, the way the daemon's timer does. */
static void advance_to(struct door *d, uint64_t t)
{
    now_ms = t;
    door_tick(d, t);
}

static void test_grant_then_timeout_relocks_at_unlock_ms(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    now_ms = 1000;
    door_grant(d, now_ms);
    expect_trace("1000 relay=1; 1000 locked->unlocked(grant); 1000 green=1; 1000 buzzer=1");
    assert_int_equal(door_state(d), DOOR_UNLOCKED);
    assert_int_equal(door_state_since(d), 1000);
    assert_true(door_relay_on(d));
    assert_int_equal(door_next_deadline(d), 1100);     /* the short beep ends first */

    advance_to(d, 1100);
    expect_trace("1100 buzzer=0");
    assert_int_equal(door_next_deadline(d), 1400);

    advance_to(d, 1399);
    expect_trace("");
    assert_int_equal(door_state(d), DOOR_UNLOCKED);

    advance_to(d, 1400);
    expect_trace("1400 relay=0; 1400 unlocked->locked(timeout); 1400 green=0");
    assert_int_equal(door_state(d), DOOR_LOCKED);
    assert_false(door_relay_on(d));
    assert_int_equal(door_next_deadline(d), UINT64_MAX);
    door_free(d);
}

static void test_second_grant_extends_the_unlock(void **state)
{
    struct door_params p = test_params(true);
    p.short_beep_ms = 50;
    struct door *d = new_door(&p);

    door_grant(d, 0);
    trace[0] = '\0';
    advance_to(d, 300);
    expect_trace("300 buzzer=0");
    door_grant(d, 300);
    expect_trace("300 buzzer=1");           /* relay and green were on already */
    advance_to(d, 400);
    expect_trace("400 buzzer=0");           /* the unlock now lasts until 700 */
    assert_true(door_relay_on(d));
    advance_to(d, 699);
    expect_trace("");
    advance_to(d, 700);
    expect_trace("700 relay=0; 700 unlocked->locked(timeout); 700 green=0");
    door_free(d);
}

static void test_grant_open_close_relocks(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    door_grant(d, 0);
    trace[0] = '\0';
    now_ms = 150;
    door_contact(d, true, now_ms);
    expect_trace("150 unlocked->open(contact_open)");
    assert_true(door_relay_on(d));

    /* The relay goes off when the unlock time ends; the door stays open. */
    advance_to(d, 400);
    expect_trace("400 buzzer=0; 400 relay=0; 400 green=0");
    assert_int_equal(door_state(d), DOOR_OPEN);
    assert_int_equal(door_next_deadline(d), 1150);

    now_ms = 600;
    door_contact(d, false, now_ms);
    expect_trace("600 open->locked(contact_closed)");
    assert_int_equal(door_state(d), DOOR_LOCKED);
    assert_int_equal(door_next_deadline(d), UINT64_MAX);
    door_free(d);
}

static void test_close_before_unlock_ends_relocks_at_once(void **state)
{
    struct door_params p = test_params(true);
    p.grant_led_ms = 1000;
    struct door *d = new_door(&p);

    door_grant(d, 0);
    advance_to(d, 100);
    trace[0] = '\0';
    now_ms = 120;
    door_contact(d, true, now_ms);
    now_ms = 200;
    door_contact(d, false, now_ms);
    expect_trace("120 unlocked->open(contact_open); 200 relay=0; 200 open->locked(contact_closed)");
    assert_false(door_relay_on(d));
    assert_int_equal(door_next_deadline(d), 1000);   /* only the green LED is still pending */
    advance_to(d, 1000);
    expect_trace("1000 green=0");
    door_free(d);
}

static void test_held_open_then_close(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    door_grant(d, 0);
    now_ms = 200;
    door_contact(d, true, now_ms);
    advance_to(d, 400);
    trace[0] = '\0';

    advance_to(d, 1199);
    expect_trace("");
    advance_to(d, 1200);                     /* held_open_s = 1 after the door opened at 200 */
    expect_trace("1200 open->held_open(held_open_timeout)");
    assert_int_equal(door_state(d), DOOR_HELD_OPEN);
    assert_int_equal(door_next_deadline(d), UINT64_MAX);

    now_ms = 5000;
    door_contact(d, false, now_ms);
    expect_trace("5000 held_open->locked(contact_closed)");
    door_free(d);
}

static void test_late_tick_replays_in_order(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    door_grant(d, 0);
    now_ms = 10;
    door_contact(d, true, now_ms);
    trace[0] = '\0';
    advance_to(d, 9000);
    expect_trace("9000 buzzer=0; 9000 relay=0; 9000 green=0; 9000 open->held_open(held_open_timeout)");
    door_free(d);
}

static void test_forced(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    now_ms = 500;
    door_contact(d, true, now_ms);
    expect_trace("500 locked->forced(contact_open)");
    assert_false(door_relay_on(d));
    assert_int_equal(door_next_deadline(d), UINT64_MAX);   /* no held-open alarm on top */

    now_ms = 700;
    door_contact(d, true, now_ms);                          /* a repeated edge changes nothing */
    expect_trace("");

    now_ms = 900;
    door_contact(d, false, now_ms);
    expect_trace("900 forced->locked(contact_closed)");
    door_free(d);
}

static void test_grant_during_forced_keeps_forced(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    door_contact(d, true, 0);
    trace[0] = '\0';
    now_ms = 100;
    door_grant(d, now_ms);
    expect_trace("100 relay=1; 100 green=1; 100 buzzer=1");
    assert_int_equal(door_state(d), DOOR_FORCED);

    advance_to(d, 500);
    expect_trace("500 buzzer=0; 500 relay=0; 500 green=0");
    assert_int_equal(door_state(d), DOOR_FORCED);

    now_ms = 600;
    door_contact(d, false, now_ms);
    expect_trace("600 forced->locked(contact_closed)");
    door_free(d);
}

static void test_grant_while_open_re_energises(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    door_grant(d, 0);
    door_contact(d, true, 10);
    advance_to(d, 1010);
    assert_int_equal(door_state(d), DOOR_HELD_OPEN);
    trace[0] = '\0';

    now_ms = 2000;
    door_exit_button(d, true, now_ms);
    expect_trace("2000 relay=1");
    assert_int_equal(door_state(d), DOOR_HELD_OPEN);
    advance_to(d, 2400);
    expect_trace("2400 relay=0");
    assert_int_equal(door_state(d), DOOR_HELD_OPEN);
    door_free(d);
}

static void test_exit_button(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    now_ms = 100;
    door_exit_button(d, true, now_ms);
    expect_trace("100 relay=1; 100 locked->unlocked(exit_button)");   /* no LED, no beep */
    now_ms = 150;
    door_exit_button(d, false, now_ms);
    expect_trace("");
    assert_int_equal(door_next_deadline(d), 500);

    now_ms = 200;
    door_contact(d, true, now_ms);
    expect_trace("200 unlocked->open(contact_open)");
    now_ms = 300;
    door_contact(d, false, now_ms);
    expect_trace("300 relay=0; 300 open->locked(contact_closed)");
    door_free(d);
}

static void test_exit_button_timeout(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    door_exit_button(d, true, 0);
    door_exit_button(d, false, 50);
    trace[0] = '\0';
    advance_to(d, 400);
    expect_trace("400 relay=0; 400 unlocked->locked(timeout)");
    door_free(d);
}

static void test_deny_keeps_state(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    now_ms = 1000;
    door_deny(d, now_ms);
    expect_trace("1000 red=1; 1000 buzzer=1");
    assert_int_equal(door_state(d), DOOR_LOCKED);
    assert_false(door_relay_on(d));
    assert_int_equal(door_next_deadline(d), 1800);     /* long beep 800 ms */

    advance_to(d, 1799);
    expect_trace("");
    advance_to(d, 1800);
    expect_trace("1800 buzzer=0");
    advance_to(d, 2999);
    expect_trace("");
    advance_to(d, 3000);                               /* red LED 2000 ms */
    expect_trace("3000 red=0");
    assert_int_equal(door_next_deadline(d), UINT64_MAX);
    door_free(d);
}

static void test_led_and_buzzer_timings(void **state)
{
    struct door_params p = test_params(true);
    p.grant_led_ms = 1500;
    p.short_beep_ms = 60;
    p.deny_led_ms = 700;
    p.long_beep_ms = 300;
    struct door *d = new_door(&p);

    door_grant(d, 0);
    trace[0] = '\0';
    advance_to(d, 60);
    expect_trace("60 buzzer=0");
    advance_to(d, 400);
    expect_trace("400 relay=0; 400 unlocked->locked(timeout)");

    /* A deny replaces the green LED by the red one. */
    now_ms = 1000;
    door_deny(d, now_ms);
    expect_trace("1000 green=0; 1000 red=1; 1000 buzzer=1");
    advance_to(d, 1300);
    expect_trace("1300 buzzer=0");
    advance_to(d, 1700);
    expect_trace("1700 red=0");

    /* And a grant replaces red by green. */
    door_deny(d, 2000);
    trace[0] = '\0';
    now_ms = 2100;
    door_grant(d, now_ms);
    /* the buzzer is still on from the deny: only its deadline changes */
    expect_trace("2100 relay=1; 2100 locked->unlocked(grant); 2100 red=0; 2100 green=1");
    assert_int_equal(door_next_deadline(d), 2160);
    advance_to(d, 2160);
    expect_trace("2160 buzzer=0");
    door_free(d);
}

static void test_door_without_contact(void **state)
{
    struct door_params p = test_params(false);
    p.held_open_s = 0;                   /* not needed without a contact */
    struct door *d = new_door(&p);

    now_ms = 10;
    door_contact(d, true, now_ms);
    expect_trace("");
    assert_int_equal(door_state(d), DOOR_LOCKED);

    door_grant(d, now_ms);
    trace[0] = '\0';
    now_ms = 20;
    door_contact(d, true, now_ms);
    door_contact(d, false, now_ms);
    expect_trace("");
    assert_int_equal(door_state(d), DOOR_UNLOCKED);
    advance_to(d, 410);
    expect_trace("410 buzzer=0; 410 relay=0; 410 unlocked->locked(timeout); 410 green=0");
    door_free(d);
}

static void test_make_safe(void **state)
{
    struct door_params p = test_params(true);
    struct door *d = new_door(&p);

    door_grant(d, 0);
    door_contact(d, true, 10);
    trace[0] = '\0';
    now_ms = 20;
    door_make_safe(d);
    expect_trace("20 relay=0; 20 green=0; 20 red=0; 20 buzzer=0");
    assert_int_equal(door_state(d), DOOR_OPEN);      /* no fake transition */
    assert_false(door_relay_on(d));
    assert_int_equal(door_next_deadline(d), UINT64_MAX);

    /* Outputs are driven even when the door believes they are off already. */
    door_make_safe(d);
    expect_trace("20 relay=0; 20 green=0; 20 red=0; 20 buzzer=0");

    door_free(d);
    expect_trace("20 relay=0; 20 green=0; 20 red=0; 20 buzzer=0");
    door_make_safe(NULL);
    assert_null(door_free(NULL));
}

static void test_bad_params(void **state)
{
    struct door_params p = test_params(true);
    p.unlock_ms = 0;
    errno = 0;
    assert_null(door_new("x", &p, &recorder, NULL));
    assert_int_equal(errno, EINVAL);

    p = test_params(true);
    p.held_open_s = 0;
    errno = 0;
    assert_null(door_new("x", &p, &recorder, NULL));
    assert_int_equal(errno, EINVAL);

    p = test_params(true);
    errno = 0;
    assert_null(door_new(NULL, &p, &recorder, NULL));
    assert_int_equal(errno, EINVAL);
    assert_string_equal(trace, "");
}

static void test_names(void **state)
{
    assert_string_equal(door_state_name(DOOR_LOCKED), "locked");
    assert_string_equal(door_state_name(DOOR_UNLOCKED), "unlocked");
    assert_string_equal(door_state_name(DOOR_OPEN), "open");
    assert_string_equal(door_state_name(DOOR_HELD_OPEN), "held_open");
    assert_string_equal(door_state_name(DOOR_FORCED), "forced");

    struct door_params p = test_params(true);
    struct door *d = new_door(&p);
    assert_string_equal(door_name(d), "entrance");
    door_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grant_then_timeout_relocks_at_unlock_ms),
        cmocka_unit_test(test_second_grant_extends_the_unlock),
        cmocka_unit_test(test_grant_open_close_relocks),
        cmocka_unit_test(test_close_before_unlock_ends_relocks_at_once),
        cmocka_unit_test(test_held_open_then_close),
        cmocka_unit_test(test_late_tick_replays_in_order),
        cmocka_unit_test(test_forced),
        cmocka_unit_test(test_grant_during_forced_keeps_forced),
        cmocka_unit_test(test_grant_while_open_re_energises),
        cmocka_unit_test(test_exit_button),
        cmocka_unit_test(test_exit_button_timeout),
        cmocka_unit_test(test_deny_keeps_state),
        cmocka_unit_test(test_led_and_buzzer_timings),
        cmocka_unit_test(test_door_without_contact),
        cmocka_unit_test(test_make_safe),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
