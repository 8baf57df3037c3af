#!/usr/bin/env bash
# test/scripts/bench.sh -- `make bench`: runs every test/bench/*.sh, in name
# order, against one private cluster tuned only by shared_buffers = 1GB
# (everything else default, plus the harness's fsync = off; durability
# settings such as synchronous_commit are deliberately left alone).
#
# Owns: deps + build/install, the benchmark cluster, running the bench
# scripts and reporting which failed. Each bench script runs as its own bash
# process with PGHOST/PGPORT/PGUSER/PGDATABASE (and OF_PGDATA,
# OF_SERVER_LOG) exported; it may `source test/scripts/lib.sh` for
# psql_q, fresh_db and pgbench_tps (sourcing does not touch the cluster).
# A failing bench script does not stop the others; exit status is non-zero
# if any failed.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$OF_REPO_ROOT"
shopt -s nullglob

bash test/scripts/deps.sh
build_install
cluster_start "shared_buffers = 1GB"
echo "benchmark cluster: PGHOST=$PGHOST PGPORT=$PGPORT (shared_buffers = 1GB, fsync = off)"

# BENCH=name runs only test/bench/name*.sh (e.g. BENCH=10_transition make bench)
scripts=(test/bench/${BENCH:-}*.sh)
if [[ ${#scripts[@]} -eq 0 ]]; then
    echo "no test/bench/*.sh scripts: nothing to run"
    exit 0
fi

failed=()
for s in "${scripts[@]}"; do
    echo
    echo "==================== $s ===================="
    start=$(date +%s)
    rc=0
    bash "$s" || rc=$?
    end=$(date +%s)
    if [[ $rc -ne 0 ]]; then
        echo "$s FAILED (exit status $rc) after $((end - start)) s"
        failed+=("$s")
    else
        echo "$s done in $((end - start)) s"
    fi
done

cluster_stop
echo
if [[ ${#failed[@]} -ne 0 ]]; then
    echo "bench: ${#failed[@]} of ${#scripts[@]} scripts failed: ${failed[*]}"
    exit 1
fi
echo "bench: all ${#scripts[@]} scripts succeeded"
