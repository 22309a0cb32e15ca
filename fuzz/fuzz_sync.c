/* Sync batches from the central network (P/S/sync and the network-wide topic; docs/mqtt.md "Sync"): the
 * payload goes through sync_apply() against a real SQLite file, and its acknowledgement through
 * sync_ack_json() and the dump the link publishes, exactly as src/link.c's handle_sync does.
 *
 * Input: the payload, as it arrives. A leading 'N' (never the start of valid JSON) sends the rest to the
 * network-wide scope instead of the site's.
 *
 * Besides crashes, leaks and undefined behaviour, it checks what the contract promises: a batch that is not
 * applied changes nothing (a fingerprint of every table the batch can touch, before and after); an applied
 * one moves the version to its own and, sent again, is ignored and changes nothing; the error is printable
 * ASCII (it is published and logged); the acknowledgement can always be built. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sync.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_set_timezone();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum sync_scope scope = SYNC_SITE;
    if (size && data[0] == 'N') {
        scope = SYNC_NETWORK;
        data++;
        size--;
    }
    struct store *st = fuzz_site_open();
    int64_t before_version = 0;
    FUZZ_CHECK(sync_last_version(st, scope, &before_version, NULL) == 0);
    uint64_t before = fuzz_site_fingerprint(st);

    struct sync_result res;
    int r = sync_apply(st, scope, (const char *)data, size, FUZZ_NOW, &res);
    /* The database is a healthy file: a negative return would be a database failure caused by the input. */
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(fuzz_is_printable(res.error));
    json_t *ack = sync_ack_json(scope, &res);
    FUZZ_CHECK(ack != NULL);
    char *text = json_dumps(ack, JSON_PRESERVE_ORDER | JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);
    json_decref(ack);

    uint64_t after = fuzz_site_fingerprint(st);
    int64_t version = 0;
    FUZZ_CHECK(sync_last_version(st, scope, &version, NULL) == 0);
    switch (res.outcome) {
    case SYNC_APPLIED:
        FUZZ_CHECK(res.version > before_version && version == res.version);
        /* Sent again (a portal retrying): acknowledged as ignored, nothing changes. */
        r = sync_apply(st, scope, (const char *)data, size, FUZZ_NOW + 1, &res);
        FUZZ_CHECK(r == 0 && res.outcome == SYNC_IGNORED);
        FUZZ_CHECK(fuzz_site_fingerprint(st) == after);
        break;
    case SYNC_REJECTED:
    case SYNC_IGNORED:
        FUZZ_CHECK(after == before && version == before_version);
        break;
    }
    fuzz_site_close(st);
    return 0;
}
