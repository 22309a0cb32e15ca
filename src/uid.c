#include "uid.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

static bool uid_length_ok(size_t bytes)
{
    return bytes == 4 || bytes == 7 || bytes == 10;
}

int uid_normalize(const char *in, char out[UID_STR_MAX])
{
    size_t n = 0;
    if (!in)
        return -EINVAL;
    for (const char *p = in; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ':' || c == '-' || c == ' ' || c == '.')
            continue;
        if (!isxdigit(c) || n >= UID_MAX_BYTES * 2)
            return -EINVAL;
        out[n++] = (char)toupper(c);
    }
    if (n % 2 || !uid_length_ok(n / 2))
        return -EINVAL;
    out[n] = '\0';
    return 0;
}

int uid_from_bytes(const uint8_t *bytes, size_t len, char out[UID_STR_MAX])
{
    static const char hex[] = "0123456789ABCDEF";
    if (!bytes || !uid_length_ok(len))
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 0xf];
    }
    out[2 * len] = '\0';
    return 0;
}
