/* Retention and backup figures: fills an access log with a year of taps (through the store's own API),
 * then times
 *  - the retention purge of everything older than 90 days, step by step (store_purge_step, the way the
 *    daemon runs it from its loop): how long each step holds the write lock (median, p99, max);
 *  - an online backup of the database (store_backup, default steps);
 *  - a backup while another connection commits a tap every millisecond, with small steps, to show that
 *    the held snapshot does not restart the copy (steps == pages / pages_per_step).
 *
 *   bench_retention [--db PATH] [--taps-per-day N] [--days N] [--batch N]
 *
 * Prints figures; asserts nothing. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define T_NOW 1795000000   /* "now" for the purge: some instant in 2026 */
#define DAY 86400

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die_store(struct store *st, const char *what, int r)
{
    fprintf(stderr, "bench_retention: %s: %s (%s)\n", what, strerror(-r), st ? store_errmsg(st) : "");
    exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct writer {
    struct store *other;
    uint64_t next_ns;
    int writes;
};

/* A tap from another connection at most every millisecond while the copy runs. */
static void write_meanwhile(int remaining, int total, void *userdata)
{
    (void)remaining;
    (void)total;
    struct writer *w = userdata;
    uint64_t t = now_ns();
    if (t < w->next_ns)
        return;
    w->next_ns = t + 1000000;
    struct access_record rec = {.at = T_NOW, .direction = DIRECTION_IN, .result = ACCESS_GRANTED,
                                .reason = REASON_KEYHOLDER};
    snprintf(rec.door, sizeof rec.door, "front");
    snprintf(rec.reader, sizeof rec.reader, "front");
    snprintf(rec.member_id, sizeof rec.member_id, "k-1");
    int r = store_access_log(w->other, &rec);
    if (r < 0)
        die_store(w->other, "writing during the backup", r);
    w->writes++;
}

int main(int argc, char **argv)
{
    /* Default: a private directory of our own (the store refuses a database in a world-writable
     * directory such as /tmp itself). */
    char tmpdir[] = "/tmp/bench_retention.XXXXXX", defdb[64];
    const char *db = NULL;
    int per_day = 500, days = 365, batch = STORE_PURGE_BATCH;
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},           {"taps-per-day", required_argument, NULL, 't'},
        {"days", required_argument, NULL, 'n'},         {"batch", required_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 't': per_day = atoi(optarg); break;
        case 'n': days = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: bench_retention [--db PATH] [--taps-per-day N] [--days N] [--batch N]\n");
            return 2;
        }
    }
    if (!db) {
        if (!mkdtemp(tmpdir)) {
            perror("bench_retention: mkdtemp");
            return 1;
        }
        snprintf(defdb, sizeof defdb, "%s/bench.db", tmpdir);
        db = defdb;
    }
    char side[4096];
    unlink(db);
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);

    struct store *st;
    int r = store_open(db, STORE_CREATE, &st);
    if (r < 0)
        die_store(NULL, "open", r);
    long total = (long)per_day * days;
    uint64_t t0 = now_ns();
    r = store_begin(st);
    for (long i = 0; r == 0 && i < total; i++) {
        struct access_record rec = {.at = T_NOW - (int64_t)days * DAY + i * DAY / per_day,
                                    .direction = DIRECTION_IN, .result = ACCESS_GRANTED,
                                    .reason = REASON_BOOKING, .booking_id = i + 1};
        snprintf(rec.door, sizeof rec.door, "front");
        snprintf(rec.reader, sizeof rec.reader, "front");
        snprintf(rec.member_id, sizeof rec.member_id, "m-%04ld", i % 300);
        snprintf(rec.badge_uid, sizeof rec.badge_uid, "04B0%04lX80", i % 300);
        r = store_access_log(st, &rec);
        if (r == 0 && i % 50000 == 49999)
            r = store_commit(st) < 0 ? -EIO : store_begin(st);
    }
    if (r == 0)
        r = store_commit(st);
    if (r < 0)
        die_store(st, "filling", r);
    printf("access log: %ld rows (%d days x %d taps) written in %.1f s\n", total, days, per_day,
           (double)(now_ns() - t0) / 1e9);

    /* ---- backup of the full database ---- */
    char copy[4096];
    snprintf(copy, sizeof copy, "%s.backup", db);
    struct store_backup_options bopt = {.overwrite = true};
    struct store_backup_result res;
    t0 = now_ns();
    if ((r = store_backup(st, copy, &bopt, &res)) < 0)
        die_store(st, "backup", r);
    printf("backup: %.1f MiB, %lld pages in %d steps of 256: %.0f ms\n", (double)res.bytes / (1 << 20),
           (long long)res.pages, res.steps, (double)(now_ns() - t0) / 1e6);

    /* ---- backup while another connection commits ---- */
    struct writer w = {0};
    if ((r = store_open(db, 0, &w.other)) < 0)
        die_store(NULL, "second connection", r);
    bopt = (struct store_backup_options){.overwrite = true, .pages_per_step = 16, .progress = write_meanwhile,
                                         .userdata = &w};
    t0 = now_ns();
    if ((r = store_backup(st, copy, &bopt, &res)) < 0)
        die_store(st, "backup under writes", r);
    printf("backup in steps of 16 pages while another connection committed %d taps: %.0f ms, %d steps for "
           "%lld pages (no restart)\n", w.writes, (double)(now_ns() - t0) / 1e6, res.steps, (long long)res.pages);
    store_close(w.other);

    /* ---- retention: 90 days ---- */
    int64_t before = T_NOW - 90 * DAY;
    struct store_purge_counts counts;
    store_purge_count(st, before, &counts);
    size_t cap = (size_t)(counts.access_log / (batch > 0 ? batch : 1)) + 2, n = 0;
    uint64_t *step_ns = calloc(cap, sizeof *step_ns);
    if (!step_ns)
        return 1;
    memset(&counts, 0, sizeof counts);
    t0 = now_ns();
    do {
        uint64_t s = now_ns();
        r = store_purge_step(st, before, batch, &counts);
        if (n < cap)
            step_ns[n++] = now_ns() - s;
    } while (r == 1);
    if (r < 0)
        die_store(st, "purge", r);
    double total_ms = (double)(now_ns() - t0) / 1e6;
    qsort(step_ns, n, sizeof *step_ns, cmp_u64);
    printf("purge of %lld rows older than 90 days: %zu steps of %d rows in %.0f ms; write lock held per step: "
           "median %.1f ms, p99 %.1f ms, max %.1f ms\n",
           (long long)counts.access_log, n, batch, total_ms, (double)step_ns[n / 2] / 1e6,
           (double)step_ns[(size_t)((double)(n - 1) * 0.99)] / 1e6, (double)step_ns[n - 1] / 1e6);
    free(step_ns);
    store_close(st);
    unlink(copy);
    if (db == defdb) {
        unlink(db);
        snprintf(side, sizeof side, "%s-wal", db);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", db);
        unlink(side);
        rmdir(tmpdir);
    }
    return 0;
}
