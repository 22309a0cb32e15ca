/* Sync batches from the central network (P/S/sync, and optionally a network-wide topic): versioned
 * member/badge/resource upserts and deletes, validated whole and applied in one transaction, or rejected
 * whole with the reason. docs/mqtt.md has the format. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SYNC_MAX_BYTES (8u * 1024u * 1024u)     /* larger payloads are rejected unread */
#define SYNC_MAX_OPS 20000

enum sync_scope {
    SYNC_SITE,          /* P/S/sync: meta key "sync_version" */
    SYNC_NETWORK,       /* the network-wide topic: meta key "sync_version_network" */
};

enum sync_outcome {
    SYNC_APPLIED,
    SYNC_REJECTED,      /* nothing changed; error says why ("ops[3].badge.member: no member m-9") */
    SYNC_IGNORED,       /* version not newer than the last applied: acknowledged, nothing changed */
};
const char *sync_outcome_name(enum sync_outcome o);     /* "applied", "rejected", "ignored" */

struct sync_result {
    enum sync_outcome outcome;
    int64_t version;            /* 0 when the payload had no valid version */
    size_t n_ops;
    bool resources_changed;     /* a resource was added, changed or deleted (HA discovery, states) */
    char error[256];
};

/* Parses, validates and applies payload (len bytes, not NUL-terminated). Returns 0 with res filled
 * (any outcome), or a negative errno when the database failed (res: rejected, error says so; the
 * transaction was rolled back). The version and the apply commit in the same transaction. */
int sync_apply(struct store *st, enum sync_scope scope, const char *payload, size_t len, int64_t now,
               struct sync_result *res);
/* {"version":42,"result":"applied","ops":4} / {"version":42,"result":"rejected","error":"..."} /
 * {"version":41,"result":"ignored","reason":"..."}; "scope":"network" added for that scope. */
json_t *sync_ack_json(enum sync_scope scope, const struct sync_result *res);
/* The last applied version of a scope (0 if none) and when (0 if never). */
int sync_last_version(struct store *st, enum sync_scope scope, int64_t *version, int64_t *applied_at);
