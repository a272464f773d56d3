# Shared by Scripts/run, Scripts/test and Scripts/bench. Source it; do not run it.
# shellcheck shell=bash

CC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

cc_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Installs the Debian packages named, skipping those already present.
cc_apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    cc_log "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # Try the lists the machine has first; a fresh machine needs an update.
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# What building and serving needs.
cc_install_runtime() {
    cc_apt_install nginx libnginx-mod-http-lua libnginx-mod-nchan libfcgi-dev libfcgi0ldbl libsqlite3-dev libpq-dev libsodium-dev libcurl4-openssl-dev pkg-config procps
    # The live channels are always rendered (nchan, and Lua for their resume ids); control-center
    # nginx-config refuses to render without these modules.
    [ -r /usr/lib/nginx/modules/ngx_nchan_module.so ] || { cc_log "nginx's nchan module is missing: install libnginx-mod-nchan"; return 1; }
    [ -r /usr/lib/nginx/modules/ngx_http_lua_module.so ] || { cc_log "nginx's Lua module is missing: install libnginx-mod-http-lua"; return 1; }
}

# The binary, built once per configuration.
cc_build() {
    local conf="${1:-release}"
    (cd "$CC_ROOT" && swift build -c "$conf" --product control-center >&2)
    CC_BIN="$CC_ROOT/.build/$conf/control-center"
}

cc_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A benchmark's own stack: the release binary (built unless CC_BIN names
# one), a fresh state directory /tmp/cc-bench-NAME-*, a free port and the
# logs inside that directory. The caller starts it with cc_start_stack.
cc_bench_env() { # NAME
    if [ -z "${CC_BIN:-}" ]; then cc_build release || return 1; fi
    export CC_BIN
    export CC_STATE_DIR; CC_STATE_DIR="$(mktemp -d "/tmp/cc-bench-$1-XXXXXX")"
    export CC_HTTP_PORT; CC_HTTP_PORT="$(cc_free_port)"
    export CC_LOG_FILE="$CC_STATE_DIR/master.log" CC_ACCESS_LOG="$CC_STATE_DIR/access.log"
}

# Renders nginx's configuration into $CC_STATE_DIR/nginx with this
# deployment's settings (control-center nginx-config; `--bench` adds the
# /__bench reference locations) and checks it with nginx -t. Sets CC_URL,
# where the standalone nginx answers.
cc_render_nginx() {
    local dir="$CC_STATE_DIR/nginx" out
    out="$("$CC_BIN" nginx-config --output "$dir" "$@")" || return 1
    CC_URL="$(printf '%s\n' "$out" | sed -n 's/^url=//p')"
    nginx -t -q -p "$dir" -c "$dir/nginx.conf" 2>&1 | grep -v 'the "user" directive' >&2 || true
}

cc_wait_for() { # cc_wait_for SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

# Starts the master (and its pools) and nginx in the background; arguments
# go to cc_render_nginx (`--bench`). Sets CC_MASTER_PID and CC_NGINX_PID.
cc_start_stack() {
    mkdir -p "$CC_STATE_DIR/log"
    cc_ensure_users "$CC_BIN" || return 1
    cc_render_nginx "$@" || return 1
    "$CC_BIN" serve &
    CC_MASTER_PID=$!
    local sock="${CC_STATE_DIR}/run/fcgi.sock"
    if ! cc_wait_for 20 test -S "$sock"; then
        cc_log "the master did not open $sock"
        return 1
    fi
    nginx -p "$CC_STATE_DIR/nginx" -c "$CC_STATE_DIR/nginx/nginx.conf" 2> >(grep -v -e 'the "user" directive' -e 'shared memory for nchan' >&2) &
    CC_NGINX_PID=$!
    if ! cc_wait_for 10 curl -sf "$CC_URL/health"; then
        cc_log "nginx did not answer $CC_URL/health"
        return 1
    fi
}

cc_stop_stack() {
    # Only pids we started: an empty one must never become `kill 0`, which
    # would signal this whole process group.
    local pids=()
    [ -n "${CC_NGINX_PID:-}" ] && pids+=("$CC_NGINX_PID")
    [ -n "${CC_MASTER_PID:-}" ] && pids+=("$CC_MASTER_PID")
    if [ -n "${CC_NGINX_PID:-}" ] && kill -0 "$CC_NGINX_PID" 2>/dev/null; then
        nginx -p "$CC_STATE_DIR/nginx" -c "$CC_STATE_DIR/nginx/nginx.conf" -s quit 2>/dev/null || kill -QUIT "$CC_NGINX_PID" 2>/dev/null
    fi
    if [ -n "${CC_MASTER_PID:-}" ] && kill -0 "$CC_MASTER_PID" 2>/dev/null; then
        kill -QUIT "$CC_MASTER_PID" 2>/dev/null
    fi
    local deadline=$((SECONDS + 15)) p alive
    while [ $SECONDS -lt $deadline ]; do
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    CC_NGINX_PID=""; CC_MASTER_PID=""
}

# A setting's value as BINARY check-config prints it (the default lives in
# Swift only): cc_setting BINARY NAME.
cc_setting() { "$1" check-config | awk -v n="$2" '$1 == n { print $2 }'; }

# Started as root, the master runs its request workers as CC_USER and the
# supervisor starts services that name no user as CC_SERVICES_USER (README
# "Who runs as whom"): creates those system users if they are missing.
# Nothing to do when not root. cc_ensure_users BINARY
cc_ensure_users() {
    [ "$(id -u)" -eq 0 ] || return 0
    local setting user
    for setting in CC_USER CC_SERVICES_USER; do
        user="$(cc_setting "$1" "$setting")" || return 1
        [ -n "$user" ] || return 1
        id -u "$user" >/dev/null 2>&1 && continue
        useradd --system --no-create-home --shell /usr/sbin/nologin "$user" || return 1
        cc_log "created the system user $user ($setting)"
    done
}

# Grants USER search (x) only, with an ACL, on each directory from / down to
# DIR that USER cannot search, and says so: cc_grant_search USER DIR
cc_grant_search() {
    local user="$1" d="" p parts
    IFS=/ read -ra parts <<< "${2#/}"
    for p in "${parts[@]}"; do
        d="$d/$p"
        runuser -u "$user" -- test -x "$d" && continue
        cc_apt_install acl
        setfacl -m "u:$user:x" "$d"
        cc_log "granted $user search (x) on $d (undo: setfacl -x u:$user $d)"
    done
}

# The dashboard's chart library (nginx serves it from /usr/share/javascript).
cc_install_dashboard() {
    cc_apt_install libjs-chart.js
}
