# shellcheck shell=bash
# test/scripts/lib.sh -- helpers sourced by test/scripts/{test,demo,bench}.sh
# and by the benchmark scripts in test/bench/*.sh.
#
# Owns: pinning the PostgreSQL toolchain (PG_BIN, PG_CONFIG: 15, or the one
# OF_PG_CONFIG names), building and
# installing the extension (build_install), the private throwaway cluster
# (cluster_start / cluster_stop / cluster_detach), exit-time cleanup hooks
# (on_exit), small client helpers (psql_q, fresh_db, pgbench_tps), and TAP
# output for the suites written in bash (tap_ok, tap_is).
#
# The cluster lives in a temp dir under /tmp owned by postgres: no TCP
# (listen_addresses = ''), its Unix socket in that dir, a random free port,
# fsync = off, the extension in shared_preload_libraries. It is stopped and
# removed when the sourcing script exits; KEEP=1 keeps the directory (data and
# server.log) for inspection. OF_TIMEZONE=ZONE (e.g. America/New_York) sets
# its timezone and log_timezone; unset, initdb picks the machine's zone.

if [[ -n ${_OF_LIB_LOADED:-} ]]; then
    return 0
fi
_OF_LIB_LOADED=1

# The server to build and test against: Debian's PostgreSQL 15 unless
# OF_PG_CONFIG names another pg_config (`make test PG_CONFIG=/x/bin/pg_config`
# passes it on); its binaries come from that pg_config's --bindir.
OF_DEFAULT_PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PG_CONFIG=${OF_PG_CONFIG:-$OF_DEFAULT_PG_CONFIG}
if [[ $PG_CONFIG != "$OF_DEFAULT_PG_CONFIG" ]]; then
    if [[ ! -x $PG_CONFIG ]]; then
        printf 'PG_CONFIG=%s: no such program\n' "$PG_CONFIG" >&2
        exit 2
    fi
    PG_BIN=$("$PG_CONFIG" --bindir)
else
    PG_BIN=/usr/lib/postgresql/15/bin
fi
export PG_CONFIG
# Debian's /usr/bin wrappers pick "the newest version"; put our bin dir first.
export PATH="$PG_BIN:$PATH"

