/* pn532_emu: a software PN532 on a pseudo-terminal, answering libnfc's pn532_uart driver the way the chip
 * does over its HSU (serial) link, so that the real libnfc can be tested with no board attached.
 *
 *   pn532_emu --link PATH --control PATH [--events PATH] [--baud N]
 *
 * The reader's connstring is pn532_uart:LINK. The control FIFO takes one command per line (tag, remove,
 * mute, unmute, vanish, return, reset, hostile MODE, normal, quit); every change and what the host saw of
 * it is written as one line "<CLOCK_MONOTONIC ns> <event> ..." to the events file. The hostile modes make
 * it a broken or malicious reader (garbage, bad checksums, wrong codes, truncated frames, impossible UIDs,
 * NACK and error storms, a flood, a huge extended frame, the replies that crash libnfc 1.8) until
 * `normal`. docs/test-rigs.md documents it all.
 *
 * One thread, one ppoll loop. Bytes to the host are paced at the configured baud rate against absolute
 * CLOCK_MONOTONIC deadlines (byte n of a burst is due at start + n * byte time), so the average rate never
 * drifts whatever the wake-up jitter; the host's bytes are given the same line time before the chip acts
 * on a frame. Facts about libnfc 1.8 are in /work/shared/notes/pn532-emulation.md and were checked against
 * libnfc's pn532_uart.c and pn53x.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
/* While nobody holds the slave open a pty master reports POLLHUP at once, so it is left out of the poll
 * set for this long before looking again: no spin, and a new opener is noticed within this delay. */
#define HUP_RETRY_NS (20 * NS_PER_MS)

/* PN532 command codes (host to chip; the reply carries code + 1). */
enum {
    CMD_DIAGNOSE = 0x00,
    CMD_GET_FIRMWARE_VERSION = 0x02,
    CMD_GET_GENERAL_STATUS = 0x04,
    CMD_READ_REGISTER = 0x06,
    CMD_WRITE_REGISTER = 0x08,
    CMD_SET_PARAMETERS = 0x12,
    CMD_SAM_CONFIGURATION = 0x14,
    CMD_POWER_DOWN = 0x16,
    CMD_RF_CONFIGURATION = 0x32,
    CMD_IN_DATA_EXCHANGE = 0x40,
    CMD_IN_COMMUNICATE_THRU = 0x42,
    CMD_IN_DESELECT = 0x44,
    CMD_IN_LIST_PASSIVE_TARGET = 0x4A,
    CMD_IN_RELEASE = 0x52,
    CMD_IN_SELECT = 0x54,
};

/* Status bytes of the In* replies. */
enum {
    ST_OK = 0x00,
    ST_TIMEOUT = 0x01,    /* the target did not answer: for libnfc, the card is gone */
    ST_BAD_STATE = 0x27,  /* no such target / not in a state to accept the command */
};

#define TFI_HOST 0xD4
#define TFI_CHIP 0xD5
#define PARAM_AUTO_RATS 0x10
#define MAX_FRAME_DATA 300 /* TFI, command and data: more than the 264 bytes libnfc ever sends */
#define RX_BUF 1024
#define TX_BUF 8192
#define MEM_PAGES 16

/* A broken or hostile chip (control command `hostile MODE`, until `normal`). */
enum hostile {
    HOSTILE_NONE,
    HOSTILE_GARBAGE,    /* every command answered with 24 bytes of noise, no ACK */
    HOSTILE_BADSUM,     /* ACK, then the reply with a wrong data checksum (DCS) */
    HOSTILE_BADLEN,     /* ACK, then the reply with a wrong length checksum (LCS) */
    HOSTILE_WRONGCODE,  /* ACK, then the reply carrying another command's response code */
    HOSTILE_TRUNCATED,  /* ACK, then the first half of the reply, and nothing more */
    HOSTILE_UID0,       /* a card found: UID length 0 */
    HOSTILE_UIDLONG,    /* a card found: UID length 16, sixteen bytes */
    HOSTILE_UIDSHORT,   /* a card found: a UID length 3 more than the bytes that follow */
    HOSTILE_NACK,       /* a NACK instead of every ACK, and nothing else */
    HOSTILE_ERRORS,     /* ACK, then the error frame, for every command */
    HOSTILE_FLOOD,      /* noise at the full line rate without end, whatever the host sends */
    HOSTILE_EXTENDED,   /* ACK, then an extended frame of 2000 bytes of data for every reply */
    HOSTILE_NAD,        /* In* / PowerDown status bytes with bit 7 set: libnfc 1.8 abort()s */
    HOSTILE_ATS0,       /* a card found: an ATS length byte 0 after the UID: libnfc 1.8 crashes */
};

static const char *const hostile_names[] = {
    [HOSTILE_NONE] = "none",         [HOSTILE_GARBAGE] = "garbage",     [HOSTILE_BADSUM] = "badsum",
    [HOSTILE_BADLEN] = "badlen",     [HOSTILE_WRONGCODE] = "wrongcode", [HOSTILE_TRUNCATED] = "truncated",
    [HOSTILE_UID0] = "uid0",         [HOSTILE_UIDLONG] = "uidlong",     [HOSTILE_UIDSHORT] = "uidshort",
    [HOSTILE_NACK] = "nack",         [HOSTILE_ERRORS] = "errors",       [HOSTILE_FLOOD] = "flood",
    [HOSTILE_EXTENDED] = "extended", [HOSTILE_NAD] = "nad",             [HOSTILE_ATS0] = "ats0",
};

#define EXTENDED_DATA 2000

enum tag_type {
    TAG_CLASSIC,
    TAG_ULTRALIGHT,
    TAG_DESFIRE,
};

struct tag {
    bool present;
    enum tag_type type;
    uint8_t uid[10];
    size_t uid_len;
    uint8_t atqa[2];
    uint8_t sak;
    uint64_t generation;    /* bumped each time a card enters the field: a card that left and came back
                               is no longer selected, as on a real field */
    bool selected_reported; /* "selected" is reported once per entry into the field */
    uint8_t mem[MEM_PAGES * 4];
};

/* A command the chip is still working on when its ACK has gone out. */
enum pending_kind {
    PENDING_NONE,
    PENDING_WAIT_TAG,   /* InListPassiveTarget with infinite retries and no (matching) card yet */
    PENDING_FOREVER,    /* an infinite wait nothing here can end (another modulation, no RF timeout) */
    PENDING_TIMED,      /* the reply is ready at `due_ns` (an RF timeout running out) */
};

