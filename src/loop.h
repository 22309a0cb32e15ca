/* The one event loop (epoll). Every input is a file descriptor: readers, GPIO events, signals
 * (signalfd), timers (timerfd). Callbacks get their userdata; nothing blocks. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_timer;

typedef void (*loop_fd_cb)(int fd, uint32_t events, void *userdata);
typedef void (*loop_timer_cb)(struct loop_timer *t, void *userdata);
typedef void (*loop_signal_cb)(int signo, void *userdata);

int loop_new(struct loop **out);
struct loop *loop_free(struct loop *l);    /* accepts NULL; closes its timers and signalfd */

int loop_add_fd(struct loop *l, int fd, uint32_t epoll_events, loop_fd_cb cb, void *userdata);
/* Safe from inside any callback, including the fd's own: an event already fetched for a removed fd is
 * dropped. The fd itself is not closed. -ENOENT if not watched. */
int loop_remove_fd(struct loop *l, int fd);

/* Blocks the signal (sigprocmask) and delivers it through the loop's signalfd. It stays blocked after
 * loop_free(), so a signal arriving during shutdown cannot kill the process half-way. */
int loop_add_signal(struct loop *l, int signo, loop_signal_cb cb, void *userdata);

/* A timer on CLOCK_MONOTONIC (timerfd). Armed for an absolute monotonic time in ms; 0 disarms. */
int loop_timer_new(struct loop *l, loop_timer_cb cb, void *userdata, struct loop_timer **out);
int loop_timer_arm(struct loop_timer *t, uint64_t at_mono_ms);
int loop_timer_arm_in(struct loop_timer *t, uint64_t in_ms);
/* Closes a timer before loop_free() (safe inside callbacks); accepts NULL; returns NULL. */
struct loop_timer *loop_timer_free(struct loop_timer *t);

/* Runs until loop_quit(); returns the code given to loop_quit, or a negative errno on failure. */
int loop_run(struct loop *l);
void loop_quit(struct loop *l, int code);
