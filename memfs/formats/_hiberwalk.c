/*
 * _hiberwalk.c - the hot loop of the modern hibernation walk (memfs.formats.hiberfil_modern.walk_phase).
 *
 * Opening a hibernation file reads one compression-set header per 16 pages (docs/formats/hibernation.md
 * §3.6, §3.7): a million for 64 GiB of memory.  In Python each costs about 2 us (a pread, parsing, nine
 * array appends), so 64 GiB took more than 2 s to open; here a set costs the pread alone.  No PyPI
 * package walks these sets, hence C.
 *
 * scan_sets takes only "plain" sets -- 1 to 16 descriptors, every page below the limit, a 22-bit size
 * that fits the pages (§3.6 rule 2, first reading), data inside the file -- and stops before the first
 * other one, which the Python walk then handles with its full rule (20-bit sizes, big sets, the errors
 * and stops with their messages) before calling scan_sets again.  tests/formats/test_hiberfil_walk.py
 * checks that both paths build the same index.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define MAX_DESCRIPTORS 16 /* larger headers are left to Python */
#define KIND_RAW 0         /* memfs.formats.hiberfil_index KIND_* */
#define KIND_PLAIN 1
#define KIND_HUFFMAN 2

/* A growable byte buffer that becomes a bytes object (the packed contents of one index array). */
typedef struct {
    char *data;
    size_t len, cap;
} packed;

static int put(packed *p, const void *item, size_t size)
{
    if (p->len + size > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        char *grown;
        while (cap < p->len + size)
            cap *= 2;
        grown = PyMem_RawRealloc(p->data, cap); /* no GIL here */
        if (!grown)
            return -1;
        p->data = grown;
        p->cap = cap;
    }
    memcpy(p->data + p->len, item, size);
    p->len += size;
    return 0;
}

static uint64_t load_le(const unsigned char *b, unsigned size)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < size; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

enum { U_OFF, U_CSIZE, U_PAGES, U_KIND, U_HEAD, R_PFN, R_COUNT, R_UNIT, R_SLOT, NARRAYS };

/*
 * scan_sets(fd, off, file_size, dsz, pfn_limit, pages_wanted, first_unit, until)
 *   -> (off, sets, pages, big_sets, (raw, plain, huffman), (unit_off, unit_csize, unit_pages, unit_kind,
 *       unit_head, run_pfn, run_count, run_unit, run_slot))
 * Walks plain sets from `off` until `pages_wanted` pages are seen, the offset reaches `until`, or a set is
 * not plain (then `off` is that set's header).  The nine bytes objects hold what to append to the index
 * arrays of the same names (native byte order: Q, I, H, B, Q, Q, I, I, H).
 */
