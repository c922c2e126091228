/*
 * module.c - CPython binding of the Xpress codecs (memfs.xpress._xpress).
 *
 * Inputs are taken through the buffer protocol without copying; the GIL is released around every call
 * into the pure-C core (xpress.h).  Decoding failures raise memfs.exceptions.DecompressionError with the
 * input offset of the failure as its `offset` attribute.
 */
#include "codec_binding.h"
#include "xpress.h"

typedef xp_status (*decode_fn)(const uint8_t *, size_t, uint8_t *, size_t, xp_error *);
typedef xp_status (*encode_fn)(const uint8_t *, size_t, uint8_t *, size_t, size_t *);
typedef size_t (*bound_fn)(size_t);

/* Raises DecompressionError naming the algorithm, the problem and both offsets. */
static void set_decode_error(const char *algorithm, xp_status st, const xp_error *err)
{
    char text[256];
    snprintf(text, sizeof text, "%s: %s at input offset 0x%zx (output offset 0x%zx)", algorithm,
             xp_strerror(st), err->in_offset, err->out_offset);
    codec_raise(text, err->in_offset);
}

static int get_input(PyObject *obj, Py_buffer *view)
{
    return PyObject_GetBuffer(obj, view, PyBUF_SIMPLE);
}

static PyObject *decompress_common(PyObject *const *args, Py_ssize_t nargs, const char *name,
                                   const char *algorithm, decode_fn fn)
{
    Py_buffer in;
    PyObject *result;
    xp_status st;
    xp_error err = {0, 0};

    result = codec_decompress_args(args, nargs, name, &in);
    if (!result)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = fn((const uint8_t *)in.buf, (size_t)in.len, (uint8_t *)PyBytes_AS_STRING(result),
            (size_t)PyBytes_GET_SIZE(result), &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    if (st != XP_OK) {
        Py_DECREF(result);
        set_decode_error(algorithm, st, &err);
        return NULL;
    }
    return result;
}

static PyObject *decompress_into_common(PyObject *const *args, Py_ssize_t nargs, const char *name,
                                        const char *algorithm, decode_fn fn)
{
    Py_buffer in, out;
    Py_ssize_t written;
    xp_status st;
    xp_error err = {0, 0};

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly 2 arguments (%zd given)", name, nargs);
        return NULL;
    }
    if (codec_in_out(args[0], args[1], &in, &out) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = fn((const uint8_t *)in.buf, (size_t)in.len, (uint8_t *)out.buf, (size_t)out.len, &err);
    Py_END_ALLOW_THREADS
    written = out.len;
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (st != XP_OK) {
        set_decode_error(algorithm, st, &err);
        return NULL;
    }
    return PyLong_FromSsize_t(written);
}

/* decompress_huffman_prefix(data, out_size, need): the first >= need bytes of the out_size-byte output. */
static PyObject *py_decompress_huffman_prefix(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer in;
    PyObject *result;
    Py_ssize_t need;
    size_t produced = 0;
    xp_status st;
    xp_error err = {0, 0};

    (void)self;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "decompress_huffman_prefix() takes exactly 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    need = PyNumber_AsSsize_t(args[2], PyExc_OverflowError);
    if (need == -1 && PyErr_Occurred())
        return NULL;
    result = codec_decompress_args(args, 2, "decompress_huffman_prefix", &in);
    if (!result)
        return NULL;
    if (need < 0 || need > PyBytes_GET_SIZE(result)) {
        PyBuffer_Release(&in);
        Py_DECREF(result);
        PyErr_SetString(PyExc_ValueError, "need must be between 0 and out_size");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = xp_huffman_decode_prefix((const uint8_t *)in.buf, (size_t)in.len, (uint8_t *)PyBytes_AS_STRING(result),
                                  (size_t)PyBytes_GET_SIZE(result), (size_t)need, &produced, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    if (st != XP_OK) {
        Py_DECREF(result);
        set_decode_error("LZ77+Huffman", st, &err);
        return NULL;
    }
    /* Shrinking gives the unused tail back to the allocator (glibc splits the block in place). */
    if ((Py_ssize_t)produced != PyBytes_GET_SIZE(result) && _PyBytes_Resize(&result, (Py_ssize_t)produced) < 0)
        return NULL;
    return result;
}

static PyObject *compress_common(PyObject *const *args, Py_ssize_t nargs, const char *name, encode_fn fn,
                                 bound_fn bound)
{
    Py_buffer in;
    PyObject *result;
    size_t cap, out_len = 0;
    xp_status st;

    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly 1 argument (%zd given)", name, nargs);
        return NULL;
    }
    if (get_input(args[0], &in) < 0)
        return NULL;
    cap = bound((size_t)in.len);
    result = codec_output(cap);
    if (!result) {
        PyBuffer_Release(&in);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = fn((const uint8_t *)in.buf, (size_t)in.len, (uint8_t *)PyBytes_AS_STRING(result), cap, &out_len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    return codec_finish_output(result, st == XP_OK, out_len, st == XP_E_NOMEM, name, xp_strerror(st));
}

static PyObject *py_decompress_plain(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return decompress_common(args, nargs, "decompress_plain", "plain LZ77", xp_plain_decode);
}

static PyObject *py_decompress_huffman(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return decompress_common(args, nargs, "decompress_huffman", "LZ77+Huffman", xp_huffman_decode);
}

static PyObject *py_decompress_plain_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return decompress_into_common(args, nargs, "decompress_plain_into", "plain LZ77", xp_plain_decode);
}

static PyObject *py_decompress_huffman_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return decompress_into_common(args, nargs, "decompress_huffman_into", "LZ77+Huffman",
                                  xp_huffman_decode);
}

static PyObject *py_compress_plain(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return compress_common(args, nargs, "compress_plain", xp_plain_encode, xp_plain_bound);
}

static PyObject *py_compress_huffman(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return compress_common(args, nargs, "compress_huffman", xp_huffman_encode, xp_huffman_bound);
}

static PyMethodDef methods[] = {
    {"decompress_plain", (PyCFunction)(void (*)(void))py_decompress_plain, METH_FASTCALL,
     "decompress_plain(data, out_size, /) -> bytes"},
    {"decompress_huffman", (PyCFunction)(void (*)(void))py_decompress_huffman, METH_FASTCALL,
     "decompress_huffman(data, out_size, /) -> bytes"},
    {"decompress_plain_into", (PyCFunction)(void (*)(void))py_decompress_plain_into, METH_FASTCALL,
     "decompress_plain_into(data, out, /) -> int"},
    {"decompress_huffman_into", (PyCFunction)(void (*)(void))py_decompress_huffman_into, METH_FASTCALL,
     "decompress_huffman_into(data, out, /) -> int"},
    {"decompress_huffman_prefix", (PyCFunction)(void (*)(void))py_decompress_huffman_prefix, METH_FASTCALL,
     "decompress_huffman_prefix(data, out_size, need, /) -> bytes"},
    {"compress_plain", (PyCFunction)(void (*)(void))py_compress_plain, METH_FASTCALL,
     "compress_plain(data, /) -> bytes"},
    {"compress_huffman", (PyCFunction)(void (*)(void))py_compress_huffman, METH_FASTCALL,
     "compress_huffman(data, /) -> bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "memfs.xpress._xpress",
    "C core of the [MS-XCA] Plain LZ77 and LZ77+Huffman codecs (use memfs.xpress).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__xpress(void)
{
    return codec_module_create(&moduledef);
}
