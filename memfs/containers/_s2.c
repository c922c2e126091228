/*
 * _s2.c - S2 block decoder (memfs.containers._s2), the one codec of the containers with no PyPI decoder.
 *
 * The S2 block format (docs/formats/snappy-s2.md §2) is the Snappy block format plus one extension: a
 * copy with a 1-byte offset whose offset is 0 repeats the previous copy's offset, with a longer length
 * escape.  Every valid Snappy block is therefore a valid S2 block that decodes to the same bytes.  No
 * Python package decodes S2 (cramjam and python-snappy decode Snappy only; measured in docs/formats/snappy-s2.md §5),
 * so this small decoder exists; Snappy chunks are decoded by cramjam.
 *
 * decompress_into(block, out) decodes one block (its uvarint length prefix included) into the writable
 * buffer `out`, which must be exactly the length the prefix states.  The GIL is released while decoding.
 * Failures raise memfs.exceptions.DecompressionError whose `offset` is the offset inside `block`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

static PyObject *DecompressionError; /* memfs.exceptions.DecompressionError */

typedef struct {
    const char *what; /* NULL on success */
    size_t at;        /* offset in the input where the problem was found */
} s2_error;

/* Reads a uvarint of at most 5 bytes (a block length fits in 32 bits); returns bytes used or 0. */
static size_t read_uvarint32(const uint8_t *in, size_t len, uint64_t *value)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 5; i++) {
        v |= (uint64_t)(in[i] & 0x7f) << (7 * i);
        if (!(in[i] & 0x80)) {
            *value = v;
            return i + 1;
        }
    }
    return 0;
}

