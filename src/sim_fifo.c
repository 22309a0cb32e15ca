#include "sim_fifo.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct sim_fifo {
    int read_fd;
    int keep_open_fd;
    size_t len;
    bool discarding;            /* inside a line that was already too long */
    char line[SIM_FIFO_LINE_MAX + 1];
};

int sim_fifo_open(const char *path, struct sim_fifo **out)
{
    if (!path || !*path)
        return -EINVAL;
    if (mkfifo(path, 0600) < 0 && errno != EEXIST)
        return -errno;

    struct sim_fifo *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->keep_open_fd = -1;
    int r;
    f->read_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f->read_fd < 0) {
        r = -errno;
        goto fail;
    }
    struct stat st;
    if (fstat(f->read_fd, &st) < 0) {
        r = -errno;
        goto fail;
    }
    if (!S_ISFIFO(st.st_mode)) {
        r = -EEXIST;
        goto fail;
    }
    /* Succeeds without blocking because a reader (ours) is open. */
    f->keep_open_fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (f->keep_open_fd < 0) {
        r = -errno;
        goto fail;
    }
    *out = f;
    return 0;

fail:
    sim_fifo_close(f);
    return r;
}

struct sim_fifo *sim_fifo_close(struct sim_fifo *f)
{
    if (!f)
        return NULL;
    if (f->read_fd >= 0)
        close(f->read_fd);
    if (f->keep_open_fd >= 0)
        close(f->keep_open_fd);
    free(f);
    return NULL;
}

int sim_fifo_fd(const struct sim_fifo *f)
{
    return f->read_fd;
}

static void end_of_line(struct sim_fifo *f, sim_fifo_line_cb cb, void *userdata)
{
    if (f->discarding) {
        f->discarding = false;
        f->len = 0;
        cb(NULL, true, userdata);
        return;
    }
    f->line[f->len] = '\0';
    f->len = 0;
    char *start = f->line;
    while (isspace((unsigned char)*start))
        start++;
    char *end = start + strlen(start);
    while (end > start && isspace((unsigned char)end[-1]))
        *--end = '\0';
    if (*start)
        cb(start, false, userdata);
}

int sim_fifo_read_lines(struct sim_fifo *f, sim_fifo_line_cb cb, void *userdata)
{
    /* One read per call: a FIFO that is written faster than its taps are decided must not hold the
     * loop (other readers, the watchdog); what is left keeps the fd readable for the next turn. */
    for (;;) {
        char chunk[SIM_FIFO_READ_MAX];
        ssize_t n = read(f->read_fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        if (n == 0)
            return 0;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n') {
                end_of_line(f, cb, userdata);
            } else if (f->discarding) {
                continue;
            } else if (f->len == SIM_FIFO_LINE_MAX) {
                f->discarding = true;
            } else {
                f->line[f->len++] = chunk[i];
            }
        }
        return 0;
    }
}
