#!/usr/bin/env bash
# Event text search micro-benchmark (GET /api/events?q=), both engines:
# 50k events shaped like mixed_load.py's writes, q= at 1/1000, 1/100, 1/10,
# 1/2 density and a <3-character text, limit 100, through EventRepository:
# "before(scan)" is the pre-index query, "after" what requests now run,
# "index-only" the index query without the probe window. Also the cost of a
# one-row write transaction with and without the index. Prints lines
# starting with "search-bench". Not part of Scripts/bench: it runs in the
# test binary (debug build), so absolute figures include debug Swift.
# Usage: Scripts/bench.d/search.sh   Env: CC_BENCH_SEARCH_ROWS (default 50000),
#        SCRATCH (swift --scratch-path, default .build-bench-search)
set -uo pipefail
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/postgres.sh"
cd "$CC_ROOT"
cc_pg_start || exit 1
trap cc_pg_stop EXIT
CC_BENCH_SEARCH=1 swift test --scratch-path "${SCRATCH:-.build-bench-search}" --filter 'EventSearch(Postgres)?Benchmark' 2>&1 \
    | grep -E '^search-bench|error:|Executed .* tests'
