/* Badge readers behind one small interface; one file per backend (reader_sim.c now, reader_libnfc.c
 * next). A reader reports taps (one per card presentation) as normalised UIDs through a pollable fd. */
#pragma once
#include <stdbool.h>

#include "config.h"
#include "uid.h"

struct reader;

typedef void (*reader_tap_cb)(struct reader *r, const char *uid, void *userdata);
/* Something the reader could not turn into a tap, for the daemon to log (the library never logs):
 *   -EINVAL    a malformed UID; raw is the input as read. It may be most of a real UID: log it at
 *              debug level only.
 *   -EMSGSIZE  an input line too long to be a UID (raw NULL).
 *   other      the reader failed (raw NULL). */
typedef void (*reader_problem_cb)(struct reader *r, int err, const char *raw, void *userdata);

struct reader_backend_ops {
    const char *name;
    int (*open)(struct reader *r, const struct reader_config *cfg);
    int (*fd)(struct reader *r);
    int (*dispatch)(struct reader *r);   /* reads pending input, calls reader_report_tap() */
    void (*close)(struct reader *r);
};

/* -ENOTSUP for READER_DRIVER_LIBNFC in a build without libnfc support.
 * The sim driver reads cfg->fifo (created if missing, mode 0600): each line is one tap of that UID;
 * lines are trimmed, empty lines ignored, a partial line waits for its newline. */
int reader_open(const struct reader_config *cfg, reader_tap_cb cb, void *userdata, struct reader **out);
/* Where problems go (called with reader_open's userdata); without one they are dropped. */
void reader_set_problem_cb(struct reader *r, reader_problem_cb cb);
struct reader *reader_close(struct reader *r);   /* accepts NULL; returns NULL */
int reader_fd(struct reader *r);
int reader_dispatch(struct reader *r);
const struct reader_config *reader_config(const struct reader *r);

/* For backends. */
struct reader {
    const struct reader_backend_ops *ops;
    struct reader_config cfg;
    reader_tap_cb cb;
    void *cb_userdata;
    reader_problem_cb problem_cb;
    void *backend;
};
/* Normalises a raw UID text and reports it; malformed input returns -EINVAL (the caller logs). */
int reader_report_tap(struct reader *r, const char *raw_uid);
void reader_report_problem(struct reader *r, int err, const char *raw);
extern const struct reader_backend_ops reader_sim_ops;
