/*
 * matcher.h - hash-chain LZ77 match finder shared by both encoders (docs/formats/xpress.md §2.4 step "any matcher",
 * §3.5 step 2).  Chains are bounded in depth, so the cost per input byte is bounded.
 */
#ifndef MEMFS_XP_MATCHER_H
#define MEMFS_XP_MATCHER_H

#include <stddef.h>
#include <stdint.h>

#define XP_HASH_BITS 15
#define XP_WINDOW 65536u /* power of two >= the largest distance of either format */
#define XP_MIN_MATCH 3

typedef struct {
    const uint8_t *in;
    size_t in_len;
    size_t max_dist;      /* 8192 for Plain LZ77, 65535 for LZ77+Huffman */
    unsigned max_chain;   /* candidates examined per position */
    size_t nice_len;      /* stop searching once a match this long is found */
    size_t next_insert;   /* first position not yet inserted into the chains */
    /* Positions are stored modulo 2^32; every candidate is verified byte by byte, so a stale entry
     * can only cost a wasted comparison, never produce a wrong match. */
    uint32_t head[1u << XP_HASH_BITS];
    uint32_t prev[XP_WINDOW];
} xp_matcher;

typedef struct {
    size_t len;  /* 0 if no match of at least XP_MIN_MATCH bytes */
    size_t dist;
} xp_match;

void xp_matcher_init(xp_matcher *m, const uint8_t *in, size_t in_len, size_t max_dist, unsigned max_chain,
                     size_t nice_len);

/* Longest match for position pos (all earlier positions get inserted first). */
xp_match xp_matcher_find(xp_matcher *m, size_t pos);

/* The same with this call's own limits: at most max_dist back and max_len long (max_len <= in_len - pos).
 * LZNT1 uses it: both limits follow the position inside a 4 KiB chunk (docs/formats/lznt1.md §2.3). */
xp_match xp_matcher_find_within(xp_matcher *m, size_t pos, size_t max_dist, size_t max_len);

/* Insert positions up to (excluding) end, skipping the middle of long runs to bound the cost. */
void xp_matcher_skip(xp_matcher *m, size_t end);

#endif /* MEMFS_XP_MATCHER_H */
