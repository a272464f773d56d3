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


def system_cpu():
    """(busy ticks, total ticks) over all cores from /proc/stat."""
    s = _read("/proc/stat") or ""
    f = s.splitlines()[0].split()[1:]
    v = [int(x) for x in f[:8]]
    total = sum(v)
    idle = v[3] + v[4]
    return total - idle, total


def uptime_ticks():
    s = _read("/proc/uptime") or "0"
    return float(s.split()[0]) * CLK_TCK


class CpuMonitor:
    """Samples the server's processes once a second while a phase runs and
    sums their CPU time by role, including workers that come and go."""

    def __init__(self, server, interval=1.0):
        self.server = server
        self.interval = interval
        self.ticks = {}
        self.base = {}
        self.roles = {}
        self._stop = threading.Event()
        self._thr = None

    def _sample(self, first=False):
        roles = self.server.discover()
        for pid, role in roles.items():
            st = stat(pid)
            if not st:
                continue
            key = (pid, st[3])
            if key not in self.base:
                # a process that started after we began counts from 0
                self.base[key] = st[2] if (first or st[3] < self.start_ticks) else 0
            self.ticks[key] = st[2]
            self.roles[key] = role

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self):
        self.start_ticks = uptime_ticks()
        self.sys0 = system_cpu()
        self.t0 = time.monotonic()
        self._sample(first=True)
        self._thr = threading.Thread(target=self._loop, daemon=True)
        self._thr.start()

    def stop(self):
        self._stop.set()
        if self._thr:
            self._thr.join(timeout=5)
        self._sample()
        wall = max(time.monotonic() - self.t0, 1e-9)
        sys1 = system_cpu()
        by_role = {}
        count = {}
        for key, t in self.ticks.items():
            role = self.roles[key]
            by_role[role] = by_role.get(role, 0) + (t - self.base[key])
            count[role] = count.get(role, 0) + 1
        busy = sys1[0] - self.sys0[0]
        total = max(sys1[1] - self.sys0[1], 1)
        return {
            "wall_s": round(wall, 3),
            "by_role_cpu_pct_of_one_core": {r: round(100.0 * v / CLK_TCK / wall, 1) for r, v in by_role.items()},
            "processes_seen": count,
            "server_cpu_pct_of_one_core": round(100.0 * sum(by_role.values()) / CLK_TCK / wall, 1),
            "machine_busy_pct": round(100.0 * busy / total, 1),
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
