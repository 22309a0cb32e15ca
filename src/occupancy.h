/* What the site looks like now: who is present, desks free/booked/occupied, rooms. Shared by
 * `telecentrectl occupancy` and (later) the MQTT occupancy topic, so both say the same thing. */
#pragma once
#include <jansson.h>
#include <stdint.h>

#include "policy.h"
#include "store.h"

enum resource_state {
    RESOURCE_FREE,
    RESOURCE_BOOKED,        /* a booking covers now, not checked in */
    RESOURCE_OCCUPIED,      /* a checked-in booking covers now */
};
const char *resource_state_name(enum resource_state s);

/* {"at":..., "present":N, "capacity":N, "desks":{"total","free","booked","occupied"},
 *  "rooms":[{"id","state","until"}], "members":[names of present members who opted in]}.
 * Returns a new reference or NULL (errno set). */
json_t *occupancy_json(struct store *st, const struct policy_config *pc, int64_t now);
