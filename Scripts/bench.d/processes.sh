#!/usr/bin/env bash
# Issue 3 targets for /api/system/processes, with ~300 extra idle processes:
#   1. a full processes refresh (scan, render, publish) against
#      `ps -eo pid,ppid,user,stat,pcpu,pmem,rss,comm` over the same processes
#      (target: ratio <= 1.5)
#   2. wrk, 200 connections, 10 s, default TTL 2 s: req/s, p50, p99, errors,
#      and how many times the snapshot was rebuilt meanwhile
#      (target: 0 errors, p99 < 25 ms, no more refreshes than the collector's
#      one per TTL/2: the requests themselves rebuild nothing)
#   3. the same bytes served by nginx as a static file, same concurrency
#      (target: ours/static >= 70%, issue 10; nginx sends the collector's view
#      file itself, so this is what the view's limit_req, headers and JSON
#      access line cost)
#   4. with --peers (or BENCH_PEERS=1): Glances' REST process list, same load
# Usage: Scripts/bench.d/processes.sh [--peers] [--duration S]
# Env: CC_BIN (else built in release), BENCH_PROCESSES_DURATION (default 10).
set -uo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$CC_ROOT"

DURATION="${BENCH_PROCESSES_DURATION:-10}" PEERS="${BENCH_PEERS:-0}" CONNS=200 IDLE=300
while [ $# -gt 0 ]; do
    case "$1" in
        --peers) PEERS=1; shift ;;
        --duration) DURATION="$2"; shift 2 ;;
        *) echo "usage: $0 [--peers] [--duration S]" >&2; exit 2 ;;
    esac
done

