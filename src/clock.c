#include "clock.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct test_clock installed_test_clock;
static bool test_clock_on;

int64_t clock_now(const struct clock *c)
{
    if (c && c->now)
        return c->now(c->userdata);
    if (test_clock_on)
        return clock_test_at(&installed_test_clock, clock_mono_ms());
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

uint64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A whole decimal number in [min, max], the whole of [s, end). */
static bool parse_int_range(const char *s, const char *end, int64_t min, int64_t max, int64_t *out)
{
    if (s == end || end - s > 19)
        return false;
    int64_t v = 0;
    for (const char *p = s; p < end; p++) {
        if (!isdigit((unsigned char)*p) || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

int clock_test_parse(const char *s, uint64_t now_mono_ms, struct test_clock *out)
{
    if (!s)
        return -EINVAL;
    /* START may itself hold ':' (an ISO time): the speed is after the first ':' that follows a 'Z' or
     * the digits of an epoch. */
    const char *start_end = strchr(s, 'Z');
    start_end = start_end ? start_end + 1 : strchr(s, ':');
    if (!start_end || *start_end != ':')
        return -EINVAL;
    struct test_clock tc = {.anchor_ms = now_mono_ms};
    char start[TZ_BUFSZ];
    size_t len = (size_t)(start_end - s);
    if (len == 0 || len >= sizeof start)
        return -EINVAL;
    memcpy(start, s, len);
    start[len] = '\0';
    /* From 1970 to 9999, so that nothing downstream (dates, formatting) meets a year it cannot show. */
    const int64_t start_max = 253402300799;     /* 9999-12-31T23:59:59Z */
    if (isdigit((unsigned char)start[len - 1]) && !strchr(start, 'T')) {
        if (!parse_int_range(start, start + len, 0, start_max, &tc.start))
            return -EINVAL;
    } else if (tz_parse_iso_utc(start, &tc.start) < 0 || tc.start < 0 || tc.start > start_max) {
        return -EINVAL;
    }
    const char *speed = start_end + 1;
    const char *speed_end = strchr(speed, ':');
    if (!parse_int_range(speed, speed_end ? speed_end : speed + strlen(speed), 1, CLOCK_TEST_SPEED_MAX,
                         &tc.speed))
        return -EINVAL;
    if (speed_end) {
        int64_t anchor;
        const char *a = speed_end + 1;
        if (!parse_int_range(a, a + strlen(a), 0, INT64_MAX / 2, &anchor))
            return -EINVAL;
        tc.anchor_ms = (uint64_t)anchor;
    }
    *out = tc;
    return 0;
}

int64_t clock_test_at(const struct test_clock *tc, uint64_t mono_ms)
{
    /* Milliseconds of simulated time, so that a speed below 1000 still moves the clock between
     * seconds; floor division, so that an instant before the anchor is never rounded up. Months of
     * uptime at the top speed stay far below INT64_MAX (1e10 ms x 1e6). */
    int64_t elapsed_ms = mono_ms >= tc->anchor_ms ? (int64_t)(mono_ms - tc->anchor_ms)
                                                  : -(int64_t)(tc->anchor_ms - mono_ms);
    int64_t sim_ms = elapsed_ms * tc->speed;
    int64_t secs = sim_ms / 1000;
    if (sim_ms % 1000 < 0)
        secs--;
    return tc->start + secs;
}

uint64_t clock_test_interval_ms(const struct test_clock *tc, uint64_t wall_ms)
{
    if (!tc)
        return wall_ms;
    uint64_t ms = wall_ms / (uint64_t)tc->speed;
    return ms < CLOCK_TEST_MIN_TIMER_MS ? CLOCK_TEST_MIN_TIMER_MS : ms;
}

uint64_t clock_timer_ms(uint64_t wall_ms)
{
    return clock_test_interval_ms(clock_test_installed(), wall_ms);
}

void clock_test_install(const struct test_clock *tc)
{
    test_clock_on = tc != NULL;
    if (tc)
        installed_test_clock = *tc;
}

const struct test_clock *clock_test_installed(void)
{
    return test_clock_on ? &installed_test_clock : NULL;
}

int clock_test_from_env(void)
{
    const char *hooks = getenv("TELECENTRED_TEST_HOOKS");
    const char *value = getenv("TELECENTRED_TEST_CLOCK");
    if (!hooks || strcmp(hooks, "1") != 0 || !value || !*value)
        return 0;
    struct test_clock tc;
    if (clock_test_parse(value, clock_mono_ms(), &tc) < 0)
        return -EINVAL;
    clock_test_install(&tc);
    return 1;
}

static char current_zone[64] = "UTC";

int tz_set(const char *iana_name)
{
    if (!iana_name || !*iana_name || iana_name[0] == '/' || strstr(iana_name, "..") ||
        strlen(iana_name) >= sizeof current_zone)
        return -EINVAL;
    /* glibc silently falls back to UTC for an unknown zone: check the file exists first. */
    const char *dir = getenv("TZDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", iana_name);
    if (access(path, R_OK) != 0)
        return -ENOENT;
    char tzvalue[80];
    snprintf(tzvalue, sizeof tzvalue, ":%s", iana_name);
    if (setenv("TZ", tzvalue, 1) != 0)
        return -errno;
    tzset();
    snprintf(current_zone, sizeof current_zone, "%s", iana_name);
    return 0;
}

const char *tz_name(void)
{
    return current_zone;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

bool tz_valid_ymd(int ymd)
{
    int y = ymd / 10000, m = ymd / 100 % 100, d = ymd % 100;
    return y >= 1970 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

static void local_tm(int64_t t, struct tm *tm)
{
    time_t tt = (time_t)t;
    localtime_r(&tt, tm);
}

static int tm_ymd(const struct tm *tm)
{
    return (tm->tm_year + 1900) * 10000 + (tm->tm_mon + 1) * 100 + tm->tm_mday;
}

int tz_local_ymd(int64_t t)
{
    struct tm tm;
    local_tm(t, &tm);
    return tm_ymd(&tm);
}

int tz_local_wday(int64_t t)
{
    struct tm tm;
    local_tm(t, &tm);
    return tm.tm_wday;
}

int tz_local_minute_of_day(int64_t t)
{
    struct tm tm;
    local_tm(t, &tm);
    return tm.tm_hour * 60 + tm.tm_min;
}

/* Calendar arithmetic on dates is timezone-free: do it at noon UTC. */
static int64_t ymd_noon_utc(int ymd)
{
    struct tm tm = {.tm_year = ymd / 10000 - 1900, .tm_mon = ymd / 100 % 100 - 1,
                    .tm_mday = ymd % 100, .tm_hour = 12};
    return (int64_t)timegm(&tm);
}

int tz_ymd_wday(int ymd)
{
    time_t t = (time_t)ymd_noon_utc(ymd);
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm.tm_wday;
}

int tz_ymd_add_days(int ymd, int days)
{
    time_t t = (time_t)(ymd_noon_utc(ymd) + (int64_t)days * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm_ymd(&tm);
}

int tz_local_to_utc(int ymd, int minute_of_day, int64_t *out)
{
    if (!tz_valid_ymd(ymd) || minute_of_day < 0 || minute_of_day > 1440)
        return -EINVAL;
    if (minute_of_day == 1440) {     /* "24:00" is the next day's midnight */
        ymd = tz_ymd_add_days(ymd, 1);
        minute_of_day = 0;
    }
    /* Try the wall time as standard time and as daylight time; keep the readings that map back to
     * the same wall time. None: the time was skipped (spring forward). Two: it happens twice (fall
     * back): take the earlier. */
    bool found = false;
    int64_t best = 0;
    for (int isdst = 0; isdst <= 1; isdst++) {
        struct tm tm = {.tm_year = ymd / 10000 - 1900, .tm_mon = ymd / 100 % 100 - 1,
                        .tm_mday = ymd % 100, .tm_hour = minute_of_day / 60,
                        .tm_min = minute_of_day % 60, .tm_isdst = isdst};
        time_t t = mktime(&tm);
        if (t == (time_t)-1)
            continue;
        struct tm back;
        local_tm((int64_t)t, &back);
        if (tm_ymd(&back) != ymd || back.tm_hour * 60 + back.tm_min != minute_of_day)
            continue;
        if (!found || (int64_t)t < best)
            best = (int64_t)t;
        found = true;
    }
    if (!found)
        return -ERANGE;
    *out = best;
    return 0;
}

/* Reads exactly `digits` decimal digits. */
static bool read_digits(const char **p, int digits, int *value)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += digits;
    *value = v;
    return true;
}

static bool read_char(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

static bool read_date(const char **p, int *ymd)
{
    int y, m, d;
    if (!read_digits(p, 4, &y) || !read_char(p, '-') || !read_digits(p, 2, &m) || !read_char(p, '-') ||
        !read_digits(p, 2, &d))
        return false;
    *ymd = y * 10000 + m * 100 + d;
    return tz_valid_ymd(*ymd);
}

static bool read_hhmm(const char **p, int *minute_of_day, bool allow_24)
{
    int h, m;
    if (!read_digits(p, 2, &h) || !read_char(p, ':') || !read_digits(p, 2, &m))
        return false;
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
        return false;
    *minute_of_day = h * 60 + m;
    return true;
}

int tz_parse_date(const char *s, int *ymd)
{
    if (!s || !read_date(&s, ymd) || *s)
        return -EINVAL;
    return 0;
}

int tz_parse_hhmm(const char *s, int *minute_of_day)
{
    if (!s || !read_hhmm(&s, minute_of_day, true) || *s)
        return -EINVAL;
    return 0;
}

int tz_parse_local_datetime(const char *s, int64_t *out)
{
    int ymd, minute;
    if (!s || !read_date(&s, &ymd) || !(read_char(&s, ' ') || read_char(&s, 'T')) ||
        !read_hhmm(&s, &minute, false) || *s)
        return -EINVAL;
    return tz_local_to_utc(ymd, minute, out);
}

int tz_parse_iso_utc(const char *s, int64_t *out)
{
    int ymd, minute, sec = 0;
    if (!s || !read_date(&s, &ymd) || !read_char(&s, 'T') || !read_hhmm(&s, &minute, false))
        return -EINVAL;
    if (read_char(&s, ':')) {
        if (!read_digits(&s, 2, &sec) || sec > 60)
            return -EINVAL;
        if (read_char(&s, '.')) {           /* fractions of a second are accepted and dropped */
            if (!isdigit((unsigned char)*s))
                return -EINVAL;
            while (isdigit((unsigned char)*s))
                s++;
        }
    }
    if (!read_char(&s, 'Z') || *s)
        return -EINVAL;
    struct tm tm = {.tm_year = ymd / 10000 - 1900, .tm_mon = ymd / 100 % 100 - 1, .tm_mday = ymd % 100,
                    .tm_hour = minute / 60, .tm_min = minute % 60, .tm_sec = sec};
    *out = (int64_t)timegm(&tm);
    return 0;
}

char *tz_format_local(int64_t t, char buf[TZ_BUFSZ])
{
    struct tm tm;
    local_tm(t, &tm);
    strftime(buf, TZ_BUFSZ, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

char *tz_format_iso_utc(int64_t t, char buf[TZ_BUFSZ])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, TZ_BUFSZ, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

char *tz_format_ymd(int ymd, char buf[TZ_BUFSZ])
{
    snprintf(buf, TZ_BUFSZ, "%04d-%02d-%02d", ymd / 10000 % 10000, ymd / 100 % 100, ymd % 100);
    return buf;
}
