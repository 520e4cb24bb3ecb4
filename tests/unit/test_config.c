/* SPDX-License-Identifier: Apache-2.0 */
/* $LUMINAGUARD_HOME/config: defaults when absent, the image key, and every error naming its line.
 */
#include "common/config.h"
#include "common/err.h"
#include "common/fs.h"
#include "unit.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/lg-test-config.XXXXXX";

static int load(const char *text, struct lg_config *c, char *msg, size_t msgsz)
{
        char path[sizeof(dir) + 16];
        struct lg_err *err = NULL;
        int r;

        snprintf(path, sizeof(path), "%s/config", dir);
        if (text != NULL)
                CHECK_EQ_INT(fs_write_file_atomic(path, text, strlen(text), 0644), 0);
        else
                unlink(path);
        r = config_load(dir, c, &err);
        snprintf(msg, msgsz, "%s", err ? err->msg : "");
        err_free(&err);
        return r;
}

TEST(config_defaults_and_image)
{
        struct lg_config c;
        char msg[1100];

        CHECK(mkdtemp(dir) != NULL);
        CHECK_EQ_INT(load(NULL, &c, msg, sizeof(msg)), 0);
        CHECK_EQ_STR(c.image, "base");
        CHECK_EQ_INT(load("# nothing\n\n", &c, msg, sizeof(msg)), 0);
        CHECK_EQ_STR(c.image, "base");
        CHECK_EQ_INT(load("  image =  full   # the agents write Python\n", &c, msg, sizeof(msg)),
                     0);
        CHECK_EQ_STR(c.image, "full");
        CHECK_EQ_INT(load("image=base\nimage=full\n", &c, msg, sizeof(msg)), 0);
        CHECK_EQ_STR(c.image, "full"); /* the last one wins, like a shell's */
}

TEST(config_errors_name_the_line)
{
        struct lg_config c;
        char msg[1100];

        CHECK(load("\nimgae = full\n", &c, msg, sizeof(msg)) < 0);
        CHECK(strstr(msg, "line 2: unknown key 'imgae'") != NULL);
        CHECK(load("image full\n", &c, msg, sizeof(msg)) < 0);
        CHECK(strstr(msg, "line 1: expected key = value") != NULL);
        CHECK(load("image = ../etc\n", &c, msg, sizeof(msg)) < 0);
        CHECK(strstr(msg, "'../etc' is not an image name") != NULL);
        CHECK(load("image =\n", &c, msg, sizeof(msg)) < 0);
        CHECK(load("image = Full\n", &c, msg, sizeof(msg)) < 0);
}

TEST(zz_cleanup)
{
        char path[sizeof(dir) + 16];

        snprintf(path, sizeof(path), "%s/config", dir);
        unlink(path);
        CHECK_EQ_INT(rmdir(dir), 0);
}
