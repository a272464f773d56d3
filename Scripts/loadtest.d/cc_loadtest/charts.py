"""PNG charts (matplotlib, Agg backend)."""
import os
import re

from .analyze import KINDS


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "phase"


def phase_charts(plt, outdir, name, res):
    tl = res.timeline()
    t = tl["t"]
    files = []
    base = _safe(name)

    # latency percentiles over time, per endpoint
    fig, axes = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    for ax, key in zip(axes, ("p50", "p95", "p99")):
        for ep, series in tl["endpoints"].items():
            pts = [(x, y) for x, y in zip(t, series[key]) if y is not None]
            if pts:
                ax.plot([p[0] for p in pts], [max(p[1], 0.01) for p in pts], label=ep, linewidth=1)
        ax.set_yscale("log")
        ax.set_ylabel("%s latency (ms)" % key)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title("%s: latency percentiles per endpoint (from intended send time, %gs buckets)" % (
        name, tl["bucket_s"]))
    axes[-1].set_xlabel("time (s)")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
        fig.subplots_adjust(bottom=0.16)
    f = "latency-%s.png" % base
    fig.savefig(os.path.join(outdir, f), dpi=90)
    plt.close(fig)
    files.append(f)

    # throughput
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(t, tl["rps"], label="completed req/s")
    ax.plot(t, tl["ok_rps"], label="successful req/s")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("req/s")
    ax.set_title("%s: throughput" % name)
    ax.grid(True, alpha=0.3)
    ax.legend()
    f = "throughput-%s.png" % base
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, f), dpi=90)
    plt.close(fig)
    files.append(f)

    # errors
    fig, ax = plt.subplots(figsize=(11, 4))
    bottom = [0] * len(t)
    width = tl["bucket_s"] * 0.9
    any_err = False
    for kind in KINDS:
        ys = tl["errors"][kind]
        if any(ys):
            any_err = True
            ax.bar(t, ys, width=width, bottom=bottom, label=kind, align="edge")
            bottom = [a + b for a, b in zip(bottom, ys)]
    ax.set_xlabel("time (s)")
    ax.set_ylabel("errors per bucket")
    ax.set_title("%s: errors by kind%s" % (name, "" if any_err else " (none)"))
    ax.set_xlim(0, max(t[-1] + tl["bucket_s"] if t else 1, 1))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if any_err:
        ax.legend()
    f = "errors-%s.png" % base
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, f), dpi=90)
    plt.close(fig)
    files.append(f)
    return files


def marks(ax, events):
    """Vertical lines for chaos actions: events = [(t, label)]."""
    for t, label in events:
        ax.axvline(t, color="red", alpha=0.3, linewidth=1)
