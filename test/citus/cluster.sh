# shellcheck shell=bash disable=SC2034 # its variables are for the sourcing script
# test/citus/cluster.sh -- a throwaway Citus cluster for the Citus suite and
# benchmarks: a coordinator and two workers on 127.0.0.1, each its own
# PostgreSQL server with citus and the extension preloaded (citus first).
#
# Source it (it sources test/scripts/lib.sh), then:
#
#   citus_available              true when Citus is built for the server
#                                under test (citus.so in pg_config's
#                                --pkglibdir); CITUS_MISSING says why not
#   DIR=$(citus_cluster_dir)     a fresh temp dir owned by postgres (mode 700)
#   citus_cluster_start DIR [CONF-LINE...]
#                                initdb + start the three nodes in
#                                DIR/{coordinator,worker1,worker2} (logs
#                                DIR/<node>.log), each with database app and
#                                CREATE EXTENSION citus; registers the
#                                coordinator (citus_set_coordinator_host) and
#                                both workers (citus_add_node).  CONF-LINEs are
#                                appended to every node's postgresql.conf.
#                                Sets the associative array PORT[node] and
#                                returns non-zero, the failing node's log tail
#                                on stderr, when a step fails.
#   citus_cluster_stop DIR       stop whatever runs in DIR (idempotent) and
#                                remove DIR, unless KEEP=1 (then it says where
#                                the cluster was kept)
#   citus_q NODE SQL             SQL's value(s) in database app on NODE,
#                                unaligned (psql -At), stopping on an error
#   citus_psql NODE [ARG...]     psql as postgres to database app on NODE
#
# NODE is coordinator, worker1 or worker2 (CITUS_NODES lists them).  Every
# node listens on 127.0.0.1 at a random free port (and on a Unix socket in
# DIR), trusts every local connection, has fsync = off and
# max_prepared_transactions = 20 (Citus's two-phase commits).  Run as root:
# the servers run as postgres (runuser).  Register the stop yourself, e.g.
# `on_exit "citus_cluster_stop $DIR"` (lib.sh's exit hooks).

# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

CITUS_NODES=(coordinator worker1 worker2)
declare -gA PORT=()
CITUS_MISSING=

citus_available() {
    local libdir
    libdir=$("$PG_CONFIG" --pkglibdir) || {
        CITUS_MISSING="$PG_CONFIG --pkglibdir failed"
        return 1
    }
    if [[ ! -e $libdir/citus.so ]]; then
        CITUS_MISSING="Citus is not installed for this server (no citus.so in $libdir)"
        return 1
    fi
    CITUS_MISSING=
}

citus_cluster_dir() {
    local dir
    dir=$(mktemp -d /tmp/order_flow_citus.XXXXXX) || return 1
    chown postgres:postgres "$dir" && chmod 700 "$dir" || return 1
    echo "$dir"
}

citus_psql() {
    local node=$1
    shift
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORT[$node]}" -U postgres -d app "$@"
}

citus_q() {
    citus_psql "$1" -At -c "$2"
}

# _citus_free_port: a port nothing listens on, and no node of this cluster took
_citus_free_port() {
    local p tries n taken
    for ((tries = 0; tries < 100; tries++)); do
        p=$((6000 + RANDOM % 2000))
        taken=0
        for n in "${!PORT[@]}"; do
            [[ ${PORT[$n]} == "$p" ]] && taken=1
        done
        ((taken)) && continue
        _of_port_in_use "$p" || {
            echo "$p"
            return 0
        }
    done
    log "citus_cluster_start: no free port found"
    return 1
}

citus_cluster_start() {
    local dir=$1 n p line
    shift
    if [[ ! -d $dir ]]; then
        log "citus_cluster_start: no directory $dir (make one with citus_cluster_dir)"
        return 1
    fi
    PORT=()
    for n in "${CITUS_NODES[@]}"; do
        p=$(_citus_free_port) || return 1
        PORT[$n]=$p
        if ! (cd "$dir" && runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/$n" -U postgres -A trust \
            -E UTF8 --locale=C -N >"$dir/$n.initdb.log" 2>&1); then
            log "citus_cluster_start: initdb of $n failed:"
            cat "$dir/$n.initdb.log" >&2
            return 1
        fi
        {
            echo ""
            echo "# ---- added by test/citus/cluster.sh"
            echo "port = $p"
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$dir'"
            echo "fsync = off"
            echo "shared_preload_libraries = 'citus,$OF_EXTENSION'"
            echo "max_worker_processes = 16"
            echo "max_prepared_transactions = 20"
            for line in "$@"; do
                echo "$line"
            done
        } >>"$dir/$n/postgresql.conf"
        if ! (cd "$dir" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/$n" -l "$dir/$n.log" \
            -w -t 60 -s start); then
            log "citus_cluster_start: $n did not start; end of $dir/$n.log:"
            tail -n 40 "$dir/$n.log" >&2 || true
            return 1
        fi
        "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$p" -U postgres -d postgres \
            -c 'CREATE DATABASE app' || return 1
        citus_q "$n" 'SET client_min_messages = warning; CREATE EXTENSION citus' || return 1
    done
    if ! { citus_q coordinator "SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[coordinator]})" &&
        citus_q coordinator "SELECT citus_add_node('127.0.0.1', ${PORT[worker1]})" &&
        citus_q coordinator "SELECT citus_add_node('127.0.0.1', ${PORT[worker2]})"; } >/dev/null; then
        log "citus_cluster_start: registering the nodes failed"
        return 1
    fi
}

citus_cluster_stop() {
    local dir=$1 n
    [[ -n $dir && -d $dir ]] || return 0
    for n in "${CITUS_NODES[@]}"; do
        if [[ -f $dir/$n/postmaster.pid ]]; then
            (cd "$dir" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/$n" -m fast -w -t 60 -s stop) \
                >/dev/null 2>&1 || log "citus_cluster_stop: pg_ctl stop failed for $dir/$n"
        fi
    done
    if [[ ${KEEP:-0} == 1 ]]; then
        log "KEEP=1: Citus cluster kept in $dir (logs: $dir/<node>.log; start a node with" \
            "runuser -u postgres -- $PG_BIN/pg_ctl -D $dir/<node> -l $dir/<node>.log start)"
    else
        rm -rf "$dir"
    fi
}
