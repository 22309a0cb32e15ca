/* gpiosim-probe: samples gpio-sim `value` attributes inside the VM, with CLOCK_MONOTONIC timestamps, so
 * that a relay pulse can be measured to the millisecond (a busybox shell loop is far too coarse).
 *
 *   gpiosim-probe [--tap FIFO UID] [--stall-on-rise PID] [--until LABEL] [--until-high LABEL] --ms N
 *                 LABEL=PATH...
 *
 * Samples every PATH about once a millisecond for at most N ms. --tap writes "UID\n" to the reader FIFO
 * once sampling has started (so the rising edge cannot be missed). --until ends the sampling once LABEL has
 * risen and fallen again (given several times: once every one of them has); --until-high once LABEL reads
 * 1. Then one line per LABEL:
 *   LABEL rises=R first=0|1 final=0|1 rise_ms=T width_ms=W
 * rise_ms: the first rise after the start (-1 if none); width_ms: from that rise to the next fall (-1 if it
 * did not fall). Exit status 0, or 2 on a usage or I/O error.
 *
 * --stall-on-rise PID stalls the daemon's event loop once the first LABEL has risen, until sampling ends:
 * its main thread (tid PID, the loop) is attached with PTRACE_SEIZE and held in a ptrace-stop with
 * PTRACE_INTERRUPT, which stops that one thread while the process's other threads (the pulse guard) run
 * on. SIGSTOP would freeze every thread, guard included. The stop waits (at most STALL_WAIT_MS) for the
 * loop to be back in epoll_wait: stopped at an arbitrary instruction, the thread could be inside the GPIO
 * layer's short critical section (between the relay's ioctl and the mutex unlock, where the probe's
 * wake-up is likely to preempt it), which would hold up the guard for a reason no real stall has: a loop
 * stalls in its work (a slow disk, a blocking call), not halfway through setting a line. Prints
 * "stall tid=PID stopped=0|1 after_ms=T syscall=N" first (T: from the rise; N: where it was stopped,
 * from /proc/PID/syscall, -1 if not in a system call).
 *
 * The probe runs SCHED_FIFO when it may, so that the daemon's own work in the guest's one CPU does not
 * delay its samples (each sample is a few reads, then it sleeps a millisecond).
 * Built static by tests/integration/gpiosim_vm.sh; not part of the daemon. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINES 8
#define STALL_WAIT_MS 500.0

struct probe_line {
    const char *label;
    int fd;
    int value;
    int first;
    int rises;
    double rise_ms;
    double fall_ms;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A sysfs attribute is read again from offset 0 each time: one pread per sample. */
static int read_value(int fd)
{
    char buf[8];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    if (n <= 0)
        return -1;
    return buf[0] == '1' ? 1 : 0;
}

static int tap(const char *fifo, const char *uid)
{
    char line[64];
    int len = snprintf(line, sizeof line, "%s\n", uid);
    if (len < 0 || (size_t)len >= sizeof line)
        return -EINVAL;
    /* O_NONBLOCK: a daemon that is not reading makes this fail (ENXIO) instead of hanging the VM. */
    int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, line, (size_t)len);
    int err = n == len ? 0 : (n < 0 ? -errno : -EIO);
    close(fd);
    return err;
}

/* The system call thread `tid` is blocked in (/proc/TID/syscall), -1 if none or unknown. */
static long current_syscall(pid_t tid)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end;
    long nr = strtol(buf, &end, 10);
    return end == buf ? -1 : nr;   /* "running" reads as no number */
}

static bool in_epoll_wait(long nr)
{
    return nr == SYS_epoll_wait || nr == SYS_epoll_pwait
#ifdef SYS_epoll_pwait2
           || nr == SYS_epoll_pwait2
#endif
        ;
}

/* Holds thread `tid` in a ptrace-stop: 0, or a negative errno. */
static int stall_thread(pid_t tid)
{
    if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0)
        return -errno;
    if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0)
        return -errno;
    int status;
    if (waitpid(tid, &status, __WALL) < 0)
        return -errno;
    return WIFSTOPPED(status) ? 0 : -ESRCH;
}

