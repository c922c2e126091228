/*
 * plain_encode.c - [MS-XCA] Plain LZ77 encoder (docs/formats/xpress.md §2.4).
 */
#include <stdlib.h>

#include "matcher.h"
#include "xp_util.h"
#include "xpress.h"

#define MAX_DIST 8192u
/* Matcher effort, chosen with scripts/bench_xpress.py: candidates per position, the length that ends
 * a search, and the length below which the next position is also tried (lazy matching).  Can be
 * overridden with -D for experiments. */
#ifndef XP_PLAIN_CHAIN
#define XP_PLAIN_CHAIN 8u
#endif
#ifndef XP_PLAIN_NICE
#define XP_PLAIN_NICE 128u
#endif
#ifndef XP_PLAIN_LAZY
#define XP_PLAIN_LAZY 16u
#endif
#define NO_NIBBLE SIZE_MAX
/* Worst-case bytes one symbol plus a new flag word can add: token, nibble byte, byte, u16 0, u32. */
#define SYMBOL_MAX_BYTES 16u

typedef struct {
    uint8_t *out;
    size_t pos;         /* end of the output */
    size_t flag_slot;   /* reserved position of the current flag word */
    uint32_t flags;
    unsigned nflags;
    size_t nibble_pos;  /* byte whose high nibble is still free, or NO_NIBBLE */
} plain_writer;

/* Record one symbol's flag bit after its bytes were appended (docs/formats/xpress.md §2.4 step 2). */
XP_INLINE void put_flag(plain_writer *w, uint32_t bit)
{
    w->flags = (w->flags << 1) | bit;
    if (++w->nflags == 32) {
        xp_store32(w->out + w->flag_slot, w->flags);
        w->flag_slot = w->pos;
        w->pos += 4;
        w->flags = 0;
        w->nflags = 0;
    }
}

/* docs/formats/xpress.md §2.4 step 4. */
XP_INLINE void put_match(plain_writer *w, size_t len, size_t dist)
{
    size_t l = len - 3;
    xp_store16(w->out + w->pos, (uint16_t)(((dist - 1) << 3) | (l < 7 ? l : 7)));
    w->pos += 2;
    if (l >= 7) {
        unsigned nib;
        l -= 7;
        nib = l < 15 ? (unsigned)l : 15;
        if (w->nibble_pos == NO_NIBBLE) {
            w->nibble_pos = w->pos;
            w->out[w->pos++] = (uint8_t)nib;
        } else {
            w->out[w->nibble_pos] |= (uint8_t)(nib << 4);
            w->nibble_pos = NO_NIBBLE;
        }
        if (l >= 15) {
            l -= 15;
            w->out[w->pos++] = (uint8_t)(l < 255 ? l : 255);
            if (l >= 255) {
                l += 22; /* = len - 3 */
                if (l < 65536) {
                    xp_store16(w->out + w->pos, (uint16_t)l);
                    w->pos += 2;
                } else {
                    xp_store16(w->out + w->pos, 0);
                    xp_store32(w->out + w->pos + 2, (uint32_t)l);
                    w->pos += 6;
                }
            }
        }
    }
    put_flag(w, 1);
}

size_t xp_plain_bound(size_t in_len)
{
    /* Every symbol takes at most as many bytes as it covers; plus one flag word per 32 symbols and a
     * possible trailing flag word. */
    size_t flag_bytes = 4 * (in_len / 32 + 2);
    if (in_len > SIZE_MAX - flag_bytes - 16)
        return 0;
    return in_len + flag_bytes + 16;
}

xp_status xp_plain_encode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    xp_matcher *m;
    plain_writer w;
    size_t pos = 0;
    xp_match cur = {0, 0};

    if (out_cap < 4 + SYMBOL_MAX_BYTES)
        return XP_E_CAPACITY;
    m = malloc(sizeof *m);
    if (!m)
        return XP_E_NOMEM;
    xp_matcher_init(m, in, in_len, MAX_DIST, XP_PLAIN_CHAIN, XP_PLAIN_NICE);
    w.out = out;
    w.flag_slot = 0;
    w.pos = 4;
    w.flags = 0;
    w.nflags = 0;
    w.nibble_pos = NO_NIBBLE;
    if (in_len)
        cur = xp_matcher_find(m, 0);

    /* Greedy parse with one step of lazy evaluation. */
    while (pos < in_len) {
        if (XP_UNLIKELY(out_cap - w.pos < SYMBOL_MAX_BYTES)) {
            free(m);
            return XP_E_CAPACITY;
        }
        if (cur.len >= XP_MIN_MATCH) {
            if (cur.len < XP_PLAIN_LAZY && pos + 1 < in_len) {
                xp_match next = xp_matcher_find(m, pos + 1);
                if (next.len > cur.len) {
                    w.out[w.pos++] = in[pos++];
                    put_flag(&w, 0);
                    cur = next;
                    continue;
                }
            }
            put_match(&w, cur.len, cur.dist);
            pos += cur.len;
            xp_matcher_skip(m, pos);
        } else {
            w.out[w.pos++] = in[pos++];
            put_flag(&w, 0);
        }
        cur.len = 0;
        if (pos < in_len)
            cur = xp_matcher_find(m, pos);
    }
    free(m);
    /* Pad the last flag word with 1-bits (docs/formats/xpress.md §2.4 step 5); 0xFFFFFFFF if it holds no symbol. */
    xp_store32(out + w.flag_slot,
               w.nflags ? (w.flags << (32 - w.nflags)) | ((1u << (32 - w.nflags)) - 1) : 0xFFFFFFFFu);
    *out_len = w.pos;
    return XP_OK;
}
