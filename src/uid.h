/* Badge UIDs: hex, case and separators (':', '-', ' ', '.') ignored; 4, 7 or 10 bytes (ISO 14443A). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define UID_MAX_BYTES 10
#define UID_STR_MAX (UID_MAX_BYTES * 2 + 1)

/* "04:a1:b2:c3" -> "04A1B2C3". -EINVAL if not hex or not 4, 7 or 10 bytes. */
int uid_normalize(const char *in, char out[UID_STR_MAX]);
/* Raw bytes (from a reader) -> normalised string. -EINVAL for a bad length. */
int uid_from_bytes(const uint8_t *bytes, size_t len, char out[UID_STR_MAX]);
