"""report.json, summary.md, PNG charts and the short stdout summary."""
import os
import platform
import sys
import time

from .util import fmt_ms, log, write_json

EXIT_PASS, EXIT_FAIL, EXIT_SETUP = 0, 1, 2


def machine():
    pretty = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    pretty = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cores": os.cpu_count(), "cpu": model, "memory_mib": mem, "os": pretty, "kernel": platform.release(),
            "python": platform.python_version()}


class Report:
    def __init__(self, scenario, outdir, url, profile, criteria, argv):
        self.scenario = scenario
        self.outdir = outdir
        self.data = {
            "scenario": scenario,
            "url": url,
            "profile": profile,
            "criteria": criteria,
            "command": argv,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "phases": [],
            "checks": [],
            "notes": [],
            "verdict": None,
        }
        self.results = []  # (phase name, Result, cpu dict)
        self.charts = []  # callables (plt, outdir) -> [filenames]
        self.chart_files = []
        self.skipped = None

    # -- content -----------------------------------------------------------
    def note(self, msg):
        self.data["notes"].append(msg)
        log(msg)

    def add_phase(self, name, result, cpu=None, extra=None):
        d = {"name": name}
        d.update(result.to_json())
        d["server_cpu"] = cpu
        if extra:
            d.update(extra)
        self.data["phases"].append(d)
        self.results.append((name, result, cpu))
        return d

    def check(self, name, value, op, limit, unit="", gating=True, detail=None, ok=None):
        """op: '<', '<=', '>', '>=', '=='. A missing value fails a gating check.
        `ok` overrides the comparison (the soak's steady-growth rule)."""
        if ok is not None:
            pass
        elif value is None:
            ok = False
        elif op == "<":
            ok = value < limit
        elif op == "<=":
            ok = value <= limit
        elif op == ">":
            ok = value > limit
        elif op == ">=":
            ok = value >= limit
        else:
            ok = value == limit
        c = {"check": name, "value": value, "limit": "%s %s%s" % (op, limit, (" " + unit) if unit else ""),
             "pass": bool(ok), "gating": gating}
        if detail:
            c["detail"] = detail
        self.data["checks"].append(c)
        return ok

    def skip(self, reason):
        self.skipped = reason
        self.data["skipped"] = reason

    def add_extra(self, key, value):
        self.data[key] = value

    # -- verdict and files ---------------------------------------------------
    def verdict(self):
        if self.skipped:
            return "SKIP"
        gating = [c for c in self.data["checks"] if c["gating"]]
        if not gating:
            return "FAIL"
        return "PASS" if all(c["pass"] for c in gating) else "FAIL"

    def finish(self, plt):
        v = self.verdict()
        self.data["verdict"] = v
        self.data["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        os.makedirs(self.outdir, exist_ok=True)
        self._draw(plt)
        self.data["charts"] = self.chart_files
        write_json(os.path.join(self.outdir, "report.json"), self.data)
        with open(os.path.join(self.outdir, "summary.md"), "w") as f:
            f.write(self.markdown())
        self.print_summary()
        return EXIT_PASS if v in ("PASS", "SKIP") else EXIT_FAIL

    def _draw(self, plt):
        if plt is None:
            return
        from . import charts
        try:
            for name, res, _cpu in self.results:
                self.chart_files += charts.phase_charts(plt, self.outdir, name, res)
            for fn in self.charts:
                self.chart_files += fn(plt, self.outdir) or []
        except Exception as e:  # a chart must never hide the verdict
            self.note("charts failed: %s" % e)

    # -- text ------------------------------------------------------------------
    def markdown(self):
        d = self.data
        v = d["verdict"]
        m = d["machine"]
        L = ["# loadtest %s: %s" % (self.scenario, v), ""]
        if self.skipped:
            L += ["**Skipped:** %s" % self.skipped, ""]
        L += ["- URL: `%s`" % d["url"],
              "- Command: `%s`" % " ".join(d["command"]),
              "- Started: %s, finished: %s" % (d["started_at"], d.get("finished_at")),
              "- Machine: %s cores (%s), %s MiB, %s, kernel %s" % (m["cores"], m["cpu"], m["memory_mib"], m["os"],
                                                                    m["kernel"]),
              "- Profile: `%s`" % d["profile"], ""]
        if d["checks"]:
            L += ["## Checks", "", "| check | value | limit | result |", "|---|---|---|---|"]
            for c in d["checks"]:
                val = c["value"]
                if isinstance(val, float):
                    val = "%.3f" % val
                res = ("pass" if c["pass"] else "**FAIL**") if c["gating"] else ("info: " + (
                    "ok" if c["pass"] else "over"))
                L.append("| %s | %s | %s | %s |" % (c["check"], val, c["limit"], res))
            L.append("")
        for ph in d["phases"]:
            L += ["## Phase `%s`" % ph["name"], ""]
            for g in ph["groups"]:
                if g["mode"] == "open":
                    L.append("- group `%s`: open loop, %.0f req/s, up to %s connections" % (
                        g["name"], g["rate"], g["max_conns"]))
                else:
                    L.append("- group `%s`: closed loop, %d users, think %s ms (%s)" % (
                        g["name"], g["users"], g["think_ms"], g["think_dist"]))
            o = ph["overall"]
            L.append("- duration %.0f s, %d requests, %.1f req/s, success %s%%, timeouts %d" % (
                ph["duration_s"], o["requests"], o["throughput_rps"], o["success_pct"], o["timeouts"]))
            L.append("")
            L += ["| endpoint | requests | p50 ms | p95 ms | p99 ms | max ms | errors connect/timeout/reset/parse/http "
                  "| http error statuses | timeouts | mean bytes |",
                  "|---|---:|---:|---:|---:|---:|---|---|---:|---:|"]
            rows = ph["endpoints"] + [dict(o, endpoint="**all**", bytes_mean=None)]
            for e in rows:
                lt = e["latency_ms"]
                er = e["errors"]
                L.append("| %s | %d | %s | %s | %s | %s | %d/%d/%d/%d/%d | %s | %d | %s |" % (
                    e["endpoint"], e["requests"], fmt_ms(lt["p50"]), fmt_ms(lt["p95"]), fmt_ms(lt["p99"]),
                    fmt_ms(lt["max"]), er["connect"], er["timeout"], er["reset"], er["parse"], er["http"],
                    ", ".join("%s: %d" % kv for kv in e["http_error_status"].items()) or "-", e["timeouts"],
                    "-" if e.get("bytes_mean") is None else e["bytes_mean"]))
            L.append("")
            g = ph["generator"]
            cpu = ph.get("server_cpu") or {}
            L.append("Generator CPU: %.1f%% of one core (%s threads). Server CPU: %s. Machine busy: %s%% of %s cores." % (
                g["cpu_pct_of_one_core"], g["threads"], self._cpu_text(cpu),
                cpu.get("machine_busy_pct", "?"), cpu.get("cores", "?")))
            if cpu.get("parts_cpu_pct_of_one_core") is not None:
                L.append("")
                L.append("CPU by part, in %% of one core: %s." % self._parts_text(cpu))
            if ph.get("client_retries_on_stale_keepalive"):
                L.append("")
                L.append("Client retries of a request on a kept-alive connection the server had closed: %d." %
                         ph["client_retries_on_stale_keepalive"])
            L.append("")
        for key in ("stress_curve", "soak", "chaos", "ratelimit", "payload", "live", "selftest", "writes"):
            if key in d:
                L += ["## %s" % key, "", "```json", _compact(d[key]), "```", ""]
        if self.chart_files:
            L += ["## Charts", ""]
            L += ["![%s](%s)" % (c, c) for c in self.chart_files]
            L.append("")
        if d["notes"]:
            L += ["## Notes", ""] + ["- " + n for n in d["notes"]] + [""]
        return "\n".join(L)

    @staticmethod
    def _cpu_text(cpu):
        if not cpu or not cpu.get("by_role_cpu_pct_of_one_core"):
            return "not measured (server processes not found)"
        parts = ", ".join("%s %s%%" % kv for kv in sorted(cpu["by_role_cpu_pct_of_one_core"].items()))
        return "%s%% of one core (%s)" % (cpu["server_cpu_pct_of_one_core"], parts)

    @staticmethod
    def _parts_text(cpu):
        """server + generator + harness + other = the parts' sum, beside the
        machine's busy time in the same unit (from /proc/stat)."""
        return "server %s + generator %s + harness %s + other processes %s = %s; machine busy %s (%s%% of %s cores, " \
               "irq/softirq/steal %s); the parts are %s%% of it" % (
                   cpu["server_cpu_pct_of_one_core"], cpu["generator_cpu_pct_of_one_core"],
                   cpu["harness_cpu_pct_of_one_core"], cpu["other_cpu_pct_of_one_core"],
                   cpu["parts_cpu_pct_of_one_core"], cpu["machine_busy_cpu_pct_of_one_core"],
                   cpu["machine_busy_pct"], cpu["cores"], cpu["kernel_cpu_pct_of_one_core"], cpu["accounted_pct"])

    def print_summary(self):
        d = self.data
        out = sys.stdout
        if self.skipped:
            out.write("loadtest %s: skipped: %s\n" % (self.scenario, self.skipped))
        for ph in d["phases"]:
            o = ph["overall"]
            lt = o["latency_ms"]
            out.write("[%s] %d req, %.1f req/s, success %s%%, p50 %s p95 %s p99 %s max %s ms, timeouts %d\n" % (
                ph["name"], o["requests"], o["throughput_rps"], o["success_pct"], fmt_ms(lt["p50"]),
                fmt_ms(lt["p95"]), fmt_ms(lt["p99"]), fmt_ms(lt["max"]), o["timeouts"]))
            cpu = ph.get("server_cpu") or {}
            out.write("    generator %.1f%% of a core | server %s | machine busy %s%%\n" % (
                ph["generator"]["cpu_pct_of_one_core"], self._cpu_text(cpu), cpu.get("machine_busy_pct", "?")))
            if cpu.get("parts_cpu_pct_of_one_core") is not None:
                out.write("    cpu, %% of one core: %s\n" % self._parts_text(cpu))
        for c in d["checks"]:
            tag = ("ok  " if c["pass"] else "FAIL") if c["gating"] else "info"
            out.write("  %s %s = %s (%s)\n" % (tag, c["check"], _v(c["value"]), c["limit"]))
        out.write("report: %s\n" % os.path.join(self.outdir, "summary.md"))
        out.write("loadtest %s: %s\n" % (self.scenario, d["verdict"]))
        out.flush()


def _v(x):
    return "%.3f" % x if isinstance(x, float) else str(x)


def _compact(obj):
    import json
    s = json.dumps(obj, indent=1, sort_keys=True, default=str)
    if len(s) > 6000:
        s = s[:6000] + "\n... (see report.json)"
    return s