struct chip {
    bool awake;         /* false after power-on or PowerDown: bytes are ignored until a 0x55 */
    bool muted;
    uint8_t params;     /* SetParameters flags */
    bool field_on;
    uint8_t mx_rty_com;
    uint8_t mx_rty_passive;
    uint8_t f_retry_timeout;
    /* target 1 as the chip knows it */
    bool target_active;
    bool target_deselected;
    uint64_t target_generation;
    uint8_t target_uid[10];
    size_t target_uid_len;
    /* the command in progress */
    enum pending_kind pending;
    uint8_t pending_cmd;
    uint8_t pending_data[MAX_FRAME_DATA];
    size_t pending_len;
    uint8_t pending_reply[MAX_FRAME_DATA];
    size_t pending_reply_len;
    int64_t pending_due_ns;
    bool pending_gone_seen; /* the timed reply says "card gone" */
    /* the last information frame sent, for a host NACK */
    uint8_t last_frame[MAX_FRAME_DATA + 10];
    size_t last_frame_len;
    uint8_t regs[0x10000];
};

struct emu {
    const char *link_path;
    const char *control_path;
    const char *events_path;
    long baud;
    int64_t byte_ns;
    FILE *events;

    int master;          /* -1 while vanished */
    char pts[64];
    bool slave_closed;   /* nobody holds the slave: bytes sent go nowhere */
    int64_t hup_retry_ns;

    int control;
    int control_keepalive;
    char ctl_buf[1024];
    size_t ctl_len;
    bool ctl_overlong;

    uint8_t rx[RX_BUF];
    size_t rx_len;
    int64_t rx_clock_ns;  /* when the last byte received would have finished arriving on the line */

    uint8_t tx[TX_BUF];
    size_t tx_len;
    int64_t tx_next_ns;   /* when the next queued byte may leave */

    struct chip *chip;
    struct tag tag;
    uint64_t generations;
    bool gone_pending;    /* a `remove` the host has not noticed yet */
    bool quit;
    enum hostile hostile;
    uint32_t noise;       /* the state of the noise generator */
    bool tx_blocked;      /* the pty is full (the host is not reading): wait for POLLOUT */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pn532_emu: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pn532_emu: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void event(struct emu *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void event(struct emu *e, const char *fmt, ...)
{
    va_list ap;
    fprintf(e->events, "%lld ", (long long)now_ns());
    va_start(ap, fmt);
    vfprintf(e->events, fmt, ap);
    va_end(ap);
    fputc('\n', e->events);
    fflush(e->events);
}

static void uid_hex(const uint8_t *uid, size_t len, char out[21])
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[uid[i] >> 4];
        out[2 * i + 1] = digits[uid[i] & 0x0F];
    }
    out[2 * len] = '\0';
}

/* ---- chip state ---------------------------------------------------------------------------------- */

/* Reset values of the CIU registers libnfc reads and writes (PN532 user manual, section 8.6). Anything
 * else reads as what was last written, or 0. */
static void chip_power_on(struct chip *c)
{
    memset(c, 0, sizeof(*c));
    c->awake = false;
    c->params = 0x14; /* automatic ATR_RES and RATS, as after the chip's own start-up */
    c->mx_rty_com = 0x00;
    c->mx_rty_passive = 0xFF;
    c->f_retry_timeout = 0x0A; /* 51.2 ms */
    static const struct { uint16_t reg; uint8_t val; } defaults[] = {
        {0x6301, 0x3F}, {0x6302, 0x00}, {0x6303, 0x00}, {0x6304, 0x80}, {0x6305, 0x00},
        {0x6306, 0x10}, {0x6307, 0x84}, {0x6308, 0x84}, {0x6309, 0x4D}, {0x630C, 0x62},
        {0x630F, 0xEB}, {0x6311, 0xFF}, {0x6312, 0xFF}, {0x6313, 0x88}, {0x6314, 0x26},
        {0x6316, 0x48}, {0x6317, 0x88}, {0x6318, 0x20}, {0x6319, 0x20}, {0x6331, 0x20},
        {0x6332, 0x80}, {0x6334, 0x14}, {0x6337, 0x21}, {0x633B, 0x08}, {0x633C, 0x10},
        {0x633E, 0x80},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        c->regs[defaults[i].reg] = defaults[i].val;
}

/* Timeout of the target's answer from RFConfiguration item 02's fRetryTimeout code; 0 = none. */
static int64_t retry_timeout_ns(uint8_t code)
{
    if (code == 0)
        return 0;
    if (code > 0x10)
        code = 0x10;
    return 100000LL << (code - 1);
}

/* ---- output: framing and pacing -------------------------------------------------------------------- */

static void tx_queue(struct emu *e, const uint8_t *bytes, size_t len, int64_t not_before_ns)
{
    if (e->master < 0)
        return;
    if (e->tx_len + len > sizeof(e->tx)) {
        warnx_("output queue full, dropping %zu bytes", len);
        return;
    }
    int64_t now = now_ns();
    if (e->tx_len == 0 && e->tx_next_ns < now)
        e->tx_next_ns = now;  /* the line was idle: start now, not in the past */
    if (e->tx_next_ns < not_before_ns)
        e->tx_next_ns = not_before_ns;
    memcpy(e->tx + e->tx_len, bytes, len);
    e->tx_len += len;
}

static void tx_drop(struct emu *e)
{
    e->tx_len = 0;
    e->tx_blocked = false;
}

static const uint8_t ack_frame[] = {0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00};
static const uint8_t error_frame[] = {0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00};
static const uint8_t nack_frame[] = {0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00};

/* Noise: a fixed pseudo-random sequence (xorshift), the same from one run to the next. */
static void noise_queue(struct emu *e, size_t len, int64_t not_before)
{
    uint8_t b[256];
    while (len > 0) {
        size_t n = len < sizeof(b) ? len : sizeof(b);
        for (size_t i = 0; i < n; i++) {
            e->noise ^= e->noise << 13;
            e->noise ^= e->noise >> 17;
            e->noise ^= e->noise << 5;
            b[i] = (uint8_t)e->noise;
        }
        tx_queue(e, b, n, not_before);
        len -= n;
    }
}

/* The huge extended frame of HOSTILE_EXTENDED: a correct header and checksums, EXTENDED_DATA bytes. */
static void send_extended(struct emu *e, uint8_t cmd, int64_t not_before)
{
    size_t body = EXTENDED_DATA + 2;
    if (e->tx_len > sizeof(e->tx) - (EXTENDED_DATA + 16))
        return;                 /* the last one is still going out: the host gave up on it anyway */
    uint8_t h[] = {0x00, 0x00, 0xFF, 0xFF, 0xFF, (uint8_t)(body >> 8), (uint8_t)body,
                   (uint8_t)(0x100 - (((body >> 8) + body) & 0xFF)), TFI_CHIP, (uint8_t)(cmd + 1)};
    tx_queue(e, h, sizeof(h), not_before);
    uint8_t data[EXTENDED_DATA];
    uint8_t sum = (uint8_t)(TFI_CHIP + cmd + 1);
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)i;
        sum = (uint8_t)(sum + data[i]);
    }
    tx_queue(e, data, sizeof(data), not_before);
    uint8_t tail[] = {(uint8_t)(0x100 - sum), 0x00};
    tx_queue(e, tail, sizeof(tail), not_before);
}

