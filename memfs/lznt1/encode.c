/*
 * encode.c - [MS-XCA] LZNT1 encoder (docs/formats/lznt1.md §4), for test fixtures and benchmarks.
 *
 * Each 4 KiB of input becomes one chunk: compressed when that is smaller, stored otherwise (what
 * RtlCompressBuffer does with incompressible data, §4).  Matches come from the hash-chain finder the
 * Xpress encoders share (memfs/xpress/matcher.c), limited per position to what a copy token can say.
 */
#include <stdlib.h>

#include "lznt1.h"
#include "matcher.h"
#include "xp_util.h"

/* Matcher effort: candidates per position, the length that ends a search, the length below which the
 * next position is also tried (lazy matching). */
#define LZ_CHAIN 16u
#define LZ_NICE 64u
#define LZ_LAZY 16u

/* Longest match a token at chunk position u can hold: 2^(16 - bits) - 1 + 3. */
XP_INLINE size_t token_max_len(size_t u)
{
    return ((size_t)1 << (16u - lznt1_displacement_bits(u))) + 2;
}

/* Best match at pos for a chunk starting at cs and ending at ce: never before cs, never past ce. */
XP_INLINE xp_match find(xp_matcher *m, size_t pos, size_t cs, size_t ce)
{
    size_t limit = token_max_len(pos - cs);
    return xp_matcher_find_within(m, pos, pos - cs, ce - pos < limit ? ce - pos : limit);
}

typedef struct {
    uint8_t *body;
    size_t len;       /* bytes of body written */
    size_t flag_slot; /* position of the current group's flag byte */
    unsigned flags, nflags;
} chunk_writer;

/* Start a new flag group when the current one holds eight items (docs/formats/lznt1.md §2.2). */
XP_INLINE void next_item(chunk_writer *w)
{
    if (w->nflags == 8) {
        w->body[w->flag_slot] = (uint8_t)w->flags;
        w->flag_slot = w->len++;
        w->flags = 0;
        w->nflags = 0;
    }
}

/*
 * Compress in[cs..ce) into body; return its size, or 0 when it would not be smaller than the input
 * (the caller then stores the chunk).  body has room for LZNT1_CHUNK + 8 bytes.
 */
static size_t compress_chunk(xp_matcher *m, const uint8_t *in, size_t cs, size_t ce, uint8_t *body)
{
    chunk_writer w = {body, 1, 0, 0, 0};
    size_t pos = cs, clen = ce - cs;
    xp_match cur;

    if (m->next_insert < cs)
        m->next_insert = cs; /* earlier chunks are out of reach: do not hash them */
    cur = find(m, pos, cs, ce);
    while (pos < ce) {
        if (w.len + 3 > clen) /* a flag byte and a token more could reach the stored size */
            return 0;
        if (cur.len >= XP_MIN_MATCH && cur.len < LZ_LAZY && pos + 1 < ce) {
            xp_match next = find(m, pos + 1, cs, ce);
            if (next.len > cur.len) {
                next_item(&w);
                w.body[w.len++] = in[pos++];
                w.nflags++;
                cur = next;
                continue;
            }
        }
        next_item(&w);
        if (cur.len >= XP_MIN_MATCH) {
            unsigned lbits = 16u - lznt1_displacement_bits(pos - cs);
            xp_store16(w.body + w.len, (uint16_t)(((cur.dist - 1) << lbits) | (cur.len - 3)));
            w.len += 2;
            w.flags |= 1u << w.nflags++;
            pos += cur.len;
            xp_matcher_skip(m, pos);
        } else {
            w.body[w.len++] = in[pos++];
            w.nflags++;
        }
        cur.len = 0;
        if (pos < ce)
            cur = find(m, pos, cs, ce);
    }
    w.body[w.flag_slot] = (uint8_t)w.flags;
    return w.len < clen ? w.len : 0;
}

size_t lznt1_bound(size_t in_len)
{
    size_t chunks = in_len / LZNT1_CHUNK + 1;
    if (in_len > SIZE_MAX - 2 * chunks)
        return 0;
    return in_len + 2 * chunks; /* every chunk at worst stored: its data and a 2-byte header */
}

lz_status lznt1_encode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    uint8_t body[LZNT1_CHUNK + 8];
    xp_matcher *m;
    size_t cs, op = 0;

    if (lznt1_bound(in_len) == 0 || out_cap < lznt1_bound(in_len))
        return LZ_E_CAPACITY;
    m = malloc(sizeof *m);
    if (!m)
        return LZ_E_NOMEM;
    xp_matcher_init(m, in, in_len, LZNT1_CHUNK, LZ_CHAIN, LZ_NICE);
    for (cs = 0; cs < in_len; cs += LZNT1_CHUNK) {
        size_t ce = in_len - cs > LZNT1_CHUNK ? cs + LZNT1_CHUNK : in_len;
        size_t blen = compress_chunk(m, in, cs, ce, body);
        if (blen) { /* header: compressed flag, signature 3, body size - 1 (docs/formats/lznt1.md §2.1) */
            xp_store16(out + op, (uint16_t)(0xB000u | (blen - 1)));
            memcpy(out + op + 2, body, blen);
            op += 2 + blen;
        } else {
            xp_store16(out + op, (uint16_t)(0x3000u | (ce - cs - 1)));
            memcpy(out + op + 2, in + cs, ce - cs);
            op += 2 + (ce - cs);
        }
    }
    free(m);
    *out_len = op;
    return LZ_OK;
}
