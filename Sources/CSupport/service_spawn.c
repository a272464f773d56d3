#include "CSupport.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

int cc_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1); }

int cc_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int cc_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

/* Between fork and exec the child calls only async-signal-safe functions
   (the supervisor may have threads). On failure it writes errno to the
   cloexec pipe and exits 127; the parent reads 0 bytes on a successful exec. */
pid_t cc_spawn_service(const char *path, char *const argv[], char *const envp[], const char *cwd,
                       uid_t uid, gid_t gid, const gid_t *groups, int ngroups, int set_ids,
                       long nofile, int out_fd, int cgroup_procs_fd, int *err) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) { *err = errno; return -1; }
    pid_t pid = fork();
    if (pid < 0) { *err = errno; close(p[0]); close(p[1]); return -1; }
    if (pid == 0) {
        int e = 0;
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < 32; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
        /* Joins the service's cgroup before anything can fork: "0" names the writer (cgroup-v2.rst). */
        if (cgroup_procs_fd >= 0 && write(cgroup_procs_fd, "0", 1) != 1) e = errno;
        if (!e && setsid() < 0) e = errno;
        if (!e && nofile > 0) {
            struct rlimit rl = { (rlim_t)nofile, (rlim_t)nofile };
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) e = errno;
        }
        if (!e && set_ids) {
            if (setgroups((size_t)ngroups, groups) != 0 || setgid(gid) != 0 || setuid(uid) != 0) e = errno;
        }
        if (!e && chdir(cwd) != 0) e = errno;
        if (!e) {
            int null = open("/dev/null", O_RDONLY);
            if (null < 0 || dup2(null, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) e = errno;
        }
        if (!e) {
            syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
            execvpe(path, argv, envp);
            e = errno;
        }
        (void)!write(p[1], &e, sizeof e);
        _exit(127);
    }
    close(p[1]);
    int child_err = 0;
    ssize_t n;
    do { n = read(p[0], &child_err, sizeof child_err); } while (n < 0 && errno == EINTR);
    close(p[0]);
    if (n == sizeof child_err) {
        int st;
        waitpid(pid, &st, 0);
        *err = child_err;
        return -1;
    }
    return pid;
}

int cc_supervisor_signalfd(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL); /* the master decides; a terminal ^C reaches the whole group */
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    /* Blocked, so they stay pending for the signalfd; threads started later inherit the mask. */
    if (sigprocmask(SIG_SETMASK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int cc_supervisor_read_signals(int fd) {
    struct signalfd_siginfo info[8];
    int seen = 0;
    ssize_t n;
    while ((n = read(fd, info, sizeof info)) > 0) {
        for (size_t i = 0; i < (size_t)n / sizeof info[0]; i++) {
            if (info[i].ssi_signo == SIGCHLD) seen |= CC_SUPERVISOR_CHILD;
            else seen |= CC_SUPERVISOR_STOP;
        }
    }
    return seen;
}
