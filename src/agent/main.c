/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg-agent: startup and the event loop.
 *
 *   lg-agent [--fd N | --dev PATH] [--poweroff] [--verbose]
 *
 * Default channel: the virtio-serial port named "lg.agent". --fd uses an
 * inherited descriptor (a socketpair end: tests, the process backend), where
 * EOF means the host is gone for good and the agent exits. On a virtio port
 * EOF only means no host is connected right now: the agent waits for SIGIO
 * (sent by virtio_console when the host side opens) or a 1 s tick and then
 * serves a new session, starting with a new READY.
 */
#include "agent/agent.h"
#include "agent/sysinit.h"
#include "common/log.h"
#include "common/monotime.h"
#include "common/fdio.h"
#include "common/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define DISCONNECTED_TICK_MS 1000

void pollset_add(struct pollset *ps, int fd, short events,
                 void (*cb)(struct agent *, void *, int, short), void *obj, int which)
{
        if (ps->n >= AGENT_POLL_MAX)
                return; /* sized for the limits: cannot happen */
        ps->fds[ps->n] = (struct pollfd){.fd = fd, .events = events};
        ps->cb[ps->n] = cb;
        ps->obj[ps->n] = obj;
        ps->which[ps->n] = which;
        ps->n++;
}

void pollset_deadline(struct pollset *ps, uint64_t deadline_ms)
{
        int left = mono_left_ms(deadline_ms);

        if (ps->timeout_ms < 0 || left < ps->timeout_ms)
                ps->timeout_ms = left;
}

/* The host closed its end (socketpair) or disconnected (virtio port). */
static void peer_gone(struct agent *a)
{
        if (a->ch.exit_on_eof) {
                log_info("channel closed, exiting");
                agent_exit(a, 0);
        }
        if (a->ch.connected)
                log_info("host disconnected; waiting for the next connection");
        /* The session's requests die with it: nobody is left to read their replies. */
        exec_drop_all(a);
        fileops_drop_all(a);
        net_drop_all(a);
        proto_rx_reset(&a->ch.rx);
        buf_reset(&a->ch.out);
        a->ch.connected = 0;
        agent_ready(a);
}

/* Virtio only: a non-blocking read says 0 while no host is connected. */
static void probe_connection(struct agent *a)
{
        ssize_t n = chan_read(&a->ch);

        if (n == 0 || (n < 0 && n != -EAGAIN))
                return;
        log_info("host connected");
        a->ch.connected = 1;
}

static void on_chan(struct agent *a, void *obj, int which, short revents)
{
        ssize_t n;

        (void)obj;
        (void)which;
        if (revents & POLLOUT) {
                int r = chan_flush(&a->ch);

                if (r < 0 && r != -EAGAIN) {
                        peer_gone(a);
                        return;
                }
        }
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
                n = chan_read(&a->ch);
                if (n == 0 || (n < 0 && n != -EAGAIN))
                        peer_gone(a);
        }
}

static void on_signal(struct agent *a, void *obj, int which, short revents)
{
        struct signalfd_siginfo si[8];
        ssize_t n;
        int chld = 0;

        (void)obj;
        (void)which;
        (void)revents;
        while ((n = read(a->sigfd, si, sizeof(si))) > 0) {
                for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
                        if (si[i].ssi_signo == SIGCHLD)
                                chld = 1;
                        else if (si[i].ssi_signo == SIGTERM || si[i].ssi_signo == SIGINT)
                                agent_exit(a, 0);
                        /* SIGIO: the wakeup itself was the point. */
                }
        }
        if (chld)
                exec_reap(a);
}

/* Dispatch complete frames while flow control allows (agent.h). */
static void process_frames(struct agent *a)
{
        struct proto_hdr h;
        const uint8_t *payload;
        int r;

        while (a->ch.connected && !chan_out_full(&a->ch) && a->stdin_pending <= AGENT_STDIN_HIGH) {
                r = proto_rx_next(&a->ch.rx, &h, &payload);
                if (r == 0)
                        return;
                if (r == 1) {
                        agent_dispatch(a, &h, payload);
                } else if (r == -EMSGSIZE) {
                        agent_error(a, h.id, EMSGSIZE, "frame of %u bytes exceeds the limit of %u",
                                    h.len, PROTO_MAX_PAYLOAD);
                } else {
                        /* Bad magic: no way to find the next frame boundary. Start over. */
                        agent_error(a, 0, EPROTO, "bad frame magic; input discarded");
                        proto_rx_reset(&a->ch.rx);
                        return;
                }
        }
}