static struct probe_line *find(struct probe_line *lines, int n, const char *label)
{
    for (int i = 0; i < n; i++)
        if (strcmp(lines[i].label, label) == 0)
            return &lines[i];
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: gpiosim-probe [--tap FIFO UID] [--stall-on-rise PID] [--until LABEL] "
                    "[--until-high LABEL] --ms N LABEL=PATH...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *tap_fifo = NULL, *tap_uid = NULL, *until[MAX_LINES], *until_high = NULL;
    int n_until = 0;
    long stall_tid = 0, max_ms = 0;
    struct probe_line lines[MAX_LINES];
    int n = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tap") == 0 && i + 2 < argc) {
            tap_fifo = argv[++i];
            tap_uid = argv[++i];
        } else if (strcmp(argv[i], "--stall-on-rise") == 0 && i + 1 < argc) {
            stall_tid = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc && n_until < MAX_LINES) {
            until[n_until++] = argv[++i];
        } else if (strcmp(argv[i], "--until-high") == 0 && i + 1 < argc) {
            until_high = argv[++i];
        } else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc) {
            max_ms = strtol(argv[++i], NULL, 10);
        } else if (strchr(argv[i], '=') && n < MAX_LINES) {
            char *eq = strchr(argv[i], '=');
            *eq = '\0';
            lines[n] = (struct probe_line){.label = argv[i], .rise_ms = -1, .fall_ms = -1};
            lines[n].fd = open(eq + 1, O_RDONLY | O_CLOEXEC);
            if (lines[n].fd < 0) {
                fprintf(stderr, "gpiosim-probe: %s: %s\n", eq + 1, strerror(errno));
                return 2;
            }
            n++;
        } else {
            return usage();
        }
    }
    if (n == 0 || max_ms <= 0)
        return usage();
    struct probe_line *until_lines[MAX_LINES];
    for (int i = 0; i < n_until; i++)
        if (!(until_lines[i] = find(lines, n, until[i])))
            return usage();
    struct probe_line *until_high_line = until_high ? find(lines, n, until_high) : NULL;
    if (until_high && !until_high_line)
        return usage();

    const struct sched_param fifo = {.sched_priority = 50};
    (void)sched_setscheduler(0, SCHED_FIFO, &fifo);   /* best effort: a plain run only samples later */

    double start = now_ms();
    for (int i = 0; i < n; i++) {
        lines[i].value = lines[i].first = read_value(lines[i].fd);
        if (lines[i].value < 0) {
            fprintf(stderr, "gpiosim-probe: cannot read %s\n", lines[i].label);
            return 2;
        }
    }
    if (tap_fifo) {
        int r = tap(tap_fifo, tap_uid);
        if (r < 0) {
            fprintf(stderr, "gpiosim-probe: tap on %s: %s\n", tap_fifo, strerror(-r));
            return 2;
        }
    }
    bool stall_tried = false;
    int stall_err = 0;
    double first_rise = -1, stall_after = -1;
    long stall_syscall = -1;
    const struct timespec period = {.tv_sec = 0, .tv_nsec = 1000000};
    for (;;) {
        double t = now_ms();
        for (int i = 0; i < n; i++) {
            int v = read_value(lines[i].fd);
            if (v < 0) {
                fprintf(stderr, "gpiosim-probe: cannot read %s\n", lines[i].label);
                return 2;
            }
            if (v == 1 && lines[i].value == 0) {
                if (lines[i].rises++ == 0)
                    lines[i].rise_ms = t - start;
                if (first_rise < 0)
                    first_rise = t;
            } else if (v == 0 && lines[i].value == 1 && lines[i].rises == 1 && lines[i].fall_ms < 0) {
                lines[i].fall_ms = t - start;
            }
            lines[i].value = v;
        }
        if (stall_tid > 0 && !stall_tried && first_rise >= 0) {
            long nr = current_syscall((pid_t)stall_tid);
            if (in_epoll_wait(nr) || t - first_rise >= STALL_WAIT_MS) {
                stall_err = stall_thread((pid_t)stall_tid);
                stall_tried = true;
                stall_after = t - first_rise;
                stall_syscall = nr;
            }
        }
        bool all_fell = n_until > 0;
        for (int i = 0; i < n_until; i++)
            all_fell = all_fell && until_lines[i]->fall_ms >= 0;
        if (all_fell)
            break;
        if (until_high_line && until_high_line->value == 1)
            break;
        if (t - start >= (double)max_ms)
            break;
        nanosleep(&period, NULL);
    }
    if (stall_tid > 0) {
        printf("stall tid=%ld stopped=%d after_ms=%.1f syscall=%ld%s%s\n", stall_tid,
               stall_tried && stall_err == 0, stall_after, stall_syscall, stall_err ? " error=" : "",
               stall_err ? strerror(-stall_err) : "");
        if (stall_tried)
            ptrace(PTRACE_DETACH, (pid_t)stall_tid, NULL, NULL);   /* resumes the thread */
    }
    for (int i = 0; i < n; i++) {
        const struct probe_line *l = &lines[i];
        printf("%s rises=%d first=%d final=%d rise_ms=%.1f width_ms=%.1f\n", l->label, l->rises, l->first,
               l->value, l->rise_ms, l->fall_ms >= 0 ? l->fall_ms - l->rise_ms : -1.0);
        close(l->fd);
    }
    return 0;
}
