/* Container base types in C for the Python layer: binding glue, not ABI.
 *
 * Why: a Python-level __getitem__ that calls a SWIG wrapper pays for a
 * Python frame, SWIG's argument unpacking and pointer conversion on every
 * call: about 130 ns of the ~220 ns a map get took. Here the idiomatic
 * classes (commy.Map, commy.Vec, ...) derive from small C types whose
 * slots (mp_subscript, sq_contains, ...) call the public C ABI directly,
 * so m[k] goes from the interpreter straight to commy_map_get.
 *
 *   Core      _h (the SWIG handle object; the raw pointer is cached beside
 *             it and cleared when _h is set to None), _kt, _vt, _bind()
 *   MapCore   len, [k], [k] = v, del [k], k in, get(k, default)   map, omap
 *   VecCore   len, [i], [i] = v, append(v)                          vec
 *   SetCore   len, v in, add(v), discard(v), _take(v)               set, oset
 *   BoxCore   value (get and set)                                   box
 *   DequeCore len, append(v), appendleft(v)                         deque
 *
 * Every slot runs with the GIL held and never calls back into Python
 * between reading the cached pointer and the C call, so close() (which
 * needs the GIL) cannot free the handle under it. Blocking calls (waits)
 * stay in the Python layer, which guards them with _enter/_leave. */

