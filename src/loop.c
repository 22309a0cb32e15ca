/* The epoll loop. Every event source is a `struct source` whose address is the epoll data, so a
 * dispatch never searches. Removal only marks a source and takes it out of epoll; the memory is freed
 * after the current batch of events, so a callback may remove any source (itself included) while
 * other events for it are still in the batch. */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"

#define LOOP_MAX_EVENTS 32

enum source_kind {
    SOURCE_FD,
    SOURCE_TIMER,
    SOURCE_SIGNAL,
};

struct source {
    enum source_kind kind;
    int fd;
    bool removed;
    loop_fd_cb fd_cb;               /* SOURCE_FD */
    void *userdata;
    struct loop_timer *timer;       /* SOURCE_TIMER */
    struct source *next;
};

struct loop_timer {
    struct loop *loop;
    struct source *source;
    loop_timer_cb cb;
    void *userdata;
};

struct signal_handler {
    loop_signal_cb cb;
    void *userdata;
};

struct loop {
    int epfd;
    int sigfd;
    sigset_t sigmask;
    struct signal_handler signals[_NSIG];
    struct source *sources;
    bool has_removed;
    bool quit;
    int quit_code;
};

int loop_new(struct loop **out)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->sigfd = -1;
    sigemptyset(&l->sigmask);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        int r = -errno;
        free(l);
        return r;
    }
    *out = l;
    return 0;
}

static int source_add(struct loop *l, enum source_kind kind, int fd, uint32_t events, struct source **out)
{
    struct source *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->kind = kind;
    s->fd = fd;
    struct epoll_event ev = {.events = events, .data.ptr = s};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int r = -errno;
        free(s);
        return r;
    }
    s->next = l->sources;
    l->sources = s;
    *out = s;
    return 0;
}

static void source_remove(struct loop *l, struct source *s)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    s->removed = true;
    l->has_removed = true;
}

static void sweep_removed(struct loop *l)
{
    if (!l->has_removed)
        return;
    for (struct source **p = &l->sources; *p;) {
        struct source *s = *p;
        if (s->removed) {
            *p = s->next;
            free(s);
        } else {
            p = &s->next;
        }
    }
    l->has_removed = false;
}

struct loop *loop_free(struct loop *l)
{
    if (!l)
        return NULL;
    while (l->sources) {
        struct source *s = l->sources;
        l->sources = s->next;
        if (!s->removed && s->kind == SOURCE_TIMER) {
            close(s->fd);
            free(s->timer);
        }
        free(s);
    }
    if (l->sigfd >= 0)
        close(l->sigfd);
    close(l->epfd);
    free(l);
    return NULL;
}

int loop_add_fd(struct loop *l, int fd, uint32_t epoll_events, loop_fd_cb cb, void *userdata)
{
    if (fd < 0 || !cb)
        return -EINVAL;
    struct source *s;
    int r = source_add(l, SOURCE_FD, fd, epoll_events, &s);
    if (r < 0)
        return r;
    s->fd_cb = cb;
    s->userdata = userdata;
    return 0;
}

int loop_remove_fd(struct loop *l, int fd)
{
    for (struct source *s = l->sources; s; s = s->next) {
        if (s->kind == SOURCE_FD && s->fd == fd && !s->removed) {
            source_remove(l, s);
            return 0;
        }
    }
    return -ENOENT;
}

int loop_add_signal(struct loop *l, int signo, loop_signal_cb cb, void *userdata)
{
    if (signo <= 0 || signo >= _NSIG || !cb)
        return -EINVAL;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    /* Blocked first: a signal arriving between here and the signalfd stays pending, not lost. */
    if (sigprocmask(SIG_BLOCK, &one, NULL) < 0)
        return -errno;
    sigaddset(&l->sigmask, signo);
    l->signals[signo] = (struct signal_handler){.cb = cb, .userdata = userdata};

    int fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (l->sigfd < 0) {
        struct source *s;
        int r = source_add(l, SOURCE_SIGNAL, fd, EPOLLIN, &s);
        if (r < 0) {
            close(fd);
            return r;
        }
        l->sigfd = fd;
    }
    return 0;
}

int loop_timer_new(struct loop *l, loop_timer_cb cb, void *userdata, struct loop_timer **out)
{
    if (!cb)
        return -EINVAL;
    struct loop_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        free(t);
        return r;
    }
    int r = source_add(l, SOURCE_TIMER, fd, EPOLLIN, &t->source);
    if (r < 0) {
        close(fd);
        free(t);
        return r;
    }
    t->source->timer = t;
    t->loop = l;
    t->cb = cb;
    t->userdata = userdata;
    *out = t;
    return 0;
}

int loop_timer_arm(struct loop_timer *t, uint64_t at_mono_ms)
{
    struct itimerspec its = {0};
    int flags = 0;
    if (at_mono_ms) {
        its.it_value.tv_sec = (time_t)(at_mono_ms / 1000u);
        its.it_value.tv_nsec = (long)(at_mono_ms % 1000u) * 1000000L;
        /* Absolute: a time already past fires at once instead of drifting by the call's delay. */
        flags = TFD_TIMER_ABSTIME;
    }
    if (timerfd_settime(t->source->fd, flags, &its, NULL) < 0)
        return -errno;
    return 0;
}

int loop_timer_arm_in(struct loop_timer *t, uint64_t in_ms)
{
    return loop_timer_arm(t, clock_mono_ms() + in_ms);
}

struct loop_timer *loop_timer_free(struct loop_timer *t)
{
    if (!t)
        return NULL;
    source_remove(t->loop, t->source);
    close(t->source->fd);
    t->source->timer = NULL;
    free(t);
    return NULL;
}

static void dispatch_timer(struct source *s)
{
    uint64_t expirations;
    /* EAGAIN: re-armed or disarmed by an earlier callback of this batch, so no longer due. */
    if (read(s->fd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
        return;
    s->timer->cb(s->timer, s->timer->userdata);
}

static void dispatch_signals(struct loop *l, struct source *s)
{
    struct signalfd_siginfo si;
    while (!s->removed && read(s->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo < _NSIG && l->signals[si.ssi_signo].cb)
            l->signals[si.ssi_signo].cb((int)si.ssi_signo, l->signals[si.ssi_signo].userdata);
    }
}

int loop_run(struct loop *l)
{
    int result = 0;
    while (!l->quit) {
        struct epoll_event events[LOOP_MAX_EVENTS];
        int n = epoll_wait(l->epfd, events, LOOP_MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            result = -errno;
            break;
        }
        for (int i = 0; i < n && !l->quit; i++) {
            struct source *s = events[i].data.ptr;
            if (s->removed)
                continue;
            switch (s->kind) {
            case SOURCE_FD:
                s->fd_cb(s->fd, events[i].events, s->userdata);
                break;
            case SOURCE_TIMER:
                dispatch_timer(s);
                break;
            case SOURCE_SIGNAL:
                dispatch_signals(l, s);
                break;
            }
        }
        sweep_removed(l);
    }
    if (l->quit)
        result = l->quit_code;
    l->quit = false;
    return result;
}

void loop_quit(struct loop *l, int code)
{
    l->quit = true;
    l->quit_code = code;
}
