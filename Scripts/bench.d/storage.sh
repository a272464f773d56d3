#!/usr/bin/env bash
# Issue 4 load targets, through nginx, on SQLite and on PostgreSQL:
#   mixed   100 clients: 50% reads (system stats, event list), 30% POST
#           /api/events, 20% heavy (process list, event text search).
#           Pass: 0 errors, p99 < 100 ms, acknowledged writes == rows, no
#           duplicates.
#   kill    the same write load while workers of the storage pool are
#           SIGKILLed every 0.5 s: every acknowledged write is in the
#           database, no partial rows, SQLite integrity_check ok.
#   down    (PostgreSQL) the server is stopped under load: storage routes
#           answer JSON 503 within 1 s, /health/ready 503, /health and
#           /api/system/stats unaffected; after restart the same workers
#           recover within 2 s.
#   slow    200 clients on /api/test/db-sleep while /health and
#           /api/system/stats keep p99 < 50 ms (the storage pool isolates it).
# Usage: Scripts/bench.d/storage.sh [--short] [--engines "sqlite postgres"] [--only "mixed kill down slow"]
# Env: STORAGE_BENCH_DURATION (default 60; --short 10), CC_BIN (else built).
set -uo pipefail
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/postgres.sh"
cd "$CC_ROOT"

DURATION="${STORAGE_BENCH_DURATION:-60}" ENGINES="sqlite postgres" ONLY="mixed kill down slow"
while [ $# -gt 0 ]; do
    case "$1" in
        --short) DURATION="${STORAGE_BENCH_DURATION:-10}"; shift ;;
        --engines) ENGINES="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        *) echo "usage: $0 [--short] [--engines LIST] [--only LIST]" >&2; exit 2 ;;
    esac
done
want() { [[ " $ONLY " == *" $1 "* ]]; }

cc_apt_install wrk curl sqlite3 gcc libc6-dev
if [ -z "${CC_BIN:-}" ]; then cc_build release; fi
LUA_DIR="$(mktemp -d /tmp/cc-storage-bench-lua.XXXXXX)"
FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
ok() { echo "ok:   $*"; }

# --- wrk scripts ------------------------------------------------------------
# Writes are the only 201s, so the client counts acknowledged writes itself.
cat >"$LUA_DIR/mixed.lua" <<'LUA'
local threads = {}
local counter, tid, acked, errors = 0, 0, 0, 0
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
function init(args) tid = tonumber(wrk.thread:get("tid")) or 0 end
local token = os.getenv("BENCH_TOKEN")
local hdr = { ["Authorization"] = "Bearer " .. token }
local post_hdr = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
local writes_only = os.getenv("BENCH_WRITES_ONLY") == "1"
function request()
  local r = math.random(100)
  if writes_only or (r > 50 and r <= 80) then
    counter = counter + 1
    local body = string.format('{"level":"info","source":"bench","message":"w-%d-%d","data":{"n":%d}}', tid, counter, counter)
    return wrk.format("POST", "/api/events", post_hdr, body)
  elseif r <= 25 then return wrk.format("GET", "/api/system/stats", hdr)
  elseif r <= 50 then return wrk.format("GET", "/api/events?limit=50", hdr)
  elseif r <= 90 then return wrk.format("GET", "/api/system/processes", hdr)
  else return wrk.format("GET", "/api/events?q=w-1-1&limit=100", hdr) end
end
function response(status, headers, body)
  if status == 201 then acked = acked + 1
  elseif status ~= 200 then errors = errors + 1 end
  wrk.thread:set("acked", acked); wrk.thread:set("errors", errors)
