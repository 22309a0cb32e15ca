/* The PN532 frames the libnfc reader backend receives, from a hostile or broken reader
 * (docs/reliability.md "A hostile or broken reader").
 *
 * The REAL libnfc (Debian's libnfc 1.8, pn532_uart driver) talks to a pseudo-terminal; a thread of this
 * harness holds the pty's master and answers every command frame libnfc writes from the fuzz input. The
 * code under test is the reader worker's own (src/reader_libnfc.c, through reader_libnfc.h): device lock,
 * nfc_open, nfc_initiator_init, NP_INFINITE_SELECT off, ISO14443A selects, presence checks, the held-card
 * and error-counting state, and the daemon's reading of a tap (UID length and bytes to a normalised UID).
 * libnfc itself is Debian's binary, not instrumented: libFuzzer gets no coverage from inside it and ASan
 * sees only its calls into intercepted functions (memcpy, malloc'd memory), not its stack.
 *
 * The input is a sequence of records, one per reply. Each command frame libnfc sends takes the next
 * record; so does a libnfc left waiting for more bytes (the main thread blocked in select() with nothing
 * unread on the pty: the rest of a truncated or split reply). A record is a control byte and its bytes:
 *
 *   kind = control & 0x0F
 *   0-3   AUTO       the answer a real PN532 gives (echo for Diagnose, 32 01 06 07 for the firmware, one
 *                    byte a register, status 00 for In* commands); for InListPassiveTarget one more byte
 *                    chooses: no card, or a card (4, 7 or 10-byte UID from the input; classic, Ultralight
 *                    or DESFire), re-select by UID answered with the same card
 *   4-9   VALID      ACK + a correct normal frame carrying N bytes (N = next byte) of the input
 *   10    EXTENDED   ACK + a correct extended frame, N = next two bytes (big endian) mod 512
 *   11    DEFECT     ACK + a frame of N bytes with one defect (next byte): bad LCS, bad DCS, wrong TFI,
 *                    wrong response code, no postamble, LEN 0 or 1, extended with a bad LCS
 *   12    ACKERR     no ACK but a NACK, a corrupted ACK, an error frame, or an ACK then an error frame
 *   13    RAW        N bytes of the input as they are
 *   14    TRUNCATED  ACK + a correct frame of N bytes, cut after K bytes (K = next byte): libnfc waits for
 *                    the rest, which the next record provides (or the hang-up)
 *   15    TRAILING   ACK + a correct frame of N bytes + M more raw bytes (M = next byte, then the bytes)
 *
 * When the input runs out the harness closes the master: libnfc gets EIO at once instead of waiting out
 * its timeouts (hundreds of ms), so an execution costs milliseconds. libnfc's 50 ms sleep before each
 * flush of the serial input is shortened (nanosleep is defined here, ahead of libc's, for libnfc's calls).
 *
 * Known libnfc 1.8 crashes, reached within seconds, are steered around so that the run goes on to find
 * new ones (FUZZ_PN532_LIBNFC_BUGS=1 in the environment turns this off to see them):
 *   - a status byte with bit 7 (NAD) in the reply to InDataExchange, InCommunicateThru, InSelect,
 *     PowerDown and the other commands pn53x_transceive() checks: abort();
 *   - an empty reply to one of those: the status byte read is stale memory, bit 7 or bit 6 (MI: an empty
 *     follow-up then memcpy()s (size_t)-1 bytes);
 *   - an InListPassiveTarget reply with an ATS length byte 0: memcpy() of (size_t)-1 bytes
 *     (pn53x_decode_target_data).
 * They kill the reader's worker process, which the daemon restarts (tests/integration/reader_hostile.sh).
 *
 * Invariants checked besides the sanitizers: a tap only after a well-formed InListPassiveTarget reply with
 * a target went out since the last select command (garbage is never a tap); taps and removals alternate;
 * every descriptor opened for an input is closed after it (the worker reopens its device for ever).
 *
 * Seeds (fuzz/corpus/fuzz_pn532/) are the replies of a real session with the emulated PN532
 * (tests/rigs/pn532_emu, LIBNFC_LOG_LEVEL=3): FUZZ_PN532_WRITE_SEEDS=DIR writes them and exits. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <nfc/nfc.h>

#include "fuzz.h"
#include "reader_libnfc.h"

#define MAX_STEPS 64            /* worker loop turns an input may take */
#define MAX_PAYLOAD 511         /* more than libnfc's 264-byte receive buffer */
#define IDLE_POLL_NS 100000L   /* how often the serving thread looks whether libnfc waits for bytes */
#define HISTORY 4096

/* ---- libnfc's sleeps ---- */

static atomic_bool fast_sleep;

/* libnfc sleeps 50 ms before it flushes the serial input after every error, and once in nfc_open, so that
 * late bytes arrive first. Here nothing comes late: the serving thread writes a whole reply in one write()
 * before libnfc reads its first byte, and the flush (tcflush, which also empties the pty's pending buffer)
 * discards all that is left of it. The sleep is skipped. */
