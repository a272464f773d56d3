#!/usr/bin/env python3
"""The issue-4 mixed load, driven by the harness' C generator (loadgen.c).

Unlike wrk, the generator drains at the end: no request starts after the
duration, and every request still in flight is answered (or times out)
before it exits. So the number of acknowledged writes (201s) is exact and
must equal the rows in the database, with nothing "in flight" to excuse.

Usage: mixed_load.py BASE_URL TOKEN DURATION [--users 100] [--threads 2]
                     [--search-density 100]
Prints KEY VALUE lines (the format Scripts/bench.d/storage.sh reads):
REQUESTS, RPS, P50_MS, P90_MS, P99_MS, ERRORS (non-2xx + transport), ACKED,
WRITES (write requests started), WRITES_UNANSWERED, RETRIES, and per-class
p99 and counts.

Mix (per request, closed loop, no think time):
  25% GET /api/system/stats          read   (main pool)
  25% GET /api/events?limit=50       read   (storage pool)
  30% POST /api/events               write  (storage pool; message unique per request)
  10% GET /api/system/processes      heavy  (main pool, full list)
  10% GET /api/events?q=...&limit=100 heavy (storage pool, text search over
      message/action/target: a substring that 1 in SEARCH_DENSITY writes
      contains, so the scan reads about 100 * SEARCH_DENSITY rows, or the
      whole table while it is smaller)
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "loadtest.d"))
from cc_loadtest.deps import loadgen_binary  # noqa: E402  (builds loadgen.c once, cached)

REC = struct.Struct("<QIIIIHHBBBB")
SEQ = "@@SEQ@@@@@"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("token")
    ap.add_argument("duration", type=float)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--search-density", type=int, default=100, choices=[10, 100, 1000])
    ap.add_argument("--writes-only", action="store_true")
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.base)
    host, port = u.hostname, u.port or 80
    digits = {10: 1, 100: 2, 1000: 3}[a.search_density]
    # The message ends with the request's 10-digit sequence number and a dot;
    # "<last digits>." matches 1 write in SEARCH_DENSITY.
    needle = "7" * digits + "."
    auth = "Authorization: Bearer %s\r\n" % a.token

    def raw(method, path, body=b""):
        head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: cc-bench\r\nAccept: application/json\r\n%s" % (
            method, path, host, port, auth)
        if method == "POST":
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        return (head + "\r\n").encode("latin-1") + body

    write_body = ('{"level":"info","source":"bench","message":"w-%s.","data":{"n":"%s"}}' % (SEQ, SEQ)).encode()
    routes = [  # name, class, weight, bytes
        ("stats", "read", 25, raw("GET", "/api/system/stats")),
        ("events", "read", 25, raw("GET", "/api/events?limit=50")),
        ("write", "write", 30, raw("POST", "/api/events", write_body)),
        ("processes", "heavy", 10, raw("GET", "/api/system/processes")),
        ("search", "heavy", 10, raw("GET", "/api/events?q=%s&limit=100" % urllib.parse.quote(needle))),
    ]
    if a.writes_only:
        routes = [r for r in routes if r[1] == "write"]

    work = tempfile.mkdtemp(prefix="cc-mixed-")
    lines = ["addr %s %d" % (host, port), "duration %.3f" % a.duration, "timeout %.3f" % a.timeout,
             "threads %d" % a.threads, "seed 4242", "progress 0", "out %s" % os.path.join(work, "records"),
             "group closed users=%d think_ms=0 dist=fixed start=0 stop=0" % a.users]
    for i, (_, _, w, b) in enumerate(routes):
        p = os.path.join(work, "tpl_%d.http" % i)
        with open(p, "wb") as f:
            f.write(b)
        lines.append("tpl 0 %d %d %s" % (w, i, p))
    spec = os.path.join(work, "spec.txt")
    with open(spec, "w") as f:
        f.write("\n".join(lines) + "\n")

    r = subprocess.run([loadgen_binary(), spec], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=a.duration + a.timeout + 60)
    if r.returncode != 0:
        sys.exit("loadgen failed: %s" % r.stderr[-500:])
    summary = json.loads(r.stdout.strip().splitlines()[-1])

    lat = []
    per = {name: [] for name, _, _, _ in routes}
    errors = acked = writes = unanswered = 0
    statuses = {}
    for fn in sorted(os.listdir(work)):
        if not fn.startswith("records."):
            continue
        with open(os.path.join(work, fn), "rb") as f:
            data = f.read()
        for rec in REC.iter_unpack(data):
            _, queue_us, service_us, _, _, ep, status, err = rec[:8]
            name, cls = routes[ep][0], routes[ep][1]
            ms = (queue_us + service_us) / 1000.0
            lat.append(ms)
            per[name].append(ms)
            key = "%s:%s" % (name, status if not err else "err%d" % err)
            statuses[key] = statuses.get(key, 0) + 1
            if cls == "write":
                writes += 1
                if status == 201 and not err:
                    acked += 1
                elif err:
                    unanswered += 1
            if err or not (200 <= status < 300):
                errors += 1
        os.unlink(os.path.join(work, fn))

    def pct(xs, p):
        if not xs:
            return 0.0
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1)]

    el = summary.get("elapsed_s") or a.duration
    print("REQUESTS %d" % len(lat))
    print("RPS %.0f" % (len(lat) / a.duration))
    print("ELAPSED_S %.2f" % el)
    for p in (50, 90, 99):
        print("P%d_MS %.2f" % (p, pct(lat, p)))
    print("MAX_MS %.2f" % (max(lat) if lat else 0))
    print("ERRORS %d" % errors)
    print("SOCKET_ERRORS %d" % (summary["connect"] + summary["timeout"] + summary["reset"] + summary["parse"]))
    print("RETRIES %d" % summary["retries"])
    print("WRITES %d" % writes)
    print("ACKED %d" % acked)
    print("WRITES_UNANSWERED %d" % unanswered)
    for name, xs in per.items():
        print("ROUTE %s n=%d p50=%.2f p99=%.2f" % (name, len(xs), pct(xs, 50), pct(xs, 99)))
    bad = {k: v for k, v in statuses.items() if not k.split(":")[1].startswith("2")}
    if bad:
        print("BAD_STATUSES %s" % json.dumps(bad, sort_keys=True))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
