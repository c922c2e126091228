/*
 * huffman_encode.c - [MS-XCA] LZ77+Huffman encoder (docs/formats/xpress.md §3.5).
 *
 * The input is parsed into tokens one block at a time (a block ends once it has covered >= 65536 input
 * bytes; a match may overrun that), then each block gets its own length-limited Huffman code, its
 * 256-byte length table and its bit stream.  Matches may reach back into earlier blocks.
 */
#include <stdlib.h>

#include "huffman_code.h"
#include "matcher.h"
#include "xp_util.h"
#include "xpress.h"

#define BLOCK_OUT 65536u
#define MAX_DIST 65535u
/* Matcher effort, chosen with scripts/bench_xpress.py: candidates per position, the length that ends
 * a search, and the length below which the next position is also tried (lazy matching).  Can be
 * overridden with -D for experiments. */
#ifndef XP_HUFF_CHAIN
#define XP_HUFF_CHAIN 12u
#endif
#ifndef XP_HUFF_NICE
#define XP_HUFF_NICE 128u
#endif
#ifndef XP_HUFF_LAZY
#define XP_HUFF_LAZY 16u
#endif
#define EOF_SYMBOL 256u
/* A length-3 match this far away costs more bits than three literals; emit literals instead. */
#define FAR_LEN3 4096u
/* Worst-case bytes one token can add (15-bit code, 7 extra length bytes, 15 distance bits, 2 words). */
#define TOKEN_MAX_BYTES 16u

typedef struct {
    uint32_t len;   /* match length, or 1 for a literal */
    uint16_t dist;  /* 0 for a literal */
    uint16_t sym;   /* Huffman symbol 0..511 (docs/formats/xpress.md §3.1) */
} token;

/*
 * Bit writer with two reserved 16-bit slots (docs/formats/xpress.md §3.5 step 5): a word is written only when a
 * 17th pending bit arrives, so that extra length bytes land exactly where the decoder reads them.
 */
typedef struct {
    uint8_t *out;
    size_t pos;       /* end of the output; extra length bytes are appended here */
    size_t slot[2];   /* older and newer reserved word positions */
    uint32_t pending; /* up to 16 bits not yet written */
    unsigned npending;
} bitwriter;

XP_INLINE void bw_start(bitwriter *bw)
{
    bw->slot[0] = bw->pos;
    bw->slot[1] = bw->pos + 2;
    xp_store32(bw->out + bw->pos, 0);
    bw->pos += 4;
    bw->pending = 0;
    bw->npending = 0;
}

XP_INLINE void bw_put(bitwriter *bw, uint32_t value, unsigned n)
{
    if (bw->npending + n <= 16) {
        bw->pending = (bw->pending << n) | value;
        bw->npending += n;
    } else {
        unsigned rest = bw->npending + n - 16;
        xp_store16(bw->out + bw->slot[0], (uint16_t)((bw->pending << (n - rest)) | (value >> rest)));
        bw->slot[0] = bw->slot[1];
        bw->slot[1] = bw->pos;
        xp_store16(bw->out + bw->pos, 0);
        bw->pos += 2;
        bw->pending = value & ((1u << rest) - 1);
        bw->npending = rest;
    }
}

/* Block end (docs/formats/xpress.md §3.5 step 7): pad the pending bits into the older slot; the newer stays 0. */
XP_INLINE void bw_finish(bitwriter *bw)
{
    xp_store16(bw->out + bw->slot[0], (uint16_t)(bw->pending << (16 - bw->npending)));
}

