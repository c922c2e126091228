/*
 * huffman_decode.c - [MS-XCA] LZ77+Huffman decoder (docs/formats/xpress.md §3.1-§3.4, §4).
 *
 * Bit reader.  The format's reader (docs/formats/xpress.md §3.3) keeps a 32-bit window of 16..32 valid bits and pulls
 * one u16 word whenever fewer than 16 remain; extra length bytes are read at the byte position just
 * after the last word pulled.  This decoder instead keeps a 64-bit buffer that may hold up to two words
 * more (or one word fewer) than the format's window, refilled several words at a time.  Both consume
 * the same bits, so they differ by whole words: with B bits in our buffer the format's window holds
 * 16 + (B mod 16) bits (it never holds exactly 32 once a bit was consumed), and the format's byte
 * position is ours minus 2 * (B / 16 - 1).  The rare events that need that position (an extra length
 * byte, the start of the next block) re-synchronise the buffer to the format's window exactly.
 */
#include "xpress.h"
#include "xp_util.h"

#define BLOCK_OUT 65536u      /* a block ends once it has produced this many bytes (§3.4 step 4) */
#define TABLE_BYTES 256u      /* 512 four-bit code lengths (§3.1) */
#define MAX_LEN 15u
#define PRIMARY_BITS 11u
#define SUB_BITS (MAX_LEN - PRIMARY_BITS)
#define TABLE_SIZE ((1u << PRIMARY_BITS) + 512u * (1u << SUB_BITS))
/* Literal pairs (see decode_symbols) are tried in a block whose literals of one code length take at
 * least this share of the 2^15 code space (7/8): there the guess is nearly always right.  The speed is
 * insensitive to the exact value between 3/4 and 15/16. */
#define PAIR_MIN (7u << (MAX_LEN - 3))
/*
 * Table entry (32 bits).  The symbol loop's critical path is bit buffer -> table index -> entry load ->
 * shift of the bit buffer, so every entry keeps the number of bits to consume in its low 6 bits: the
 * buffer is shifted by the entry itself (`buf <<= e & 63`, which x86 does without the mask).
 *   literal:  shift = code length, byte in bits 8-15, nothing above (so e < ENTRY_MATCH).
 *   match:    ENTRY_MATCH | shift | dbits << 8 | length code << 12 | code length << 16.  When the
 *             length code is below 15 the distance bits follow the code directly (§3.1), so shift =
 *             code length + dbits (<= 30, and refill() guarantees 32 valid bits) and the whole match
 *             costs one shift; with length code 15 extra length bytes come between code and distance
 *             (§3.3 step 4), so shift = code length and the distance bits are consumed separately.
 *   subtable: ENTRY_SUBTABLE | index of a 2^SUB_BITS-entry subtable (primary table only).
 */
#define ENTRY_MATCH 0x40000000u
#define ENTRY_SUBTABLE 0x80000000u
#define LIT_ENTRY(byte, len) ((uint32_t)(len) | ((uint32_t)(byte) << 8))

/* The entry of symbol `sym` (0..511) with code length `len` (1..15). */
static uint32_t make_entry(unsigned sym, unsigned len)
{
    unsigned lc, dbits;
    if (sym < 256)
        return LIT_ENTRY(sym, len);
    lc = (sym - 256) & 15;
    dbits = (sym - 256) >> 4;
    return ENTRY_MATCH | (lc < 15 ? len + dbits : len) | (dbits << 8) | (lc << 12) | (len << 16);
}

typedef struct {
    uint64_t buf;    /* next bit is bit 63; bits below the valid ones are either 0 or stream data */
    unsigned bits;   /* valid bits in buf */
    size_t ip;       /* byte position of the next word to load; may run past in_len (zero fill) */
} bitreader;

static xp_status fail(xp_error *err, xp_status st, size_t in_off, size_t out_off)
{
    if (err) {
        err->in_offset = in_off;
        err->out_offset = out_off;
    }
    return st;
}

/*
 * Build the two-level decoding table for one block's 256-byte code-length table (docs/formats/xpress.md §3.2).
 * Symbols in canonical order (length, then value) fill the 15-bit code space from 0 upward; codes up to
 * PRIMARY_BITS long are resolved by the primary table, longer ones through 2^SUB_BITS-entry subtables.
 * *pair_len: the code length that most of the literals' code space has if that share reaches PAIR_MIN
 * (and the length is <= PRIMARY_BITS), else 0 (no literal pairs in this block).
 * Returns 0 if the lengths form a complete prefix code (Kraft sum exactly 1), -1 otherwise.
 */
