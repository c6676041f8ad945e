/* The session client is part of the installed library: a program using it
 * links (shared, and static with its dependencies) and gets a clear error
 * from a server that is not there. usage: session_probe wss://127.0.0.1:PORT */
#include <commy.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    commy_session_options o;
    commy_session_options_init(&o);
    o.timeout_ms = 2000;
    commy_session *s = NULL;
    int rc = commy_session_connect(&s, argv[1], &o);
    printf("connect: %s: %s\n", commy_strerror(rc), commy_error_last()->message);
    return rc == COMMY_EDISCONNECTED && s == NULL ? 0 : 1;
}