/* Information frame D5 CMD+1 payload; extended framing when it does not fit a normal frame. */
static void send_reply(struct emu *e, uint8_t cmd, const uint8_t *payload, size_t len, int64_t not_before)
{
    struct chip *c = e->chip;
    uint8_t f[MAX_FRAME_DATA + 10];
    size_t n = 0;
    size_t body = len + 2;
    if (e->hostile == HOSTILE_EXTENDED) {
        send_extended(e, cmd, not_before);
        return;
    }
    uint8_t status_nad[MAX_FRAME_DATA];
    if (e->hostile == HOSTILE_NAD && len > 0 &&
        (cmd == CMD_POWER_DOWN || cmd == CMD_IN_DATA_EXCHANGE || cmd == CMD_IN_COMMUNICATE_THRU ||
         cmd == CMD_IN_SELECT)) {
        memcpy(status_nad, payload, len);
        status_nad[0] |= 0x80;  /* "NAD present": libnfc 1.8's pn53x_transceive() calls abort() */
        payload = status_nad;
    }
    if (body > MAX_FRAME_DATA) {
        warnx_("reply too long (%zu bytes), dropped", len);
        return;
    }
    f[n++] = 0x00;
    f[n++] = 0x00;
    f[n++] = 0xFF;
    if (body <= 0xFF) {
        f[n++] = (uint8_t)body;
        f[n++] = (uint8_t)(0x100 - body);
    } else {
        f[n++] = 0xFF;
        f[n++] = 0xFF;
        f[n++] = (uint8_t)(body >> 8);
        f[n++] = (uint8_t)body;
        f[n++] = (uint8_t)(0x100 - (((body >> 8) + body) & 0xFF));
    }
    uint8_t sum = TFI_CHIP + (uint8_t)(cmd + 1);
    f[n++] = TFI_CHIP;
    f[n++] = (uint8_t)(cmd + 1);
    for (size_t i = 0; i < len; i++) {
        f[n++] = payload[i];
        sum += payload[i];
    }
    f[n++] = (uint8_t)(0x100 - sum);
    f[n++] = 0x00;
    size_t hdr = body <= 0xFF ? 5 : 8;
    switch (e->hostile) {
    case HOSTILE_BADSUM:
        f[n - 2] ^= 0x5A;
        break;
    case HOSTILE_BADLEN:
        f[hdr - 1] ^= 0x01;
        break;
    case HOSTILE_WRONGCODE:
        /* another command's code, the checksum made right for it: only the code is wrong */
        f[n - 2] = (uint8_t)(f[n - 2] - 2);
        f[hdr + 1] = (uint8_t)(f[hdr + 1] + 2);
        break;
    case HOSTILE_TRUNCATED:
        n /= 2;
        break;
    case HOSTILE_NONE:
    case HOSTILE_GARBAGE:
    case HOSTILE_UID0:
    case HOSTILE_UIDLONG:
    case HOSTILE_UIDSHORT:
    case HOSTILE_NACK:
    case HOSTILE_ERRORS:
    case HOSTILE_FLOOD:
    case HOSTILE_EXTENDED:
    case HOSTILE_NAD:
    case HOSTILE_ATS0:
        break;
    }
    memcpy(c->last_frame, f, n);
    c->last_frame_len = n;
    tx_queue(e, f, n, not_before);
}

/* Writes every queued byte whose deadline has come. Late wake-ups catch up, so the long-run rate is the
 * baud rate exactly. */
static void tx_flush(struct emu *e, int64_t now)
{
    if (e->tx_len == 0 || e->master < 0)
        return;
    size_t due;
    if (e->byte_ns == 0) {
        if (now < e->tx_next_ns)
            return;
        due = e->tx_len;
    } else {
        if (now < e->tx_next_ns)
            return;
        int64_t n = (now - e->tx_next_ns) / e->byte_ns + 1;
        due = n > (int64_t)e->tx_len ? e->tx_len : (size_t)n;
    }
    ssize_t w;
    if (e->slave_closed) {
        w = (ssize_t)due; /* sent into an unplugged cable */
    } else {
        w = write(e->master, e->tx, due);
        if (w < 0) {
            if (errno == EAGAIN)
                e->tx_blocked = true; /* the host is not reading: the UART waits until it does */
            if (errno == EAGAIN || errno == EINTR)
                return;
            if (errno == EIO) {
                e->slave_closed = true;
                w = (ssize_t)due;
            } else {
                warnx_("write to the pty: %s", strerror(errno));
                w = (ssize_t)due;
            }
        }
    }
    memmove(e->tx, e->tx + w, e->tx_len - (size_t)w);
    e->tx_len -= (size_t)w;
    e->tx_next_ns += (int64_t)w * e->byte_ns;
}

/* ---- the card in the field -------------------------------------------------------------------------- */

static void tag_fill_memory(struct tag *t)
{
    memset(t->mem, 0, sizeof(t->mem));
    if (t->type == TAG_ULTRALIGHT && t->uid_len == 7) {
        /* NTAG/Ultralight layout: UID0-2 BCC0 | UID3-6 | BCC1 internal lock lock | CC | user memory */
        t->mem[0] = t->uid[0];
        t->mem[1] = t->uid[1];
        t->mem[2] = t->uid[2];
        t->mem[3] = (uint8_t)(0x88 ^ t->uid[0] ^ t->uid[1] ^ t->uid[2]);
        memcpy(t->mem + 4, t->uid + 3, 4);
        t->mem[8] = (uint8_t)(t->uid[3] ^ t->uid[4] ^ t->uid[5] ^ t->uid[6]);
        t->mem[9] = 0x48;
        t->mem[12] = 0xE1;
        t->mem[13] = 0x10;
        t->mem[14] = 0x12;
        t->mem[15] = 0x00;
    } else {
        /* MIFARE block 0: UID, BCC (4-byte UIDs), SAK, ATQA, then manufacturer bytes */
        memcpy(t->mem, t->uid, t->uid_len);
        size_t n = t->uid_len;
        if (t->uid_len == 4)
            t->mem[n++] = (uint8_t)(t->uid[0] ^ t->uid[1] ^ t->uid[2] ^ t->uid[3]);
        t->mem[n++] = t->sak;
        t->mem[n++] = t->atqa[1];
        t->mem[n++] = t->atqa[0];
    }
    for (size_t i = 16; i < sizeof(t->mem); i++)
        t->mem[i] = (uint8_t)i;
}

static bool tag_matches_cascaded_uid(const struct tag *t, const uint8_t *d, size_t len)
{
    uint8_t uid[10];
    size_t n;
    /* libnfc passes the UID in cascade form (iso14443_cascade_uid): CT 0x88 before each level but the last */
    if (len == 8 && d[0] == 0x88) {
        memcpy(uid, d + 1, 7);
        n = 7;
    } else if (len == 12 && d[0] == 0x88 && d[4] == 0x88) {
        memcpy(uid, d + 1, 3);
        memcpy(uid + 3, d + 5, 3);
        memcpy(uid + 6, d + 8, 4);
        n = 10;
    } else if (len == 4 || len == 7 || len == 10) {
        memcpy(uid, d, len);
        n = len;
    } else {
        return false;
    }
    return n == t->uid_len && memcmp(uid, t->uid, n) == 0;
}

