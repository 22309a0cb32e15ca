/* The libnfc reader backend: NFC readers libnfc drives (PN532 over UART, I2C or SPI; ACR122 over USB).
 *
 * Every libnfc call blocks: serial reads with timeouts of hundreds of milliseconds, and some (a read
 * inside a driver whose chip went quiet at the wrong moment) that never return. None of that may touch
 * the event loop, so each reader runs in a worker process of its own, forked from the daemon:
 *
 *   worker (child)                             loop side (this process)
 *   - opens the device (under a flock)         - one epoll fd for the loop: the message pipe, the
 *   - polls ISO14443A in select mode, once       worker's pidfd and a timerfd
 *     per poll_ms, waiting out the rest of     - turns messages into reader_report_*()
 *     the period in poll() on its control      - watchdog: a worker inside one libnfc call for more
 *     pipe (interruptible, no CPU)               than WATCHDOG_MS is SIGKILLed and replaced; the only
 *   - checks a held card's presence at most      way out of a read libnfc will not abandon
 *     once per poll_ms                         - restarts a worker that died, with backoff
 *   - sends TAP / REMOVED / ONLINE / OFFLINE
 *     messages through a pipe, stamps each
 *     libnfc call in a shared page
 *
 * A process rather than a thread because a thread stuck in read() cannot be taken back safely; a killed
 * process releases its device, its lock and its memory with it. The worker never returns into the
 * daemon's code: it closes every inherited fd but its two pipes (the SQLite handles included) and ends
 * with _exit(). The daemon may have other threads (the relay guard): the worker only uses libc and
 * libnfc, and glibc keeps malloc and stdio usable in the child of a threaded process; anything else
 * stuck on a lock another thread held at fork() would be stuck inside a stamped call, which the
 * watchdog recovers.
 *
 * Health is reported on changes only, once: OFFLINE when the reader is lost (open fails, an I/O error,
 * the chip stops answering, the device is locked by another process, the worker wedged or died),
 * ONLINE when a poll succeeds again; reopening backs off from 100 ms to 1 s, so a re-plugged reader is
 * back within about a second and a missing one costs one failed open() a second. */
#include "reader_libnfc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nfc/nfc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "reader.h"

#define WATCHDOG_MS 3000u       /* one libnfc call longer than this is a wedged reader */
#define WATCHDOG_CHECK_MS 1000u
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 1000u    /* a re-plugged reader is back within this (plus one open) */
#define STOP_GRACE_MS 1000u     /* a stopping worker finishes its call and closes the device */
#define SOFT_ERRORS_MAX 5       /* consecutive RF-level errors before the reader counts as lost */
/* Consecutive device errors (timeout, I/O error) before the reader counts as lost: one answer read too
 * late by a busy host, or a garbled frame, is not a mute chip; an unplugged one fails again at once. */
#define DEVICE_ERRORS_MAX 2
#define HELD_GRACE_MS 10000u    /* a card held across a loss this short is the same tap */
/* A worker that replaces one that died (a crash inside libnfc on a hostile reply, the watchdog) must live
 * this long before the reader is back in service: a reader that kills every worker is lost once, not
 * "lost" and "back in service" on every restart. */
#define STABLE_AFTER_DEATH_MS 5000u

/* Health details are for one log line: truncating a long path is fine (vsnprintf, unlike snprintf,
 * does not make GCC warn about it). */
