/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RESEED (docs/protocol.md): after a restore every clone of a template has
 * the same kernel RNG state and a wall clock stuck at snapshot time. Mix in
 * the host's entropy (credited, then force a CRNG reseed so the very next
 * getrandom() differs across clones) and set the clock.
 */
#include "agent/agent.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static int mix_entropy(const struct proto_reseed *r)
{
        _cleanup_fd_ int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
        struct {
                struct rand_pool_info info;
                uint8_t data[PROTO_RESEED_MAX];
        } req;

        if (fd < 0)
                return -errno;
        req.info.entropy_count = (int)(r->entropy_len * 8);
        req.info.buf_size = (int)r->entropy_len;
        memcpy(req.data, r->entropy, r->entropy_len);
        /* Needs CAP_SYS_ADMIN: the agent is root (PID 1) in the guest. */
        int ret =
            ioctl(fd, RNDADDENTROPY, &req.info) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0 ? -errno : 0;

        explicit_bzero(&req, sizeof(req)); /* the seed must not linger on the stack */
        return ret;
}

/* Where commands find their sandbox's id (the agent's own env is not theirs). */
static int write_id(const char *sid)
{
        _cleanup_fd_ int fd =
            open(AGENT_ID_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        size_t n = strlen(sid);

        if (fd < 0)
                return -errno;
        if (write(fd, sid, n) != (ssize_t)n || write(fd, "\n", 1) != 1)
                return -EIO;
        return rename(AGENT_ID_FILE ".tmp", AGENT_ID_FILE) < 0 ? -errno : 0;
}

void agent_reseed(struct agent *a, uint32_t id, const uint8_t *p, size_t n)
{
        struct proto_reseed r;
        struct timespec ts;
        int ret;

        ret = proto_decode_reseed(p, n, &r);
        if (ret < 0) {
                agent_error(a, id, -ret, "malformed RESEED");
                return;
        }
        ret = mix_entropy(&r);
        explicit_bzero(r.entropy, sizeof(r.entropy));
        if (ret < 0) {
                agent_error(a, id, -ret, "reseed the kernel RNG");
                return;
        }
        ts.tv_sec = (time_t)(r.time_ns / 1000000000u);
        ts.tv_nsec = (long)(r.time_ns % 1000000000u);
        if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
                agent_error(a, id, errno, "set the clock");
                return;
        }
        ret = write_id(r.id);
        explicit_bzero(&r, sizeof(r));
        if (ret < 0) {
                agent_error(a, id, -ret, "write %s", AGENT_ID_FILE);
                return;
        }
        agent_check(proto_encode_empty(&a->ch.out, PROTO_OK, id), "OK");
}
