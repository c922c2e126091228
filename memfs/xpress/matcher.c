/*
 * matcher.c - hash-chain match finder (see matcher.h).
 */
#include "matcher.h"

#include "xp_util.h"

/* head[] value for "empty": its distance from any position below 4 GiB - XP_WINDOW exceeds the window. */
#define EMPTY ((uint32_t)0 - XP_WINDOW - 1)
#define MAX_MATCH ((size_t)0xFFFFFFF0u) /* keeps length - 3 within the formats' 32-bit escape */

XP_INLINE uint32_t hash3(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
    return (v * 0x9E3779B1u) >> (32 - XP_HASH_BITS);
}

XP_INLINE void insert(xp_matcher *m, size_t pos)
{
    uint32_t h = hash3(m->in + pos);
    m->prev[pos & (XP_WINDOW - 1)] = m->head[h];
    m->head[h] = (uint32_t)pos;
}

void xp_matcher_init(xp_matcher *m, const uint8_t *in, size_t in_len, size_t max_dist, unsigned max_chain,
                     size_t nice_len)
{
    size_t i;
    m->in = in;
    m->in_len = in_len;
    m->max_dist = max_dist;
    m->max_chain = max_chain;
    m->nice_len = nice_len;
    m->next_insert = 0;
    for (i = 0; i < (1u << XP_HASH_BITS); i++)
        m->head[i] = EMPTY;
}

/* Length of the common prefix of a and b, at most max. */
XP_INLINE size_t common_length(const uint8_t *a, const uint8_t *b, size_t max)
{
    size_t n = 0;
    while (max - n >= 8) {
        uint64_t x = xp_load64(a + n) ^ xp_load64(b + n);
        if (x)
            return n + ((size_t)__builtin_ctzll(x) >> 3);
        n += 8;
    }
    while (n < max && a[n] == b[n])
        n++;
    return n;
}

void xp_matcher_skip(xp_matcher *m, size_t end)
{
    size_t last = m->in_len >= XP_MIN_MATCH ? m->in_len - XP_MIN_MATCH + 1 : 0; /* hashable positions */
    size_t pos = m->next_insert;
    if (end > last)
        end = last;
    /* In a long run (zero pages) only the last window's worth of positions can still be matched. */
    if (end > pos + XP_WINDOW)
        pos = end - XP_WINDOW;
    for (; pos < end; pos++)
        insert(m, pos);
    if (end > m->next_insert)
        m->next_insert = end;
}

xp_match xp_matcher_find(xp_matcher *m, size_t pos)
{
    size_t max_len = m->in_len - pos;
    return xp_matcher_find_within(m, pos, m->max_dist, max_len > MAX_MATCH ? MAX_MATCH : max_len);
}

xp_match xp_matcher_find_within(xp_matcher *m, size_t pos, size_t max_dist, size_t max_len)
{
    xp_match best = {0, 0};
    const uint8_t *in = m->in;
    const uint8_t *cur = in + pos;
    size_t best_len = XP_MIN_MATCH - 1;
    unsigned chain = m->max_chain;
    uint32_t cand;

    if (max_len < XP_MIN_MATCH)
        return best;
    xp_matcher_skip(m, pos);
    cand = m->head[hash3(cur)];
    insert(m, pos);
    m->next_insert = pos + 1;

    while (chain--) {
        size_t d = (uint32_t)((uint32_t)pos - cand);
        const uint8_t *c;
        if (d == 0 || d > max_dist || d > pos)
            break;
        c = cur - d;
        if (c[best_len] == cur[best_len] && c[0] == cur[0] && c[1] == cur[1]) {
            size_t len = common_length(c, cur, max_len);
            if (len > best_len) {
                best_len = len;
                best.len = len;
                best.dist = d;
                if (len >= m->nice_len || len == max_len)
                    break;
            }
        }
        cand = m->prev[(pos - d) & (XP_WINDOW - 1)];
    }
    return best;
}