static PyObject *scan_sets(PyObject *self, PyObject *args)
{
    int fd;
    unsigned dsz;
    unsigned long long off, file_size, pfn_limit, pages_wanted, until;
    unsigned int unit;
    unsigned long long sets = 0, pages_seen = 0, big = 0, kinds[3] = {0, 0, 0};
    packed out[NARRAYS];
    PyObject *arrays = NULL, *result = NULL;
    int failed = 0, i;

    (void)self;
    if (!PyArg_ParseTuple(args, "iKKIKKIK", &fd, &off, &file_size, &dsz, &pfn_limit, &pages_wanted, &unit,
                          &until))
        return NULL;
    if (dsz != 4 && dsz != 8) {
        PyErr_SetString(PyExc_ValueError, "dsz must be 4 or 8");
        return NULL;
    }
    memset(out, 0, sizeof out);

    Py_BEGIN_ALLOW_THREADS
    while (pages_seen < pages_wanted && off < until) {
        unsigned char head[4 + 8 * MAX_DESCRIPTORS];
        unsigned d, j;
        uint64_t h, c, full, data_off, pfns[MAX_DESCRIPTORS], counts[MAX_DESCRIPTORS];
        uint32_t pages = 0;
        uint64_t last_end = UINT64_MAX;
        ssize_t got;
        uint8_t kind;

        if (off + 4 > file_size)
            break;
        got = pread(fd, head, 4 + (size_t)dsz * MAX_DESCRIPTORS, (off_t)off);
        if (got < 4)
            break;
        d = head[0];
        if (d == 0 || d > MAX_DESCRIPTORS || (size_t)got < 4 + (size_t)dsz * d)
            break;
        for (j = 0; j < d; j++) {
            uint64_t desc = load_le(head + 4 + dsz * j, dsz);
            pfns[j] = desc >> 4;
            counts[j] = (desc & 0xF) + 1;
            if (pfns[j] + counts[j] > pfn_limit)
                break;
            pages += (uint32_t)counts[j];
        }
        if (j < d)
            break;
        h = load_le(head, 4);
        full = (uint64_t)pages * 4096;
        c = (h >> 8) & 0x3FFFFF;
        if (c == 0 || c > full)
            break; /* the 20-bit reading, or an invalid set: Python's rule */
        data_off = off + 4 + (uint64_t)dsz * d;
        if (data_off + c > file_size)
            break;
        kind = c == full ? KIND_RAW : (h >> 30) ? KIND_HUFFMAN : KIND_PLAIN;
        {
            uint32_t c32 = (uint32_t)c;
            uint16_t pages16 = (uint16_t)pages;
            failed |= put(&out[U_OFF], &data_off, 8) | put(&out[U_CSIZE], &c32, 4) |
                      put(&out[U_PAGES], &pages16, 2) | put(&out[U_KIND], &kind, 1) | put(&out[U_HEAD], &off, 8);
        }
        /* Map runs: contiguous descriptors of one set share a run (as the Python walk merges them). */
        for (j = 0, pages = 0; j < d; j++) {
            if (pages && pfns[j] == last_end) {
                uint32_t *count = (uint32_t *)(out[R_COUNT].data + out[R_COUNT].len) - 1;
                *count += (uint32_t)counts[j];
            } else {
                uint32_t count32 = (uint32_t)counts[j];
                uint16_t slot = (uint16_t)pages;
                failed |= put(&out[R_PFN], &pfns[j], 8) | put(&out[R_COUNT], &count32, 4) |
                          put(&out[R_UNIT], &unit, 4) | put(&out[R_SLOT], &slot, 2);
            }
            last_end = pfns[j] + counts[j];
            pages += (uint32_t)counts[j];
        }
        if (failed)
            break;
        kinds[kind]++;
        if (pages > 16)
            big++;
        sets++;
        unit++;
        pages_seen += pages;
        off = data_off + c;
    }
    Py_END_ALLOW_THREADS

    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    arrays = PyTuple_New(NARRAYS);
    if (!arrays)
        goto done;
    for (i = 0; i < NARRAYS; i++) {
        PyObject *b = PyBytes_FromStringAndSize(out[i].data ? out[i].data : "", (Py_ssize_t)out[i].len);
        if (!b)
            goto done;
        PyTuple_SET_ITEM(arrays, i, b);
    }
    result = Py_BuildValue("KKKK(KKK)O", off, sets, pages_seen, big, kinds[KIND_RAW], kinds[KIND_PLAIN],
                           kinds[KIND_HUFFMAN], arrays);
done:
    Py_XDECREF(arrays);
    for (i = 0; i < NARRAYS; i++)
        PyMem_RawFree(out[i].data);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_sets", scan_sets, METH_VARARGS,
     "scan_sets(fd, off, file_size, dsz, pfn_limit, pages_wanted, first_unit, until) -> tuple"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "memfs.formats._hiberwalk",
    "The hot loop of the modern hibernation walk (see memfs.formats.hiberfil_modern).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hiberwalk(void)
{
    return PyModule_Create(&moduledef);
}
