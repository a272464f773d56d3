#ifndef CC_SUPPORT_H
#define CC_SUPPORT_H
#include <spawn.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* glibc GNU extensions that Swift cannot see without _GNU_SOURCE. */
int cc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);
int cc_pipe_cloexec(int fds[2]);

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

/* 1 when the peer of a connected socket has hung up (RDHUP/HUP/ERR). */
int cc_peer_hung_up(int fd);

/* Length of the accept queue of a listening socket (unix or TCP), or -1. */
long cc_listen_queue_length(int fd);

/* 1 if fd is a TCP (IPv4 or IPv6) socket. */
int cc_socket_is_tcp(int fd);

/* accept4(SOCK_CLOEXEC) on the listening socket; -1 with errno on failure. */
int cc_accept_connection(int listen_fd, int is_tcp);

#endif
