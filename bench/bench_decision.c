/* Decision-path benchmark: fills a site database with 100,000 members, 150,000 badges, 500 resources and
 * 1,000,000 bookings (through the store's own API, with its conflict checks), then times the full decision
 * path (badge UID in; decision, access-log row and effects committed) against a bare indexed SQLite lookup
 * of the same badge, interleaved tap by tap so both see the same cache and machine noise.
 *
 *   bench_decision [--db PATH] [--reuse] [--taps N] [--members N] [--bookings N]
 *
 * Prints figures; asserts nothing (see docs/performance.md). */
#include <errno.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "store.h"

#define BASE_DAY 20261123            /* a Monday: "today" for the taps */
#define RESOURCES 500
#define DESKS 450

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)              /* xorshift64*: fixed seed, same database every run */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void badge_uid(unsigned n, char out[UID_STR_MAX])
{
    uint8_t raw[7] = {0x04, 0xB0, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, 0x80};
    uid_from_bytes(raw, sizeof raw, out);
}

static void die_store(struct store *st, const char *what, int r)
{
    fprintf(stderr, "bench_decision: %s: %s (%s)\n", what, strerror(-r), st ? store_errmsg(st) : "");
    exit(1);
}

static uint64_t decided_at;
static void on_decided(const struct decision *d, const struct access_record *rec, void *userdata)
{
    decided_at = now_ns();
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *sorted, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)sorted[i] / 1000.0;
}

struct slot_owner {
    char member[ID_MAX];
};

static void fill(struct store *st, int n_members, int n_bookings, struct slot_owner *today_owner)
{
    double t0 = now_s();
    int r;
    if ((r = store_begin(st)) < 0)
        die_store(st, "begin", r);
    for (int i = 0; i < n_members; i++) {
        struct member m = {.role = i % 500 == 0 ? ROLE_KEYHOLDER : ROLE_MEMBER, .created_at = 1700000000,
                           .presence_visible = i % 3 == 0};
        snprintf(m.id, sizeof m.id, "m-%06d", i);
        snprintf(m.name, sizeof m.name, "Member %d Lastname", i);
        if (i % 97 == 0)
            m.valid_until = 20260101;          /* some expired memberships */
        if ((r = store_member_add(st, &m)) < 0)
            die_store(st, "member add", r);
    }
    int n_badges = n_members + n_members / 2;
    for (int i = 0; i < n_badges; i++) {
        struct badge b = {.created_at = 1700000000};
        badge_uid((unsigned)i, b.uid);
        snprintf(b.member_id, sizeof b.member_id, "m-%06d", i % n_members);
        if ((r = store_badge_add(st, &b)) < 0)
            die_store(st, "badge add", r);
    }
    for (int i = 0; i < RESOURCES; i++) {
        struct resource res = {.kind = i < DESKS ? RESOURCE_DESK : RESOURCE_ROOM, .seats = i < DESKS ? 1 : 8};
        snprintf(res.id, sizeof res.id, i < DESKS ? "desk-%03d" : "room-%03d", i);
        snprintf(res.name, sizeof res.name, i < DESKS ? "Desk %d" : "Room %d", i);
        if ((r = store_resource_add(st, &res)) < 0)
            die_store(st, "resource add", r);
    }
    if ((r = store_commit(st)) < 0)
        die_store(st, "commit", r);
    double t_people = now_s() - t0;

    /* Two slots a day on every resource, 95% taken, on consecutive days centred on BASE_DAY. */
    int per_day = RESOURCES * 2 * 95 / 100;
    int days = n_bookings / per_day + 1;
    int first_day = tz_ymd_add_days(BASE_DAY, -days / 2);
    int made = 0;
    if ((r = store_begin(st)) < 0)
        die_store(st, "begin", r);
    for (int d = 0; d < days && made < n_bookings; d++) {
        int ymd = tz_ymd_add_days(first_day, d);
        for (int slot = 0; slot < 2 && made < n_bookings; slot++) {
            int64_t start, end;
            tz_local_to_utc(ymd, slot ? 13 * 60 + 30 : 8 * 60, &start);
            tz_local_to_utc(ymd, slot ? 18 * 60 : 12 * 60 + 30, &end);
            for (int res = 0; res < RESOURCES && made < n_bookings; res++) {
                if (rng() % 100 >= 95)
                    continue;
                struct booking b = {.start = start, .end = end, .status = BOOKING_CONFIRMED,
                                    .kind = BOOKING_RESERVED, .created_at = start - 86400};
                snprintf(b.resource_id, sizeof b.resource_id, res < DESKS ? "desk-%03d" : "room-%03d", res);
                for (int attempt = 0; attempt < 20; attempt++) {
                    snprintf(b.member_id, sizeof b.member_id, "m-%06d", (int)(rng() % (uint64_t)n_members));
                    int64_t conflict = 0;
                    r = store_booking_add(st, &b, &conflict);
                    if (r != -EEXIST)
                        break;
                }
                if (r == -EEXIST)
                    continue;          /* every member tried already has a desk then: leave it free */
                if (r < 0)
                    die_store(st, "booking add", r);
                made++;
                if (ymd == BASE_DAY && slot == 1)
                    memcpy(today_owner[res].member, b.member_id, ID_MAX);
                if (made % 100000 == 0) {
                    if ((r = store_commit(st)) < 0 || (r = store_begin(st)) < 0)
                        die_store(st, "commit", r);
                    fprintf(stderr, "\r  %d bookings...", made);
                }
            }
        }
    }
    if ((r = store_commit(st)) < 0)
        die_store(st, "commit", r);
    fprintf(stderr, "\r");
    double t_all = now_s() - t0;
    printf("fill: %d members, %d badges, %d resources, %d bookings in %.1f s (people %.1f s, bookings %.1f s)\n",
           n_members, n_badges, RESOURCES, made, t_all, t_people, t_all - t_people);
}

