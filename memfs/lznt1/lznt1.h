/*
 * lznt1.h - pure-C core of the [MS-XCA] LZNT1 codec (no Python.h).  See docs/formats/lznt1.md.
 *
 * A stream is a series of chunks, each a 16-bit header and a body (docs/formats/lznt1.md §2); every chunk stands for
 * one 4 KiB slice of the output, the last may be shorter (§3).  The decoder never reads outside
 * [in, in + in_len) nor writes outside [out, out + out_len); its running time is O(in_len + out_len).
 *
 * The encoder writes a complete stream (no terminator) into a caller buffer of at least
 * lznt1_bound(in_len) bytes; chunks that do not shrink are stored uncompressed (§4).
 */
#ifndef MEMFS_LZNT1_H
#define MEMFS_LZNT1_H

#include <stddef.h>
#include <stdint.h>

#define LZNT1_CHUNK 4096u /* decoded bytes one chunk stands for (docs/formats/lznt1.md §3) */

/* Displacement bits of a copy token written when u bytes of its chunk are decoded (docs/formats/lznt1.md §2.3): the
 * fewest, at least 4, that reach back to the chunk start (2^bits >= u); the other 16 - bits hold the
 * length.  u <= LZNT1_CHUNK. */
static inline unsigned lznt1_displacement_bits(size_t u)
{
    return u <= 16 ? 4u : 32u - (unsigned)__builtin_clz((unsigned)(u - 1));
}

typedef enum {
    LZ_OK = 0,
    LZ_E_TRUNCATED,      /* a chunk's body runs past the end of the input */
    LZ_E_TOKEN,          /* a copy token is cut by the end of its chunk */
    LZ_E_SIGNATURE,      /* a chunk header's signature bits are not 3 (docs/formats/lznt1.md §2.1) */
    LZ_E_DISTANCE,       /* a copy token reaches before the start of its chunk */
    LZ_E_CHUNK_OVERFLOW, /* a chunk decodes to more than 4096 bytes */
    LZ_E_OVERRUN,        /* the stream holds more than out_len bytes */
    LZ_E_SHORT,          /* the stream ends before out_len bytes (exact decoding only) */
    LZ_E_NOMEM,          /* the encoder could not allocate its work memory */
    LZ_E_CAPACITY        /* the encoder's output buffer is smaller than lznt1_bound() */
} lz_status;

/* Where the decoder failed: byte offset in the input (the chunk header, token or byte at fault, or
 * where the stream ended for LZ_E_SHORT), and output bytes produced so far. */
typedef struct {
    size_t in_offset;
    size_t out_offset;
} lz_error;

/* Human-readable description of a status code (static string). */
const char *lz_strerror(lz_status status);

/*
 * Decode the stream in[0..in_len) into out[0..out_len).  The stream ends at a zero chunk header or
 * when fewer than two input bytes remain.  *produced receives the bytes decoded.  With `exact`, a
 * stream that ends before out_len bytes is LZ_E_SHORT; without it, out[*produced..out_len) is left
 * unspecified (the decoder may have written scratch bytes there) and LZ_OK is returned.
 */
lz_status lznt1_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, int exact,
                       size_t *produced, lz_error *err);

/*
 * Index the chunks of in[0..in_len) without decoding them: offsets[i] receives the offset of chunk i's
 * header and offsets[*count] the end of the last chunk (offsets has room for max_chunks + 1 entries).
 * Chunk i decodes to output bytes [4096 i, 4096 (i + 1)) (docs/formats/lznt1.md §3), so any run of chunks can be
 * decoded on its own.  Errors as the decoder's for headers; more than max_chunks chunks is LZ_E_OVERRUN;
 * in_len above UINT32_MAX is LZ_E_CAPACITY.
 */
lz_status lznt1_chunk_offsets(const uint8_t *in, size_t in_len, uint32_t *offsets, size_t max_chunks,
                              size_t *count, lz_error *err);

/* Largest possible encoder output for in_len input bytes (0 if that would overflow size_t). */
size_t lznt1_bound(size_t in_len);

/* Encode in[0..in_len) (docs/formats/lznt1.md §4).  On success *out_len holds the stream size. */
lz_status lznt1_encode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len);

#endif /* MEMFS_LZNT1_H */
