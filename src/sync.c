/* Sync batches from the central network. See sync.h; docs/mqtt.md has the format.
 *
 * One pass: each op is checked and then applied inside a single transaction, and the first problem
 * rolls everything back, so a batch is all or nothing without holding a parsed copy of 20,000 ops.
 * Checking before writing matters anyway: the store would refuse some bad values (a CHECK constraint),
 * but only these checks can say which op and which field was wrong. The version is read, compared and
 * written in the same transaction as the ops, so a batch and its version always land together. */
#include "sync.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "uid.h"

static const char *version_key(enum sync_scope scope)
{
    switch (scope) {
    case SYNC_SITE:
        return "sync_version";
    case SYNC_NETWORK:
        return "sync_version_network";
    }
    return "sync_version";
}

static const char *applied_key(enum sync_scope scope)
{
    switch (scope) {
    case SYNC_SITE:
        return "sync_applied_at";
    case SYNC_NETWORK:
        return "sync_applied_at_network";
    }
    return "sync_applied_at";
}

const char *sync_outcome_name(enum sync_outcome o)
{
    switch (o) {
    case SYNC_APPLIED:
        return "applied";
    case SYNC_REJECTED:
        return "rejected";
    case SYNC_IGNORED:
        return "ignored";
    }
    return "?";
}

/* ---- errors ---- */

/* Where in the batch a check is: "ops[3].badge" plus the field. */
struct where {
    size_t index;
    const char *entity;     /* "member", "badge", "resource"; NULL at the op level */
};

static int reject(struct sync_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reject(struct sync_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    /* The message may quote what was sent (an unknown key) and is cut to fit: printable ASCII only, so
     * it is always valid UTF-8 for the ack and one clean line in the log. */
    log_printable(res->error);
    res->outcome = SYNC_REJECTED;
    return -EINVAL;
}

static int reject_at(struct sync_result *res, const struct where *w, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reject_at(struct sync_result *res, const struct where *w, const char *field, const char *fmt, ...)
{
    char path[80];
    snprintf(path, sizeof path, "ops[%zu]%s%s%s%s", w->index, w->entity ? "." : "", w->entity ? w->entity : "",
             field ? "." : "", field ? field : "");
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reject(res, "%s: %s", path, msg);
}

/* ---- field readers: each rejects with the op's path ---- */

static int check_fields(struct sync_result *res, const struct where *w, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = !strcmp(key, *a);
        if (!known)
            return reject_at(res, w, NULL, "unknown field '%.40s'", key);
    }
    return 0;
}

/* Text shown in one-line outputs (the CLI, logs): no control characters, fits its column. */
static int read_text(struct sync_result *res, const struct where *w, json_t *obj, const char *field,
                     bool required, char *out, size_t size)
{
    out[0] = '\0';
    json_t *v = json_object_get(obj, field);
    if (!v || (!required && json_is_null(v))) {
        if (required)
            return reject_at(res, w, field, "missing");
        return 0;
    }
    if (!json_is_string(v))
        return reject_at(res, w, field, required ? "must be a string" : "must be a string or null");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n >= size)
        return reject_at(res, w, field, "too long (at most %zu bytes)", size - 1);
    if (strlen(s) != n)
        return reject_at(res, w, field, "must not contain NUL");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return reject_at(res, w, field, "must not contain control characters");
    memcpy(out, s, n + 1);
    return 0;
}

static int read_id(struct sync_result *res, const struct where *w, json_t *obj, const char *field, char out[ID_MAX])
{
    json_t *v = json_object_get(obj, field);
    if (!v)
        return reject_at(res, w, field, "missing");
    if (!json_is_string(v))
        return reject_at(res, w, field, "must be a string");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || !id_is_valid(s))
        return reject_at(res, w, field, "not a valid id (1 to 63 of A-Z a-z 0-9 . _ -)");
    snprintf(out, ID_MAX, "%s", s);
    return 0;
}