static void detailf(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void detailf(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

/* ---- the device lock ---- */

int reader_libnfc_device_path(const char *connstring, char *out, size_t outlen)
{
    if (outlen == 0)
        return -ENAMETOOLONG;
    out[0] = '\0';
    const char *p = strchr(connstring, ':');
    if (!p || p[1] != '/')
        return 0;
    p++;
    size_t n = strcspn(p, ":");
    if (n >= outlen)
        return -ENAMETOOLONG;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* The PID that holds a flock on the file fd is open on, from /proc/locks ("1: FLOCK ADVISORY WRITE PID
 * MAJ:MIN:INODE ..."; MAJ:MIN are the file system's device in hex); 0 if none can be told. */
static pid_t lock_holder(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return 0;
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return 0;
    pid_t holder = 0;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        char kind[16];
        int pid;
        unsigned maj, min;
        unsigned long long ino;
        if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", kind, &pid, &maj, &min, &ino) == 5 &&
            strcmp(kind, "FLOCK") == 0 && maj == major(st.st_dev) && min == minor(st.st_dev) &&
            ino == (unsigned long long)st.st_ino) {
            holder = pid;
            break;
        }
    }
    fclose(f);
    return holder;
}

int reader_libnfc_lock_device(const char *path, pid_t *holder)
{
    *holder = 0;
    char real[PATH_MAX];
    if (!realpath(path, real))
        return -errno;
    /* Read-only is enough for flock, and O_NOCTTY keeps a serial port from becoming our terminal. */
    int fd = open(real, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (err == -EBUSY)
            *holder = lock_holder(fd);
        close(fd);
        return err;
    }
    return fd;
}

/* ---- between the worker and the loop side ---- */

/* Messages (struct reader_libnfc_msg, reader_libnfc.h): one write() of less than PIPE_BUF bytes each, so
 * they never interleave or split. */
_Static_assert(sizeof(struct reader_libnfc_msg) <= PIPE_BUF, "a message is one atomic pipe write");

void reader_libnfc_target_uid(const nfc_target *nt, uint8_t uid[UID_MAX_BYTES], size_t *len)
{
    size_t n = nt->nti.nai.szUidLen;
    if (n > UID_MAX_BYTES)
        n = UID_MAX_BYTES;
    memcpy(uid, nt->nti.nai.abtUid, n);
    *len = n;
}

int reader_libnfc_msg_uid(const struct reader_libnfc_msg *m, char uid[UID_STR_MAX], char raw[UID_MAX_BYTES * 2 + 1])
{
    size_t len = m->uid_len > UID_MAX_BYTES ? UID_MAX_BYTES : m->uid_len;
    raw[0] = '\0';
    if (uid_from_bytes(m->uid, len, uid) == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        snprintf(raw + 2 * i, 3, "%02X", m->uid[i]);
    raw[2 * len] = '\0';
    return -EINVAL;
}

enum nfc_call {
    CALL_NONE,
    CALL_NFC_INIT,
    CALL_OPEN,
    CALL_INIT,
    CALL_SELECT,
    CALL_PRESENCE,
    CALL_CLOSE,
};

static const char *nfc_call_name(enum nfc_call call)
{
    switch (call) {
    case CALL_NONE:
        return "nothing";
    case CALL_NFC_INIT:
        return "nfc_init";
    case CALL_OPEN:
        return "nfc_open";
    case CALL_INIT:
        return "nfc_initiator_init";
    case CALL_SELECT:
        return "nfc_initiator_select_passive_target";
    case CALL_PRESENCE:
        return "nfc_initiator_target_is_present";
    case CALL_CLOSE:
        return "nfc_close";
    }
    return "a libnfc call";
}

/* A page shared by the worker (writes) and the loop side (reads, for the watchdog). */
struct worker_shared {
    _Atomic uint64_t call_started_ms;   /* CLOCK_MONOTONIC; 0 = not inside a libnfc call */
    _Atomic int call;                   /* enum nfc_call */
};

/* ---- the worker process ---- */

/* The card of the last tap, when the reader (or its worker) was lost while it was in the field: if the
 * first poll after the loss finds it again (soon), it was held all along, not tapped again. */
struct held_card {
    bool valid;
    uint8_t uid[UID_MAX_BYTES];
    size_t len;                 /* may be 0: a tap of a malformed UID is a card too (fuzz_pn532) */
    uint64_t lost_ms;
};

enum sent_health {
    SENT_NOTHING,
    SENT_ONLINE,
    SENT_OFFLINE,
};

struct worker {
    const struct reader_config *cfg;
    struct worker_shared *shared;
    int msg_fd;                 /* write end of the message pipe */
    reader_libnfc_msg_cb cb;    /* instead of the pipe (a poller outside a worker process) */
    void *cb_userdata;
    int ctl_fd;                 /* read end of the control pipe: readable or hung up = stop */
    nfc_context *ctx;
    nfc_device *dev;
    int lock_fd;                /* -1: none held */
    enum sent_health sent;
    unsigned backoff_ms;
    int soft_errors;
    int device_errors;
    bool present;               /* the card of the last tap is still in the field */
    struct held_card held;      /* the card present when the reader (or the last worker) was lost */
    nfc_target target;
    uint64_t tapped_ms;
};

static const nfc_modulation iso14443a = {.nmt = NMT_ISO14443A, .nbr = NBR_106};

static void worker_send(struct worker *w, const struct reader_libnfc_msg *m)
{
    if (w->cb) {
        w->cb(m, w->cb_userdata);
        return;
    }
    ssize_t n;
    do
        n = write(w->msg_fd, m, sizeof(*m));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        _exit(0);   /* the daemon is gone (EPIPE): nobody to work for */
}

static void worker_send_health(struct worker *w, enum reader_libnfc_msg_kind kind, const char *detail)
{
    enum sent_health now = kind == READER_LIBNFC_ONLINE ? SENT_ONLINE : SENT_OFFLINE;
    if (w->sent == now)
        return;
    w->sent = now;
    struct reader_libnfc_msg m = {.kind = (uint8_t)kind};
    detailf(m.detail, sizeof(m.detail), "%s", detail);
    worker_send(w, &m);
}

static void worker_send_tap(struct worker *w)
{
    struct reader_libnfc_msg m = {.kind = READER_LIBNFC_TAP};
    size_t len;
    reader_libnfc_target_uid(&w->target, m.uid, &len);
    m.uid_len = (uint8_t)len;
    worker_send(w, &m);
    w->tapped_ms = clock_mono_ms();
}

static void call_begin(struct worker *w, enum nfc_call call)
{
    atomic_store(&w->shared->call, (int)call);
    atomic_store(&w->shared->call_started_ms, clock_mono_ms());
}

static void call_end(struct worker *w)
{
    atomic_store(&w->shared->call_started_ms, 0);
}

/* Waits until deadline (CLOCK_MONOTONIC ms) or until the daemon asks the worker to stop: false then. */
static bool worker_wait_until(struct worker *w, uint64_t deadline)
{
    for (;;) {
        uint64_t now = clock_mono_ms();
        int timeout = deadline > now ? (int)(deadline - now) : 0;
        struct pollfd p = {.fd = w->ctl_fd, .events = POLLIN};
        int n = poll(&p, 1, timeout);
        if (n > 0)
            return false;
        if (n == 0)
            return true;
        if (errno != EINTR)
            return false;
    }
}

static void worker_close_device(struct worker *w)
{
    if (w->dev) {
        call_begin(w, CALL_CLOSE);
        nfc_close(w->dev);
        call_end(w);
        w->dev = NULL;
    }
    if (w->lock_fd >= 0) {
        close(w->lock_fd);
        w->lock_fd = -1;
    }
    w->present = false;
}

/* The reader is lost: close it (reopened after a backoff) and say so once. */
static void worker_lose(struct worker *w, const char *detail)
{
    if (w->present) {
        reader_libnfc_target_uid(&w->target, w->held.uid, &w->held.len);
        w->held.valid = true;
        w->held.lost_ms = clock_mono_ms();
    }
    worker_close_device(w);
    worker_send_health(w, READER_LIBNFC_OFFLINE, detail);
}

static int worker_open(struct worker *w, char *detail, size_t len)
{
    char path[PATH_MAX];
    if (reader_libnfc_device_path(w->cfg->connstring, path, sizeof(path)) < 0) {
        detailf(detail, len, "device path too long in %s", w->cfg->connstring);
        return -1;
    }
    if (path[0]) {
        pid_t holder;
        int fd = reader_libnfc_lock_device(path, &holder);
        if (fd == -EBUSY && holder > 0) {
            detailf(detail, len, "%s in use by another process (PID %d)", path, (int)holder);
            return -1;
        }
        if (fd == -EBUSY) {
            detailf(detail, len, "%s in use by another process", path);
            return -1;
        }
        if (fd == -ENOENT) {
            detailf(detail, len, "no device at %s", path);
            return -1;
        }
        if (fd < 0) {
            detailf(detail, len, "cannot open %s: %s", path, strerror(-fd));
            return -1;
        }
        w->lock_fd = fd;
    }

    nfc_connstring cs;      /* libnfc reads a whole nfc_connstring-sized array */
    snprintf(cs, sizeof(cs), "%s", w->cfg->connstring);
    call_begin(w, CALL_OPEN);
    w->dev = nfc_open(w->ctx, cs);
    call_end(w);
    if (!w->dev) {
        detailf(detail, len, "cannot open %s", w->cfg->connstring);
        worker_close_device(w);
        return -1;
    }
    /* libnfc 1.8 opens a PN532 whose firmware version reply was garbled and leaves it without its list of
     * modulations; the first select then fails an assert() inside libnfc (found by fuzz/fuzz_pn532.c).
     * A device that cannot say it reads ISO14443A is not open: closed, and reopened after the backoff. */
    const nfc_modulation_type *modulations = NULL;
    bool iso14443a_ok = false;
    if (nfc_device_get_supported_modulation(w->dev, N_INITIATOR, &modulations) == 0 && modulations)
        for (size_t i = 0; modulations[i] && !iso14443a_ok; i++)
            iso14443a_ok = modulations[i] == NMT_ISO14443A;
    if (!iso14443a_ok) {
        detailf(detail, len, "cannot initialise %s: the reader did not identify itself", w->cfg->connstring);
        worker_close_device(w);
        return -1;
    }
    call_begin(w, CALL_INIT);
    int r = nfc_initiator_init(w->dev);
    /* Select mode must answer "no card" at once instead of waiting in the chip for one; the wait for
     * the next poll is ours, in poll(), where a stop request can end it. */
    if (r >= 0)
        r = nfc_device_set_property_bool(w->dev, NP_INFINITE_SELECT, false);
    call_end(w);
    if (r < 0) {
        detailf(detail, len, "cannot initialise %s: %s", w->cfg->connstring, nfc_strerror(w->dev));
        worker_close_device(w);
        return -1;
    }
    w->soft_errors = 0;
    w->device_errors = 0;
    w->present = false;
    return 0;
}

/* Errors that say the device itself is gone or not answering, as opposed to one bad RF exchange. */
static bool nfc_error_is_device(int err)
{
    return err == NFC_EIO || err == NFC_ETIMEOUT || err == NFC_ENOTSUCHDEV || err == NFC_ESOFT ||
           err == NFC_EOPABORTED;
}

static const char *nfc_error_text(int err)
{
    switch (err) {
    case NFC_EIO:
        return "input/output error (unplugged?)";
    case NFC_ETIMEOUT:
        return "not answering";
    case NFC_ENOTSUCHDEV:
        return "no such device";
    case NFC_EOPABORTED:
        return "operation aborted";
    case NFC_ESOFT:
        return "software error";
    case NFC_ECHIP:
        return "chip error";
    case NFC_ERFTRANS:
        return "RF transmission error";
    default:
        return "error";
    }
}

/* 0: carry on; -1: the reader is lost. */
static int worker_error(struct worker *w, int err, const char *during)
{
    if (!nfc_error_is_device(err) && ++w->soft_errors < SOFT_ERRORS_MAX)
        return 0;
    if (nfc_error_is_device(err) && ++w->device_errors < DEVICE_ERRORS_MAX)
        return 0;   /* state kept: a held card is checked again next period */
    char detail[160];
    detailf(detail, sizeof(detail), "%s while %s (libnfc %d)", nfc_error_text(err), during, err);
    worker_lose(w, detail);
    return -1;
}

static void worker_online(struct worker *w)
{
    if (w->sent == SENT_ONLINE)
        return;
    char detail[160];
    const char *name = nfc_device_get_name(w->dev);
    if (name && strcmp(name, w->cfg->connstring) != 0)
        detailf(detail, sizeof(detail), "%s on %s", name, w->cfg->connstring);
    else
        detailf(detail, sizeof(detail), "%s", w->cfg->connstring);
    worker_send_health(w, READER_LIBNFC_ONLINE, detail);
    w->backoff_ms = BACKOFF_MIN_MS;
}

/* 0: poll again after the period; -1: the reader is lost. */
static int worker_select(struct worker *w)
{
    nfc_target nt;
    call_begin(w, CALL_SELECT);
    int r = nfc_initiator_select_passive_target(w->dev, iso14443a, NULL, 0, &nt);
    call_end(w);
    if (r < 0)
        return worker_error(w, r, "polling for a card");
    w->soft_errors = 0;
    w->device_errors = 0;
    /* ONLINE after a poll worked, not after nfc_open alone: a device that opens and then fails at
     * once must not flap online/offline in the log. */
    worker_online(w);
    if (w->held.valid) {
        bool same = r > 0 && nt.nti.nai.szUidLen == w->held.len &&
                    memcmp(nt.nti.nai.abtUid, w->held.uid, w->held.len) == 0 &&
                    clock_mono_ms() - w->held.lost_ms <= HELD_GRACE_MS;
        w->held.valid = false;
        if (same) {
            w->target = nt;
            w->present = true;
            return 0;
        }
        struct reader_libnfc_msg m = {.kind = READER_LIBNFC_REMOVED};    /* it left while the reader was away */
        worker_send(w, &m);
    }
    if (r > 0) {
        w->target = nt;
        w->present = true;
        worker_send_tap(w);
    }
    return 0;
}

/* 0: still there, check again after the period; 1: gone, poll for the next card now; -1: lost. */
static int worker_check_presence(struct worker *w)
{
    call_begin(w, CALL_PRESENCE);
    int r = nfc_initiator_target_is_present(w->dev, &w->target);
    if (r == NFC_EDEVNOTSUPP) {
        /* A card type libnfc has no ping for: select it again by its UID. */
        nfc_target nt;
        r = nfc_initiator_select_passive_target(w->dev, iso14443a, w->target.nti.nai.abtUid,
                                                w->target.nti.nai.szUidLen, &nt);
        r = r > 0 ? NFC_SUCCESS : r == 0 ? NFC_ETGRELEASED : r;
    }
    call_end(w);
    if (r == NFC_SUCCESS) {
        w->soft_errors = 0;
        w->device_errors = 0;
        uint64_t rearm_ms = (uint64_t)w->cfg->rearm_s * 1000u;
        if (rearm_ms && clock_mono_ms() - w->tapped_ms >= rearm_ms)
            worker_send_tap(w);
        return 0;
    }
    if (nfc_error_is_device(r))
        return worker_error(w, r, "checking a card's presence");
    /* Released, or an RF error from a card leaving the field mid-exchange. libnfc also says "released"
     * when its re-select of a MIFARE Classic timed out, which a host too busy to read the answer in
     * time can cause: confirm with one select, so a busy moment is not a removal and a second decision.
     * A select of any card, not a select by UID: a chip that misreports a UID (a UID field longer than
     * 10 bytes, which libnfc 1.8 folds into a made-up 10-byte one) never answers a select by that UID,
     * and each poll would be a removal and a new tap, a denial every period (reader_hostile.sh,
     * uidlong). And any card that answers counts, whatever its UID: the field was never seen empty. A
     * chip that completes a short UID field from stale memory (libnfc 1.8 copies what its buffer held
     * past the frame: uidshort) gives another UID at every select and would otherwise tap at every
     * poll. The cost: a second card put down as the first one leaves, with no empty poll between, is
     * read only when presented again. */
    nfc_target nt;
    call_begin(w, CALL_SELECT);
    int again = nfc_initiator_select_passive_target(w->dev, iso14443a, NULL, 0, &nt);
    call_end(w);
    if (again > 0) {
        w->target = nt;
        return 0;
    }
    if (again < 0 && nfc_error_is_device(again))
        return worker_error(w, again, "checking a card's presence");
    w->present = false;
    struct reader_libnfc_msg m = {.kind = READER_LIBNFC_REMOVED};
    worker_send(w, &m);
    return 1;
}

/* One turn of the worker's loop: (re)open the device if it is closed, else poll once. Returns when the
 * next turn is due (CLOCK_MONOTONIC ms; 0 = at once). */
static uint64_t worker_step(struct worker *w)
{
    const uint64_t period = (uint64_t)w->cfg->poll_ms;
    if (!w->dev) {
        char detail[160];
        if (worker_open(w, detail, sizeof(detail)) < 0) {
            worker_send_health(w, READER_LIBNFC_OFFLINE, detail);
            uint64_t next = clock_mono_ms() + w->backoff_ms;
            w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
            return next;
        }
    }
    uint64_t started = clock_mono_ms();
    int r = w->present ? worker_check_presence(w) : worker_select(w);
    uint64_t next = started + period;
    if (r < 0) {
        next = clock_mono_ms() + w->backoff_ms;
        w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
    } else if (r > 0) {
        next = 0;   /* the card left: look for the next one at once */
    }
    return next;
}

static void worker_loop(struct worker *w)
{
    w->backoff_ms = BACKOFF_MIN_MS;
    while (worker_wait_until(w, worker_step(w)))
        ;
}

/* ---- the worker's steps without a worker process (reader_libnfc.h) ---- */

struct reader_libnfc_poller {
    struct worker w;
    struct worker_shared shared;    /* call stamps nobody watches */
};

struct reader_libnfc_poller *reader_libnfc_poller_new(const struct reader_config *cfg, nfc_context *ctx,
                                                      reader_libnfc_msg_cb cb, void *userdata)
{
    struct reader_libnfc_poller *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->w = (struct worker){
        .cfg = cfg,
        .shared = &p->shared,
        .msg_fd = -1,
        .cb = cb,
        .cb_userdata = userdata,
        .ctx = ctx,
        .lock_fd = -1,
        .backoff_ms = BACKOFF_MIN_MS,
    };
    return p;
}

uint64_t reader_libnfc_poller_step(struct reader_libnfc_poller *p)
{
    return worker_step(&p->w);
}

bool reader_libnfc_poller_is_open(const struct reader_libnfc_poller *p)
{
    return p->w.dev != NULL;
}

void reader_libnfc_poller_free(struct reader_libnfc_poller *p)
{
    if (!p)
        return;
    worker_close_device(&p->w);
    free(p);
}

/* Pins the worker to one CPU. A paced serial reply wakes the worker once per byte; unpinned, most of
 * those wake-ups moved it to another core (the one that ran the tty's work), which doubled its idle CPU
 * on the build machines (docs/readers.md). A CPU the daemon may not use is a warning, not a failure:
 * the same configuration must work on a board with fewer cores. */
static void worker_pin(const struct reader_config *cfg)
{
    cpu_set_t allowed;
    if (cfg->cpu == READER_CPU_ANY || sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
        return;
    int cpu = cfg->cpu;
    if (cpu == READER_CPU_LAST)
        for (cpu = CPU_SETSIZE - 1; cpu >= 0 && !CPU_ISSET(cpu, &allowed); cpu--)
            ;
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
        log_warn("reader %s: cpu = %d is not one this daemon may run on; the reader is not pinned",
                 cfg->name, cfg->cpu);
        return;
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof(one), &one) < 0)
        log_warn("reader %s: could not pin the reader to CPU %d: %s", cfg->name, cpu, strerror(errno));
}

/* Closes every fd from 3 up except keep_a and keep_b. */
static void close_other_fds(int keep_a, int keep_b)
{
    unsigned lo = (unsigned)(keep_a < keep_b ? keep_a : keep_b);
    unsigned hi = (unsigned)(keep_a < keep_b ? keep_b : keep_a);
    if (lo > 3)
        close_range(3, lo - 1, 0);
    if (hi > lo + 1)
        close_range(lo + 1, hi - 1, 0);
    close_range(hi + 1, ~0u, 0);
}

static _Noreturn void worker_main(const struct reader_config *cfg, struct worker_shared *shared, int msg_fd,
                                  int ctl_fd, pid_t daemon_pid, const struct held_card *held)
{
    /* Die with the daemon; leave the daemon's signals to the daemon (a Ctrl-C reaches the whole
     * process group: the daemon stops its workers itself). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != daemon_pid)
        _exit(0);
    close_other_fds(msg_fd, ctl_fd);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char comm[16];
    detailf(comm, sizeof(comm), "nfc:%s", cfg->name);    /* the kernel keeps 15 characters */
    prctl(PR_SET_NAME, comm);
    worker_pin(cfg);

    /* libnfc prints its errors to stderr, our log: one line per failed open, every second, while a
     * reader is unplugged. Quiet unless asked for (LIBNFC_LOG_LEVEL=3 dumps every frame). */
    setenv("LIBNFC_LOG_LEVEL", "0", 0);
    struct worker w = {
        .cfg = cfg,
        .shared = shared,
        .msg_fd = msg_fd,
        .ctl_fd = ctl_fd,
        .lock_fd = -1,
        .held = *held,
    };
    call_begin(&w, CALL_NFC_INIT);
    nfc_init(&w.ctx);
    call_end(&w);
    if (!w.ctx) {
        worker_send_health(&w, READER_LIBNFC_OFFLINE, "libnfc could not start (nfc_init failed)");
        _exit(1);
    }
    worker_loop(&w);
    worker_close_device(&w);
    nfc_exit(w.ctx);
    _exit(0);
}

/* ---- the loop side ---- */

enum nfc_source {
    SOURCE_MESSAGES = 1,
    SOURCE_WORKER_EXIT,
    SOURCE_TIMER,
};

enum nfc_health {
    HEALTH_UNKNOWN,
    HEALTH_ONLINE,
    HEALTH_OFFLINE,
};

struct nfc_reader {
    struct reader *r;
    int epfd;                   /* what the loop watches */
    int timerfd;                /* watchdog checks while a worker runs; its restart while none does */
    struct worker_shared *shared;
    pid_t pid;                  /* 0: no worker */
    int pidfd;
    int msg_fd;                 /* -1 once the worker's end is closed */
    int ctl_fd;                 /* closing it asks the worker to stop */
    bool killed;                /* by the watchdog: its OFFLINE is already reported */
    unsigned restart_backoff_ms;
    enum nfc_health health;
    bool worker_died;           /* since the reader was last in service */
    bool online_pending;        /* the worker after a death says ONLINE: reported at online_at */
    uint64_t online_at;
    char online_detail[180];    /* the ONLINE message's detail */
    /* The card of the last tap until its removal is reported. A worker that dies while it is held (a
     * crash inside libnfc, the watchdog) hands it to the next one: a card held across a restart is one
     * tap, not one decision per restart (tests/integration/reader_hostile.sh, nad). */
    struct held_card card;
    uint8_t partial[sizeof(struct reader_libnfc_msg)];
    size_t partial_len;
};

static int arm_timer(struct nfc_reader *nr, unsigned first_ms, unsigned every_ms)
{
    struct itimerspec its = {
        .it_value = {.tv_sec = first_ms / 1000, .tv_nsec = (long)(first_ms % 1000) * 1000000L},
        .it_interval = {.tv_sec = every_ms / 1000, .tv_nsec = (long)(every_ms % 1000) * 1000000L},
    };
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;   /* zero would disarm */
    return timerfd_settime(nr->timerfd, 0, &its, NULL) < 0 ? -errno : 0;
}

static int epoll_add(int epfd, int fd, enum nfc_source source)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = source};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void set_health(struct nfc_reader *nr, enum nfc_health health, const char *detail)
{
    if (nr->health == health)
        return;
    nr->health = health;
    reader_report_health(nr->r, health == HEALTH_ONLINE ? READER_ONLINE : READER_OFFLINE, detail);
}

static void handle_message(struct nfc_reader *nr, const struct reader_libnfc_msg *m)
{
    char detail[sizeof(m->detail)];
    memcpy(detail, m->detail, sizeof(detail));
    detail[sizeof(detail) - 1] = '\0';
    switch (m->kind) {
    case READER_LIBNFC_TAP: {
        char uid[UID_STR_MAX];
        char raw[UID_MAX_BYTES * 2 + 1];
        nr->card.valid = true;
        nr->card.len = m->uid_len > UID_MAX_BYTES ? UID_MAX_BYTES : m->uid_len;
        memcpy(nr->card.uid, m->uid, nr->card.len);
        if (reader_libnfc_msg_uid(m, uid, raw) == 0)
            reader_report_tap(nr->r, uid);
        else
            reader_report_problem(nr->r, -EINVAL, raw);
        break;
    }
    case READER_LIBNFC_REMOVED:
        nr->card.valid = false;
        reader_report_removed(nr->r);
        break;
    case READER_LIBNFC_ONLINE:
        if (nr->worker_died) {
            /* confirmed by timer_fired once this worker has lived STABLE_AFTER_DEATH_MS */
            nr->online_pending = true;
            nr->online_at = clock_mono_ms() + STABLE_AFTER_DEATH_MS;
            detailf(nr->online_detail, sizeof(nr->online_detail), "%s", detail);
            break;
        }
        nr->restart_backoff_ms = BACKOFF_MIN_MS;
        set_health(nr, HEALTH_ONLINE, detail);
        break;
    case READER_LIBNFC_OFFLINE:
        nr->online_pending = false;
        set_health(nr, HEALTH_OFFLINE, detail);
        break;
    default:
        break;  /* a byte value from the pipe, not one of our enum constants */
    }
}

static void read_messages(struct nfc_reader *nr)
{
    while (nr->msg_fd >= 0) {
        ssize_t n = read(nr->msg_fd, nr->partial + nr->partial_len, sizeof(nr->partial) - nr->partial_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;     /* EAGAIN: all read */
        if (n == 0) {
            /* The worker's end closed (it exited): stop watching, or EOF would wake the loop forever
             * until the pidfd reports the exit. */
            epoll_ctl(nr->epfd, EPOLL_CTL_DEL, nr->msg_fd, NULL);
            close(nr->msg_fd);
            nr->msg_fd = -1;
            nr->partial_len = 0;
            return;
        }
        nr->partial_len += (size_t)n;
        if (nr->partial_len == sizeof(nr->partial)) {
            struct reader_libnfc_msg m;
            memcpy(&m, nr->partial, sizeof(m));
            nr->partial_len = 0;
            handle_message(nr, &m);
        }
    }
}

static int spawn_worker(struct nfc_reader *nr)
{
    int msg[2], ctl[2];
    if (pipe2(msg, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(ctl, O_CLOEXEC) < 0) {
        int err = -errno;
        close(msg[0]);
        close(msg[1]);
        return err;
    }
    atomic_store(&nr->shared->call_started_ms, 0);
    pid_t daemon_pid = getpid();
    pid_t pid = fork();
    if (pid == 0)
        worker_main(&nr->r->cfg, nr->shared, msg[1], ctl[0], daemon_pid, &nr->card);
    int err = pid < 0 ? -errno : 0;
    close(msg[1]);
    close(ctl[0]);
    if (err < 0) {
        close(msg[0]);
        close(ctl[1]);
        return err;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        err = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(msg[0]);
        close(ctl[1]);
        return err;
    }
    fcntl(msg[0], F_SETFL, O_NONBLOCK);
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    nr->pid = pid;
    nr->pidfd = pidfd;
    nr->msg_fd = msg[0];
    nr->ctl_fd = ctl[1];
    nr->killed = false;
    nr->partial_len = 0;
    if ((err = epoll_add(nr->epfd, nr->msg_fd, SOURCE_MESSAGES)) < 0 ||
        (err = epoll_add(nr->epfd, nr->pidfd, SOURCE_WORKER_EXIT)) < 0 ||
        (err = arm_timer(nr, WATCHDOG_CHECK_MS, WATCHDOG_CHECK_MS)) < 0)
        return err;     /* the caller stops this worker */
    return 0;
}

static void close_worker_fds(struct nfc_reader *nr)
{
    if (nr->msg_fd >= 0)
        close(nr->msg_fd);
    if (nr->ctl_fd >= 0)
        close(nr->ctl_fd);
    if (nr->pidfd >= 0)
        close(nr->pidfd);
    nr->msg_fd = nr->ctl_fd = nr->pidfd = -1;
    nr->pid = 0;
}

/* The worker exited (pidfd readable): take its last messages, reap it, schedule the next one. */
static void worker_exited(struct nfc_reader *nr)
{
    int status;
    pid_t got = waitpid(nr->pid, &status, WNOHANG);
    if (got == 0)
        return;
    read_messages(nr);
    if (nr->card.valid)
        nr->card.lost_ms = clock_mono_ms();
    nr->worker_died = true;
    nr->online_pending = false;
    if (!nr->killed) {
        char detail[96];
        if (got > 0 && WIFSIGNALED(status))
            detailf(detail, sizeof(detail), "reader worker killed by signal %s; restarting",
                     sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
        else if (got > 0)
            detailf(detail, sizeof(detail), "reader worker exited with status %d; restarting",
                     WEXITSTATUS(status));
        else
            detailf(detail, sizeof(detail), "reader worker lost; restarting");
        set_health(nr, HEALTH_OFFLINE, detail);
    }
    close_worker_fds(nr);
    arm_timer(nr, nr->restart_backoff_ms, 0);
    nr->restart_backoff_ms =
        nr->restart_backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : nr->restart_backoff_ms * 2;
}

static void stop_worker(struct nfc_reader *nr)
{
    if (!nr->pid) {
        close_worker_fds(nr);
        return;
    }
    close(nr->ctl_fd);          /* the worker sees the hang-up between calls */
    nr->ctl_fd = -1;
    struct pollfd p = {.fd = nr->pidfd, .events = POLLIN};
    if (poll(&p, 1, (int)STOP_GRACE_MS) <= 0) {
        kill(nr->pid, SIGKILL);
        poll(&p, 1, (int)STOP_GRACE_MS);
    }
    waitpid(nr->pid, NULL, WNOHANG);
    close_worker_fds(nr);
}

static void timer_fired(struct nfc_reader *nr)
{
    uint64_t expirations;
    if (read(nr->timerfd, &expirations, sizeof(expirations)) < 0)
        return;
    if (!nr->pid) {
        int err = spawn_worker(nr);
        if (err < 0) {
            char detail[96];
            detailf(detail, sizeof(detail), "cannot start the reader worker: %s", strerror(-err));
            set_health(nr, HEALTH_OFFLINE, detail);
            stop_worker(nr);
            arm_timer(nr, BACKOFF_MAX_MS, 0);
        }
        return;
    }
    if (nr->killed)
        return;     /* waiting for the pidfd */
    if (nr->online_pending && clock_mono_ms() >= nr->online_at) {
        nr->online_pending = false;
        nr->worker_died = false;
        nr->restart_backoff_ms = BACKOFF_MIN_MS;
        set_health(nr, HEALTH_ONLINE, nr->online_detail);
    }
    uint64_t started = atomic_load(&nr->shared->call_started_ms);
    if (!started || clock_mono_ms() - started <= WATCHDOG_MS)
        return;
    /* A read libnfc will not give up: only killing the process gets the device back. */
    enum nfc_call call = (enum nfc_call)atomic_load(&nr->shared->call);
    char detail[128];
    detailf(detail, sizeof(detail), "stuck in %s for more than %u s; reader worker restarted",
             nfc_call_name(call), WATCHDOG_MS / 1000);
    kill(nr->pid, SIGKILL);
    nr->killed = true;
    set_health(nr, HEALTH_OFFLINE, detail);
}

static void libnfc_close(struct reader *r);

static int libnfc_open(struct reader *r, const struct reader_config *cfg)
{
    struct nfc_reader *nr = calloc(1, sizeof(*nr));
    if (!nr)
        return -ENOMEM;
    nr->r = r;
    nr->msg_fd = nr->ctl_fd = nr->pidfd = nr->epfd = nr->timerfd = -1;
    nr->restart_backoff_ms = BACKOFF_MIN_MS;
    r->backend = nr;
    int err = 0;
    nr->shared = mmap(NULL, sizeof(*nr->shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (nr->shared == MAP_FAILED) {
        nr->shared = NULL;
        err = -errno;
    }
    if (err == 0 && (nr->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        err = -errno;
    if (err == 0 && (nr->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
        err = -errno;
    if (err == 0)
        err = epoll_add(nr->epfd, nr->timerfd, SOURCE_TIMER);
    if (err == 0)
        err = spawn_worker(nr);
    if (err < 0) {
        libnfc_close(r);
        return err;
    }
    return 0;
}

static int libnfc_fd(struct reader *r)
{
    struct nfc_reader *nr = r->backend;
    return nr->epfd;
}

static int libnfc_dispatch(struct reader *r)
{
    struct nfc_reader *nr = r->backend;
    struct epoll_event events[4];
    int n = epoll_wait(nr->epfd, events, 4, 0);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        switch ((enum nfc_source)events[i].data.u32) {
        case SOURCE_MESSAGES:
            read_messages(nr);
            break;
        case SOURCE_WORKER_EXIT:
            if (nr->pid)
                worker_exited(nr);
            break;
        case SOURCE_TIMER:
            timer_fired(nr);
            break;
        }
    }
    return 0;
}

static void libnfc_close(struct reader *r)
{
    struct nfc_reader *nr = r->backend;
    if (!nr)
        return;
    stop_worker(nr);
    if (nr->timerfd >= 0)
        close(nr->timerfd);
    if (nr->epfd >= 0)
        close(nr->epfd);
    if (nr->shared)
        munmap(nr->shared, sizeof(*nr->shared));
    free(nr);
    r->backend = NULL;
}

const struct reader_backend_ops reader_libnfc_ops = {
    .name = "libnfc",
    .open = libnfc_open,
    .fd = libnfc_fd,
    .dispatch = libnfc_dispatch,
    .close = libnfc_close,
};
