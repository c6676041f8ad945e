/* Python typemaps for the raw ABI (commy.native). Included by ../commy.i
 * before the public headers, so every declaration below them sees these.
 *
 * Conventions of the raw layer (bindings/TYPEMAPS.md):
 *  - a negative return raises the commy.Error subclass for its code, with
 *    commy_error_last()'s message; 0 becomes None, positive codes stay ints;
 *  - output parameters (out, out_key, ...) are returned, not passed;
 *  - (pointer, length) inputs take bytes-like objects;
 *  - (out, cap, out_len) outputs take a writable buffer (bytearray) and
 *    return the length of the value (which may exceed the buffer: then the
 *    call raised BufferTooSmallError and nothing was copied). */

%{
#include <stdlib.h>
#include <string.h>

/* Set by commy/__init__.py at import (native._register_errors): the base
 * class and the code -> class table, so C can raise the package's classes. */
static PyObject *cpy_error_base = NULL;
static PyObject *cpy_error_map = NULL;

/* Raises the exception for a negative commy code and returns NULL. The
 * message is the thread's last error when it describes this code. */
static PyObject *cpy_raise(int rc)
{
    const commy_error *e = commy_error_last();
    const char *msg = (e != NULL && e->code == rc && e->message != NULL && e->message[0] != '\0')
                          ? e->message : commy_strerror(rc);
    PyObject *cls = NULL;
    if (cpy_error_map != NULL) {
        PyObject *key = PyLong_FromLong(rc);
        if (key == NULL) return NULL;
        cls = PyDict_GetItemWithError(cpy_error_map, key); /* borrowed */
        Py_DECREF(key);
        if (cls == NULL && PyErr_Occurred()) return NULL;
    }
    if (cls == NULL) cls = cpy_error_base;
    if (cls == NULL) {
        PyErr_Format(PyExc_RuntimeError, "commy error %d: %s", rc, msg);
        return NULL;
    }
    PyObject *exc = PyObject_CallFunction(cls, "is", rc, msg);
    if (exc == NULL) return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

/* Raises ClosedError for a handle the Python side already closed. */
static PyObject *cpy_raise_closed(void)
{
    PyObject *cls = NULL;
    PyObject *key = PyLong_FromLong(COMMY_ECLOSED);
    if (key != NULL && cpy_error_map != NULL) cls = PyDict_GetItem(cpy_error_map, key);
    Py_XDECREF(key);
    if (cls == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the handle was closed");
        return NULL;
    }
    PyObject *exc = PyObject_CallFunction(cls, "is", COMMY_ECLOSED, "the container or segment handle was closed; open it again");
    if (exc == NULL) return NULL;
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}
%}

/* ---- return codes ---- */
%typemap(out) int {
    if ($1 < 0) { cpy_raise($1); SWIG_fail; }
    $result = ($1 == 0) ? SWIG_Py_Void() : PyLong_FromLong($1);
}
/* These return a number, not a status. */
%typemap(out) int commy_version_number "$result = PyLong_FromLong($1);"
%typemap(out) int commy_type_valid "$result = PyBool_FromLong($1);"
/* commy_error.code is a (negative) code to read, not a status to raise. */
%typemap(out) int code "$result = PyLong_FromLong($1);"

/* ---- handles returned through out ---- */
%define CPY_HANDLE_OUT(T)
%typemap(in, numinputs=0) T **out (T *tmp = NULL) "$1 = &tmp;"
%typemap(argout) T **out {
    $result = SWIG_Python_AppendOutput($result, SWIG_NewPointerObj(SWIG_as_voidptr(tmp$argnum), $*1_descriptor, 0));
}
%enddef
CPY_HANDLE_OUT(commy_alloc)
CPY_HANDLE_OUT(commy_box)
CPY_HANDLE_OUT(commy_vec)
CPY_HANDLE_OUT(commy_str)
CPY_HANDLE_OUT(commy_deque)
CPY_HANDLE_OUT(commy_map)
CPY_HANDLE_OUT(commy_set)
CPY_HANDLE_OUT(commy_omap)
CPY_HANDLE_OUT(commy_oset)

/* ---- numbers returned through out parameters ---- */
%include <typemaps.i>
%apply uint64_t *OUTPUT { uint64_t *out };
%apply uint32_t *OUTPUT { uint32_t *out };
%apply int64_t *OUTPUT { int64_t *out };
%apply int *OUTPUT { int *out, int *out_added };
%apply unsigned int *OUTPUT { commy_type *out, commy_type *out_key, commy_type *out_val };

/* ---- structs returned through out: a new, owned Python object ---- */
%define CPY_STRUCT_OUT(T)
%typemap(in, numinputs=0) T *out (T tmp) "memset(&tmp, 0, sizeof tmp); $1 = &tmp;"
%typemap(argout) T *out {
    T *copy = (T *)malloc(sizeof(T));
    if (copy == NULL) { PyErr_NoMemory(); SWIG_fail; }
    *copy = *$1;
    $result = SWIG_Python_AppendOutput($result, SWIG_NewPointerObj(SWIG_as_voidptr(copy), $1_descriptor, SWIG_POINTER_OWN));
}
%enddef
CPY_STRUCT_OUT(commy_heap_stats)
CPY_STRUCT_OUT(commy_segment_info)
CPY_STRUCT_OUT(commy_process_info)
CPY_STRUCT_OUT(commy_root_info)

/* ---- (pointer, length) inputs: any bytes-like object; None is (NULL, 0) ---- */
%typemap(in) (const void *val, size_t len) (Py_buffer view, int have = 0),
             (const void *key, size_t klen) (Py_buffer view, int have = 0),
             (const char *utf8, size_t len) (Py_buffer view, int have = 0) {
    if ($input == Py_None) {
        $1 = NULL; $2 = 0;
    } else {
        if (PyObject_GetBuffer($input, &view, PyBUF_SIMPLE) != 0) SWIG_fail;
        have = 1;
        $1 = ($1_ltype)view.buf;
        $2 = (size_t)view.len;
    }
}
%typemap(freearg) (const void *val, size_t len), (const void *key, size_t klen), (const char *utf8, size_t len) {
    if (have$argnum) PyBuffer_Release(&view$argnum);
}

/* ---- (out, cap, out_len) outputs: a writable buffer in, the length out ---- */
%typemap(in) (void *out, size_t cap, size_t *out_len) (Py_buffer view, int have = 0, size_t n = 0),
             (char *out, size_t cap, size_t *out_len) (Py_buffer view, int have = 0, size_t n = 0),
             (void *kout, size_t kcap, size_t *klen) (Py_buffer view, int have = 0, size_t n = 0),
             (void *kout, size_t kcap, size_t *klen_out) (Py_buffer view, int have = 0, size_t n = 0),
             (void *vout, size_t vcap, size_t *vlen) (Py_buffer view, int have = 0, size_t n = 0) {
    if ($input == Py_None) {
        $1 = NULL; $2 = 0;
    } else {
        if (PyObject_GetBuffer($input, &view, PyBUF_WRITABLE) != 0) SWIG_fail;
        have = 1;
        $1 = ($1_ltype)view.buf;
        $2 = (size_t)view.len;
    }
    $3 = &n;
}
%typemap(argout) (void *out, size_t cap, size_t *out_len), (char *out, size_t cap, size_t *out_len),
                 (void *kout, size_t kcap, size_t *klen), (void *kout, size_t kcap, size_t *klen_out),
                 (void *vout, size_t vcap, size_t *vlen) {
    $result = SWIG_Python_AppendOutput($result, PyLong_FromSize_t(n$argnum));
}
%typemap(freearg) (void *out, size_t cap, size_t *out_len), (char *out, size_t cap, size_t *out_len),
                  (void *kout, size_t kcap, size_t *klen), (void *kout, size_t kcap, size_t *klen_out),
                  (void *vout, size_t vcap, size_t *vlen) {
    if (have$argnum) PyBuffer_Release(&view$argnum);
}

/* commy_vec_data: the borrowed address as an int (for ctypes) and the count. */
%typemap(in, numinputs=0) (void **out, uint64_t *out_len) (void *p = NULL, uint64_t n = 0) "$1 = &p; $2 = &n;"
%typemap(argout) (void **out, uint64_t *out_len) {
    $result = SWIG_Python_AppendOutput($result, PyLong_FromVoidPtr(p$argnum));
    $result = SWIG_Python_AppendOutput($result, PyLong_FromUnsignedLongLong(n$argnum));
}

/* commy_type_name: a buffer of our own. */
%typemap(in, numinputs=0) (char *buf, size_t cap) (char tmp[96]) "$1 = tmp; $2 = sizeof tmp;"

/* A borrowed pointer that is unsafe to hand to Python (it moves on any
 * change by any process): commy.Str reads a copy instead. */
%ignore commy_str_borrow;

/* Calls that can block release the GIL so other Python threads run. */
%nothread;
%thread commy_alloc_open;
%thread commy_alloc_lock;
%thread commy_box_wait;
%thread commy_vec_wait;
%thread commy_str_wait;
%thread commy_deque_wait;
%thread commy_deque_pop_front_wait;
%thread commy_map_wait;
%thread commy_set_wait;
%thread commy_omap_wait;
%thread commy_oset_wait;
%thread commy_alloc_check;
