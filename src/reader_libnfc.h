/* Internals of the libnfc reader backend (reader_libnfc.c) that its unit tests reach: the device lock.
 * Not for the daemon: it only sees struct reader. */
#pragma once
#include <stddef.h>
#include <sys/types.h>

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
