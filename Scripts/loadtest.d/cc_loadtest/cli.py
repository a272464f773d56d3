"""Command line, profiles and the per-run context shared by the scenarios."""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

from . import deps, gen, procmon
from .analyze import Result
from .httpc import Target, env_default
from .report import EXIT_SETUP, Report
from .util import SetupError, Skip, log, set_quiet

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIXES = os.path.join(HERE, "mixes")

SCENARIOS = {
    "sustained": "50 users (closed loop, think time) for 10 minutes on the mixed workload",
    "burst": "100 users firing back to back (200 with --profile strict)",
    "stress": "concurrency steps 50 -> 100 -> 200 -> 400: degradation curve and knee",
    "live": "WebSocket + SSE subscribers on the live channel beside 5,000 req/s of HTTP, in with/without pairs",
    "reload-storm": "nginx -s reload under --ws + --sse reconnecting subscribers (CC_PUBLIC_READ=false): all back, "
                    "no 5xx, the pool within capacity",
    "pool-exhaustion": "more slow requests (/api/test/sleep) than workers; fast routes must stay fast",
    "slow-storage": "200 clients on a slow database route (/api/test/db-sleep); the rest stays fast",
    "soak": "long run sampling RSS, fds and threads of master and workers; fails on steady growth",
    "chaos": "SIGKILL of workers, HUP of the master, database restarts, under load; no acknowledged write lost",
    "ratelimit": "exactly at the nginx limit, then one over: 429 with Retry-After, as JSON",
    "payload": "a response over 1 MiB under load; request bodies just under and just over the 1 MiB limit",
    "ui-soak": "the dashboard open in headless Chromium with live updates: JS heap slope and DOM growth",
    "selftest": "the generator's own ceiling against nginx's `return 200` (>= 20,000 req/s) and parser checks",
}

# The post-mortem's criteria. Every figure can be overridden on the command line.
PROFILES = {
    "default": {"p50": 50.0, "p95": 200.0, "p99": 500.0, "success": 99.0, "success_2x": 95.0, "timeouts_pct": 0.5,
                "min_rps": 100.0, "health_ms": 10.0, "burst_users": 100},
    "strict": {"p50": 50.0, "p95": 200.0, "p99": 25.0, "success": 99.9, "success_2x": 99.9, "timeouts_pct": 0.0,
               "min_rps": 100.0, "health_ms": 10.0, "burst_users": 200},
}


