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
    cc_apt_install nginx libnginx-mod-http-lua libnginx-mod-http-echo libfcgi-dev libfcgi0ldbl libsqlite3-dev libpq-dev libsodium-dev pkg-config procps
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

# A CC_ boolean as Config reads it (true/1/yes/on).
cc_truthy() {
    case "$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" in 1|true|yes|on) return 0 ;; *) return 1 ;; esac
}

# Seconds (possibly fractional) as whole milliseconds.
cc_millis() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }

# Renders nginx/*.conf into $CC_STATE_DIR/nginx with this deployment's values.
cc_render_nginx() {
    local state="$CC_STATE_DIR" dir="$CC_STATE_DIR/nginx"
    mkdir -p "$dir/tmp" "$state/bench"
    local main="${CC_LISTEN:-unix:$state/run/fcgi.sock}"
    local storage="${CC_STORAGE_LISTEN:-unix:$state/run/fcgi-storage.sock}"
    [ "${CC_STORAGE_WORKERS:-8}" = "0" ] && storage="$main"
    local user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user root;"
    local nchan=""
    # nchan (live updates) is loaded only when asked for: it reserves shared
    # memory at start and nothing publishes through it yet.
    if [ "${CC_NCHAN:-0}" = 1 ] && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
        nchan="load_module /usr/lib/nginx/modules/ngx_nchan_module.so;"
    fi
    local max_body="${CC_MAX_BODY:-1048576}"
    # Only for measuring: CC_NGINX_KEEPALIVE=N turns on kept-alive FastCGI
    # connections (measured harmful with libfcgi; see docs/performance.md).
    local keepalive="" keep_conn="off"
    if [ -n "${CC_NGINX_KEEPALIVE:-}" ]; then keepalive="keepalive ${CC_NGINX_KEEPALIVE};"; keep_conn="on"; fi
    # nginx-served default views need Lua and echo (Debian's modules) and
    # public reads (no token check in nginx); otherwise every request goes to
    # a worker, as before.
    local mods=/usr/lib/nginx/modules
    local view_modules="" views_http="# views off" views="# views off" view_log="access_log off;"
    if cc_truthy "${CC_NGINX_VIEWS:-true}" && cc_truthy "${CC_PUBLIC_READ:-true}" &&
       [ -f "$mods/ngx_http_lua_module.so" ] && [ -f "$mods/ngx_http_echo_module.so" ]; then
        view_modules="load_module $mods/ndk_http_module.so; load_module $mods/ngx_http_lua_module.so; load_module $mods/ngx_http_echo_module.so;"
        views_http="include $dir/control-center-views-http.conf;"
        views="include $dir/control-center-views.conf;"
        case "${CC_ACCESS_LOG:-}" in
            off) view_log="access_log off;" ;;
            "") view_log="access_log /dev/stdout cc_view_json;" ;;
            /*) view_log="access_log $CC_ACCESS_LOG cc_view_json buffer=32k flush=1s;" ;;
            *) view_log="access_log $PWD/$CC_ACCESS_LOG cc_view_json buffer=32k flush=1s;" ;;
        esac
    elif cc_truthy "${CC_NGINX_VIEWS:-true}" && cc_truthy "${CC_PUBLIC_READ:-true}"; then
        cc_log "nginx views off: $mods lacks ngx_http_lua_module.so or ngx_http_echo_module.so (libnginx-mod-http-lua, libnginx-mod-http-echo)"
    fi
    cp "$CC_ROOT/nginx/cc_views.lua" "$dir/cc_views.lua"
    # Exact keys 0.000 .. 0.999 for the view log's duration map.
    awk 'BEGIN { for (i = 0; i < 1000; i++) printf "0.%03d %d;\n", i, i }' > "$dir/control-center-views-ms.map"
    for f in nginx.conf control-center.conf control-center-http.conf control-center-headers.conf \
             control-center-views-http.conf control-center-views.conf control-center-view.inc; do
        sed -e "s|@CC_MAIN_UPSTREAM@|$main|g" \
            -e "s|@CC_STORAGE_UPSTREAM@|$storage|g" \
            -e "s|@CC_REQUEST_TIMEOUT@|${CC_REQUEST_TIMEOUT:-10}|g" \
            -e "s|@CC_MAX_BODY@|$max_body|g" \
            -e "s|@CC_RATE_LIMIT@|${CC_RATE_LIMIT:-50}|g" \
            -e "s|@CC_RATE_BURST@|${CC_RATE_BURST:-100}|g" \
            -e "s|@CC_LOGIN_RATE_LIMIT@|${CC_LOGIN_RATE_LIMIT:-10}|g" \
            -e "s|@CC_NGINX_DIR@|$dir|g" \
            -e "s|@CC_STATE_DIR@|$state|g" \
            -e "s|@CC_HTTP_ADDR@|${CC_HTTP_ADDR:-127.0.0.1}|g" \
            -e "s|@CC_HTTP_PORT@|${CC_HTTP_PORT:-8080}|g" \
            -e "s|@CC_NGINX_WORKERS@|${CC_NGINX_WORKERS:-2}|g" \
            -e "s|@CC_NGINX_USER@|$user_line|g" \
            -e "s|@CC_NCHAN_LOAD@|$nchan|g" \
            -e "s|@CC_UPSTREAM_KEEPALIVE@|$keepalive|g" \
            -e "s|@CC_FASTCGI_KEEP_CONN@|$keep_conn|g" \
            -e "s|@CC_VIEW_MODULES@|$view_modules|g" \
            -e "s|@CC_VIEWS_HTTP_INCLUDE@|$views_http|g" \
            -e "s|@CC_VIEWS_INCLUDE@|$views|g" \
            -e "s|@CC_VIEW_ACCESS_LOG@|$view_log|g" \
            -e "s|@CC_VIEW_TTL_PROCESSES@|$(cc_millis "${CC_CACHE_TTL_PROCESSES:-2}")|g" \
            -e "s|@CC_VIEW_TTL_STATS@|$(cc_millis "${CC_CACHE_TTL_STATS:-2}")|g" \
            -e "s|@CC_VIEW_TTL_NETWORK@|$(cc_millis "${CC_CACHE_TTL_NETWORK:-2}")|g" \
            -e "s|@CC_VIEW_MAX_STALE@|$(cc_millis "${CC_CACHE_MAX_STALE:-30}")|g" \
            "$CC_ROOT/nginx/$f" > "$dir/$f"
    done
    # nginx wants the unit-less size form for client_max_body_size in bytes.
    nginx -t -q -p "$dir" -c "$dir/nginx.conf" 2>&1 | grep -v 'the "user" directive' >&2 || true
}

cc_wait_for() { # cc_wait_for SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

# Starts the master (and its pools) and nginx in the background.
# Sets CC_MASTER_PID and CC_NGINX_PID.
cc_start_stack() {
    mkdir -p "$CC_STATE_DIR/log"
    cc_render_nginx
    "$CC_BIN" serve &
    CC_MASTER_PID=$!
    local sock="${CC_STATE_DIR}/run/fcgi.sock"
    if ! cc_wait_for 20 test -S "$sock"; then
        cc_log "the master did not open $sock"
        return 1
    fi
    nginx -p "$CC_STATE_DIR/nginx" -c "$CC_STATE_DIR/nginx/nginx.conf" 2> >(grep -v 'the "user" directive' >&2) &
    CC_NGINX_PID=$!
    if ! cc_wait_for 10 curl -sf "http://${CC_HTTP_ADDR:-127.0.0.1}:${CC_HTTP_PORT:-8080}/health"; then
        cc_log "nginx did not answer /health on port ${CC_HTTP_PORT:-8080}"
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