/* The selected card still answers: it has stayed in the field since the chip selected it. */
static bool target_answers(const struct emu *e)
{
    const struct chip *c = e->chip;
    return c->target_active && !c->target_deselected && e->tag.present &&
           e->tag.generation == c->target_generation;
}

static void note_gone(struct emu *e)
{
    if (e->gone_pending) {
        e->gone_pending = false;
        event(e, "gone-seen");
    }
}

/* ---- commands --------------------------------------------------------------------------------------- */

/* InListPassiveTarget found the card: select it and build the target data. */
static size_t list_found(struct emu *e, uint8_t *out)
{
    struct chip *c = e->chip;
    struct tag *t = &e->tag;
    size_t n = 0;
    out[n++] = 1; /* NbTg */
    out[n++] = 1; /* Tg */
    out[n++] = t->atqa[0];
    out[n++] = t->atqa[1];
    out[n++] = t->sak;
    switch (e->hostile) {
    case HOSTILE_UID0:
        out[n++] = 0;           /* a card with no UID */
        break;
    case HOSTILE_UIDLONG:
        out[n++] = 16;          /* more than the 10 bytes ISO 14443 allows */
        memcpy(out + n, t->uid, t->uid_len);
        memset(out + n + t->uid_len, 0xEE, 16 - t->uid_len);
        n += 16;
        break;
    case HOSTILE_UIDSHORT:
        out[n++] = (uint8_t)(t->uid_len + 3);   /* says 3 bytes more than the frame holds */
        memcpy(out + n, t->uid, t->uid_len);
        n += t->uid_len;
        break;
    case HOSTILE_NONE:
    case HOSTILE_GARBAGE:
    case HOSTILE_BADSUM:
    case HOSTILE_BADLEN:
    case HOSTILE_WRONGCODE:
    case HOSTILE_TRUNCATED:
    case HOSTILE_NACK:
    case HOSTILE_ERRORS:
    case HOSTILE_FLOOD:
    case HOSTILE_EXTENDED:
    case HOSTILE_NAD:
    case HOSTILE_ATS0:
        out[n++] = (uint8_t)t->uid_len;
        memcpy(out + n, t->uid, t->uid_len);
        n += t->uid_len;
        break;
    }
    if (e->hostile == HOSTILE_ATS0) {
        out[n++] = 0x00;        /* an ATS whose length byte counts less than itself */
    } else if ((t->sak & 0x20) && (c->params & PARAM_AUTO_RATS)) {
        /* ATS, its first byte (TL) counting itself: FSCI 5, TA TB TC present, historical byte 0x80 */
        static const uint8_t ats[] = {0x06, 0x75, 0x77, 0x81, 0x02, 0x80};
        memcpy(out + n, ats, sizeof(ats));
        n += sizeof(ats);
    }
    c->target_active = true;
    c->target_deselected = false;
    c->target_generation = t->generation;
    memcpy(c->target_uid, t->uid, t->uid_len);
    c->target_uid_len = t->uid_len;
    if (!t->selected_reported) {
        char hex[21];
        uid_hex(t->uid, t->uid_len, hex);
        t->selected_reported = true;
        event(e, "selected %s", hex);
    }
    return n;
}

/* Can an InListPassiveTarget (106 kbps type A) find a card now? */
static bool list_can_find(const struct emu *e, const uint8_t *init, size_t init_len)
{
    if (!e->tag.present)
        return false;
    return init_len == 0 || tag_matches_cascaded_uid(&e->tag, init, init_len);
}

/* What a card answers to a frame; false when it stays silent (the chip then times out). */
static bool card_answer(struct emu *e, bool thru, const uint8_t *d, size_t len, uint8_t *out, size_t *out_len)
{
    struct tag *t = &e->tag;
    *out_len = 0;
    if (len == 0)
        return false;
    switch (t->type) {
    case TAG_ULTRALIGHT:
        if (d[0] == 0x30 && len >= 2) { /* READ: four pages from the given one, wrapping */
            for (size_t i = 0; i < 16; i++)
                out[i] = t->mem[((size_t)d[1] * 4 + i) % sizeof(t->mem)];
            *out_len = 16;
            return true;
        }
        if (d[0] == 0xA2 && len >= 6) { /* WRITE a page */
            if (d[1] >= 4 && d[1] < MEM_PAGES)
                memcpy(t->mem + (size_t)d[1] * 4, d + 2, 4);
            return true;
        }
        if (d[0] == 0x60) { /* GET_VERSION: NTAG213 */
            static const uint8_t version[] = {0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x0F, 0x03};
            memcpy(out, version, sizeof(version));
            *out_len = sizeof(version);
            return true;
        }
        return false;
    case TAG_CLASSIC:
        if (d[0] == 0x30 && len >= 2) {
            size_t off = ((size_t)d[1] * 16) % sizeof(t->mem);
            memcpy(out, t->mem + off, 16);
            *out_len = 16;
            return true;
        }
        if (d[0] == 0x60 || d[0] == 0x61 || d[0] == 0xA0 || d[0] == 0xC0 || d[0] == 0xC1 || d[0] == 0xB0)
            return true; /* authenticate / write / value operations: accepted */
        return false;
    case TAG_DESFIRE:
        if (thru) {
            /* raw ISO 14443-4 blocks: an R-block gets R(ACK), an I-block gets the same PCB and "91 00" */
            if ((d[0] & 0xE6) == 0xA2) {
                out[0] = (uint8_t)(0xA2 | (d[0] & 0x01));
                *out_len = 1;
                return true;
            }
            if ((d[0] & 0xE2) == 0x02) {
                out[0] = d[0] & 0x03;
                out[1] = 0x91;
                out[2] = 0x00;
                *out_len = 3;
                return true;
            }
            if (d[0] == 0xC2) { /* S(DESELECT) */
                out[0] = 0xC2;
                *out_len = 1;
                return true;
            }
            return false;
        }
        /* InDataExchange: the chip does the ISO-DEP blocks itself; APDUs get 90 00, native 91 00 */
        out[0] = d[0] == 0x00 ? 0x90 : 0x91;
        out[1] = 0x00;
        *out_len = 2;
        return true;
    }
    return false;
}

/* InDataExchange / InCommunicateThru towards a card that does not answer: status 01 once the chip's RF
 * timeout (RFConfiguration item 02, retried MxRtyCOM times for InDataExchange) has run out. */