def build_parser():
    p = argparse.ArgumentParser(
        prog="Scripts/loadtest",
        description="Control Center load, stress, soak and chaos harness. Exit status: 0 pass (or skip), "
                    "1 fail, 2 usage or set-up error. See docs/performance.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n" + "\n".join("  %-16s %s" % kv for kv in SCENARIOS.items()))
    p.add_argument("scenario", choices=sorted(SCENARIOS) + ["list"], metavar="SCENARIO",
                   help="one of: " + ", ".join(SCENARIOS) + " (or list)")
    a = p.add_argument_group("target")
    a.add_argument("--url", default=env_default("CC_LOADTEST_URL", "http://127.0.0.1:%s" % env_default(
        "CC_HTTP_PORT", "8080")), help="server URL (default http://127.0.0.1:$CC_HTTP_PORT or :8080)")
    a.add_argument("--state-dir", default=env_default("CC_STATE_DIR", "var"),
                   help="the server's state dir, to find var/run/master.pid (default $CC_STATE_DIR or ./var)")
    a.add_argument("--master-pidfile", default=env_default("CC_PID_FILE"),
                   help="pool master pid file (default $CC_PID_FILE or STATE_DIR/run/master.pid)")
    a.add_argument("--master-pid", type=int, help="pool master pid (overrides the pid file)")
    a.add_argument("--server-pid", type=int, action="append", default=[],
                   help="another server pid whose CPU to count (repeatable)")
    a.add_argument("--token", default=env_default("CC_LOADTEST_TOKEN"), help="operator bearer token for writes")
    a.add_argument("--user", default=env_default("CC_LOADTEST_USER"),
                   help="log in via POST /api/auth/login for a token")
    a.add_argument("--password", default=env_default("CC_LOADTEST_PASSWORD"))
    a = p.add_argument_group("load")
    a.add_argument("--duration", type=float, help="seconds (scenario default otherwise; stress: all steps)")
    a.add_argument("--users", type=int, help="closed-loop users (concurrent connections)")
    a.add_argument("--rate", type=float, help="open loop: constant arrival rate in req/s instead of users")
    a.add_argument("--max-conns", type=int, help="open loop: connection cap (default max(64, rate/10))")
    a.add_argument("--poisson", action="store_true", help="open loop: Poisson arrivals instead of even spacing")
    a.add_argument("--think-ms", type=float, help="closed loop: mean think time between a user's requests")
    a.add_argument("--think-dist", choices=("exp", "fixed", "uniform"), default="exp")
    a.add_argument("--mix", default="default",
                   help="route mix: a name in Scripts/loadtest.d/mixes (default, reads, health, fast) or a JSON file")
    a.add_argument("--route", action="append", default=[], metavar="'METHOD PATH [WEIGHT]'",
                   help="ad-hoc mix entry, repeatable; replaces --mix")
    a.add_argument("--no-probe", action="store_true", help="do not probe routes before the run")
    a.add_argument("--timeout", type=float, default=10.0,
                   help="client timeout per request in s, from its intended send time (default 10)")
    a.add_argument("--gen-threads", type=int, default=1, help="generator threads (default 1)")
    a.add_argument("--seed", type=int)
    a = p.add_argument_group("pass criteria (defaults from --profile)")
    a.add_argument("--profile", choices=sorted(PROFILES), default="default")
    a.add_argument("--p50", type=float, help="max p50 latency, ms")
    a.add_argument("--p95", type=float, help="max p95 latency, ms")
    a.add_argument("--p99", type=float, help="max p99 latency, ms")
    a.add_argument("--success", type=float, help="min success %% at expected load")
    a.add_argument("--success-2x", type=float, help="min success %% at 2x expected load")
    a.add_argument("--timeouts-pct", type=float, help="max timeouts %% (0 means none at all)")
    a.add_argument("--min-rps", type=float, help="min sustained throughput, req/s")
    a.add_argument("--health-ms", type=float, help="max p99 of GET /health, ms")
    a.add_argument("--expected-users", type=int, default=100, help="the expected load in users (default 100)")
    a = p.add_argument_group("scenario options")
    a.add_argument("--steps", default="50,100,200,400", help="stress: concurrency steps")
    a.add_argument("--slow-users", type=int, help="pool-exhaustion/slow-storage: concurrent slow requests")
    a.add_argument("--fast-users", type=int, default=20, help="pool-exhaustion/slow-storage: fast-route users")
    a.add_argument("--sleep-ms", type=int, default=2000, help="pool-exhaustion/slow-storage: slow request length")
    a.add_argument("--fast-p99", type=float, help="max p99 of the fast routes, ms")
    a.add_argument("--server-timeout", type=float, default=10.0,
                   help="the server's request timeout (CC_REQUEST_TIMEOUT); nothing may hang past it (+1 s)")
    a.add_argument("--workers", type=int, help="pool size (default: /api/pool/status, else the master's children)")
    a.add_argument("--sample-interval", type=float,
                   help="soak: seconds between /proc samples; ui-soak: between browser samples (default 10)")
    a.add_argument("--warmup", type=float, help="soak: seconds left out of the growth fit (default 20%%)")
    a.add_argument("--max-rss-growth", type=float, default=16.0, help="soak: MiB per hour (default 16)")
    a.add_argument("--max-fd-growth", type=float, default=10.0, help="soak: fds per hour (default 10)")
    a.add_argument("--max-thread-growth", type=float, default=4.0, help="soak: threads per hour (default 4)")
    a.add_argument("--max-heap-slope", type=float, default=1.0,
                   help="ui-soak: JS heap MB per 1,000 updates (default 1)")
    a.add_argument("--max-dom-ratio", type=float, default=1.2,
                   help="ui-soak: DOM nodes over their count after 100 updates (default 1.2)")
    a.add_argument("--chaos-interval", type=float, default=4.0, help="chaos: mean seconds between actions")
    a.add_argument("--chaos-actions", default=None, help="chaos: comma list of kill,hup,db (default kill,hup[,db])")
    a.add_argument("--db-restart-cmd", default=env_default("CC_LOADTEST_DB_RESTART"),
                   help="chaos: shell command that restarts the database")
    a.add_argument("--error-budget", type=float, help="chaos: max failed requests %% (default 100 - success)")
    a.add_argument("--recover-timeout", type=float, default=10.0, help="chaos: seconds for the pool to recover")
    a.add_argument("--limit-path", default="/api/system/info", help="ratelimit: a route behind the /api/ limit")
    a.add_argument("--limit-rate", help="ratelimit: the nginx rate, e.g. 10r/s (default: read STATE_DIR/nginx/*.conf)")
    a.add_argument("--limit-burst", type=int, help="ratelimit: the nginx burst (default: read STATE_DIR/nginx/*.conf)")
    a.add_argument("--nginx-conf", help="ratelimit: the nginx config to read the limits from "
                                        "(default STATE_DIR/nginx/*.conf, rendered by control-center nginx-config)")
    a.add_argument("--limit-header", help="ratelimit: 'Name: value' that makes us another client (default: "
                                          "X-Forwarded-For with a TEST-NET address when CC_TRUSTED_PROXIES trusts loopback)")
    a.add_argument("--large-path", help="payload: a route answering more than 1 MiB")
    a.add_argument("--body-path", help="payload: the POST route for the body-limit test (default /api/test/echo "
                                       "when the test routes are on, else /api/events)")
    a.add_argument("--body-limit", type=int, default=1048576, help="payload: the body limit in bytes (1 MiB)")
    a.add_argument("--ws", type=int, default=5000, help="live: WebSocket subscribers (default 5000)")
    a.add_argument("--sse", type=int, default=1000, help="live: EventSource (SSE) subscribers (default 1000)")
    a.add_argument("--pairs", type=int, default=5,
                   help="live: alternating phases without and with subscribers (default 5; 0: one phase with)")
    a.add_argument("--delivery-p99", type=float, default=250.0, help="live: max delivery delay p99, ms (250)")
    a.add_argument("--per-ip", type=int, default=16,
                   help="live: subscribers per 127.0.0.0/8 source address (default 16, under CC_STREAM_MAX_PER_IP)")
    a.add_argument("--ws-path", default="/ws", help="live: the WebSocket location (default /ws)")
    a.add_argument("--sse-path", default="/api/stream/system", help="live: the SSE location")
    a.add_argument("--start-stack", action="store_true",
                   help="live, reload-storm: run against a stack of its own (Scripts/loadtest.d/stack.sh: release build, fresh "
                        "state dir, operator `loadtest`) instead of --url")
    a.add_argument("--find-max", action="store_true",
                   help="live: step WebSocket subscribers up by --ws + --sse until delivery p99 >= 1 s or "
                        "handshakes fail (no HTTP load)")
    a.add_argument("--reloads", type=int, default=1, help="reload-storm: nginx reloads (default 1)")
    a.add_argument("--reconnect-within", type=float, default=30.0,
                   help="reload-storm: seconds by which every subscriber must be back after a reload (30)")
    a.add_argument("--reconnect-base", type=float, default=1.0,
                   help="reload-storm: the subscribers' back-off base, s: a reconnect waits a random time up to "
                        "base x 2^failures, at most 30 s (default 1)")
    a.add_argument("--selftest-min-rps", type=float, default=20000.0, help="selftest: required req/s")
    a.add_argument("--nginx-workers", type=int, default=1, help="selftest: nginx worker processes")
    a = p.add_argument_group("output")
    a.add_argument("--out", help="output dir (default STATE_DIR/loadtest/SCENARIO-TIMESTAMP)")
    a.add_argument("--charts", choices=("yes", "no", "available"), default="yes",
                   help="yes: draw PNGs, installing matplotlib if missing; available: only if installed")
    a.add_argument("--keep-records", action="store_true", help="keep the raw per-request records in --out")
    a.add_argument("--quiet", action="store_true")
    return p


