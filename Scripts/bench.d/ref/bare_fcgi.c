/* Reference for Scripts/bench: the plainest libfcgi worker pool there is,
 * answering /health's body from a constant. It shows what nginx + libfcgi
 * cost on this machine with no application at all, so the pool's ratio to
 * nginx's `return 200` can be read against the ceiling of any libfcgi
 * worker. Not part of the product.
 * Usage: bare_fcgi SOCKET_PATH WORKERS   (runs until killed) */
#include <fastcgi.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char body[] =
    "{\"status\":\"healthy\",\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"version\":\"0.1.0\",\"uptime_seconds\":12.345}";

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s SOCKET WORKERS\n", argv[0]); return 2; }
    int n = atoi(argv[2]);
    unlink(argv[1]);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 4096) != 0) { perror("bind/listen"); return 1; }
    chmod(argv[1], 0666);
    dup2(s, FCGI_LISTENSOCK_FILENO);
    /* The same close setting the product's master gives its workers. */
    setenv("LIBFCGI_OS_CLOSE_POLL_TIMEOUT", "0", 1);
    for (int i = 0; i < n; i++) {
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            FCGX_Init();
            FCGX_Request r;
            FCGX_InitRequest(&r, FCGI_LISTENSOCK_FILENO, 0);
            while (FCGX_Accept_r(&r) >= 0) {
                const char *id = FCGX_GetParam("REQUEST_ID", r.envp);
                FCGX_FPrintF(r.out, "Status: 200 OK\r\nContent-Type: application/json\r\nX-Request-ID: %s\r\n"
                             "Content-Length: %d\r\n\r\n", id ? id : "", (int)strlen(body));
                FCGX_PutStr(body, (int)strlen(body), r.out);
                FCGX_Finish_r(&r);
            }
            _exit(0);
        }
    }
    while (wait(NULL) > 0) {}
    return 0;
}
