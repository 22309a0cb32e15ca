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
int64_t clock_now(const struct clock *c);     /* c may be NULL: real time */
uint64_t clock_mono_ms(void);                 /* CLOCK_MONOTONIC in milliseconds */

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