static int read_bool(struct sync_result *res, const struct where *w, json_t *obj, const char *field, bool *out)
{
    *out = false;
    json_t *v = json_object_get(obj, field);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return reject_at(res, w, field, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

static int read_date(struct sync_result *res, const struct where *w, json_t *obj, const char *field, int *ymd)
{
    *ymd = 0;
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || tz_parse_date(json_string_value(v), ymd) < 0)
        return reject_at(res, w, field, "must be a date \"YYYY-MM-DD\" or null");
    return 0;
}

/* ---- ops ---- */

static const char *const member_fields[] = {"id", "name", "role", "email", "valid_from", "valid_until",
                                            "suspended", "presence_visible", NULL};
static const char *const badge_fields[] = {"uid", "member", "label", "revoked", NULL};
static const char *const resource_fields[] = {"id", "kind", "name", "seats", NULL};
static const char *const delete_member_fields[] = {"id", NULL};
static const char *const delete_badge_fields[] = {"uid", NULL};
static const char *const delete_resource_fields[] = {"id", NULL};

/* A store failure that is about the data (named in the ack) rather than the database itself. */
static int store_failed(struct store *st, struct sync_result *res, const struct where *w, const char *field,
                        int r)
{
    reject_at(res, w, field, "%s", store_errmsg(st));
    return r;
}

static int upsert_member(struct store *st, struct sync_result *res, const struct where *w, json_t *obj,
                         int64_t now)
{
    struct member m = {.role = ROLE_MEMBER, .created_at = now};
    int r;
    if ((r = check_fields(res, w, obj, member_fields)) < 0 || (r = read_id(res, w, obj, "id", m.id)) < 0 ||
        (r = read_text(res, w, obj, "name", true, m.name, sizeof m.name)) < 0)
        return r;
    if (!m.name[0])
        return reject_at(res, w, "name", "must not be empty");
    json_t *role = json_object_get(obj, "role");
    if (role && (!json_is_string(role) || member_role_parse(json_string_value(role), &m.role) < 0))
        return reject_at(res, w, "role", "must be \"member\", \"keyholder\" or \"manager\"");
    if ((r = read_text(res, w, obj, "email", false, m.email, sizeof m.email)) < 0)
        return r;
    if (m.email[0]) {
        const char *at = strchr(m.email, '@');
        if (!at || at == m.email || !at[1] || strchr(m.email, ' '))
            return reject_at(res, w, "email", "not an e-mail address");
    }
    if ((r = read_date(res, w, obj, "valid_from", &m.valid_from)) < 0 ||
        (r = read_date(res, w, obj, "valid_until", &m.valid_until)) < 0 ||
        (r = read_bool(res, w, obj, "suspended", &m.suspended)) < 0 ||
        (r = read_bool(res, w, obj, "presence_visible", &m.presence_visible)) < 0)
        return r;
    if (m.valid_from && m.valid_until && m.valid_from > m.valid_until)
        return reject_at(res, w, "valid_until", "before valid_from");
    if ((r = store_member_upsert(st, &m)) < 0)
        return store_failed(st, res, w, NULL, r);
    return 0;
}

static int upsert_badge(struct store *st, struct sync_result *res, const struct where *w, json_t *obj,
                        int64_t now)
{
    struct badge b = {.created_at = now};
    int r;
    if ((r = check_fields(res, w, obj, badge_fields)) < 0)
        return r;
    json_t *uid = json_object_get(obj, "uid");
    if (!uid)
        return reject_at(res, w, "uid", "missing");
    if (!json_is_string(uid) || strlen(json_string_value(uid)) != json_string_length(uid) ||
        uid_normalize(json_string_value(uid), b.uid) < 0)
        return reject_at(res, w, "uid", "not a badge UID (hex, 4, 7 or 10 bytes)");
    if ((r = read_id(res, w, obj, "member", b.member_id)) < 0 ||
        (r = read_text(res, w, obj, "label", false, b.label, sizeof b.label)) < 0 ||
        (r = read_bool(res, w, obj, "revoked", &b.revoked)) < 0)
        return r;
    b.revoked_at = b.revoked ? now : 0;
    if ((r = store_badge_upsert(st, &b)) < 0)
        return store_failed(st, res, w, r == -ENOENT ? "member" : NULL, r);
    return 0;
}

static int upsert_resource(struct store *st, struct sync_result *res, const struct where *w, json_t *obj,
                           bool *changed)
{
    struct resource rs = {.seats = 1};
    int r;
    if ((r = check_fields(res, w, obj, resource_fields)) < 0 || (r = read_id(res, w, obj, "id", rs.id)) < 0)
        return r;
    json_t *kind = json_object_get(obj, "kind");
    if (!kind)
        return reject_at(res, w, "kind", "missing");
    if (!json_is_string(kind) || resource_kind_parse(json_string_value(kind), &rs.kind) < 0)
        return reject_at(res, w, "kind", "must be \"desk\" or \"room\"");
    if ((r = read_text(res, w, obj, "name", false, rs.name, sizeof rs.name)) < 0)
        return r;
    json_t *seats = json_object_get(obj, "seats");
    if (seats) {
        if (!json_is_integer(seats) || json_integer_value(seats) < 1 || json_integer_value(seats) > 100000)
            return reject_at(res, w, "seats", "must be a whole number from 1");
        rs.seats = (int)json_integer_value(seats);
    }
    if ((r = store_resource_upsert(st, &rs)) < 0)
        return store_failed(st, res, w, NULL, r);
    *changed = true;
    return 0;
}

/* Deleting what is not there is not an error: the batch states what must be, and it already is. */
static int delete_entity(struct store *st, struct sync_result *res, const struct where *w, json_t *obj,
                         int64_t now, bool *changed)
{
    int r;
    char id[ID_MAX];
    if (!strcmp(w->entity, "member")) {
        if ((r = check_fields(res, w, obj, delete_member_fields)) < 0 || (r = read_id(res, w, obj, "id", id)) < 0)
            return r;
        r = store_member_remove(st, id);
    } else if (!strcmp(w->entity, "badge")) {
        if ((r = check_fields(res, w, obj, delete_badge_fields)) < 0)
            return r;
        char uid[UID_STR_MAX];
        json_t *v = json_object_get(obj, "uid");
        if (!v)
            return reject_at(res, w, "uid", "missing");
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            uid_normalize(json_string_value(v), uid) < 0)
            return reject_at(res, w, "uid", "not a badge UID (hex, 4, 7 or 10 bytes)");
        r = store_badge_delete(st, uid);
    } else {
        if ((r = check_fields(res, w, obj, delete_resource_fields)) < 0 || (r = read_id(res, w, obj, "id", id)) < 0)
            return r;
        int64_t blocking = 0;
        r = store_resource_remove(st, id, now, &blocking);
        if (r == -EBUSY && blocking)
            return reject_at(res, w, NULL, "'%s' has a confirmed booking to come (b-%" PRId64 ")", id, blocking);
        if (r == 0)
            *changed = true;
    }
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return store_failed(st, res, w, NULL, r);
    return 0;
}

