/* sd_notify() keeps NOTIFY_SOCKET in the environment (unset_environment = 0) so that the reader
 * workers, which are forked, could notify too; they never do: NotifyAccess=main in the unit. */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

static int send_state(const char *state, const char *status)
{
    int r = status ? sd_notifyf(0, "%s\nSTATUS=%s", state, status) : sd_notify(0, state);
    return r < 0 ? r : 0;
}

int notify_ready(const char *status)
{
    return send_state("READY=1", status);
}

int notify_reloading(const char *status)
{
    return send_state("RELOADING=1", status);
}

int notify_stopping(const char *status)
{
    return send_state("STOPPING=1", status);
}

int notify_status(const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    int r = sd_notifyf(0, "STATUS=%s", text);
    return r < 0 ? r : 0;
}

int notify_watchdog(void)
{
    int r = sd_notify(0, "WATCHDOG=1");
    return r < 0 ? r : 0;
}

uint64_t notify_watchdog_interval_ms(void)
{
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec / 1000u : 0;
}
