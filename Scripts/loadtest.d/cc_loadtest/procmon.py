"""Finding the server's processes and reading their figures from /proc:
CPU time (beside the generator's), RSS, open fds and threads (soak)."""
import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def stat(pid):
    """(comm, ppid, utime+stime ticks, starttime ticks, threads) or None."""
    s = _read("/proc/%d/stat" % pid)
    if not s:
        return None
    r = s.rfind(")")
    comm = s[s.find("(") + 1:r]
    f = s[r + 2:].split()
    # fields after comm: state(0) ppid(1) ... utime(11) stime(12) ... num_threads(17) ... starttime(19)
    return comm, int(f[1]), int(f[11]) + int(f[12]), int(f[19]), int(f[17])


def rss_kb(pid):
    s = _read("/proc/%d/statm" % pid)
    if not s:
        return None
    return int(s.split()[1]) * PAGE // 1024


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children(pid):
    out = []
    tdir = "/proc/%d/task" % pid
    try:
        tasks = os.listdir(tdir)
        found = False
        for t in tasks:
            s = _read("%s/%s/children" % (tdir, t))
            if s is not None:
                found = True
                out.extend(int(x) for x in s.split())
        if found:
            return sorted(set(out))
    except OSError:
        return []
    for p in all_pids():
        st = stat(p)
        if st and st[1] == pid:
            out.append(p)
    return out


def listening_inodes(port):
    inodes = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        s = _read(fn)
        if not s:
            continue
        for line in s.splitlines()[1:]:
            f = line.split()
            if len(f) < 10 or f[3] != "0A":
                continue
            if int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    return inodes


def pids_with_sockets(inodes):
    want = {"socket:[%s]" % i for i in inodes}
    pids = []
    if not want:
        return pids
    for p in all_pids():
        d = "/proc/%d/fd" % p
        try:
            for fd in os.listdir(d):
                try:
                    if os.readlink("%s/%s" % (d, fd)) in want:
                        pids.append(p)
                        break
                except OSError:
                    pass
        except OSError:
            pass
    return pids


def read_pidfile(path):
    s = _read(path)
    if not s:
        return None
    try:
        pid = int(s.strip().split()[0])
    except (ValueError, IndexError):
        return None
    return pid if alive(pid) else None


class Server:
    """The processes behind the URL: nginx (owners of the listening socket)
    and the pool (master from the pid file, workers = its children)."""

    def __init__(self, port, state_dir=None, master_pid=None, master_pidfile=None, extra_pids=()):
        self.port = port
        self.state_dir = state_dir
        self.master_pidfile = master_pidfile or (os.path.join(state_dir, "run", "master.pid") if state_dir else None)
        self.fixed_master = master_pid
        self.extra = list(extra_pids)
        self.workers_cache = set()

    def master(self):
        if self.fixed_master:
            return self.fixed_master if alive(self.fixed_master) else None
        if self.master_pidfile:
            return read_pidfile(self.master_pidfile)
        return None

    def workers(self):
        m = self.master()
        if not m:
            return []
        mexe = exe(m)
        out = []
        for c in children(m):
            ce = exe(c)
            if mexe and ce and ce.replace(" (deleted)", "") != mexe.replace(" (deleted)", ""):
                continue  # a helper the master runs, not a worker
            out.append(c)
        return out

    def nginx(self):
        pids = set(pids_with_sockets(listening_inodes(self.port)))
        m = self.master()
        pool = {m} if m else set()
        return sorted(p for p in pids if p not in pool and p not in self.workers_cache)

    def discover(self):
        """pid -> role (master, worker, nginx, server)."""
        roles = {}
        m = self.master()
        self.workers_cache = set(self.workers()) if m else set()
        if m:
            roles[m] = "master"
            for w in self.workers_cache:
                roles[w] = "worker"
        for p in self.nginx():
            st = stat(p)
            roles.setdefault(p, "nginx" if st and "nginx" in st[0] else "server")
            if st and "nginx" in st[0]:
                for c in children(p):  # nginx's workers, cache manager (not a log filter it pipes to)
                    if "nginx" in (stat(c) or ("",))[0]:
                        roles.setdefault(c, "nginx")
        for p in self.extra:
            if alive(p):
                roles.setdefault(p, "server")
        return roles


def cpu_times(pid):
    """(ppid, own ticks, reaped children's ticks) from /proc/<pid>/stat or
    None: utime+stime (fields 14-15) and cutime+cstime (16-17), which holds
    the whole CPU time of every child the process has waited for (and of
    theirs), in clock ticks."""
    s = _read("/proc/%d/stat" % pid)
    if not s:
        return None
    f = s[s.rfind(")") + 2:].split()
    return int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14])


def process_table():
    """pid -> (ppid, own ticks, reaped children's ticks) of every process."""
    out = {}
    for p in all_pids():
        t = cpu_times(p)
        if t:
            out[p] = t
    return out


def system_cpu():
    """/proc/stat's first line: ticks over all cores by state (user, nice,
    system, idle, iowait, irq, softirq, steal; guest time is inside user)."""
    s = _read("/proc/stat") or ""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, (int(x) for x in s.splitlines()[0].split()[1:9])))


def busy_ticks(cpu):
    return sum(v for k, v in cpu.items() if k not in ("idle", "iowait"))


