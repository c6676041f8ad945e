/* Typed fast paths for the Python layer (commy/__init__.py): binding glue,
 * not ABI. Each takes a container handle, its element types and Python
 * objects, converts in C (no struct.pack round trip, no intermediate bytes)
 * and returns Python objects. A Python value that does not fit the declared
 * type raises OverflowError or TypeError before anything is written.
 *
 * Handle parameters are named `live`: a handle the Python side closed (None)
 * raises ClosedError instead of reaching the C library as NULL. */

%typemap(check) SWIGTYPE *live {
    if ($1 == NULL) { cpy_raise_closed(); SWIG_fail; }
}

%{
#include <float.h>
#include <math.h>

/* An encoded value: (p, n) point either into scratch or into the Python
 * object's own storage (bytes, UTF-8 of a str), which outlives the call. */
typedef struct cpy_val {
    const void *p;
    size_t n;
    union { int8_t i8; int16_t i16; int32_t i32; int64_t i64; uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
            float f32; double f64; } s;
} cpy_val;

static char cpy_tname_buf[96];
static const char *cpy_tname(commy_type t) { return commy_type_name(cpy_tname_buf, sizeof cpy_tname_buf, t); }

/* Converts an int to t's range; OverflowError / TypeError otherwise. */
static int cpy_int(cpy_val *v, commy_type t, PyObject *o)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "a %s value must be an int, not %.80s", cpy_tname(t), Py_TYPE(o)->tp_name);
        return -1;
    }
    uint32_t base = COMMY_TYPE_BASE(t);
    if (base == COMMY_T_U64) {
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Format(PyExc_OverflowError, "%R does not fit u64 (0 .. 18446744073709551615)", o);
            return -1;
        }
        v->s.u64 = u; v->p = &v->s; v->n = 8;
        return 0;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (x == -1 && PyErr_Occurred()) return -1;
    long long lo, hi;
    switch (base) {
    case COMMY_T_I8: lo = INT8_MIN; hi = INT8_MAX; break;
    case COMMY_T_I16: lo = INT16_MIN; hi = INT16_MAX; break;
    case COMMY_T_I32: lo = INT32_MIN; hi = INT32_MAX; break;
    case COMMY_T_U8: lo = 0; hi = UINT8_MAX; break;
    case COMMY_T_U16: lo = 0; hi = UINT16_MAX; break;
    case COMMY_T_U32: lo = 0; hi = UINT32_MAX; break;
    default: lo = INT64_MIN; hi = INT64_MAX; break;
    }
    if (overflow != 0 || x < lo || x > hi) {
        PyErr_Format(PyExc_OverflowError, "%R does not fit %s (%lld .. %lld)", o, cpy_tname(t), lo, hi);
        return -1;
    }
    v->p = &v->s;
    switch (base) {
    case COMMY_T_I8: v->s.i8 = (int8_t)x; v->n = 1; break;
    case COMMY_T_I16: v->s.i16 = (int16_t)x; v->n = 2; break;
    case COMMY_T_I32: v->s.i32 = (int32_t)x; v->n = 4; break;
    case COMMY_T_U8: v->s.u8 = (uint8_t)x; v->n = 1; break;
    case COMMY_T_U16: v->s.u16 = (uint16_t)x; v->n = 2; break;
    case COMMY_T_U32: v->s.u32 = (uint32_t)x; v->n = 4; break;
    default: v->s.i64 = (int64_t)x; v->n = 8; break;
    }
    return 0;
}