int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (atomic_load(&fast_sleep))
        return 0;
    int err = clock_nanosleep(CLOCK_MONOTONIC, 0, req, rem);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* ---- feedback from inside libnfc ----
 * libnfc is not instrumented, but it logs nearly every branch it takes on a reply (each error, each kind of
 * presence check, each chip status), and Debian's build logs through __vfprintf_chk, which it calls through
 * its PLT: defined here, it sees each message libnfc would print at LIBNFC_LOG_LEVEL=3. Each pair of
 * consecutive log sites (the format string; for "%s", the string) is one of libFuzzer's extra counters, so
 * an input that takes libnfc down a new path is kept. */

static bool trace;  /* FUZZ_PN532_TRACE: print the worker's messages and libnfc's log */
static __attribute__((section("__libfuzzer_extra_counters"))) uint8_t libnfc_paths[1 << 12];
static uintptr_t libnfc_base, libnfc_end;    /* libnfc's image in memory */
static uintptr_t last_site;

static bool in_libnfc(const void *p)
{
    return (uintptr_t)p >= libnfc_base && (uintptr_t)p < libnfc_end;
}

/* The address range of libnfc's mappings (<link.h>'s dl_iterate_phdr is out of reach: our src/link.h
 * shadows it). */
static void find_libnfc(void)
{
    char line[512], name[512] = "";
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int pass = 0; pass < 2; pass++) {     /* the file nfc_init is in, then all of its mappings */
        FILE *f = fopen("/proc/self/maps", "re");
        if (!f)
            return;
        while (fgets(line, sizeof(line), f)) {
            unsigned long start, end;
            char *path = strchr(line, '/');
            if (!path || sscanf(line, "%lx-%lx", &start, &end) != 2)
                continue;
            path[strcspn(path, "\n")] = '\0';
            if (pass == 0 && (uintptr_t)nfc_init >= start && (uintptr_t)nfc_init < end)
                snprintf(name, sizeof(name), "%s", path);
            if (pass == 1 && strcmp(path, name) == 0) {
                lo = start < lo ? start : lo;
                hi = end > hi ? end : hi;
            }
        }
        fclose(f);
        if (!name[0])
            return;
    }
    if (hi > lo) {
        libnfc_base = lo;
        libnfc_end = hi;
    }
}

int __vfprintf_chk(FILE *fp, int flag, const char *format, va_list ap) __attribute__((format(printf, 3, 0)));
int __vfprintf_chk(FILE *fp, int flag, const char *format, va_list ap)
{
    if (in_libnfc(__builtin_return_address(0))) {
        uintptr_t site = (uintptr_t)format;
        if (strcmp(format, "%s") == 0) {
            va_list copy;
            va_copy(copy, ap);
            const char *text = va_arg(copy, const char *);
            va_end(copy);
            /* a message of libnfc's own (in its image), not a frame dump built on the stack */
            if (in_libnfc(text))
                site = (uintptr_t)text;
        }
        if (strcmp(format, "%s\t%s\t") != 0 && strcmp(format, "\n") != 0) {
            size_t i = ((site - libnfc_base) * 31 + (last_site - libnfc_base)) % sizeof(libnfc_paths);
            if (libnfc_paths[i] < 255)
                libnfc_paths[i]++;
            last_site = site;
        }
        if (!trace)
            return 0;
    }
    (void)flag;
    return vfprintf(fp, format, ap);
}

/* ---- PN532 framing ---- */

enum {
    CMD_DIAGNOSE = 0x00,
    CMD_GET_FIRMWARE_VERSION = 0x02,
    CMD_READ_REGISTER = 0x06,
    CMD_POWER_DOWN = 0x16,
    CMD_IN_DATA_EXCHANGE = 0x40,
    CMD_IN_COMMUNICATE_THRU = 0x42,
    CMD_IN_LIST_PASSIVE_TARGET = 0x4A,
};

static const uint8_t ack_frame[] = {0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00};
static const uint8_t nack_frame[] = {0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00};
static const uint8_t error_frame[] = {0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00};

/* Commands whose reply status byte pn53x_transceive() reads (and abort()s on when it has bit 7). */
static bool status_checked(uint8_t cmd)
{
    switch (cmd) {
    case 0x16: case 0x40: case 0x42: case 0x46: case 0x4E: case 0x50: case 0x54: case 0x56:
    case 0x86: case 0x88: case 0x8E: case 0x90: case 0x92: case 0x94:
        return true;
    default:
        return false;
    }
}

struct buf {
    uint8_t b[2 * MAX_PAYLOAD + 64];
    size_t n;
};

static void put(struct buf *o, const uint8_t *p, size_t len)
{
    if (len > sizeof(o->b) - o->n)
        len = sizeof(o->b) - o->n;
    memcpy(o->b + o->n, p, len);
    o->n += len;
}

static void put1(struct buf *o, uint8_t v)
{
    put(o, &v, 1);
}

