#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *log_ident = "telecentred";
static int log_max = LOG_INFO;
static int log_journal = -1;   /* -1: not yet known */

/* systemd sets JOURNAL_STREAM to "DEVICE:INODE" of the stream it connected to stderr: only then does
 * the "<N>" priority prefix mean something to the reader. */
static bool stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, int max_priority)
{
    if (ident)
        log_ident = ident;
    log_max = max_priority;
    log_journal = stderr_is_journal();
}

void log_set_max_priority(int max_priority)
{
    log_max = max_priority;
}

static const char *priority_word(int priority)
{
    static const char *const words[] = {"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"};
    return words[priority & 7];
}

void log_msg(int priority, const char *fmt, ...)
{
    int saved_errno = errno;   /* so callers can log with %m after a failure */
    if ((priority & 7) > log_max)
        return;
    if (log_journal < 0)
        log_journal = stderr_is_journal();

    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    errno = saved_errno;
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);

    /* One write per line so lines from concurrent writers do not interleave. To the journal, the
     * "<N>" prefix it files by (SyslogLevelPrefix=yes); to a terminal or a file, a readable word. */
    char out[1152];
    int n;
    if (log_journal)
        n = snprintf(out, sizeof out, "<%d>%s\n", priority & 7, line);
    else
        n = snprintf(out, sizeof out, "%s: %s: %s\n", log_ident, priority_word(priority), line);
    if (n > (int)sizeof out - 1)
        n = (int)sizeof out - 1;
    ssize_t w = write(STDERR_FILENO, out, (size_t)n);
    (void)w;
    errno = saved_errno;
}

char *log_printable(char *s)
{
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    return s;
}
