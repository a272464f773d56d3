#!/usr/bin/env bash
# Issue 13 targets for GET /metrics (the whole page: application, pool,
# snapshot and node_exporter-named host metrics):
#   1. worker time per scrape: CPU time (utime+stime, /proc/PID/stat) the
#      main pool's workers spent over a run of sequential scrapes, divided by
#      the scrapes (includes the stats/network refreshes the scrapes set off),
#      and the worker's own duration_ms from the access log (target <= 2 ms)
#   2. 10 concurrent scrapers for 30 s with wrk (target: 0 errors, p99 < 50 ms)
# Usage: Scripts/bench.d/metrics.sh [--duration S]
# Env: CC_BIN (else built in release), BENCH_METRICS_DURATION (default 30).
set -uo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$CC_ROOT"

DURATION="${BENCH_METRICS_DURATION:-30}" SCRAPES=500
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        *) echo "usage: $0 [--duration S]" >&2; exit 2 ;;
    esac
done

cc_apt_install wrk curl python3
cc_bench_env metrics || exit 1
# No recycling during the run: the CPU figures come from the workers alive at its end.
export CC_MAX_REQUESTS=0
trap 'cc_stop_stack; rm -rf "$CC_STATE_DIR"' EXIT

pass() { # LABEL CONDITION(python expr)
    if python3 -c "import sys; sys.exit(0 if ($2) else 1)"; then echo "  ok:   $1"; else echo "  FAIL: $1"; fi
}

cc_start_stack --bench || exit 1
base="http://127.0.0.1:$CC_HTTP_PORT"
# A page as big as real use makes it: series for most routes in every worker.
for path in /health /health/live /health/ready /health/detailed "/api/system/stats?x=1" "/api/system/network?x=1" \
            "/api/system/processes?limit=5" /api/system/processes/1 /api/system/ports /api/system/info \
            /api/system/connections /api/events /api/auth/me /api/auth/users /api/pool/status /nope /openapi.yaml; do
    pids=()
    for _ in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null "$base$path" & pids+=($!); done
    wait "${pids[@]}" # not a bare wait: the stack's processes are this shell's children too
done
sleep 1.2 # every worker writes its file
curl -sf "$base/metrics" -o "$CC_STATE_DIR/page.txt" || { echo "/metrics failed"; exit 1; }
echo "page: $(grep -vc '^#' "$CC_STATE_DIR/page.txt") series, $(wc -c <"$CC_STATE_DIR/page.txt") bytes"

# --- 1. worker time per scrape ----------------------------------------------
python3 - "$base/metrics" "$SCRAPES" "$CC_STATE_DIR" <<'PY'
import json, os, sys, time, urllib.request
url, n, state = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hz = os.sysconf("SC_CLK_TCK")
def main_workers():
    status = json.load(urllib.request.urlopen(url.replace("/metrics", "/api/pool/status")))
    return [w["pid"] for w in status["workers"] if w["pool"] == "main"]
def cpu(pids):
    total = 0
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / hz
pids = main_workers()
before = cpu(pids)
t = time.perf_counter()
for _ in range(n):
    urllib.request.urlopen(url).read()
wall = time.perf_counter() - t
after = cpu(pids)
print(f"1. {n} sequential scrapes in {wall:.2f} s: worker CPU {(after - before) / n * 1000:.3f} ms/scrape "
      f"(utime+stime of {len(pids)} workers, {1000 / hz:.0f} ms ticks)")
print(f"CPU_MS={(after - before) / n * 1000:.3f}")
PY
sleep 1.2 # the workers' buffered access-log lines
read -r p50 p99 <<<"$(python3 - "$CC_STATE_DIR/access.log" <<'PY'
import json, sys
d = sorted(json.loads(l)["duration_ms"] for l in open(sys.argv[1]) if '"/metrics"' in l)
print(f"{d[len(d)//2]:.3f} {d[int(len(d)*0.99)]:.3f}")
PY
)"
echo "   worker duration_ms per scrape (access log): p50 $p50, p99 $p99"
pass "worker time per scrape <= 2 ms (p50 of duration_ms)" "$p50 <= 2"

# --- 2. 10 concurrent scrapers ------------------------------------------------
out="$(timeout $((DURATION + 30)) wrk -t2 -c10 -d"${DURATION}s" --timeout 5s --latency "$base/metrics" 2>&1)"
read -r rps wp50 wp99 errs <<<"$("$CC_ROOT/Scripts/lib/wrk-summary" <<<"$out")"
echo "2. 10 scrapers, ${DURATION}s: $rps scrapes/s, p50 $wp50 ms, p99 $wp99 ms, errors $errs"
pass "0 errors" "$errs == 0"
pass "p99 < 50 ms" "$wp99 < 50"
