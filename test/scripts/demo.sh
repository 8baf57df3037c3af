#!/usr/bin/env bash
# test/scripts/demo.sh -- `make demo`: replays test/demo/demo.sql (a
# wholesaler's day) against a freshly built extension in a private cluster.
#
# Owns: deps + build/install, a throwaway cluster, database "demo" with the
# extension created, running and timing the demo script. The cluster is
# stopped and removed at the end, unless KEEP=1: then it is left running and
# the command to connect (and to stop it) is printed.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$OF_REPO_ROOT"

DEMO_SQL=test/demo/demo.sql
if [[ ! -f $DEMO_SQL ]]; then
    echo "demo.sh: $DEMO_SQL does not exist (yet): nothing to demo" >&2
    exit 1
fi

bash test/scripts/deps.sh
build_install
# shellcheck disable=SC2119
cluster_start

fresh_db demo "$OF_EXTENSION"

echo "==================== $DEMO_SQL ===================="
start=$(date +%s%N)
rc=0
"$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -d demo -f "$DEMO_SQL" || rc=$?
end=$(date +%s%N)
elapsed_ms=$(((end - start) / 1000000))
echo "===================================================="
if [[ $rc -ne 0 ]]; then
    echo "demo FAILED (psql exit status $rc) after ${elapsed_ms} ms" >&2
    echo "end of server log:" >&2
    tail -n 30 "$OF_SERVER_LOG" >&2 || true
else
    printf 'demo finished in %d.%03d s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000))
fi

if [[ ${KEEP:-0} == 1 ]]; then
    cluster_detach
    cat <<MSG

KEEP=1: the demo cluster is still running.
  connect:  psql -h $PGHOST -p $PGPORT -U postgres -d demo
  log:      $OF_SERVER_LOG
  stop:     runuser -u postgres -- $PG_BIN/pg_ctl -D $OF_PGDATA -m fast stop && rm -rf $OF_CLUSTER_DIR
MSG
fi
exit "$rc"