class Context:
    """Everything a scenario needs: target, criteria, generator, report."""

    def __init__(self, args, argv):
        self.args = args
        self.argv = argv
        prof = dict(PROFILES[args.profile])
        for k in ("p50", "p95", "p99", "success", "success_2x", "timeouts_pct", "min_rps", "health_ms"):
            v = getattr(args, k)
            if v is not None:
                prof[k] = v
        self.crit = prof
        self.run_id = "lt%s%04x" % (time.strftime("%H%M%S"), random.randrange(0x10000))
        allow = os.environ.get("CC_LOADTEST_ALLOW_REMOTE") == "1"
        self.target = Target(args.url, allow_remote=allow)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.outdir = os.path.abspath(args.out or os.path.join(args.state_dir, "loadtest",
                                                               "%s-%s" % (args.scenario, stamp)))
        os.makedirs(self.outdir, exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix="cc-loadtest-")
        os.chmod(self.workdir, 0o700)  # request templates may hold a bearer token
        self.server = procmon.Server(self.target.port, state_dir=args.state_dir, master_pid=args.master_pid,
                                     master_pidfile=args.master_pidfile, extra_pids=args.server_pid)
        self.report = Report(args.scenario, self.outdir, args.url, args.profile, prof, ["Scripts/loadtest"] + argv)
        self.report.add_extra("run_id", self.run_id)
        self._binary = None
        self.phase_no = 0

    @property
    def binary(self):
        if not self._binary:
            self._binary = deps.loadgen_binary()
        return self._binary

    def cleanup(self):
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- server ----------------------------------------------------------------
    def require_server(self, path="/health"):
        r = self.target.try_request("GET", path, timeout=5)
        if r is None:
            raise SetupError("no server answers at %s (start it with Scripts/run, or pass --url)" % self.args.url)
        return r

    def authenticate(self):
        a = self.args
        if a.token:
            self.target.token = a.token
            return True
        if a.user:
            if not a.password:
                raise SetupError("--user needs --password (or CC_LOADTEST_PASSWORD)")
            self.target.login(a.user, a.password)
            log("logged in as %s" % a.user)
            return True
        return False

    # -- mixes -------------------------------------------------------------------
    def load_mix(self, name=None):
        a = self.args
        if a.route:
            routes = []
            for spec in a.route:
                f = spec.split()
                if len(f) < 2:
                    raise SetupError("--route wants 'METHOD PATH [WEIGHT]': %r" % spec)
                routes.append(gen.Route(f[0], f[1], float(f[2]) if len(f) > 2 else 1.0,
                                        cls="health" if f[1] == "/health" else "read"))
            return routes
        name = name or a.mix
        path = name if os.path.exists(name) else os.path.join(MIXES, name + ".json")
        if not os.path.exists(path):
            raise SetupError("no mix %r (have: %s)" % (name, ", ".join(
                sorted(f[:-5] for f in os.listdir(MIXES) if f.endswith(".json")))))
        with open(path) as f:
            d = json.load(f)
        return [gen.Route.from_json(r) for r in d["routes"]]

    def probe(self, routes):
        """Drop optional routes the server does not have (or does not allow us),
        note required ones that are missing. Returns the routes to use."""
        keep = []
        have_token = bool(self.target.token)
        for r in routes:
            if r.auth == "required" and not have_token:
                if r.optional:
                    self.report.note("%s left out: it needs an operator token (--token or --user/--password)" % r.name)
                    continue
            if self.args.no_probe:
                keep.append(r)
                continue
            body = r.body_bytes(self.run_id).replace(b"@@SEQ@@@@@", b"probe00000") if r.body is not None else None
            resp = self.target.try_request(r.method, r.path.replace("{run}", self.run_id), body=body,
                                           headers={"Content-Type": "application/json"} if body else None,
                                           auth=r.auth != "none", timeout=max(self.args.timeout, 5))
            st = resp.status if resp else None
            if st is None:
                self.report.note("probe of %s got no answer; it stays in the mix" % r.name)
                keep.append(r)
            elif st == 404 or (st in (401, 403) and r.auth != "none"):
                if r.optional:
                    self.report.note("%s left out: the probe answered %d" % (r.name, st))
                    continue
                self.report.note("%s answered %d to the probe; it stays in the mix and counts as errors" % (
                    r.name, st))
                keep.append(r)
            else:
                if not r.ok_status(st):
                    self.report.note("probe of %s answered %d" % (r.name, st))
                keep.append(r)
        if not keep:
            raise SetupError("no route of the mix is usable")
        return keep

    # -- groups --------------------------------------------------------------------
    def load_group(self, name, routes, users=None, think_ms=None, duration=None):
        """A closed-loop group from --users/--think-ms, or open loop when --rate is given."""
        a = self.args
        if a.rate:
            mc = a.max_conns or max(64, int(a.rate / 10))
            return gen.Group(name, routes, rate=a.rate, max_conns=mc, poisson=a.poisson)
        u = a.users if a.users is not None else users
        t = a.think_ms if a.think_ms is not None else think_ms
        return gen.Group(name, routes, users=u, think_ms=t or 0.0, think_dist=a.think_dist)

    # -- running ---------------------------------------------------------------------
    def run_phase(self, name, groups, duration, during=None, timeout=None):
        """Run the generator for one phase, measuring the server's CPU beside
        it. `during(genrun)` runs while the load is on. Returns (Result, cpu)."""
        self.phase_no += 1
        timeout = timeout or self.args.timeout
        for g in groups:
            log("phase %s: %s, group %s: %s, %d routes, %.0f s" % (
                name, self.target.url, g.name, g.describe(), len(g.routes), duration))
        wd = os.path.join(self.workdir, "phase%d" % self.phase_no)
        mon = procmon.CpuMonitor(self.server)
        mon.start()
        run = gen.start(self.binary, self.target, groups, duration, timeout, wd, self.run_id,
                        threads=self.args.gen_threads, seed=self.args.seed)
        extra = None
        try:
            if during:
                extra = during(run)
            run.wait(duration + timeout + 30)
        finally:
            run.stop()
        cpu = mon.stop()
        res = Result(run)
        gcpu = 100.0 * (run.cpu_user + run.cpu_sys) / max(run.wall, 1e-9)
        if gcpu > 85.0 * self.args.gen_threads:
            self.report.note("phase %s: the generator used %.0f%% of a core with %d thread(s); it may be what "
                             "limits this phase: try --gen-threads 2" % (name, gcpu, self.args.gen_threads))
        if self.args.keep_records:
            dst = os.path.join(self.outdir, "records-%s" % name)
            os.makedirs(dst, exist_ok=True)
            for f in run.record_files():
                shutil.copy(f, dst)
            with open(os.path.join(dst, "endpoints.json"), "w") as f:
                json.dump([r.name for r, _ in run.endpoints], f)
        self._last_run = run
        return res, cpu, extra

    def finish(self):
        plt = deps.matplotlib_pyplot(self.args.charts)
        return self.report.finish(plt)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = build_parser()
    args = p.parse_args(argv)
    if args.scenario == "list":
        for k, v in SCENARIOS.items():
            print("%-16s %s" % (k, v))
        return 0
    set_quiet(args.quiet)
    from . import scenarios
    ctx = None
    try:
        ctx = Context(args, argv)
        fn = scenarios.REGISTRY[args.scenario]
        try:
            fn(ctx)
        except Skip as e:
            ctx.report.skip(str(e))
        return ctx.finish()
    except SetupError as e:
        if ctx and os.path.isdir(ctx.outdir) and not os.listdir(ctx.outdir):
            os.rmdir(ctx.outdir)  # leave no empty report directory behind
        sys.stderr.write("loadtest %s: setup error: %s\n" % (args.scenario, e))
        print("loadtest %s: ERROR (setup)" % args.scenario)
        return EXIT_SETUP
    except KeyboardInterrupt:
        print("loadtest %s: ERROR (interrupted)" % args.scenario)
        return EXIT_SETUP
    finally:
        if ctx:
            ctx.cleanup()
