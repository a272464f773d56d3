#include "CSupport.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <linux/rtnetlink.h>
#include <fcgiapp.h>
#include <poll.h>
#include <stdlib.h>

int cc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}

int cc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int cc_wifexited(int status) { return WIFEXITED(status); }
int cc_wexitstatus(int status) { return WEXITSTATUS(status); }
int cc_wifsignaled(int status) { return WIFSIGNALED(status); }
int cc_wtermsig(int status) { return WTERMSIG(status); }

static volatile sig_atomic_t stop_requested = 0;
static volatile sig_atomic_t reopen_requested = 0;

/* A graceful stop must also break libfcgi out of accept(): FCGX_ShutdownPending
   makes its accept loop return instead of retrying on EINTR. */
static void on_graceful(int sig) {
    (void)sig;
    stop_requested = 1;
    FCGX_ShutdownPending();
}

static void on_reopen(int sig) { (void)sig; reopen_requested = 1; }

/* ---- request read deadline ------------------------------------------------
   SO_RCVTIMEO bounds one read, so a peer sending a byte now and then keeps a
   worker reading one request for ever. ITIMER_REAL bounds the whole read. */

static volatile sig_atomic_t deadline_fd = -1;
static volatile sig_atomic_t deadline_passed = 0;

static void on_read_deadline(int sig) {
    (void)sig;
    int fd = deadline_fd;
    deadline_passed = 1;
    /* The signal ends a read in progress (EINTR); shutting the read side
       also ends the ones libfcgi has yet to make (EOF), so a signal landing
       between two reads cannot be missed. */
    if (fd >= 0) shutdown(fd, SHUT_RD);
}

int cc_read_deadline_arm(int fd, long millis) {
    deadline_passed = 0;
    deadline_fd = fd;
    struct itimerval t = { { 0, 0 }, { millis / 1000, (millis % 1000) * 1000 } };
    return setitimer(ITIMER_REAL, &t, NULL);
}

int cc_read_deadline_disarm(void) {
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    deadline_fd = -1;
    return deadline_passed;
}

void cc_worker_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: accept() must see EINTR */
    sa.sa_handler = on_graceful;
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = on_reopen;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_read_deadline;
    sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART either: the read in progress must end */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGINT, &sa, NULL); /* the master decides; a terminal ^C reaches the whole group */
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL); /* fast stop: die at once */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int cc_worker_stop_requested(void) { return stop_requested; }
void cc_worker_request_stop(void) { stop_requested = 1; }

int cc_worker_take_reopen(void) {
    if (!reopen_requested) return 0;
    reopen_requested = 0;
    return 1;
}

int cc_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, sig); }

static long unix_queue_length(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return -1;
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = 1 << 10; /* TCP_LISTEN */
    msg.req.udiag_ino = (unsigned int)st.st_ino;
    msg.req.udiag_show = UDIAG_SHOW_RQLEN;
    msg.req.udiag_cookie[0] = (unsigned int)-1;
    msg.req.udiag_cookie[1] = (unsigned int)-1;
    if (send(nl, &msg, sizeof msg, 0) < 0) { close(nl); return -1; }
    char buf[8192];
    ssize_t n = recv(nl, buf, sizeof buf, 0);
    close(nl);
    if (n <= 0) return -1;
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (!NLMSG_OK(h, (unsigned)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY) return -1;
    struct unix_diag_msg *m = NLMSG_DATA(h);
    struct rtattr *attr = (struct rtattr *)(m + 1);
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (; RTA_OK(attr, len); attr = RTA_NEXT(attr, len)) {
        if (attr->rta_type == UNIX_DIAG_RQLEN) {
            struct unix_diag_rqlen *rq = RTA_DATA(attr);
            return (long)rq->udiag_rqueue;
        }
    }
    return -1;
}

long cc_listen_queue_length(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -1;
    if (ss.ss_family == AF_UNIX) return unix_queue_length(fd);
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
        struct tcp_info info;
        socklen_t il = sizeof info;
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &il) != 0) return -1;
        return (long)info.tcpi_unacked; /* for a listener: the accept queue */
    }
    return -1;
}