static int build_table(const uint8_t *packed, uint32_t *table, unsigned *pair_len)
{
    uint8_t lens[512];
    uint16_t sorted[512];
    unsigned count[MAX_LEN + 1] = {0};
    uint32_t lit_space[MAX_LEN + 1] = {0}; /* code space (of 2^15) of the literals of each length */
    unsigned start[MAX_LEN + 1];
    uint32_t kraft = 0, pos = 0, next_sub = 1u << PRIMARY_BITS;
    unsigned i, l, n;

    for (i = 0; i < 256; i++) {
        lens[2 * i] = packed[i] & 0x0F;
        lens[2 * i + 1] = packed[i] >> 4;
    }
    for (i = 0; i < 512; i++) {
        count[lens[i]]++;
        if (lens[i])
            kraft += 1u << (MAX_LEN - lens[i]);
        if (lens[i] && i < 256)
            lit_space[lens[i]] += 1u << (MAX_LEN - lens[i]);
    }
    if (kraft != 1u << MAX_LEN)
        return -1;
    *pair_len = 1;
    for (l = 2; l <= PRIMARY_BITS; l++)
        if (lit_space[l] > lit_space[*pair_len])
            *pair_len = l;
    if (lit_space[*pair_len] < PAIR_MIN)
        *pair_len = 0;
    n = 0;
    for (l = 1; l <= MAX_LEN; l++) {
        start[l] = n;
        n += count[l];
    }
    for (i = 0; i < 512; i++)
        if (lens[i])
            sorted[start[lens[i]]++] = (uint16_t)i;

    for (i = 0; i < n; i++) {
        unsigned sym = sorted[i];
        unsigned len = lens[sym];
        uint32_t span = 1u << (MAX_LEN - len); /* entries of the 15-bit code space */
        uint32_t e = make_entry(sym, len);
        if (len <= PRIMARY_BITS) {
            uint32_t j = pos >> SUB_BITS, end = (pos + span) >> SUB_BITS;
            for (; j < end; j++)
                table[j] = e;
        } else {
            uint32_t j, base;
            if ((pos & ((1u << SUB_BITS) - 1)) == 0) { /* first long code with this prefix */
                table[pos >> SUB_BITS] = ENTRY_SUBTABLE | next_sub;
                next_sub += 1u << SUB_BITS;
            }
            base = (table[pos >> SUB_BITS] & ~ENTRY_SUBTABLE) + (pos & ((1u << SUB_BITS) - 1));
            for (j = 0; j < span; j++)
                table[base + j] = e;
        }
        pos += span;
    }
    return 0;
}

/* Swap the 16-bit words of a little-endian u64 so that the first word of the stream is on top. */
XP_INLINE uint64_t words_msb_first(uint64_t v)
{
    v = ((v & 0xFFFF0000FFFF0000ull) >> 16) | ((v & 0x0000FFFF0000FFFFull) << 16);
    return (v >> 32) | (v << 32);
}

/* Load one u16 word at br->ip, reading zero for bytes past the end (docs/formats/xpress.md §3.3 step 5). */
XP_INLINE void load_word(bitreader *br, const uint8_t *in, size_t in_len)
{
    uint32_t w = 0;
    if (br->ip < in_len) {
        w = in[br->ip];
        if (br->ip + 1 < in_len)
            w |= (uint32_t)in[br->ip + 1] << 8;
    }
    br->buf |= (uint64_t)w << (48 - br->bits);
    br->bits += 16;
    br->ip += 2;
}

/* Make at least 32 bits valid (enough for a code and its distance bits). */
XP_INLINE void refill(bitreader *br, const uint8_t *in, size_t in_len)
{
    if (br->bits >= 32)
        return;
    if (XP_LIKELY(br->ip + 8 <= in_len)) {
        unsigned nwords = (64 - br->bits) >> 4;
        br->buf |= words_msb_first(xp_load64(in + br->ip)) >> br->bits;
        br->bits += 16 * nwords;
        br->ip += 2 * nwords;
    } else {
        while (br->bits <= 48)
            load_word(br, in, in_len);
    }
}

