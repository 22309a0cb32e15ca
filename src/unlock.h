/* Remote unlock commands (P/S/door/D/unlock): {"at":"2026-11-23T08:05:00Z","by":"manager-07"}.
 * Acted on only when not retained and not older (or further in the future) than max_age_s by its own
 * timestamp; docs/mqtt.md. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define UNLOCK_MAX_BYTES 1024

/* 0 and by filled (an id: 1-63 characters of A-Z a-z 0-9 . _ @ : -); -EINVAL malformed (why says
 * what), -ESTALE too old or too far ahead, -EPERM retained. */
int unlock_parse(const char *payload, size_t len, bool retained, int64_t now, int max_age_s,
                 char by[ID_MAX], char *why, size_t why_len);
