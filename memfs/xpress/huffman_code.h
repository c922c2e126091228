/*
 * huffman_code.h - length-limited Huffman code construction for the LZ77+Huffman encoder
 * (docs/formats/xpress.md §3.2, §3.5 steps 3-4).
 */
#ifndef MEMFS_XP_HUFFMAN_CODE_H
#define MEMFS_XP_HUFFMAN_CODE_H

#include <stdint.h>

#define XP_NUM_SYMBOLS 512
#define XP_MAX_CODE_LEN 15

/*
 * From symbol frequencies, compute code lengths (<= 15, 0 = unused) forming a complete prefix code and
 * the canonical codes for them.  At least two symbols always get a code: if fewer than two have a
 * nonzero frequency, dummy symbols are added (docs/formats/xpress.md §3.5 step 3).
 */
void xp_build_code(const uint32_t freq[XP_NUM_SYMBOLS], uint8_t lens[XP_NUM_SYMBOLS],
                   uint16_t codes[XP_NUM_SYMBOLS]);

#endif /* MEMFS_XP_HUFFMAN_CODE_H */
