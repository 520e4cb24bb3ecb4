/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing of user-supplied quantities. 0 / -EINVAL / -ERANGE; never print. */
#ifndef LG_COMMON_PARSE_H
#define LG_COMMON_PARSE_H

#include <stdint.h>

/*
 * Duration: "30", "30s", "500ms", "2m", "1h" (a bare number is seconds).
 * Result in milliseconds; 0 is allowed and means "no limit" to callers that say so.
 */
int parse_duration_ms(const char *s, uint64_t *ms) __attribute__((warn_unused_result));

/* Size: "256M", "1G", "512K", "1048576" (bytes), binary units, optional "iB"/"B" suffix. */
int parse_size(const char *s, uint64_t *bytes) __attribute__((warn_unused_result));

/* Unsigned decimal integer in [min, max]. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
    __attribute__((warn_unused_result));

#endif
