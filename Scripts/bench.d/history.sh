#!/usr/bin/env bash
# Metric history micro-benchmark (GET /api/system/history), both engines:
# full tiers for the issue's reference host (25 series; 48 h raw at 1 s,
# 90 days at 1 minute, 2 years at 1 hour), then cpu,memory,disk for the last
# 1 h, 24 h, 30 days and 2 years at 1,000 points, p50/p99 over 60 calls each,
# through the router in-process (one connection, no nginx). Prints lines
# starting with "history-bench". It runs in the test binary, built in
# release with testing enabled (a first build takes minutes).
# Usage: Scripts/bench.d/history.sh   Env: CC_BENCH_HISTORY_ITERATIONS (60),
#        SCRATCH (swift --scratch-path, default .build-bench-history)
set -uo pipefail
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/postgres.sh"
cd "$CC_ROOT"
cc_pg_start || exit 1
trap cc_pg_stop EXIT
CC_BENCH_HISTORY=1 swift test -c release -Xswiftc -enable-testing --scratch-path "${SCRATCH:-.build-bench-history}" --filter 'History(Postgres)?Benchmark' 2>&1 \
    | grep -E '^history-bench|error:|Executed .* tests'