/* Python object -> bytes of type t. 0, or -1 with a Python exception set. */
static int cpy_encode(cpy_val *v, commy_type t, PyObject *o)
{
    switch (COMMY_TYPE_BASE(t)) {
    case COMMY_T_I8: case COMMY_T_I16: case COMMY_T_I32: case COMMY_T_I64:
    case COMMY_T_U8: case COMMY_T_U16: case COMMY_T_U32: case COMMY_T_U64:
        return cpy_int(v, t, o);
    case COMMY_T_F32: case COMMY_T_F64: {
        if (!PyFloat_Check(o) && !PyLong_Check(o)) {
            PyErr_Format(PyExc_TypeError, "a %s value must be a float or int, not %.80s", cpy_tname(t), Py_TYPE(o)->tp_name);
            return -1;
        }
        double d = PyFloat_AsDouble(o); /* an int too big for a double raises OverflowError */
        if (d == -1.0 && PyErr_Occurred()) return -1;
        if (PyLong_Check(o)) {
            /* An int must convert exactly: 2**53 + 1 silently becoming 2**53 is a truncation. */
            double r = COMMY_TYPE_BASE(t) == COMMY_T_F32 ? (double)(float)d : d;
            PyObject *back = PyLong_FromDouble(r);
            if (back == NULL) return -1;
            int same = PyObject_RichCompareBool(back, o, Py_EQ);
            Py_DECREF(back);
            if (same < 0) return -1;
            if (!same) {
                PyErr_Format(PyExc_OverflowError, "%R cannot be stored exactly in %s; pass a float to accept rounding",
                             o, cpy_tname(t));
                return -1;
            }
        }
        v->p = &v->s;
        if (COMMY_TYPE_BASE(t) == COMMY_T_F32) {
            if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX)) {
                PyErr_Format(PyExc_OverflowError, "%R does not fit f32 (largest %g)", o, (double)FLT_MAX);
                return -1;
            }
            v->s.f32 = (float)d; v->n = 4;
        } else {
            v->s.f64 = d; v->n = 8;
        }
        return 0;
    }
    case COMMY_T_BOOL:
        if (PyBool_Check(o)) { v->s.u8 = (o == Py_True); }
        else if (PyLong_Check(o)) {
            long x = PyLong_AsLong(o);
            if (x == -1 && PyErr_Occurred()) return -1;
            if (x != 0 && x != 1) { PyErr_Format(PyExc_OverflowError, "%R is not a bool (0 or 1)", o); return -1; }
            v->s.u8 = (uint8_t)x;
        } else {
            PyErr_Format(PyExc_TypeError, "a bool value must be a bool, not %.80s", Py_TYPE(o)->tp_name);
            return -1;
        }
        v->p = &v->s; v->n = 1;
        return 0;
    case COMMY_T_STR: {
        if (!PyUnicode_Check(o)) {
            PyErr_Format(PyExc_TypeError, "a str value must be a str, not %.80s", Py_TYPE(o)->tp_name);
            return -1;
        }
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (s == NULL) return -1;
        v->p = s; v->n = (size_t)n;
        return 0;
    }
    case COMMY_T_BYTES: case COMMY_T_BLOB: {
        const char *p; Py_ssize_t n;
        if (PyBytes_Check(o)) { p = PyBytes_AS_STRING(o); n = PyBytes_GET_SIZE(o); }
        else if (PyByteArray_Check(o)) { p = PyByteArray_AS_STRING(o); n = PyByteArray_GET_SIZE(o); }
        else {
            PyErr_Format(PyExc_TypeError, "a %s value must be bytes or bytearray, not %.80s", cpy_tname(t), Py_TYPE(o)->tp_name);
            return -1;
        }
        if (COMMY_TYPE_BASE(t) == COMMY_T_BLOB && (size_t)n != COMMY_TYPE_BLOB_SIZE(t)) {
            PyErr_Format(n > (Py_ssize_t)COMMY_TYPE_BLOB_SIZE(t) ? PyExc_OverflowError : PyExc_TypeError,
                         "a %s value must be exactly %u bytes, not %zd", cpy_tname(t), COMMY_TYPE_BLOB_SIZE(t), n);
            return -1;
        }
        v->p = p; v->n = (size_t)n;
        return 0;
    }
    default:
        PyErr_Format(PyExc_TypeError, "element type %u is not a valid commy type", (unsigned)t);
        return -1;
    }
}

/* bytes of type t -> a new Python object. */
static PyObject *cpy_decode(commy_type t, const void *p, size_t n)
{
    union { int8_t i8; int16_t i16; int32_t i32; int64_t i64; uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
            float f32; double f64; } s;
    uint32_t fixed = commy_type_size(t);
    if (fixed != 0 && fixed <= 8) {
        if (n != fixed) return PyErr_Format(PyExc_RuntimeError, "a %s value came back with %zu bytes", cpy_tname(t), n);
        memcpy(&s, p, n);
    }
    switch (COMMY_TYPE_BASE(t)) {
    case COMMY_T_I8: return PyLong_FromLong(s.i8);
    case COMMY_T_I16: return PyLong_FromLong(s.i16);
    case COMMY_T_I32: return PyLong_FromLong(s.i32);
    case COMMY_T_I64: return PyLong_FromLongLong(s.i64);
    case COMMY_T_U8: return PyLong_FromLong(s.u8);
    case COMMY_T_U16: return PyLong_FromLong(s.u16);
    case COMMY_T_U32: return PyLong_FromUnsignedLong(s.u32);
    case COMMY_T_U64: return PyLong_FromUnsignedLongLong(s.u64);
    case COMMY_T_F32: return PyFloat_FromDouble(s.f32);
    case COMMY_T_F64: return PyFloat_FromDouble(s.f64);
    case COMMY_T_BOOL: return PyBool_FromLong(s.u8 != 0);
    case COMMY_T_STR: return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "strict");
    case COMMY_T_BYTES: case COMMY_T_BLOB: return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    default: return PyErr_Format(PyExc_TypeError, "element type %u is not a valid commy type", (unsigned)t);
    }
}

