/* Notifications to systemd (sd_notify, libsystemd): READY=1 once the daemon serves, STATUS= lines a
 * person can read, WATCHDOG=1 from the event loop, RELOADING=1 / STOPPING=1. Every call is a no-op
 * returning 0 when the daemon was not started by systemd (no NOTIFY_SOCKET). */
#pragma once
#include <stdint.h>

int notify_ready(const char *status);
int notify_reloading(const char *status);
int notify_stopping(const char *status);
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int notify_watchdog(void);
/* The watchdog interval systemd asked of this process (WatchdogSec=), in ms; 0 when there is none. */
uint64_t notify_watchdog_interval_ms(void);
