/* C# typemaps for sessions (abi/commy/session.h), included by ../commy.i
 * before that header. Same conventions as commy_csharp.i: handles are
 * IntPtr, other pointers unmanaged C# pointers, int codes returned as they
 * are. The idiomatic Commy.Session / Commy.Service (csharp/Commy/Session.cs)
 * own the handles through SafeHandles.
 *
 * The change callback is a C function pointer: the C# side passes the
 * address of an [UnmanagedCallersOnly] method (an IntPtr), so no delegate
 * is marshalled and none has to be kept alive; the payload is a GCHandle
 * that the Service frees after commy_service_close. commy_change is read
 * through a blittable mirror (Commy.Interop.NativeChange). */

COMMY_CS_HANDLE(commy_session)
COMMY_CS_HANDLE(commy_service)
COMMY_CS_PTR(commy_change_fn, global::System.IntPtr)

/* Options travel as the arguments of commy_cs_session_connect. */
%ignore commy_session_options;
%ignore commy_session_options_init;
%ignore commy_session_connect;
%ignore commy_change;

%inline %{
/* commy_session_connect with the options as arguments (0 / NULL: the default). */
int commy_cs_session_connect(commy_session **out, const char *url, uint32_t timeout_ms, const char *ca_file,
                             const char *cert_file, const char *key_file, uint32_t insecure_skip_verify,
                             uint32_t reconnect, uint32_t reconnect_max_ms, uint32_t silence_timeout_s)
{
    commy_session_options o;
    commy_session_options_init(&o);
    if (timeout_ms) o.timeout_ms = timeout_ms;
    o.ca_file = ca_file;
    o.cert_file = cert_file;
    o.key_file = key_file;
    o.insecure_skip_verify = insecure_skip_verify;
    o.reconnect = reconnect;
    if (reconnect_max_ms) o.reconnect_max_ms = reconnect_max_ms;
    if (silence_timeout_s) o.silence_timeout_s = silence_timeout_s;
    return commy_session_connect(out, url, &o);
}
%}
