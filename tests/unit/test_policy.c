/* Table-driven tests of the pure access policy, in Europe/Paris, across daylight-saving changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "policy.h"

struct policy_case {
    const char *name;
    const char *now;                 /* local time in Europe/Paris */
    bool unknown, revoked, suspended;
    enum member_role role;
    int valid_from, valid_until;
    enum direction direction;
    const char *book_from, *book_to; /* local; NULL = no booking */
    bool after_hours, checked_in;
    bool closure, present;
    int present_count;
    int badge_denials, reader_denials;
    bool desk_free;
    const char *desk_next;           /* local start of the free desk's next booking; NULL = none */
    bool no_walk_in;
    bool sunday_open;                /* open 08:00-19:00 on Sundays too (for the DST Sundays) */
    enum access_result result;
    enum access_reason reason;
    const char *walk_in_until;       /* expected local end of the walk-in booking */
    bool check_in;
};

#define G ACCESS_GRANTED
#define D ACCESS_DENIED

/* Monday 2026-11-23 unless said otherwise. Hours: mon-fri 08:00-19:00, weekend closed; early and
 * late 15 min, no-show 30 min, walk-in min 30 min, capacity 3, lock-out at 5 badge / 10 reader denials. */
static const struct policy_case cases[] = {
    {"unknown badge", "2026-11-23 10:00", .unknown = true, .result = D, .reason = REASON_UNKNOWN_BADGE},
    {"revoked badge", "2026-11-23 10:00", .revoked = true, .result = D, .reason = REASON_BADGE_REVOKED},
    {"suspended member", "2026-11-23 10:00", .suspended = true, .result = D, .reason = REASON_MEMBER_SUSPENDED},
    {"keyholder suspended", "2026-11-23 10:00", .role = ROLE_KEYHOLDER, .suspended = true, .result = D,
     .reason = REASON_MEMBER_SUSPENDED},
    {"membership ended yesterday", "2026-11-23 10:00", .valid_until = 20261122, .result = D,
     .reason = REASON_MEMBERSHIP_EXPIRED},
    {"membership starts tomorrow", "2026-11-23 10:00", .valid_from = 20261124, .result = D,
     .reason = REASON_MEMBERSHIP_EXPIRED},
    {"membership ends today (inclusive)", "2026-11-23 18:59", .valid_until = 20261123,
     .book_from = "2026-11-23 09:00", .book_to = "2026-11-23 19:00", .checked_in = true, .result = G,
     .reason = REASON_BOOKING},
    {"keyholder on a Sunday night", "2026-11-22 03:00", .role = ROLE_KEYHOLDER, .result = G,
     .reason = REASON_KEYHOLDER},
    {"manager on a closure day", "2026-11-23 10:00", .role = ROLE_MANAGER, .closure = true, .result = G,
     .reason = REASON_KEYHOLDER},
    {"keyholder ignores capacity", "2026-11-23 10:00", .role = ROLE_KEYHOLDER, .present_count = 3, .result = G,
     .reason = REASON_KEYHOLDER},
    {"booking covers now", "2026-11-23 09:10", .book_from = "2026-11-23 09:00", .book_to = "2026-11-23 12:00",
     .result = G, .reason = REASON_BOOKING, .check_in = true},
    {"booking already checked in", "2026-11-23 10:00", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .checked_in = true, .result = G, .reason = REASON_BOOKING},
    {"early window: 15 min before", "2026-11-23 08:45", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .result = G, .reason = REASON_BOOKING, .check_in = true},
    {"early window: 16 min before", "2026-11-23 08:44", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .result = D, .reason = REASON_NO_BOOKING},
    {"late window: 14 min after", "2026-11-23 12:14", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .checked_in = true, .result = G, .reason = REASON_BOOKING},
    {"late window: 15 min after", "2026-11-23 12:15", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .checked_in = true, .result = D, .reason = REASON_NO_BOOKING},
    {"no-show: 29 min late still admitted", "2026-11-23 09:29", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .result = G, .reason = REASON_BOOKING, .check_in = true},
    {"no-show: 30 min late released", "2026-11-23 09:30", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .result = D, .reason = REASON_NO_BOOKING},
    {"no-show released, walk-in instead", "2026-11-23 09:30", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .desk_free = true, .result = G, .reason = REASON_WALK_IN,
     .walk_in_until = "2026-11-23 19:00", .check_in = true},
    {"booking before opening", "2026-11-23 07:00", .book_from = "2026-11-23 07:00",
     .book_to = "2026-11-23 09:00", .result = D, .reason = REASON_CLOSED},
    {"after-hours booking before opening", "2026-11-23 07:00", .book_from = "2026-11-23 07:00",
     .book_to = "2026-11-23 09:00", .after_hours = true, .result = G, .reason = REASON_BOOKING, .check_in = true},
    {"early window does not open the site", "2026-11-23 07:50", .book_from = "2026-11-23 08:00",
     .book_to = "2026-11-23 12:00", .result = D, .reason = REASON_CLOSED},
    {"Sunday without booking", "2026-11-22 10:00", .result = D, .reason = REASON_CLOSED},
    {"after closing", "2026-11-23 19:00", .desk_free = true, .result = D, .reason = REASON_CLOSED},
    {"closure day with a booking", "2026-11-23 09:10", .closure = true, .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .result = D, .reason = REASON_CLOSED},
    {"walk-in until closing", "2026-11-23 10:00", .desk_free = true, .result = G, .reason = REASON_WALK_IN,
     .walk_in_until = "2026-11-23 19:00", .check_in = true},
    {"walk-in until the desk's next booking", "2026-11-23 10:00", .desk_free = true,
     .desk_next = "2026-11-23 14:00", .result = G, .reason = REASON_WALK_IN, .walk_in_until = "2026-11-23 14:00",
     .check_in = true},
    {"walk-in: desk free too briefly", "2026-11-23 10:00", .desk_free = true, .desk_next = "2026-11-23 10:20",
     .result = D, .reason = REASON_NO_BOOKING},
    {"walk-in: no desk free", "2026-11-23 10:00", .result = D, .reason = REASON_NO_BOOKING},
    {"walk-ins disabled", "2026-11-23 10:00", .desk_free = true, .no_walk_in = true, .result = D,
     .reason = REASON_NO_BOOKING},
    {"site full with a booking", "2026-11-23 09:10", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .present_count = 3, .result = D, .reason = REASON_SITE_FULL},
    {"site full, member already inside", "2026-11-23 10:00", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .checked_in = true, .present = true, .present_count = 3, .result = G,
     .reason = REASON_BOOKING},
    {"site full for a walk-in", "2026-11-23 10:00", .desk_free = true, .present_count = 3, .result = D,
     .reason = REASON_SITE_FULL},
    {"badge denied too often", "2026-11-23 09:10", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .badge_denials = 5, .result = D, .reason = REASON_TOO_MANY_ATTEMPTS},
    {"badge denied 4 times: still decided", "2026-11-23 09:10", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .badge_denials = 4, .result = G, .reason = REASON_BOOKING, .check_in = true},
    {"unknown badge denied too often", "2026-11-23 10:00", .unknown = true, .badge_denials = 5, .result = D,
     .reason = REASON_TOO_MANY_ATTEMPTS},
    {"reader under attack refuses members", "2026-11-23 09:10", .book_from = "2026-11-23 09:00",
     .book_to = "2026-11-23 12:00", .reader_denials = 10, .result = D, .reason = REASON_TOO_MANY_ATTEMPTS},
    {"reader under attack admits keyholders", "2026-11-23 10:00", .role = ROLE_KEYHOLDER, .reader_denials = 10,
     .result = G, .reason = REASON_KEYHOLDER},
    {"keyholder badge denied too often", "2026-11-23 10:00", .role = ROLE_KEYHOLDER, .badge_denials = 5,
     .result = D, .reason = REASON_TOO_MANY_ATTEMPTS},
    {"exit reader checks out", "2026-11-23 23:00", .direction = DIRECTION_OUT, .result = G,
     .reason = REASON_CHECK_OUT},
    {"exit reader, revoked badge", "2026-11-23 10:00", .direction = DIRECTION_OUT, .revoked = true, .result = D,
     .reason = REASON_BADGE_REVOKED},
    /* Spring forward: Sunday 2027-03-28, 02:00 -> 03:00 in Europe/Paris. */
    {"DST spring Sunday: 07:59 closed", "2027-03-28 07:59", .sunday_open = true, .desk_free = true, .result = D,
     .reason = REASON_CLOSED},
    {"DST spring Sunday: 08:00 open", "2027-03-28 08:00", .sunday_open = true, .desk_free = true, .result = G,
     .reason = REASON_WALK_IN, .walk_in_until = "2027-03-28 19:00", .check_in = true},
    {"DST spring Sunday: 18:59 open", "2027-03-28 18:59", .sunday_open = true, .book_from = "2027-03-28 09:00",
     .book_to = "2027-03-28 19:00", .checked_in = true, .result = G, .reason = REASON_BOOKING},
    {"after spring change: Monday 07:59 closed", "2027-03-29 07:59", .desk_free = true, .result = D,
     .reason = REASON_CLOSED},
    {"after spring change: Monday 08:00 booking", "2027-03-29 08:00", .book_from = "2027-03-29 08:00",
     .book_to = "2027-03-29 12:00", .result = G, .reason = REASON_BOOKING, .check_in = true},
    {"before spring change: Friday 08:00 booking", "2027-03-26 08:00", .book_from = "2027-03-26 08:00",
     .book_to = "2027-03-26 12:00", .result = G, .reason = REASON_BOOKING, .check_in = true},
    {"after-hours booking over the spring gap", "2027-03-28 03:30", .book_from = "2027-03-28 01:00",
     .book_to = "2027-03-28 04:00", .after_hours = true, .checked_in = true, .result = G,
     .reason = REASON_BOOKING},
    /* Fall back: Sunday 2026-10-25, 03:00 -> 02:00. */
    {"DST autumn Sunday: 07:59 closed", "2026-10-25 07:59", .sunday_open = true, .desk_free = true, .result = D,
     .reason = REASON_CLOSED},
    {"DST autumn Sunday: 08:00 open", "2026-10-25 08:00", .sunday_open = true, .desk_free = true, .result = G,
     .reason = REASON_WALK_IN, .walk_in_until = "2026-10-25 19:00", .check_in = true},
    {"after autumn change: Monday 08:00 booking", "2026-10-26 08:00", .book_from = "2026-10-26 08:00",
     .book_to = "2026-10-26 12:00", .result = G, .reason = REASON_BOOKING, .check_in = true},
    {"after autumn change: Monday 18:59 open, 19:00 closed", "2026-10-26 19:00", .desk_free = true, .result = D,
     .reason = REASON_CLOSED},
    {"after-hours booking through the repeated hour", "2026-10-25 02:30", .book_from = "2026-10-24 22:00",
     .book_to = "2026-10-25 10:00", .after_hours = true, .checked_in = true, .result = G,
     .reason = REASON_BOOKING},
};

