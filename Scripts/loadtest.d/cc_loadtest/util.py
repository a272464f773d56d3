"""Small helpers shared by the harness modules."""
import json
import math
import os
import sys
import time


class SetupError(Exception):
    """A usage or set-up problem: exit status 2."""


class Skip(Exception):
    """The scenario cannot run against this server: reported as SKIP."""


_quiet = False


def set_quiet(q):
    global _quiet
    _quiet = q


def log(msg):
    if not _quiet:
        sys.stderr.write("loadtest: " + msg + "\n")
        sys.stderr.flush()


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    n = len(sorted_vals)
    if n == 0:
        return None
    if p <= 0:
        return sorted_vals[0]
    k = int(math.ceil(p / 100.0 * n)) - 1
    return sorted_vals[min(max(k, 0), n - 1)]


def r3(x):
    return None if x is None else round(x, 3)


def now_wall():
    return time.time()


def mono():
    return time.monotonic()


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, path)


def fmt_ms(x):
    if x is None:
        return "-"
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def linreg(xs, ys):
    """Least-squares slope, intercept and r^2."""
    n = len(xs)
    if n < 2:
        return 0.0, (ys[0] if ys else 0.0), 0.0
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0:
        return 0.0, my, 0.0
    slope = sxy / sxx
    icpt = my - slope * mx
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    return slope, icpt, r2