/* A well-formed information frame from the chip: D5, code, payload; extended when asked or too long. */
static void put_frame(struct buf *o, uint8_t code, const uint8_t *p, size_t len, bool extended)
{
    size_t body = len + 2;
    put(o, (const uint8_t[]){0x00, 0x00, 0xFF}, 3);
    if (extended || body > 0xFF) {
        put(o, (const uint8_t[]){0xFF, 0xFF, (uint8_t)(body >> 8), (uint8_t)body,
                                 (uint8_t)(0x100 - (((body >> 8) + body) & 0xFF))}, 5);
    } else {
        put1(o, (uint8_t)body);
        put1(o, (uint8_t)(0x100 - body));
    }
    uint8_t sum = (uint8_t)(0xD5 + code);
    put1(o, 0xD5);
    put1(o, code);
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    put(o, p, len);
    put1(o, (uint8_t)(0x100 - sum));
    put1(o, 0x00);
}

/* The frame starting at b[i], if it is a well-formed chip frame as libnfc's pn532_uart_receive() reads
 * one: its total length, and where its payload (after D5 and the code) is. 0 if it is not one. */
static size_t frame_at(const uint8_t *b, size_t n, size_t i, size_t *payload, size_t *plen)
{
    if (n - i < 5 || b[i] != 0x00 || b[i + 1] != 0x00 || b[i + 2] != 0xFF)
        return 0;
    size_t hdr, body;
    if (b[i + 3] == 0xFF && b[i + 4] == 0xFF) {
        if (n - i < 8 || ((b[i + 5] + b[i + 6] + b[i + 7]) & 0xFF) != 0)
            return 0;
        hdr = 8;
        body = (size_t)b[i + 5] << 8 | b[i + 6];
    } else {
        if (b[i + 3] + b[i + 4] != 0x100)
            return 0;
        hdr = 5;
        body = b[i + 3];
    }
    if (body < 2 || n - i < hdr + body + 2 || b[i + hdr] != 0xD5)
        return 0;
    uint8_t sum = 0;
    for (size_t k = 0; k <= body; k++)
        sum = (uint8_t)(sum + b[i + hdr + k]);
    if (sum != 0 || b[i + hdr + body + 1] != 0x00)
        return 0;
    *payload = i + hdr + 2;
    *plen = body - 2;
    return hdr + body + 2;
}

/* ---- one session: a pty, a thread serving it, the input ---- */

struct session {
    const uint8_t *data;
    size_t size;
    size_t pos;
    int master;
    int slave;                  /* ours, never read: how much input the pty holds for libnfc */
    char path[64];
    pid_t libnfc_tid;
    pthread_t thread;
    atomic_bool done;           /* the main thread is through with libnfc */
    atomic_bool hung_up;
    bool keep_bugs;
    /* host frames being parsed */
    uint8_t rx[1024];
    size_t rx_len;
    uint8_t cmd;                /* the last command received */
    uint8_t cmd_data[300];
    size_t cmd_len;
    /* what went out since that command, for the defusing and the tap invariant */
    uint8_t sent[HISTORY];
    size_t sent_len;
    atomic_bool target_sent;    /* a well-formed InListPassiveTarget reply with NbTg >= 1 */
    /* invariants on the worker's messages (main thread only) */
    int taps;
    int removals;
};

static int input_byte(struct session *s)
{
    return s->pos < s->size ? s->data[s->pos++] : -1;
}

static size_t input_bytes(struct session *s, size_t want, const uint8_t **p)
{
    size_t n = s->size - s->pos < want ? s->size - s->pos : want;
    *p = s->data + s->pos;
    s->pos += n;
    return n;
}

static void hang_up(struct session *s)
{
    if (s->master >= 0) {
        close(s->master);
        s->master = -1;
    }
    atomic_store(&s->hung_up, true);
}

/* Makes the bytes about to be sent harmless to libnfc's known crashes (see the top), in place where the
 * frame lies in them; false when a known crash cannot be patched away (the caller hangs up instead). */
static bool defuse(struct session *s, struct buf *out)
{
    uint8_t all[HISTORY + sizeof(out->b)];
    size_t old = s->sent_len;
    memcpy(all, s->sent, old);
    memcpy(all + old, out->b, out->n);
    size_t n = old + out->n;
    bool safe = true;
    for (size_t i = 0; i < n; i++) {
        size_t pay, plen, len = frame_at(all, n, i, &pay, &plen);
        if (!len || i + len <= old)
            continue;
        uint8_t cmd = (uint8_t)(all[pay - 1] - 1);
        size_t fix = SIZE_MAX;
        uint8_t value = 0;
        if (cmd == CMD_IN_LIST_PASSIVE_TARGET && plen >= 6 && all[pay] != 0) {
            size_t uid_len = all[pay + 5];
            if (plen > uid_len + 6 && all[pay + 6 + uid_len] == 0) {
                atomic_store(&s->target_sent, true);
                if (s->keep_bugs)
                    continue;
                fix = pay + 6 + uid_len;
                value = 1;
            }
        }
        if (!s->keep_bugs && status_checked(cmd)) {
            if (plen == 0) {
                safe = false;
                continue;
            }
            if (all[pay] & 0x80) {
                fix = pay;
                value = all[pay] & 0x7F;
            }
        }
        if (fix == SIZE_MAX)
            continue;
        if (fix < old) {
            safe = false;
            continue;
        }
        all[fix] = value;
        uint8_t sum = 0;
        for (size_t k = pay - 2; k < pay + plen; k++)
            sum = (uint8_t)(sum + all[k]);
        size_t dcs = pay + plen;
        if (dcs < old) {
            safe = false;
            continue;
        }
        all[dcs] = (uint8_t)(0x100 - sum);
        out->b[fix - old] = all[fix];
        out->b[dcs - old] = all[dcs];
    }
    /* The tap invariant: a target in a frame libnfc would take for the select's answer. */
    for (size_t i = 0; i < n; i++) {
        size_t pay, plen, len = frame_at(all, n, i, &pay, &plen);
        if (len && all[pay - 1] == CMD_IN_LIST_PASSIVE_TARGET + 1 && plen >= 1 && all[pay] != 0)
            atomic_store(&s->target_sent, true);
    }
    return safe;
}

