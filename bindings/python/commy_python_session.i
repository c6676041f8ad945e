/* Sessions (abi/commy/session.h) for the Python layer: binding glue, not ABI.
 *
 * The GIL and the session's network thread: every blocking session call
 * (connect, authenticate, open_service, subscribe, ...) releases the GIL,
 * and so does every call on a container of a remote service
 * (commy_python_types.i). The network thread itself never takes the GIL:
 * a subscription's callback (cpy_on_change) copies the change into a queue
 * (cpy_events) and returns; a Python thread of the session (commy.Session's
 * dispatcher) takes changes out with py_events_next, which waits without the
 * GIL, and calls the Python callable. So a callback can never deadlock
 * against a thread that holds the GIL while it waits for a reply, it runs
 * in the order the server sent the changes, and it may itself make remote
 * calls (it is not on the network thread).
 *
 * Lifetimes: a subscription (cpy_sub) holds a reference to its callable
 * and is owned by its queue; the queue is freed (py_events_free) only after
 * the session is closed, when no callback can run any more. */

%{
#include <pthread.h>
#include <time.h>

typedef struct cpy_events cpy_events;

typedef struct cpy_sub {
    struct cpy_sub *next;
    cpy_events *q;
    PyObject *callable; /* strong reference, dropped by py_events_free */
    PyObject *service;  /* the commy.Service, for the callback's first argument (strong) */
} cpy_sub;

typedef struct cpy_event {
    struct cpy_event *next;
    cpy_sub *sub;
    char *var;
    uint32_t version, kind, type;
    void *value; /* NULL when the change carried none */
    size_t value_len;
    uint64_t len;
} cpy_event;

struct cpy_events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cpy_event *head, *tail;
    cpy_sub *subs;
    int stopped;
};

static void cpy_event_free(cpy_event *e)
{
    if (e == NULL) return;
    free(e->var);
    free(e->value);
    free(e);
}

/* On the session's network thread, without the GIL: copy and queue. */
static void cpy_on_change(const commy_change *c, void *payload)
{
    cpy_sub *sub = (cpy_sub *)payload;
    cpy_events *q = sub->q;
    cpy_event *e = (cpy_event *)calloc(1, sizeof *e);
    if (e == NULL) return; /* out of memory: the change is lost; the container's version still moves */
    e->sub = sub;
    e->var = strdup(c->var != NULL ? c->var : "");
    e->version = c->version;
    e->kind = c->kind;
    e->type = c->type;
    e->len = c->len;
    if (c->value != NULL) {
        e->value = malloc(c->value_len > 0 ? c->value_len : 1);
        if (e->value != NULL) {
            memcpy(e->value, c->value, c->value_len);
            e->value_len = c->value_len;
        }
    }
    if (e->var == NULL || (c->value != NULL && e->value == NULL)) { cpy_event_free(e); return; }
    pthread_mutex_lock(&q->mu);
    if (q->stopped) {
        pthread_mutex_unlock(&q->mu);
        cpy_event_free(e);
        return;
    }
    if (q->tail != NULL) q->tail->next = e; else q->head = e;
    q->tail = e;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
%}

/* The options travel as arguments of py_session_connect. */
%ignore commy_session_options;
%ignore commy_session_options_init;
%ignore commy_session_connect;
/* Callbacks go through py_service_subscribe (the queue above). */
%ignore commy_change;
%ignore commy_service_subscribe;
/* Copy-out strings: py_session_token and py_session_client_id. */
%ignore commy_session_token;
%ignore commy_session_client_id;

CPY_HANDLE_OUT(commy_session)
CPY_HANDLE_OUT(commy_service)
%apply uint32_t *OUTPUT { uint32_t *out_rotated };

%typemap(check) commy_session *s, commy_service *svc {
    if ($1 == NULL) { cpy_raise_closed(); SWIG_fail; }
}

/* Round trips release the GIL. */
%thread commy_session_authenticate;
%thread commy_session_authenticate_token;
%thread commy_session_authenticate_jwt;
%thread commy_session_refresh;
%thread commy_session_logout;
%thread commy_session_close;
%thread commy_session_open_service;
%thread commy_session_revoke_client;
%thread commy_service_unsubscribe;
%thread commy_service_close;

