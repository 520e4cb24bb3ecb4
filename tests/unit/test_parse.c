/* SPDX-License-Identifier: Apache-2.0 */
#include "common/parse.h"
#include "unit.h"

#include <errno.h>

TEST(duration_units)
{
        uint64_t ms = 0;

        CHECK_EQ_INT(parse_duration_ms("30", &ms), 0);
        CHECK_EQ_INT(ms, 30000);
        CHECK_EQ_INT(parse_duration_ms("30s", &ms), 0);
        CHECK_EQ_INT(ms, 30000);
        CHECK_EQ_INT(parse_duration_ms("250ms", &ms), 0);
        CHECK_EQ_INT(ms, 250);
        CHECK_EQ_INT(parse_duration_ms("2m", &ms), 0);
        CHECK_EQ_INT(ms, 120000);
        CHECK_EQ_INT(parse_duration_ms("1h", &ms), 0);
        CHECK_EQ_INT(ms, 3600000);
        CHECK_EQ_INT(parse_duration_ms("0", &ms), 0);
        CHECK_EQ_INT(ms, 0);
}

TEST(duration_rejects)
{
        uint64_t ms = 7;

        CHECK_EQ_INT(parse_duration_ms("", &ms), -EINVAL);
        CHECK_EQ_INT(parse_duration_ms("-1s", &ms), -EINVAL);
        CHECK_EQ_INT(parse_duration_ms(" 1s", &ms), -EINVAL);
        CHECK_EQ_INT(parse_duration_ms("1x", &ms), -EINVAL);
        CHECK_EQ_INT(parse_duration_ms("1.5s", &ms), -EINVAL);
        CHECK_EQ_INT(parse_duration_ms("s", &ms), -EINVAL);
        CHECK_EQ_INT(parse_duration_ms("99999999999999999999", &ms), -ERANGE);
        CHECK_EQ_INT(parse_duration_ms("18446744073709551615h", &ms), -ERANGE);
        CHECK_EQ_INT(parse_duration_ms(NULL, &ms), -EINVAL);
        CHECK_EQ_INT(ms, 7);
}

TEST(size_units)
{
        uint64_t b = 0;

        CHECK_EQ_INT(parse_size("256M", &b), 0);
        CHECK_EQ_INT(b, 256ull << 20);
        CHECK_EQ_INT(parse_size("1G", &b), 0);
        CHECK_EQ_INT(b, 1ull << 30);
        CHECK_EQ_INT(parse_size("512k", &b), 0);
        CHECK_EQ_INT(b, 512ull << 10);
        CHECK_EQ_INT(parse_size("64MiB", &b), 0);
        CHECK_EQ_INT(b, 64ull << 20);
        CHECK_EQ_INT(parse_size("100MB", &b), 0);
        CHECK_EQ_INT(b, 100ull << 20);
        CHECK_EQ_INT(parse_size("4096", &b), 0);
        CHECK_EQ_INT(b, 4096);
        CHECK_EQ_INT(parse_size("4096B", &b), 0);
        CHECK_EQ_INT(b, 4096);
}

TEST(size_rejects)
{
        uint64_t b = 0;

        CHECK_EQ_INT(parse_size("M", &b), -EINVAL);
        CHECK_EQ_INT(parse_size("12Q", &b), -EINVAL);
        CHECK_EQ_INT(parse_size("12MM", &b), -EINVAL);
        CHECK_EQ_INT(parse_size("-1M", &b), -EINVAL);
        b = 7;
        CHECK_EQ_INT(parse_size("99999999999T", &b), -ERANGE);
        CHECK_EQ_INT(b, 7);
}

TEST(uint_range)
{
        uint64_t v = 0;

        CHECK_EQ_INT(parse_uint("4", 1, 64, &v), 0);
        CHECK_EQ_INT(v, 4);
        CHECK_EQ_INT(parse_uint("0", 1, 64, &v), -ERANGE);
        CHECK_EQ_INT(parse_uint("65", 1, 64, &v), -ERANGE);
        CHECK_EQ_INT(parse_uint("4x", 1, 64, &v), -EINVAL);
        CHECK_EQ_INT(parse_uint("", 1, 64, &v), -EINVAL);
}
