/*
 * asan_driver.c - stand-alone harness for the LZNT1 codec core under AddressSanitizer/UBSan
 * (built and run by `make asan-lznt1`, part of `make asan`; no Python involved).
 *
 *   lznt1_asan_driver [--vector FILE SIZE]... [--fuzz N] [--seed S]
 *
 * Vectors: the [MS-XCA] §3.3 example (built in) and each FILE, an LZNT1 stream decoding to SIZE bytes
 * (e.g. shared/data/lznt1/dumpit_block0.lznt1 2097152).  Each is decoded exactly, with sizes off by one,
 * truncated and mutated.  Then N random streams (raw bytes, and random bodies behind valid chunk headers)
 * and encoder round trips over memory-like data, including sizes around 4 KiB multiples.  Every buffer is
 * malloc'd with its exact size so that any out-of-bounds access is caught.  Exit status 0 = all good.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asan_util.h"
#include "lznt1.h"

/* Index the chunks of an exactly-sized copy into an exactly-sized offsets array; check the contract. */
static void index_chunks(const uint8_t *in, size_t in_len, size_t max_chunks)
{
    uint8_t *copy = xmalloc(in_len);
    uint32_t *offsets = xmalloc((max_chunks + 1) * sizeof *offsets);
    size_t count = 0, i;
    lz_error err = {0, 0};
    memcpy(copy, in, in_len);
    if (lznt1_chunk_offsets(copy, in_len, offsets, max_chunks, &count, &err) == LZ_OK) {
        if (count > max_chunks || offsets[count] > in_len)
            fail("chunk index out of range", "chunk_offsets");
        for (i = 0; i < count; i++)
            if (offsets[i] >= offsets[i + 1])
                fail("chunk offsets not increasing", "chunk_offsets");
    } else if (err.in_offset > in_len) {
        fail("error offset beyond input", "chunk_offsets");
    }
    free(offsets);
    free(copy);
}

/* Decode from an exactly-sized copy into an exactly-sized buffer; check the error contract. */
static lz_status decode(const uint8_t *in, size_t in_len, size_t out_len, int exact, uint8_t **out)
{
    uint8_t *copy = xmalloc(in_len), *buf = xmalloc(out_len);
    size_t produced = 0;
    lz_error err = {0, 0};
    lz_status st;
    memcpy(copy, in, in_len);
    st = lznt1_decode(copy, in_len, buf, out_len, exact, &produced, &err);
    if (st != LZ_OK && err.in_offset > in_len)
        fail("error offset beyond input", lz_strerror(st));
    if (st == LZ_OK && (produced > out_len || (exact && produced != out_len)))
        fail("produced count out of range", "decode");
    free(copy);
    if (out)
        *out = buf;
    else
        free(buf);
    return st;
}

static void check_vector(const char *name, const uint8_t *c, size_t clen, size_t size, const uint8_t *expected)
{
    uint8_t *out = NULL, *stream;
    size_t i, slen = 0, cap = lznt1_bound(size);
    if (decode(c, clen, size, 1, &out) != LZ_OK || (expected && memcmp(out, expected, size) != 0))
        fail("vector does not decode exactly", name);
    /* Re-encode what it decoded: our stream must decode to the same bytes. */
    stream = xmalloc(cap);
    if (lznt1_encode(out, size, stream, cap, &slen) != LZ_OK)
        fail("encoder failed on vector", name);
    else {
        uint8_t *again = NULL;
        if (decode(stream, slen, size, 1, &again) != LZ_OK || memcmp(again, out, size) != 0)
            fail("re-encoded vector does not round-trip", name);
        free(again);
    }
    free(stream);
    free(out);
    decode(c, clen, size + 1, 1, NULL);
    if (size)
        decode(c, clen, size - 1, 1, NULL);
    for (i = 0; i < clen; i += 1 + clen / 64) /* truncations */
        decode(c, i, size, 0, NULL);
    index_chunks(c, clen, (size + LZNT1_CHUNK - 1) / LZNT1_CHUNK);
    for (i = 0; i < 200; i++) {
        uint8_t *m = xmalloc(clen);
        memcpy(m, c, clen);
        mutate(m, clen);
        decode(m, clen, size, 0, NULL);
        decode(m, clen, size, 1, NULL);
        index_chunks(m, clen, (size + LZNT1_CHUNK - 1) / LZNT1_CHUNK);
        free(m);
    }
}

static void check_file(const char *path, size_t size)
{
    size_t n = 0;
    uint8_t *buf = read_file(path, &n);
    if (!buf)
        fail("cannot read vector", path);
    else
        check_vector(path, buf, n, size, NULL);
    free(buf);
}

