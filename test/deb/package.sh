#!/usr/bin/env bash
# test/deb/package.sh -- the Debian package, end to end (TAP on stdout):
# `make deb` builds postgresql-15-order-flow; `apt-get install ./<deb>` puts
# it into Debian's PostgreSQL 15; a fresh cluster of that server (the
# library preloaded) runs CREATE EXTENSION, a managed table and a
# transition, the chain verifies and version() reports the packaged
# version; `apt-get remove` takes every file away again.  The tree's own
# build is taken away before the package goes in, so nothing but the
# package can answer.  The package
# installs into the same directories as `make install`, so the tree's own
# build is installed again at the end (whatever happened).
#
# Needs root (apt-get) and Debian's PostgreSQL 15 (test.sh runs it only
# then).
set -uo pipefail

# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$OF_REPO_ROOT"
export DEBIAN_FRONTEND=noninteractive

PKG=postgresql-15-order-flow

echo "1..13"

restore_build() {
    dpkg-query -W "$PKG" >/dev/null 2>&1 && apt-get remove -y -q -q "$PKG" >/dev/null 2>&1
    build_install >/dev/null 2>&1 || echo "# could not reinstall the tree's build" >&2
}
on_exit restore_build

deb=$(make -s deb 2>"${TMPDIR:-/tmp}/of_deb.err" | grep -v -- '-dbgsym_' | tail -n 1)
tap_ok $? "make deb builds the package"
[[ -n $deb && -f $deb ]] || { cat "${TMPDIR:-/tmp}/of_deb.err" >&2; deb=; }
tap_is "$(dpkg-deb -f "$deb" Package 2>/dev/null)" "$PKG" "the package is $PKG"
tap_is "$(dpkg-deb -f "$deb" Version 2>/dev/null)" "$(dpkg-parsechangelog -l debian/changelog -S Version)" \
    "its version is debian/changelog's"

contents=$(dpkg-deb -c "$deb" 2>/dev/null | awk '{ print $6 }')
want_files=(./usr/lib/postgresql/15/lib/order_flow.so
    ./usr/share/postgresql/15/extension/order_flow.control
    "./usr/share/postgresql/15/extension/order_flow--$(sed -n "s/^default_version = '\(.*\)'/\1/p" order_flow.control).sql"
    ./usr/share/doc/postgresql-doc-15/extension/README.order_flow.md.gz
    ./usr/share/doc/$PKG/copyright ./usr/share/doc/$PKG/changelog.gz)
absent=()
for f in "${want_files[@]}"; do
    grep -qxF "$f" <<<"$contents" || absent+=("$f")
done
tap_is "${absent[*]}" "" "the library, the scripts, the documentation, licence and changelog are inside"

# the tree's own build goes first, so what runs below is the package's
for f in "${want_files[@]}"; do
    [[ $f == ./usr/share/doc/* ]] || rm -f "${f#.}"
done
rm -f /usr/share/postgresql/15/extension/order_flow--*.sql

apt-get install -y -q -q "./$deb" >/dev/null 2>&1
tap_ok $? "apt-get install ./$deb"
tap_is "$(dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null)" "install ok installed" "dpkg knows it installed"

# a fresh cluster of Debian's server, loading the packaged library
(
    _OF_EXIT_HOOKS=()    # this subshell stops its cluster, and nothing else, when it ends
    cluster_start >/dev/null 2>&1 || { echo "could not start a cluster" >&2; exit 1; }
    psql_q -At -d postgres <<'SQL'
CREATE EXTENSION order_flow;
CREATE TABLE deb_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('deb_orders');
INSERT INTO deb_orders (id) VALUES ('deb-1');
UPDATE deb_orders SET status = 'quoted' WHERE id = 'deb-1';
SELECT 'state=' || status FROM deb_orders;
SELECT 'events=' || count(*) FROM order_flow.audit_log WHERE order_key = 'deb-1';
SELECT 'problems=' || count(*) FROM order_flow.verify_audit();
SELECT 'version=' || order_flow.version();
SELECT 'scheduler=' || count(*) FROM pg_stat_activity WHERE backend_type = 'order_flow launcher';
SQL
) >"${TMPDIR:-/tmp}/of_deb_cluster.out" 2>&1
out=$(cat "${TMPDIR:-/tmp}/of_deb_cluster.out")
tap_is "$(sed -n 's/^state=//p' <<<"$out")" "quoted" "CREATE EXTENSION and a transition on the packaged build"
tap_is "$(sed -n 's/^events=//p' <<<"$out")" "2" "... recorded in the audit log"
tap_is "$(sed -n 's/^problems=//p' <<<"$out")" "0" "... and the chain verifies"
tap_is "$(sed -n 's/^scheduler=//p' <<<"$out")" "1" "the preloaded library runs its launcher"
grep -q '^version=' <<<"$out" || sed 's/^/# /' <<<"$out"
tap_ok $? "version() answers: $(sed -n 's/^version=//p' <<<"$out")"

apt-get remove -y -q -q "$PKG" >/dev/null 2>&1
tap_ok $? "apt-get remove $PKG"
left=()
for f in "${want_files[@]}"; do
    [[ $f == ./usr/share/doc/$PKG/* ]] && continue   # copyright stays until purge
    [[ -e ${f#.} ]] && left+=("${f#.}")
done
tap_is "${left[*]}" "" "removing it takes the library, scripts and documentation away"
