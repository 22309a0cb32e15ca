/* telecentrectl's argument parsers (docs/cli.md): times, dates, badge UIDs, ids, roles and kinds, numbers,
 * booking references, free text, and the option parser itself. telecentrectl.c is compiled into this target
 * (its main renamed) so that its own static parsers run, not copies of them; its messages go to /dev/null.
 *
 * Input: lines. Every line goes through every value parser, with round trips checked: a date, time or UID
 * that is accepted formats back to what was typed (or its normal form, which is accepted again unchanged).
 * The lines together are also one command line (argv) for parse_args(), against the option tables of
 * "member add" and "book": each option found must be one of the table's, each positional one given. Time
 * parsing runs in Europe/Paris, so daylight-saving gaps and repeats are exercised. */
#include <stdio.h>

static FILE *ctl_messages;    /* /dev/null: telecentrectl's usage errors and help */
#undef stdout
#undef stderr
#define stdout ctl_messages
#define stderr ctl_messages
int telecentrectl_main(int argc, char **argv);
#define main telecentrectl_main
#include "../src/telecentrectl.c"
#undef main
#undef stdout
#undef stderr

#include "fuzz.h"

#define MAX_ARGS 24

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_set_timezone();
    ctl_messages = fopen("/dev/null", "w");
    FUZZ_CHECK(ctl_messages != NULL);
    return 0;
}

static void check_times(const char *s)
{
    char buf[TZ_BUFSZ];
    int ymd, minute;
    int64_t t;
    if (tz_parse_date(s, &ymd) == 0) {
        FUZZ_CHECK(tz_valid_ymd(ymd));
        FUZZ_CHECK(!strcmp(tz_format_ymd(ymd, buf), s));
        FUZZ_CHECK(tz_ymd_wday(ymd) >= 0 && tz_ymd_wday(ymd) <= 6);
        FUZZ_CHECK(tz_ymd_add_days(tz_ymd_add_days(ymd, 1), -1) == ymd);
    }
    if (tz_parse_hhmm(s, &minute) == 0) {
        FUZZ_CHECK(minute >= 0 && minute <= 1440);
        snprintf(buf, sizeof buf, "%02d:%02d", minute / 60, minute % 60);
        FUZZ_CHECK(!strcmp(buf, s));
    }
    int r = tz_parse_local_datetime(s, &t);
    FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
    if (r == 0) {
        /* The wall time typed, "YYYY-MM-DD HH:MM" (a 'T' may stand for the blank). */
        char typed[TZ_BUFSZ];
        snprintf(typed, sizeof typed, "%s", s);
        if (strlen(typed) > 10 && typed[10] == 'T')
            typed[10] = ' ';
        FUZZ_CHECK(!strcmp(tz_format_local(t, buf), typed));
    }
    if (tz_parse_iso_utc(s, &t) == 0) {
        int64_t again;
        FUZZ_CHECK(t >= 0);
        FUZZ_CHECK(tz_parse_iso_utc(tz_format_iso_utc(t, buf), &again) == 0 && again == t);
        if (!strstr(s, ":60"))              /* a leap second rolls over into the next minute */
            FUZZ_CHECK(!strncmp(buf, s, 10));
    }
    /* telecentrectl's own wrappers, as its commands call them. */
    (void)parse_time_arg("--from", s, &t);
    (void)parse_date_arg("--day", s, &ymd);
}

static void check_uid(const char *s)
{
    char uid[UID_STR_MAX], again[UID_STR_MAX];
    if (uid_normalize(s, uid) < 0)
        return;
    size_t n = strlen(uid);
    FUZZ_CHECK(n == 8 || n == 14 || n == 20);
    FUZZ_CHECK(strspn(uid, "0123456789ABCDEF") == n);
    FUZZ_CHECK(uid_normalize(uid, again) == 0 && !strcmp(again, uid));
    uint8_t bytes[UID_MAX_BYTES];
    for (size_t i = 0; i < n / 2; i++)
        sscanf(uid + 2 * i, "%2hhx", &bytes[i]);
    FUZZ_CHECK(uid_from_bytes(bytes, n / 2, again) == 0 && !strcmp(again, uid));
}

static void check_words(const char *s)
{
    if (id_is_valid(s))
        FUZZ_CHECK(strlen(s) < ID_MAX && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
                                             strlen(s));
    enum member_role role;
    if (member_role_parse(s, &role) == 0)
        FUZZ_CHECK(!strcmp(member_role_name(role), s));
    enum resource_kind kind;
    if (resource_kind_parse(s, &kind) == 0)
        FUZZ_CHECK(!strcmp(resource_kind_name(kind), s));
    enum direction dir;
    if (direction_parse(s, &dir) == 0)
        FUZZ_CHECK(!strcmp(direction_name(dir), s));
    long v;
    if (parse_int_range(s, 1, SEATS_MAX, &v))
        FUZZ_CHECK(v >= 1 && v <= SEATS_MAX);
    int64_t id;
    if (parse_booking_id(s, &id))
        FUZZ_CHECK(id >= 1);
    (void)check_text("member add m-1", "--name", s, NAME_MAX_LEN, false);
    (void)check_id("member add", "member id", s);
}

static void check_args(int argc, char **argv)
{
    static const struct optdef member_add[] = {
        {"name", true}, {"role", true}, {"from", true}, {"until", true}, {"email", true}, {"visible", false},
    };
    static const struct optdef book[] = {
        {"member", true}, {"resource", true}, {"from", true}, {"to", true}, {"after-hours", false},
    };
    struct ctl ctl;
    struct args a;
    memset(&ctl, 0, sizeof ctl);
    int rc = parse_args(&ctl, &cmdgroup_member, "member add", member_add, 6, 1, 1, "ID", argc, argv, &a);
    FUZZ_CHECK(rc == ARGS_CONTINUE || rc == EXIT_SUCCESS || rc == EXIT_USAGE);
    if (rc == ARGS_CONTINUE) {
        FUZZ_CHECK(a.n_pos == 1 && a.pos[0]);
        for (int k = 0; k < 6; k++)
            FUZZ_CHECK(!a.val[k] || member_add[k].takes_value || !a.val[k][0]);
    }
    rc = parse_args(&ctl, &cmdgroup_book, "book", book, 5, 0, 0, "", argc, argv, &a);
    FUZZ_CHECK(rc == ARGS_CONTINUE || rc == EXIT_SUCCESS || rc == EXIT_USAGE);
    if (rc == ARGS_CONTINUE)
        FUZZ_CHECK(a.n_pos == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = fuzz_strndup((const uint8_t *)"cmd", 3);
    while (size && argc < MAX_ARGS) {
        const uint8_t *line;
        size_t len;
        fuzz_split(&data, &size, '\n', &line, &len);
        char *s = fuzz_strndup(line, len);
        check_times(s);
        check_uid(s);
        check_words(s);
        argv[argc++] = s;
    }
    argv[argc] = NULL;
    check_args(argc, argv);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return 0;
}
