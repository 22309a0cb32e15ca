/* The generic reader layer: picks the backend, normalises UIDs, hands taps and problems up. */
#include "reader.h"

#include <errno.h>
#ifdef TC_HAVE_LIBNFC
#include "reader_libnfc.h"
#endif
#include <stdlib.h>

int reader_open(const struct reader_config *cfg, reader_tap_cb cb, void *userdata, struct reader **out)
{
    const struct reader_backend_ops *ops = NULL;
    switch (cfg->driver) {
    case READER_DRIVER_SIM:
        ops = &reader_sim_ops;
        break;
    case READER_DRIVER_LIBNFC:
#ifdef TC_HAVE_LIBNFC
        ops = &reader_libnfc_ops;
        break;
#else
        return -ENOTSUP;    /* built without libnfc */
#endif
    }
    if (!ops)
        return -EINVAL;

    struct reader *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->ops = ops;
    r->cfg = *cfg;
    r->cb = cb;
    r->cb_userdata = userdata;
    int err = ops->open(r, &r->cfg);
    if (err < 0) {
        free(r);
        return err;
    }
    *out = r;
    return 0;
}

struct reader *reader_close(struct reader *r)
{
    if (!r)
        return NULL;
    r->ops->close(r);
    free(r);
    return NULL;
}

void reader_set_problem_cb(struct reader *r, reader_problem_cb cb)
{
    r->problem_cb = cb;
}

int reader_fd(struct reader *r)
{
    return r->ops->fd(r);
}

int reader_dispatch(struct reader *r)
{
    return r->ops->dispatch(r);
}

const struct reader_config *reader_config(const struct reader *r)
{
    return &r->cfg;
}

int reader_report_tap(struct reader *r, const char *raw_uid)
{
    char uid[UID_STR_MAX];
    if (uid_normalize(raw_uid, uid) < 0)
        return -EINVAL;
    if (r->cb)
        r->cb(r, uid, r->cb_userdata);
    return 0;
}

void reader_report_problem(struct reader *r, int err, const char *raw)
{
    if (r->problem_cb)
        r->problem_cb(r, err, raw, r->cb_userdata);
}

void reader_set_health_cb(struct reader *r, reader_health_cb cb)
{
    r->health_cb = cb;
}

void reader_set_removed_cb(struct reader *r, reader_removed_cb cb)
{
    r->removed_cb = cb;
}

void reader_report_health(struct reader *r, enum reader_health health, const char *detail)
{
    if (r->health_cb)
        r->health_cb(r, health, detail, r->cb_userdata);
}

void reader_report_removed(struct reader *r)
{
    if (r->removed_cb)
        r->removed_cb(r, r->cb_userdata);
}