static int64_t local(const char *s)
{
    int64_t t = 0;
    int r = tz_parse_local_datetime(s, &t);
    if (r != 0)
        fail_msg("bad local time in test table: %s (%d)", s, r);
    return t;
}

static void run_case(const struct policy_case *c)
{
    struct policy_config pc;
    policy_config_defaults(&pc);
    pc.capacity = 3;
    pc.walk_in = !c->no_walk_in;
    if (c->sunday_open)
        pc.hours[0] = (struct day_hours){.closed = false, .open_min = 8 * 60, .close_min = 19 * 60};

    struct policy_member m = {.id = "m-1", .role = c->role, .suspended = c->suspended,
                              .valid_from = c->valid_from, .valid_until = c->valid_until};
    struct policy_booking b = {.id = 42, .resource_id = "desk-01", .after_hours = c->after_hours,
                               .checked_in = c->checked_in};
    struct policy_input in = {
        .now = local(c->now), .direction = c->direction, .badge_known = !c->unknown,
        .badge_revoked = c->revoked, .member = c->unknown ? NULL : &m, .closure_today = c->closure,
        .member_present = c->present, .present_count = c->present_count,
        .badge_denials = c->badge_denials, .reader_denials = c->reader_denials,
    };
    if (c->book_from) {
        b.start = local(c->book_from);
        b.end = local(c->book_to);
        in.bookings = &b;
        in.n_bookings = 1;
    }

    struct decision d;
    policy_decide(&pc, &in, &d);
    if (d.need_free_desk) {          /* as access.c does: search, then decide again */
        in.free_desk_searched = true;
        in.free_desk_found = c->desk_free;
        snprintf(in.free_desk.resource_id, sizeof in.free_desk.resource_id, "desk-09");
        in.free_desk.next_start = c->desk_next ? local(c->desk_next) : 0;
        policy_decide(&pc, &in, &d);
    }

    if (d.result != c->result || d.reason != c->reason)
        fail_msg("%s: expected %s %s, got %s %s", c->name, access_result_name(c->result),
                 access_reason_name(c->reason), access_result_name(d.result), access_reason_name(d.reason));
    if (d.check_in != c->check_in)
        fail_msg("%s: check_in expected %d got %d", c->name, c->check_in, d.check_in);
    assert_int_equal(d.create_walk_in, c->reason == REASON_WALK_IN);
    assert_int_equal(d.check_out, c->reason == REASON_CHECK_OUT);
    if (c->reason == REASON_BOOKING)
        assert_int_equal(d.booking_id, 42);
    if (c->walk_in_until) {
        assert_string_equal(d.walk_in_resource, "desk-09");
        if (d.walk_in_until != local(c->walk_in_until))
            fail_msg("%s: walk-in until %lld, expected %s", c->name, (long long)d.walk_in_until,
                     c->walk_in_until);
    }
}

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
}

