#!/usr/bin/env bash
# Issue 14 target, in a real browser: a live update of the overview redraws
# its charts in under 16 ms of main-thread time, p95 of 200 updates, every
# chart's window full (the 15 min range: 1,000 points per series, so the
# history is seeded with 15 minutes of raw rows before the page opens). Main-thread time is the CPU time of the
# renderer's main thread for the task that ran the update, from Chromium's
# trace (Tests/IntegrationTests/Support/ui_redraw.py): on a shared machine the
# wall time mostly counts waiting for a core, and is reported beside it.
# Samples come every 0.1 s (CC_COLLECT_INTERVAL), so this takes about a minute.
# Usage: Scripts/bench.d/ui.sh   Env: UI_BENCH_UPDATES (default 200), CC_BIN (else built).
set -uo pipefail
source "$(dirname "$0")/../lib/common.sh"
cd "$CC_ROOT"

UPDATES="${UI_BENCH_UPDATES:-200}"
cc_install_dashboard
cc_apt_install curl python3 chromium chromium-driver python3-selenium
cc_bench_env ui || exit 1
export CC_ACCESS_LOG=off CC_SUPERVISOR=false CC_COLLECT_INTERVAL=0.1
printf 'bench-password-1\n' >"$CC_STATE_DIR/pw"
"$CC_BIN" user add bench --role viewer --password-file "$CC_STATE_DIR/pw" >/dev/null || exit 1
cc_start_stack || exit 1
trap 'cc_stop_stack; rm -rf "$CC_STATE_DIR"' EXIT
# 15 minutes of raw history before the collector's first row, one row per
# 0.1 s, each a copy of that row with the cpu figure varied: the page's
# 15 min range then draws a full window from its first back-fill.
sleep 1
python3 - "$CC_STATE_DIR/control-center.db" <<'PY' || { echo "FAIL: could not seed the history"; exit 1; }
import math, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
first, vals = db.execute("SELECT ts, vals FROM history_raw ORDER BY ts LIMIT 1").fetchone()
cpu = db.execute("SELECT id FROM history_series WHERE name = 'cpu'").fetchone()[0] - 1
rows = []
for i in range(1, 9001):
    f = vals.split(",")
    f[cpu] = f"{50 + 40 * math.sin(i / 50):.2f}"
    rows.append((first - i * 100, ",".join(f)))
with db:
    db.executemany("INSERT INTO history_raw (ts, vals) VALUES (?, ?) ON CONFLICT (ts) DO NOTHING", rows)
PY

out="$(/usr/bin/python3 Tests/IntegrationTests/Support/ui_redraw.py "$CC_URL" bench bench-password-1 unused "$UPDATES")" \
    || { echo "FAIL: the browser run failed"; exit 1; }
python3 - "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"     {r['updates']} live updates, full windows: main-thread CPU p50={r['cpu_p50_ms']} ms "
      f"p95={r['cpu_p95_ms']} ms max={r['cpu_max_ms']} ms; wall p50={r['wall_p50_ms']} ms p95={r['wall_p95_ms']} ms")
ok = r["cpu_p95_ms"] < 16
print(("ok:   " if ok else "FAIL: ") + f"p95 {r['cpu_p95_ms']} ms {'<' if ok else '>='} 16 ms (one frame)")
sys.exit(0 if ok else 1)
PY