static int apply_op(struct store *st, enum sync_scope scope, struct sync_result *res, size_t index, json_t *op,
                    int64_t now)
{
    struct where w = {.index = index};
    if (!json_is_object(op))
        return reject_at(res, &w, NULL, "must be an object");
    static const char *const op_fields[] = {"op", "member", "badge", "resource", NULL};
    int r = check_fields(res, &w, op, op_fields);
    if (r < 0)
        return r;
    json_t *kind = json_object_get(op, "op");
    if (!kind)
        return reject_at(res, &w, "op", "missing");
    bool upsert;
    if (json_is_string(kind) && !strcmp(json_string_value(kind), "upsert"))
        upsert = true;
    else if (json_is_string(kind) && !strcmp(json_string_value(kind), "delete"))
        upsert = false;
    else
        return reject_at(res, &w, "op", "must be \"upsert\" or \"delete\"");

    int n = 0;
    json_t *obj = NULL;
    static const char *const entities[] = {"member", "badge", "resource"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(op, entities[i]);
        if (v) {
            n++;
            obj = v;
            w.entity = entities[i];
        }
    }
    if (n != 1) {
        w.entity = NULL;
        return reject_at(res, &w, NULL, "exactly one of member, badge, resource");
    }
    if (!json_is_object(obj))
        return reject_at(res, &w, NULL, "must be an object");
    /* Resources (desks, rooms) belong to one site; the network topic carries people. */
    if (scope == SYNC_NETWORK && !strcmp(w.entity, "resource"))
        return reject_at(res, &w, NULL, "resources cannot be synced on the network topic");

    if (!upsert)
        return delete_entity(st, res, &w, obj, now, &res->resources_changed);
    if (!strcmp(w.entity, "member"))
        return upsert_member(st, res, &w, obj, now);
    if (!strcmp(w.entity, "badge"))
        return upsert_badge(st, res, &w, obj, now);
    return upsert_resource(st, res, &w, obj, &res->resources_changed);
}

/* ---- the batch ---- */

static int read_meta_int(struct store *st, const char *key, int64_t *out)
{
    char v[32];
    *out = 0;
    int r = store_meta_get(st, key, v, sizeof v);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    *out = strtoll(v, NULL, 10);
    return 0;
}

static int write_meta_int(struct store *st, const char *key, int64_t value)
{
    char v[32];
    snprintf(v, sizeof v, "%" PRId64, value);
    return store_meta_set(st, key, v);
}

/* The database itself failed: nothing was applied, and the reason is the store's. */
static int db_failed(struct store *st, struct sync_result *res, int r)
{
    char why[200];
    snprintf(why, sizeof why, "%s", store_errmsg(st));
    store_rollback(st);
    res->resources_changed = false;
    reject(res, "database error: %s", why);
    return r;
}

