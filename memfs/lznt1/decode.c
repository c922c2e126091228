/*
 * decode.c - [MS-XCA] LZNT1 decoder (docs/formats/lznt1.md §2, §3).
 */
#include "lznt1.h"
#include "xp_util.h"

const char *lz_strerror(lz_status status)
{
    switch (status) {
    case LZ_OK:
        return "success";
    case LZ_E_TRUNCATED:
        return "chunk runs past the end of the compressed data";
    case LZ_E_TOKEN:
        return "copy token cut by the end of its chunk";
    case LZ_E_SIGNATURE:
        return "chunk header signature is not 3";
    case LZ_E_DISTANCE:
        return "copy token reaches before the start of its chunk";
    case LZ_E_CHUNK_OVERFLOW:
        return "chunk decodes to more than 4096 bytes";
    case LZ_E_OVERRUN:
        return "stream holds more data than the expected output size";
    case LZ_E_SHORT:
        return "stream ends before the expected output size";
    case LZ_E_NOMEM:
        return "out of memory";
    case LZ_E_CAPACITY:
        return "output buffer too small";
    }
    return "unknown error";
}

static lz_status fail(lz_error *err, lz_status st, size_t in_off, size_t out_off)
{
    if (err) {
        err->in_offset = in_off;
        err->out_offset = out_off;
    }
    return st;
}

/* Which limit writing n more bytes at chunk position u breaks: the chunk's 4 KiB (docs/formats/lznt1.md §3 rule 2),
 * or else the end of the caller's output. */
XP_INLINE lz_status limit_broken(size_t u, size_t n)
{
    return u + n > LZNT1_CHUNK ? LZ_E_CHUNK_OVERFLOW : LZ_E_OVERRUN;
}

/*
 * Decode one compressed chunk body in[ip..cend) to out[*op..] (docs/formats/lznt1.md §2.2, §2.3).  Flag groups: a
 * flag byte, then up to eight items, bit 0 first; a clear bit is a literal byte, a set bit a 16-bit
 * copy token.  The body may end after any item.  *op advances past the decoded bytes.
 */
static lz_status decode_chunk(const uint8_t *in, size_t ip, size_t cend, uint8_t *out, size_t out_len,
                              size_t *op, lz_error *err)
{
    uint8_t *const start = out + *op;
    const size_t out_left = out_len - *op;
    const size_t cap = out_left < LZNT1_CHUNK ? out_left : LZNT1_CHUNK; /* bytes this chunk may write */
    size_t u = 0;                                                       /* bytes decoded so far */

    while (ip < cend) {
        unsigned flags = in[ip++] | 0x100u; /* bit 8: sentinel marking the end of the group */
        while (flags != 1u && ip < cend) {
            unsigned k = (unsigned)__builtin_ctz(flags); /* literals before the next token */
            if (k) {
                size_t n = k <= cend - ip ? k : cend - ip;
                if (XP_UNLIKELY(n > cap - u))
                    return fail(err, limit_broken(u, n), ip + (cap - u), *op + cap);
                if (XP_LIKELY(cend - ip >= 8 && out_left - u >= 8))
                    memcpy(start + u, in + ip, 8); /* n <= 8: copy a whole word, keep n */
                else
                    memcpy(start + u, in + ip, n);
                u += n;
                ip += n;
                flags >>= k;
                continue;
            }
            {
                size_t tp = ip, dist, len;
                unsigned token, lbits;
                if (XP_UNLIKELY(cend - ip < 2))
                    return fail(err, LZ_E_TOKEN, tp, *op + u);
                token = xp_load16(in + ip);
                ip += 2;
                lbits = 16u - lznt1_displacement_bits(u);
                dist = (size_t)(token >> lbits) + 1;
                len = (size_t)(token & ((1u << lbits) - 1)) + 3;
                if (XP_UNLIKELY(dist > u))
                    return fail(err, LZ_E_DISTANCE, tp, *op + u);
                if (XP_UNLIKELY(len > cap - u))
                    return fail(err, limit_broken(u, len), tp, *op + u);
                xp_copy_match(start + u, dist, len, out_left - u);
                u += len;
                flags >>= 1;
            }
        }
    }
    *op += u;
    return LZ_OK;
}

/* The chunk header at in[ip] (docs/formats/lznt1.md §2.1): 0 at the end of the stream (a zero header or fewer than two
 * bytes left, §3 rule 1), 1 for a chunk whose body is *body bytes after the header, -1 with *st set for
 * a bad signature or a body running past the input. */
static int read_header(const uint8_t *in, size_t in_len, size_t ip, unsigned *header, size_t *body,
                       lz_status *st)
{
    if (in_len - ip < 2)
        return 0;
    *header = xp_load16(in + ip);
    if (*header == 0)
        return 0;
    if (XP_UNLIKELY(((*header >> 12) & 7u) != 3u)) {
        *st = LZ_E_SIGNATURE;
        return -1;
    }
    *body = (size_t)(*header & 0xFFFu) + 1;
    if (XP_UNLIKELY(*body > in_len - ip - 2)) {
        *st = LZ_E_TRUNCATED;
        return -1;
    }
    return 1;
}

lz_status lznt1_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, int exact,
                       size_t *produced, lz_error *err)
{
    size_t ip = 0, op = 0, chunk_start = 0, body = 0;
    unsigned header = 0;
    int first = 1, r;
    lz_status st = LZ_OK;

    while ((r = read_header(in, in_len, ip, &header, &body, &st)) != 0) {
        size_t hp = ip;
        if (r < 0)
            return fail(err, st, hp, op);
        ip += 2;
        /* Each chunk starts 4 KiB after the previous one; a short chunk's gap reads as zeros (§3 rule 3). */
        if (!first) {
            chunk_start += LZNT1_CHUNK;
            if (XP_UNLIKELY(chunk_start > out_len))
                return fail(err, LZ_E_OVERRUN, hp, op);
            memset(out + op, 0, chunk_start - op);
            op = chunk_start;
        }
        first = 0;
        if (header & 0x8000u) {
            st = decode_chunk(in, ip, ip + body, out, out_len, &op, err);
            if (st != LZ_OK)
                return st;
        } else { /* stored chunk: the body is the data (§2.1) */
            if (XP_UNLIKELY(body > out_len - op))
                return fail(err, LZ_E_OVERRUN, hp, op);
            memcpy(out + op, in + ip, body);
            op += body;
        }
        ip += body;
    }
    if (produced)
        *produced = op;
    if (exact && op != out_len)
        return fail(err, LZ_E_SHORT, ip, op);
    return LZ_OK;
}

lz_status lznt1_chunk_offsets(const uint8_t *in, size_t in_len, uint32_t *offsets, size_t max_chunks,
                              size_t *count, lz_error *err)
{
    size_t ip = 0, n = 0, body = 0;
    unsigned header = 0;
    lz_status st = LZ_OK;
    int r;

    if (in_len > UINT32_MAX)
        return fail(err, LZ_E_CAPACITY, 0, 0);
    while ((r = read_header(in, in_len, ip, &header, &body, &st)) != 0) {
        if (r < 0)
            return fail(err, st, ip, n * LZNT1_CHUNK);
        if (n == max_chunks) /* a chunk beyond the output (§3 rule 6) */
            return fail(err, LZ_E_OVERRUN, ip, n * LZNT1_CHUNK);
        offsets[n++] = (uint32_t)ip;
        ip += 2 + body;
    }
    offsets[n] = (uint32_t)ip;
    *count = n;
    return LZ_OK;
}
