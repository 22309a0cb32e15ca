/* nfc_probe: watches one libnfc reader the way a door daemon would, and prints what it sees.
 *
 *   nfc_probe CONNSTRING [--period-ms N] [--duration-s N]
 *
 * Opens the device, turns NP_INFINITE_SELECT off, then every period: with no card, one
 * nfc_initiator_select_passive_target (ISO 14443A, 106 kbps); with a card, nfc_initiator_target_is_present.
 * A device error closes it and it is reopened every period until it comes back. One line per change on
 * standard output, flushed, each starting with CLOCK_MONOTONIC nanoseconds (comparable with pn532_emu's
 * events):
 *   <ns> opened <ms>                    open + initiator init took <ms>
 *   <ns> open-failed                    once per outage
 *   <ns> empty                          select found no card (printed when that changes)
 *   <ns> selected <UID> <ms>            select found this card; the call took <ms>
 *   <ns> held <UID>                     three presence checks in a row found it still there
 *   <ns> removed <code> <ms>            target_is_present said the card is gone (NFC_ETGRELEASED)
 *   <ns> error <call> <code> <ms>       a call failed otherwise (<ms>: how long it took)
 *   <ns> closed <ms>                    nfc_close after an error (<ms>: how long it took)
 * Exits 0 after --duration-s (default: never) or on SIGTERM/SIGINT. Test rig only. */
#include <errno.h>
#include <getopt.h>
#include <nfc/nfc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    printf("%lld ", (long long)now_ns());
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static long ms_since(int64_t t0)
{
    return (long)((now_ns() - t0) / NS_PER_MS);
}

static void uid_hex(const nfc_target *t, char out_hex[21])
{
    static const char digits[] = "0123456789ABCDEF";
    size_t n = t->nti.nai.szUidLen > 10 ? 10 : t->nti.nai.szUidLen;
    for (size_t i = 0; i < n; i++) {
        out_hex[2 * i] = digits[t->nti.nai.abtUid[i] >> 4];
        out_hex[2 * i + 1] = digits[t->nti.nai.abtUid[i] & 0x0F];
    }
    out_hex[2 * n] = '\0';
}

static void close_device(nfc_device **dev)
{
    int64_t t0 = now_ns();
    nfc_close(*dev);
    *dev = NULL;
    out("closed %ld", ms_since(t0));
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"period-ms", required_argument, NULL, 'p'},
        {"duration-s", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    long period_ms = 100, duration_s = 0;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        long v;
        switch (o) {
        case 'p':
        case 'd':
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 0 || (o == 'p' && v < 1)) {
                fprintf(stderr, "nfc_probe: bad number '%s'\n", optarg);
                return 2;
            }
            if (o == 'p')
                period_ms = v;
            else
                duration_s = v;
            break;
        default:
            fprintf(stderr, "usage: nfc_probe CONNSTRING [--period-ms N] [--duration-s N]\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: nfc_probe CONNSTRING [--period-ms N] [--duration-s N]\n");
        return 2;
    }
    const char *connstring = argv[optind];

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    nfc_context *ctx = NULL;
    nfc_init(&ctx);
    if (!ctx) {
        fprintf(stderr, "nfc_probe: nfc_init failed\n");
        return 1;
    }

    const nfc_modulation mod = {.nmt = NMT_ISO14443A, .nbr = NBR_106};
    nfc_device *dev = NULL;
    nfc_target target;
    bool have_target = false, said_empty = false, said_open_failed = false;
    int present_count = 0;
    char target_hex[21] = "";
    int64_t end = duration_s ? now_ns() + duration_s * NS_PER_S : 0;
    int64_t next = now_ns();

    while (!stop && (!end || now_ns() < end)) {
        if (!dev) {
            int64_t t0 = now_ns();
            dev = nfc_open(ctx, connstring);
            int r = 0;
            if (dev && (r = nfc_initiator_init(dev)) >= 0)
                r = nfc_device_set_property_bool(dev, NP_INFINITE_SELECT, false);
            if (!dev || r < 0) {
                if (dev) {
                    out("error init %d %ld", r, ms_since(t0));
                    close_device(&dev);
                }
                if (!said_open_failed)
                    out("open-failed");
                said_open_failed = true;
            } else {
                out("opened %ld", ms_since(t0));
                said_open_failed = false;
                said_empty = false;
                have_target = false;
            }
        } else if (!have_target) {
            int64_t t0 = now_ns();
            int r = nfc_initiator_select_passive_target(dev, mod, NULL, 0, &target);
            if (r > 0) {
                uid_hex(&target, target_hex);
                out("selected %s %ld", target_hex, ms_since(t0));
                have_target = true;
                present_count = 0;
                said_empty = false;
            } else if (r == 0) {
                if (!said_empty)
                    out("empty");
                said_empty = true;
            } else {
                out("error select %d %ld", r, ms_since(t0));
                close_device(&dev);
            }
        } else {
            int64_t t0 = now_ns();
            int r = nfc_initiator_target_is_present(dev, NULL);
            if (r == NFC_ETGRELEASED) {
                out("removed %d %ld", r, ms_since(t0));
                have_target = false;
            } else if (r < 0) {
                out("error present %d %ld", r, ms_since(t0));
                have_target = false;
                close_device(&dev);
            } else if (++present_count == 3) {
                out("held %s", target_hex);
            }
        }
        /* absolute deadlines: the period does not stretch by the time the calls take */
        next += period_ms * NS_PER_MS;
        int64_t now = now_ns();
        if (next < now)
            next = now;
        struct timespec ts = {.tv_sec = (time_t)(next / NS_PER_S), .tv_nsec = (long)(next % NS_PER_S)};
        while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
    }
    if (dev)
        nfc_close(dev);
    nfc_exit(ctx);
    return 0;
}
