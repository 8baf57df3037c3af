#!/usr/bin/env bash
# test/scripts/deps.sh -- `make deps`: installs the Debian packages the build
# and the test/demo/bench harness need, and only those that are missing.
# A machine that already has everything runs no apt command at all; otherwise
# `apt-get update` runs once, then one `apt-get install`.
#
# Owns the package list:
#   postgresql-15                          server (+ pgbench, contrib modules)
#   postgresql-contrib-15 | postgresql-contrib   pgbench (Debian 12: provided by postgresql-15)
#   postgresql-server-dev-15               PGXS, headers, pg_regress, pg_isolation_regress
#   postgresql-15-pgtap                    pgTAP extension
#   libtap-parser-sourcehandler-pgtap-perl pg_prove
#   libipc-run-perl                        TAP tests (PostgreSQL::Test::Cluster)
#   make, gcc                              the build itself
#   prometheus-postgres-exporter           downloaded and unpacked under .build/exporter/
#                                          (not installed), for the monitoring test
#   python3-psycopg, python3-sqlalchemy, python3-psycopg2; nodejs, npm (when
#                                          no node is installed); node `pg` from npm
#                                          under .build/node: the client tests (test/clients/)
# (with OF_PG_CONFIG naming another server, the four postgresql-* packages
# are not installed: that server must bring them), and, only when asked for (`deps.sh faketime`, or OF_FAKETIME / FAKETIME set):
#   faketime                               libfaketime and its wrapper, for
#                                          `make test FAKETIME=...` and `make test-clock`
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

installed() {
    dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# Another server (OF_PG_CONFIG, e.g. `make test PG_CONFIG=/opt/pg18/bin/pg_config`):
# it is not Debian's, so no server package is installed for it; what the
# suites need from it is checked, and a missing piece named.
other_server=
if [[ -n ${OF_PG_CONFIG:-} && $OF_PG_CONFIG != /usr/lib/postgresql/15/bin/pg_config ]]; then
    other_server=$OF_PG_CONFIG
    pgxs=$(cd "$(dirname "$("$other_server" --pgxs)")/../.." && pwd)
    share=$("$other_server" --sharedir)
    absent=()
    for f in "$pgxs/src/test/regress/pg_regress" "$pgxs/src/test/isolation/pg_isolation_regress" \
        "$pgxs/src/test/perl/PostgreSQL/Test/Cluster.pm" "$share/extension/pgtap.control"; do
        [[ -e $f ]] || absent+=("$f")
    done
    if [[ ${#absent[@]} -gt 0 ]]; then
        echo "deps.sh: the server of $other_server lacks what the suites need:" >&2
        printf '  %s\n' "${absent[@]}" >&2
        echo "  (build it with --enable-tap-tests, install src/test/isolation and src/test/perl," >&2
        echo "   and build pgTAP with PG_CONFIG=$other_server; README: Other PostgreSQL versions)" >&2
        exit 1
    fi
fi

missing=()
server_pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap)
[[ -n $other_server ]] && server_pkgs=()
for pkg in "${server_pkgs[@]}" libtap-parser-sourcehandler-pgtap-perl libipc-run-perl make gcc \
    python3-psycopg python3-sqlalchemy python3-psycopg2; do
    installed "$pkg" || missing+=("$pkg")
done
# node and npm for the node `pg` client test: Debian's, unless a node is there already
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    installed nodejs || missing+=(nodejs)
    installed npm || missing+=(npm)
fi
want_faketime=0
for arg in "$@"; do
    case $arg in
    faketime) want_faketime=1 ;;
    *)
        echo "deps.sh: unknown argument '$arg' (known: faketime)" >&2
        exit 2
        ;;
    esac
done
if [[ -n ${OF_FAKETIME:-}${FAKETIME:-} ]]; then
    want_faketime=1
fi
if [[ $want_faketime -eq 1 ]] && ! installed faketime; then
    missing+=(faketime)
fi

# pgbench: on Debian 12 "postgresql-contrib-15" is a virtual package provided
# by postgresql-15 itself; older/newer layouts ship a real package.
need_contrib=0
if [[ -z $other_server ]] && ! installed postgresql-contrib-15 && ! installed postgresql-contrib &&
    [[ ! -x /usr/lib/postgresql/15/bin/pgbench ]]; then
    need_contrib=1
fi

# Debian's Prometheus PostgreSQL exporter, for the monitoring test
# (test/t/113_prometheus_exporter.pl): unpacked under .build/exporter/, not
# installed -- its package would start a system-wide daemon.  Without it
# that test skips, saying so.
EXPORTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.build/exporter
fetch_exporter() {
    local deb
    [[ -x $EXPORTER_DIR/usr/bin/prometheus-postgres-exporter ]] && return 0
    [[ $(id -u) -eq 0 ]] || return 0
    mkdir -p "$EXPORTER_DIR/deb"
    if ! (cd "$EXPORTER_DIR/deb" && apt-get download -q -q prometheus-postgres-exporter) >/dev/null 2>&1; then
        apt-get update -q -q >/dev/null 2>&1 || true
        (cd "$EXPORTER_DIR/deb" && apt-get download -q -q prometheus-postgres-exporter) >/dev/null 2>&1 || {
            echo "deps.sh: could not download prometheus-postgres-exporter (its test will skip)" >&2
            return 0
        }
    fi
    deb=$(ls "$EXPORTER_DIR"/deb/prometheus-postgres-exporter_*.deb | head -n 1)
    dpkg-deb -x "$deb" "$EXPORTER_DIR" && echo "deps.sh: unpacked $(basename "$deb") into .build/exporter" >&2
    return 0
}

# node `pg` from npm's registry, under .build/node (the client test's NODE_PATH)
NODE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.build/node
fetch_node_pg() {
    [[ -f $NODE_DIR/node_modules/pg/package.json ]] && return 0
    command -v npm >/dev/null || return 0
    mkdir -p "$NODE_DIR"
    if (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund --prefix "$NODE_DIR" pg@8) >/dev/null 2>&1; then
        echo "deps.sh: installed node pg $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$NODE_DIR/node_modules/pg/package.json") under .build/node" >&2
    elif [[ $(id -u) -eq 0 ]] && apt-get install -y -q -q --no-install-recommends node-pg >/dev/null 2>&1; then
        echo "deps.sh: npm's registry did not answer; using Debian's node-pg (/usr/share/nodejs)" >&2
    else
        echo "deps.sh: could not install node pg from npm or Debian (its client test will fail)" >&2
    fi
    return 0
}

if [[ ${#missing[@]} -eq 0 && $need_contrib -eq 0 ]]; then
    fetch_exporter
    fetch_node_pg
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing packages (${missing[*]}) and not root" >&2
    exit 1
fi

apt-get update -q -q >/dev/null

if [[ $need_contrib -eq 1 ]]; then
    # A real (non-virtual) postgresql-contrib-15 has a candidate version.
    if apt-cache policy postgresql-contrib-15 2>/dev/null |
        grep -q 'Candidate: [0-9]'; then
        missing+=(postgresql-contrib-15)
    else
        missing+=(postgresql-contrib)
    fi
fi

echo "deps.sh: installing ${missing[*]}" >&2
apt-get install -y -q -q --no-install-recommends "${missing[@]}" >/dev/null
fetch_exporter
fetch_node_pg
