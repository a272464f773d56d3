# A throwaway PostgreSQL cluster for tests and benchmarks. Source it after
# Scripts/lib/common.sh; do not run it.
# shellcheck shell=bash
#
#   cc_pg_start          install if missing, initdb in a temp dir, start on a
#                        free port; exports CC_TEST_POSTGRES_URL, CC_PG_DIR,
#                        CC_PG_PORT, CC_PG_BIN, CC_PG_USER
#   cc_pg_stop_server    stop the server, keep the data (outage scenarios)
#   cc_pg_start_server   start it again on the same port and data
#   cc_pg_stop           stop and delete the cluster (safe to call twice)
#   cc_pg_psql ARGS...   psql against the test database
#
# The server runs as a non-root user: `postgres` when we are root (created
# if absent), ourselves otherwise. Authentication is `trust` on 127.0.0.1
# and a private socket directory: the cluster lives only as long as a run.
# CC_PG_FSYNC=off trades crash safety of the *cluster* for speed (unit
# tests); the default keeps fsync on, as benchmarks must.

cc_pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    return 1
}

cc_pg_install() {
    cc_pg_bindir >/dev/null && return 0
    cc_log "PostgreSQL is missing: installing it from Debian"
    cc_apt_install postgresql postgresql-contrib
    # Debian's package creates and starts a system cluster; we do not use it.
    if command -v pg_lsclusters >/dev/null; then
        pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
            pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
        done
    fi
    cc_pg_bindir >/dev/null
}

# Runs a command as the cluster's owner, from / (the owner may not enter
# the caller's directory: a checkout under a 0700 directory).
cc_pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u "$CC_PG_USER" -- "$@")
    else
        "$@"
    fi
}

cc_pg_start() {
    cc_pg_install || { cc_log "cannot install PostgreSQL"; return 1; }
    CC_PG_BIN=$(cc_pg_bindir)
    if [ "$(id -u)" -eq 0 ]; then
        CC_PG_USER=postgres
        id -u postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    else
        CC_PG_USER=$(id -un)
    fi
    CC_PG_DIR=$(mktemp -d /tmp/cc-pg.XXXXXX)
    chmod 755 "$CC_PG_DIR"
    [ "$(id -u)" -eq 0 ] && chown "$CC_PG_USER" "$CC_PG_DIR"
    CC_PG_PORT=$(cc_free_port)
    export CC_PG_BIN CC_PG_DIR CC_PG_PORT CC_PG_USER
    if ! cc_pg_as "$CC_PG_BIN/initdb" -D "$CC_PG_DIR/data" -U cc -A trust -E UTF8 --no-locale >"$CC_PG_DIR/initdb.log" 2>&1; then
        cc_log "initdb failed:"; cat "$CC_PG_DIR/initdb.log" >&2; return 1
    fi
    cat >>"$CC_PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $CC_PG_PORT
unix_socket_directories = '$CC_PG_DIR'
max_connections = 300
shared_buffers = 64MB
fsync = ${CC_PG_FSYNC:-on}
synchronous_commit = ${CC_PG_SYNCHRONOUS_COMMIT:-on}
log_min_messages = warning
CONF
    cc_pg_start_server || return 1
    cc_pg_as "$CC_PG_BIN/createdb" -h 127.0.0.1 -p "$CC_PG_PORT" -U cc cc_test || return 1
    export CC_TEST_POSTGRES_URL="postgres://cc@127.0.0.1:$CC_PG_PORT/cc_test"
    cc_log "PostgreSQL $("$CC_PG_BIN/postgres" --version | awk '{print $3}') on port $CC_PG_PORT ($CC_PG_DIR)"
}

cc_pg_start_server() {
    cc_pg_as "$CC_PG_BIN/pg_ctl" -D "$CC_PG_DIR/data" -l "$CC_PG_DIR/server.log" -w -t 30 start >/dev/null || {
        cc_log "PostgreSQL did not start:"; tail -20 "$CC_PG_DIR/server.log" >&2; return 1; }
}

cc_pg_stop_server() {
    [ -n "${CC_PG_DIR:-}" ] && [ -d "$CC_PG_DIR/data" ] || return 0
    cc_pg_as "$CC_PG_BIN/pg_ctl" -D "$CC_PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

cc_pg_stop() {
    [ -n "${CC_PG_DIR:-}" ] || return 0
    cc_pg_stop_server
    rm -rf "$CC_PG_DIR"
    unset CC_PG_DIR CC_TEST_POSTGRES_URL
}

cc_pg_psql() {
    "$CC_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CC_PG_PORT" -U cc -d cc_test "$@"
}
