"""reload-storm: `nginx -s reload` under thousands of live subscribers.

nchan closes every subscriber on a reload; browsers' clients reconnect at once
(with back-off and jitter), and with CC_PUBLIC_READ=false every handshake is
one authorize request to the main pool. The scenario holds --ws + --sse
reconnecting subscribers (subscriber.c --reconnect) beside an HTTP load,
reloads nginx --reloads times, and checks that every subscriber is back within
--reconnect-within seconds, that no handshake and no HTTP request got a 5xx,
and how close the pool came to its capacity (busy workers from the workers'
status files, the listen queue from `ss`)."""
import json
import os
import shutil
import subprocess
import threading
import time

from . import deps
from .gen import Group, Route
from .util import SetupError, log, r3


class PoolSampler:
    """Samples the main pool every 20 ms in a thread: busy workers (the
    workers' status files, run/workers/*.status, field 7 `B` or `I`) and,
    every 100 ms, the listen queue of run/fcgi.sock (`ss -xl`: Recv-Q is the
    queue, Send-Q the backlog)."""

    def __init__(self, state_dir):
        self.run_dir = os.path.join(state_dir, "run")
        self.sock = os.path.join(self.run_dir, "fcgi.sock")
        self.busy_max = self.queue_max = 0
        self.workers = self.backlog = None
        self._stop = threading.Event()
        self._thr = threading.Thread(target=self._loop, daemon=True)

    def _busy(self):
        d = os.path.join(self.run_dir, "workers")
        busy = n = 0
        for name in os.listdir(d) if os.path.isdir(d) else []:
            try:
                with open(os.path.join(d, name), "rb") as f:
                    parts = f.read(512).split()
            except OSError:
                continue
            if len(parts) > 6 and parts[2] == b"main":
                n += 1
                busy += parts[6] == b"B"
        return busy, n

    def _queue(self):
        try:
            out = subprocess.run(["ss", "-xlH", "src", self.sock], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, timeout=2).stdout.split()
            return int(out[2]), int(out[3])
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return None, None

    def _loop(self):
        k = 0
        while not self._stop.wait(0.02):
            busy, n = self._busy()
            self.busy_max = max(self.busy_max, busy)
            self.workers = n
            if k % 5 == 0:
                q, backlog = self._queue()
                if q is not None:
                    self.queue_max = max(self.queue_max, q)
                    self.backlog = backlog
            k += 1

    def start(self):
        if not shutil.which("ss"):
            deps.apt_install("iproute2")
        self._thr.start()
        return self

    def stop(self):
        self._stop.set()
        self._thr.join(5)


def _log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _handshake_lines(path, offset, paths):
    """The pool's access lines after `offset` for the subscriber paths: the
    handshake check (nginx's auth_request) reaches the pool as GET <the subscriber's path>."""
    keys = ['"path":"%s"' % p for p in paths]
    rows = []
    with open(path, errors="replace") as f:
        f.seek(offset)
        for line in f:
            if any(k in line for k in keys):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


# What an old nginx worker says when it exits with nchan's subscriber
# connections still open (every reload): no client sees it.
SHUTDOWN_ALERTS = ("open socket #", ": aborting")


def _nginx_errors(path, offset):
    """(lines nginx logged at [error] or worse after `offset`, apart from the
    old workers' shutdown alerts; how many of those there were)."""
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            bad = [l.strip() for l in f if any(t in l for t in ("[error]", "[crit]", "[alert]", "[emerg]"))]
    except OSError:
        return [], 0
    shutdown = [l for l in bad if "[alert]" in l and any(t in l for t in SHUTDOWN_ALERTS)]
    return [l for l in bad if l not in shutdown], len(shutdown)


def reload_storm(ctx):
    from .scenarios import on_own_stack
    if not ctx.args.start_stack:
        return _reload_storm(ctx)
    # Every handshake asks the pool only when the system channel is closed.
    os.environ["CC_PUBLIC_READ"] = "false"
    return on_own_stack(ctx, _reload_storm, " (CC_PUBLIC_READ=false)")


