/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard mcp`: what both transports share. Signals are taken on a
 * signalfd (blocked before any thread starts, so every worker inherits the
 * mask and only the transport's loop sees them); the gateway's upstreams
 * start before the first client is served.
 */
#include "mcp/mcp.h"
#include "common/err.h"
#include "common/log.h"
#include "mcp/mcp_proto.h"
#include "mcp/mcp_transport.h"
#include "mcp/upstream.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

void mcp_second_signal(int sfd, int stopping)
{
        struct pollfd p = {.fd = sfd, .events = POLLIN};
        struct signalfd_siginfo si;

        if (poll(&p, 1, 0) == 1 && read(sfd, &si, sizeof(si)) == sizeof(si) && stopping)
                _exit(128 + (int)si.ssi_signo);
}

int mcp_serve(const struct mcp_opts *o, struct lg_err **err)
{
        struct mcp_shared sh = {.o = o};
        sigset_t set;
        int sfd, r;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGPIPE);
        if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
            (sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "signalfd");
        sh.gw.ctx = (struct approve_ctx){.home = o->home,
                                         .policy = o->policy,
                                         .mode = (enum approve_mode)o->approve,
                                         .timeout_ms = (int)o->approve_timeout_ms,
                                         .intr_fd = -1};
        for (size_t i = 0; i < o->n_upstreams; i++) {
                if (gateway_add(&sh.gw, o->upstreams[i], err) < 0) {
                        gateway_free(&sh.gw);
                        close(sfd);
                        return -1;
                }
                log_info("mcp: upstream %s: %zu tools", sh.gw.up[i]->prefix,
                         json_array_size(sh.gw.up[i]->tools));
        }
        r = o->http_addr != NULL ? mcp_http_serve(&sh, sfd, err) : mcp_stdio_serve(&sh, sfd, err);
        gateway_free(&sh.gw);
        close(sfd);
        return r;
}