/*
 * Re-synchronise with the format's 32-bit window (see the file comment) and return the format's byte
 * position: where extra length bytes are read and where the next block's table starts.
 */
static size_t sync_position(bitreader *br, const uint8_t *in, size_t in_len)
{
    unsigned extra;
    if (br->bits < 16) /* the format has already pulled the word we have not loaded yet */
        load_word(br, in, in_len);
    extra = br->bits / 16 - 1;
    br->ip -= 2 * extra;
    br->bits -= 16 * extra;
    br->buf &= ~(~0ull >> br->bits);
    return br->ip;
}

/* Nonzero if the bits consumed so far include bits of a word lying (partly) past the input end. */
XP_INLINE int consumed_past_end(const bitreader *br, size_t in_len)
{
    size_t over = br->ip > in_len ? br->ip - in_len : 0;
    over = (over + 1) & ~(size_t)1;
    return over * 8 > br->bits;
}

/* Report an invalid match; if it was decoded from zero fill past the input end, the input is short. */
static xp_status bad_match(bitreader *br, const uint8_t *in, size_t in_len, xp_status st, size_t out_off,
                           xp_error *err)
{
    size_t p;
    if (consumed_past_end(br, in_len))
        return fail(err, XP_E_TRUNCATED, in_len, out_off);
    p = sync_position(br, in, in_len);
    return fail(err, st, p < in_len ? p : in_len, out_off);
}

/*
 * Symbol loop of one block (§3.4 step 3): decode until the output reaches `limit` (the block's 65536
 * bytes, §3.4 step 4, or the end of the output); *opp is the output position in and out.
 *
 * Literal pairs: the loop's critical path is bit buffer -> table index -> entry load -> shift, one
 * symbol per load.  In a block whose literals mostly share one code length g (pair_len, see
 * build_table: random-like data, where nearly every symbol is a literal of 8 bits), the entry of the
 * symbol after a literal of length g is loaded at the same time from the buffer shifted by g, and both
 * literals are emitted with one shift.  The pair is taken only when that guess was right, the second
 * symbol is a literal resolved by the primary table (<= 11 bits; refill() left >= 32 bits) and both bytes
 * fit before `limit` (a block ends after exactly its 65536th byte unless a match runs past it).  In other
 * blocks the guess fails too often to pay for its branch, so the loop is instantiated a second time
 * without it (pairs = 0).
 */
XP_INLINE xp_status decode_symbols(bitreader *br, const uint32_t *table, const uint8_t *in, size_t in_len,
                                   uint8_t *out, uint8_t **opp, uint8_t *limit, uint8_t *oend, xp_error *err,
                                   const int pairs, unsigned g)
{
    uint8_t *op = *opp;

    while (op < limit) {
        uint32_t e;
        uint64_t old;
        size_t len, dist, room;
        unsigned dbits;

        refill(br, in, in_len);
        e = table[br->buf >> (64 - PRIMARY_BITS)];
        if (XP_UNLIKELY(e & ENTRY_SUBTABLE))
            e = table[(e & ~ENTRY_SUBTABLE) + ((br->buf >> (64 - MAX_LEN)) & ((1u << SUB_BITS) - 1))];
        old = br->buf;
        br->buf <<= e & 63;
        br->bits -= e & 63;
        if (e < ENTRY_MATCH) {
            if (pairs && (e & 63) == g) { /* e2: the symbol after e; no refill needed, 22 <= 32 bits */
                uint32_t e2 = table[(old << g) >> (64 - PRIMARY_BITS)];
                if (XP_LIKELY(e2 < ENTRY_MATCH && op + 1 < limit)) {
                    op[0] = (uint8_t)(e >> 8);
                    op[1] = (uint8_t)(e2 >> 8);
                    op += 2;
                    br->buf <<= e2 & 63;
                    br->bits -= e2 & 63;
                    continue;
                }
            }
            *op++ = (uint8_t)(e >> 8);
            continue;
        }

        /* Match (§3.1).  Symbol 256 is also the EOF marker, but only the output size ends decoding:
         * the marker cannot be told from a real (length 3, distance 1) match (docs/formats/xpress.md §4 row 3). */
        dbits = (e >> 8) & 15;
        len = (e >> 12) & 15;
        if (XP_LIKELY(len < 15)) {
            /* The code and the distance bits were consumed together: the distance bits are the
             * low dbits of the top `shift` bits of the buffer before the shift. */
            dist = ((size_t)1 << dbits) | (size_t)((old >> (64 - (e & 63))) & ((1u << dbits) - 1));
        } else {
            /* Extra length bytes at the format's byte position (§3.1, §3.3 step 4), then the
             * distance bits. */
            size_t p = sync_position(br, in, in_len);
            if (p >= in_len)
                return fail(err, XP_E_TRUNCATED, in_len, (size_t)(op - out));
            len = in[p++];
            if (len == 255) {
                if (in_len - p < 2)
                    return fail(err, XP_E_TRUNCATED, p, (size_t)(op - out));
                len = xp_load16(in + p);
                p += 2;
                if (len == 0) {
                    if (in_len - p < 4)
                        return fail(err, XP_E_TRUNCATED, p, (size_t)(op - out));
                    len = xp_load32(in + p);
                    p += 4;
                }
                if (len < 15)
                    return fail(err, XP_E_BAD_LENGTH, p, (size_t)(op - out));
                len -= 15;
            }
            len += 15;
            br->ip = p; /* the bit stream continues after the extra bytes (§3.3 step 4) */
            dist = ((size_t)1 << dbits) | (size_t)((br->buf >> 1) >> (63 - dbits));
            br->buf <<= dbits;
            br->bits -= dbits;
        }
        len += 3;

        room = (size_t)(oend - op);
        if (XP_UNLIKELY(dist > (size_t)(op - out) || len > room))
            return bad_match(br, in, in_len, dist > (size_t)(op - out) ? XP_E_DISTANCE : XP_E_OVERRUN,
                             (size_t)(op - out), err);
        xp_copy_match(op, dist, len, room);
        op += len;
    }

    *opp = op;
    return XP_OK;
}

