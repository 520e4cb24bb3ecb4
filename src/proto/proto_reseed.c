/* SPDX-License-Identifier: Apache-2.0 */
/* RESEED: fresh identity for a sandbox restored from a template. */
#include "proto/proto.h"
#include "common/buf.h"

#include <errno.h>
#include <string.h>

int proto_encode_reseed(struct buf *b, uint32_t id, const struct proto_reseed *r)
{
        struct proto_writer w;

        if (r->entropy_len < PROTO_RESEED_MIN || r->entropy_len > PROTO_RESEED_MAX)
                return -EINVAL;
        proto_begin(&w, b, PROTO_RESEED, 0, id);
        proto_put_bytes(&w, PT_DATA, r->entropy, r->entropy_len);
        proto_put_u64(&w, PT_TIME_NS, r->time_ns);
        proto_put_str(&w, PT_NAME, r->id);
        return proto_end(&w);
}

int proto_decode_reseed(const uint8_t *payload, size_t len, struct proto_reseed *r)
{
        struct proto_reader rd;
        struct proto_field f;
        int have_data = 0, have_time = 0, have_id = 0, ret;

        memset(r, 0, sizeof(*r));
        proto_reader_init(&rd, payload, len);
        while ((ret = proto_next(&rd, &f)) == 1) {
                if (f.tag == PT_DATA) {
                        if (have_data++ || f.len < PROTO_RESEED_MIN || f.len > PROTO_RESEED_MAX)
                                return -EPROTO;
                        memcpy(r->entropy, f.val, f.len);
                        r->entropy_len = f.len;
                } else if (f.tag == PT_TIME_NS) {
                        if (have_time++ || proto_field_u64(&f, &r->time_ns) < 0)
                                return -EPROTO;
                } else if (f.tag == PT_NAME) {
                        if (have_id++)
                                return -EPROTO;
                        ret = proto_field_str(&f, r->id, sizeof(r->id));
                        if (ret < 0)
                                return ret;
                }
        }
        if (ret < 0)
                return ret;
        return have_data && have_time && have_id && r->id[0] != '\0' ? 0 : -EPROTO;
}
