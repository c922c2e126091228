/*
 * module.c - CPython binding of the LZNT1 codec (memfs.lznt1._lznt1).
 *
 * Inputs are taken through the buffer protocol without copying; the GIL is released around every call
 * into the pure-C core (lznt1.h).  Decoding failures raise memfs.exceptions.DecompressionError with the
 * input offset of the failure as its `offset` attribute.
 */
#include "codec_binding.h"
#include "lznt1.h"

/* Raises DecompressionError naming the problem and both offsets. */
static void set_decode_error(lz_status st, const lz_error *err)
{
    char text[256];
    snprintf(text, sizeof text, "LZNT1: %s at input offset 0x%zx (output offset 0x%zx)", lz_strerror(st),
             err->in_offset, err->out_offset);
    codec_raise(text, err->in_offset);
}

/* `result` on success; else drops it, raises DecompressionError and returns NULL. */
static PyObject *result_or_raise(PyObject *result, lz_status st, const lz_error *err)
{
    if (st == LZ_OK)
        return result;
    Py_DECREF(result);
    set_decode_error(st, err);
    return NULL;
}

static PyObject *py_decompress(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer in;
    PyObject *result;
    lz_status st;
    lz_error err = {0, 0};
    size_t produced = 0;
    int allow_short = 0;

    (void)self;
    if (nargs == 3) { /* decompress(data, out_size, allow_short) */
        if ((allow_short = PyObject_IsTrue(args[2])) < 0)
            return NULL;
        nargs = 2;
    }
    result = codec_decompress_args(args, nargs, "decompress", &in);
    if (!result)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = lznt1_decode((const uint8_t *)in.buf, (size_t)in.len, (uint8_t *)PyBytes_AS_STRING(result),
                      (size_t)PyBytes_GET_SIZE(result), !allow_short, &produced, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    if (!result_or_raise(result, st, &err))
        return NULL;
    if ((Py_ssize_t)produced != PyBytes_GET_SIZE(result) &&
        _PyBytes_Resize(&result, (Py_ssize_t)produced) < 0) /* allow_short: what the stream held */
        return NULL;
    return result;
}

static PyObject *py_decompress_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer in, out;
    int allow_short = 0;
    lz_status st;
    lz_error err = {0, 0};
    size_t produced = 0;

    (void)self;
    if (nargs != 2 && nargs != 3) {
        PyErr_Format(PyExc_TypeError, "decompress_into() takes 2 or 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (nargs == 3 && (allow_short = PyObject_IsTrue(args[2])) < 0)
        return NULL;
    if (codec_in_out(args[0], args[1], &in, &out) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = lznt1_decode((const uint8_t *)in.buf, (size_t)in.len, (uint8_t *)out.buf, (size_t)out.len, !allow_short,
                      &produced, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (st != LZ_OK) {
        set_decode_error(st, &err);
        return NULL;
    }
    return PyLong_FromSize_t(produced);
}

static PyObject *py_chunk_offsets(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer in;
    Py_ssize_t max_chunks;
    PyObject *result;
    lz_status st;
    lz_error err = {0, 0};
    size_t count = 0;

    (void)self;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "chunk_offsets() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    max_chunks = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (max_chunks == -1 && PyErr_Occurred())
        return NULL;
    if (max_chunks < 0 || max_chunks > (PY_SSIZE_T_MAX / 4) - 1) {
        PyErr_SetString(PyExc_ValueError, "max_chunks out of range");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &in, PyBUF_SIMPLE) < 0)
        return NULL;
    result = PyBytes_FromStringAndSize(NULL, (max_chunks + 1) * 4);
    if (!result) {
        PyBuffer_Release(&in);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = lznt1_chunk_offsets((const uint8_t *)in.buf, (size_t)in.len, (uint32_t *)PyBytes_AS_STRING(result),
                             (size_t)max_chunks, &count, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    if (!result_or_raise(result, st, &err))
        return NULL;
    if (_PyBytes_Resize(&result, (Py_ssize_t)(count + 1) * 4) < 0)
        return NULL;
    return result;
}

static PyObject *py_compress(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer in;
    PyObject *result;
    size_t cap, out_len = 0;
    lz_status st;

    (void)self;
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "compress() takes exactly 1 argument (%zd given)", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &in, PyBUF_SIMPLE) < 0)
        return NULL;
    cap = lznt1_bound((size_t)in.len);
    result = codec_output(cap);
    if (!result) {
        PyBuffer_Release(&in);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = lznt1_encode((const uint8_t *)in.buf, (size_t)in.len, (uint8_t *)PyBytes_AS_STRING(result), cap,
                      &out_len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    return codec_finish_output(result, st == LZ_OK, out_len, st == LZ_E_NOMEM, "compress", lz_strerror(st));
}

static PyMethodDef methods[] = {
    {"decompress", (PyCFunction)(void (*)(void))py_decompress, METH_FASTCALL,
     "decompress(data, out_size, allow_short=False, /) -> bytes"},
    {"decompress_into", (PyCFunction)(void (*)(void))py_decompress_into, METH_FASTCALL,
     "decompress_into(data, out, allow_short=False, /) -> int"},
    {"chunk_offsets", (PyCFunction)(void (*)(void))py_chunk_offsets, METH_FASTCALL,
     "chunk_offsets(data, max_chunks, /) -> bytes"},
    {"compress", (PyCFunction)(void (*)(void))py_compress, METH_FASTCALL, "compress(data, /) -> bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "memfs.lznt1._lznt1", "C core of the [MS-XCA] LZNT1 codec (use memfs.lznt1).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__lznt1(void)
{
    return codec_module_create(&moduledef);
}
