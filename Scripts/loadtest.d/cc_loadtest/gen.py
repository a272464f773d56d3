"""Driving the C generator: request templates, the spec file, the process,
and reading its per-request records back."""
import json
import os
import random
import struct
import subprocess
import threading
import time

from .httpc import raw_request
from .util import SetupError, log

SEQ = "@@SEQ@@@@@"  # replaced by the generator with the request's 10-digit sequence number
REC = struct.Struct("<QIIIIHHBBBB")
ERR_NAMES = {0: "ok", 1: "connect", 2: "timeout", 3: "reset", 4: "parse"}


class Route:
    """One weighted request of a mix."""

    def __init__(self, method, path, weight=1.0, name=None, body=None, headers=None, ok=None, optional=False,
                 auth="none", cls="read"):
        self.method = method.upper()
        self.path = path
        self.weight = float(weight)
        self.name = name or "%s %s" % (self.method, path)
        self.body = body
        self.headers = dict(headers or {})
        self.ok = set(ok) if ok else None
        self.optional = optional
        self.auth = auth  # none | optional | required
        self.cls = cls  # read | write | health | heavy | slow | fast | ...

    def ok_status(self, s):
        if self.ok is not None:
            return s in self.ok
        return 200 <= s < 400

    def body_bytes(self, run_id):
        if self.body is None:
            return b""
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body)
        s = json.dumps(self.body, separators=(",", ":"))
        return s.replace("{run}", run_id).encode()

    def to_json(self):
        return {"name": self.name, "method": self.method, "path": self.path, "weight": self.weight,
                "class": self.cls, "ok_status": sorted(self.ok) if self.ok else "2xx/3xx"}

    @staticmethod
    def from_json(d):
        return Route(d["method"], d["path"], d.get("weight", 1), name=d.get("name"), body=d.get("body"),
                     headers=d.get("headers"), ok=d.get("ok"), optional=d.get("optional", False),
                     auth=d.get("auth", "none"), cls=d.get("class", "read"))


class Group:
    """Traffic of one kind: closed loop (users + think time) or open loop (rate)."""

    def __init__(self, name, routes, users=None, think_ms=0.0, think_dist="exp", rate=None, max_conns=None,
                 poisson=False, start_s=0.0, stop_s=0.0):
        self.name = name
        self.routes = routes
        self.users = users
        self.think_ms = think_ms
        self.think_dist = think_dist
        self.rate = rate
        self.max_conns = max_conns
        self.poisson = poisson
        self.start_s = start_s
        self.stop_s = stop_s

    @property
    def open(self):
        return self.rate is not None

    def describe(self):
        if self.open:
            return "open loop %.0f req/s (max %d connections%s)" % (
                self.rate, self.max_conns, ", Poisson" if self.poisson else "")
        return "closed loop %d users, think %s ms (%s)" % (self.users, ("%g" % self.think_ms), self.think_dist)

    def to_json(self):
        return {"name": self.name, "mode": "open" if self.open else "closed", "users": self.users,
                "think_ms": self.think_ms, "think_dist": self.think_dist, "rate": self.rate,
                "max_conns": self.max_conns, "routes": [r.to_json() for r in self.routes]}