/* [MS-XCA] §3.3 (docs/formats/lznt1.md §2.4): 59 bytes decoding to a 142-byte string. */
static void check_msxca_example(void)
{
    static const uint8_t stream[59] = {
        0x38, 0xb0, 0x88, 0x46, 0x23, 0x20, 0x00, 0x20, 0x47, 0x20, 0x41, 0x00, 0x10, 0xa2, 0x47, 0x01,
        0xa0, 0x45, 0x20, 0x44, 0x00, 0x08, 0x45, 0x01, 0x50, 0x79, 0x00, 0xc0, 0x45, 0x20, 0x05, 0x24,
        0x13, 0x88, 0x05, 0xb4, 0x02, 0x4a, 0x44, 0xef, 0x03, 0x58, 0x02, 0x8c, 0x09, 0x16, 0x01, 0x48,
        0x45, 0x00, 0xbe, 0x00, 0x9e, 0x00, 0x04, 0x01, 0x18, 0x90, 0x00};
    static const char text[] = "F# F# G A A G F# E D D E F# F# E E F# F# G A A G F# E D D E F# E D D E E F# D "
                               "E F# G F# D E F# G F# E D E A F# F# G A A G F# E D D E F# E D D";
    check_vector("MS-XCA 3.3", stream, sizeof stream, sizeof text, (const uint8_t *)text);
}

static void round_trip(size_t len)
{
    uint8_t *data = xmalloc(len), *stream, *out = NULL;
    size_t cap = lznt1_bound(len), slen = 0;
    fill_memory_like(data, len);
    stream = xmalloc(cap);
    if (lznt1_encode(data, len, stream, cap, &slen) != LZ_OK) {
        fail("encoder failed", "round trip");
    } else {
        if (decode(stream, slen, len, 1, &out) != LZ_OK || memcmp(out, data, len) != 0)
            fail("round trip mismatch", "round trip");
        free(out);
        mutate(stream, slen);
        decode(stream, slen, len, 0, NULL);
    }
    if (cap > 0 && lznt1_encode(data, len, stream, cap - 1, &slen) != LZ_E_CAPACITY)
        fail("encoder accepted a buffer below its bound", "round trip");
    free(stream);
    free(data);
}

static void fuzz(unsigned iterations)
{
    unsigned i;
    for (i = 0; i < iterations; i++) {
        size_t len = rnd_below(i % 16 == 0 ? 20000 : 3000), out_len = rnd_below(i % 8 == 0 ? 70000 : 9000);
        uint8_t *buf = xmalloc(len);
        size_t j, pos;
        for (j = 0; j < len; j++)
            buf[j] = (uint8_t)rnd();
        decode(buf, len, out_len, i & 1, NULL);
        /* Valid headers (mostly compressed) over the random bodies. */
        for (pos = 0; pos + 2 < len;) {
            size_t body = 1 + rnd_below(len - pos - 2 < 700 ? len - pos - 2 : 700);
            unsigned header = (rnd() % 5 ? 0xB000u : 0x3000u) | (unsigned)(body - 1);
            buf[pos] = (uint8_t)header;
            buf[pos + 1] = (uint8_t)(header >> 8);
            pos += 2 + body;
        }
        decode(buf, len, out_len, i & 1, NULL);
        index_chunks(buf, len, rnd_below(8));
        free(buf);
        if (i % 32 == 0)
            round_trip(rnd_below(i % 64 == 0 ? 300000 : 20000));
    }
}

int main(int argc, char **argv)
{
    unsigned iterations = 2000, nvec = 1;
    size_t sizes[] = {0, 1, 2, 3, 4, 17, 4095, 4096, 4097, 8191, 8192, 8193, 65536, 2097152};
    size_t i;
    int a;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--fuzz") == 0 && a + 1 < argc)
            iterations = (unsigned)strtoul(argv[++a], NULL, 10);
        else if (strcmp(argv[a], "--seed") == 0 && a + 1 < argc)
            rng_state = strtoull(argv[++a], NULL, 10) | 1;
        else if (strcmp(argv[a], "--vector") != 0 || a + 2 >= argc) {
            fprintf(stderr, "usage: %s [--vector FILE SIZE]... [--fuzz N] [--seed S]\n", argv[0]);
            return 2;
        } else
            a += 2;
    }
    check_msxca_example();
    for (a = 1; a < argc; a++) { /* second pass: vectors, after the seed is set */
        if (strcmp(argv[a], "--vector") == 0) {
            check_file(argv[a + 1], (size_t)strtoull(argv[a + 2], NULL, 10));
            nvec++;
            a += 2;
        } else
            a++;
    }
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        round_trip(sizes[i]);
    fuzz(iterations);
    printf("lznt1 asan_driver: %u vectors (200 mutations each), %u fuzz iterations, %zu fixed-size round trips: "
           "%s\n",
           nvec, iterations, sizeof sizes / sizeof sizes[0], failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
