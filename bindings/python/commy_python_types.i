/* Container base types in C for the Python layer: binding glue, not ABI.
 *
 * Why: a Python-level __getitem__ that calls a SWIG wrapper pays for a
 * Python frame, SWIG's argument unpacking and pointer conversion on every
 * call: about 130 ns of the ~220 ns a map get took. Here the idiomatic
 * classes (commy.Map, commy.Vec, ...) derive from small C types whose
 * slots (mp_subscript, sq_contains, ...) call the public C ABI directly,
 * so m[k] goes from the interpreter straight to commy_map_get.
 *
 *   Core      _h (the SWIG handle object, its pointer cached beside it),
 *             _kt, _vt, _bind(), close(), _enter(), _leave()
 *   MapCore   len, [k], [k] = v, del [k], k in, get(k, default)   map, omap
 *   VecCore   len, [i], [i] = v, append(v)                          vec
 *   SetCore   len, v in, add(v), discard(v), _take(v)               set, oset
 *   BoxCore   value (get and set)                                   box
 *   DequeCore len, append(v), appendleft(v)                         deque
 *
 * Closing: close() forgets the handle at once (later calls raise
 * ClosedError) but commy_<kind>_close waits until no call is using it: a
 * call that runs without the GIL (a wait, or any call on a container of a
 * remote service, which is a network round trip) counts itself in `busy`
 * (_enter/_leave from Python, CPY_NOGIL here), and the last one out
 * closes a handle that close() left `pending`. The counters are only
 * touched with the GIL held. Slots convert every argument before they
 * read the cached pointer, so no Python code runs in between.
 *
 * Remote containers release the GIL for every call: a round trip takes
 * a while, and the session's network thread must never wait for the GIL
 * (it does not take it: subscription callbacks are queued to a Python
 * thread, see commy_python_session.i). */

