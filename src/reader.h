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
 * lines are trimmed, empty lines ignored, a partial line waits for its newline. The line "!unplug"
 * reports the reader offline and drops the taps that follow until "!plug" reports it back. */
int reader_open(const struct reader_config *cfg, reader_tap_cb cb, void *userdata, struct reader **out);
/* Where problems go (called with reader_open's userdata); without one they are dropped. */
void reader_set_problem_cb(struct reader *r, reader_problem_cb cb);

/* Health of a reader whose device can go away (libnfc): OFFLINE once when it is lost (unplugged, mute,
 * erroring), ONLINE once when it is back in service (and once when it first comes into service);
 * changes only, never the same state twice in a row. detail says why, for the log. The sim reader
 * reports only its "!unplug" and "!plug" lines. Removal of a card (the end of a tap) is reported too,
 * for the log and for figures. */
enum reader_health {
    READER_ONLINE,
    READER_OFFLINE,
};
typedef void (*reader_health_cb)(struct reader *r, enum reader_health health, const char *detail,
                                 void *userdata);
typedef void (*reader_removed_cb)(struct reader *r, void *userdata);
void reader_set_health_cb(struct reader *r, reader_health_cb cb);
void reader_set_removed_cb(struct reader *r, reader_removed_cb cb);
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
    reader_health_cb health_cb;
    reader_removed_cb removed_cb;
    void *backend;
};
/* Normalises a raw UID text and reports it; malformed input returns -EINVAL (the caller logs). */
int reader_report_tap(struct reader *r, const char *raw_uid);
void reader_report_problem(struct reader *r, int err, const char *raw);
void reader_report_health(struct reader *r, enum reader_health health, const char *detail);
void reader_report_removed(struct reader *r);
extern const struct reader_backend_ops reader_sim_ops;
