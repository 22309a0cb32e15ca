/* Internals of the libnfc reader backend (reader_libnfc.c) that its tests reach: the device lock (unit
 * tests) and the worker's steps (the fuzz harness fuzz/fuzz_pn532.c). Not for the daemon: it only sees
 * struct reader. */
#pragma once
#include <nfc/nfc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "uid.h"

/* The device file a libnfc connstring names: "pn532_uart:/dev/ttyS0:115200" -> "/dev/ttyS0",
 * "pn532_i2c:/dev/i2c-1" -> "/dev/i2c-1". Any path (the part after the driver name starts with '/')
 * counts, so a symlink to a serial port elsewhere is locked too. 0 with out = "" when the connstring
 * names no file (acr122_usb, acr122_usb:001:004, acr122_pcsc:NAME); -ENAMETOOLONG if out is too small. */
int reader_libnfc_device_path(const char *connstring, char *out, size_t outlen);

/* Opens the device file path names (symlinks resolved) and takes flock(LOCK_EX | LOCK_NB) on it, so
 * that two processes cannot drive one reader and garble each other's frames (libnfc's own "claimed"
 * mark on serial ports does not hold on current kernels). Returns the fd holding the lock (close it to
 * release). -EBUSY when another open file holds it: *holder is then the PID that took that lock (from
 * /proc/locks), or 0 if it cannot be told. Other negative errno: the file cannot be opened (-ENOENT:
 * not plugged in). */
int reader_libnfc_lock_device(const char *path, pid_t *holder);

struct reader_backend_ops;
extern const struct reader_backend_ops reader_libnfc_ops;

/* ---- the worker's steps, callable without a worker process ----
 * The reader's worker process runs these in a loop (reader_libnfc.c); the fuzz harness runs the same
 * code against a scripted PN532, with the messages handed to a function instead of the daemon's pipe. */

/* What the worker tells the daemon: one message, one atomic pipe write. */
enum reader_libnfc_msg_kind {
    READER_LIBNFC_TAP = 1,      /* uid, uid_len: a card entered the field (or a held card re-armed) */
    READER_LIBNFC_REMOVED,      /* the card of the last tap left the field */
    READER_LIBNFC_ONLINE,       /* detail: the device; a poll succeeded after an open */
    READER_LIBNFC_OFFLINE,      /* detail: why the reader was lost */
};
struct reader_libnfc_msg {
    uint8_t kind;               /* enum reader_libnfc_msg_kind; any byte value when read from a pipe */
    uint8_t uid_len;
    uint8_t uid[UID_MAX_BYTES];
    char detail[180];
};

/* The UID bytes of a target libnfc selected, as a TAP message carries them: *len is its length (at most
 * UID_MAX_BYTES; libnfc 1.8 folds a longer one into 10 bytes itself). */
void reader_libnfc_target_uid(const nfc_target *nt, uint8_t uid[UID_MAX_BYTES], size_t *len);
/* The daemon's reading of a TAP message: its UID normalised (upper-case hex) into uid, 0; -EINVAL when
 * it is not 4, 7 or 10 bytes long (not a tap), with raw the bytes in hex for a debug line. */
int reader_libnfc_msg_uid(const struct reader_libnfc_msg *m, char uid[UID_STR_MAX],
                          char raw[UID_MAX_BYTES * 2 + 1]);

/* One reader's device and card state, as its worker keeps it between polls. */
struct reader_libnfc_poller;
typedef void (*reader_libnfc_msg_cb)(const struct reader_libnfc_msg *m, void *userdata);
/* cfg and ctx must outlive the poller. Messages go to cb. NULL when out of memory. */
struct reader_libnfc_poller *reader_libnfc_poller_new(const struct reader_config *cfg, nfc_context *ctx,
                                                      reader_libnfc_msg_cb cb, void *userdata);
/* One turn of the worker's loop: opens the device if it is closed (device lock, nfc_open,
 * nfc_initiator_init, NP_INFINITE_SELECT off), then polls once: an ISO14443A select, or the held card's
 * presence check. Returns when the next turn is due (CLOCK_MONOTONIC ms; 0 = at once); the worker waits
 * until then. */
uint64_t reader_libnfc_poller_step(struct reader_libnfc_poller *p);
/* Whether the device is open (a failed step closes it; the next one reopens it). */
bool reader_libnfc_poller_is_open(const struct reader_libnfc_poller *p);
/* Closes the device and frees the poller; accepts NULL. */
void reader_libnfc_poller_free(struct reader_libnfc_poller *p);