static void loop(struct agent *a)
{
        for (;;) {
                struct pollset ps;
                int more, r;

                process_frames(a);
                exec_tick(a);
                more = fileops_step(a);
                if (a->ch.connected && buf_size(&a->ch.out) > 0) {
                        r = chan_flush(&a->ch);
                        if (r < 0 && r != -EAGAIN) {
                                peer_gone(a);
                                continue;
                        }
                }

                ps.n = 0;
                ps.timeout_ms = more ? 0 : -1;
                pollset_add(&ps, a->sigfd, POLLIN, on_signal, NULL, 0);
                if (a->ch.connected) {
                        short ev = buf_size(&a->ch.out) > 0 ? POLLOUT : 0;

                        if (!chan_out_full(&a->ch) && a->stdin_pending <= AGENT_STDIN_HIGH &&
                            proto_rx_room(&a->ch.rx) > 0)
                                ev |= POLLIN;
                        if (ev != 0)
                                pollset_add(&ps, a->ch.fd, ev, on_chan, NULL, 0);
                } else {
                        /* virtio_console reports POLLHUP without a host: do not poll, wait. */
                        pollset_deadline(&ps, mono_ms() + DISCONNECTED_TICK_MS);
                }
                exec_poll(a, &ps);
                net_poll(a, &ps);

                r = poll(ps.fds, ps.n, ps.timeout_ms);
                if (r < 0 && errno != EINTR) {
                        log_error("poll: %s", strerror(errno));
                        agent_exit(a, 1);
                }
                for (size_t i = 0; r > 0 && i < ps.n; i++) {
                        if (ps.fds[i].revents != 0)
                                ps.cb[i](a, ps.obj[i], ps.which[i], ps.fds[i].revents);
                }
                if (!a->ch.connected)
                        probe_connection(a);
        }
}

static int setup_signals(struct agent *a)
{
        sigset_t set;

        /* Writes to a closed pipe or channel must return EPIPE, not kill us. */
        signal(SIGPIPE, SIG_IGN);
        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        sigaddset(&set, SIGIO);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                return -errno;
        a->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        return a->sigfd < 0 ? -errno : 0;
}

/* Our children's 0, 1, 2 must never be the channel: make sure they are taken. */
static void ensure_stdio(void)
{
        for (;;) {
                int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

                if (fd < 0)
                        return;
                if (fd > 2) {
                        close(fd);
                        return;
                }
                fd_set_cloexec(fd, 0);
        }
}

static void usage(void)
{
        fprintf(stderr, "usage: lg-agent [--fd N | --dev PATH] [--poweroff] [--verbose]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"fd", required_argument, NULL, 'f'}, {"dev", required_argument, NULL, 'd'},
            {"poweroff", no_argument, NULL, 'p'}, {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0},
        };
        static struct agent agent;
        struct agent *a = &agent;
        const char *dev = NULL;
        int fd = -1, c, r, exit_on_eof;
        uint64_t v;

        log_init("lg-agent", LG_LOG_INFO);
        a->net.lfd = -1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'f':
                        if (parse_uint(optarg, 0, 1 << 20, &v) < 0)
                                usage();
                        fd = (int)v;
                        break;
                case 'd':
                        dev = optarg;
                        break;
                case 'p':
                        a->poweroff = 1;
                        break;
                case 'v':
                        log_set_level(LG_LOG_DEBUG);
                        break;
                default:
                        usage();
                }
        }
        if (optind != argc || (fd >= 0 && dev != NULL))
                usage();
        /*
         * As the initramfs's /init we set the system up ourselves and power
         * off on exit. Pid 1 with a channel given is the process backend:
         * the first process of a pid namespace the jailer set up, not a VM.
         */
        if (getpid() == 1 && fd < 0 && dev == NULL) {
                sysinit_run();
                a->poweroff = 1;
        }
        if (fd < 0)
                ensure_stdio();
        /*
         * Programs expect a home (npm fails without one). The process
         * backend runs us as a uid with no passwd entry and no home of its
         * own: the ephemeral /tmp it is.
         */
        if (getenv("HOME") == NULL)
                setenv("HOME", getuid() == 0 ? "/root" : "/tmp", 1);
        r = setup_signals(a);
        if (r < 0) {
                log_error("signals: %s", strerror(-r));
                return 1;
        }
        /* Outside a VM, adopt escaped grandchildren so they are reaped, not leaked. */
        if (getpid() != 1)
                prctl(PR_SET_CHILD_SUBREAPER, 1);

        exit_on_eof = fd >= 0;
        if (fd >= 0) {
                r = fd_set_cloexec(fd, 1);
        } else if (dev != NULL) {
                fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                r = fd < 0 ? -errno : 0;
        } else {
                r = chan_find_virtio(&fd);
        }
        if (r == 0)
                r = chan_init(&a->ch, fd, exit_on_eof);
        if (r < 0) {
                log_error("channel %s: %s",
                          dev           ? dev
                          : exit_on_eof ? "--fd"
                                        : "virtio port lg.agent",
                          strerror(-r));
                return 1;
        }
        if (!exit_on_eof) {
                /* virtio_console raises SIGIO when the host side connects or goes. */
                if (fcntl(fd, F_SETOWN, getpid()) < 0 ||
                    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) < 0)
                        log_warn("O_ASYNC on channel: %s; polling every %d ms", strerror(errno),
                                 DISCONNECTED_TICK_MS);
        }
        a->ch.connected = exit_on_eof;
        log_info("ready (protocol %u)", PROTO_VERSION);
        agent_ready(a);
        if (!a->ch.connected)
                probe_connection(a);
        loop(a);
}
