/* SPDX-License-Identifier: Apache-2.0 */
/*
 * $LUMINAGUARD_HOME/config: the operator's defaults, one `key = value` a
 * line, `#` comments. Known keys:
 *
 *   image = NAME   the guest image `run`, `pool serve` and the MCP tools use
 *                  when none is named (default base)
 *
 * An unknown key or a malformed line is an error naming the line, never a
 * silent fallback: a typo would otherwise change nothing without a word.
 */
#ifndef LG_COMMON_CONFIG_H
#define LG_COMMON_CONFIG_H

struct lg_err;

#define CONFIG_MAX_NAME 64

struct lg_config {
        char image[CONFIG_MAX_NAME]; /* "base" unless the file says otherwise */
};

/* Read <home>/config into *c (the defaults when it does not exist). 0, or LG_EK_USAGE. */
int config_load(const char *home, struct lg_config *c, struct lg_err **err)
    __attribute__((warn_unused_result));

#endif
