/* SPDX-License-Identifier: Apache-2.0 */
#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Leading decimal digits only: strtoull would accept "-1", " 1" and "0x1". */
static int parse_digits(const char **sp, uint64_t *v)
{
        const char *s = *sp;
        uint64_t n = 0;

        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        for (; isdigit((unsigned char)*s); s++) {
                if (__builtin_mul_overflow(n, 10, &n) ||
                    __builtin_add_overflow(n, (uint64_t)(*s - '0'), &n))
                        return -ERANGE;
        }
        *sp = s;
        *v = n;
        return 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
        uint64_t v;
        int r;

        if (s == NULL)
                return -EINVAL;
        r = parse_digits(&s, &v);
        if (r < 0)
                return r;
        if (*s != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *out = v;
        return 0;
}

int parse_duration_ms(const char *s, uint64_t *ms)
{
        static const struct {
                const char *suffix;
                uint64_t mul;
        } units[] = {{"", 1000}, {"s", 1000}, {"ms", 1}, {"m", 60000}, {"h", 3600000}};
        uint64_t v;
        int r;

        if (s == NULL)
                return -EINVAL;
        r = parse_digits(&s, &v);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                uint64_t prod;

                if (strcmp(s, units[i].suffix) != 0)
                        continue;
                /* The output is untouched on error: the product lands in prod first. */
                if (__builtin_mul_overflow(v, units[i].mul, &prod))
                        return -ERANGE;
                *ms = prod;
                return 0;
        }
        return -EINVAL;
}

int parse_size(const char *s, uint64_t *bytes)
{
        uint64_t v, mul = 1;
        int r;

        if (s == NULL)
                return -EINVAL;
        r = parse_digits(&s, &v);
        if (r < 0)
                return r;
        switch (toupper((unsigned char)*s)) {
        case '\0':
                break;
        case 'K':
                mul = 1ull << 10;
                s++;
                break;
        case 'M':
                mul = 1ull << 20;
                s++;
                break;
        case 'G':
                mul = 1ull << 30;
                s++;
                break;
        case 'T':
                mul = 1ull << 40;
                s++;
                break;
        case 'B':
                break;
        default:
                return -EINVAL;
        }
        if (mul > 1 && (strcmp(s, "iB") == 0 || strcmp(s, "B") == 0))
                s += strlen(s);
        else if (mul == 1 && strcmp(s, "B") == 0)
                s++;
        if (*s != '\0')
                return -EINVAL;
        if (__builtin_mul_overflow(v, mul, &v))
                return -ERANGE;
        *bytes = v;
        return 0;
}