int sync_apply(struct store *st, enum sync_scope scope, const char *payload, size_t len, int64_t now,
               struct sync_result *res)
{
    memset(res, 0, sizeof *res);
    res->outcome = SYNC_REJECTED;
    if (len > SYNC_MAX_BYTES) {
        reject(res, "payload of %zu bytes, over the %u-byte limit", len, (unsigned)SYNC_MAX_BYTES);
        return 0;
    }
    if (!payload || len == 0) {
        reject(res, "empty payload");
        return 0;
    }
    json_error_t err;
    json_t *j = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        /* jansson ends its text with the token it stopped at ("near '\"Alice Martin\"'"): a member's
         * name or a badge UID from the batch would reach the log and the published ack. The line and
         * column say where; "near end of file" carries nothing and stays. */
        char *near = strstr(err.text, " near '");
        if (near)
            *near = '\0';
        reject(res, "malformed JSON: %s (line %d, column %d)", err.text, err.line, err.column);
        return 0;
    }

    int r = 0;
    if (!json_is_object(j)) {
        reject(res, "not a JSON object");
        goto out;
    }
    const char *key;
    json_t *value;
    json_object_foreach(j, key, value) {
        if (strcmp(key, "version") && strcmp(key, "ops")) {
            reject(res, "unknown field '%.40s'", key);
            goto out;
        }
    }
    json_t *version = json_object_get(j, "version");
    if (!version || !json_is_integer(version) || json_integer_value(version) < 1) {
        reject(res, "version: must be a positive integer");
        goto out;
    }
    res->version = json_integer_value(version);
    json_t *ops = json_object_get(j, "ops");
    if (!ops || !json_is_array(ops)) {
        reject(res, "ops: must be an array");
        goto out;
    }
    if (json_array_size(ops) > SYNC_MAX_OPS) {
        reject(res, "ops: %zu ops, over the limit of %u", json_array_size(ops), (unsigned)SYNC_MAX_OPS);
        goto out;
    }

    if ((r = store_begin(st)) < 0) {
        reject(res, "database error: %s", store_errmsg(st));
        goto out;
    }
    int64_t last;
    if ((r = read_meta_int(st, version_key(scope), &last)) < 0) {
        db_failed(st, res, r);
        goto out;
    }
    if (res->version <= last) {
        store_rollback(st);
        res->outcome = SYNC_IGNORED;
        snprintf(res->error, sizeof res->error, "version %" PRId64 " is not newer than %" PRId64, res->version,
                 last);
        goto out;
    }
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op) {
        if ((r = apply_op(st, scope, res, i, op, now)) < 0)
            break;
    }
    if (r < 0) {
        /* A data problem (-EINVAL from a check, or a store refusal already named) is an answer, not a
         * failure; anything else means the database did not work. */
        bool data = r == -EINVAL || r == -ENOENT || r == -EEXIST || r == -EBUSY;
        if (!data) {
            db_failed(st, res, r);
            goto out;
        }
        store_rollback(st);
        res->outcome = SYNC_REJECTED;
        res->resources_changed = false;
        r = 0;
        goto out;
    }
    if ((r = write_meta_int(st, version_key(scope), res->version)) < 0 ||
        (r = write_meta_int(st, applied_key(scope), now)) < 0 || (r = store_commit(st)) < 0) {
        db_failed(st, res, r);
        goto out;
    }
    res->outcome = SYNC_APPLIED;
    res->n_ops = json_array_size(ops);
out:
    json_decref(j);
    return r < 0 ? r : 0;
}

json_t *sync_ack_json(enum sync_scope scope, const struct sync_result *res)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int e = json_object_set_new(o, "version", res->version > 0 ? json_integer(res->version) : json_null());
    e |= json_object_set_new(o, "result", json_string(sync_outcome_name(res->outcome)));
    switch (res->outcome) {
    case SYNC_APPLIED:
        e |= json_object_set_new(o, "ops", json_integer((json_int_t)res->n_ops));
        break;
    case SYNC_REJECTED:
        e |= json_object_set_new(o, "error", json_string(res->error));
        break;
    case SYNC_IGNORED:
        e |= json_object_set_new(o, "reason", json_string(res->error));
        break;
    }
    if (scope == SYNC_NETWORK)
        e |= json_object_set_new(o, "scope", json_string("network"));
    if (e) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int sync_last_version(struct store *st, enum sync_scope scope, int64_t *version, int64_t *applied_at)
{
    int64_t v, at;
    int r = read_meta_int(st, version_key(scope), &v);
    if (r == 0)
        r = read_meta_int(st, applied_key(scope), &at);
    if (r < 0)
        return r;
    if (version)
        *version = v;
    if (applied_at)
        *applied_at = at;
    return 0;
}
