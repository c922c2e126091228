/*
 * xp_util.h - small inline helpers shared by the codec sources: unaligned little-endian loads and
 * stores, and the LZ77 match copy used by both decoders.
 */
#ifndef MEMFS_XP_UTIL_H
#define MEMFS_XP_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define XP_LIKELY(x) __builtin_expect(!!(x), 1)
#define XP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define XP_INLINE static inline __attribute__((always_inline))
#else
#define XP_LIKELY(x) (x)
#define XP_UNLIKELY(x) (x)
#define XP_INLINE static inline
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "memfs xpress: big-endian hosts are not supported"
#endif

XP_INLINE uint16_t xp_load16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

XP_INLINE uint32_t xp_load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

XP_INLINE uint64_t xp_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

XP_INLINE void xp_store16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
XP_INLINE void xp_store32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
XP_INLINE void xp_store64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Number of spare output bytes a fast match copy may scribble over past the match end. */
#define XP_COPY_SLACK 8
#define XP_WIDE_COPY 16

/*
 * Copy an LZ77 match of `len` bytes from `dist` bytes back (dist >= 1; source and destination overlap
 * when dist < len, which repeats the last `dist` bytes, docs/formats/xpress.md §2.2 step 5).  The caller guarantees
 * that [op - dist, op + len) lies inside the output buffer.  When `room` (bytes writable from op) is at
 * least len + XP_COPY_SLACK, whole words are copied and up to 15 bytes past the match are overwritten
 * (they are rewritten later by the decoder).  Most matches are short (<= 16 bytes) and at least 16
 * bytes back, so one unconditional 16-byte step copies them: that saves the loop's mispredictions.
 * Closer to the end, nothing past the match is written.
 */
XP_INLINE void xp_copy_match(uint8_t *op, size_t dist, size_t len, size_t room)
{
    const uint8_t *src = op - dist;
    uint8_t *end = op + len;

    if (XP_LIKELY(dist >= XP_WIDE_COPY && room - len >= XP_WIDE_COPY)) {
        do {
            memcpy(op, src, XP_WIDE_COPY);
            op += XP_WIDE_COPY;
            src += XP_WIDE_COPY;
        } while (op < end);
        return;
    }
    if (XP_LIKELY(room - len >= XP_COPY_SLACK)) {
        if (dist >= 8) {
            do {
                xp_store64(op, xp_load64(src));
                op += 8;
                src += 8;
            } while (op < end);
            return;
        }
        if (dist == 1) {
            memset(op, *src, len);
            return;
        }
        /* 2 <= dist <= 7: the output repeats src[0..dist) with period dist.  Build 8 bytes of that
         * pattern and store it every `step` bytes, step = the largest multiple of dist <= 8. */
        {
            uint8_t pat[8];
            size_t i, step = 8 - (8 % dist);
            uint64_t v;
            for (i = 0; i < 8; i++)
                pat[i] = src[i % dist];
            memcpy(&v, pat, 8);
            do {
                xp_store64(op, v);
                op += step;
            } while (op < end);
        }
        return;
    }
    /* Near the end of the buffer (typically a unit's last match, often a long run of zeros): exact
     * copies only.  A run of one byte is a memset; otherwise pieces of at most `dist` bytes, which do
     * not overlap their source. */
    if (dist == 1) {
        memset(op, *src, len);
        return;
    }
    while (op < end) {
        size_t n = (size_t)(end - op) < dist ? (size_t)(end - op) : dist;
        memcpy(op, src, n);
        op += n;
        src += n;
    }
}

#endif /* MEMFS_XP_UTIL_H */
