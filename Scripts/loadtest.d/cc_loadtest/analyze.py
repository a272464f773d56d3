"""Turning generator records into figures: per endpoint, overall, over time.

Latency is always the response time measured from the request's INTENDED
send time (queue_us + service_us): for open-loop groups that includes any
wait for a free connection, so queueing cannot hide (no coordinated
omission). For closed-loop users the intended time is the end of the think
time, so it equals the actual send time up to scheduling jitter.
Percentiles are nearest-rank over every request that got an HTTP response
(2xx..5xx); requests without one are counted by error kind instead."""
from array import array
from collections import Counter, defaultdict

from .gen import ERR_NAMES
from .util import percentile, r3

KINDS = ("connect", "timeout", "reset", "parse", "http")


def lat_stats(us_sorted):
    if not us_sorted:
        return {"p50": None, "p90": None, "p95": None, "p99": None, "p999": None, "max": None, "mean": None}
    n = len(us_sorted)
    return {
        "p50": r3(percentile(us_sorted, 50) / 1000.0),
        "p90": r3(percentile(us_sorted, 90) / 1000.0),
        "p95": r3(percentile(us_sorted, 95) / 1000.0),
        "p99": r3(percentile(us_sorted, 99) / 1000.0),
        "p999": r3(percentile(us_sorted, 99.9) / 1000.0),
        "max": r3(us_sorted[-1] / 1000.0),
        "mean": r3(sum(us_sorted) / n / 1000.0),
    }


