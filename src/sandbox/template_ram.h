/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A template's guest RAM as clones map it: a sealed memfd copy of the RAM
 * file. QEMU 7.2 opens its memory-backend-file read-write even for a
 * private (copy-on-write) mapping, so a jailed VMM handed the template file
 * itself could write into every later clone. The memfd is sealed against
 * writes, growth and shrinking (F_SEAL_WRITE...): opening it read-write
 * still works, mapping it private still shares its pages between every
 * clone given the same memfd, and no VMM can change it. Only the file's
 * data extents are copied (the RAM file is sparse: ~20 MiB of 256).
 */
#ifndef LG_SANDBOX_TEMPLATE_RAM_H
#define LG_SANDBOX_TEMPLATE_RAM_H

#include <stdint.h>

/*
 * At build time: punch out the file's all-zero pages (a booted guest
 * zeroes most of its free memory), so copies and disk hold only data.
 * *kept gets the bytes of data left. 0 / -errno.
 */
int template_ram_sparsify(int fd, uint64_t *kept);

/* From an open template RAM file: a new sealed memfd (close-on-exec), or -errno. */
int template_ram_memfd(int ram_fd);

/*
 * A template opened for cloning, shareable by many clones (the pool): the
 * RAM file (for the destroy-time check that it never changed), its sealed
 * memfd copy, and the device state, all opened together so that they
 * belong to one build. A clone reopens the state through /proc/self/fd for
 * a read offset of its own.
 */
struct template_loaded {
        int ram_fd, memfd, state_fd;
};

int template_load(const char *ram, const char *state, struct template_loaded *out)
    __attribute__((warn_unused_result));
/* Duplicate every descriptor (close-on-exec): a reference of the caller's own. */
int template_loaded_dup(const struct template_loaded *in, struct template_loaded *out)
    __attribute__((warn_unused_result));
/* Close what is open; safe on a zeroed or half-loaded struct set to -1s. */
void template_unload(struct template_loaded *l);

#endif
