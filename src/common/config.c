/* SPDX-License-Identifier: Apache-2.0 */
#include "common/config.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static char *trim(char *s)
{
        char *e = s + strlen(s);

        while (*s == ' ' || *s == '\t')
                s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

int config_load(const char *home, struct lg_config *c, struct lg_err **err)
{
        char path[PATH_MAX], line[512];
        _cleanup_file_ FILE *f = NULL;
        unsigned n = 0;

        snprintf(c->image, sizeof(c->image), "base");
        if (snprintf(path, sizeof(path), "%s/config", home) >= (int)sizeof(path))
                return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "config path");
        f = fopen(path, "re");
        if (f == NULL && errno == ENOENT)
                return 0;
        if (f == NULL)
                return err_set(err, LG_EK_USAGE, errno, "config file %s", path);
        while (fgets(line, sizeof(line), f) != NULL) {
                char *hash = strchr(line, '#'), *eq, *key, *val;

                n++;
                if (strchr(line, '\n') == NULL && !feof(f))
                        return err_set(err, LG_EK_USAGE, 0, "config file %s: line %u is too long",
                                       path, n);
                if (hash != NULL)
                        *hash = '\0';
                key = trim(line);
                if (*key == '\0')
                        continue;
                eq = strchr(key, '=');
                if (eq == NULL)
                        return err_set(err, LG_EK_USAGE, 0,
                                       "config file %s: line %u: expected key = value", path, n);
                *eq = '\0';
                key = trim(key);
                val = trim(eq + 1);
                if (strcmp(key, "image") != 0)
                        return err_set(err, LG_EK_USAGE, 0,
                                       "config file %s: line %u: unknown key '%s' (known: image)",
                                       path, n, key);
                if (*val == '\0' || strlen(val) >= sizeof(c->image) ||
                    strspn(val, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(val))
                        return err_set(err, LG_EK_USAGE, 0,
                                       "config file %s: line %u: '%s' is not an image name", path,
                                       n, val);
                snprintf(c->image, sizeof(c->image), "%s", val);
        }
        if (ferror(f))
                return err_set(err, LG_EK_USAGE, EIO, "config file %s", path);
        return 0;
}
