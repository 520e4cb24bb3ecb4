/* SPDX-License-Identifier: Apache-2.0 */
/* Request routing, HELLO and SHUTDOWN. */
#include "agent/agent.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

#define SHUTDOWN_FLUSH_MS 2000

void agent_ready(struct agent *a)
{
        struct proto_hello h = {.version = PROTO_VERSION};

        agent_check(proto_encode_hello_reply(&a->ch.out, PROTO_READY, 0, &h), "READY");
}

static void hello(struct agent *a, uint32_t id)
{
        struct proto_hello h = {.version = PROTO_VERSION};
        struct utsname u;

        snprintf(h.name, sizeof(h.name), "lg-agent");
        if (uname(&u) == 0)
                snprintf(h.kernel, sizeof(h.kernel), "%s", u.release);
        agent_check(proto_encode_hello_reply(&a->ch.out, PROTO_OK, id, &h), "OK");
}

void agent_exit(struct agent *a, int code)
{
        exec_drop_all(a);
        fileops_drop_all(a);
        chan_drain(&a->ch, SHUTDOWN_FLUSH_MS);
        /*
         * Only a VM's init powers off (and syncs first). Pid 1 of the process
         * backend's namespace just exits: that ends its namespace.
         */
        if (a->poweroff) {
                sync();
                log_info("powering off");
                reboot(RB_POWER_OFF);
                log_error("power off: %s", strerror(errno));
                /* PID 1 must not return: the kernel would panic with our exit code. */
                while (getpid() == 1)
                        pause();
        }
        exit(code);
}

static void signal_req(struct agent *a, const struct proto_hdr *h, const uint8_t *p)
{
        uint64_t signo;
        int r = proto_decode_u64_msg(p, h->len, PT_SIGNO, &signo);

        /* SIGNAL has no reply; its problems are reported at stream level (id 0). */
        if (r < 0) {
                agent_error(a, 0, -r, "malformed SIGNAL for request %u", h->id);
                return;
        }
        if (signo < 1 || signo > 64) {
                agent_error(a, 0, EINVAL, "SIGNAL for request %u: bad signal %llu", h->id,
                            (unsigned long long)signo);
                return;
        }
        /* A READ_FILE or LIST has no process: any signal cancels it. */
        if (!exec_signal(a, h->id, (int)signo))
                fileops_cancel(a, h->id);
}

/* Requests that start something addressable by id later. */
static int id_free(struct agent *a, uint32_t id)
{
        if (!agent_id_busy(a, id))
                return 1;
        agent_error(a, id, EBUSY, "request id %u is still in use", id);
        return 0;
}

void agent_dispatch(struct agent *a, const struct proto_hdr *h, const uint8_t *p)
{
        switch ((enum proto_type)h->type) {
        case PROTO_HELLO:
                hello(a, h->id);
                break;
        case PROTO_EXEC:
                if (id_free(a, h->id))
                        exec_start(a, h->id, p, h->len);
                break;
        case PROTO_STDIN:
                exec_stdin(a, h->id, h->flags, p, h->len);
                break;
        case PROTO_SIGNAL:
                signal_req(a, h, p);
                break;
        case PROTO_READ_FILE:
                if (id_free(a, h->id))
                        fileops_read(a, h->id, p, h->len);
                break;
        case PROTO_WRITE_FILE:
                fileops_write(a, h->id, p, h->len);
                break;
        case PROTO_STAT:
                fileops_stat(a, h->id, p, h->len);
                break;
        case PROTO_LIST:
                if (id_free(a, h->id))
                        fileops_list(a, h->id, p, h->len);
                break;
        case PROTO_RESEED:
                agent_reseed(a, h->id, p, h->len);
                break;
        case PROTO_NET_ENABLE:
                net_enable(a, h->id, p, h->len);
                break;
        case PROTO_NET_SEND:
                net_send(a, h->id, h->flags, p, h->len);
                break;
        case PROTO_NET_ACK:
                net_ack(a, h->id, p, h->len);
                break;
        case PROTO_SHUTDOWN:
                log_info("shutdown requested");
                agent_check(proto_encode_empty(&a->ch.out, PROTO_OK, h->id), "OK");
                agent_exit(a, 0);
        case PROTO_READY:
        case PROTO_OK:
        case PROTO_ERROR:
        case PROTO_STARTED:
        case PROTO_DATA:
        case PROTO_EXIT:
        case PROTO_ENTRIES:
        case PROTO_NET_OPEN:
        case PROTO_NET_RECV:
        case PROTO_NET_RECV_ACK:
                agent_error(a, h->id, ENOSYS, "frame type %u is not a request", h->type);
                break;
        default:
                agent_error(a, h->id, ENOSYS, "unknown frame type %u", h->type);
                break;
        }
}