cc_apt_install wrk curl procps
cc_bench_env proc || exit 1
unset CC_CACHE_TTL_PROCESSES CC_CACHE_MAX_STALE
IDLE_PIDS=() GLANCES_PID=""
cleanup() {
    cc_stop_stack
    [ ${#IDLE_PIDS[@]} -gt 0 ] && kill "${IDLE_PIDS[@]}" 2>/dev/null
    [ -n "$GLANCES_PID" ] && kill "$GLANCES_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$CC_STATE_DIR"
}
trap cleanup EXIT

# wrk --latency -> "req/s p50_ms p99_ms errors"
wrk_run() { # URL CONNECTIONS
    local out
    out="$(timeout $((DURATION + 30)) wrk -t2 -c"$2" -d"${DURATION}s" --timeout 5s --latency "$1" 2>&1)"
    "$CC_ROOT/Scripts/lib/wrk-summary" <<<"$out"
}

refreshes() { # -> processes refresh count from /api/pool/status
    curl -s "http://127.0.0.1:$CC_HTTP_PORT/api/pool/status" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"]["processes"]["refreshes"])'
}

pass() { # LABEL CONDITION(python expr)
    if python3 -c "import sys; sys.exit(0 if ($2) else 1)"; then echo "  ok:   $1"; else echo "  FAIL: $1"; fi
}

for _ in $(seq "$IDLE"); do sleep 600 & IDLE_PIDS+=($!); done
NPROC="$(ls /proc | grep -c '^[0-9]')"
echo "processes on the host: $NPROC (including $IDLE idle ones started for this run)"

# --- 1. refresh cost vs ps --------------------------------------------------
ours="$("$CC_BIN" snapshot processes --repeat 30)"
ours_us="$(sed -n 's/.*median_us=\([0-9]*\).*/\1/p' <<<"$ours")"
ps_us="$(python3 - <<'PY'
import subprocess, time
ts = []
for _ in range(30):
    t = time.perf_counter()
    subprocess.run(["ps", "-eo", "pid,ppid,user,stat,pcpu,pmem,rss,comm"], stdout=subprocess.DEVNULL)
    ts.append(time.perf_counter() - t)
ts.sort()
print(int(ts[len(ts) // 2] * 1e6))
PY
)"
echo "1. full refresh: $ours"
echo "   ps -eo pid,ppid,user,stat,pcpu,pmem,rss,comm: median_us=$ps_us (whole run, incl. exec)"
ratio="$(python3 -c "print(f'{$ours_us/$ps_us:.2f}')")"
echo "   ratio refresh/ps = $ratio"
pass "refresh <= 1.5x ps" "$ratio <= 1.5"
rm -rf "$CC_STATE_DIR/cache"

# --- 2. wrk on the default view ----------------------------------------------
cc_start_stack --bench || exit 1
base="http://127.0.0.1:$CC_HTTP_PORT"
curl -sf "$base/api/system/processes" -o "$CC_STATE_DIR/bench/processes.json" || { echo "processes route failed"; exit 1; }
before="$(refreshes)"
read -r rps p50 p99 errs <<<"$(wrk_run "$base/api/system/processes" "$CONNS")"
after="$(refreshes)"
n=$((after - before))
bytes="$(curl -s "$base/api/system/processes" | wc -c)"
echo "2. /api/system/processes, $CONNS connections, ${DURATION}s ($bytes bytes/response)"
printf '   %-28s %10s %9s %9s %7s %10s\n' target "req/s" "p50 ms" "p99 ms" errors refreshes
printf '   %-28s %10s %9s %9s %7s %10s\n' "ours (snapshot cache)" "$rps" "$p50" "$p99" "$errs" "$n"
sleep 1.5 # nginx flushes its buffered view log every second
python3 - "$CC_STATE_DIR/access.log" <<'PY'
import sys
nginx = workers = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        if b'"/api/system/processes"' not in line: continue
        if b'"served_by":"nginx-view"' in line: nginx += 1
        else: workers += 1
total = max(nginx + workers, 1)
print(f"   sent by nginx from the view file: {nginx} ({nginx/total*100:.1f}%), by workers: {workers}")
PY
pass "0 errors" "$errs == 0"
pass "p99 < 25 ms" "$p99 < 25"
# The collector refreshes every TTL/2 (1 s); requests add none.
pass "<= $((DURATION + 2)) refreshes in ${DURATION}s (the collector's)" "$n <= $((DURATION + 2))"

# --- 3. the same bytes as a static file ---------------------------------------
curl -s "$base/api/system/processes" -o "$CC_STATE_DIR/bench/processes.json"
read -r srps sp50 sp99 serrs <<<"$(wrk_run "$base/__bench/static/processes.json" "$CONNS")"
printf '   %-28s %10s %9s %9s %7s\n' "nginx static, same bytes" "$srps" "$sp50" "$sp99" "$serrs"
sratio="$(python3 -c "print(f'{$rps/max($srps,1)*100:.1f}')")"
echo "3. ours/static = ${sratio}% (the two 10 s runs above)"
# This machine's speed drifts by up to 1.5x within a minute, which two
# back-to-back runs cannot tell from a difference between the targets; so
# the ratio that is judged is the median of alternating short pairs.
ratios=()
for _ in 1 2 3 4 5; do
    read -r a _ _ _ <<<"$(DURATION=3 wrk_run "$base/api/system/processes" "$CONNS")"
    read -r b _ _ _ <<<"$(DURATION=3 wrk_run "$base/__bench/static/processes.json" "$CONNS")"
    ratios+=("$(python3 -c "print(f'{$a/max($b,1)*100:.1f}')")")
done
mratio="$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 3p)"
echo "   alternating 3 s pairs, ours/static: ${ratios[*]} (%) -> median ${mratio}%"
pass "ours >= 70% of static (median of pairs)" "$mratio >= 70"

# --- 4. peers -----------------------------------------------------------------
if [ "$PEERS" = 1 ]; then
    # Glances' web mode (-w) needs bottle, which --no-install-recommends leaves out.
    cc_apt_install glances python3-bottle || true
    if command -v glances >/dev/null; then
        gport="$(cc_free_port)"
        glances -w --disable-webui --bind 127.0.0.1 --port "$gport" >"$CC_STATE_DIR/glances.log" 2>&1 &
        GLANCES_PID=$!
        gurl=""
        for path in /api/3/processlist /api/4/processlist; do
            if cc_wait_for 20 curl -sf "http://127.0.0.1:$gport$path"; then gurl="http://127.0.0.1:$gport$path"; break; fi
        done
        if [ -n "$gurl" ]; then
            read -r grps gp50 gp99 gerrs <<<"$(wrk_run "$gurl" "$CONNS")"
            echo "4. peers at $CONNS connections, ${DURATION}s"
            printf '   %-28s %10s %9s %9s %7s\n' "ours /api/system/processes" "$rps" "$p50" "$p99" "$errs"
            printf '   %-28s %10s %9s %9s %7s\n' "glances $(basename "$(dirname "$gurl")")/processlist" "$grps" "$gp50" "$gp99" "$gerrs"
        else
            echo "4. glances did not serve its process list (see $CC_STATE_DIR/glances.log)"
        fi
    else
        echo "4. glances is not installed; skipping peers"
    fi
fi