static inline uint32_t load_le(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

/* Copies `length` bytes from `offset` back.  When source and destination overlap (offset < length) the
 * bytes repeat with period `offset`: after the first `offset` bytes the written run is itself a longer
 * copy of that period, so each memcpy can take twice as much as the one before (a run of zeros, offset 1,
 * is 12 memcpys per 4 KiB instead of 4096 byte moves). */
static inline void copy_back(uint8_t *out, size_t d, size_t offset, size_t length)
{
    uint8_t *dst = out + d;
    const uint8_t *pattern = dst - offset;
    size_t avail = offset; /* bytes of whole periods between pattern and dst */
    if (offset >= length) {
        memcpy(dst, pattern, length);
        return;
    }
    while (length > 0) {
        size_t n = avail < length ? avail : length;
        memcpy(dst, pattern, n); /* never overlaps: dst - pattern == avail >= n */
        dst += n;
        length -= n;
        avail += n;
    }
}

/* Decodes the element stream after the length prefix.  Returns the output bytes produced. */
static size_t decode_elements(const uint8_t *in, size_t in_len, size_t s, uint8_t *out, size_t out_len,
                              s2_error *err)
{
    size_t d = 0;
    size_t offset = 0; /* the last copy offset: what a repeat copies from */
    int seen_copy = 0;

    while (s < in_len) {
        size_t at = s;
        uint8_t tag = in[s];
        size_t length;

        if ((tag & 3) == 0) { /* literal: length-1 in the tag's upper 6 bits, or in 1-4 bytes after it */
            size_t code = tag >> 2;
            s++;
            if (code >= 60) {
                int extra = (int)code - 59;
                if (in_len - s < (size_t)extra) {
                    err->what = "literal length runs past the end of the block";
                    err->at = at;
                    return d;
                }
                code = load_le(in + s, extra);
                s += extra;
            }
            length = code + 1;
            if (length > in_len - s) {
                err->what = "literal runs past the end of the block";
                err->at = at;
                return d;
            }
            if (length > out_len - d) {
                err->what = "literal runs past the stated decoded length";
                err->at = at;
                return d;
            }
            memcpy(out + d, in + s, length);
            s += length;
            d += length;
            continue;
        }

        switch (tag & 3) {
        case 1: /* copy, 1-byte offset: 3 offset bits in the tag; offset 0 = repeat (S2 extension) */
            if (in_len - s < 2)
                goto truncated;
            length = (tag >> 2) & 7;
            {
                size_t off = ((size_t)(tag & 0xe0) << 3) | in[s + 1];
                s += 2;
                if (off == 0) {
                    if (!seen_copy) {
                        err->what = "repeat copy before any copy";
                        err->at = at;
                        return d;
                    }
                    if (length == 5) {
                        if (in_len - s < 1)
                            goto truncated;
                        length = 8 + (size_t)in[s];
                        s += 1;
                    } else if (length == 6) {
                        if (in_len - s < 2)
                            goto truncated;
                        length = 260 + (size_t)load_le(in + s, 2);
                        s += 2;
                    } else if (length == 7) {
                        if (in_len - s < 3)
                            goto truncated;
                        length = 65540 + (size_t)load_le(in + s, 3);
                        s += 3;
                    } else {
                        length += 4;
                    }
                } else {
                    offset = off;
                    length += 4;
                }
            }
            break;
        case 2: /* copy, 2-byte offset */
            if (in_len - s < 3)
                goto truncated;
            length = (size_t)(tag >> 2) + 1;
            offset = load_le(in + s + 1, 2);
            s += 3;
            break;
        default: /* copy, 4-byte offset */
            if (in_len - s < 5)
                goto truncated;
            length = (size_t)(tag >> 2) + 1;
            offset = load_le(in + s + 1, 4);
            s += 5;
            break;
        }
        seen_copy = 1;
        if (offset == 0 || offset > d) {
            err->what = "copy reaches before the start of the block";
            err->at = at;
            return d;
        }
        if (length > out_len - d) {
            err->what = "copy runs past the stated decoded length";
            err->at = at;
            return d;
        }
        copy_back(out, d, offset, length);
        d += length;
        continue;
    truncated:
        err->what = "copy element cut by the end of the block";
        err->at = at;
        return d;
    }
    return d;
}

/* Decodes one block into out[0..out_len); sets err->what on failure. */
static void s2_decode_block(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, s2_error *err)
{
    uint64_t stated;
    size_t s = read_uvarint32(in, in_len, &stated);
    size_t produced;

    if (s == 0) {
        err->what = "block length prefix is not a valid uvarint";
        err->at = 0;
        return;
    }
    if (stated != (uint64_t)out_len) {
        err->what = "block states a decoded length other than the chunk's";
        err->at = 0;
        return;
    }
    produced = decode_elements(in, in_len, s, out, out_len, err);
    if (!err->what && produced != out_len) {
        err->what = "block ends before its stated decoded length";
        err->at = in_len;
    }
}

static PyObject *decompress_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer in, out;
    s2_error err = {NULL, 0};
    (void)self;

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "decompress_into() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &in, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &out, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    s2_decode_block((const uint8_t *)in.buf, (size_t)in.len, (uint8_t *)out.buf, (size_t)out.len, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (err.what) {
        char text[160];
        PyObject *exc;
        snprintf(text, sizeof text, "S2 block: %s at block offset 0x%zx", err.what, err.at);
        exc = PyObject_CallFunction(DecompressionError, "(sn)", text, (Py_ssize_t)err.at);
        if (exc) {
            PyErr_SetObject(DecompressionError, exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    return PyLong_FromSsize_t(out.len);
}

static PyMethodDef methods[] = {
    {"decompress_into", (PyCFunction)(void (*)(void))decompress_into, METH_FASTCALL,
     "decompress_into(block, out) -> int: decode one S2/Snappy block into exactly len(out) bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_s2", "S2 block decoder.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__s2(void)
{
    PyObject *exceptions = PyImport_ImportModule("memfs.exceptions");
    if (!exceptions)
        return NULL;
    DecompressionError = PyObject_GetAttrString(exceptions, "DecompressionError");
    Py_DECREF(exceptions);
    if (!DecompressionError)
        return NULL;
    return PyModule_Create(&module);
}