int cc_peer_hung_up(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = { .fd = fd, .events = POLLRDHUP, .revents = 0 };
    if (poll(&p, 1, 0) != 1) return 0;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

int cc_socket_is_tcp(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
    return ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
}

/* SO_RCVTIMEO: on a listener it bounds a blocking accept(), on a
   connection a blocking read. */
static int set_receive_timeout(int fd, long millis) {
    struct timeval tv = { millis / 1000, (millis % 1000) * 1000 };
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

int cc_accept_connection(int listen_fd, int is_tcp) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return fd;
    /* A connection that sends nothing would hold this worker in a read the
       master cannot see (the status file says idle until a request is
       read): libfcgi's own accept gave up on such a peer after 2 s, and so
       do we. nginx writes the whole request at once (it buffers bodies), so
       no read of a real request waits that long. TCP also copies the
       listener's SO_RCVTIMEO (the idle wake-up), which this replaces. */
    set_receive_timeout(fd, 2000);
    if (is_tcp) {
        /* What libfcgi's own accept did for TCP: no replies to wait for, so no Nagle. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* ---- access-log line buffer ------------------------------------------------
   Kept in C memory so that a fatal-signal handler can still write it out. */

struct cc_linebuf {
    char *data;
    size_t capacity;
    size_t limit;                    /* <= capacity: PIPE_BUF for pipes */
    volatile size_t length;          /* only whole lines below it */
    volatile int fd;
    volatile sig_atomic_t writing;   /* a flush is between write and reset */
};

cc_linebuf *cc_linebuf_create(size_t capacity) {
    cc_linebuf *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->data = malloc(capacity ? capacity : 1);
    if (!b->data) { free(b); return NULL; }
    b->capacity = capacity;
    b->limit = capacity;
    b->fd = -1;
    return b;
}

void cc_linebuf_destroy(cc_linebuf *b) {
    if (!b) return;
    free(b->data);
    free(b);
}

void cc_linebuf_set_target(cc_linebuf *b, int fd, size_t limit) {
    b->fd = fd;
    b->limit = limit < b->capacity ? limit : b->capacity;
}

size_t cc_linebuf_length(const cc_linebuf *b) { return b->length; }
size_t cc_linebuf_limit(const cc_linebuf *b) { return b->limit; }

int cc_linebuf_append(cc_linebuf *b, const void *bytes, size_t n) {
    if (b->length + n > b->limit) return 0;
    memcpy(b->data + b->length, bytes, n);
    b->length += n; /* published after the copy: a crash handler sees whole lines only */
    return 1;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cc_linebuf_flush(cc_linebuf *b) {
    if (b->length == 0) return 0;
    int rc = 0;
    if (b->fd >= 0) {
        b->writing = 1;
        rc = write_all(b->fd, b->data, b->length);
    }
    b->length = 0; /* a failed write drops the lines, as an unbuffered write did */
    b->writing = 0;
    return rc;
}

static cc_linebuf *volatile fatal_buf = NULL;
static const int fatal_signals[] = { SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGTERM };
#define FATAL_COUNT (sizeof fatal_signals / sizeof fatal_signals[0])
static struct sigaction fatal_previous[FATAL_COUNT];

static void restore_fatal_handlers(void) {
    for (size_t i = 0; i < FATAL_COUNT; i++) sigaction(fatal_signals[i], &fatal_previous[i], NULL);
}

static void on_fatal(int sig, siginfo_t *info, void *context) {
    (void)context;
    int saved = errno;
    cc_linebuf *b = fatal_buf;
    fatal_buf = NULL;
    if (b && !b->writing && b->fd >= 0 && b->length > 0) (void)write_all(b->fd, b->data, b->length);
    restore_fatal_handlers();
    errno = saved;
    /* A fault (SIGSEGV/SIGBUS/SIGILL/SIGFPE from an instruction) happens again
       on return and reaches the previous handler, the Swift runtime's
       backtracer, with its real context. Sent signals, abort() and int3
       (SIGTRAP resumes after the instruction) are raised again instead; the
       signal stays blocked until this handler returns. */
    if (info == NULL || info->si_code <= 0 || sig == SIGTRAP || sig == SIGABRT || sig == SIGTERM) raise(sig);
}

void cc_linebuf_flush_on_fatal_signals(cc_linebuf *b) {
    fatal_buf = b;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK; /* ONSTACK: a stack overflow still gets the runtime's alternate stack */
    for (size_t i = 0; i < FATAL_COUNT; i++) sigaction(fatal_signals[i], &sa, &fatal_previous[i]);
}

void cc_linebuf_forget_on_fatal_signals(cc_linebuf *b) {
    if (fatal_buf != b) return;
    fatal_buf = NULL;
    restore_fatal_handlers();
}

int cc_set_accept_timeout(int fd, long millis) {
    return set_receive_timeout(fd, millis);
}

/* Request workers after dropping root: getresuid/getresgid are GNU
   extensions, and the saved ids are the ones a setuid(0) could restore. */
int cc_ids_all_equal(uid_t uid, gid_t gid) {
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0) return 0;
    return r == uid && e == uid && s == uid && rg == gid && eg == gid && sg == gid;
}

int cc_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }
