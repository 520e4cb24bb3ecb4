/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `run --net`: a destination outside the allow-list is a RED action. The
 * policy file may allow it (`allow egress HOST`); otherwise, when there is
 * an approver, a human sees a Diff Card naming the destination and the
 * command; with --approve deny it is refused at once (403), as before.
 */
#ifndef LG_RUN_RUN_EGRESS_H
#define LG_RUN_RUN_EGRESS_H

#include "net/proxy.h"
#include "policy/approve.h"

struct run_opts;

struct run_egress {
        struct approve_ctx ctx;
        const struct run_opts *o;
        const char *const *sandbox_id; /* the proxy's, set once the sandbox exists */
};

/*
 * The proxy's ask hook (net/proxy.h). Blocks while a human decides.
 * NET_ASK_ALLOWED: the policy allows it, or a human said yes; NET_ASK_DENIED:
 * a human said no; NET_ASK_REFUSED: nobody was asked (a `deny egress HOST`
 * rule, --approve deny); NET_ASK_STOP: the question went unanswered (timeout,
 * cancel, no terminal, an audit failure) — ask nothing more in this run.
 */
enum net_ask run_egress_ask(void *e, const char *host, unsigned port, int tunnel);

#endif
