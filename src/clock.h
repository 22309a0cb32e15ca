/* Time: an injectable wall clock, a monotonic clock, and the site's timezone.
 *
 * Every instant is stored as int64_t seconds since the Unix epoch, UTC. Local times (opening hours,
 * command-line dates) are interpreted in the site's IANA timezone, set once per process with tz_set(),
 * so that "08:00" means 08:00 on the wall on both sides of a daylight-saving change. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall clock, injectable so tests can set the time by hand. */
struct clock {
    int64_t (*now)(void *userdata);  /* NULL: the real CLOCK_REALTIME */
    void *userdata;
};
int64_t clock_now(const struct clock *c);     /* c may be NULL: real time (or the test clock, below) */
uint64_t clock_mono_ms(void);                 /* CLOCK_MONOTONIC in milliseconds */

/* The test clock, for compressed-time runs (bench/soak): a wall clock that shows `start` at the monotonic
 * instant `anchor_ms` and runs `speed` times faster than real time from there. Installed process-wide by
 * clock_test_from_env() (only with TELECENTRED_TEST_HOOKS=1), it is what clock_now() returns for a clock
 * without its own `now`: every wall-clock reader of the daemon and of telecentrectl follows it. The
 * monotonic clock is the machine's, so two processes given the same anchor agree on the simulated time.
 * Timers that stand for wall-clock periods (no-show sweep, daily purge, MQTT checks) are armed through
 * clock_timer_ms() so that they fire on simulated time. Door timings (unlock_ms, held_open_s, debounce)
 * are physical and stay real. */
#define CLOCK_TEST_SPEED_MAX 1000000
#define CLOCK_TEST_MIN_TIMER_MS 100u    /* a scaled timer never fires more often than this (real ms) */
struct test_clock {
    int64_t start;          /* seconds since the epoch, shown at anchor_ms */
    int64_t speed;          /* simulated seconds per real second, 1..CLOCK_TEST_SPEED_MAX */
    uint64_t anchor_ms;     /* CLOCK_MONOTONIC in ms */
};
/* "START:SPEED[:ANCHOR_MS]": START in seconds since the epoch or "YYYY-MM-DDTHH:MM[:SS]Z", SPEED a whole
 * number, ANCHOR_MS a CLOCK_MONOTONIC instant in ms (default now_mono_ms: the clock starts now).
 * -EINVAL on anything malformed or out of range. */
int clock_test_parse(const char *s, uint64_t now_mono_ms, struct test_clock *out);
int64_t clock_test_at(const struct test_clock *tc, uint64_t mono_ms);   /* the simulated time, in s */
/* Real milliseconds for a wall-clock period under tc: wall_ms / speed, at least CLOCK_TEST_MIN_TIMER_MS
 * (tc NULL: wall_ms unchanged). */
uint64_t clock_test_interval_ms(const struct test_clock *tc, uint64_t wall_ms);
/* The same under the installed test clock (none: wall_ms unchanged). */
uint64_t clock_timer_ms(uint64_t wall_ms);
void clock_test_install(const struct test_clock *tc);  /* NULL: the real clock again */
const struct test_clock *clock_test_installed(void);   /* NULL when none */
/* Installs TELECENTRED_TEST_CLOCK when TELECENTRED_TEST_HOOKS=1: 1 when installed, 0 when not asked
 * for (either variable unset; TELECENTRED_TEST_CLOCK without the hooks is ignored), -EINVAL when the
 * value is malformed (nothing installed). */
int clock_test_from_env(void);

/* Sets the process timezone (TZ) to an IANA name such as "Europe/Paris".
 * -ENOENT if no such zone is installed (glibc would otherwise silently use UTC). */
int tz_set(const char *iana_name);
const char *tz_name(void);

/* A date as yyyymmdd (20261123). */
bool tz_valid_ymd(int ymd);
int tz_local_ymd(int64_t t);                   /* local date of an instant */
int tz_local_wday(int64_t t);                  /* 0 = Sunday .. 6 = Saturday */
int tz_local_minute_of_day(int64_t t);         /* 0..1439 */
int tz_ymd_wday(int ymd);                      /* weekday of a date, 0 = Sunday */
int tz_ymd_add_days(int ymd, int days);

/* The instant at which the local wall clock shows ymd hh:mm.
 * -ERANGE for a time that does not exist (skipped by a spring-forward change);
 * an ambiguous time (repeated by a fall-back change) gives the earlier instant. */
int tz_local_to_utc(int ymd, int minute_of_day, int64_t *out);

/* Parsers for command-line and config values; -EINVAL on anything malformed. */
int tz_parse_date(const char *s, int *ymd);                   /* "YYYY-MM-DD" */
int tz_parse_hhmm(const char *s, int *minute_of_day);         /* "HH:MM", 00:00..24:00 */
int tz_parse_local_datetime(const char *s, int64_t *out);     /* "YYYY-MM-DD HH:MM" (or 'T'), local; -ERANGE if skipped by DST */
int tz_parse_iso_utc(const char *s, int64_t *out);            /* "YYYY-MM-DDTHH:MM[:SS]Z" */

/* Formatters; buffers of at least TZ_BUFSZ. */
#define TZ_BUFSZ 32
char *tz_format_local(int64_t t, char buf[TZ_BUFSZ]);         /* "2026-11-23 09:02" */
char *tz_format_iso_utc(int64_t t, char buf[TZ_BUFSZ]);       /* "2026-11-23T08:02:11Z" */
char *tz_format_ymd(int ymd, char buf[TZ_BUFSZ]);             /* "2026-11-23" */