static void send_out(struct session *s, struct buf *out)
{
    if (s->master < 0 || out->n == 0)
        return;
    if (!defuse(s, out)) {
        hang_up(s);
        return;
    }
    size_t off = 0;
    while (off < out->n) {
        ssize_t w = write(s->master, out->b + off, out->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = s->master, .events = POLLOUT};
            poll(&p, 1, 10);
            continue;
        }
        if (w < 0)
            break;
        off += (size_t)w;
    }
    size_t keep = out->n < HISTORY - s->sent_len ? out->n : HISTORY - s->sent_len;
    memcpy(s->sent + s->sent_len, out->b, keep);
    s->sent_len += keep;
}

/* The answer a PN532 gives to the last command; for InListPassiveTarget the input chooses the card. */
static void auto_reply(struct session *s, struct buf *o)
{
    uint8_t p[64];
    size_t n = 0;
    const uint8_t *d = s->cmd_data;
    size_t len = s->cmd_len;
    switch (s->cmd) {
    case CMD_DIAGNOSE:
        n = len < sizeof(p) ? len : sizeof(p);
        memcpy(p, d, n);
        break;
    case CMD_GET_FIRMWARE_VERSION:
        memcpy(p, (const uint8_t[]){0x32, 0x01, 0x06, 0x07}, 4);
        n = 4;
        break;
    case CMD_READ_REGISTER:
        n = len / 2 < sizeof(p) ? len / 2 : sizeof(p);
        memset(p, 0, n);
        break;
    case CMD_IN_LIST_PASSIVE_TARGET: {
        int k = input_byte(s);
        bool reselect = len > 2;
        if (k < 0 || (k & 0x03) == 0 || (reselect && (k & 0x80))) {
            p[n++] = 0;     /* no target: the card is gone */
            break;
        }
        p[n++] = 1;
        p[n++] = 1;
        size_t uid_len = (k & 0x03) == 1 ? 4 : (k & 0x03) == 2 ? 7 : 10;
        unsigned type = (unsigned)(k >> 2) % 3;     /* classic, Ultralight, DESFire */
        p[n++] = type == 2 ? 0x03 : 0x00;
        p[n++] = uid_len == 4 && type != 1 ? 0x04 : 0x44;
        p[n++] = type == 0 ? 0x08 : type == 1 ? 0x00 : 0x20;
        p[n++] = (uint8_t)uid_len;
        if (reselect && len - 2 >= uid_len && len - 2 <= 12) {
            /* the same card again (the UID as sent: plain for 4 bytes, cascaded for 7 and 10) */
            const uint8_t *u = d + 2;
            if (uid_len == 7 && len - 2 == 8)
                memcpy(p + n, u + 1, 7);
            else if (uid_len == 10 && len - 2 == 12) {
                memcpy(p + n, u + 1, 3);
                memcpy(p + n + 3, u + 5, 3);
                memcpy(p + n + 6, u + 8, 4);
            } else
                memcpy(p + n, u, uid_len);
            n += uid_len;
        } else {
            const uint8_t *u;
            size_t got = input_bytes(s, uid_len, &u);
            memset(p + n, 0, uid_len);
            memcpy(p + n, u, got);
            n += uid_len;
        }
        if (type == 2)
            for (size_t i = 0; i < 6; i++)
                p[n++] = (const uint8_t[]){0x06, 0x75, 0x77, 0x81, 0x02, 0x80}[i];
        break;
    }
    case CMD_IN_DATA_EXCHANGE:
        p[n++] = 0x00;          /* a READ of four pages */
        memset(p + n, 0, 16);
        n += 16;
        break;
    case CMD_IN_COMMUNICATE_THRU:
        p[n++] = 0x00;
        p[n++] = 0xA2;
        break;
    default:
        if (status_checked(s->cmd))
            p[n++] = 0x00;
        break;
    }
    put(o, ack_frame, sizeof(ack_frame));
    put_frame(o, (uint8_t)(s->cmd + 1), p, n, false);
}