xp_status xp_huffman_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                            xp_error *err)
{
    size_t produced;
    return xp_huffman_decode_prefix(in, in_len, out, out_len, out_len, &produced, err);
}

/*
 * The decoder proper.  Decoding is sequential (every match copies from output already produced), so
 * the first `need` bytes do not depend on anything after them: the loop simply ends early.  A match
 * that crosses `need` is copied whole (it may run up to out_len), so *produced can exceed `need`.
 */
xp_status xp_huffman_decode_prefix(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                                   size_t need, size_t *produced, xp_error *err)
{
    uint32_t table[TABLE_SIZE];
    uint8_t *op = out;
    uint8_t *const oend = out + out_len;
    uint8_t *const stop = out + (need < out_len ? need : out_len);
    size_t pos = 0; /* byte position of the current block's table */

    *produced = 0;
    if (op == stop)
        return XP_OK;

    for (;;) {
        bitreader br;
        uint8_t *limit;
        unsigned g;
        xp_status st;

        /* Block start (§3.4 step 2): table, then two words for the initial window (§3.3 step 1). */
        if (pos > in_len || in_len - pos < TABLE_BYTES + 4)
            return fail(err, XP_E_TRUNCATED, pos < in_len ? pos : in_len, (size_t)(op - out));
        if (build_table(in + pos, table, &g) != 0)
            return fail(err, XP_E_BAD_CODE, pos, (size_t)(op - out));
        br.ip = pos + TABLE_BYTES;
        br.buf = 0;
        br.bits = 0;
        load_word(&br, in, in_len);
        load_word(&br, in, in_len);
        limit = (size_t)(oend - op) > BLOCK_OUT ? op + BLOCK_OUT : oend;
        if (limit > stop) /* a prefix ends inside this block: decode no further than it */
            limit = stop;

        /* Symbol loop (§3.4 step 3), with or without literal pairs. */
        st = g ? decode_symbols(&br, table, in, in_len, out, &op, limit, oend, err, 1, g)
               : decode_symbols(&br, table, in, in_len, out, &op, limit, oend, err, 0, 0);
        if (st != XP_OK)
            return st;

        /* Block end (§3.4 steps 4-6). */
        if (consumed_past_end(&br, in_len))
            return fail(err, XP_E_TRUNCATED, in_len, (size_t)(op - out));
        if (op >= stop) {
            *produced = (size_t)(op - out);
            return XP_OK;
        }
        pos = sync_position(&br, in, in_len);
    }
}
