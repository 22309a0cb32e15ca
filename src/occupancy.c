#include "occupancy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

const char *resource_state_name(enum resource_state s)
{
    switch (s) {
    case RESOURCE_FREE: return "free";
    case RESOURCE_BOOKED: return "booked";
    case RESOURCE_OCCUPIED: return "occupied";
    }
    return "?";
}

struct occupancy_walk {
    struct store *st;
    const struct policy_config *pc;
    int64_t now;
    int desks_total, desks_free, desks_booked, desks_occupied;
    json_t *rooms;
    json_t *members;
    int error;
};

/* A booking never checked in stops holding its resource once its no-show delay has passed, even
 * before the periodic sweep marks it released. */
static enum resource_state state_of(const struct occupancy_walk *w, const struct booking *b, bool found)
{
    if (!found)
        return RESOURCE_FREE;
    if (b->checked_in_at)
        return RESOURCE_OCCUPIED;
    if (w->now >= b->start + (int64_t)w->pc->no_show_minutes * 60)
        return RESOURCE_FREE;
    return RESOURCE_BOOKED;
}

static int count_resource(const struct resource *res, void *userdata)
{
    struct occupancy_walk *w = userdata;
    struct booking b;
    int r = store_resource_current_booking(w->st, res->id, w->now, &b);
    if (r < 0 && r != -ENOENT) {
        w->error = r;
        return 1;
    }
    enum resource_state state = state_of(w, &b, r == 0);
    switch (res->kind) {
    case RESOURCE_DESK:
        w->desks_total++;
        w->desks_free += state == RESOURCE_FREE;
        w->desks_booked += state == RESOURCE_BOOKED;
        w->desks_occupied += state == RESOURCE_OCCUPIED;
        break;
    case RESOURCE_ROOM: {
        char until[TZ_BUFSZ];
        json_t *room = json_pack("{s:s, s:s, s:s}", "id", res->id, "name", res->name[0] ? res->name : res->id,
                                 "state", resource_state_name(state));
        if (!room || json_array_append_new(w->rooms, room) < 0) {
            w->error = -ENOMEM;
            return 1;
        }
        json_object_set_new(room, "until",
                            state == RESOURCE_FREE ? json_null() : json_string(tz_format_iso_utc(b.end, until)));
        break;
    }
    }
    return 0;
}

/* "Alice Martin" -> "Alice M.": members who opted in are shown, but not by full name. */
static void short_name(const char *name, char *out, size_t outlen)
{
    const char *space = strrchr(name, ' ');
    if (!space || !space[1] || !isalpha((unsigned char)space[1])) {
        snprintf(out, outlen, "%s", name);
        return;
    }
    snprintf(out, outlen, "%.*s %c.", (int)(space - name), name, space[1]);
}

static int add_member(const struct presence *p, const struct member *m, void *userdata)
{
    struct occupancy_walk *w = userdata;
    if (!m || !m->presence_visible)
        return 0;
    char name[NAME_MAX_LEN + 4];
    short_name(m->name, name, sizeof name);
    if (json_array_append_new(w->members, json_string(name)) < 0) {
        w->error = -ENOMEM;
        return 1;
    }
    return 0;
}

json_t *occupancy_json(struct store *st, const struct policy_config *pc, int64_t now)
{
    struct occupancy_walk w = {.st = st, .pc = pc, .now = now, .rooms = json_array(), .members = json_array()};
    json_t *doc = NULL;
    int present = store_presence_count(st, now);
    if (present < 0) {
        w.error = present;
        goto out;
    }
    if (!w.rooms || !w.members) {
        w.error = -ENOMEM;
        goto out;
    }
    int r = store_resource_foreach(st, count_resource, &w);
    if (w.error || r < 0) {
        w.error = w.error ? w.error : r;
        goto out;
    }
    r = store_presence_foreach(st, now, add_member, &w);
    if (w.error || r < 0) {
        w.error = w.error ? w.error : r;
        goto out;
    }
    char at[TZ_BUFSZ];
    doc = json_pack("{s:s, s:i, s:i, s:{s:i, s:i, s:i, s:i}, s:O, s:O}", "at", tz_format_iso_utc(now, at),
                    "present", present, "capacity", pc->capacity, "desks", "total", w.desks_total, "free",
                    w.desks_free, "booked", w.desks_booked, "occupied", w.desks_occupied, "rooms", w.rooms,
                    "members", w.members);
    if (!doc)
        w.error = -ENOMEM;
out:
    json_decref(w.rooms);
    json_decref(w.members);
    if (!doc)
        errno = -w.error;
    return doc;
}
