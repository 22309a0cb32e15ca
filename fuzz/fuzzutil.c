/* Helpers shared by the fuzz targets. See fuzz.h. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "sync.h"

#define HOUR 3600

_Noreturn void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}

void fuzz_set_timezone(void)
{
    if (tz_set("Europe/Paris") < 0 && tz_set("UTC") < 0)
        fuzz_fail(__FILE__, __LINE__, "no timezone can be set");
}

static char tmpdir[256];

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(tmpdir);
}

const char *fuzz_tmpdir(void)
{
    if (tmpdir[0])
        return tmpdir;
    struct stat sb;
    const char *base = getenv("TMPDIR");
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
        base = "/dev/shm";
    else if (!base || !*base)
        base = "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/telecentred-fuzz.XXXXXX", base);
    if (!mkdtemp(tmpdir))
        fuzz_fail(__FILE__, __LINE__, "mkdtemp");
    atexit(remove_tmpdir);
    return tmpdir;
}

/* ---- the site database ---- */

static char site_path[300];
static void *template_bytes;
static size_t template_len;

static void must(int r, const char *what)
{
    if (r < 0) {
        fprintf(stderr, "fuzz: making the site database: %s: %s\n", what, strerror(-r));
        abort();
    }
}

static void add_booking(struct store *st, const char *member, const char *resource, int64_t start, int64_t end)
{
    struct booking b = {.start = start, .end = end, .kind = BOOKING_RESERVED, .status = BOOKING_CONFIRMED,
                        .created_at = FUZZ_NOW - 86400};
    snprintf(b.member_id, sizeof b.member_id, "%s", member);
    snprintf(b.resource_id, sizeof b.resource_id, "%s", resource);
    must(store_booking_add(st, &b, NULL), "booking");
}

static void make_template(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/template.db", fuzz_tmpdir());
    struct store *st;
    must(store_open(path, STORE_CREATE, &st), "store_open");
    static const char batch[] =
        "{\"version\":1,\"ops\":["
        "{\"op\":\"upsert\",\"member\":{\"id\":\"m-1\",\"name\":\"Ana\",\"presence_visible\":true}},"
        "{\"op\":\"upsert\",\"member\":{\"id\":\"m-2\",\"name\":\"Ben\",\"role\":\"keyholder\"}},"
        "{\"op\":\"upsert\",\"member\":{\"id\":\"m-3\",\"name\":\"Cy\",\"suspended\":true}},"
        "{\"op\":\"upsert\",\"member\":{\"id\":\"m-4\",\"name\":\"Di\",\"valid_until\":\"2026-01-31\"}},"
        "{\"op\":\"upsert\",\"member\":{\"id\":\"mgr-1\",\"name\":\"Eve\",\"role\":\"manager\"}},"
        "{\"op\":\"upsert\",\"badge\":{\"uid\":\"04:a1:b2:c3\",\"member\":\"m-1\"}},"
        "{\"op\":\"upsert\",\"badge\":{\"uid\":\"04112233445566\",\"member\":\"m-2\",\"label\":\"blue\"}},"
        "{\"op\":\"upsert\",\"badge\":{\"uid\":\"0A0B0C0D\",\"member\":\"m-1\",\"revoked\":true}},"
        "{\"op\":\"upsert\",\"resource\":{\"id\":\"desk-1\",\"kind\":\"desk\",\"name\":\"Desk 1\"}},"
        "{\"op\":\"upsert\",\"resource\":{\"id\":\"desk-2\",\"kind\":\"desk\"}},"
        "{\"op\":\"upsert\",\"resource\":{\"id\":\"room-1\",\"kind\":\"room\",\"seats\":6}}]}";
    struct sync_result res;
    must(sync_apply(st, SYNC_SITE, batch, sizeof batch - 1, FUZZ_NOW - 86400, &res), "sync");
    if (res.outcome != SYNC_APPLIED) {
        fprintf(stderr, "fuzz: the site batch was not applied: %s\n", res.error);
        abort();
    }
    add_booking(st, "m-1", "desk-1", FUZZ_NOW + HOUR, FUZZ_NOW + 3 * HOUR);        /* b-1 */
    add_booking(st, "m-2", "desk-2", FUZZ_NOW - HOUR, FUZZ_NOW + 4 * HOUR);        /* b-2 */
    add_booking(st, "m-1", "room-1", FUZZ_NOW + 24 * HOUR, FUZZ_NOW + 25 * HOUR);  /* b-3 */
    must(store_booking_cancel(st, 3), "cancel");
    must(store_closure_add(st, 20261225, "Christmas"), "closure");
    store_close(st);    /* the last connection: SQLite checkpoints the WAL into the file and removes it */

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !(template_bytes = malloc((size_t)sb.st_size)) ||
        read(fd, template_bytes, (size_t)sb.st_size) != sb.st_size)
        fuzz_fail(__FILE__, __LINE__, "reading the template database");
    template_len = (size_t)sb.st_size;
    close(fd);
    unlink(path);
    snprintf(site_path, sizeof site_path, "%s/site.db", fuzz_tmpdir());
}

static void free_template(void)
{
    free(template_bytes);
    template_bytes = NULL;
}

