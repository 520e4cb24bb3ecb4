/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal unit-test harness: one binary per module, TEST() functions
 * registered by constructor, CHECK() records a failure and continues.
 * Output: one line per test and a summary; exit status 1 on any failure.
 */
#ifndef LG_TESTS_UNIT_H
#define LG_TESTS_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit_test {
        const char *name;
        void (*fn)(void);
};

#define UNIT_MAX 512
static struct unit_test unit_tests[UNIT_MAX];
static int unit_ntests;
static int unit_failed_checks;

#define TEST(name)                                                                                 \
        static void test_##name(void);                                                             \
        __attribute__((constructor)) static void register_##name(void)                             \
        {                                                                                          \
                if (unit_ntests < UNIT_MAX)                                                        \
                        unit_tests[unit_ntests++] = (struct unit_test){#name, test_##name};        \
        }                                                                                          \
        static void test_##name(void)

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__,       \
                                #cond);                                                            \
                        unit_failed_checks++;                                                      \
                }                                                                                  \
        } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
        do {                                                                                       \
                long long _a = (long long)(a), _b = (long long)(b);                                \
                if (_a != _b) {                                                                    \
                        fprintf(stderr, "    %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,    \
                                __LINE__, #a, #b, _a, _b);                                         \
                        unit_failed_checks++;                                                      \
                }                                                                                  \
        } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
        do {                                                                                       \
                const char *_a = (a), *_b = (b);                                                   \
                if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0) {                             \
                        fprintf(stderr, "    %s:%d: %s == %s failed: \"%s\" != \"%s\"\n",          \
                                __FILE__, __LINE__, #a, #b, _a ? _a : "(null)",                    \
                                _b ? _b : "(null)");                                               \
                        unit_failed_checks++;                                                      \
                }                                                                                  \
        } while (0)

int main(void)
{
        int failed = 0;

        for (int i = 0; i < unit_ntests; i++) {
                int before = unit_failed_checks;

                unit_tests[i].fn();
                if (unit_failed_checks != before)
                        failed++;
                printf("  %s %s\n", unit_failed_checks != before ? "FAIL" : "ok  ",
                       unit_tests[i].name);
        }
        printf("%d tests, %d failed\n", unit_ntests, failed);
        return failed ? 1 : 0;
}

#endif
