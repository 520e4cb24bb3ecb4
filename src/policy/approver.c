/* SPDX-License-Identifier: Apache-2.0 */
#include "policy/approver.h"
#include "policy/card.h"
#include "common/cleanup.h"
#include "common/fs.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *approve_outcome_name(enum approve_outcome o)
{
        switch (o) {
        case APPROVE_APPROVED:
                return "approved";
        case APPROVE_DENIED:
                return "denied";
        case APPROVE_TIMEOUT:
                return "timeout";
        case APPROVE_CANCELLED:
                return "cancelled";
        case APPROVE_NO_APPROVER:
                return "no-approver";
        }
        return "?";
}

const char *approve_mode_name(enum approve_mode m)
{
        switch (m) {
        case APPROVE_MODE_DENY:
                return "deny";
        case APPROVE_MODE_PROMPT:
                return "prompt";
        case APPROVE_MODE_TUI:
                return "tui";
        }
        return "?";
}

int approve_mode_parse(const char *s, enum approve_mode *m)
{
        static const enum approve_mode modes[] = {APPROVE_MODE_DENY, APPROVE_MODE_PROMPT,
                                                  APPROVE_MODE_TUI};

        for (size_t i = 0; s != NULL && i < sizeof(modes) / sizeof(modes[0]); i++) {
                if (strcmp(s, approve_mode_name(modes[i])) == 0) {
                        *m = modes[i];
                        return 0;
                }
        }
        return -EINVAL;
}

/*
 * The terminal's own name: a descriptor opened from /dev/tty is named
 * "/dev/tty" by ttyname(), which tells an audit reader nothing, so then
 * the controlling terminal's device number (/proc/self/stat) gives the
 * pseudo-terminal behind it.
 */
static void tty_name(int fd, char *out, size_t outsz)
{
        _cleanup_free_ char *stat = NULL;
        const char *end;
        int nr;

        if (ttyname_r(fd, out, outsz) != 0) {
                snprintf(out, outsz, "?");
                return;
        }
        if (strcmp(out, "/dev/tty") != 0 || fs_read_file("/proc/self/stat", 4096, &stat, NULL) < 0)
                return;
        end = strrchr(stat, ')'); /* the command name before it may hold anything */
        if (end != NULL && sscanf(end + 1, " %*c %*d %*d %*d %d", &nr) == 1) {
                unsigned major = ((unsigned)nr >> 8) & 0xfff;
                unsigned minor = ((unsigned)nr & 0xff) | (((unsigned)nr >> 12) & 0xfff00);

                /* Unix98 pty slaves: majors 136 to 143, 256 minors each. */
                if (major >= 136 && major <= 143)
                        snprintf(out, outsz, "/dev/pts/%u", (major - 136) * 256 + minor);
        }
}

void approve_answer_init(struct approve_answer *a, int tty_fd, const char *via)
{
        char user[64], tty[64], pwbuf[4096], who[sizeof(a->who)];
        struct passwd pw, *found = NULL;

        memset(a, 0, sizeof(*a));
        a->outcome = APPROVE_NO_APPROVER;
        snprintf(a->reason, sizeof(a->reason), "the terminal failed");
        /* The _r forms: an approver may run on a thread of its own. */
        if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &found) == 0 && found != NULL)
                snprintf(user, sizeof(user), "%.60s", pw.pw_name);
        else
                snprintf(user, sizeof(user), "uid %u", (unsigned)getuid());
        tty_name(tty_fd, tty, sizeof(tty));
        snprintf(who, sizeof(who), "%.60s on %.48s (%.12s)", user, tty, via);
        /* Names come from the system, but the answer ends up on terminals and in the log. */
        card_sanitise(who, strlen(who), a->who, sizeof(a->who));
}
