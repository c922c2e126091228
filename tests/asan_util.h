/*
 * asan_util.h - helpers shared by the codec drivers run under AddressSanitizer/UBSan
 * (tests/xpress/asan_driver.c, tests/lznt1/asan_driver.c): a seeded xorshift generator, failure
 * counting, file reading, random edits and memory-like test data (inline: a driver need not use them
 * all).  Each driver is one translation unit, so the static state below is per driver.
 */
#ifndef MEMFS_TESTS_ASAN_UTIL_H
#define MEMFS_TESTS_ASAN_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static unsigned long failures;

static inline uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static inline size_t rnd_below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static inline void fail(const char *what, const char *name)
{
    failures++;
    fprintf(stderr, "FAIL: %s (%s)\n", what, name);
}

/* malloc that never returns NULL (exits instead) and accepts 0. */
static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* The whole file in an exactly-sized heap buffer, or NULL. */
static inline uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)(n > 0 ? n : 0);
    return buf;
}

/* One to four random bit flips or byte overwrites. */
static inline void mutate(uint8_t *buf, size_t len)
{
    size_t k, edits = 1 + rnd_below(4);
    for (k = 0; k < edits && len; k++) {
        size_t pos = rnd_below(len);
        if (rnd() & 1)
            buf[pos] ^= (uint8_t)(1u << rnd_below(8));
        else
            buf[pos] = (uint8_t)rnd();
    }
}

/* Memory-like content: zero runs, random bytes, words, pointer tables, short repeated patterns. */
static inline void fill_memory_like(uint8_t *buf, size_t len)
{
    static const char *words[] = {"kernel ", "memory ", "page ", "\\Windows\\", "svchost.exe ", "a", "\0\0"};
    size_t pos = 0;
    while (pos < len) {
        size_t n = 1 + rnd_below(rnd() & 1 ? 300 : 9000), i;
        unsigned kind = (unsigned)rnd_below(5);
        if (n > len - pos)
            n = len - pos;
        for (i = 0; i < n; i++) {
            switch (kind) {
            case 0: buf[pos + i] = 0; break;
            case 1: buf[pos + i] = (uint8_t)rnd(); break;
            case 2: {
                const char *w = words[rnd_below(7)];
                size_t wl = strlen(w) ? strlen(w) : 1, j;
                for (j = 0; j < wl && i < n; j++, i++)
                    buf[pos + i] = (uint8_t)w[j];
                i--;
                break;
            }
            case 3: buf[pos + i] = (i % 8) >= 6 ? 0xFF : (uint8_t)((i % 8) == 0 ? rnd() & 0xF8 : i); break;
            default: buf[pos + i] = (uint8_t)("abcab"[i % 5]); break;
            }
        }
        pos += n;
    }
}

#endif /* MEMFS_TESTS_ASAN_UTIL_H */