/* Takes one record of the input and sends what it says; hangs up when the input is used up. */
static void answer(struct session *s)
{
    int c = input_byte(s);
    if (c < 0) {
        hang_up(s);
        return;
    }
    struct buf o = {.n = 0};
    const uint8_t *p;
    size_t n;
    uint8_t code = (uint8_t)(s->cmd + 1);
    switch (c & 0x0F) {
    case 0: case 1: case 2: case 3:
        auto_reply(s, &o);
        break;
    case 4: case 5: case 6: case 7: case 8: case 9:
        n = input_bytes(s, (size_t)(input_byte(s) & 0xFF), &p);
        put(&o, ack_frame, sizeof(ack_frame));
        put_frame(&o, code, p, n, false);
        break;
    case 10: {
        int hi = input_byte(s), lo = input_byte(s);
        size_t want = ((size_t)(hi < 0 ? 0 : hi) << 8 | (size_t)(lo < 0 ? 0 : lo)) % (MAX_PAYLOAD + 1);
        n = input_bytes(s, want, &p);
        put(&o, ack_frame, sizeof(ack_frame));
        put_frame(&o, code, p, n, true);
        break;
    }
    case 11: {
        int defect = input_byte(s);
        n = input_bytes(s, (size_t)(input_byte(s) & 0xFF), &p);
        put(&o, ack_frame, sizeof(ack_frame));
        size_t start = o.n;
        put_frame(&o, code, p, n, (defect & 0x08) != 0);
        bool ext = o.b[start + 3] == 0xFF && o.b[start + 4] == 0xFF;
        size_t hdr = ext ? 8 : 5;
        switch ((defect < 0 ? 0 : defect) % 8) {
        case 0:         /* bad LCS */
            o.b[start + hdr - 1] ^= 0x01;
            break;
        case 1:         /* bad DCS */
            o.b[o.n - 2] ^= 0x01;
            break;
        case 2:         /* wrong TFI (D4: the host's, or anything) */
            o.b[start + hdr] = (uint8_t)(defect >> 4 ? defect : 0xD4);
            break;
        case 3:         /* a response code for another command */
            o.b[start + hdr + 1] = (uint8_t)(code + 2 + (defect >> 4));
            break;
        case 4:         /* no postamble */
            o.b[o.n - 1] = (uint8_t)(defect | 0x01);
            break;
        case 5:         /* LEN 0 or 1, LCS consistent */
            o.b[start + 3] = (uint8_t)((defect >> 4) & 1);
            o.b[start + 4] = (uint8_t)(0x100 - o.b[start + 3]);
            break;
        case 6:         /* extended LEN below 2 */
            o.n = start;
            put(&o, (const uint8_t[]){0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, (uint8_t)((defect >> 4) & 1),
                                      (uint8_t)(0x100 - ((defect >> 4) & 1)), 0xD5, code, 0x00, 0x00}, 12);
            break;
        case 7:         /* LEN says more than follows */
            o.b[start + 3] = (uint8_t)(o.b[start + 3] + 1 + (defect >> 4));
            o.b[start + 4] = (uint8_t)(0x100 - o.b[start + 3]);
            break;
        }
        break;
    }
    case 12: {
        int what = input_byte(s);
        switch ((what < 0 ? 0 : what) % 4) {
        case 0:
            put(&o, nack_frame, sizeof(nack_frame));
            break;
        case 1:
            put(&o, ack_frame, sizeof(ack_frame));
            o.b[(what >> 2) % sizeof(ack_frame)] ^= (uint8_t)(what | 1);
            break;
        case 2:
            put(&o, error_frame, sizeof(error_frame));
            break;
        case 3:
            put(&o, ack_frame, sizeof(ack_frame));
            put(&o, error_frame, sizeof(error_frame));
            break;
        }
        break;
    }
    case 13:
        n = input_bytes(s, (size_t)(input_byte(s) & 0xFF), &p);
        put(&o, p, n);
        break;
    case 14: {
        int cut = input_byte(s);
        n = input_bytes(s, (size_t)(input_byte(s) & 0xFF), &p);
        put(&o, ack_frame, sizeof(ack_frame));
        put_frame(&o, code, p, n, false);
        size_t keep = (size_t)(cut < 0 ? 0 : cut);
        if (keep < o.n)
            o.n = keep;
        break;
    }
    case 15: {
        n = input_bytes(s, (size_t)(input_byte(s) & 0xFF), &p);
        put(&o, ack_frame, sizeof(ack_frame));
        put_frame(&o, code, p, n, false);
        n = input_bytes(s, (size_t)(input_byte(s) & 0xFF), &p);
        put(&o, p, n);
        break;
    }
    }
    send_out(s, &o);
}

/* Takes every complete command frame out of what libnfc wrote, answering each. Wake-up bytes (55 55 00
 * ...) and host ACKs need no answer. */