/* An output buffer: on the stack for small values, grown on COMMY_ETOOSMALL. */
typedef struct cpy_buf { char *p; size_t cap; char stack[256]; } cpy_buf;
static void cpy_buf_init(cpy_buf *b) { b->p = b->stack; b->cap = sizeof b->stack; }
static void cpy_buf_free(cpy_buf *b) { if (b->p != b->stack) free(b->p); cpy_buf_init(b); }
static int cpy_buf_grow(cpy_buf *b, size_t need)
{
    if (need <= b->cap) return 0;
    char *p = (char *)malloc(need);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    if (b->p != b->stack) free(b->p);
    b->p = p; b->cap = need;
    return 0;
}

/* The value may grow between our two calls (another process): retry a few times. */
#define CPY_TRIES 16

/* rc = CALL (using kb/vb and kn/vn), growing both buffers on ETOOSMALL. */
#define CPY_READ2(rc, CALL)                                                           \
    do {                                                                              \
        int tries_ = 0;                                                               \
        for (;;) {                                                                    \
            (rc) = (CALL);                                                            \
            if ((rc) != COMMY_ETOOSMALL || ++tries_ > CPY_TRIES) break;               \
            if (cpy_buf_grow(&kb, kn) != 0 || cpy_buf_grow(&vb, vn) != 0) { (rc) = 1000; break; } \
        }                                                                             \
    } while (0)

/* Result of a read that found nothing: `missing` (a sentinel the caller passed). */
static PyObject *cpy_ret(PyObject *o) { Py_INCREF(o); return o; }

/* A (key, value) pair, a key or a value, as `what` asks (0 key, 1 value, 2 pair). */
static PyObject *cpy_row(int what, commy_type kt, const void *k, size_t kn, commy_type vt, const void *v, size_t vn)
{
    if (what == 0) return cpy_decode(kt, k, kn);
    if (what == 1) return cpy_decode(vt, v, vn);
    PyObject *ko = cpy_decode(kt, k, kn);
    if (ko == NULL) return NULL;
    PyObject *vo = cpy_decode(vt, v, vn);
    if (vo == NULL) { Py_DECREF(ko); return NULL; }
    PyObject *t = PyTuple_Pack(2, ko, vo);
    Py_DECREF(ko); Py_DECREF(vo);
    return t;
}
%}

%define CPY_WAIT(KIND)
%inline %{
/* Waits for a change of the version seen: True if it changed, False on timeout. */
PyObject *py_ ## KIND ## _wait(commy_ ## KIND *live, unsigned int seen, int timeout_ms)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = commy_ ## KIND ## _wait(live, (uint32_t)seen, (int32_t)timeout_ms);
    Py_END_ALLOW_THREADS
    if (rc == COMMY_ETIMEDOUT) Py_RETURN_FALSE;
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_TRUE;
}
/* The change counter. */
PyObject *py_ ## KIND ## _version(commy_ ## KIND *live)
{
    uint32_t v = 0;
    int rc = commy_ ## KIND ## _version(&v, live);
    if (rc < 0) return cpy_raise(rc);
    return PyLong_FromUnsignedLong(v);
}
/* The number of elements. */
PyObject *py_ ## KIND ## _len(commy_ ## KIND *live)
{
    uint64_t n = 0;
    int rc = commy_ ## KIND ## _len(&n, live);
    if (rc < 0) return cpy_raise(rc);
    return PyLong_FromUnsignedLongLong(n);
}
/* Removes everything. */
PyObject *py_ ## KIND ## _clear(commy_ ## KIND *live)
{
    int rc = commy_ ## KIND ## _clear(live);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
%}
%enddef

CPY_WAIT(vec)
CPY_WAIT(str)
CPY_WAIT(deque)
CPY_WAIT(map)
CPY_WAIT(set)
CPY_WAIT(omap)
CPY_WAIT(oset)