%inline %{
/* Connects; the options as arguments (0 / None: the library's default). */
PyObject *py_session_connect(const char *url, unsigned int timeout_ms, const char *ca_file, const char *cert_file,
                             const char *key_file, int insecure_skip_verify, int reconnect, unsigned int reconnect_max_ms,
                             unsigned int silence_timeout_s)
{
    commy_session_options o;
    commy_session *s = NULL;
    int rc;
    commy_session_options_init(&o);
    if (timeout_ms) o.timeout_ms = timeout_ms;
    o.ca_file = ca_file;
    o.cert_file = cert_file;
    o.key_file = key_file;
    o.insecure_skip_verify = insecure_skip_verify ? 1u : 0u;
    o.reconnect = reconnect ? 1u : 0u;
    if (reconnect_max_ms) o.reconnect_max_ms = reconnect_max_ms;
    if (silence_timeout_s) o.silence_timeout_s = silence_timeout_s;
    Py_BEGIN_ALLOW_THREADS
    rc = commy_session_connect(&s, url, &o);
    Py_END_ALLOW_THREADS
    if (rc < 0) return cpy_raise(rc);
    return SWIG_InternalNewPointerObj(SWIG_as_voidptr(s), SWIGTYPE_p_commy_session, 0);
}

/* (token, expires_at in Unix seconds) */
PyObject *py_session_token(commy_session *s)
{
    char buf[512];
    size_t n = 0;
    int64_t exp = 0;
    int rc = commy_session_token(s, buf, sizeof buf, &n, &exp);
    if (rc == COMMY_ETOOSMALL) {
        char *big = (char *)malloc(n + 1);
        if (big == NULL) return PyErr_NoMemory();
        rc = commy_session_token(s, big, n + 1, &n, &exp);
        PyObject *r = rc < 0 ? cpy_raise(rc) : Py_BuildValue("(s#L)", big, (Py_ssize_t)n, (long long)exp);
        free(big);
        return r;
    }
    if (rc < 0) return cpy_raise(rc);
    return Py_BuildValue("(s#L)", buf, (Py_ssize_t)n, (long long)exp);
}

PyObject *py_session_client_id(commy_session *s)
{
    char buf[512];
    size_t n = 0;
    int rc = commy_session_client_id(s, buf, sizeof buf, &n);
    if (rc < 0) return cpy_raise(rc);
    return PyUnicode_FromStringAndSize(buf, (Py_ssize_t)n);
}

/* A queue of changes for one session. */
cpy_events *py_events_new(void)
{
    cpy_events *q = (cpy_events *)calloc(1, sizeof *q);
    if (q == NULL) { PyErr_NoMemory(); return NULL; }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    return q;
}

/* The next change as (callable, service, var, version, kind, value, len):
 * value decoded by its type, or None. Waits up to timeout_ms (negative:
 * until py_events_stop) without the GIL. None on timeout, False once
 * stopped and drained. */
PyObject *py_events_next(cpy_events *q, int timeout_ms)
{
    cpy_event *e = NULL;
    int stopped = 0;
    if (q == NULL) return PyErr_Format(PyExc_ValueError, "py_events_next: no queue");
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&q->mu);
    if (q->head == NULL && !q->stopped && timeout_ms != 0) {
        if (timeout_ms < 0) {
            while (q->head == NULL && !q->stopped) pthread_cond_wait(&q->cv, &q->mu);
        } else {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += timeout_ms / 1000;
            until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
            while (q->head == NULL && !q->stopped)
                if (pthread_cond_timedwait(&q->cv, &q->mu, &until) != 0) break;
        }
    }
    e = q->head;
    if (e != NULL) {
        q->head = e->next;
        if (q->head == NULL) q->tail = NULL;
    }
    stopped = q->stopped;
    pthread_mutex_unlock(&q->mu);
    Py_END_ALLOW_THREADS
    if (e == NULL) {
        if (stopped) Py_RETURN_FALSE;
        Py_RETURN_NONE;
    }
    PyObject *value;
    if (e->value != NULL) {
        value = cpy_decode(e->type, e->value, e->value_len);
        if (value == NULL) {
            /* a value of a type this binding cannot decode: give the bytes */
            PyErr_Clear();
            value = PyBytes_FromStringAndSize((const char *)e->value, (Py_ssize_t)e->value_len);
        }
    } else {
        value = cpy_ret(Py_None);
    }
    PyObject *r = value == NULL ? NULL
                : Py_BuildValue("(OOsIINK)", e->sub->callable, e->sub->service, e->var, (unsigned int)e->version,
                                (unsigned int)e->kind, value, (unsigned long long)e->len);
    cpy_event_free(e);
    return r;
}

/* Wakes py_events_next for good; changes queued later are dropped. */
PyObject *py_events_stop(cpy_events *q)
{
    if (q == NULL) Py_RETURN_NONE;
    pthread_mutex_lock(&q->mu);
    q->stopped = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    Py_RETURN_NONE;
}

/* Frees the queue, its pending changes and its subscriptions. Only after
 * commy_session_close returned: nothing may call cpy_on_change any more. */
PyObject *py_events_free(cpy_events *q)
{
    if (q == NULL) Py_RETURN_NONE;
    for (cpy_event *e = q->head, *n; e != NULL; e = n) { n = e->next; cpy_event_free(e); }
    for (cpy_sub *u = q->subs, *n; u != NULL; u = n) {
        n = u->next;
        Py_XDECREF(u->callable);
        Py_XDECREF(u->service);
        free(u);
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
    Py_RETURN_NONE;
}

/* Subscribes callable to var: its changes arrive through q. */
PyObject *py_service_subscribe(commy_service *svc, const char *var, cpy_events *q, PyObject *service, PyObject *callable)
{
    if (q == NULL) return PyErr_Format(PyExc_ValueError, "py_service_subscribe: no queue");
    if (!PyCallable_Check(callable)) return PyErr_Format(PyExc_TypeError, "the callback must be callable, not %.80s", Py_TYPE(callable)->tp_name);
    cpy_sub *u = (cpy_sub *)calloc(1, sizeof *u);
    if (u == NULL) return PyErr_NoMemory();
    Py_INCREF(callable);
    Py_INCREF(service);
    u->callable = callable;
    u->service = service;
    u->q = q;
    pthread_mutex_lock(&q->mu);
    u->next = q->subs;
    q->subs = u;
    pthread_mutex_unlock(&q->mu);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = commy_service_subscribe(svc, var, cpy_on_change, u);
    Py_END_ALLOW_THREADS
    if (rc < 0) return cpy_raise(rc); /* u stays with the queue, never called */
    Py_RETURN_NONE;
}

/* The service's commy_alloc (borrowed: valid until commy_service_close). */
PyObject *py_service_alloc(commy_service *svc)
{
    commy_alloc *a = NULL;
    int rc = commy_service_alloc(&a, svc);
    if (rc < 0) return cpy_raise(rc);
    return SWIG_InternalNewPointerObj(SWIG_as_voidptr(a), SWIGTYPE_p_commy_alloc, 0);
}
%}