static void parse_host(struct session *s)
{
    for (;;) {
        size_t i = 0;
        while (i + 1 < s->rx_len && !(s->rx[i] == 0x00 && s->rx[i + 1] == 0xFF))
            i++;
        if (i + 1 >= s->rx_len) {
            s->rx_len = s->rx_len && s->rx[s->rx_len - 1] == 0x00 ? 1 : 0;
            if (s->rx_len)
                s->rx[0] = 0x00;
            return;
        }
        memmove(s->rx, s->rx + i, s->rx_len - i);
        s->rx_len -= i;
        if (s->rx_len < 4)
            return;
        size_t hdr = 4, len = s->rx[2];
        if (s->rx[2] == 0xFF && s->rx[3] == 0xFF) {
            if (s->rx_len < 7)
                return;
            hdr = 7;
            len = (size_t)s->rx[4] << 8 | s->rx[5];
        } else if ((s->rx[2] == 0x00 && s->rx[3] == 0xFF) || (s->rx[2] == 0xFF && s->rx[3] == 0x00) ||
                   ((s->rx[2] + s->rx[3]) & 0xFF) != 0 || len < 2) {
            memmove(s->rx, s->rx + 2, s->rx_len - 2);     /* ACK, NACK or noise */
            s->rx_len -= 2;
            continue;
        }
        if (len < 2 || len > sizeof(s->rx) - 16) {
            memmove(s->rx, s->rx + 2, s->rx_len - 2);
            s->rx_len -= 2;
            continue;
        }
        if (s->rx_len < hdr + len + 2)
            return;
        s->cmd = s->rx[hdr + 1];
        s->cmd_len = len - 2 < sizeof(s->cmd_data) ? len - 2 : sizeof(s->cmd_data);
        memcpy(s->cmd_data, s->rx + hdr + 2, s->cmd_len);
        memmove(s->rx, s->rx + hdr + len + 2, s->rx_len - (hdr + len + 2));
        s->rx_len -= hdr + len + 2;
        s->sent_len = 0;
        if (s->cmd == CMD_IN_LIST_PASSIVE_TARGET)
            atomic_store(&s->target_sent, false);
        answer(s);
        if (s->master < 0)
            return;
    }
}