class GenRun:
    def __init__(self, proc, workdir, out_prefix, endpoints, groups, duration, started_wall, spec_path):
        self.proc = proc
        self.workdir = workdir
        self.out_prefix = out_prefix
        self.endpoints = endpoints
        self.groups = groups
        self.duration = duration
        self.started_wall = started_wall
        self.spec_path = spec_path
        self.last_progress = (0.0, 0, 0)
        self.summary = None
        self.cpu_user = self.cpu_sys = 0.0
        self.wall = 0.0
        self._t0 = time.monotonic()
        self._stderr_lines = []
        self._thr = threading.Thread(target=self._read_stderr, daemon=True)
        self._thr.start()

    def _read_stderr(self):
        next_log = 10.0
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            if line.startswith("progress "):
                try:
                    _, t, n, e = line.split()
                    self.last_progress = (float(t), int(n), int(e))
                    if float(t) >= next_log:
                        log("  t=%4.0fs  %d requests, %d errors" % (float(t), int(n), int(e)))
                        next_log += 10.0 if self.duration <= 120 else 60.0
                except ValueError:
                    pass
            else:
                self._stderr_lines.append(line)

    def _reap(self, block=False):
        """Reap the generator with wait4 (not Popen.poll) to get its CPU time."""
        if self.proc.returncode is not None:
            return True
        try:
            pid, status, ru = os.wait4(self.proc.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            self.proc.returncode = self.proc.returncode if self.proc.returncode is not None else -1
            return True
        if not pid:
            return False
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_user, self.cpu_sys = ru.ru_utime, ru.ru_stime
        self.wall = time.monotonic() - self._t0
        return True

    def running(self):
        return not self._reap()

    def elapsed(self):
        return time.monotonic() - self._t0

    def stop(self):
        if not self._reap():
            self.proc.terminate()

    def wait(self, limit):
        """Wait for the generator (it bounds itself; `limit` is a safety net)."""
        deadline = time.monotonic() + limit
        while not self._reap() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.proc.returncode is None:
            self.proc.kill()
            self._reap(block=True)
            raise SetupError("the load generator did not stop in time")
        out = self.proc.stdout.read()
        self._thr.join(timeout=2)
        if self.proc.returncode != 0:
            raise SetupError("load generator failed (exit %s): %s" % (self.proc.returncode,
                                                                     "\n".join(self._stderr_lines[-5:])))
        try:
            self.summary = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise SetupError("load generator printed no summary: %r" % out[-300:])
        return self.summary

    def record_files(self):
        d = os.path.dirname(self.out_prefix)
        b = os.path.basename(self.out_prefix) + "."
        return sorted(os.path.join(d, f) for f in os.listdir(d) if f.startswith(b))

    def records(self):
        """Yield (intended_us, queue_us, service_us, seq, bytes, endpoint, status, err, group, flags)."""
        for p in self.record_files():
            with open(p, "rb") as f:
                while True:
                    chunk = f.read(REC.size * 65536)
                    if not chunk:
                        break
                    for r in REC.iter_unpack(chunk):
                        yield r[:10]

    def cleanup(self, keep):
        if keep:
            return
        for p in self.record_files():
            try:
                os.unlink(p)
            except OSError:
                pass


def start(binary, target, groups, duration, timeout, workdir, run_id, threads=1, seed=None):
    """Write templates and spec for `groups`, start the generator, return a GenRun."""
    os.makedirs(workdir, exist_ok=True)
    endpoints = []
    lines = ["addr %s %d" % (target.ip, target.port), "duration %.3f" % duration, "timeout %.3f" % timeout,
             "threads %d" % threads, "seed %d" % (seed if seed is not None else random.randrange(1, 2 ** 31)),
             "progress 1", "out %s" % os.path.join(workdir, "records")]
    for gi, g in enumerate(groups):
        if g.open:
            lines.append("group open rate=%.6f max_conns=%d dist=%s start=%.3f stop=%.3f" % (
                g.rate, g.max_conns or 1000, "poisson" if g.poisson else "const", g.start_s, g.stop_s))
        else:
            lines.append("group closed users=%d think_ms=%.3f dist=%s start=%.3f stop=%.3f" % (
                g.users, g.think_ms, g.think_dist, g.start_s, g.stop_s))
        for r in g.routes:
            if r.weight <= 0:
                continue
            ep = len(endpoints)
            endpoints.append((r, gi))
            headers = dict(r.headers)
            if r.auth != "none" and target.token:
                headers["Authorization"] = "Bearer " + target.token
            body = r.body_bytes(run_id)
            if body and "Content-Type" not in headers:
                headers["Content-Type"] = "application/json"
            raw = raw_request(r.method, target, r.path.replace("{run}", run_id), headers, body)
            tp = os.path.join(workdir, "tpl_%d.http" % ep)
            with open(tp, "wb") as f:
                f.write(raw)
            lines.append("tpl %d %.6f %d %s" % (gi, r.weight, ep, tp))
    spec = os.path.join(workdir, "spec.txt")
    with open(spec, "w") as f:
        f.write("\n".join(lines) + "\n")
    for p in os.listdir(workdir):
        if p.startswith("records."):
            os.unlink(os.path.join(workdir, p))
    proc = subprocess.Popen([binary, spec], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return GenRun(proc, workdir, os.path.join(workdir, "records"), endpoints, groups, duration, time.time(), spec)
