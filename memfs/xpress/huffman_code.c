/*
 * huffman_code.c - Huffman code lengths limited to 15 bits, and canonical codes (docs/formats/xpress.md §3.2, §3.5).
 *
 * Lengths come from an ordinary Huffman tree computed in place over the frequencies sorted in
 * ascending order (Moffat & Katajainen, "In-place calculation of minimum-redundancy codes", 1995).
 * If the tree is deeper than 15, all frequencies are halved (staying >= 1) and the tree is rebuilt,
 * as docs/formats/xpress.md §3.5 step 3 describes.
 */
#include "huffman_code.h"

#include <stdlib.h>

/* Sort key: frequency in the high bits, symbol in the low 9 bits (ties broken by symbol). */
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/*
 * A[0..n-1] holds frequencies in ascending order (n >= 2); on return A[i] is the code length of the
 * i-th one.  Three passes: build the tree with parent links, compute internal node depths, then leaf
 * depths.
 */
static void inplace_lengths(uint32_t *A, int n)
{
    int root = 0, leaf = 2, next, avail, used, depth;

    A[0] += A[1];
    for (next = 1; next < n - 1; next++) {
        if (leaf >= n || A[root] < A[leaf]) {
            A[next] = A[root];
            A[root++] = (uint32_t)next;
        } else {
            A[next] = A[leaf++];
        }
        if (leaf >= n || (root < next && A[root] < A[leaf])) {
            A[next] += A[root];
            A[root++] = (uint32_t)next;
        } else {
            A[next] += A[leaf++];
        }
    }
    A[n - 2] = 0;
    for (next = n - 3; next >= 0; next--)
        A[next] = A[A[next]] + 1;
    avail = 1;
    used = depth = 0;
    root = n - 2;
    next = n - 1;
    while (avail > 0) {
        while (root >= 0 && (int)A[root] == depth) {
            used++;
            root--;
        }
        while (avail > used) {
            A[next--] = (uint32_t)depth;
            avail--;
        }
        avail = 2 * used;
        depth++;
        used = 0;
    }
}

void xp_build_code(const uint32_t freq[XP_NUM_SYMBOLS], uint8_t lens[XP_NUM_SYMBOLS],
                   uint16_t codes[XP_NUM_SYMBOLS])
{
    uint32_t f[XP_NUM_SYMBOLS];
    uint32_t keys[XP_NUM_SYMBOLS];
    uint32_t A[XP_NUM_SYMBOLS];
    unsigned count[XP_MAX_CODE_LEN + 2] = {0};
    uint32_t next_code[XP_MAX_CODE_LEN + 2];
    int i, n = 0, maxlen;

    for (i = 0; i < XP_NUM_SYMBOLS; i++) {
        f[i] = freq[i];
        lens[i] = 0;
        codes[i] = 0;
        if (f[i])
            n++;
    }
    /* A single-symbol code cannot be complete: add dummy symbols (docs/formats/xpress.md §3.2 step 5). */
    for (i = 0; n < 2 && i < XP_NUM_SYMBOLS; i++) {
        if (!f[i]) {
            f[i] = 1;
            n++;
        }
    }

    for (;;) {
        /* Frequencies are capped so that (freq << 9) fits; a 64 KiB block never comes close. */
        n = 0;
        for (i = 0; i < XP_NUM_SYMBOLS; i++)
            if (f[i])
                keys[n++] = ((f[i] > 0x7FFFFF ? 0x7FFFFF : f[i]) << 9) | (uint32_t)i;
        qsort(keys, (size_t)n, sizeof keys[0], cmp_u32);
        for (i = 0; i < n; i++)
            A[i] = keys[i] >> 9;
        inplace_lengths(A, n);
        maxlen = (int)A[0]; /* the rarest symbol has the longest code */
        if (maxlen <= XP_MAX_CODE_LEN)
            break;
        for (i = 0; i < XP_NUM_SYMBOLS; i++)
            if (f[i])
                f[i] = f[i] > 1 ? f[i] >> 1 : 1;
    }
    for (i = 0; i < n; i++) {
        lens[keys[i] & 0x1FF] = (uint8_t)A[i];
        count[A[i]]++;
    }

    /* Canonical codes, ordered by (length, symbol) (docs/formats/xpress.md §3.2 steps 1-2). */
    next_code[1] = 0;
    for (i = 2; i <= XP_MAX_CODE_LEN; i++)
        next_code[i] = (next_code[i - 1] + count[i - 1]) << 1;
    for (i = 0; i < XP_NUM_SYMBOLS; i++)
        if (lens[i])
            codes[i] = (uint16_t)next_code[lens[i]]++;
}