static void test_every_reason_reachable(void **state)
{
    bool seen[REASON_COUNT] = {0};
    seen[REASON_REMOTE] = true;   /* granted by access_remote_unlock, never by the policy */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        seen[cases[i].reason] = true;
    for (int r = 0; r < REASON_COUNT; r++)
        if (!seen[r])
            fail_msg("no test case reaches reason %s", access_reason_name((enum access_reason)r));
}

static void test_opening_hours_follow_wall_clock(void **state)
{
    struct policy_config pc;
    policy_config_defaults(&pc);
    /* 08:00 Paris is 07:00Z in winter and 06:00Z in summer: the same wall time on both sides. */
    assert_false(policy_site_open(&pc, false, 1774508340 /* 2026-03-26T06:59Z = 07:59 CET, Thu */));
    assert_true(policy_site_open(&pc, false, 1774508400 /* 07:00Z = 08:00 CET */));
    assert_false(policy_site_open(&pc, false, 1775023140 /* 2026-04-01T05:59Z = 07:59 CEST, Wed */));
    assert_true(policy_site_open(&pc, false, 1775023200 /* 06:00Z = 08:00 CEST */));
    assert_false(policy_site_open(&pc, true, 1775023200));   /* closure day */
    /* Closing time on the autumn change day (Sunday opened for the test): 19:00 CET = 18:00Z. */
    pc.hours[0] = (struct day_hours){.closed = false, .open_min = 8 * 60, .close_min = 19 * 60};
    assert_int_equal(policy_closing_time(&pc, local("2026-10-25 10:00")), 1792951200 /* 2026-10-25T18:00Z */);
    assert_int_equal(policy_closing_time(&pc, local("2026-10-25 07:00")), 0);
}

static void test_names_round_trip(void **state)
{
    enum member_role role;
    enum direction dir;
    assert_int_equal(member_role_parse("keyholder", &role), 0);
    assert_int_equal(role, ROLE_KEYHOLDER);
    assert_int_equal(member_role_parse("admin", &role), -22);
    assert_int_equal(direction_parse("out", &dir), 0);
    assert_int_equal(dir, DIRECTION_OUT);
    assert_int_equal(direction_parse("sideways", &dir), -22);
    assert_string_equal(access_reason_name(REASON_TOO_MANY_ATTEMPTS), "too_many_attempts");
    assert_string_equal(access_reason_name(REASON_REMOTE), "remote");
    assert_string_equal(access_result_name(ACCESS_DENIED), "denied");
}

static int setup(void **state)
{
    return tz_set("Europe/Paris");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_every_reason_reachable),
        cmocka_unit_test(test_opening_hours_follow_wall_clock),
        cmocka_unit_test(test_names_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
