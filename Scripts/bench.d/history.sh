#!/usr/bin/env bash
# Metric history benchmark (GET /api/system/history), both engines, the
# issue 11 target: full tiers for the issue's reference host (25 series;
# 48 h raw at 1 s, 90 days at 1 and 15 minutes, 2 years at 1 and 6 hours),
# then cpu,memory,disk for the last 1 h, 24 h, 30 days and 2 years at 1,000
# points:
#   1. in-process through the router (one connection, no nginx), p50/p99 over
#      60 calls each; it runs in the test binary (HistoryBenchmark), built in
#      release with testing enabled (a first build takes minutes), which also
#      seeds the databases;
#   2. through nginx and the storage pool on those seeded databases, wrk at 4
#      connections, each range in its own run: target p99 < 30 ms.
# Prints lines starting with "history-bench" and "history-nginx".
# Usage: Scripts/bench.d/history.sh
# Env: CC_BENCH_HISTORY_ITERATIONS (60), HISTORY_BENCH_DURATION (seconds per
#      wrk run, 30), SCRATCH (swift --scratch-path, default .build-bench-history),
#      CC_BIN (else the release binary built in SCRATCH).
set -uo pipefail
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/postgres.sh"
cd "$CC_ROOT"
cc_apt_install wrk curl
SCRATCH="${SCRATCH:-.build-bench-history}"
DURATION="${HISTORY_BENCH_DURATION:-30}"
SEEDED="$(mktemp -d /tmp/cc-history-bench.XXXXXX)"
cc_pg_start || exit 1
trap 'cc_stop_stack; cc_pg_stop; rm -rf "$SEEDED"' EXIT
CC_BENCH_HISTORY=1 CC_BENCH_HISTORY_KEEP="$SEEDED" \
    swift test -c release -Xswiftc -enable-testing --scratch-path "$SCRATCH" --filter 'History(Postgres)?Benchmark' 2>&1 \
    | grep -E '^history-bench|error:|Executed .* tests'
CC_BIN="${CC_BIN:-$SCRATCH/release/control-center}"
[ -f "$SEEDED/control-center.db" ] || { echo "FAIL: the benchmark left no seeded SQLite database"; exit 1; }

FAILED=0
# Through nginx on each engine's seeded database; the collector keeps writing.
for engine in sqlite postgres; do
    export CC_STATE_DIR; CC_STATE_DIR="$(mktemp -d /tmp/cc-history-stack.XXXXXX)"
    if [ "$engine" = sqlite ]; then
        mv "$SEEDED/control-center.db" "$CC_STATE_DIR/control-center.db"
        export CC_DATABASE_URL="sqlite://$CC_STATE_DIR/control-center.db"
    else
        export CC_DATABASE_URL="$CC_TEST_POSTGRES_URL"
    fi
    export CC_HTTP_PORT; CC_HTTP_PORT="$(cc_free_port)"
    export CC_LOG_FILE="$CC_STATE_DIR/master.log" CC_ACCESS_LOG=off CC_SUPERVISOR=false
    export CC_RATE_LIMIT=1000000 CC_RATE_BURST=1000000
    cc_start_stack || exit 1
    for range in -1h -24h -30d -730d; do
        url="http://127.0.0.1:$CC_HTTP_PORT/api/system/history?metrics=cpu,memory,disk&from=$range"
        tier="$(curl -sf "$url" | python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["tier"], len(b["series"][0]["data"]))')"
        out="$(wrk -t2 -c4 -d"${DURATION}s" --latency "$url" 2>&1)"
        read -r rps p50 p99 errs <<<"$("$CC_ROOT/Scripts/lib/wrk-summary" <<<"$out")"
        verdict=ok
        python3 -c "import sys; sys.exit(0 if float('$p99') < 30 and '$errs' == '0' else 1)" || { verdict=FAIL; FAILED=1; }
        printf 'history-nginx %-8s %-6s tier/buckets %-9s c=4 %ss  req/s %6s  p50 %6s ms  p99 %6s ms  errors %s  %s\n' \
            "$engine" "$range" "$tier" "$DURATION" "$rps" "$p50" "$p99" "$errs" "$verdict"
    done
    cc_stop_stack
    rm -rf "$CC_STATE_DIR"
done
exit "$FAILED"
