/*
 * xpress.h - pure-C core of the [MS-XCA] Xpress codecs (no Python.h).
 *
 * Two algorithms (see docs/formats/xpress.md):
 *   - Plain LZ77     (docs/formats/xpress.md §2)
 *   - LZ77+Huffman   (docs/formats/xpress.md §3)
 *
 * Decoders write exactly out_len bytes or fail with an xp_status and the input/output offsets of the
 * failure.  They never read outside [in, in + in_len) nor write outside [out, out + out_len), and their
 * running time is bounded by O(in_len + out_len).
 *
 * Encoders write a complete stream into a caller buffer of at least xp_*_bound(in_len) bytes.
 */
#ifndef MEMFS_XPRESS_H
#define MEMFS_XPRESS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    XP_OK = 0,
    XP_E_TRUNCATED,     /* a symbol, escape or table runs past the end of the input */
    XP_E_SHORT,         /* the stream ended before out_len bytes were produced (docs/formats/xpress.md §2.2 step 6) */
    XP_E_DISTANCE,      /* a match refers to before the start of the output */
    XP_E_OVERRUN,       /* a match would write past out_len (docs/formats/xpress.md §2.2 step 5, §3.4 step 7) */
    XP_E_BAD_LENGTH,    /* a 16/32-bit length escape holds a value below its minimum */
    XP_E_BAD_CODE,      /* a Huffman code-length table is not a complete prefix code (docs/formats/xpress.md §3.2) */
    XP_E_NOMEM,         /* an encoder could not allocate its work memory */
    XP_E_CAPACITY       /* an encoder's output buffer is smaller than xp_*_bound() */
} xp_status;

/* Where a decoder failed: byte offset in the compressed input, and output bytes produced so far. */
typedef struct {
    size_t in_offset;
    size_t out_offset;
} xp_error;

/* Human-readable description of a status code (static string). */
const char *xp_strerror(xp_status status);

/* Plain LZ77 decoder (docs/formats/xpress.md §2.2). */
xp_status xp_plain_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, xp_error *err);

/* LZ77+Huffman decoder (docs/formats/xpress.md §3.3, §3.4). */
xp_status xp_huffman_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                            xp_error *err);

/* LZ77+Huffman, first bytes only: decode into out (out_len bytes, the stream's whole output) and stop
 * once at least `need` bytes (at most out_len) are produced; *produced receives how many (a match may run
 * past `need`).  out[0, *produced) equals the first *produced bytes xp_huffman_decode would give. */
xp_status xp_huffman_decode_prefix(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                                   size_t need, size_t *produced, xp_error *err);

/* Largest possible output of the encoders for in_len input bytes (0 if that would overflow size_t). */
size_t xp_plain_bound(size_t in_len);
size_t xp_huffman_bound(size_t in_len);

/* Encoders (docs/formats/xpress.md §2.4 and §3.5).  On success *out_len holds the stream size. */
xp_status xp_plain_encode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len);
xp_status xp_huffman_encode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                            size_t *out_len);

#endif /* MEMFS_XPRESS_H */