class Result:
    """Figures of one generator run (one phase of a scenario)."""

    def __init__(self, run, bucket_s=None):
        self.run = run
        self.duration = run.duration
        if bucket_s is None:
            bucket_s = 1.0 if run.duration <= 300 else max(1.0, round(run.duration / 300.0))
        self.bucket_s = bucket_s
        eps = run.endpoints
        n = len(eps)
        self.lat = [array("L") for _ in range(n)]
        self.svc = [array("L") for _ in range(n)]
        self.count = [0] * n
        self.ok = [0] * n
        self.errk = [Counter() for _ in range(n)]
        self.http = [Counter() for _ in range(n)]
        self.statuses = [Counter() for _ in range(n)]
        self.bytes_sum = [0] * n
        self.bytes_min = [None] * n
        self.bytes_max = [0] * n
        self.retries = 0
        self.new_conns = 0
        self.tl_count = Counter()
        self.tl_ok = Counter()
        self.tl_err = defaultdict(Counter)
        self.tl_lat = defaultdict(lambda: array("L"))
        self.acked = defaultdict(set)  # endpoint -> seqs answered with a success status
        self.unacked = defaultdict(set)  # endpoint -> seqs sent without a success answer
        write_eps = {i for i, (r, _) in enumerate(eps) if r.cls == "write"}
        okf = [r.ok_status for r, _ in eps]
        b = self.bucket_s
        for (intended, q, s, seq, nbytes, ep, status, err, grp, flags) in run.records():
            if ep >= n:
                continue
            rt = q + s
            self.count[ep] += 1
            endb = int((intended + rt) / 1e6 / b)
            startb = int(intended / 1e6 / b)
            self.tl_count[endb] += 1
            if flags & 1:
                self.retries += 1
            if flags & 2:
                self.new_conns += 1
            if err == 0:
                self.statuses[ep][status] += 1
                self.lat[ep].append(rt)
                self.svc[ep].append(s)
                self.tl_lat[(ep, startb)].append(rt)
                self.bytes_sum[ep] += nbytes
                if self.bytes_min[ep] is None or nbytes < self.bytes_min[ep]:
                    self.bytes_min[ep] = nbytes
                if nbytes > self.bytes_max[ep]:
                    self.bytes_max[ep] = nbytes
                if okf[ep](status):
                    self.ok[ep] += 1
                    self.tl_ok[endb] += 1
                    if ep in write_eps:
                        self.acked[ep].add(seq)
                    continue
                self.errk[ep]["http"] += 1
                self.http[ep][status] += 1
                self.tl_err[endb]["http"] += 1
            else:
                k = ERR_NAMES.get(err, "reset")
                self.errk[ep][k] += 1
                self.tl_err[endb][k] += 1
            if ep in write_eps:
                self.unacked[ep].add(seq)

    # ------------------------------------------------------------------
    def endpoint_ids(self, pred=None):
        return [i for i, (r, g) in enumerate(self.run.endpoints) if pred is None or pred(r, g)]

    def summary(self, ids=None):
        """Aggregate figures over the endpoints `ids` (all by default)."""
        if ids is None:
            ids = list(range(len(self.run.endpoints)))
        reqs = sum(self.count[i] for i in ids)
        ok = sum(self.ok[i] for i in ids)
        errk = Counter()
        http = Counter()
        for i in ids:
            errk.update(self.errk[i])
            http.update(self.http[i])
        lat = sorted(x for i in ids for x in self.lat[i])
        svc = sorted(x for i in ids for x in self.svc[i])
        d = max(self.duration, 1e-9)
        return {
            "requests": reqs,
            "ok": ok,
            "success_pct": r3(100.0 * ok / reqs) if reqs else None,
            "errors": {k: errk.get(k, 0) for k in KINDS},
            "errors_total": reqs - ok,
            "http_error_status": {str(k): v for k, v in sorted(http.items())},
            "timeouts": errk.get("timeout", 0),
            "timeouts_pct": r3(100.0 * errk.get("timeout", 0) / reqs) if reqs else None,
            "throughput_rps": r3(reqs / d),
            "ok_rps": r3(ok / d),
            "latency_ms": lat_stats(lat),
            "service_ms": lat_stats(svc),
        }

    def endpoints(self):
        out = []
        for i, (r, gi) in enumerate(self.run.endpoints):
            lat = sorted(self.lat[i])
            c = self.count[i]
            out.append({
                "endpoint": r.name,
                "group": self.run.groups[gi].name,
                "class": r.cls,
                "requests": c,
                "ok": self.ok[i],
                "success_pct": r3(100.0 * self.ok[i] / c) if c else None,
                "errors": {k: self.errk[i].get(k, 0) for k in KINDS},
                "http_error_status": {str(k): v for k, v in sorted(self.http[i].items())},
                "statuses": {str(k): v for k, v in sorted(self.statuses[i].items())},
                "timeouts": self.errk[i].get("timeout", 0),
                "latency_ms": lat_stats(lat),
                "bytes_mean": round(self.bytes_sum[i] / len(lat)) if lat else None,
                "bytes_min": self.bytes_min[i],
                "bytes_max": self.bytes_max[i],
            })
        return out

    def window_rps(self, window_s=10.0, ids=None):
        """Completed requests per second in consecutive windows over the run
        (the last partial window is dropped)."""
        b = self.bucket_s
        per = max(1, int(round(window_s / b)))
        nb = int(self.duration / b)
        res = []
        for w0 in range(0, nb - per + 1, per):
            n = sum(self.tl_count.get(k, 0) for k in range(w0, w0 + per))
            res.append(n / (per * b))
        if not res and nb:
            res.append(sum(self.tl_count.get(k, 0) for k in range(nb)) / (nb * b))
        return res

    def timeline(self):
        b = self.bucket_s
        nb = max(1, int(self.duration / b))  # the drain after the end is left out of the curves
        t = [round(k * b, 3) for k in range(nb)]
        eps = {}
        for i, (r, gi) in enumerate(self.run.endpoints):
            p = {"p50": [], "p95": [], "p99": []}
            for k in range(nb):
                v = sorted(self.tl_lat.get((i, k), ()))
                for key, q in (("p50", 50), ("p95", 95), ("p99", 99)):
                    x = percentile(v, q)
                    p[key].append(None if x is None else round(x / 1000.0, 3))
            eps[r.name] = p
        return {
            "bucket_s": b,
            "t": t,
            "rps": [round(self.tl_count.get(k, 0) / b, 2) for k in range(nb)],
            "ok_rps": [round(self.tl_ok.get(k, 0) / b, 2) for k in range(nb)],
            "errors": {kind: [self.tl_err[k].get(kind, 0) for k in range(nb)] for kind in KINDS},
            "endpoints": eps,
        }

    def to_json(self, with_timeline=True):
        d = {
            "duration_s": self.duration,
            "groups": [g.to_json() for g in self.run.groups],
            "overall": self.summary(),
            "endpoints": self.endpoints(),
            "client_retries_on_stale_keepalive": self.retries,
            "new_connections": self.new_conns,
            "generator": {
                "cpu_user_s": r3(self.run.cpu_user),
                "cpu_sys_s": r3(self.run.cpu_sys),
                "wall_s": r3(self.run.wall),
                "cpu_pct_of_one_core": r3(100.0 * (self.run.cpu_user + self.run.cpu_sys) / max(self.run.wall, 1e-9)),
                "threads": (self.run.summary or {}).get("threads"),
            },
        }
        if with_timeline:
            d["timeline"] = self.timeline()
        return d