static void reply_rf_timeout(struct emu *e, uint8_t cmd, int64_t not_before)
{
    struct chip *c = e->chip;
    int64_t per_try = retry_timeout_ns(c->f_retry_timeout);
    c->pending_cmd = cmd;
    c->pending_reply[0] = ST_TIMEOUT;
    c->pending_reply_len = 1;
    c->pending_gone_seen = true;
    if (per_try == 0) {
        c->pending = PENDING_FOREVER; /* no RF timeout configured: the chip waits for ever */
        return;
    }
    int64_t tries = cmd == CMD_IN_DATA_EXCHANGE ? (int64_t)c->mx_rty_com + 1 : 1;
    c->pending = PENDING_TIMED;
    c->pending_due_ns = not_before + per_try * tries;
}

/* Executes one command from the host. `t0` is when its frame finished arriving: the ACK and the reply do
 * not leave before it. */
static void chip_command(struct emu *e, uint8_t cmd, const uint8_t *d, size_t len, int64_t t0)
{
    struct chip *c = e->chip;
    uint8_t r[MAX_FRAME_DATA];
    size_t rn = 0;

    /* A new command ends whatever the chip was still doing. */
    c->pending = PENDING_NONE;
    switch (e->hostile) {
    case HOSTILE_GARBAGE:
        noise_queue(e, 24, t0);
        return;
    case HOSTILE_NACK:
        tx_queue(e, nack_frame, sizeof(nack_frame), t0);
        return;
    case HOSTILE_FLOOD:
        return;                 /* the flood goes on (run()); nothing else is said */
    case HOSTILE_ERRORS:
        tx_queue(e, ack_frame, sizeof(ack_frame), t0);
        tx_queue(e, error_frame, sizeof(error_frame), t0);
        return;
    case HOSTILE_NONE:
    case HOSTILE_BADSUM:
    case HOSTILE_BADLEN:
    case HOSTILE_WRONGCODE:
    case HOSTILE_TRUNCATED:
    case HOSTILE_UID0:
    case HOSTILE_UIDLONG:
    case HOSTILE_UIDSHORT:
    case HOSTILE_EXTENDED:
    case HOSTILE_NAD:
    case HOSTILE_ATS0:
        break;
    }
    tx_queue(e, ack_frame, sizeof(ack_frame), t0);

    switch (cmd) {
    case CMD_DIAGNOSE:
        if (len >= 1 && d[0] == 0x00) { /* communication line test: echo */
            memcpy(r, d, len);
            rn = len;
        } else if (len >= 1 && d[0] == 0x06) { /* card presence */
            r[rn++] = target_answers(e) ? ST_OK : ST_TIMEOUT;
            if (r[0] == ST_TIMEOUT)
                note_gone(e);
        } else {
            r[rn++] = 0x00; /* ROM, RAM, ... tests pass */
        }
        break;
    case CMD_GET_FIRMWARE_VERSION:
        r[rn++] = 0x32; /* IC: PN532 */
        r[rn++] = 0x01; /* version 1.6 */
        r[rn++] = 0x06;
        r[rn++] = 0x07; /* ISO 14443 A and B, ISO 18092 */
        break;
    case CMD_GET_GENERAL_STATUS:
        r[rn++] = 0x00;
        r[rn++] = c->field_on ? 1 : 0;
        if (c->target_active) {
            r[rn++] = 1;
            r[rn++] = 1;
            r[rn++] = 0;
            r[rn++] = 0;
            r[rn++] = 0;
        } else {
            r[rn++] = 0;
        }
        r[rn++] = 0x01; /* SAM status */
        break;
    case CMD_READ_REGISTER:
        if (len == 0 || len % 2) {
            tx_queue(e, error_frame, sizeof(error_frame), t0);
            return;
        }
        for (size_t i = 0; i + 1 < len; i += 2)
            r[rn++] = c->regs[(uint16_t)(d[i] << 8 | d[i + 1])];
        break;
    case CMD_WRITE_REGISTER:
        if (len == 0 || len % 3) {
            tx_queue(e, error_frame, sizeof(error_frame), t0);
            return;
        }
        for (size_t i = 0; i + 2 < len; i += 3) {
            uint16_t reg = (uint16_t)(d[i] << 8 | d[i + 1]);
            c->regs[reg] = d[i + 2];
        }
        /* FIFO flush and level: nothing is ever received through the raw FIFO path */
        c->regs[0x633A] = 0x00;
        break;
    case CMD_SET_PARAMETERS:
        if (len < 1) {
            tx_queue(e, error_frame, sizeof(error_frame), t0);
            return;
        }
        c->params = d[0];
        break;
    case CMD_SAM_CONFIGURATION:
        if (len < 1 || d[0] < 1 || d[0] > 4) {
            tx_queue(e, error_frame, sizeof(error_frame), t0);
            return;
        }
        break;
    case CMD_POWER_DOWN:
        r[rn++] = ST_OK;
        send_reply(e, cmd, r, rn, t0);
        /* The chip sleeps once its answer is out; only a 0x55 on the line wakes it. */
        c->awake = false;
        c->field_on = false;
        c->target_active = false;
        return;
    case CMD_RF_CONFIGURATION:
        if (len < 1) {
            tx_queue(e, error_frame, sizeof(error_frame), t0);
            return;
        }
        switch (d[0]) {
        case 0x01:
            if (len >= 2)
                c->field_on = d[1] & 0x01;
            break;
        case 0x02:
            if (len >= 4)
                c->f_retry_timeout = d[3];
            break;
        case 0x04:
            if (len >= 2)
                c->mx_rty_com = d[1];
            break;
        case 0x05:
            if (len >= 4)
                c->mx_rty_passive = d[3];
            break;
        default:
            break;
        }
        break;
    case CMD_IN_LIST_PASSIVE_TARGET: {
        if (len < 2 || d[0] < 1 || d[0] > 2) {
            tx_queue(e, error_frame, sizeof(error_frame), t0);
            return;
        }
        c->field_on = true;
        c->target_active = false;
        const uint8_t *init = d + 2;
        size_t init_len = len - 2;
        if (d[1] == 0x00) { /* ISO 14443 A, 106 kbps: the only kind of card here */
            if (list_can_find(e, init, init_len)) {
                rn = list_found(e, r);
                break;
            }
            if (c->mx_rty_passive == 0xFF) {
                /* infinite retries: answered when a (matching) card arrives, or never */
                c->pending = PENDING_WAIT_TAG;
                c->pending_cmd = cmd;
                memcpy(c->pending_data, init, init_len);
                c->pending_len = init_len;
                if (init_len > 0 || e->gone_pending)
                    note_gone(e);
                return;
            }
        } else if (c->mx_rty_passive == 0xFF) {
            c->pending = PENDING_FOREVER;
            c->pending_cmd = cmd;
            return;
        }
        note_gone(e);
        r[rn++] = 0; /* NbTg */
        break;
    }
    case CMD_IN_SELECT:
        if (!c->target_active) {
            r[rn++] = ST_BAD_STATE;
        } else if (e->tag.present && e->tag.uid_len == c->target_uid_len &&
                   memcmp(e->tag.uid, c->target_uid, c->target_uid_len) == 0) {
            c->target_deselected = false;
            c->target_generation = e->tag.generation;
            r[rn++] = ST_OK;
        } else {
            note_gone(e);
            r[rn++] = ST_TIMEOUT;
        }
        break;
    case CMD_IN_DESELECT:
        if (c->target_active)
            c->target_deselected = true;
        r[rn++] = ST_OK;
        break;
    case CMD_IN_RELEASE:
        c->target_active = false;
        r[rn++] = ST_OK;
        break;
    case CMD_IN_DATA_EXCHANGE: {
        if (len < 1 || (d[0] & 0x0F) != 1 || !c->target_active || c->target_deselected) {
            r[rn++] = ST_BAD_STATE;
            break;
        }
        size_t an = 0;
        if (target_answers(e) && card_answer(e, false, d + 1, len - 1, r + 1, &an)) {
            r[0] = ST_OK;
            rn = 1 + an;
            break;
        }
        reply_rf_timeout(e, cmd, t0);
        return;
    }
    case CMD_IN_COMMUNICATE_THRU: {
        size_t an = 0;
        if (target_answers(e) && card_answer(e, true, d, len, r + 1, &an)) {
            r[0] = ST_OK;
            rn = 1 + an;
            break;
        }
        reply_rf_timeout(e, cmd, t0);
        return;
    }
    default:
        tx_queue(e, error_frame, sizeof(error_frame), t0);
        return;
    }
    send_reply(e, cmd, r, rn, t0);
}

