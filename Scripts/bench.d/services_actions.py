#!/usr/bin/env python3
"""Issue 12's action and supervisor targets, through nginx (run by services.sh, which registers the
services and starts the stack with the supervisor):
  - PAIRS start/stop pairs of `act` (/bin/sleep 3600, start_timeout_seconds 0.1) with ?wait=5:
    p50/p99 of each; target start p99 < 100 ms + the start timeout, stop < 1 s
  - TREE_STOPS stops of `tree` (10 processes that obey SIGTERM) with ?wait=5: target < 1 s
  - the supervisor's CPU (utime + stime, /proc/PID/stat fields 14-15) over IDLE_SECONDS with the PROBED
    services `probed-*` running and healthy (HTTP probe every 10 s): target <= 0.5% of one core
Usage: services_actions.py BASE TOKEN MASTER_PID PAIRS TREE_STOPS PROBED IDLE_SECONDS
Prints one line per figure with its target; exits 1 when a target is missed."""
import datetime
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

base, token, master = sys.argv[1], sys.argv[2], int(sys.argv[3])
pairs, tree_stops, probed, idle_seconds = (int(a) for a in sys.argv[4:8])
failed = False


def call(method, path):
    req = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None,
                                 headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def stamp(iso):
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


inside = {}  # path -> [ms from the action's created_at to its finished_at: the server's share]


def timed(path):
    """Milliseconds from request to answer of an action that must end done."""
    t = time.monotonic()
    status, body = call("POST", path)
    ms = (time.monotonic() - t) * 1000
    if status != 200 or body.get("status") != "done":
        sys.exit(f"FAIL: {path}: HTTP {status} {body}")
    inside.setdefault(path, []).append((stamp(body["finished_at"]) - stamp(body["created_at"])) * 1000)
    return ms


def share(path):
    v = inside[path]
    return f"(created_at to finished_at p50={rank(v, 50):.0f}ms max={max(v):.0f}ms)"


def rank(values, p):
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def check(label, value, limit, unit="ms"):
    global failed
    if value < limit:
        print(f"ok:   {label} {value:.1f} {unit} < {limit:g} {unit}")
    else:
        print(f"FAIL: {label} {value:.1f} {unit} >= {limit:g} {unit}")
        failed = True


starts, stops = [], []
for _ in range(pairs):
    starts.append(timed("/api/services/act/start?wait=5"))
    stops.append(timed("/api/services/act/stop?wait=5"))
print(f"     {pairs} start/stop pairs of /bin/sleep 3600 (start_timeout 0.1 s), ?wait=5, one client:")
print(f"     start p50={rank(starts, 50):.1f}ms p99={rank(starts, 99):.1f}ms max={max(starts):.1f}ms "
      f"{share('/api/services/act/start?wait=5')}")
print(f"     stop p50={rank(stops, 50):.1f}ms p99={rank(stops, 99):.1f}ms max={max(stops):.1f}ms "
      f"{share('/api/services/act/stop?wait=5')}")
check("start p99", rank(starts, 99), 200)
check("stop p99", rank(stops, 99), 1000)

tree = []
for _ in range(tree_stops):
    timed("/api/services/tree/start?wait=5")
    time.sleep(0.2)  # the shell has forked its 9 children
    tree.append(timed("/api/services/tree/stop?wait=5"))
print(f"     {tree_stops} stops of a 10-process tree: p50={rank(tree, 50):.1f}ms max={max(tree):.1f}ms "
      f"{share('/api/services/tree/stop?wait=5')}")
check("tree stop max", max(tree), 1000)


def supervisor_pid():
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == master and b"supervisor" in argv:
            return int(d)
    sys.exit("FAIL: no supervisor child of the master")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 (utime, stime), counted from field 3


if probed and idle_seconds:
    names = [f"probed-{i:02d}" for i in range(probed)]
    for n in names:
        call("POST", f"/api/services/{n}/start")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        healthy = sum(call("GET", f"/api/services/{n}/status")[1].get("health") == "healthy" for n in names)
        if healthy == probed:
            break
        time.sleep(1)
    else:
        sys.exit(f"FAIL: {healthy} of {probed} probed services healthy after 40 s")
    pid, hz = supervisor_pid(), os.sysconf("SC_CLK_TCK")
    before, t = cpu_ticks(pid), time.monotonic()
    time.sleep(idle_seconds)
    used = (cpu_ticks(pid) - before) / hz
    share = used / (time.monotonic() - t) * 100
    print(f"     supervisor CPU, {probed} services HTTP-probed every 10 s, {idle_seconds} s: {used:.2f} s")
    check("supervisor idle CPU", share, 0.5, "% of a core")
    for n in names:
        call("POST", f"/api/services/{n}/stop")
sys.exit(1 if failed else 0)