end
function done(summary, latency, requests)
  local a, e = 0, 0
  for _, t in ipairs(threads) do a = a + (tonumber(t:get("acked")) or 0); e = e + (tonumber(t:get("errors")) or 0) end
  io.write(string.format("ACKED %d\nERRORS %d\n", a, e))
  for _, p in ipairs({50, 99}) do io.write(string.format("P%d_MS %.2f\n", p, latency:percentile(p) / 1000)) end
  io.write(string.format("REQUESTS %d\nSOCKET_ERRORS %d\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
cat >"$LUA_DIR/fast.lua" <<'LUA'
local paths = {"/health", "/api/system/stats"}
local n = 0
function request() n = n + 1; return wrk.format("GET", paths[n % 2 + 1]) end
function done(summary, latency, requests)
  io.write(string.format("P99_MS %.2f\nREQUESTS %d\nNON2XX %d\n", latency:percentile(99) / 1000, summary.requests,
    summary.errors.status))
end
LUA

field() { sed -n "s/^$1 //p" <<<"$2" | tail -1; }

# --- stack ------------------------------------------------------------------
start_stack() { # ENGINE
    export CC_STATE_DIR; CC_STATE_DIR="$(mktemp -d /tmp/cc-storage-bench.XXXXXX)"
    export CC_HTTP_PORT; CC_HTTP_PORT="$(cc_free_port)"
    export CC_LOG_FILE="$CC_STATE_DIR/master.log" CC_ACCESS_LOG=off CC_TEST_ROUTES=true
    export CC_RATE_LIMIT=1000000 CC_RATE_BURST=1000000 CC_LOGIN_RATE_LIMIT=1000
    export CC_STORAGE_WORKERS="${CC_STORAGE_WORKERS:-8}" CC_WORKERS="${CC_WORKERS:-4}"
    if [ "$1" = postgres ]; then export CC_DATABASE_URL="$CC_TEST_POSTGRES_URL"; else unset CC_DATABASE_URL; fi
    printf 'bench-password-1\n' >"$CC_STATE_DIR/pw"
    "$CC_BIN" user add bench --role operator --password-file "$CC_STATE_DIR/pw" >/dev/null || return 1
    cc_start_stack || return 1
    BASE="http://127.0.0.1:$CC_HTTP_PORT"
    BENCH_TOKEN="$(curl -sf -H 'Content-Type: application/json' -d '{"username":"bench","password":"bench-password-1"}' \
        "$BASE/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')" || return 1
    export BENCH_TOKEN
}
stop_stack() { cc_stop_stack; rm -rf "$CC_STATE_DIR"; }

rows() { # ENGINE SQL
    if [ "$1" = postgres ]; then cc_pg_psql -tA -c "$2"; else sqlite3 "$CC_STATE_DIR/control-center.db" "$2"; fi
}

storage_workers() { pgrep -f -- "worker --pool storage" | while read -r p; do
    [ "$(ps -o ppid= -p "$p" | tr -d ' ')" = "$CC_MASTER_PID" ] && echo "$p"; done; }

check_writes() { # ENGINE LABEL ACKED
    local n d
    n="$(rows "$1" "SELECT COUNT(*) FROM events WHERE source = 'bench'")"
    d="$(rows "$1" "SELECT COUNT(DISTINCT message) FROM events WHERE source = 'bench'")"
    echo "     $2: acknowledged=$3 rows=$n distinct=$d"
    # A write killed after commit but before its answer may be in the table
    # unacknowledged (rows >= acked); an acknowledged one must never be missing.
    # wrk stops without reading the answers still in flight, so up to one
    # write per connection can be stored yet unacknowledged.
    if [ "$n" -lt "$3" ]; then fail "$2: $(( $3 - n )) acknowledged writes missing"
    elif [ "$(( n - $3 ))" -gt "${4:-100}" ]; then fail "$2: $(( n - $3 )) more rows than acknowledged + in flight"
    else ok "$2: no acknowledged write lost ($(( n - $3 )) stored but unanswered at wrk's stop, <= ${4:-100} in flight)"; fi
    [ "$n" = "$d" ] && ok "$2: no duplicates" || fail "$2: duplicate rows"
}

bench_mixed() { # ENGINE
    # The C generator of the load harness drains at the end (no request starts
    # after the duration; every one in flight is answered), so the count of
    # acknowledged writes is exact: acknowledged == rows, nothing excused.
    local out
    rows "$1" "DELETE FROM events WHERE source = 'bench'" >/dev/null
    out="$(python3 "$CC_ROOT/Scripts/bench.d/mixed_load.py" "$BASE" "$BENCH_TOKEN" "$DURATION" --users 100 2>&1)"
    local acked errors p50 p99 reqs sock rps unans
    acked="$(field ACKED "$out")" errors="$(field ERRORS "$out")" p50="$(field P50_MS "$out")" p99="$(field P99_MS "$out")"
    reqs="$(field REQUESTS "$out")" sock="$(field SOCKET_ERRORS "$out")" rps="$(field RPS "$out")"
    unans="$(field WRITES_UNANSWERED "$out")"
    if [ -z "$reqs" ]; then fail "mixed/$1: the load generator failed: $out"; return; fi
    echo "     mixed/$1: ${DURATION}s c=100 requests=$reqs rps=$rps p50=${p50}ms p99=${p99}ms errors=$errors socket_errors=$sock"
    sed -n 's/^ROUTE /       /p; s/^BAD_STATUSES /       bad statuses: /p' <<<"$out"
    [ "$errors" = 0 ] && [ "$sock" = 0 ] && ok "mixed/$1: 0 errors" || fail "mixed/$1: errors=$errors socket=$sock"
    python3 -c "import sys; sys.exit(0 if float('$p99') < 100 else 1)" && ok "mixed/$1: p99 < 100 ms" || fail "mixed/$1: p99 ${p99} ms >= 100"
    local n d
    n="$(rows "$1" "SELECT COUNT(*) FROM events WHERE source = 'bench'")"
    d="$(rows "$1" "SELECT COUNT(DISTINCT message) FROM events WHERE source = 'bench'")"
    echo "     mixed/$1: acknowledged=$acked rows=$n distinct=$d unanswered_writes=$unans"
    [ "$acked" = "$n" ] && ok "mixed/$1: acknowledged == rows ($acked)" || fail "mixed/$1: acknowledged $acked != rows $n"
    [ "$n" = "$d" ] && ok "mixed/$1: no duplicates" || fail "mixed/$1: duplicate rows"
}

bench_kill() { # ENGINE
    rows "$1" "DELETE FROM events WHERE source = 'bench'" >/dev/null
    local len=$(( DURATION < 20 ? DURATION : 20 )) out kills=0
    BENCH_WRITES_ONLY=1 wrk -t2 -c50 -d"${len}s" --timeout 5s -s "$LUA_DIR/mixed.lua" "$BASE" >"$CC_STATE_DIR/kill.out" 2>&1 &
    local wrk_pid=$!
    local end=$((SECONDS + len - 1))
    while [ $SECONDS -lt $end ]; do
        sleep 0.5
        local victim; victim="$(storage_workers | shuf -n1)"
        [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null && kills=$((kills + 1))
    done
    wait "$wrk_pid"
    out="$(cat "$CC_STATE_DIR/kill.out")"
    echo "     kill/$1: ${len}s c=50 writes, $kills workers SIGKILLed, requests=$(field REQUESTS "$out") non-2xx=$(field ERRORS "$out") (502s of killed requests expected)"
    check_writes "$1" "kill/$1" "$(field ACKED "$out")" "$((50 + kills))"
    local partial; partial="$(rows "$1" "SELECT COUNT(*) FROM events WHERE source = 'bench' AND (message NOT LIKE 'w-%' OR data IS NULL)")"
    [ "$partial" = 0 ] && ok "kill/$1: no partial rows" || fail "kill/$1: $partial partial rows"
    if [ "$1" = sqlite ]; then
        local ic; ic="$(sqlite3 "$CC_STATE_DIR/control-center.db" 'PRAGMA integrity_check')"
        [ "$ic" = ok ] && ok "kill/sqlite: integrity_check ok" || fail "kill/sqlite: integrity_check: $ic"
    fi
}

# Status and time of one request: "CODE SECONDS CONTENT_TYPE".
probe() { curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total} %{content_type}' -H "Authorization: Bearer $BENCH_TOKEN" "$1"; }

bench_down() {
    BENCH_WRITES_ONLY=0 wrk -t1 -c20 -d15s --timeout 5s -s "$LUA_DIR/mixed.lua" "$BASE" >/dev/null 2>&1 &
    local wrk_pid=$!
    sleep 2
    cc_pg_stop_server
    local stopped=$SECONDS
    sleep 1
    local worst=0 bad=0 r code t ct
    for i in $(seq 1 10); do
        for path in /api/events?limit=5 /api/auth/me; do
            r="$(probe "$BASE$path")"; read -r code t ct <<<"$r"
            [ "$code" = 503 ] && [[ "$ct" == application/json* ]] || { bad=1; echo "     down: $path -> $r"; }
            worst="$(python3 -c "print(max($worst, $t))")"
        done
    done
    [ "$bad" = 0 ] && ok "down: storage routes JSON 503 (slowest ${worst}s)" || fail "down: storage routes not JSON 503"
    python3 -c "import sys; sys.exit(0 if $worst < 1 else 1)" && ok "down: 503 within 1 s" || fail "down: slowest 503 took ${worst}s"
    read -r code t ct <<<"$(probe "$BASE/health/ready")"
    [ "$code" = 503 ] && ok "down: /health/ready 503" || fail "down: /health/ready $code"
    for path in /health /api/system/stats; do
        read -r code t ct <<<"$(probe "$BASE$path")"
        [ "$code" = 200 ] && ok "down: $path 200 (${t}s)" || fail "down: $path $code"
    done
    local before; before="$(storage_workers | sort | tr '\n' ' ')"
    cc_pg_start_server
    local started; started="$(date +%s.%N)" recovered=""
    while python3 -c "import sys,time; sys.exit(0 if time.time() - $started < 10 else 1)"; do
        read -r code t ct <<<"$(probe "$BASE/api/events?limit=1")"
        if [ "$code" = 200 ]; then recovered="$(python3 -c "import time; print(round(time.time() - $started, 2))")"; break; fi
        sleep 0.05
    done
    # Every worker, not just one: a few requests per storage worker.
    for i in $(seq 1 $((CC_STORAGE_WORKERS * 4))); do read -r code t ct <<<"$(probe "$BASE/api/events?limit=1")"; [ "$code" = 200 ] || recovered=""; done
    local after; after="$(storage_workers | sort | tr '\n' ' ')"
    wait "$wrk_pid"
    [ -n "$recovered" ] && python3 -c "import sys; sys.exit(0 if $recovered < 2 else 1)" \
        && ok "down: recovered ${recovered}s after restart" || fail "down: no recovery within 2 s (${recovered:-never})"
    [ "$before" = "$after" ] && ok "down: same workers (no restart)" || echo "     down: worker set changed: [$before] -> [$after]"
}

bench_slow() { # ENGINE
    local ms=$(( DURATION * 1000 + 5000 ))
    [ "$ms" -gt 30000 ] && ms=30000
    wrk -t1 -c200 -d"$((DURATION + 2))s" --timeout 60s "$BASE/api/test/db-sleep?ms=2000" >/dev/null 2>&1 &
    local slow_pid=$!
    sleep 2
    local out p99 n non
    out="$(wrk -t1 -c20 -d"${DURATION}s" --timeout 5s -s "$LUA_DIR/fast.lua" "$BASE" 2>&1)"
    wait "$slow_pid"
    p99="$(field P99_MS "$out")" n="$(field REQUESTS "$out")" non="$(field NON2XX "$out")"
    echo "     slow/$1: 200 clients on db-sleep 2 s; /health + /api/system/stats c=20: requests=$n p99=${p99}ms non2xx=${non}"
    python3 -c "import sys; sys.exit(0 if float('$p99') < 50 else 1)" && ok "slow/$1: fast routes p99 < 50 ms" \
        || fail "slow/$1: fast routes p99 ${p99} ms"
}

PG=0
for engine in $ENGINES; do
    if [ "$engine" = postgres ]; then
        cc_pg_start || { fail "cannot start PostgreSQL"; continue; }
        PG=1
    fi
    echo "-- $engine"
    if start_stack "$engine"; then
        want mixed && bench_mixed "$engine"
        want kill && bench_kill "$engine"
        want slow && bench_slow "$engine"
        [ "$engine" = postgres ] && want down && bench_down
        stop_stack
    else
        fail "$engine: stack did not start"; stop_stack
    fi
    [ "$engine" = postgres ] && cc_pg_stop
done
rm -rf "$LUA_DIR"
exit $FAILED
