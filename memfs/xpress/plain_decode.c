/*
 * plain_decode.c - [MS-XCA] Plain LZ77 decoder (docs/formats/xpress.md §2.1, §2.2, §4 rows 7-9).
 */
#include "xpress.h"
#include "xp_util.h"

#define NO_NIBBLE SIZE_MAX

/* Literal runs are copied 32 bytes at a time when this much input and output remain. */
#define FAST_MARGIN 32

static xp_status fail(xp_error *err, xp_status st, size_t in_off, size_t out_off)
{
    if (err) {
        err->in_offset = in_off;
        err->out_offset = out_off;
    }
    return st;
}

xp_status xp_plain_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, xp_error *err)
{
    size_t ip = 0;
    uint8_t *op = out;
    uint8_t *const oend = out + out_len;
    uint32_t flags = 0;     /* left-aligned: the next flag is bit 31 (docs/formats/xpress.md §2.1) */
    unsigned nflags = 0;    /* flag bits of `flags` not yet used */
    size_t nibble_pos = NO_NIBBLE;

    for (;;) {
        size_t sym;
        uint64_t len;
        size_t dist;
        uint32_t token;

        if (op == oend) /* §2.2 step 1 */
            return XP_OK;

        if (nflags == 0) { /* §2.2 step 2 */
            if (in_len - ip < 4)
                break;
            flags = xp_load32(in + ip);
            ip += 4;
            nflags = 32;
            if (ip == in_len) /* trailing flag word with no symbols (§2.1, §4 row 8) */
                break;
        }

        if (!(flags & 0x80000000u)) {
            /* Literals (§2.2 step 4).  A run of k zero flag bits is k literals. */
            if (XP_LIKELY(in_len - ip >= FAST_MARGIN && (size_t)(oend - op) >= FAST_MARGIN)) {
                unsigned k = flags ? (unsigned)__builtin_clz(flags) : 32;
                if (k > nflags)
                    k = nflags;
                memcpy(op, in + ip, 16);
                memcpy(op + 16, in + ip + 16, 16);
                op += k;
                ip += k;
                flags = k < 32 ? flags << k : 0;
                nflags -= k;
                continue;
            }
            if (ip == in_len)
                break;
            *op++ = in[ip++];
            flags <<= 1;
            nflags--;
            continue;
        }

        /* Match (§2.2 step 5). */
        if (ip == in_len) /* padding 1-bits of the last flag word (§4 row 9) */
            break;
        flags <<= 1;
        nflags--;
        sym = ip;
        if (XP_UNLIKELY(in_len - ip < 2))
            return fail(err, XP_E_TRUNCATED, ip, (size_t)(op - out));
        token = xp_load16(in + ip);
        ip += 2;
        dist = (token >> 3) + 1;
        len = token & 7;
        if (len == 7) {
            /* Shared length nibble: low half of a new byte, then the high half of that byte. */
            if (nibble_pos == NO_NIBBLE) {
                if (XP_UNLIKELY(ip >= in_len))
                    return fail(err, XP_E_TRUNCATED, ip, (size_t)(op - out));
                len = in[ip] & 0x0F;
                nibble_pos = ip++;
            } else {
                len = in[nibble_pos] >> 4;
                nibble_pos = NO_NIBBLE;
            }
            if (len == 15) {
                if (XP_UNLIKELY(ip >= in_len))
                    return fail(err, XP_E_TRUNCATED, ip, (size_t)(op - out));
                len = in[ip++];
                if (len == 255) {
                    /* 16-bit escape, then 32-bit escape when the u16 is 0: they hold length - 3. */
                    if (XP_UNLIKELY(in_len - ip < 2))
                        return fail(err, XP_E_TRUNCATED, ip, (size_t)(op - out));
                    len = xp_load16(in + ip);
                    ip += 2;
                    if (len == 0) {
                        if (XP_UNLIKELY(in_len - ip < 4))
                            return fail(err, XP_E_TRUNCATED, ip, (size_t)(op - out));
                        len = xp_load32(in + ip);
                        ip += 4;
                    }
                    if (XP_UNLIKELY(len < 22))
                        return fail(err, XP_E_BAD_LENGTH, sym, (size_t)(op - out));
                    len -= 22;
                }
                len += 15;
            }
            len += 7;
        }
        len += 3;

        if (XP_UNLIKELY(dist > (size_t)(op - out)))
            return fail(err, XP_E_DISTANCE, sym, (size_t)(op - out));
        if (XP_UNLIKELY(len > (uint64_t)(oend - op)))
            return fail(err, XP_E_OVERRUN, sym, (size_t)(op - out));
        xp_copy_match(op, dist, (size_t)len, (size_t)(oend - op));
        op += len;
    }
    /* The stream stopped before out_len bytes (§2.2 step 6). */
    return fail(err, XP_E_SHORT, ip, (size_t)(op - out));
}
