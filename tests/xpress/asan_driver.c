/*
 * asan_driver.c - stand-alone harness for the Xpress codec core under AddressSanitizer/UBSan
 * (built and run by `make -f mk/asan.mk asan`; no Python involved).
 *
 *   asan_driver [--list FILE] [--fuzz N] [--seed S]
 *
 * FILE has one vector per line: "<plain_lz77|lz77_huffman> <compressed path> <expected path>".
 * For every vector: decode with the exact size and compare; decode with sizes off by one; decode
 * mutated copies; for LZ77+Huffman, decode prefixes (xp_huffman_decode_prefix) and compare them with
 * the whole decode, here and in the round trips and random streams below.  Then N random streams (raw, and random bits behind complete Huffman codes) and
 * encoder round trips over memory-like data, including sizes around 64 KiB.  Every buffer is malloc'd
 * with its exact size so that any out-of-bounds access is caught.  Exit status 0 = all good.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asan_util.h"
#include "xpress.h"

typedef xp_status (*decode_fn)(const uint8_t *, size_t, uint8_t *, size_t, xp_error *);

/* Decode into an exactly-sized heap buffer; returns the status; *out receives the buffer. */
static xp_status decode_exact(decode_fn fn, const uint8_t *in, size_t in_len, size_t out_len, uint8_t **out)
{
    uint8_t *copy = malloc(in_len ? in_len : 1);
    uint8_t *buf = malloc(out_len ? out_len : 1);
    xp_error err;
    xp_status st;
    if (!copy || !buf) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(copy, in, in_len);
    st = fn(copy, in_len, buf, out_len, &err);
    if (st != XP_OK && err.in_offset > in_len)
        fail("error offset beyond input", xp_strerror(st));
    free(copy);
    if (out)
        *out = buf;
    else
        free(buf);
    return st;
}

/* xp_huffman_decode_prefix into an exactly-sized heap buffer.  When `full` (the whole decode of the same
 * stream, or NULL) is given, a success must be a true prefix of it, of at least `need` bytes. */
static xp_status check_prefix(const uint8_t *in, size_t in_len, size_t out_len, size_t need, const uint8_t *full)
{
    uint8_t *copy = malloc(in_len ? in_len : 1);
    uint8_t *buf = malloc(out_len ? out_len : 1);
    size_t produced = 0;
    xp_error err;
    xp_status st;
    if (!copy || !buf) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(copy, in, in_len);
    st = xp_huffman_decode_prefix(copy, in_len, buf, out_len, need, &produced, &err);
    if (st != XP_OK && err.in_offset > in_len)
        fail("prefix: error offset beyond input", xp_strerror(st));
    if (st == XP_OK && (produced > out_len || produced < (need < out_len ? need : out_len)))
        fail("prefix: produced size out of range", "");
    if (st == XP_OK && full && memcmp(buf, full, produced) != 0)
        fail("prefix differs from the full decode", "");
    free(copy);
    free(buf);
    return st;
}

/* A few prefixes of a stream whose full decode is `full` (out_len bytes): none may fail. */
static void check_prefixes(const uint8_t *in, size_t in_len, const uint8_t *full, size_t out_len)
{
    size_t needs[6] = {0, 1, 4096, out_len / 2, out_len ? out_len - 1 : 0, out_len};
    unsigned i;
    for (i = 0; i < 6; i++)
        if (needs[i] <= out_len && check_prefix(in, in_len, out_len, needs[i], full) != XP_OK)
            fail("prefix of a stream that decodes whole failed", "");
    for (i = 0; i < 4; i++)
        if (check_prefix(in, in_len, out_len, rnd_below(out_len + 1), full) != XP_OK)
            fail("prefix of a stream that decodes whole failed", "");
}

static void check_vector(const char *alg, const char *cpath, const char *epath, unsigned mutations)
{
    size_t clen, elen, i;
    uint8_t *c = read_file(cpath, &clen), *e = read_file(epath, &elen), *out = NULL;
    decode_fn fn = strcmp(alg, "plain_lz77") == 0 ? xp_plain_decode : xp_huffman_decode;
    if (!c || !e) {
        fail("cannot read vector", cpath);
        free(c);
        free(e);
        return;
    }
    if (decode_exact(fn, c, clen, elen, &out) != XP_OK || memcmp(out, e, elen) != 0)
        fail("vector does not decode byte-exactly", cpath);
    free(out);
    if (fn == xp_huffman_decode)
        check_prefixes(c, clen, e, elen);
    decode_exact(fn, c, clen, elen + 1, NULL);
    if (elen)
        decode_exact(fn, c, clen, elen - 1, NULL);
    decode_exact(fn == xp_plain_decode ? xp_huffman_decode : xp_plain_decode, c, clen, elen, NULL);
    for (i = 0; i < clen; i += 1 + clen / 16) /* truncations */
        decode_exact(fn, c, i, elen, NULL);
    for (i = 0; i < mutations; i++) {
        uint8_t *m = malloc(clen ? clen : 1);
        memcpy(m, c, clen);
        mutate(m, clen);
        decode_exact(fn, m, clen, elen, NULL);
        if (fn == xp_huffman_decode)
            check_prefix(m, clen, elen, rnd_below(elen + 1), NULL);
        free(m);
    }
    free(c);
    free(e);
}