static ssize_t read_proc(pid_t tid, const char *what, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

/* The number of times libnfc's thread was switched out (it blocked, or was preempted). */
static unsigned long switches(pid_t tid)
{
    char buf[2048];
    unsigned long total = 0;
    if (read_proc(tid, "status", buf, sizeof(buf)) <= 0)
        return 0;
    for (const char *p = buf; (p = strstr(p, "ctxt_switches:")); p++)
        total += strtoul(p + strlen("ctxt_switches:"), NULL, 10);
    return total;
}

/* Whether libnfc's thread is blocked in select() (uart_receive()'s wait for bytes). */
static bool in_select(pid_t tid)
{
    char buf[64];
    if (read_proc(tid, "syscall", buf, sizeof(buf)) <= 0)
        return false;
    long nr = strtol(buf, NULL, 10);
#ifdef SYS_select
    if (nr == SYS_select)
        return true;
#endif
    return buf[0] >= '0' && buf[0] <= '9' && nr == SYS_pselect6;
}

/* libnfc waits for bytes only another record can give: its thread stayed blocked in select() (not one
 * switch) while the pty was seen to hold nothing for it, and it had written nothing new. poll() on a tty
 * first moves what is still in the kernel's pending buffer into the readable queue, so "nothing" is exact.
 * The decision depends only on libnfc's state, not on timing (but for a libnfc select() timing out, after
 * tens of ms, before this thread looks: only on a badly overloaded machine). */
static bool libnfc_waiting(struct session *s)
{
    unsigned long before = switches(s->libnfc_tid);
    if (!in_select(s->libnfc_tid))
        return false;
    struct pollfd p[2] = {{.fd = s->master, .events = POLLIN}, {.fd = s->slave, .events = POLLIN}};
    poll(p, 2, 0);
    if (p[0].revents & POLLIN)
        return false;           /* a command to read first */
    int avail = 0;
    if (ioctl(s->slave, FIONREAD, &avail) != 0 || avail > 0)
        return false;
    return in_select(s->libnfc_tid) && switches(s->libnfc_tid) == before;
}

static void *serve(void *arg)
{
    struct session *s = arg;
    const struct timespec idle_poll = {0, IDLE_POLL_NS};
    while (!atomic_load(&s->done) && s->master >= 0) {
        struct pollfd p = {.fd = s->master, .events = POLLIN};
        int r = ppoll(&p, 1, &idle_poll, NULL);
        if (r > 0 && (p.revents & POLLIN)) {
            ssize_t n = read(s->master, s->rx + s->rx_len, sizeof(s->rx) - s->rx_len);
            if (n > 0) {
                s->rx_len += (size_t)n;
                parse_host(s);
                if (s->rx_len == sizeof(s->rx))
                    s->rx_len = 0;
            }
            continue;
        }
        if (libnfc_waiting(s))
            answer(s);          /* the rest of a reply, or the hang-up */
    }
    return NULL;
}

static int session_start(struct session *s, const uint8_t *data, size_t size)
{
    memset(s, 0, sizeof(*s));
    s->data = data;
    s->size = size;
    s->keep_bugs = getenv("FUZZ_PN532_LIBNFC_BUGS") != NULL;
    s->libnfc_tid = (pid_t)syscall(SYS_gettid);
    s->master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s->master < 0 || grantpt(s->master) < 0 || unlockpt(s->master) < 0 ||
        ptsname_r(s->master, s->path, sizeof(s->path)) != 0)
        fuzz_fail(__FILE__, __LINE__, "no pseudo-terminal");
    struct termios tio;
    if (tcgetattr(s->master, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(s->master, TCSANOW, &tio);
    }
    s->slave = open(s->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s->slave < 0)
        fuzz_fail(__FILE__, __LINE__, "cannot open the pty slave");
    if (pthread_create(&s->thread, NULL, serve, s) != 0)
        fuzz_fail(__FILE__, __LINE__, "no thread");
    return 0;
}

static void session_end(struct session *s)
{
    atomic_store(&s->done, true);
    pthread_join(s->thread, NULL);
    if (s->master >= 0)
        close(s->master);
    close(s->slave);
}

/* ---- the worker's messages, read as the daemon reads them ---- */

static void on_msg(const struct reader_libnfc_msg *m, void *userdata)
{
    struct session *s = userdata;
    if (trace)
        fprintf(stderr, "fuzz_pn532: message %u uid_len %u %.*s\n", m->kind, m->uid_len,
                (int)sizeof(m->detail), m->detail);
    switch ((enum reader_libnfc_msg_kind)m->kind) {
    case READER_LIBNFC_TAP: {
        char uid[UID_STR_MAX], raw[UID_MAX_BYTES * 2 + 1];
        int r = reader_libnfc_msg_uid(m, uid, raw);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        FUZZ_CHECK(r < 0 || strlen(uid) == 2u * m->uid_len);
        FUZZ_CHECK(r == 0 || strlen(raw) == 2u * m->uid_len);
        /* Garbage is never a tap: libnfc took a well-formed select reply carrying a target. */
        FUZZ_CHECK(atomic_load(&s->target_sent));
        FUZZ_CHECK(s->taps == s->removals);
        s->taps++;
        break;
    }
    case READER_LIBNFC_REMOVED:
        FUZZ_CHECK(s->taps == s->removals + 1);
        s->removals++;
        break;
    case READER_LIBNFC_ONLINE:
    case READER_LIBNFC_OFFLINE:
        FUZZ_CHECK(memchr(m->detail, '\0', sizeof(m->detail)) != NULL);
        break;
    }
}

/* ---- seeds ---- */

struct seed_rec {
    uint8_t kind;
    uint8_t n;
    uint8_t bytes[16];
};

/* A session as the emulated PN532 answered it (LIBNFC_LOG_LEVEL=3): open (SAMConfiguration, Diagnose
 * echo, firmware, SetParameters, ReadRegister x5, WriteRegister), nfc_initiator_init (RFConfiguration x3,
 * ReadRegister x6, WriteRegister), NP_INFINITE_SELECT off (RFConfiguration), then selects. */
static const struct seed_rec open_session[] = {
    {4, 0, {0}},
    {4, 7, {0x00, 0x6c, 0x69, 0x62, 0x6e, 0x66, 0x63}},
    {4, 4, {0x32, 0x01, 0x06, 0x07}},
    {4, 0, {0}},
    {4, 5, {0x00, 0x00, 0x00, 0x00, 0x00}},
    {4, 0, {0}},
    {4, 0, {0}},
    {4, 0, {0}},
    {4, 0, {0}},
    {4, 6, {0x80, 0x80, 0x00, 0x00, 0x10, 0x00}},
    {4, 0, {0}},
    {4, 0, {0}},
};

static void seed_put(FILE *f, const struct seed_rec *r)
{
    fputc(r->kind, f);
    fputc(r->n, f);
    fwrite(r->bytes, 1, r->n, f);
}

static void seed_write(const char *dir, const char *name, const struct seed_rec *tail, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    for (size_t i = 0; i < sizeof(open_session) / sizeof(open_session[0]); i++)
        seed_put(f, &open_session[i]);
    for (size_t i = 0; i < n; i++)
        seed_put(f, &tail[i]);
    fclose(f);
}

static void write_seeds(const char *dir)
{
    const struct seed_rec rf = {4, 0, {0}};                 /* RFConfiguration before a re-select */
    const struct seed_rec none = {4, 1, {0x00}};            /* InListPassiveTarget: NbTg 0 */
    /* 4-byte classic 04112233 (ATQA 00 04, SAK 08): its presence is checked by a re-select by UID */
    const struct seed_rec t4 = {4, 10, {0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0x04, 0x11, 0x22, 0x33}};
    /* 7-byte Ultralight 04A1B2C3D4E5F6 (00 44, 00): presence by READ of page 0 (status 00 + 16 bytes) */
    const struct seed_rec t7 = {4, 13, {0x01, 0x01, 0x00, 0x44, 0x00, 0x07, 0x04, 0xA1, 0xB2, 0xC3, 0xD4,
                                        0xE5, 0xF6}};
    const struct seed_rec read0 = {4, 17, {0x00, 0x04, 0xA1, 0xB2, 0x9F, 0xC3, 0xD4, 0xE5, 0xF6, 0x6A, 0x48,
                                           0x00, 0x00, 0xE1, 0x10, 0x12}};
    const struct seed_rec gone = {4, 1, {0x01}};            /* InDataExchange: status 01, timeout */
    /* 10-byte classic 04112233445566778899 (00 44, 08) */
    const struct seed_rec t10 = {4, 16, {0x01, 0x01, 0x00, 0x44, 0x08, 0x0A, 0x04, 0x11, 0x22, 0x33, 0x44,
                                         0x55, 0x66, 0x77, 0x88, 0x99}};
    const struct seed_rec s_empty[] = {none, none, none};
    seed_write(dir, "empty-field", s_empty, sizeof(s_empty) / sizeof(s_empty[0]));
    /* tapped, held for three presence checks, removed (re-select empty, confirmed by one more), field empty */
    const struct seed_rec s4[] = {t4, rf, t4, rf, t4, rf, t4, rf, none, none, none};
    seed_write(dir, "uid4-held-removed", s4, sizeof(s4) / sizeof(s4[0]));
    const struct seed_rec s7[] = {none, t7, read0, read0, gone, none, none};
    seed_write(dir, "uid7-ultralight-removed", s7, sizeof(s7) / sizeof(s7[0]));
    const struct seed_rec s10[] = {t10, rf, t10, rf, none, none, none};
    seed_write(dir, "uid10-removed", s10, sizeof(s10) / sizeof(s10[0]));
    /* AUTO records only: a card of each kind chosen by one byte, held, then gone */
    FILE *f;
    char path[512];
    static const uint8_t autos[][24] = {
        {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xDE, 0xAD, 0xBE,
         0xEF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80},
        {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0A, 0x04, 0x01, 0x02,
         0x03, 0x04, 0x05, 0x06, 0x00, 0x00, 0x00},
    };
    for (size_t i = 0; i < sizeof(autos) / sizeof(autos[0]); i++) {
        snprintf(path, sizeof(path), "%s/auto-%zu", dir, i);
        if (!(f = fopen(path, "wb"))) {
            perror(path);
            exit(1);
        }
        fwrite(autos[i], 1, sizeof(autos[i]), f);
        fclose(f);
    }
}

/* ---- libFuzzer ---- */

/* libnfc reads past the end of a short reply into its own stack buffer (a target's UID length and bytes
 * beyond the frame, the status byte of an empty reply): what it finds there is what earlier calls left.
 * Zeroing the stack below us before each step makes most inputs do the same thing every time they run;
 * not all: bytes left there by libnfc's own earlier calls in the same step can be pointers, which differ
 * from run to run. */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile uint8_t area[64 * 1024];
    for (size_t i = 0; i < sizeof(area); i++)
        area[i] = 0;
}

