#!/usr/bin/env bash
# A throwaway Control Center stack for one harness run (Scripts/loadtest
# --start-stack): the release binary ($CC_BIN, else built), a fresh state
# directory /tmp/cc-bench-NAME-*, a free port, an operator `loadtest` with a
# random password. Prints `url= state= password=` on one line, keeps the
# stack until its stdin closes, then stops it (the directory stays, with its logs).
#   Scripts/loadtest.d/stack.sh NAME
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib/common.sh
source "$here/../lib/common.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # nginx's master passes it to workers beside worker_rlimit_nofile
cc_bench_env "${1:-loadtest}" >&2 || exit 1
head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$CC_STATE_DIR/loadtest.pw"
"$CC_BIN" user add loadtest --role operator --password-file "$CC_STATE_DIR/loadtest.pw" >/dev/null || exit 1
cc_start_stack >&2 || { cc_stop_stack >&2; exit 1; }
echo "url=$CC_URL state=$CC_STATE_DIR password=$(cat "$CC_STATE_DIR/loadtest.pw")"
cat >/dev/null  # until the harness closes our stdin (or exits)
cc_stop_stack >&2