%{
typedef struct cpy_core {
    PyObject_HEAD
    PyObject *hobj; /* the SWIG handle object, or NULL when closed */
    void *h;        /* hobj's pointer */
    unsigned int kt, vt;
    int kind;
    int remote;     /* calls release the GIL (a container of a remote service) */
    int busy;       /* calls in flight without the GIL */
    void *pending;  /* a handle close() left for the last of them to close */
} cpy_core;

static void cpy_close_kind(int kind, void *h)
{
    switch (kind) {
    case COMMY_KIND_BOX: commy_box_close((commy_box *)h); break;
    case COMMY_KIND_VEC: commy_vec_close((commy_vec *)h); break;
    case COMMY_KIND_STR: commy_str_close((commy_str *)h); break;
    case COMMY_KIND_DEQUE: commy_deque_close((commy_deque *)h); break;
    case COMMY_KIND_MAP: commy_map_close((commy_map *)h); break;
    case COMMY_KIND_SET: commy_set_close((commy_set *)h); break;
    case COMMY_KIND_OMAP: commy_omap_close((commy_omap *)h); break;
    case COMMY_KIND_OSET: commy_oset_close((commy_oset *)h); break;
    default: break;
    }
}

/* Closes h, without the GIL for a remote container (the close tells the server). */
static void cpy_core_close_now(cpy_core *s, void *h)
{
    int kind = s->kind;
    if (s->remote) {
        Py_BEGIN_ALLOW_THREADS
        cpy_close_kind(kind, h);
        Py_END_ALLOW_THREADS
    } else {
        cpy_close_kind(kind, h);
    }
}

/* The end of a call that ran without the GIL (GIL held again here). */
static void cpy_core_leave(cpy_core *s)
{
    if (--s->busy == 0 && s->pending != NULL) {
        void *h = s->pending;
        s->pending = NULL;
        cpy_core_close_now(s, h);
    }
}

/* rc = CALL (reading into vb, length in vn), growing vb on ETOOSMALL. Uses no
 * Python API, so it may run without the GIL: rc 1000 means out of memory
 * (the caller raises MemoryError once it holds the GIL again). */
#define CPY_READV(rc, CALL)                                                           \
    do {                                                                              \
        int tries_ = 0;                                                               \
        for (;;) {                                                                    \
            (rc) = (CALL);                                                            \
            if ((rc) != COMMY_ETOOSMALL || ++tries_ > CPY_TRIES || vn <= vb.cap) break; \
            char *np_ = (char *)malloc(vn);                                           \
            if (np_ == NULL) { (rc) = 1000; break; }                                  \
            if (vb.p != vb.stack) free(vb.p);                                         \
            vb.p = np_; vb.cap = vn;                                                  \
        }                                                                             \
    } while (0)

/* Runs STMT without the GIL when the container is remote. */
#define CPY_NOGIL(s, STMT)                                    \
    do {                                                      \
        if ((s)->remote) {                                    \
            (s)->busy++;                                      \
            Py_BEGIN_ALLOW_THREADS STMT; Py_END_ALLOW_THREADS \
            cpy_core_leave(s);                                \
        } else {                                              \
            STMT;                                             \
        }                                                     \
    } while (0)

static swig_type_info *cpy_kind_type(int kind)
{
    switch (kind) {
    case COMMY_KIND_BOX: return SWIGTYPE_p_commy_box;
    case COMMY_KIND_VEC: return SWIGTYPE_p_commy_vec;
    case COMMY_KIND_STR: return SWIGTYPE_p_commy_str;
    case COMMY_KIND_DEQUE: return SWIGTYPE_p_commy_deque;
    case COMMY_KIND_MAP: return SWIGTYPE_p_commy_map;
    case COMMY_KIND_SET: return SWIGTYPE_p_commy_set;
    case COMMY_KIND_OMAP: return SWIGTYPE_p_commy_omap;
    case COMMY_KIND_OSET: return SWIGTYPE_p_commy_oset;
    default: return NULL;
    }
}

/* Stores a handle object. */
static int cpy_core_set_handle(cpy_core *s, PyObject *o)
{
    swig_type_info *ty = cpy_kind_type(s->kind);
    void *p = NULL;
    if (ty == NULL) { PyErr_SetString(PyExc_TypeError, "_h: bind the container with _bind() first"); return -1; }
    if (!SWIG_IsOK(SWIG_ConvertPtr(o, &p, ty, 0)) || p == NULL) {
        PyErr_Format(PyExc_TypeError, "_h: not a %s handle", ty->str);
        return -1;
    }
    PyObject *old = s->hobj;
    Py_INCREF(o);
    s->hobj = o; s->h = p;
    Py_XDECREF(old);
    return 0;
}

/* close(): releases this handle (the data stays in the segment). Idempotent. */
static PyObject *cpy_core_close(PyObject *self, PyObject *unused)
{
    cpy_core *s = (cpy_core *)self;
    void *h = s->h;
    PyObject *old = s->hobj;
    s->h = NULL; s->hobj = NULL;
    if (h != NULL) {
        if (s->busy > 0) s->pending = h;
        else cpy_core_close_now(s, h);
    }
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

/* _enter(): the handle object (None if closed), counted as in use until _leave. */
static PyObject *cpy_core_enter(PyObject *self, PyObject *unused)
{
    cpy_core *s = (cpy_core *)self;
    if (s->hobj == NULL) Py_RETURN_NONE;
    s->busy++;
    return cpy_ret(s->hobj);
}
static PyObject *cpy_core_leave_py(PyObject *self, PyObject *h)
{
    if (h != Py_None) cpy_core_leave((cpy_core *)self);
    Py_RETURN_NONE;
}

static void cpy_core_dealloc(PyObject *self)
{
    cpy_core *s = (cpy_core *)self;
    /* A call in flight holds a reference to self, so busy is 0 here. */
    void *h = s->h != NULL ? s->h : s->pending;
    s->h = NULL; s->pending = NULL;
    if (h != NULL) cpy_core_close_now(s, h);
    Py_CLEAR(s->hobj);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *cpy_core_get_h(PyObject *self, void *closure)
{
    cpy_core *s = (cpy_core *)self;
    return cpy_ret(s->hobj != NULL ? s->hobj : Py_None);
}
static PyObject *cpy_core_get_pending(PyObject *self, void *closure)
{
    cpy_core *s = (cpy_core *)self;
    if (s->pending == NULL) Py_RETURN_NONE;
    return PyLong_FromVoidPtr(s->pending);
}
static PyObject *cpy_core_get_kt(PyObject *self, void *closure) { return PyLong_FromUnsignedLong(((cpy_core *)self)->kt); }
static PyObject *cpy_core_get_vt(PyObject *self, void *closure) { return PyLong_FromUnsignedLong(((cpy_core *)self)->vt); }

/* _bind(kind, handle, key_type, value_type, remote=0): once, right after the open. */
static PyObject *cpy_core_bind(PyObject *self, PyObject *args)
{
    cpy_core *s = (cpy_core *)self;
    int kind, remote = 0; PyObject *h; unsigned int kt, vt;
    if (!PyArg_ParseTuple(args, "iOII|p:_bind", &kind, &h, &kt, &vt, &remote)) return NULL;
    if (cpy_kind_type(kind) == NULL) return PyErr_Format(PyExc_ValueError, "_bind: unknown kind %d", kind);
    if (s->hobj != NULL || s->pending != NULL) return PyErr_Format(PyExc_ValueError, "_bind: already bound");
    s->kind = kind; s->kt = kt; s->vt = vt; s->remote = remote;
    if (cpy_core_set_handle(s, h) != 0) return NULL;
    Py_RETURN_NONE;
}

static PyGetSetDef cpy_core_getset[] = {
    {(char *)"_h", cpy_core_get_h, NULL, (char *)"the handle (None once closed)", NULL},
    {(char *)"_pending", cpy_core_get_pending, NULL, (char *)"a closed handle still in use by a call (None if none)", NULL},
    {(char *)"_kt", cpy_core_get_kt, NULL, (char *)"the key (or element) type code", NULL},
    {(char *)"_vt", cpy_core_get_vt, NULL, (char *)"the value type code", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};
static PyMethodDef cpy_core_methods[] = {
    {"_bind", cpy_core_bind, METH_VARARGS, "_bind(kind, handle, key_type, value_type, remote=False)"},
    {"close", cpy_core_close, METH_NOARGS, "close(): releases this handle (the data stays). Idempotent."},
    {"_enter", cpy_core_enter, METH_NOARGS, "_enter(): the handle, held open until _leave(handle)"},
    {"_leave", cpy_core_leave_py, METH_O, "_leave(handle): the end of a call _enter began"},
    {NULL, NULL, 0, NULL}
};

static PyTypeObject cpy_core_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    "commy.native.Core", /* tp_name */
    sizeof(cpy_core),    /* tp_basicsize */
};

/* The handle, or NULL with ClosedError raised. */
#define CPY_LIVE(s, T, var)                              \
    T *var = (T *)(s)->h;                                \
    if (var == NULL) return cpy_raise_closed()
#define CPY_LIVE_INT(s, T, var)                          \
    T *var = (T *)(s)->h;                                \
    if (var == NULL) { cpy_raise_closed(); return -1; }

static Py_ssize_t cpy_len_of(cpy_core *s)
{
    uint64_t n = 0; int rc;
    void *h = s->h;
    if (h == NULL) { cpy_raise_closed(); return -1; }
    int kind = s->kind;
    CPY_NOGIL(s, switch (kind) {
        case COMMY_KIND_MAP: rc = commy_map_len(&n, (commy_map *)h); break;
        case COMMY_KIND_OMAP: rc = commy_omap_len(&n, (commy_omap *)h); break;
        case COMMY_KIND_SET: rc = commy_set_len(&n, (commy_set *)h); break;
        case COMMY_KIND_OSET: rc = commy_oset_len(&n, (commy_oset *)h); break;
        case COMMY_KIND_VEC: rc = commy_vec_len(&n, (commy_vec *)h); break;
        case COMMY_KIND_DEQUE: rc = commy_deque_len(&n, (commy_deque *)h); break;
        default: rc = 1; break;
    });
    if (rc == 1) { PyErr_SetString(PyExc_TypeError, "this container has no length"); return -1; }
    if (rc < 0) { cpy_raise(rc); return -1; }
    if (n > (uint64_t)PY_SSIZE_T_MAX) { PyErr_SetString(PyExc_OverflowError, "length does not fit a Py_ssize_t"); return -1; }
    return (Py_ssize_t)n;
}
static Py_ssize_t cpy_core_len(PyObject *self) { return cpy_len_of((cpy_core *)self); }

static void cpy_key_error(PyObject *key)
{
    PyObject *t = PyTuple_Pack(1, key); /* as dict does: a tuple key stays one argument */
    if (t == NULL) return;
    PyErr_SetObject(PyExc_KeyError, t);
    Py_DECREF(t);
}

/* ---- MapCore (map, omap) ---- */
/* The value of key; missing == NULL raises KeyError, else missing is returned. */
static PyObject *cpy_map_lookup(cpy_core *s, PyObject *key, PyObject *missing)
{
    cpy_val k;
    if (cpy_encode(&k, s->kt, key) != 0) return NULL;
    void *h = s->h;
    if (h == NULL) return cpy_raise_closed();
    cpy_buf vb; size_t vn = 0; int rc;
    cpy_buf_init(&vb);
    if (s->kind == COMMY_KIND_MAP) CPY_NOGIL(s, CPY_READV(rc, commy_map_get((commy_map *)h, k.p, k.n, vb.p, vb.cap, &vn)));
    else CPY_NOGIL(s, CPY_READV(rc, commy_omap_get((commy_omap *)h, k.p, k.n, vb.p, vb.cap, &vn)));
    if (rc == 1000) PyErr_NoMemory();
    PyObject *r;
    if (rc == 1000) r = NULL;
    else if (rc == COMMY_ENOTFOUND) {
        if (missing != NULL) r = cpy_ret(missing);
        else { cpy_key_error(key); r = NULL; }
    } else if (rc < 0) r = cpy_raise(rc);
    else r = cpy_decode(s->vt, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
static PyObject *cpy_map_subscript(PyObject *self, PyObject *key) { return cpy_map_lookup((cpy_core *)self, key, NULL); }

static int cpy_map_ass_subscript(PyObject *self, PyObject *key, PyObject *value)
{
    cpy_core *s = (cpy_core *)self;
    cpy_val k, v; int rc;
    if (cpy_encode(&k, s->kt, key) != 0) return -1;
    if (value != NULL && cpy_encode(&v, s->vt, value) != 0) return -1;
    void *h = s->h;
    if (h == NULL) { cpy_raise_closed(); return -1; }
    int ismap = s->kind == COMMY_KIND_MAP;
    if (value == NULL) {
        CPY_NOGIL(s, rc = ismap ? commy_map_remove((commy_map *)h, k.p, k.n) : commy_omap_remove((commy_omap *)h, k.p, k.n));
        if (rc == COMMY_ENOTFOUND) { cpy_key_error(key); return -1; }
    } else {
        CPY_NOGIL(s, rc = ismap ? commy_map_put((commy_map *)h, k.p, k.n, v.p, v.n)
                                : commy_omap_put((commy_omap *)h, k.p, k.n, v.p, v.n));
    }
    if (rc < 0) { cpy_raise(rc); return -1; }
    return 0;
}

/* A key of another Python type (or out of range) is simply not present, as in a dict. */
static int cpy_encode_probe(cpy_val *k, commy_type t, PyObject *key)
{
    if (cpy_encode(k, t, key) == 0) return 1;
    if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_OverflowError)) { PyErr_Clear(); return 0; }
    return -1;
}

static int cpy_map_contains(PyObject *self, PyObject *key)
{
    cpy_core *s = (cpy_core *)self;
    cpy_val k; int found = 0, rc;
    int e = cpy_encode_probe(&k, s->kt, key);
    if (e <= 0) return e;
    void *h = s->h;
    if (h == NULL) { cpy_raise_closed(); return -1; }
    int kind = s->kind;
    CPY_NOGIL(s, switch (kind) {
        case COMMY_KIND_MAP: rc = commy_map_contains(&found, (commy_map *)h, k.p, k.n); break;
        case COMMY_KIND_OMAP: rc = commy_omap_contains(&found, (commy_omap *)h, k.p, k.n); break;
        case COMMY_KIND_SET: rc = commy_set_contains(&found, (commy_set *)h, k.p, k.n); break;
        default: rc = commy_oset_contains(&found, (commy_oset *)h, k.p, k.n); break;
    });
    if (rc < 0) { cpy_raise(rc); return -1; }
    return found != 0;
}

/* get(key, default=None) */
static PyObject *cpy_map_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) return PyErr_Format(PyExc_TypeError, "get expected 1 or 2 arguments, got %zd", nargs);
    return cpy_map_lookup((cpy_core *)self, args[0], nargs == 2 ? args[1] : Py_None);
}

static PyMappingMethods cpy_map_as_mapping = { cpy_core_len, cpy_map_subscript, cpy_map_ass_subscript };
static PySequenceMethods cpy_map_as_sequence = { 0, 0, 0, 0, 0, 0, 0, cpy_map_contains };
static PyMethodDef cpy_map_methods[] = {
    {"get", (PyCFunction)(void (*)(void))cpy_map_get, METH_FASTCALL, "get(key, default=None): the value of key, or default"},
    {NULL, NULL, 0, NULL}
};
static PyTypeObject cpy_map_type = { PyVarObject_HEAD_INIT(NULL, 0) "commy.native.MapCore", sizeof(cpy_core) };

/* ---- VecCore ---- */
/* Python index -> element index (negative counts from the end); -1 with an exception. */
static int cpy_vec_index(cpy_core *s, PyObject *i, uint64_t *out)
{
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(i, &overflow);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (overflow > 0) { PyErr_SetString(PyExc_IndexError, "vec index out of range"); return -1; }
    if (overflow < 0 || x < 0) {
        Py_ssize_t n = cpy_len_of(s);
        if (n < 0) return -1;
        if (overflow < 0 || x + n < 0) { PyErr_SetString(PyExc_IndexError, "vec index out of range"); return -1; }
        x += n;
    }
    *out = (uint64_t)x;
    return 0;
}

static PyObject *cpy_vec_subscript(PyObject *self, PyObject *i)
{
    cpy_core *s = (cpy_core *)self;
    if (!PyLong_Check(i)) {
        if (PySlice_Check(i)) return PyObject_CallMethod(self, "_get_slice", "O", i);
        return PyErr_Format(PyExc_TypeError, "vec indices must be integers or slices, not %.80s", Py_TYPE(i)->tp_name);
    }
    uint64_t idx;
    if (cpy_vec_index(s, i, &idx) != 0) return NULL;
    CPY_LIVE(s, commy_vec, h);
    cpy_buf vb; size_t vn = 0; int rc;
    cpy_buf_init(&vb);
    CPY_NOGIL(s, CPY_READV(rc, commy_vec_get(h, idx, vb.p, vb.cap, &vn)));
    if (rc == 1000) PyErr_NoMemory();
    PyObject *r = rc == 1000 ? NULL : rc < 0 ? cpy_raise(rc) : cpy_decode(s->kt, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}

static int cpy_vec_ass_subscript(PyObject *self, PyObject *i, PyObject *value)
{
    cpy_core *s = (cpy_core *)self;
    if (value == NULL || !PyLong_Check(i)) {
        /* del v[i], slices: the Python layer's _set_item (value None means delete) */
        PyObject *r = PyObject_CallMethod(self, "_set_item", "OOi", i, value != NULL ? value : Py_None, value == NULL);
        if (r == NULL) return -1;
        Py_DECREF(r);
        return 0;
    }
    uint64_t idx;
    cpy_val v;
    if (cpy_vec_index(s, i, &idx) != 0 || cpy_encode(&v, s->kt, value) != 0) return -1;
    CPY_LIVE_INT(s, commy_vec, h);
    int rc;
    CPY_NOGIL(s, rc = commy_vec_set(h, idx, v.p, v.n));
    if (rc < 0) { cpy_raise(rc); return -1; }
    return 0;
}

static PyObject *cpy_vec_append(PyObject *self, PyObject *value)
{
    cpy_core *s = (cpy_core *)self;
    cpy_val v;
    if (cpy_encode(&v, s->kt, value) != 0) return NULL;
    CPY_LIVE(s, commy_vec, h);
    int rc;
    CPY_NOGIL(s, rc = commy_vec_push(h, v.p, v.n));
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}

static PyMappingMethods cpy_vec_as_mapping = { cpy_core_len, cpy_vec_subscript, cpy_vec_ass_subscript };
static PyMethodDef cpy_vec_methods[] = {
    {"append", cpy_vec_append, METH_O, "append(value): adds value at the end"},
    {NULL, NULL, 0, NULL}
};
static PyTypeObject cpy_vec_type = { PyVarObject_HEAD_INIT(NULL, 0) "commy.native.VecCore", sizeof(cpy_core) };

/* ---- SetCore (set, oset) ---- */
static PyObject *cpy_set_add(PyObject *self, PyObject *key)
{
    cpy_core *s = (cpy_core *)self;
    cpy_val k; int added = 0, rc;
    if (cpy_encode(&k, s->kt, key) != 0) return NULL;
    void *h = s->h;
    if (h == NULL) return cpy_raise_closed();
    int isset = s->kind == COMMY_KIND_SET;
    CPY_NOGIL(s, rc = isset ? commy_set_add(&added, (commy_set *)h, k.p, k.n) : commy_oset_add(&added, (commy_oset *)h, k.p, k.n));
    if (rc < 0) return cpy_raise(rc);
    return PyBool_FromLong(added);
}
/* _take(v): removes v; True if it was there. */
static PyObject *cpy_set_take(PyObject *self, PyObject *key)
{
    cpy_core *s = (cpy_core *)self;
    cpy_val k; int rc;
    if (cpy_encode(&k, s->kt, key) != 0) return NULL;
    void *h = s->h;
    if (h == NULL) return cpy_raise_closed();
    int isset = s->kind == COMMY_KIND_SET;
    CPY_NOGIL(s, rc = isset ? commy_set_remove((commy_set *)h, k.p, k.n) : commy_oset_remove((commy_oset *)h, k.p, k.n));
    if (rc == COMMY_ENOTFOUND) Py_RETURN_FALSE;
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_TRUE;
}
static PyObject *cpy_set_discard(PyObject *self, PyObject *key)
{
    PyObject *r = cpy_set_take(self, key);
    if (r == NULL) return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}
static PyMappingMethods cpy_set_as_mapping = { cpy_core_len, 0, 0 };
static PySequenceMethods cpy_set_as_sequence = { 0, 0, 0, 0, 0, 0, 0, cpy_map_contains };
static PyMethodDef cpy_set_methods[] = {
    {"add", cpy_set_add, METH_O, "add(v): adds v; True if it was new"},
    {"discard", cpy_set_discard, METH_O, "discard(v): removes v if present"},
    {"_take", cpy_set_take, METH_O, "_take(v): removes v; True if it was there"},
    {NULL, NULL, 0, NULL}
};
static PyTypeObject cpy_set_type = { PyVarObject_HEAD_INIT(NULL, 0) "commy.native.SetCore", sizeof(cpy_core) };

/* ---- BoxCore ---- */
static PyObject *cpy_box_get_value(PyObject *self, void *closure)
{
    cpy_core *s = (cpy_core *)self;
    CPY_LIVE(s, commy_box, h);
    cpy_buf vb; size_t vn = 0; int rc;
    cpy_buf_init(&vb);
    CPY_NOGIL(s, CPY_READV(rc, commy_box_get(h, vb.p, vb.cap, &vn)));
    if (rc == 1000) PyErr_NoMemory();
    PyObject *r = rc == 1000 ? NULL : rc < 0 ? cpy_raise(rc) : cpy_decode(s->kt, vb.p, vn);
    cpy_buf_free(&vb);
    return r;
}
static int cpy_box_set_value(PyObject *self, PyObject *value, void *closure)
{
    cpy_core *s = (cpy_core *)self;
    cpy_val v;
    if (value == NULL) { PyErr_SetString(PyExc_AttributeError, "a box's value cannot be deleted"); return -1; }
    if (cpy_encode(&v, s->kt, value) != 0) return -1;
    CPY_LIVE_INT(s, commy_box, h);
    int rc;
    CPY_NOGIL(s, rc = commy_box_set(h, v.p, v.n));
    if (rc < 0) { cpy_raise(rc); return -1; }
    return 0;
}
static PyGetSetDef cpy_box_getset[] = {
    {(char *)"value", cpy_box_get_value, cpy_box_set_value, (char *)"the value (read and written atomically)", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};
static PyTypeObject cpy_box_type = { PyVarObject_HEAD_INIT(NULL, 0) "commy.native.BoxCore", sizeof(cpy_core) };

/* ---- DequeCore ---- */
static PyObject *cpy_deque_push(PyObject *self, PyObject *value, int front)
{
    cpy_core *s = (cpy_core *)self;
    cpy_val v;
    if (cpy_encode(&v, s->kt, value) != 0) return NULL;
    CPY_LIVE(s, commy_deque, h);
    int rc;
    CPY_NOGIL(s, rc = front ? commy_deque_push_front(h, v.p, v.n) : commy_deque_push_back(h, v.p, v.n));
    if (rc < 0) return cpy_raise(rc);
    Py_RETURN_NONE;
}
static PyObject *cpy_deque_append(PyObject *self, PyObject *value) { return cpy_deque_push(self, value, 0); }
static PyObject *cpy_deque_appendleft(PyObject *self, PyObject *value) { return cpy_deque_push(self, value, 1); }
static PyMappingMethods cpy_deque_as_mapping = { cpy_core_len, 0, 0 };
static PyMethodDef cpy_deque_methods[] = {
    {"append", cpy_deque_append, METH_O, "append(v): adds v at the back"},
    {"appendleft", cpy_deque_appendleft, METH_O, "appendleft(v): adds v at the front"},
    {NULL, NULL, 0, NULL}
};
static PyTypeObject cpy_deque_type = { PyVarObject_HEAD_INIT(NULL, 0) "commy.native.DequeCore", sizeof(cpy_core) };

/* Fills in the types and adds them to the module (and to its public names,
 * which the generated native.py star-imports); -1 on failure. */
static int cpy_types_init(PyObject *m, PyObject *public_names)
{
    PyTypeObject *all[] = { &cpy_core_type, &cpy_map_type, &cpy_vec_type, &cpy_set_type, &cpy_box_type, &cpy_deque_type };
    const char *names[] = { "Core", "MapCore", "VecCore", "SetCore", "BoxCore", "DequeCore" };
    cpy_core_type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE;
    cpy_core_type.tp_doc = "The C part of every commy container object (commy/__init__.py builds on it).";
    cpy_core_type.tp_dealloc = cpy_core_dealloc;
    cpy_core_type.tp_getset = cpy_core_getset;
    cpy_core_type.tp_methods = cpy_core_methods;
    cpy_core_type.tp_new = PyType_GenericNew;
    for (size_t i = 1; i < sizeof all / sizeof all[0]; i++) {
        all[i]->tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE;
        all[i]->tp_base = &cpy_core_type;
        all[i]->tp_new = PyType_GenericNew;
    }
    cpy_map_type.tp_as_mapping = &cpy_map_as_mapping;
    cpy_map_type.tp_as_sequence = &cpy_map_as_sequence;
    cpy_map_type.tp_methods = cpy_map_methods;
    cpy_vec_type.tp_as_mapping = &cpy_vec_as_mapping;
    cpy_vec_type.tp_methods = cpy_vec_methods;
    cpy_set_type.tp_as_mapping = &cpy_set_as_mapping;
    cpy_set_type.tp_as_sequence = &cpy_set_as_sequence;
    cpy_set_type.tp_methods = cpy_set_methods;
    cpy_box_type.tp_getset = cpy_box_getset;
    cpy_deque_type.tp_as_mapping = &cpy_deque_as_mapping;
    cpy_deque_type.tp_methods = cpy_deque_methods;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (PyType_Ready(all[i]) < 0) return -1;
        Py_INCREF(all[i]);
        if (PyModule_AddObject(m, names[i], (PyObject *)all[i]) < 0) { Py_DECREF(all[i]); return -1; }
        if (public_names != NULL) {
            PyObject *n = PyUnicode_FromString(names[i]);
            if (n == NULL || PyList_Append(public_names, n) < 0) { Py_XDECREF(n); return -1; }
            Py_DECREF(n);
        }
    }
    return 0;
}
%}

%init %{
#if defined(SWIGPYTHON_BUILTIN)
    if (cpy_types_init(m, public_interface) < 0) {
#else
    if (cpy_types_init(m, NULL) < 0) {
#endif
#if PY_VERSION_HEX >= 0x03000000
        return NULL;
#else
        return;
#endif
    }
%}