%inline %{
/* Called once by commy/__init__.py: the classes C raises. */
PyObject *_register_errors(PyObject *base, PyObject *mapping)
{
    if (!PyDict_Check(mapping)) return PyErr_Format(PyExc_TypeError, "mapping must be a dict");
    Py_XDECREF(cpy_error_base); Py_XDECREF(cpy_error_map);
    Py_INCREF(base); Py_INCREF(mapping);
    cpy_error_base = base; cpy_error_map = mapping;
    Py_RETURN_NONE;
}

/* Raises the exception for code (used by the Python layer and its tests). */
PyObject *py_raise(int code) { return cpy_raise(code); }

/* ---- box ---- */
PyObject *py_box_wait(commy_box *live, unsigned int seen, int timeout_ms)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = commy_box_wait(live, (uint32_t)seen, (int32_t)timeout_ms);
    Py_END_ALLOW_THREADS
    if (rc == COMMY_ETIMEDOUT) Py_RETURN_FALSE;
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_TRUE;
}
PyObject *py_box_version(commy_box *live)
{
    uint32_t v = 0;
    int rc = commy_box_version(&v, live);
    if (rc < 0) return cpy_raise(rc);
    return PyLong_FromUnsignedLong(v);
}
PyObject *py_box_get(commy_box *live, unsigned int t)
{
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    CPY_READ2(rc, commy_box_get(live, vb.p, vb.cap, &vn));
    PyObject *r = rc == 1000 ? NULL : rc < 0 ? cpy_raise(rc) : cpy_decode(t, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
PyObject *py_box_set(commy_box *live, unsigned int t, PyObject *value)
{
    cpy_val v;
    if (cpy_encode(&v, t, value) != 0) return NULL;
    int rc = commy_box_set(live, v.p, v.n);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
/* The int64 the C API passes for a Python int of an integer type (u64 as its bits). */
static int cpy_box_int(int64_t *out, commy_type t, PyObject *o)
{
    cpy_val v;
    if (cpy_int(&v, t, o) != 0) return -1;
    switch (COMMY_TYPE_BASE(t)) {
    case COMMY_T_I8: *out = v.s.i8; break;
    case COMMY_T_I16: *out = v.s.i16; break;
    case COMMY_T_I32: *out = v.s.i32; break;
    case COMMY_T_U8: *out = v.s.u8; break;
    case COMMY_T_U16: *out = v.s.u16; break;
    case COMMY_T_U32: *out = v.s.u32; break;
    default: *out = v.s.i64; break;
    }
    return 0;
}
static PyObject *cpy_box_result(commy_type t, int64_t x)
{
    if (COMMY_TYPE_BASE(t) == COMMY_T_U64) return PyLong_FromUnsignedLongLong((uint64_t)x);
    return PyLong_FromLongLong(x);
}
static int cpy_box_is_int(commy_type t)
{
    uint32_t b = COMMY_TYPE_BASE(t);
    return b >= COMMY_T_I8 && b <= COMMY_T_U64;
}
/* (swapped, found) */
PyObject *py_box_cas(commy_box *live, unsigned int t, PyObject *expected, PyObject *desired)
{
    int64_t e, d, found = 0;
    if (!cpy_box_is_int(t)) return cpy_raise(commy_box_cas(&found, live, 0, 0));
    if (cpy_box_int(&e, t, expected) != 0 || cpy_box_int(&d, t, desired) != 0) return NULL;
    int rc = commy_box_cas(&found, live, e, d);
    if (rc < 0) return cpy_raise(rc);
    PyObject *f = cpy_box_result(t, found);
    if (f == NULL) return NULL;
    return Py_BuildValue("(NN)", PyBool_FromLong(found == e), f);
}
/* The previous value; delta wraps at the type's width, as in C. */
PyObject *py_box_fetch_add(commy_box *live, unsigned int t, PyObject *delta)
{
    int64_t prev = 0;
    if (!cpy_box_is_int(t)) return cpy_raise(commy_box_fetch_add(&prev, live, 0));
    int overflow = 0;
    long long d = PyLong_Check(delta) ? PyLong_AsLongLongAndOverflow(delta, &overflow) : 0;
    if (!PyLong_Check(delta)) return PyErr_Format(PyExc_TypeError, "delta must be an int, not %.80s", Py_TYPE(delta)->tp_name);
    if (d == -1 && PyErr_Occurred()) return NULL;
    if (overflow) return PyErr_Format(PyExc_OverflowError, "delta %R does not fit i64", delta);
    int rc = commy_box_fetch_add(&prev, live, (int64_t)d);
    if (rc < 0) return cpy_raise(rc);
    return cpy_box_result(t, prev);
}

/* ---- vec ---- */
PyObject *py_vec_get(commy_vec *live, unsigned int t, unsigned long long index)
{
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    CPY_READ2(rc, commy_vec_get(live, index, vb.p, vb.cap, &vn));
    PyObject *r = rc == 1000 ? NULL : rc < 0 ? cpy_raise(rc) : cpy_decode(t, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
PyObject *py_vec_set(commy_vec *live, unsigned int t, unsigned long long index, PyObject *value)
{
    cpy_val v;
    if (cpy_encode(&v, t, value) != 0) return NULL;
    int rc = commy_vec_set(live, index, v.p, v.n);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
PyObject *py_vec_push(commy_vec *live, unsigned int t, PyObject *value)
{
    cpy_val v;
    if (cpy_encode(&v, t, value) != 0) return NULL;
    int rc = commy_vec_push(live, v.p, v.n);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
/* Appends every item of a sequence; stops at the first failure (items before it stay). */
PyObject *py_vec_extend(commy_vec *live, unsigned int t, PyObject *seq)
{
    PyObject *fast = PySequence_Fast(seq, "extend needs an iterable");
    if (fast == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        cpy_val v;
        if (cpy_encode(&v, t, items[i]) != 0) { Py_DECREF(fast); return NULL; }
        int rc = commy_vec_push(live, v.p, v.n);
        if (rc < 0) { Py_DECREF(fast); return cpy_raise(rc); }
    }
    Py_DECREF(fast);
    Py_RETURN_NONE;
}
PyObject *py_vec_insert(commy_vec *live, unsigned int t, unsigned long long index, PyObject *value)
{
    cpy_val v;
    if (cpy_encode(&v, t, value) != 0) return NULL;
    int rc = commy_vec_insert(live, index, v.p, v.n);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
PyObject *py_vec_pop(commy_vec *live, unsigned int t)
{
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    CPY_READ2(rc, commy_vec_pop(live, vb.p, vb.cap, &vn));
    PyObject *r = rc == 1000 ? NULL : rc < 0 ? cpy_raise(rc) : cpy_decode(t, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
/* Every element, in order, as a list. */
PyObject *py_vec_list(commy_vec *live, unsigned int t)
{
    uint64_t n = 0;
    int rc = commy_vec_len(&n, live);
    if (rc < 0) return cpy_raise(rc);
    PyObject *list = PyList_New(0);
    if (list == NULL) return NULL;
    for (uint64_t i = 0; i < n; i++) {
        PyObject *o = py_vec_get(live, t, i);
        if (o == NULL) {
            /* shrunk meanwhile by another process: what we have is the answer */
            if (PyErr_Occurred() && commy_error_last()->code == COMMY_ERANGE) { PyErr_Clear(); break; }
            Py_DECREF(list); return NULL;
        }
        int e = PyList_Append(list, o);
        Py_DECREF(o);
        if (e != 0) { Py_DECREF(list); return NULL; }
    }
    return list;
}

/* ---- str ---- */
PyObject *py_str_get(commy_str *live)
{
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    CPY_READ2(rc, commy_str_get(live, vb.p, vb.cap, &vn));
    PyObject *r = rc == 1000 ? NULL : rc < 0 ? cpy_raise(rc) : PyUnicode_DecodeUTF8(vb.p, (Py_ssize_t)vn, "strict");
    cpy_buf_free(&vb);
    return r;
}
PyObject *py_str_set(commy_str *live, PyObject *value, int append)
{
    cpy_val v;
    if (cpy_encode(&v, COMMY_T_STR, value) != 0) return NULL;
    int rc = append ? commy_str_append(live, (const char *)v.p, v.n) : commy_str_set(live, (const char *)v.p, v.n);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}

/* ---- deque ---- */
PyObject *py_deque_push(commy_deque *live, unsigned int t, PyObject *value, int front)
{
    cpy_val v;
    if (cpy_encode(&v, t, value) != 0) return NULL;
    int rc = front ? commy_deque_push_front(live, v.p, v.n) : commy_deque_push_back(live, v.p, v.n);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
/* op: 0 pop_back, 1 pop_front, 2 back, 3 front. */
PyObject *py_deque_take(commy_deque *live, unsigned int t, int op)
{
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    switch (op) {
    case 0: CPY_READ2(rc, commy_deque_pop_back(live, vb.p, vb.cap, &vn)); break;
    case 1: CPY_READ2(rc, commy_deque_pop_front(live, vb.p, vb.cap, &vn)); break;
    case 2: CPY_READ2(rc, commy_deque_back(live, vb.p, vb.cap, &vn)); break;
    default: CPY_READ2(rc, commy_deque_front(live, vb.p, vb.cap, &vn)); break;
    }
    PyObject *r = rc == 1000 ? NULL : rc < 0 ? cpy_raise(rc) : cpy_decode(t, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
/* pop_front, waiting up to timeout_ms (negative: forever) without the GIL. */
PyObject *py_deque_pop_wait(commy_deque *live, unsigned int t, int timeout_ms)
{
    cpy_buf vb; size_t vn = 0; int rc;
    cpy_buf_init(&vb);
    int tries = 0;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        rc = commy_deque_pop_front_wait(live, vb.p, vb.cap, &vn, (int32_t)timeout_ms);
        Py_END_ALLOW_THREADS
        if (rc != COMMY_ETOOSMALL || ++tries > CPY_TRIES) break;
        if (cpy_buf_grow(&vb, vn) != 0) { rc = 1000; break; }
    }
    PyObject *r = rc == 1000 ? NULL : rc < 0 ? cpy_raise(rc) : cpy_decode(t, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
PyObject *py_deque_get(commy_deque *live, unsigned int t, unsigned long long index)
{
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    CPY_READ2(rc, commy_deque_get(live, index, vb.p, vb.cap, &vn));
    PyObject *r = rc == 1000 ? NULL : rc < 0 ? cpy_raise(rc) : cpy_decode(t, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
PyObject *py_deque_set(commy_deque *live, unsigned int t, unsigned long long index, PyObject *value)
{
    cpy_val v;
    if (cpy_encode(&v, t, value) != 0) return NULL;
    int rc = commy_deque_set(live, index, v.p, v.n);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}

/* ---- map / omap (same shapes) ---- */
PyObject *py_map_get(commy_map *live, unsigned int kt, unsigned int vt, PyObject *key, PyObject *missing)
{
    cpy_val k;
    if (cpy_encode(&k, kt, key) != 0) return NULL;
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    CPY_READ2(rc, commy_map_get(live, k.p, k.n, vb.p, vb.cap, &vn));
    PyObject *r = rc == 1000 ? NULL : rc == COMMY_ENOTFOUND ? cpy_ret(missing) : rc < 0 ? cpy_raise(rc) : cpy_decode(vt, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
PyObject *py_map_put(commy_map *live, unsigned int kt, unsigned int vt, PyObject *key, PyObject *value)
{
    cpy_val k, v;
    if (cpy_encode(&k, kt, key) != 0 || cpy_encode(&v, vt, value) != 0) return NULL;
    int rc = commy_map_put(live, k.p, k.n, v.p, v.n);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
/* True if removed, False if it was not there. */
PyObject *py_map_remove(commy_map *live, unsigned int kt, PyObject *key)
{
    cpy_val k;
    if (cpy_encode(&k, kt, key) != 0) return NULL;
    int rc = commy_map_remove(live, k.p, k.n);
    if (rc == COMMY_ENOTFOUND) Py_RETURN_FALSE;
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_TRUE;
}
/* A key of another Python type is simply not present (as in a dict). */
PyObject *py_map_contains(commy_map *live, unsigned int kt, PyObject *key)
{
    cpy_val k; int found = 0;
    if (cpy_encode(&k, kt, key) != 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_OverflowError)) { PyErr_Clear(); Py_RETURN_FALSE; }
        return NULL;
    }
    int rc = commy_map_contains(&found, live, k.p, k.n);
    if (rc < 0) return cpy_raise(rc);
    return PyBool_FromLong(found);
}

PyObject *py_omap_get(commy_omap *live, unsigned int kt, unsigned int vt, PyObject *key, PyObject *missing)
{
    cpy_val k;
    if (cpy_encode(&k, kt, key) != 0) return NULL;
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    CPY_READ2(rc, commy_omap_get(live, k.p, k.n, vb.p, vb.cap, &vn));
    PyObject *r = rc == 1000 ? NULL : rc == COMMY_ENOTFOUND ? cpy_ret(missing) : rc < 0 ? cpy_raise(rc) : cpy_decode(vt, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
PyObject *py_omap_put(commy_omap *live, unsigned int kt, unsigned int vt, PyObject *key, PyObject *value)
{
    cpy_val k, v;
    if (cpy_encode(&k, kt, key) != 0 || cpy_encode(&v, vt, value) != 0) return NULL;
    int rc = commy_omap_put(live, k.p, k.n, v.p, v.n);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
PyObject *py_omap_remove(commy_omap *live, unsigned int kt, PyObject *key)
{
    cpy_val k;
    if (cpy_encode(&k, kt, key) != 0) return NULL;
    int rc = commy_omap_remove(live, k.p, k.n);
    if (rc == COMMY_ENOTFOUND) Py_RETURN_FALSE;
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_TRUE;
}
PyObject *py_omap_contains(commy_omap *live, unsigned int kt, PyObject *key)
{
    cpy_val k; int found = 0;
    if (cpy_encode(&k, kt, key) != 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_OverflowError)) { PyErr_Clear(); Py_RETURN_FALSE; }
        return NULL;
    }
    int rc = commy_omap_contains(&found, live, k.p, k.n);
    if (rc < 0) return cpy_raise(rc);
    return PyBool_FromLong(found);
}
/* which: 0 first, 1 last, 2 lower_bound(key), 3 upper_bound(key).
 * Returns the entry as `what` asks, or missing if there is none. */
PyObject *py_omap_bound(commy_omap *live, unsigned int kt, unsigned int vt, int which, PyObject *key, int what, PyObject *missing)
{
    cpy_val k = {0};
    if (which >= 2 && cpy_encode(&k, kt, key) != 0) return NULL;
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    switch (which) {
    case 0: CPY_READ2(rc, commy_omap_first(live, kb.p, kb.cap, &kn, vb.p, vb.cap, &vn)); break;
    case 1: CPY_READ2(rc, commy_omap_last(live, kb.p, kb.cap, &kn, vb.p, vb.cap, &vn)); break;
    case 2: CPY_READ2(rc, commy_omap_lower_bound(live, k.p, k.n, kb.p, kb.cap, &kn, vb.p, vb.cap, &vn)); break;
    default: CPY_READ2(rc, commy_omap_upper_bound(live, k.p, k.n, kb.p, kb.cap, &kn, vb.p, vb.cap, &vn)); break;
    }
    PyObject *r = rc == 1000 ? NULL
                : (rc == COMMY_EEMPTY || rc == COMMY_ENOTFOUND) ? cpy_ret(missing)
                : rc < 0 ? cpy_raise(rc) : cpy_row(what, kt, kb.p, kn, vt, vb.p, vn);
    cpy_buf_free(&kb); cpy_buf_free(&vb);
    return r;
}

/* ---- set / oset ---- */
PyObject *py_set_add(commy_set *live, unsigned int t, PyObject *key)
{
    cpy_val k; int added = 0;
    if (cpy_encode(&k, t, key) != 0) return NULL;
    int rc = commy_set_add(&added, live, k.p, k.n);
    if (rc < 0) return cpy_raise(rc);
    return PyBool_FromLong(added);
}
PyObject *py_set_remove(commy_set *live, unsigned int t, PyObject *key)
{
    cpy_val k;
    if (cpy_encode(&k, t, key) != 0) return NULL;
    int rc = commy_set_remove(live, k.p, k.n);
    if (rc == COMMY_ENOTFOUND) Py_RETURN_FALSE;
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_TRUE;
}
PyObject *py_set_contains(commy_set *live, unsigned int t, PyObject *key)
{
    cpy_val k; int found = 0;
    if (cpy_encode(&k, t, key) != 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_OverflowError)) { PyErr_Clear(); Py_RETURN_FALSE; }
        return NULL;
    }
    int rc = commy_set_contains(&found, live, k.p, k.n);
    if (rc < 0) return cpy_raise(rc);
    return PyBool_FromLong(found);
}
PyObject *py_oset_add(commy_oset *live, unsigned int t, PyObject *key)
{
    cpy_val k; int added = 0;
    if (cpy_encode(&k, t, key) != 0) return NULL;
    int rc = commy_oset_add(&added, live, k.p, k.n);
    if (rc < 0) return cpy_raise(rc);
    return PyBool_FromLong(added);
}
PyObject *py_oset_remove(commy_oset *live, unsigned int t, PyObject *key)
{
    cpy_val k;
    if (cpy_encode(&k, t, key) != 0) return NULL;
    int rc = commy_oset_remove(live, k.p, k.n);
    if (rc == COMMY_ENOTFOUND) Py_RETURN_FALSE;
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_TRUE;
}
PyObject *py_oset_contains(commy_oset *live, unsigned int t, PyObject *key)
{
    cpy_val k; int found = 0;
    if (cpy_encode(&k, t, key) != 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_OverflowError)) { PyErr_Clear(); Py_RETURN_FALSE; }
        return NULL;
    }
    int rc = commy_oset_contains(&found, live, k.p, k.n);
    if (rc < 0) return cpy_raise(rc);
    return PyBool_FromLong(found);
}
PyObject *py_oset_bound(commy_oset *live, unsigned int t, int which, PyObject *key, PyObject *missing)
{
    cpy_val k = {0};
    if (which >= 2 && cpy_encode(&k, t, key) != 0) return NULL;
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    switch (which) {
    case 0: CPY_READ2(rc, commy_oset_first(live, kb.p, kb.cap, &kn)); break;
    case 1: CPY_READ2(rc, commy_oset_last(live, kb.p, kb.cap, &kn)); break;
    case 2: CPY_READ2(rc, commy_oset_lower_bound(live, k.p, k.n, kb.p, kb.cap, &kn)); break;
    default: CPY_READ2(rc, commy_oset_upper_bound(live, k.p, k.n, kb.p, kb.cap, &kn)); break;
    }
    PyObject *r = rc == 1000 ? NULL
                : (rc == COMMY_EEMPTY || rc == COMMY_ENOTFOUND) ? cpy_ret(missing)
                : rc < 0 ? cpy_raise(rc) : cpy_decode(t, kb.p, kn);
    cpy_buf_free(&kb);
    return r;
}

/* ---- iteration: up to n rows from a cursor, as a list (empty at the end) ----
 * kind: COMMY_KIND_MAP, _SET, _OMAP or _OSET; h is that kind's handle. */
PyObject *py_scan(int kind, PyObject *h, commy_cursor *c, unsigned int kt, unsigned int vt, int what, int n)
{
    void *p = NULL;
    swig_type_info *ty = kind == COMMY_KIND_MAP ? SWIGTYPE_p_commy_map : kind == COMMY_KIND_SET ? SWIGTYPE_p_commy_set
                       : kind == COMMY_KIND_OMAP ? SWIGTYPE_p_commy_omap : SWIGTYPE_p_commy_oset;
    if (h == Py_None) return cpy_raise_closed();
    if (!SWIG_IsOK(SWIG_ConvertPtr(h, &p, ty, 0)) || p == NULL || c == NULL)
        return PyErr_Format(PyExc_TypeError, "py_scan: wrong handle or cursor");
    PyObject *list = PyList_New(0);
    if (list == NULL) return NULL;
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc = COMMY_DONE;
    cpy_buf_init(&kb); cpy_buf_init(&vb);
    for (Py_ssize_t i = 0; i < n; i++) {
        switch (kind) {
        case COMMY_KIND_MAP: CPY_READ2(rc, commy_map_next((commy_map *)p, c, kb.p, kb.cap, &kn, vb.p, vb.cap, &vn)); break;
        case COMMY_KIND_SET: CPY_READ2(rc, commy_set_next((commy_set *)p, c, kb.p, kb.cap, &kn)); break;
        case COMMY_KIND_OMAP: CPY_READ2(rc, commy_omap_next((commy_omap *)p, c, kb.p, kb.cap, &kn, vb.p, vb.cap, &vn)); break;
        default: CPY_READ2(rc, commy_oset_next((commy_oset *)p, c, kb.p, kb.cap, &kn)); break;
        }
        if (rc != COMMY_ROW) break;
        PyObject *o = (kind == COMMY_KIND_SET || kind == COMMY_KIND_OSET) ? cpy_decode(kt, kb.p, kn)
                                                                           : cpy_row(what, kt, kb.p, kn, vt, vb.p, vn);
        if (o == NULL || PyList_Append(list, o) != 0) { Py_XDECREF(o); rc = 1000; break; }
        Py_DECREF(o);
    }
    cpy_buf_free(&kb); cpy_buf_free(&vb);
    if (rc < 0) { Py_DECREF(list); return cpy_raise(rc); }
    if (rc == 1000) { Py_DECREF(list); return NULL; }
    return list;
}

/* Positions c at the first key >= key (inclusive) or > key; key None: the start. */
PyObject *py_seek(int kind, PyObject *h, commy_cursor *c, unsigned int kt, PyObject *key, int inclusive)
{
    void *p = NULL;
    swig_type_info *ty = kind == COMMY_KIND_OMAP ? SWIGTYPE_p_commy_omap : SWIGTYPE_p_commy_oset;
    if (h == Py_None) return cpy_raise_closed();
    if (!SWIG_IsOK(SWIG_ConvertPtr(h, &p, ty, 0)) || p == NULL || c == NULL)
        return PyErr_Format(PyExc_TypeError, "py_seek: wrong handle or cursor");
    cpy_val k = {0};
    if (key != Py_None && cpy_encode(&k, kt, key) != 0) return NULL;
    int rc = kind == COMMY_KIND_OMAP ? commy_omap_seek(c, (commy_omap *)p, k.p, k.n, inclusive)
                                     : commy_oset_seek(c, (commy_oset *)p, k.p, k.n, inclusive);
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
%}
