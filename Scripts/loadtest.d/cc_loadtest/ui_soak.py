"""ui-soak: the dashboard's overview kept open with live updates
(issue 14). A browser (../ui_browser.py, headless Chromium) samples the
page's JS heap after forced collections and its DOM node count; the scenario
fails when the heap's least-squares slope exceeds --max-heap-slope MB per
1,000 updates, or the node count exceeds --max-dom-ratio times its count
after the first 100 updates.

The heap is fitted from update 300 on: until then the charts' windows fill
(300 samples each, web/js/pages/overview.js), which is growth by design. Each
point of the fit is the least heap of that sample and the four before it:
readings after a forced collection sometimes sit 1-2 MB high for a few
seconds and fall back (seen in trials with a flat baseline), and a leak lifts
that minimum as surely as the readings themselves."""
import json
import os
import subprocess

from . import deps
from .util import SetupError, linreg, log, r3

BROWSER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ui_browser.py")
DOM_WARM_UPDATES = 100
HEAP_WARM_UPDATES = 300
ENVELOPE = 5


def fits(samples, max_slope_mb, max_ratio):
    """The two verdicts from the samples (dicts of ui_browser.py): returns a
    dict with the heap slope (MB per 1,000 updates) and r2, the DOM baseline
    and peak; raises SetupError when there are too few samples to judge."""
    warm = [s for s in samples if s["updates"] >= HEAP_WARM_UPDATES]
    heap = [(s["updates"], min(w["heap_bytes"] for w in warm[max(0, i - ENVELOPE + 1):i + 1]) / 1e6)
            for i, s in enumerate(warm)]
    dom = [s for s in samples if s["updates"] >= DOM_WARM_UPDATES]
    if len(heap) < 3:
        raise SetupError("only %d samples after the first %d updates (%d updates in all): lengthen --duration, "
                         "or run the server with a shorter CC_COLLECT_INTERVAL" % (
                             len(heap), HEAP_WARM_UPDATES, samples[-1]["updates"] if samples else 0))
    slope, _, r2 = linreg([u for u, _ in heap], [mb for _, mb in heap])
    base = dom[0]["dom_nodes"]
    peak = max(s["dom_nodes"] for s in dom)
    return {"samples": len(samples), "fitted": len(heap), "updates": heap[-1][0] - heap[0][0],
            "heap_slope_mb_per_1000": r3(slope * 1000), "heap_r2": r3(r2),
            "heap_first_mb": r3(heap[0][1]), "heap_last_mb": r3(heap[-1][1]),
            "dom_baseline": base, "dom_peak": peak, "dom_ratio": r3(peak / base),
            "listeners_first": dom[0]["listeners"], "listeners_last": dom[-1]["listeners"],
            "max_heap_slope": max_slope_mb, "max_dom_ratio": max_ratio}


def ui_soak(ctx):
    a = ctx.args
    R = ctx.report
    if not a.user or not a.password:
        raise SetupError("ui-soak signs in to the dashboard: pass --user and --password (a user without a "
                         "pending password change)")
    ctx.require_server()
    deps.ensure_browser()
    dur = a.duration or 600.0
    interval = a.sample_interval or 10.0
    log("ui-soak: %s, %.0f s, a sample every %.1f s" % (a.url, dur, interval))
    p = subprocess.run(["/usr/bin/python3", BROWSER, a.url, a.user, a.password, str(dur), str(interval)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=dur + 180)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    with open(os.path.join(ctx.outdir, "ui-soak-samples.jsonl"), "w") as f:
        f.write(p.stdout)
    errors = [x["error"] for x in lines if "error" in x]
    if p.returncode != 0 or errors:
        raise SetupError("the browser failed: %s" % (errors[0] if errors else p.stderr.strip()[-400:]))
    samples = [x for x in lines if "heap_bytes" in x]
    result = fits(samples, a.max_heap_slope, a.max_dom_ratio)
    R.add_extra("ui_soak", result)
    R.check("JS heap after forced collections: least-squares slope over %d updates (r2 %.2f), MB per 1,000 updates"
            % (result["updates"], result["heap_r2"]), result["heap_slope_mb_per_1000"], "<=", a.max_heap_slope,
            "MB/1000 updates")
    R.check("DOM nodes: peak over the count after the first %d updates (%d)" % (DOM_WARM_UPDATES, result["dom_baseline"]),
            result["dom_ratio"], "<=", a.max_dom_ratio, "x")