static xp_status write_block(const token *toks, size_t ntok, uint8_t *out, size_t cap, size_t *pos)
{
    uint32_t freq[XP_NUM_SYMBOLS] = {0};
    uint8_t lens[XP_NUM_SYMBOLS];
    uint16_t codes[XP_NUM_SYMBOLS];
    bitwriter bw;
    size_t i;

    for (i = 0; i < ntok; i++)
        freq[toks[i].sym]++;
    xp_build_code(freq, lens, codes);

    if (cap - *pos < 256 + 4 + TOKEN_MAX_BYTES)
        return XP_E_CAPACITY;
    for (i = 0; i < 256; i++) /* even symbol in the low nibble (docs/formats/xpress.md §3.1) */
        out[*pos + i] = (uint8_t)(lens[2 * i] | (lens[2 * i + 1] << 4));
    bw.out = out;
    bw.pos = *pos + 256;
    bw_start(&bw);

    for (i = 0; i < ntok; i++) {
        const token *t = &toks[i];
        unsigned sym = t->sym;
        if (XP_UNLIKELY(cap - bw.pos < TOKEN_MAX_BYTES))
            return XP_E_CAPACITY;
        bw_put(&bw, codes[sym], lens[sym]);
        if (sym > 256 || (sym == 256 && t->len)) {
            uint32_t l = t->len - 3;
            unsigned dbits = (sym >> 4) & 15;
            if (l >= 15) { /* extra length bytes (docs/formats/xpress.md §3.5 step 6) */
                if (l - 15 < 255) {
                    bw.out[bw.pos++] = (uint8_t)(l - 15);
                } else {
                    bw.out[bw.pos++] = 255;
                    if (l < 65536) {
                        xp_store16(bw.out + bw.pos, (uint16_t)l);
                        bw.pos += 2;
                    } else {
                        xp_store16(bw.out + bw.pos, 0);
                        xp_store32(bw.out + bw.pos + 2, l);
                        bw.pos += 6;
                    }
                }
            }
            bw_put(&bw, t->dist - (1u << dbits), dbits);
        }
    }
    bw_finish(&bw);
    *pos = bw.pos;
    return XP_OK;
}

size_t xp_huffman_bound(size_t in_len)
{
    /* <= 15 bits per literal, and less per input byte for matches; plus table, words and padding. */
    size_t blocks = in_len / BLOCK_OUT + 2;
    if (in_len > (SIZE_MAX - blocks * 300) / 2)
        return 0;
    return 2 * in_len + blocks * 300;
}

XP_INLINE token make_match(size_t len, size_t dist)
{
    token t;
    unsigned lc = len - 3 < 15 ? (unsigned)(len - 3) : 15;
    t.len = (uint32_t)len;
    t.dist = (uint16_t)dist;
    t.sym = (uint16_t)(256 | ((31 - __builtin_clz((unsigned)dist)) << 4) | lc);
    return t;
}

XP_INLINE token make_literal(uint8_t b)
{
    token t = {1, 0, b};
    return t;
}

/* A match worth emitting (see FAR_LEN3). */
XP_INLINE int usable(xp_match m)
{
    return m.len > 3 || (m.len == 3 && m.dist <= FAR_LEN3);
}

xp_status xp_huffman_encode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    xp_matcher *m = malloc(sizeof *m);
    token *toks = malloc((BLOCK_OUT + 1) * sizeof *toks);
    size_t pos = 0, opos = 0, block_start = 0, ntok = 0;
    xp_match cur = {0, 0};
    xp_status st = XP_OK;

    if (!m || !toks) {
        st = XP_E_NOMEM;
        goto done;
    }
    xp_matcher_init(m, in, in_len, MAX_DIST, XP_HUFF_CHAIN, XP_HUFF_NICE);
    if (in_len)
        cur = xp_matcher_find(m, 0);

    /* Greedy parse with one step of lazy evaluation. */
    while (pos < in_len) {
        if (usable(cur)) {
            if (cur.len < XP_HUFF_LAZY && pos + 1 < in_len) {
                xp_match next = xp_matcher_find(m, pos + 1);
                if (usable(next) && next.len > cur.len) {
                    toks[ntok++] = make_literal(in[pos]);
                    pos++;
                    cur = next;
                    goto block_check;
                }
            }
            toks[ntok++] = make_match(cur.len, cur.dist);
            pos += cur.len;
            xp_matcher_skip(m, pos);
        } else {
            toks[ntok++] = make_literal(in[pos]);
            pos++;
        }
        cur.len = 0;
        if (pos < in_len)
            cur = xp_matcher_find(m, pos);
    block_check:
        /* A block ends after >= 65536 bytes, except that the EOF symbol goes into the last block even
         * when the input ends exactly on a block boundary (docs/formats/xpress.md §3.5 step 1, §4 row 4). */
        if (pos - block_start >= BLOCK_OUT && pos < in_len) {
            st = write_block(toks, ntok, out, out_cap, &opos);
            if (st != XP_OK)
                goto done;
            ntok = 0;
            block_start = pos;
        }
    }
    toks[ntok].len = 0; /* EOF: symbol 256 with no length/distance data */
    toks[ntok].dist = 0;
    toks[ntok].sym = EOF_SYMBOL;
    ntok++;
    st = write_block(toks, ntok, out, out_cap, &opos);
    *out_len = opos;
done:
    free(m);
    free(toks);
    return st;
}
