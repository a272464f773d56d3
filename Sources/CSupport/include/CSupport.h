#ifndef CC_SUPPORT_H
#define CC_SUPPORT_H
#include <spawn.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* glibc GNU extensions that Swift cannot see without _GNU_SOURCE. */
int cc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);

/* Services (the supervisor). PR_SET_CHILD_SUBREAPER on the caller, so
   orphans of a service (a daemon that double-forks) become its children. */
int cc_set_child_subreaper(void);
/* fork + exec of one service: joins a cgroup first when cgroup_procs_fd
   (an open cgroup.procs, or -1) is given, a new session (its pid is its
   process group), signals reset, RLIMIT_NOFILE when nofile > 0, groups/gid/uid when set_ids,
   chdir, stdin /dev/null, stdout and stderr to out_fd, every other fd closed,
   execvpe (PATH from envp). Returns the pid, or -1 with *err set to the
   errno of whichever step failed (the child's exec included). */
pid_t cc_spawn_service(const char *path, char *const argv[], char *const envp[], const char *cwd,
                       uid_t uid, gid_t gid, const gid_t *groups, int ngroups, int set_ids,
                       long nofile, int out_fd, int cgroup_procs_fd, int *err);

/* pidfd_open(2) and pidfd_send_signal(2) by syscall number: a signal that
   reaches the process the descriptor was opened on, never a later process
   given the same pid. -1 with errno set on failure. */
int cc_pidfd_open(pid_t pid);
int cc_pidfd_send_signal(int pidfd, int sig);

/* The supervisor's signals as one descriptor for its poll set: CHLD, QUIT
   and TERM are blocked and read from the returned signalfd (non-blocking,
   close-on-exec; -1 with errno on failure); INT, HUP and PIPE are ignored.
   A service's child resets its mask (cc_spawn_service). */
int cc_supervisor_signalfd(void);
/* Drains the signalfd: CC_SUPERVISOR_CHILD when a SIGCHLD came (several
   exits may share one), CC_SUPERVISOR_STOP when QUIT or TERM did. */
#define CC_SUPERVISOR_CHILD 1
#define CC_SUPERVISOR_STOP 2
int cc_supervisor_read_signals(int fd);

/* Wait-status macros are not imported into Swift. */
int cc_wifexited(int status);
int cc_wexitstatus(int status);
int cc_wifsignaled(int status);
int cc_wtermsig(int status);

/* Worker signal handling: async-signal-safe flags, set from C handlers. */
void cc_worker_install_signals(void);
int cc_worker_stop_requested(void);
void cc_worker_request_stop(void);
int cc_worker_take_reopen(void);
int cc_set_parent_death_signal(int sig);

/* Privilege drop: 1 when the real, effective and saved uid and gid all
   equal uid and gid (nothing left to setuid back to), else 0. */
int cc_ids_all_equal(uid_t uid, gid_t gid);
/* PR_SET_NO_NEW_PRIVS: no exec may gain privileges (setuid binaries, file
   capabilities) from here on; inherited by children. */
int cc_set_no_new_privs(void);

/* A deadline on reading one request from connection `fd`: after `millis` (> 0)
   SIGALRM (handled by cc_worker_install_signals) interrupts the read in
   progress and shuts the read side of `fd`, so every later read sees EOF.
   Returns setitimer's result. */
int cc_read_deadline_arm(int fd, long millis);
/* Cancels the deadline; 1 if it had already passed (the request read was
   cut short), else 0. */
int cc_read_deadline_disarm(void);

/* 1 when the peer of a connected socket has hung up (RDHUP/HUP/ERR). */
int cc_peer_hung_up(int fd);

/* Length of the accept queue of a listening socket (unix or TCP), or -1. */
long cc_listen_queue_length(int fd);

/* 1 if fd is a TCP (IPv4 or IPv6) socket. */
int cc_socket_is_tcp(int fd);

/* accept4(SOCK_CLOEXEC) on the listening socket; -1 with errno on failure. */
int cc_accept_connection(int listen_fd, int is_tcp);

/* SO_RCVTIMEO on a listening socket: a blocking accept() then fails with
   EAGAIN after `millis` (0 = never). Linux honours it for AF_UNIX and TCP. */
int cc_set_accept_timeout(int fd, long millis);

/* A buffer of whole log lines, flushed with one write(2). */
typedef struct cc_linebuf cc_linebuf;
cc_linebuf *cc_linebuf_create(size_t capacity);
void cc_linebuf_destroy(cc_linebuf *b);
/* Where flushes go, and how many bytes one flush may hold (<= capacity). */
void cc_linebuf_set_target(cc_linebuf *b, int fd, size_t limit);
size_t cc_linebuf_length(const cc_linebuf *b);
size_t cc_linebuf_limit(const cc_linebuf *b);
/* 1 if the line was appended; 0 if it does not fit (flush first). */
int cc_linebuf_append(cc_linebuf *b, const void *bytes, size_t n);
/* Writes and empties the buffer; -1 if the write failed (lines dropped). */
int cc_linebuf_flush(cc_linebuf *b);
/* Flush b from a handler for SIGILL/TRAP/ABRT/BUS/FPE/SEGV/TERM, which then
   hands the signal to the handler that was there before (once). */
void cc_linebuf_flush_on_fatal_signals(cc_linebuf *b);
void cc_linebuf_forget_on_fatal_signals(cc_linebuf *b);

#endif