/* Ends a command still in progress when its time has come (RF timeout) or its card has arrived. */
static void chip_service(struct emu *e, int64_t now)
{
    struct chip *c = e->chip;
    switch (c->pending) {
    case PENDING_NONE:
    case PENDING_FOREVER:
        return;
    case PENDING_TIMED:
        if (now < c->pending_due_ns)
            return;
        c->pending = PENDING_NONE;
        if (c->pending_gone_seen)
            note_gone(e);
        send_reply(e, c->pending_cmd, c->pending_reply, c->pending_reply_len, now);
        return;
    case PENDING_WAIT_TAG:
        if (list_can_find(e, c->pending_data, c->pending_len)) {
            uint8_t r[MAX_FRAME_DATA];
            c->pending = PENDING_NONE;
            size_t rn = list_found(e, r);
            send_reply(e, c->pending_cmd, r, rn, now);
        }
        return;
    }
}

/* ---- input: wake-up and frame parsing --------------------------------------------------------------- */

static void rx_consume(struct emu *e, size_t n)
{
    memmove(e->rx, e->rx + n, e->rx_len - n);
    e->rx_len -= n;
}

/* Takes every complete frame out of the receive buffer. */
static void rx_parse(struct emu *e)
{
    struct chip *c = e->chip;
    for (;;) {
        if (!c->awake) {
            /* Asleep (power-on, PowerDown): everything up to and including a 0x55 is lost. */
            size_t i = 0;
            while (i < e->rx_len && e->rx[i] != 0x55)
                i++;
            if (i == e->rx_len) {
                e->rx_len = 0;
                return;
            }
            rx_consume(e, i + 1);
            c->awake = true;
            continue;
        }
        /* find the start code 00 FF */
        size_t i = 0;
        while (i + 1 < e->rx_len && !(e->rx[i] == 0x00 && e->rx[i + 1] == 0xFF))
            i++;
        if (i + 1 >= e->rx_len) {
            /* keep a trailing 0x00: it may be the first half of a start code */
            if (e->rx_len > 0 && e->rx[e->rx_len - 1] == 0x00) {
                rx_consume(e, e->rx_len - 1);
            } else {
                e->rx_len = 0;
            }
            return;
        }
        rx_consume(e, i);
        if (e->rx_len < 4)
            return;
        uint8_t len = e->rx[2], lcs = e->rx[3];
        if (len == 0x00 && lcs == 0xFF) {
            /* host ACK: abort the command in progress */
            rx_consume(e, 4);
            c->pending = PENDING_NONE;
            continue;
        }
        if (len == 0xFF && lcs == 0x00) {
            /* host NACK: send the last answer again */
            rx_consume(e, 4);
            if (c->last_frame_len)
                tx_queue(e, c->last_frame, c->last_frame_len, e->rx_clock_ns);
            continue;
        }
        size_t header, dlen;
        if (len == 0xFF && lcs == 0xFF) {
            if (e->rx_len < 7)
                return;
            if (((e->rx[4] + e->rx[5] + e->rx[6]) & 0xFF) != 0) {
                rx_consume(e, 1);
                continue;
            }
            header = 7;
            dlen = (size_t)e->rx[4] << 8 | e->rx[5];
        } else {
            if (((len + lcs) & 0xFF) != 0) {
                rx_consume(e, 1); /* not a frame after all */
                continue;
            }
            header = 4;
            dlen = len;
        }
        if (dlen < 2 || dlen > MAX_FRAME_DATA) {
            rx_consume(e, 1);
            continue;
        }
        if (e->rx_len < header + dlen + 1)
            return; /* wait for the rest */
        const uint8_t *data = e->rx + header;
        uint8_t sum = 0;
        for (size_t k = 0; k <= dlen; k++)
            sum += data[k];
        if (sum != 0 || data[0] != TFI_HOST) {
            /* a real PN532 drops a frame with a bad checksum without a word */
            warnx_("dropped a frame with a bad %s", sum != 0 ? "checksum" : "TFI");
            rx_consume(e, header + dlen + 1);
            continue;
        }
        uint8_t frame[MAX_FRAME_DATA];
        memcpy(frame, data, dlen);
        rx_consume(e, header + dlen + 1);
        chip_command(e, frame[1], frame + 2, dlen - 2, e->rx_clock_ns);
    }
}

/* ---- the pseudo-terminal ---------------------------------------------------------------------------- */

static void link_update(struct emu *e)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", e->link_path, (long)getpid()) >= (int)sizeof(tmp))
        die("link path too long: %s", e->link_path);
    unlink(tmp);
    if (symlink(e->pts, tmp) < 0)
        die("symlink %s: %s", tmp, strerror(errno));
    if (rename(tmp, e->link_path) < 0) {
        int err = errno;
        unlink(tmp);
        die("rename %s -> %s: %s", tmp, e->link_path, strerror(err));
    }
}

static void link_remove(struct emu *e)
{
    char target[PATH_MAX];
    ssize_t n = readlink(e->link_path, target, sizeof(target) - 1);
    if (n < 0)
        return;
    target[n] = '\0';
    if (strcmp(target, e->pts) == 0)
        unlink(e->link_path); /* only our own link */
}

static int pty_open(struct emu *e)
{
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (grantpt(fd) < 0 || unlockpt(fd) < 0 || ptsname_r(fd, e->pts, sizeof(e->pts)) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    struct termios tio;
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetispeed(&tio, B115200);
        cfsetospeed(&tio, B115200);
        tcsetattr(fd, TCSANOW, &tio);
    }
    e->master = fd;
    e->slave_closed = true; /* until someone opens it */
    e->hup_retry_ns = 0;
    e->rx_len = 0;
    tx_drop(e);
    link_update(e);
    return 0;
}

static void pty_close(struct emu *e)
{
    if (e->master < 0)
        return;
    close(e->master);
    e->master = -1;
    link_remove(e);
    tx_drop(e);
    e->rx_len = 0;
}

/* Reads what the host wrote. The chip sees each byte one line time after the previous one. */
static void pty_read(struct emu *e, int64_t now)
{
    for (;;) {
        uint8_t buf[512];
        ssize_t n = read(e->master, buf, sizeof(buf));
        if (n > 0) {
            if (e->slave_closed) {
                e->slave_closed = false;
            }
            if (e->rx_clock_ns < now)
                e->rx_clock_ns = now;
            e->rx_clock_ns += n * e->byte_ns;
            if (e->chip->muted)
                continue; /* a hung chip hears nothing */
            size_t room = sizeof(e->rx) - e->rx_len;
            size_t take = (size_t)n < room ? (size_t)n : room;
            memcpy(e->rx + e->rx_len, buf, take);
            e->rx_len += take;
            rx_parse(e);
            if (take < (size_t)n) {
                /* garbage longer than any frame: start over with what did not fit */
                e->rx_len = 0;
                memcpy(e->rx, buf + take, (size_t)n - take);
                e->rx_len = (size_t)n - take;
                rx_parse(e);
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EIO) {
            /* nobody holds the slave open (libnfc closed the port): keep the master, look again later */
            if (!e->slave_closed)
                tx_drop(e);
            e->slave_closed = true;
            e->hup_retry_ns = now + HUP_RETRY_NS;
        }
        return;
    }
}

/* ---- control ---------------------------------------------------------------------------------------- */

static int parse_uid(const char *s, uint8_t *uid, size_t *len)
{
    size_t n = 0;
    int half = -1;
    for (; *s; s++) {
        int v;
        if (*s == ':' || *s == '-' || *s == '.')
            continue;
        if (*s >= '0' && *s <= '9')
            v = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            v = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F')
            v = *s - 'A' + 10;
        else
            return -EINVAL;
        if (half < 0) {
            half = v;
        } else {
            if (n == 10)
                return -EINVAL;
            uid[n++] = (uint8_t)(half << 4 | v);
            half = -1;
        }
    }
    if (half >= 0 || (n != 4 && n != 7 && n != 10))
        return -EINVAL;
    *len = n;
    return 0;
}

static void chip_reset(struct emu *e)
{
    chip_power_on(e->chip);
    tx_drop(e);
    e->rx_len = 0;
}

static void control_line(struct emu *e, char *line)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r", &save);
    if (!cmd)
        return;
    char *arg1 = strtok_r(NULL, " \t\r", &save);
    char *arg2 = strtok_r(NULL, " \t\r", &save);
    char *extra = strtok_r(NULL, " \t\r", &save);
    if (extra) {
        warnx_("control: too many words after '%s'", cmd);
        return;
    }

    if (strcmp(cmd, "tag") == 0) {
        struct tag t = {0};
        if (!arg1 || parse_uid(arg1, t.uid, &t.uid_len) < 0) {
            warnx_("control: tag needs a UID of 4, 7 or 10 bytes in hex");
            return;
        }
        if (!arg2)
            t.type = t.uid_len == 4 ? TAG_CLASSIC : TAG_ULTRALIGHT;
        else if (strcmp(arg2, "classic") == 0)
            t.type = TAG_CLASSIC;
        else if (strcmp(arg2, "ultralight") == 0)
            t.type = TAG_ULTRALIGHT;
        else if (strcmp(arg2, "desfire") == 0)
            t.type = TAG_DESFIRE;
        else {
            warnx_("control: unknown card type '%s' (classic, ultralight, desfire)", arg2);
            return;
        }
        switch (t.type) {
        case TAG_CLASSIC:
            t.atqa[0] = 0x00;
            t.atqa[1] = t.uid_len == 4 ? 0x04 : 0x44;
            t.sak = 0x08;
            break;
        case TAG_ULTRALIGHT:
            t.atqa[0] = 0x00;
            t.atqa[1] = 0x44;
            t.sak = 0x00;
            break;
        case TAG_DESFIRE:
            t.atqa[0] = 0x03;
            t.atqa[1] = t.uid_len == 4 ? 0x04 : 0x44;
            t.sak = 0x20;
            break;
        }
        t.present = true;
        t.generation = ++e->generations;
        tag_fill_memory(&t);
        e->tag = t;
        char hex[21];
        uid_hex(t.uid, t.uid_len, hex);
        event(e, "tag %s", hex);
    } else if (strcmp(cmd, "hostile") == 0) {
        if (!arg1 || arg2) {
            warnx_("control: hostile needs one mode");
            return;
        }
        size_t m = 1;
        while (m < sizeof(hostile_names) / sizeof(hostile_names[0]) && strcmp(arg1, hostile_names[m]) != 0)
            m++;
        if (m == sizeof(hostile_names) / sizeof(hostile_names[0])) {
            warnx_("control: unknown hostile mode '%s'", arg1);
            return;
        }
        e->hostile = (enum hostile)m;
        e->noise = 0x2545F491u;
        event(e, "hostile %s", arg1);
    } else if (arg1) {
        warnx_("control: '%s' takes no argument", cmd);
        return;
    } else if (strcmp(cmd, "remove") == 0) {
        if (e->tag.present) {
            e->tag.present = false;
            e->gone_pending = true;
        }
        event(e, "remove");
    } else if (strcmp(cmd, "mute") == 0) {
        e->chip->muted = true;
        e->chip->pending = PENDING_NONE;
        tx_drop(e); /* the chip hangs mid-answer */
        e->rx_len = 0;
        event(e, "mute");
    } else if (strcmp(cmd, "unmute") == 0) {
        e->chip->muted = false;
        e->rx_len = 0;
        event(e, "unmute");
    } else if (strcmp(cmd, "vanish") == 0) {
        if (e->master >= 0) {
            pty_close(e);
            chip_power_on(e->chip);
        }
        event(e, "vanish");
    } else if (strcmp(cmd, "return") == 0) {
        if (e->master < 0) {
            int r = pty_open(e);
            if (r < 0)
                die("cannot open a pseudo-terminal: %s", strerror(-r));
            chip_power_on(e->chip);
        }
        event(e, "return %s", e->pts);
    } else if (strcmp(cmd, "reset") == 0) {
        chip_reset(e);
        event(e, "reset");
    } else if (strcmp(cmd, "normal") == 0) {
        e->hostile = HOSTILE_NONE;
        tx_drop(e);             /* the rest of a flood or of a huge frame is not sent */
        event(e, "normal");
    } else if (strcmp(cmd, "quit") == 0) {
        e->quit = true;
    } else {
        warnx_("control: unknown command '%s'", cmd);
    }
}