%{
typedef struct cpy_core {
    PyObject_HEAD
    PyObject *hobj; /* the SWIG handle object, or NULL when closed */
    void *h;        /* hobj's pointer */
    unsigned int kt, vt;
    int kind;
} cpy_core;

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

/* Stores a handle object (None: forget it). */
static int cpy_core_set_handle(cpy_core *s, PyObject *o)
{
    if (o == NULL || o == Py_None) {
        PyObject *old = s->hobj;
        s->hobj = NULL; s->h = NULL;
        Py_XDECREF(old);
        return 0;
    }
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

static void cpy_core_dealloc(PyObject *self)
{
    cpy_core *s = (cpy_core *)self;
    Py_CLEAR(s->hobj);
    s->h = NULL;
    Py_TYPE(self)->tp_free(self);
}

static PyObject *cpy_core_get_h(PyObject *self, void *closure)
{
    cpy_core *s = (cpy_core *)self;
    return cpy_ret(s->hobj != NULL ? s->hobj : Py_None);
}
static int cpy_core_set_h(PyObject *self, PyObject *v, void *closure) { return cpy_core_set_handle((cpy_core *)self, v); }
static PyObject *cpy_core_get_kt(PyObject *self, void *closure) { return PyLong_FromUnsignedLong(((cpy_core *)self)->kt); }
static PyObject *cpy_core_get_vt(PyObject *self, void *closure) { return PyLong_FromUnsignedLong(((cpy_core *)self)->vt); }

/* _bind(kind, handle, key_type, value_type) */
static PyObject *cpy_core_bind(PyObject *self, PyObject *args)
{
    cpy_core *s = (cpy_core *)self;
    int kind; PyObject *h; unsigned int kt, vt;
    if (!PyArg_ParseTuple(args, "iOII:_bind", &kind, &h, &kt, &vt)) return NULL;
    if (cpy_kind_type(kind) == NULL) return PyErr_Format(PyExc_ValueError, "_bind: unknown kind %d", kind);
    s->kind = kind; s->kt = kt; s->vt = vt;
    if (cpy_core_set_handle(s, h) != 0) return NULL;
    Py_RETURN_NONE;
}

static PyGetSetDef cpy_core_getset[] = {
    {(char *)"_h", cpy_core_get_h, cpy_core_set_h, (char *)"the handle (None once closed)", NULL},
    {(char *)"_kt", cpy_core_get_kt, NULL, (char *)"the key (or element) type code", NULL},
    {(char *)"_vt", cpy_core_get_vt, NULL, (char *)"the value type code", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};
static PyMethodDef cpy_core_methods[] = {
    {"_bind", cpy_core_bind, METH_VARARGS, "_bind(kind, handle, key_type, value_type)"},
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
    switch (s->kind) {
    case COMMY_KIND_MAP: rc = commy_map_len(&n, (commy_map *)h); break;
    case COMMY_KIND_OMAP: rc = commy_omap_len(&n, (commy_omap *)h); break;
    case COMMY_KIND_SET: rc = commy_set_len(&n, (commy_set *)h); break;
    case COMMY_KIND_OSET: rc = commy_oset_len(&n, (commy_oset *)h); break;
    case COMMY_KIND_VEC: rc = commy_vec_len(&n, (commy_vec *)h); break;
    case COMMY_KIND_DEQUE: rc = commy_deque_len(&n, (commy_deque *)h); break;
    default: PyErr_SetString(PyExc_TypeError, "this container has no length"); return -1;
    }
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
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&vb);
    if (s->kind == COMMY_KIND_MAP) CPY_READ2(rc, commy_map_get((commy_map *)h, k.p, k.n, vb.p, vb.cap, &vn));
    else CPY_READ2(rc, commy_omap_get((commy_omap *)h, k.p, k.n, vb.p, vb.cap, &vn));
    (void)kb; (void)kn;
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
    if (value == NULL) {
        rc = s->kind == COMMY_KIND_MAP ? commy_map_remove((commy_map *)h, k.p, k.n) : commy_omap_remove((commy_omap *)h, k.p, k.n);
        if (rc == COMMY_ENOTFOUND) { cpy_key_error(key); return -1; }
    } else {
        rc = s->kind == COMMY_KIND_MAP ? commy_map_put((commy_map *)h, k.p, k.n, v.p, v.n)
                                       : commy_omap_put((commy_omap *)h, k.p, k.n, v.p, v.n);
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
    switch (s->kind) {
    case COMMY_KIND_MAP: rc = commy_map_contains(&found, (commy_map *)h, k.p, k.n); break;
    case COMMY_KIND_OMAP: rc = commy_omap_contains(&found, (commy_omap *)h, k.p, k.n); break;
    case COMMY_KIND_SET: rc = commy_set_contains(&found, (commy_set *)h, k.p, k.n); break;
    default: rc = commy_oset_contains(&found, (commy_oset *)h, k.p, k.n); break;
    }
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
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&vb);
    CPY_READ2(rc, commy_vec_get(h, idx, vb.p, vb.cap, &vn));
    (void)kb; (void)kn;
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
    int rc = commy_vec_set(h, idx, v.p, v.n);
    if (rc < 0) { cpy_raise(rc); return -1; }
    return 0;
}

static PyObject *cpy_vec_append(PyObject *self, PyObject *value)
{
    cpy_core *s = (cpy_core *)self;
    cpy_val v;
    if (cpy_encode(&v, s->kt, value) != 0) return NULL;
    CPY_LIVE(s, commy_vec, h);
    int rc = commy_vec_push(h, v.p, v.n);
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
    rc = s->kind == COMMY_KIND_SET ? commy_set_add(&added, (commy_set *)h, k.p, k.n) : commy_oset_add(&added, (commy_oset *)h, k.p, k.n);
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
    rc = s->kind == COMMY_KIND_SET ? commy_set_remove((commy_set *)h, k.p, k.n) : commy_oset_remove((commy_oset *)h, k.p, k.n);
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
    cpy_buf kb, vb; size_t kn = 0, vn = 0; int rc;
    cpy_buf_init(&vb);
    CPY_READ2(rc, commy_box_get(h, vb.p, vb.cap, &vn));
    (void)kb; (void)kn;
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
    int rc = commy_box_set(h, v.p, v.n);
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
    int rc = front ? commy_deque_push_front(h, v.p, v.n) : commy_deque_push_back(h, v.p, v.n);
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