def _reload_storm(ctx):
    from .scenarios import SubscriberRun, _access_log, _channel_is_public, _http_5xx, _raise_nofile
    a = ctx.args
    R = ctx.report
    ctx.require_server()
    if not a.state_dir:
        raise SetupError("reload-storm needs --state-dir (nginx's -p directory is STATE_DIR/nginx) or --start-stack")
    ndir = os.path.join(a.state_dir, "nginx")
    nginx_cmd = ["nginx", "-p", ndir, "-c", os.path.join(ndir, "nginx.conf")]
    requested = a.ws + a.sse
    nofile = _raise_nofile()
    if requested + 64 > nofile:
        raise SetupError("%d subscribers need more open files than the limit here (%d)" % (requested, nofile))
    ctx.authenticate()
    if _channel_is_public(ctx):
        raise SetupError("the system channel is public: start the stack with CC_PUBLIC_READ=false (or pass "
                         "--start-stack) so that every handshake asks the pool")
    access = _access_log(ctx)
    if not access:
        raise SetupError("the pool's access log was not found (CC_ACCESS_LOG or STATE_DIR/access.log)")
    bound = a.reconnect_within
    log("reload-storm: %d WebSocket + %d SSE reconnecting subscribers, %d reload(s)" % (a.ws, a.sse, a.reloads))
    subs = SubscriberRun(deps.subscriber_binary(), ctx.target, a.ws, a.sse, a.per_ip, a.ws_path, a.sse_path,
                         extra_args=["--reconnect", str(a.reconnect_base)])
    if subs.wait_connected(max(30.0, requested / 500.0)) is None or not subs.wait_open(requested, 30.0):
        sub = subs.stop()
        raise SetupError("the subscribers did not all subscribe before the reload (%s open of %d)"
                         % (sub.get("open"), requested))
    g = Group("http", [Route("GET", "/health", 1, cls="health"), Route("GET", "/api/system/stats", 1, auth="optional")],
              rate=a.rate or 1000.0, max_conns=a.max_conns or 50, poisson=a.poisson)
    errlog = os.path.join(ndir, "error.log")
    marks = {"access": _log_size(access), "error": _log_size(errlog)}
    sampler = PoolSampler(a.state_dir).start()
    reloads = []

    def during(run):
        settle = 2.0
        for k in range(a.reloads):
            while run.running() and run.elapsed() < settle:
                time.sleep(0.05)
            t0 = time.monotonic()
            p = subprocess.run(nginx_cmd + ["-s", "reload"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=30)
            if p.returncode != 0:
                raise SetupError("nginx -s reload failed: %s" % p.stdout.strip()[-300:])
            dropped = subs.wait_open_below(requested, 10.0)
            back = subs.wait_open(requested, bound) if dropped else False
            ev = {"reload": k + 1, "t_s": r3(run.elapsed()), "dropped": dropped,
                  "all_back_s": r3(time.monotonic() - t0) if back else None, "lowest_open": subs.lowest_open}
            reloads.append(ev)
            log("  reload %d: %s; all %d back after %s s" % (
                k + 1, "subscribers dropped" if dropped else "no subscriber dropped", requested, ev["all_back_s"]))
            settle = run.elapsed() + 3.0
        return reloads

    dur = a.duration or 2.0 + a.reloads * (bound + 3.0)
    try:
        res, cpu, _ = ctx.run_phase("reload-storm", [g], dur, during=during)
    finally:
        sampler.stop()
        time.sleep(1.5)  # the workers flush their access log each second
        sub = subs.stop()
    R.add_phase("reload-storm", res, cpu)
    s = res.summary()
    rows = _handshake_lines(access, marks["access"], [a.ws_path, a.sse_path])
    by_class = {"2xx": 0, "4xx": 0, "5xx": 0}
    for r in rows:
        st = int(r.get("status", 0))
        by_class["5xx" if st >= 500 else "4xx" if st >= 400 else "2xx"] += 1
    durations = sorted(float(r.get("duration_ms", 0)) for r in rows)
    errors, shutdown_alerts = _nginx_errors(errlog, marks["error"])
    extra = {"ws": a.ws, "sse": a.sse, "reloads": reloads, "subscriber": sub, "reconnect_base_s": a.reconnect_base,
             "authorize_requests": by_class,
             "authorize_ms": {"p50": durations[len(durations) // 2] if durations else None,
                              "p99": durations[int(len(durations) * 0.99)] if durations else None,
                              "max": durations[-1] if durations else None},
             "pool": {"workers": sampler.workers, "busy_max": sampler.busy_max, "listen_queue_max": sampler.queue_max,
                      "backlog": sampler.backlog},
             "nginx_errors": errors[:20], "nginx_shutdown_alerts": shutdown_alerts}
    R.add_extra("reload_storm", extra)
    for ev in reloads:
        R.check("reload %d: subscribers dropped by nginx" % ev["reload"], 1 if ev["dropped"] else 0, "==", 1)
        R.check("reload %d: every subscriber back within %.0f s" % (ev["reload"], bound),
                ev["all_back_s"] if ev["all_back_s"] is not None else bound + 1, "<=", bound, "s")
    R.check("reloads done", len(reloads), "==", a.reloads)
    R.check("subscriptions open at the end", sub["open"], "==", requested)
    R.check("open subscriptions that got no message", sub["silent"], "==", 0)
    R.check("handshakes answered 5xx", sub["handshake_status"]["5xx"], "==", 0)
    R.check("handshakes refused 4xx (429 apart)", sub["handshake_status"]["4xx"], "==", 0)
    R.check("handshakes refused 429", sub["handshake_status"]["429"], "==", 0)
    R.check("handshakes closed unanswered (by an exiting old worker)", sub["handshake_status"]["closed_unanswered"],
            ">=", 0, gating=False)
    R.check("reconnect time (end to new handshake) max", sub["down_ms"]["max"], "<=", bound * 1000.0, "ms")
    R.check("authorize requests the pool answered 5xx", by_class["5xx"], "==", 0)
    R.check("authorize requests the pool answered, one per reconnect at least", by_class["2xx"], ">=",
            sub["reconnects"])
    R.check("nginx workers that crashed (exited on a signal)", sum("exited on signal" in l for l in errors), "==", 0)
    R.check("nginx error-log lines ([error] or worse, old workers' shutdown alerts apart)", len(errors), "==", 0)
    R.check("old nginx workers' shutdown alerts (open subscriber sockets at exit)", shutdown_alerts, ">=", 0,
            gating=False)
    if sampler.backlog:
        R.check("pool listen queue peak, under its backlog (%d)" % sampler.backlog, sampler.queue_max, "<",
                sampler.backlog)
    R.check("pool busy workers peak (of %s)" % sampler.workers, sampler.busy_max, ">=", 0, gating=False)
    R.check("HTTP 5xx answers beside the storm", _http_5xx(s), "==", 0)
    R.check("messages missed across reconnects (clients back-fill them)", sub["missed_across_reconnects"], ">=", 0,
            gating=False)
    R.check("messages missed while subscribed", sub["missed_in_gaps"], "==", 0)
    log("  reconnects %d, down p50 %.0f / p99 %.0f / max %.0f ms; authorize %s, p99 %s ms; pool busy peak %d of %s, "
        "listen queue peak %d" % (sub["reconnects"], sub["down_ms"]["p50"], sub["down_ms"]["p99"],
                                  sub["down_ms"]["max"], by_class, extra["authorize_ms"]["p99"], sampler.busy_max,
                                  sampler.workers, sampler.queue_max))