static void control_read(struct emu *e)
{
    for (;;) {
        ssize_t n = read(e->control, e->ctl_buf + e->ctl_len, sizeof(e->ctl_buf) - 1 - e->ctl_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        e->ctl_len += (size_t)n;
        char *start = e->ctl_buf;
        char *nl;
        while ((nl = memchr(start, '\n', e->ctl_len - (size_t)(start - e->ctl_buf)))) {
            *nl = '\0';
            if (!e->ctl_overlong)
                control_line(e, start);
            e->ctl_overlong = false;
            start = nl + 1;
        }
        size_t rest = e->ctl_len - (size_t)(start - e->ctl_buf);
        memmove(e->ctl_buf, start, rest);
        e->ctl_len = rest;
        if (e->ctl_len == sizeof(e->ctl_buf) - 1) {
            warnx_("control: line too long, ignored");
            e->ctl_overlong = true;
            e->ctl_len = 0;
        }
    }
}

static void control_open(struct emu *e)
{
    struct stat st;
    if (stat(e->control_path, &st) < 0) {
        if (errno != ENOENT || mkfifo(e->control_path, 0600) < 0)
            die("cannot create the control FIFO %s: %s", e->control_path, strerror(errno));
    } else if (!S_ISFIFO(st.st_mode)) {
        die("%s exists and is not a FIFO", e->control_path);
    }
    e->control = open(e->control_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (e->control < 0)
        die("open %s: %s", e->control_path, strerror(errno));
    /* Our own writer: writers coming and going never make the FIFO read as end of file. */
    e->control_keepalive = open(e->control_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (e->control_keepalive < 0)
        die("open %s for writing: %s", e->control_path, strerror(errno));
}

/* ---- main loop -------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: pn532_emu --link PATH --control PATH [--events PATH] [--baud N]\n"
          "  --link PATH     symlink to the emulated reader's pty (connstring pn532_uart:PATH)\n"
          "  --control PATH  FIFO of commands: tag UID [classic|ultralight|desfire], remove, mute,\n"
          "                  unmute, vanish, return, reset, hostile MODE, normal, quit\n"
          "  --events PATH   where events go, one line each (default: standard output)\n"
          "  --baud N        pace the bytes sent like a serial line at N baud, 8N1 (default 115200;\n"
          "                  0 = unpaced)\n",
          f);
}

static int64_t min_deadline(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static void run(struct emu *e)
{
    sigset_t blocked, unblocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigprocmask(SIG_BLOCK, &blocked, &unblocked);
    sigdelset(&unblocked, SIGTERM);
    sigdelset(&unblocked, SIGINT);

    while (!e->quit && !stop_signal) {
        int64_t now = now_ns();
        chip_service(e, now);
        if (e->hostile == HOSTILE_FLOOD && e->tx_len < 512 && e->master >= 0 && !e->slave_closed)
            noise_queue(e, 1024, now);  /* without end, at the line rate */
        if (!e->tx_blocked)
            tx_flush(e, now);

        int64_t deadline = -1;
        if (e->tx_len > 0 && !e->tx_blocked)
            deadline = e->tx_next_ns;
        if (e->chip->pending == PENDING_TIMED)
            deadline = min_deadline(deadline, e->chip->pending_due_ns);

        struct pollfd pfd[2];
        nfds_t nfds = 0;
        pfd[nfds++] = (struct pollfd){.fd = e->control, .events = POLLIN};
        bool poll_master = false;
        if (e->master >= 0) {
            if (e->slave_closed && now < e->hup_retry_ns) {
                deadline = min_deadline(deadline, e->hup_retry_ns);
            } else {
                pfd[nfds++] = (struct pollfd){.fd = e->master,
                                              .events = (short)(POLLIN | (e->tx_blocked ? POLLOUT : 0))};
                poll_master = true;
            }
        }

        struct timespec ts, *tsp = NULL;
        if (deadline >= 0) {
            int64_t wait = deadline - now;
            if (wait < 0)
                wait = 0;
            ts.tv_sec = (time_t)(wait / NS_PER_S);
            ts.tv_nsec = (long)(wait % NS_PER_S);
            tsp = &ts;
        }
        int r = ppoll(pfd, nfds, tsp, &unblocked);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("ppoll: %s", strerror(errno));
        }
        now = now_ns();
        if (pfd[0].revents & POLLIN)
            control_read(e);
        if (poll_master && e->master >= 0 && nfds > 1) {
            short rev = pfd[1].revents;
            if (rev & POLLOUT)
                e->tx_blocked = false;
            if (rev & POLLIN)
                pty_read(e, now);
            if ((rev & POLLHUP) && !(rev & POLLIN)) {
                if (!e->slave_closed)
                    tx_drop(e);
                e->slave_closed = true;
                e->hup_retry_ns = now + HUP_RETRY_NS;
            } else if (!(rev & POLLHUP) && e->slave_closed) {
                e->slave_closed = false; /* someone opened the slave again */
            }
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"link", required_argument, NULL, 'l'},
        {"control", required_argument, NULL, 'c'},
        {"events", required_argument, NULL, 'e'},
        {"baud", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct emu e = {.master = -1, .control = -1, .control_keepalive = -1, .baud = 115200};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'l':
            e.link_path = optarg;
            break;
        case 'c':
            e.control_path = optarg;
            break;
        case 'e':
            e.events_path = optarg;
            break;
        case 'b': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 0 || v > 10000000) {
                fprintf(stderr, "pn532_emu: --baud wants a number of baud (0 = unpaced), not '%s'\n", optarg);
                return 2;
            }
            e.baud = v;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pn532_emu: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!e.link_path || !e.control_path) {
        fprintf(stderr, "pn532_emu: --link and --control are required\n");
        usage(stderr);
        return 2;
    }
    /* 8N1: ten bits on the line per byte */
    e.byte_ns = e.baud ? (10 * NS_PER_S + e.baud / 2) / e.baud : 0;

    if (e.events_path) {
        int fd = open(e.events_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            die("open %s: %s", e.events_path, strerror(errno));
        e.events = fdopen(fd, "a");
        if (!e.events)
            die("fdopen: %s", strerror(errno));
    } else {
        e.events = stdout;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Byte deadlines are 87 us apart: the default 50 us of timer slack would be most of one. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    e.chip = calloc(1, sizeof(*e.chip));
    if (!e.chip)
        die("out of memory");
    chip_power_on(e.chip);
    control_open(&e);
    int r = pty_open(&e);
    if (r < 0)
        die("cannot open a pseudo-terminal: %s", strerror(-r));
    event(&e, "ready %s", e.pts);

    run(&e);

    pty_close(&e);
    close(e.control);
    close(e.control_keepalive);
    free(e.chip);
    if (e.events != stdout)
        fclose(e.events);
    return 0;
}