# How the ticks of one process are split: its own time goes to its part, and
# the time of children it has reaped to the part its children belong to.
SERVER_CHILD_PART = {"master": "worker"}


def classify(table, roles, tool_pid):
    """pid -> (own part, reaped children's part). Parts: the server's roles
    (master, worker, nginx, server), 'harness' (this process), 'generator'
    (its descendants: the load generator, compilers), 'other' (the rest of
    the machine). A process inherits the part of its nearest ancestor that
    has one, so a worker's helper counts as worker."""
    memo = {}

    def own(pid, depth=0):
        if pid in memo:
            return memo[pid]
        if pid in roles:
            part = roles[pid]
        elif pid == tool_pid:
            part = "harness"
        elif pid in table and depth < 64:
            parent = own(table[pid][0], depth + 1)
            part = {"harness": "generator", "master": "worker"}.get(parent, parent)
        else:
            part = "other"
        memo[pid] = part
        return part

    out = {}
    for pid in table:
        part = own(pid)
        child = "generator" if part == "harness" else SERVER_CHILD_PART.get(part, part)
        out[pid] = (part, child)
    return out


def tally(table, parts):
    """part -> ticks: own and reaped children's time of each live process."""
    sums = {}
    for pid, (_, own_t, children_t) in table.items():
        own_part, child_part = parts[pid]
        sums[own_part] = sums.get(own_part, 0) + own_t
        sums[child_part] = sums.get(child_part, 0) + children_t
    return sums


class CpuMonitor:
    """CPU time of the server's processes by role, of this harness and its
    generator, and of everything else, over one phase, beside the machine's
    busy time from /proc/stat, all in % of one core.

    Two snapshots of every process, no sampling in between: a process's
    time moves into its parent's cutime/cstime when it is reaped, so the sum
    of own + reaped children's time over live processes only grows by the
    CPU used in between, whoever used it, even by workers that were started,
    recycled or killed (and reaped by the master) during the phase. The
    parts therefore add up to the machine's busy time except for what the
    kernel spends outside any process (irq, softirq, steal) and children
    reaped by nobody yet."""

    def __init__(self, server, tool_pid=None):
        self.server = server
        self.tool_pid = tool_pid or os.getpid()

    def _snapshot(self):
        roles = self.server.discover()
        return process_table(), roles

    def start(self):
        self.t0 = time.monotonic()
        self.sys0 = system_cpu()
        self.table0, self.roles0 = self._snapshot()

    def stop(self):
        table1, roles1 = self._snapshot()
        sys1 = system_cpu()
        wall = max(time.monotonic() - self.t0, 1e-9)
        # One role per pid over the phase: a worker that exited is still a
        # worker, and a master's pid stays the master's.
        roles = dict(self.roles0)
        roles.update(roles1)
        before = tally(self.table0, classify(self.table0, roles, self.tool_pid))
        after = tally(table1, classify(table1, roles, self.tool_pid))
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}

        def pct(ticks):
            return round(100.0 * ticks / CLK_TCK / wall, 1)

        server_roles = sorted(k for k in delta if k not in ("harness", "generator", "other"))
        by_role = {r: pct(delta[r]) for r in server_roles}
        seen = {}
        for pid, role in roles.items():
            if pid in self.table0 or pid in table1:
                seen[role] = seen.get(role, 0) + 1
        sysd = {k: sys1[k] - self.sys0[k] for k in sys1}
        busy = busy_ticks(sysd)
        total = max(sum(sysd.values()), 1)
        parts = sum(delta.values())
        return {
            "wall_s": round(wall, 3),
            "by_role_cpu_pct_of_one_core": by_role,
            "processes_seen": seen,
            "server_cpu_pct_of_one_core": pct(sum(delta[r] for r in server_roles)),
            "harness_cpu_pct_of_one_core": pct(delta.get("harness", 0)),
            "generator_cpu_pct_of_one_core": pct(delta.get("generator", 0)),
            "other_cpu_pct_of_one_core": pct(delta.get("other", 0)),
            "parts_cpu_pct_of_one_core": pct(parts),
            "kernel_cpu_pct_of_one_core": pct(sysd["irq"] + sysd["softirq"] + sysd["steal"]),
            "machine_busy_cpu_pct_of_one_core": pct(busy),
            "machine_busy_pct": round(100.0 * busy / total, 1),
            "accounted_pct": round(100.0 * parts / busy, 1) if busy > 0 else None,
            "cores": os.cpu_count(),
        }


class ResourceSampler:
    """RSS, fds and threads of the master, every worker and nginx, every
    `interval` seconds (soak)."""

    def __init__(self, server, interval):
        self.server = server
        self.interval = interval
        self.samples = []  # (t, pid, role, rss_kb, fds, threads)
        self._stop = threading.Event()
        self._thr = None

    def sample(self):
        t = time.monotonic() - self.t0
        for pid, role in self.server.discover().items():
            st = stat(pid)
            r = rss_kb(pid)
            n = fd_count(pid)
            if st is None or r is None or n is None:
                continue
            self.samples.append((round(t, 2), pid, role, r, n, st[4]))

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self):
        self.t0 = time.monotonic()
        self.sample()
        self._thr = threading.Thread(target=self._loop, daemon=True)
        self._thr.start()

    def stop(self):
        self._stop.set()
        if self._thr:
            self._thr.join(timeout=5)
        self.sample()
        return self.samples