static unsigned run_vectors(const char *list, unsigned mutations)
{
    char line[4096], alg[64], cpath[2048], epath[2048];
    unsigned n = 0;
    FILE *f = fopen(list, "r");
    if (!f) {
        fail("cannot open vector list", list);
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%63s %2047s %2047s", alg, cpath, epath) == 3) {
            check_vector(alg, cpath, epath, mutations);
            n++;
        }
    }
    fclose(f);
    return n;
}

static void round_trip(size_t len)
{
    uint8_t *data = malloc(len ? len : 1), *stream, *out;
    size_t cap, slen;
    int alg;
    fill_memory_like(data, len);
    for (alg = 0; alg < 2; alg++) {
        cap = alg ? xp_huffman_bound(len) : xp_plain_bound(len);
        stream = malloc(cap);
        if ((alg ? xp_huffman_encode(data, len, stream, cap, &slen) : xp_plain_encode(data, len, stream, cap, &slen))
            != XP_OK) {
            fail("encoder failed", alg ? "huffman" : "plain");
        } else if (decode_exact(alg ? xp_huffman_decode : xp_plain_decode, stream, slen, len, &out) != XP_OK ||
                   memcmp(out, data, len) != 0) {
            fail("round trip mismatch", alg ? "huffman" : "plain");
            free(out);
        } else {
            free(out);
            if (alg)
                check_prefixes(stream, slen, data, len);
        }
        free(stream);
    }
    free(data);
}

/* A complete code for the Huffman fuzzing: all 512 symbols at 9 bits, or lengths 1..15 on a few. */
static void random_table(uint8_t *table)
{
    static const unsigned skewed[16] = {257, 0, 300, 1, 511, 2, 270, 3, 400, 4, 271, 5, 256, 7, 8, 9};
    unsigned i;
    if (rnd() & 1) {
        memset(table, 0x99, 256);
        return;
    }
    memset(table, 0, 256);
    for (i = 0; i < 16; i++) {
        unsigned len = i + 1 < 15 ? i + 1 : 15;
        table[skewed[i] / 2] |= (uint8_t)(len << (4 * (skewed[i] % 2)));
    }
}

static void fuzz(unsigned iterations)
{
    unsigned i;
    for (i = 0; i < iterations; i++) {
        size_t len = rnd_below(i % 16 == 0 ? 70000 : 2000), out_len = rnd_below(i % 8 == 0 ? 200000 : 20000);
        uint8_t *buf = malloc(len + 256);
        size_t j;
        for (j = 0; j < len + 256; j++)
            buf[j] = (uint8_t)(rnd() & (i & 1 ? 0xFF : 0x0F));
        decode_exact(xp_plain_decode, buf + 256, len, out_len, NULL);
        decode_exact(xp_huffman_decode, buf + 256, len, out_len, NULL);
        random_table(buf);
        decode_exact(xp_huffman_decode, buf, len + 256, out_len, NULL);
        check_prefix(buf, len + 256, out_len, rnd_below(out_len + 1), NULL);
        free(buf);
        if (i % 64 == 0)
            round_trip(rnd_below(i % 128 == 0 ? 300000 : 20000));
    }
}

int main(int argc, char **argv)
{
    const char *list = NULL;
    unsigned iterations = 2000, nvec = 0, mutations = 50;
    size_t sizes[] = {0, 1, 2, 3, 31, 32, 33, 4096, 65535, 65536, 65537, 131072, 131073, 200000};
    size_t i;
    int a;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--list") == 0 && a + 1 < argc)
            list = argv[++a];
        else if (strcmp(argv[a], "--fuzz") == 0 && a + 1 < argc)
            iterations = (unsigned)strtoul(argv[++a], NULL, 10);
        else if (strcmp(argv[a], "--seed") == 0 && a + 1 < argc)
            rng_state = strtoull(argv[++a], NULL, 10) | 1;
        else {
            fprintf(stderr, "usage: %s [--list FILE] [--fuzz N] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    if (list)
        nvec = run_vectors(list, mutations);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        round_trip(sizes[i]);
    fuzz(iterations);
    printf("asan_driver: %u vectors (%u mutations each), %u fuzz iterations, %zu fixed-size round trips: %s\n",
           nvec, mutations, iterations, sizeof sizes / sizeof sizes[0], failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