/* The open copy, kept from one input to the next while nothing was committed to it: opening a store costs
 * more than most inputs. A commit is seen in the WAL, which grows; a rolled-back transaction leaves the
 * database as it was (and the store drops its caches on rollback). An input that committed gets a fresh copy
 * opened at its end, not at the start of the next, and its page cache filled: so each input frees about what
 * it allocates, and libFuzzer's leak check (run after any input that allocated more than it freed) stays
 * rare instead of costing every other input a scan of the heap. */
static struct store *site;
static off_t site_wal_size;

static off_t wal_size(void)
{
    char wal[340];
    snprintf(wal, sizeof wal, "%s-wal", site_path);
    struct stat sb;
    return stat(wal, &sb) == 0 ? sb.st_size : -1;
}

static void close_site(void)
{
    site = store_close(site);
}

static void open_site(void)
{
    close_site();
    char side[340];
    snprintf(side, sizeof side, "%s-wal", site_path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", site_path);
    unlink(side);
    int fd = open(site_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, template_bytes, template_len) != (ssize_t)template_len || close(fd) < 0)
        fuzz_fail(__FILE__, __LINE__, "writing the site database");
    must(store_open(site_path, 0, &site), "store_open");
    (void)fuzz_site_fingerprint(site);
    site_wal_size = wal_size();
}

struct store *fuzz_site_open(void)
{
    if (!template_bytes) {
        make_template();
        atexit(free_template);
        atexit(close_site);
    }
    if (!site)
        open_site();
    FUZZ_CHECK(wal_size() == site_wal_size);
    return site;
}

void fuzz_site_close(struct store *st)
{
    FUZZ_CHECK(st == site);
    if (wal_size() != site_wal_size)
        open_site();
}

void fuzz_split(const uint8_t **data, size_t *size, uint8_t sep, const uint8_t **head, size_t *head_len)
{
    const uint8_t *p = *size ? memchr(*data, sep, *size) : NULL;
    *head = *data;
    if (!p) {
        *head_len = *size;
        *data += *size;
        *size = 0;
        return;
    }
    *head_len = (size_t)(p - *data);
    *size -= *head_len + 1;
    *data = p + 1;
}

char *fuzz_strndup(const uint8_t *data, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        abort();
    if (len)
        memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

/* ---- fingerprint ---- */

static void mix(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= c[i];
        *h *= 1099511628211u;   /* FNV-1a */
    }
}

static void mix_str(uint64_t *h, const char *s)
{
    mix(h, s, strlen(s) + 1);
}

static void mix_int(uint64_t *h, int64_t v)
{
    mix(h, &v, sizeof v);
}

static int fp_member(const struct member *m, void *userdata)
{
    uint64_t *h = userdata;
    mix_str(h, m->id);
    mix_str(h, m->name);
    mix_str(h, m->email);
    mix_int(h, m->role);
    mix_int(h, m->valid_from);
    mix_int(h, m->valid_until);
    mix_int(h, m->suspended);
    mix_int(h, m->presence_visible);
    return 0;
}

static int fp_badge(const struct badge *b, void *userdata)
{
    uint64_t *h = userdata;
    mix_str(h, b->uid);
    mix_str(h, b->member_id);
    mix_str(h, b->label);
    mix_int(h, b->revoked);
    mix_int(h, b->revoked_at);
    return 0;
}

static int fp_resource(const struct resource *r, void *userdata)
{
    uint64_t *h = userdata;
    mix_str(h, r->id);
    mix_str(h, r->name);
    mix_int(h, r->kind);
    mix_int(h, r->seats);
    return 0;
}

static int fp_booking(const struct booking *b, void *userdata)
{
    uint64_t *h = userdata;
    mix_int(h, b->id);
    mix_str(h, b->member_id);
    mix_str(h, b->resource_id);
    mix_int(h, b->start);
    mix_int(h, b->end);
    mix_int(h, b->status);
    mix_int(h, b->kind);
    mix_int(h, b->after_hours);
    mix_int(h, b->checked_in_at);
    return 0;
}

static int fp_closure(int ymd, const char *reason, void *userdata)
{
    uint64_t *h = userdata;
    mix_int(h, ymd);
    mix_str(h, reason);
    return 0;
}

uint64_t fuzz_site_fingerprint(struct store *st)
{
    uint64_t h = 14695981039346656037u;
    int64_t v = 0, at = 0;
    must(store_member_foreach(st, fp_member, &h), "members");
    must(store_badge_foreach(st, fp_badge, &h), "badges");
    must(store_resource_foreach(st, fp_resource, &h), "resources");
    must(store_booking_foreach(st, 0, 0, fp_booking, &h), "bookings");
    must(store_closure_foreach(st, fp_closure, &h), "closures");
    must(sync_last_version(st, SYNC_SITE, &v, &at), "site sync version");
    mix_int(&h, v);
    mix_int(&h, at);
    must(sync_last_version(st, SYNC_NETWORK, &v, &at), "network sync version");
    mix_int(&h, v);
    mix_int(&h, at);
    return h;
}

bool fuzz_is_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            return false;
    return true;
}
