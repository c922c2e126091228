/*
 * codec_binding.h - CPython glue shared by the codec bindings (memfs/xpress/module.c and
 * memfs/lznt1/module.c): the DecompressionError type, raising it with the input offset of a failure,
 * parsing decompress(data, out_size), taking an input and a writable output that must not overlap, and
 * turning an encoder's buffer into a bytes object.  Each binding is one extension module, so the static state below is per module.
 */
#ifndef MEMFS_CODEC_BINDING_H
#define MEMFS_CODEC_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *DecompressionError; /* memfs.exceptions.DecompressionError */

/* Module init: look up memfs.exceptions.DecompressionError, then create the module from `def`. */
static PyObject *codec_module_create(struct PyModuleDef *def)
{
    PyObject *exceptions = PyImport_ImportModule("memfs.exceptions"), *m;
    if (!exceptions)
        return NULL;
    DecompressionError = PyObject_GetAttrString(exceptions, "DecompressionError");
    Py_DECREF(exceptions);
    if (!DecompressionError)
        return NULL;
    m = PyModule_Create(def);
    if (!m)
        Py_CLEAR(DecompressionError);
    return m;
}

/* Raise DecompressionError(text, offset=in_offset). */
static void codec_raise(const char *text, size_t in_offset)
{
    PyObject *exc = PyObject_CallFunction(DecompressionError, "(sn)", text, (Py_ssize_t)in_offset);
    if (!exc)
        return;
    PyErr_SetObject(DecompressionError, exc);
    Py_DECREF(exc);
}

/* The arguments of name(data, out_size): `data` as a read-only buffer in `in`, and a new bytes object of
 * out_size bytes, returned.  NULL with an exception set and `in` not held on failure. */
static PyObject *codec_decompress_args(PyObject *const *args, Py_ssize_t nargs, const char *name, Py_buffer *in)
{
    Py_ssize_t out_size;
    PyObject *result;

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly 2 arguments (%zd given)", name, nargs);
        return NULL;
    }
    out_size = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (out_size == -1 && PyErr_Occurred())
        return NULL;
    if (out_size < 0) {
        PyErr_SetString(PyExc_ValueError, "out_size must be >= 0");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], in, PyBUF_SIMPLE) < 0)
        return NULL;
    result = PyBytes_FromStringAndSize(NULL, out_size);
    if (!result)
        PyBuffer_Release(in);
    return result;
}

/* Take `in_obj` as a read-only buffer and `out_obj` as a writable one that does not overlap it.
 * Returns 0, or -1 with an exception set and neither buffer held. */
static int codec_in_out(PyObject *in_obj, PyObject *out_obj, Py_buffer *in, Py_buffer *out)
{
    if (PyObject_GetBuffer(in_obj, in, PyBUF_SIMPLE) < 0)
        return -1;
    if (PyObject_GetBuffer(out_obj, out, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(in);
        return -1;
    }
    if ((const char *)out->buf < (const char *)in->buf + in->len &&
        (const char *)in->buf < (const char *)out->buf + out->len) {
        PyBuffer_Release(in);
        PyBuffer_Release(out);
        PyErr_SetString(PyExc_ValueError, "output buffer overlaps the input");
        return -1;
    }
    return 0;
}

/* A bytes object of `cap` bytes for an encoder to fill (NULL with MemoryError if cap is 0 or too large:
 * the encoders' bound functions return 0 on overflow). */
static PyObject *codec_output(size_t cap)
{
    if (cap == 0 || cap > PY_SSIZE_T_MAX)
        return PyErr_NoMemory();
    return PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
}

/* Finish an encoder's output: shrink it to `len` bytes on success (`ok`), else drop it and raise
 * MemoryError (`nomem`) or SystemError naming `name` and `why`. */
static PyObject *codec_finish_output(PyObject *result, int ok, size_t len, int nomem, const char *name,
                                     const char *why)
{
    if (!ok) {
        Py_DECREF(result);
        if (nomem)
            return PyErr_NoMemory();
        PyErr_Format(PyExc_SystemError, "%s: %s", name, why);
        return NULL;
    }
    if (_PyBytes_Resize(&result, (Py_ssize_t)len) < 0)
        return NULL;
    return result;
}

#endif /* MEMFS_CODEC_BINDING_H */