int main(int argc, char **argv)
{
    const char *db = NULL;
    bool reuse = false;
    int taps = 5000, n_members = 100000, n_bookings = 1000000;
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'}, {"reuse", no_argument, NULL, 'r'},
        {"taps", required_argument, NULL, 't'}, {"members", required_argument, NULL, 'm'},
        {"bookings", required_argument, NULL, 'b'}, {"help", no_argument, NULL, 'h'}, {0}};
    for (int c; (c = getopt_long(argc, argv, "d:rt:m:b:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'r': reuse = true; break;
        case 't': taps = atoi(optarg); break;
        case 'm': n_members = atoi(optarg); break;
        case 'b': n_bookings = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: bench_decision [--db PATH] [--reuse] [--taps N] [--members N] [--bookings N]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (taps < 100 || n_members < 1000 || n_bookings < 1000) {
        fprintf(stderr, "bench_decision: --taps >= 100, --members >= 1000, --bookings >= 1000\n");
        return 2;
    }
    char tmpdir[] = "/tmp/tc-bench-XXXXXX";
    char path[600];
    if (!db) {
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(path, sizeof path, "%s/bench.db", tmpdir);
        db = path;
    }
    if (tz_set("Europe/Paris") < 0) {
        fprintf(stderr, "bench_decision: timezone Europe/Paris is not installed (apt-get install tzdata)\n");
        return 1;
    }

    struct slot_owner *today_owner = calloc(RESOURCES, sizeof *today_owner);
    struct store *st = NULL;
    bool fresh = !(reuse && access(db, F_OK) == 0);
    if (fresh)
        unlink(db);
    int r = store_open(db, STORE_CREATE, &st);
    if (r < 0)
        die_store(st, "open", r);
    if (fresh) {
        fill(st, n_members, n_bookings, today_owner);
    } else {
        /* Reusing a filled database: find who booked this afternoon's slot. */
        int64_t at;
        tz_local_to_utc(BASE_DAY, 14 * 60, &at);
        for (int res = 0; res < RESOURCES; res++) {
            struct booking b;
            char rid[ID_MAX];
            snprintf(rid, sizeof rid, res < DESKS ? "desk-%03d" : "room-%03d", res);
            if (store_resource_current_booking(st, rid, at, &b) == 0)
                memcpy(today_owner[res].member, b.member_id, ID_MAX);
        }
        printf("fill: reusing %s\n", db);
    }
    struct stat sb;
    if (stat(db, &sb) == 0)
        printf("database: %s, %.1f MiB\n", db, (double)sb.st_size / 1048576.0);

    /* Badge of a member: members 0..n-1 own badges n and n + n (first n/2 members have two). */
    sqlite3 *bare = NULL;
    sqlite3_stmt *lookup = NULL;
    if (sqlite3_open_v2(db, &bare, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(bare, "SELECT member_id, revoked_at FROM badges WHERE uid = ?", -1, &lookup, NULL) !=
            SQLITE_OK) {
        fprintf(stderr, "bench_decision: bare lookup: %s\n", sqlite3_errmsg(bare));
        return 1;
    }

    struct policy_config pc;
    policy_config_defaults(&pc);
    pc.capacity = 0;
    pc.max_reader_denials = 0;   /* one simulated reader takes every tap: the reader lock-out would
                                    turn most taps into too_many_attempts and flatter the figures */
    uint64_t *t_decide = calloc((size_t)taps, sizeof *t_decide);
    uint64_t *t_commit = calloc((size_t)taps, sizeof *t_commit);
    uint64_t *t_bare = calloc((size_t)taps, sizeof *t_bare);
    int outcome[2][REASON_COUNT] = {{0}};
    /* Taps from 13:20, three a second: members arrive for the afternoon slot (13:30-18:00) from its
     * early window on, morning bookings have ended, and a few desks are free for walk-ins. */
    int64_t start;
    tz_local_to_utc(BASE_DAY, 13 * 60 + 20, &start);
    int n_badges = n_members + n_members / 2;
    double sweep_t0 = now_s();
    r = access_sweep(st, &pc, start);     /* as the daemon does at start: past no-shows released */
    if (r < 0)
        die_store(st, "sweep", r);
    printf("start-up sweep: %d no-show bookings released in %.2f s\n", r, now_s() - sweep_t0);

    for (int i = 0; i < taps; i++) {
        char uid[UID_STR_MAX];
        unsigned pick = (unsigned)(rng() % 100);
        if (pick < 60) {                               /* a member with a desk booked this afternoon */
            int res = (int)(rng() % RESOURCES);
            if (!today_owner[res].member[0]) {
                badge_uid((unsigned)(rng() % (uint64_t)n_badges), uid);
            } else {
                badge_uid((unsigned)atoi(today_owner[res].member + 2), uid);
            }
        } else if (pick < 90) {                        /* any member: mostly no booking now */
            badge_uid((unsigned)(rng() % (uint64_t)n_badges), uid);
        } else {                                       /* a badge nobody enrolled */
            badge_uid((unsigned)n_badges + (unsigned)(rng() % 1000000), uid);
        }

        uint64_t a = now_ns();
        sqlite3_bind_text(lookup, 1, uid, -1, SQLITE_STATIC);
        while (sqlite3_step(lookup) == SQLITE_ROW)
            (void)sqlite3_column_text(lookup, 0);
        sqlite3_reset(lookup);
        uint64_t b = now_ns();

        struct access_request req = {.uid = uid, .door = "entrance", .reader = "entrance",
                                     .direction = DIRECTION_IN, .now = start + i / 3, .on_decided = on_decided};
        struct decision d;
        struct access_record rec;
        r = access_decide(st, &pc, &req, true, &d, &rec);
        uint64_t c = now_ns();
        if (r < 0)
            die_store(st, "decide", r);
        t_bare[i] = b - a;
        t_decide[i] = decided_at - b;
        t_commit[i] = c - b;
        outcome[d.result][d.reason]++;
    }
    qsort(t_decide, (size_t)taps, sizeof *t_decide, cmp_u64);
    qsort(t_commit, (size_t)taps, sizeof *t_commit, cmp_u64);
    qsort(t_bare, (size_t)taps, sizeof *t_bare, cmp_u64);
    double d50 = pct_us(t_decide, (size_t)taps, 0.50), d99 = pct_us(t_decide, (size_t)taps, 0.99);
    double b50 = pct_us(t_bare, (size_t)taps, 0.50), b99 = pct_us(t_bare, (size_t)taps, 0.99);
    printf("taps: %d, interleaved\n", taps);
    printf("decision path (UID in -> decision, log row written):  p50 %8.1f us  p99 %8.1f us  max %8.1f us\n",
           d50, d99, pct_us(t_decide, (size_t)taps, 1.0));
    printf("  ... and committed durably (fsync, synchronous=FULL): p50 %8.1f us  p99 %8.1f us  max %8.1f us\n",
           pct_us(t_commit, (size_t)taps, 0.50), pct_us(t_commit, (size_t)taps, 0.99),
           pct_us(t_commit, (size_t)taps, 1.0));
    printf("bare indexed badge lookup (SELECT by uid):            p50 %8.1f us  p99 %8.1f us  max %8.1f us\n", b50, b99,
           pct_us(t_bare, (size_t)taps, 1.0));
    printf("ratio decision/bare: p50 %.1fx  p99 %.1fx\n", d50 / b50, d99 / b99);
    printf("outcomes:");
    for (int res = 0; res < 2; res++)
        for (int reason = 0; reason < REASON_COUNT; reason++)
            if (outcome[res][reason])
                printf(" %s/%s=%d", access_result_name((enum access_result)res),
                       access_reason_name((enum access_reason)reason), outcome[res][reason]);
    printf("\n");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak memory (max RSS): %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);

    sqlite3_finalize(lookup);
    sqlite3_close(bare);
    store_close(st);
    free(t_decide);
    free(t_commit);
    free(t_bare);
    free(today_owner);
    if (db == path) {
        char wal[640];
        unlink(path);
        snprintf(wal, sizeof wal, "%s-wal", path);
        unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", path);
        unlink(wal);
        rmdir(tmpdir);
    }
    return 0;
}