OF_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The extension name comes from the control file at the repository root.
OF_EXTENSION=order_flow
for _of_ctl in "$OF_REPO_ROOT"/*.control; do
    [[ -e $_of_ctl ]] && OF_EXTENSION=$(basename "$_of_ctl" .control)
    break
done
unset _of_ctl

# PGXS directory, e.g. /usr/lib/postgresql/15/lib/pgxs (valid once deps ran).
of_pgxs_dir() {
    local mk
    mk=$("$PG_CONFIG" --pgxs) || return 1
    (cd "$(dirname "$mk")/../.." && pwd)
}

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- exit hooks
# Commands registered with on_exit run in reverse order when the script exits
# (normally, on error under set -e, or on INT/TERM). Scripts sourcing this
# file must not install their own EXIT trap: register with on_exit instead.
_OF_EXIT_HOOKS=()
on_exit() {
    _OF_EXIT_HOOKS+=("$*")
    trap _of_run_exit_hooks EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
_of_run_exit_hooks() {
    local rc=$? i
    trap - EXIT
    set +e
    for ((i = ${#_OF_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
        eval "${_OF_EXIT_HOOKS[i]}"
    done
    exit "$rc"
}

# --------------------------------------------------------------------- build
# build_install: make + make install from the repository root, quietly.
build_install() {
    (
        cd "$OF_REPO_ROOT" &&
            make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" &&
            make -s PG_CONFIG="$PG_CONFIG" install
    )
}

# ------------------------------------------------------------------- cluster
_of_port_in_use() {
    local p=$1 d
    for d in /var/run/postgresql /tmp; do
        [[ -e $d/.s.PGSQL.$p ]] && return 0
    done
    # Something listening on TCP localhost:p?
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
    return 1
}

# cluster_start [extra postgresql.conf lines...]
# Creates and starts the private cluster; exports PGHOST PGPORT PGUSER
# PGDATABASE, plus OF_CLUSTER_DIR, OF_PGDATA and OF_SERVER_LOG.
cluster_start() {
    local dir port tries line
    if [[ -n ${_OF_CLUSTER_OWNED:-} ]]; then
        log "cluster_start: a cluster is already running in $OF_CLUSTER_DIR"
        return 1
    fi
    if [[ ${OF_TIMEZONE:-} == *[\'\\]* ]]; then
        log "cluster_start: OF_TIMEZONE must not contain quotes or backslashes: $OF_TIMEZONE"
        return 1
    fi
    dir=$(mktemp -d /tmp/order_flow.XXXXXX) || return 1
    chown postgres:postgres "$dir" && chmod 700 "$dir" || return 1
    OF_CLUSTER_DIR=$dir
    _OF_CLUSTER_OWNED=1
    on_exit cluster_stop

    for ((tries = 0; tries < 50; tries++)); do
        port=$((5400 + RANDOM % 500))
        _of_port_in_use "$port" || break
    done

    if ! (cd "$dir" && runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" \
        -U postgres -A trust -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1); then
        log "cluster_start: initdb failed:"
        cat "$dir/initdb.log" >&2
        return 1
    fi
    {
        echo ""
        echo "# ---- added by test/scripts/lib.sh cluster_start"
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = off"
        echo "shared_preload_libraries = '$OF_EXTENSION'"
        echo "max_worker_processes = 16"
        if [[ -n ${OF_TIMEZONE:-} ]]; then
            echo "timezone = '$OF_TIMEZONE'"
            echo "log_timezone = '$OF_TIMEZONE'"
        fi
        for line in "$@"; do
            echo "$line"
        done
    } >>"$dir/data/postgresql.conf"

    if ! (cd "$dir" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" \
        -l "$dir/server.log" -w -t 60 -s start); then
        log "cluster_start: server did not start; end of $dir/server.log:"
        tail -n 40 "$dir/server.log" >&2 || true
        return 1
    fi

    export OF_CLUSTER_DIR OF_PGDATA="$dir/data" OF_SERVER_LOG="$dir/server.log"
    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
    unset PGPASSWORD PGSERVICE PGOPTIONS 2>/dev/null || true
}

# cluster_stop: stop the cluster this script started (idempotent); remove its
# directory unless KEEP=1.
cluster_stop() {
    [[ -n ${_OF_CLUSTER_OWNED:-} ]] || return 0
    local dir=$OF_CLUSTER_DIR
    _OF_CLUSTER_OWNED=
    if [[ -f $dir/data/postmaster.pid ]]; then
        (cd "$dir" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" \
            -m fast -w -t 60 -s stop) >/dev/null 2>&1 ||
            log "cluster_stop: pg_ctl stop failed for $dir"
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        log "KEEP=1: cluster directory kept: $dir (server log: $dir/server.log)"
    else
        rm -rf "$dir"
    fi
}

# cluster_detach: leave the cluster running after this script exits.
cluster_detach() {
    _OF_CLUSTER_OWNED=
}

# ------------------------------------------------------------------- clients
# psql_q: quiet psql that stops on the first error and ignores ~/.psqlrc.
psql_q() {
    "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q "$@"
}

# fresh_db NAME [EXTENSION...]: (re)create database NAME, then create the
# listed extensions in it.
fresh_db() {
    local db=$1 ext
    shift
    psql_q -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
        -c "CREATE DATABASE \"$db\"" || return 1
    for ext in "$@"; do
        psql_q -d "$db" -c "CREATE EXTENSION IF NOT EXISTS \"$ext\"" || return 1
    done
}

# pgbench_tps DB SCRIPT CLIENTS SECONDS: run a custom pgbench script
# (no vacuum, -j = clients) and echo the TPS excluding connection time.
# pgbench's own output goes to stderr when it fails.
pgbench_tps() {
    local db=$1 script=$2 clients=$3 secs=$4 out rc=0 tps
    out=$("$PG_BIN/pgbench" -n -c "$clients" -j "$clients" -T "$secs" \
        -f "$script" "$db" 2>&1) || rc=$?
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' <<<"$out")
    if [[ $rc -ne 0 || -z $tps ]]; then
        log "pgbench_tps: pgbench failed (exit $rc) for $script on $db:"
        printf '%s\n' "$out" >&2
        return 1
    fi
    echo "$tps"
}

# bench_check DESCRIPTION VALUE EXPECTED: a benchmark's check of its own
# work; a mismatch is printed and sets broken=1 (the caller exits non-zero)
bench_check() {
    if [[ $2 != "$3" ]]; then
        echo "  CHECK FAILED: $1: got $2, expected $3"
        broken=1
    fi
}

# TAP output for the suites written in bash (test/deb, test/citus): each call
# is the next numbered assertion; the script prints its plan itself.
TAP_N=0
tap_ok() { # tap_ok EXIT-STATUS DESCRIPTION
    TAP_N=$((TAP_N + 1))
    if [[ $1 -eq 0 ]]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"; fi
}
tap_is() { # tap_is HAVE WANT DESCRIPTION
    TAP_N=$((TAP_N + 1))
    if [[ $1 == "$2" ]]; then
        echo "ok $TAP_N - $3"
    else
        echo "not ok $TAP_N - $3"
        echo "#   have: $1"
        echo "#   want: $2"
    fi
}
