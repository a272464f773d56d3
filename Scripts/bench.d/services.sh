#!/usr/bin/env bash
# Issue 12 targets, through nginx:
#  1. GET /api/services with 200 registered services at 50 connections, the
#     default page (page_size 50): p99 < 50 ms and 0 errors; page_size=200 is
#     measured and reported too (the supervisor off: the list alone).
#  2. With the supervisor (services_actions.py): start?wait=5 and stop?wait=5
#     of a ready-at-once service with a 0.1 s start timeout (p50/p99, target
#     start p99 < 200 ms), stops of a 10-process tree (< 1 s), and the
#     supervisor's CPU with 50 services HTTP-probed every 10 s (<= 0.5%).
# Usage: Scripts/bench.d/services.sh
# Env: SERVICES_BENCH_DURATION (wrk seconds, default 10), SERVICES_ACTION_PAIRS (60),
#      SERVICES_IDLE_SECONDS (30; 0 skips the CPU figure), CC_BIN (else built).
set -uo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$CC_ROOT"

DURATION="${SERVICES_BENCH_DURATION:-10}"
cc_apt_install wrk curl
if [ -z "${CC_BIN:-}" ]; then cc_build release; fi
FAILED=0

export CC_STATE_DIR; CC_STATE_DIR="$(mktemp -d /tmp/cc-services-bench.XXXXXX)"
export CC_HTTP_PORT; CC_HTTP_PORT="$(cc_free_port)"
export CC_LOG_FILE="$CC_STATE_DIR/master.log" CC_ACCESS_LOG=off CC_SUPERVISOR=false
export CC_RATE_LIMIT=1000000 CC_RATE_BURST=1000000
printf 'bench-password-1\n' >"$CC_STATE_DIR/pw"
"$CC_BIN" user add bench --role viewer --password-file "$CC_STATE_DIR/pw" >/dev/null || exit 1
python3 - "$CC_STATE_DIR/services.json" <<'PY'
import json, sys
json.dump([{"name": f"svc-{i:03d}", "description": f"bench service {i}", "command": ["/bin/sleep", "1000"],
             "port": 10000 + i, "depends_on": [f"svc-{i - 1:03d}"] if i % 10 else []} for i in range(200)],
          open(sys.argv[1], "w"))
PY
"$CC_BIN" services import "$CC_STATE_DIR/services.json" || exit 1
cc_start_stack || exit 1
PROBE_PID=""
trap 'cc_stop_stack; [ -n "$PROBE_PID" ] && kill "$PROBE_PID"; rm -rf "$CC_STATE_DIR"' EXIT
BASE="http://127.0.0.1:$CC_HTTP_PORT"
TOKEN="$(curl -sf -H 'Content-Type: application/json' -d '{"username":"bench","password":"bench-password-1"}' \
    "$BASE/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')" || exit 1

run() { # PATH -> "req/s p50 p99 errors"
    local out
    out="$(wrk -t2 -c50 -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$BASE$1" 2>&1)"
    "$CC_ROOT/Scripts/lib/wrk-summary" <<<"$out"
}
total="$(curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/api/services" | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["total"])')"
echo "     $total services registered; wrk c=50 ${DURATION}s"
read -r rps p50 p99 err <<<"$(run /api/services)"
echo "     default page (50): req/s=$rps p50=${p50}ms p99=${p99}ms errors=$err"
[ "$err" = 0 ] && echo "ok:   0 errors" || { echo "FAIL: $err errors"; FAILED=1; }
python3 -c "import sys; sys.exit(0 if float('$p99') < 50 else 1)" && echo "ok:   p99 < 50 ms" || { echo "FAIL: p99 ${p99} ms >= 50"; FAILED=1; }
read -r rps p50 p99 err <<<"$(run '/api/services?page_size=200')"
echo "     page_size=200: req/s=$rps p50=${p50}ms p99=${p99}ms errors=$err (reported, no target)"
cc_stop_stack

# 2. Actions and the supervisor's CPU: a state directory of their own, so that
# the registry holds the issue's 50 probed services (and the two measured)
# only; the services are stopped with the stack.
LIST_STATE_DIR="$CC_STATE_DIR"
CC_STATE_DIR="$(mktemp -d /tmp/cc-services-bench.XXXXXX)"
CC_LOG_FILE="$CC_STATE_DIR/master.log"
trap 'cc_stop_stack; [ -n "$PROBE_PID" ] && kill "$PROBE_PID"; rm -rf "$CC_STATE_DIR" "$LIST_STATE_DIR"' EXIT
printf 'bench-password-1\n' >"$CC_STATE_DIR/pw"
mkdir -p "$CC_STATE_DIR/log"
PROBE_PORT="$(cc_free_port)"
python3 -m http.server "$PROBE_PORT" --bind 127.0.0.1 --directory "$CC_STATE_DIR/log" >/dev/null 2>&1 &
PROBE_PID=$!
"$CC_BIN" user add ops --role operator --password-file "$CC_STATE_DIR/pw" >/dev/null || exit 1
python3 - "$CC_STATE_DIR/actions.json" "$PROBE_PORT" <<'PY'
import json, sys
port = int(sys.argv[2])
tree = "for i in 1 2 3 4 5 6 7 8 9; do sleep 3600 & done; wait"
defs = [{"name": "act", "command": ["/bin/sleep", "3600"], "start_timeout_seconds": 0.1},
        {"name": "tree", "command": ["/bin/sh", "-c", tree], "start_timeout_seconds": 0.1}]
defs += [{"name": f"probed-{i:02d}", "command": ["/bin/sleep", "3600"], "start_timeout_seconds": 0.1,
          "health_check": {"type": "http", "url": f"http://127.0.0.1:{port}/", "interval_seconds": 10}} for i in range(50)]
json.dump(defs, open(sys.argv[1], "w"))
PY
"$CC_BIN" services import "$CC_STATE_DIR/actions.json" >/dev/null || exit 1
CC_SUPERVISOR=true CC_SERVICES_STOP_ON_EXIT=true cc_start_stack || exit 1
TOKEN="$(curl -sf -H 'Content-Type: application/json' -d '{"username":"ops","password":"bench-password-1"}' \
    "$BASE/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')" || exit 1
echo "     load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
python3 "$CC_ROOT/Scripts/bench.d/services_actions.py" "$BASE" "$TOKEN" "$CC_MASTER_PID" \
    "${SERVICES_ACTION_PAIRS:-60}" 10 50 "${SERVICES_IDLE_SECONDS:-30}" || FAILED=1
exit "$FAILED"