/* Open descriptors: the worker reopens its device for ever, so one leaked per open would end in EMFILE. */
static int open_fds(void)
{
    int n = 0;
    char path[64];
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (access(path, F_OK) == 0)
            n++;
    }
    return n;
}

static nfc_context *ctx;
static struct reader_config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *seeds = getenv("FUZZ_PN532_WRITE_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    trace = getenv("FUZZ_PN532_TRACE") != NULL;
    /* Every message, for the feedback above; none printed unless FUZZ_PN532_TRACE is set. */
    setenv("LIBNFC_LOG_LEVEL", "3", 0);
    find_libnfc();
    nfc_init(&ctx);
    if (!ctx)
        fuzz_fail(__FILE__, __LINE__, "nfc_init failed");
    snprintf(cfg.name, sizeof(cfg.name), "fuzz");
    cfg.driver = READER_DRIVER_LIBNFC;
    cfg.poll_ms = 30;
    cfg.rearm_s = 0;
    cfg.cpu = READER_CPU_ANY;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        LLVMFuzzerInitialize(NULL, NULL);
    if (trace)
        fprintf(stderr, "fuzz_pn532: input of %zu bytes\n", size);
    int fds = open_fds();
    struct session s;
    session_start(&s, data, size);
    snprintf(cfg.connstring, sizeof(cfg.connstring), "pn532_uart:%s", s.path);
    atomic_store(&fast_sleep, true);
    last_site = libnfc_base;
    struct reader_libnfc_poller *p = reader_libnfc_poller_new(&cfg, ctx, on_msg, &s);
    FUZZ_CHECK(p != NULL);
    for (int step = 0; step < MAX_STEPS; step++) {
        scrub_stack();
        reader_libnfc_poller_step(p);
        if (atomic_load(&s.hung_up) && !reader_libnfc_poller_is_open(p))
            break;
    }
    scrub_stack();
    reader_libnfc_poller_free(p);      /* nfc_close talks to the chip too: still served */
    atomic_store(&fast_sleep, false);
    session_end(&s);
    FUZZ_CHECK(open_fds() == fds);
    return 0;
}
