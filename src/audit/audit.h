/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log (DESIGN.md §6): $LUMINAGUARD_HOME/audit/audit.log, one JSON
 * object per line, appended by every luminaguard process that acts:
 *
 *   {"seq":N,"time":"<UTC, ns>","event":"exec.start","sandbox":"sb-…",…,"prev":"<sha256>"}
 *
 * "prev" is the SHA-256 (hex) of the previous line's bytes (without its
 * newline); the first record's is 64 zeros. audit/head holds the seq and
 * hash of the last record, so that a change to the end of the log is seen
 * too. Writers serialise on flock(2) of the log, so two processes never
 * interleave or fork the chain. A line left torn by a crash is never
 * repaired: the next writer starts a new line and records the torn bytes'
 * length and hash in an "audit.torn" record; verify reports both.
 */
#ifndef LG_AUDIT_AUDIT_H
#define LG_AUDIT_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct lg_err;

#define AUDIT_MAX_RECORD (64u << 10) /* one line; callers keep their fields well below */

/*
 * Append one record. fields (borrowed, may be NULL) are copied into it
 * after seq, time, event and sandbox (NULL: no sandbox). sync: fsync the log
 * and the head before returning — for records that must exist before the
 * action they describe happens (approval decisions).
 */
int audit_append(const char *home, const char *event, const char *sandbox, json_t *fields, int sync,
                 struct lg_err **err) __attribute__((warn_unused_result));

struct audit_report {
        uint64_t records;  /* complete records checked */
        uint64_t torn;     /* torn lines acknowledged by an audit.torn record */
        uint64_t problems; /* findings written to the report stream */
};

/*
 * Check the whole chain: every line a record, seq consecutive, every prev
 * the hash of the line before, the head matching the last record, no torn
 * tail left unacknowledged. Findings go to out, one line each, naming the
 * line number and what is wrong. 0 when the log is intact, 1 when it is not,
 * < 0 when it cannot be read.
 */
int audit_verify(const char *home, FILE *out, struct audit_report *rep, struct lg_err **err)
    __attribute__((warn_unused_result));

/* <home>/audit/audit.log into out. */
int audit_log_path(const char *home, char *out, size_t outsz);

#endif
