#!/usr/bin/env bash
# test/scripts/test.sh -- `make test`: every test suite of the extension.
#
# Owns: running and counting the four suites against one private cluster
# (see lib.sh), then printing, as the very last line, `N passed, N failed`.
#   released   the released install/update scripts (src/sql/released/) are
#              byte for byte what was released: `make check-released`
#              against SHA256SUMS; counted as one test
#   regress    sql/*.sql vs expected/*.out: PGXS's `make installcheck`
#              (pg_regress only); counted per test ("test X ... ok|FAILED")
#   pgtap      test/pgtap/*.sql, each in a fresh database, via pg_prove -v
#              counted per assertion ("ok N" / "not ok N")
#   isolation  test/isolation/specs/*.spec vs
#              test/isolation/expected/*.out, via pg_isolation_regress;
#              counted per spec
#   tap        test/t/*.pl (PostgreSQL::Test::Cluster), run with prove -v as
#              the postgres user from a postgres-owned copy of the tree;
#              counted per assertion
#   clients    test/clients/*: psycopg 3 and SQLAlchemy 1.4 (Debian's) and node pg (npm's, under
#              .build/node) read and write status values against the test
#              cluster, off the search_path; counted per assertion
#   deb        test/deb/package.sh: `make deb`, then the package installed
#              with apt-get into Debian's PostgreSQL 15, used on a fresh
#              cluster and removed again (the tree's build is installed
#              again afterwards); counted per assertion.  Runs as root
#              against Debian's 15 only, and not under a moved clock.
#   citus      test/citus/suite.sh: a Citus coordinator and two workers on
#              127.0.0.1; Citus is not supported yet, and the suite checks
#              that order_flow refuses distributed tables clearly and keeps
#              working with local ones; counted per assertion.  Runs only
#              where Citus is built for the server under test (one line
#              says so otherwise) and not under a moved clock.
# A suite with no files is skipped (0/0). A suite never stops the others. A
# file that dies midway counts its missing planned assertions (at least one)
# as failed. Exit status is non-zero if anything failed.
# KEEP=1 keeps the cluster dir and the scratch dir (TAP copy, logs).
#
# Switches (environment; `make test VAR=value` passes them on):
#   FAKETIME=TIMESTAMP  after the build, run the cluster and every client under
#                       Debian's faketime with the clock starting at TIMESTAMP
#                       (a `date -d` string; give the zone, e.g.
#                       '2027-01-31 23:30:00 UTC'). deps.sh installs faketime.
#                       The TAP suite is skipped (its background-worker waits
#                       go wrong under a moved clock) and counts nothing.
#   OF_TIMEZONE=ZONE    the test cluster's timezone and log_timezone (lib.sh
#                       cluster_start; also TZ for the TAP tests' own initdb).
#                       pg_regress and pg_isolation_regress sessions still run
#                       in PST8PDT (they set PGTZ); pgTAP sessions, the
#                       scheduler and the server defaults follow ZONE.
#   OF_SUITES="..."     the suites to run, of: released regress pgtap isolation
#                       clients tap deb citus (default: all eight).
#   OF_SKIP_BUILD=1     no make / make install: test the extension already
#                       installed (used by test_clock.sh after its one build).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$OF_REPO_ROOT"
shopt -s nullglob

TOTAL_PASS=0
TOTAL_FAIL=0
SUMMARY_ROWS=()
SUMMARY_PRINTED=

print_summary() {
    [[ -n $SUMMARY_PRINTED ]] && return 0
    SUMMARY_PRINTED=1
    local row
    echo
    echo "==================== summary ===================="
    for row in "${SUMMARY_ROWS[@]}"; do
        echo "  $row"
    done
    echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
}

# If the script dies unexpectedly (set -e, signal), still end with the count
# line, counting the crash as one failure. Registered first, so it runs last,
# after the cluster has been stopped.
_on_unexpected_exit() {
    if [[ -z $SUMMARY_PRINTED ]]; then
        TOTAL_FAIL=$((TOTAL_FAIL + 1))
        SUMMARY_ROWS+=("harness: aborted unexpectedly (counted as 1 failure)")
        print_summary
    fi
}
on_exit _on_unexpected_exit

abort() {
    echo "test.sh: $*" >&2
    TOTAL_FAIL=$((TOTAL_FAIL + 1))
    SUMMARY_ROWS+=("harness: $* (counted as 1 failure)")
    cluster_stop
    [[ $(type -t work_cleanup) == function ]] && work_cleanup
    print_summary
    exit 1
}

section() {
    echo
    echo "==================== $* ===================="
}

# record SUITE PASS FAIL [NOTE]
record() {
    TOTAL_PASS=$((TOTAL_PASS + $2))
    TOTAL_FAIL=$((TOTAL_FAIL + $3))
    SUMMARY_ROWS+=("$(printf '%-10s %4d passed, %4d failed%s' "$1" "$2" "$3" "${4:+  ($4)}")")
}

exit_note() {
    if [[ $1 -ne 0 ]]; then echo "exit status $1"; fi
}

# Count pg_regress result lines in file $1 -> sets R_PASS R_FAIL: up to
# PostgreSQL 15 "test X ... ok|FAILED", from 16 TAP-like "ok N - X" / "not ok N - X".
count_pg_regress() {
    R_PASS=$(grep -cE '^(test |     )[^ ].* \.\.\. (ok|failed \(ignored\))|^ok [0-9]+ +- ' "$1" || true)
    R_FAIL=$(grep -cE '^(test |     )[^ ].* \.\.\. FAILED|^not ok [0-9]+ +- ' "$1" || true)
}

# Count top-level TAP results of a `prove -v` / `pg_prove -v` run in file $1,
# given the exit status $2 -> sets T_PASS T_FAIL. Subtest lines are indented
# and not counted; "not ok ... # TODO" counts as passed (expected failure).
count_tap() {
    local f=$1 rc=$2 plan ran
    T_PASS=$(grep -cE '^ok [0-9]+' "$f" || true)
    T_FAIL=$(grep -E '^not ok [0-9]+' "$f" | grep -cvE '# *TODO' || true)
    T_PASS=$((T_PASS + $(grep -E '^not ok [0-9]+' "$f" | grep -cE '# *TODO' || true)))
    plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$f" | head -n 1)
    ran=$((T_PASS + T_FAIL))
    if [[ -n $plan && $plan -gt $ran ]]; then
        T_FAIL=$((T_FAIL + plan - ran))   # died before finishing the plan
    fi
    if [[ $rc -ne 0 && $T_FAIL -eq 0 ]]; then
        T_FAIL=1                          # no plan, bad plan, crash, ...
    fi
}

# ------------------------------------------------------------------ switches
OF_SUITES=${OF_SUITES:-released regress pgtap isolation clients tap deb citus}
for suite in $OF_SUITES; do
    case $suite in
    released | regress | pgtap | isolation | clients | tap | deb | citus) ;;
    *) abort "OF_SUITES: unknown suite '$suite' (known: released regress pgtap isolation clients tap deb citus)" ;;
    esac
done
# The clock: FAKETIME asks for it to be moved (we re-run ourselves under
# faketime after the build, marked by OF_FAKETIME_ACTIVE); a test.sh already
# started under faketime (`faketime ... make test`) is left as it is.
OF_CLOCK_NOTE=
if [[ -n ${OF_FAKETIME_ACTIVE:-} ]]; then
    OF_CLOCK_NOTE="FAKETIME='$OF_FAKETIME_ACTIVE'"
elif [[ ${LD_PRELOAD:-} == *libfaketime* ]]; then
    OF_CLOCK_NOTE="started under faketime"
elif [[ -n ${FAKETIME:-} ]]; then
    OF_FAKETIME=$FAKETIME
fi

# ------------------------------------------------------------------ prepare
if [[ -z ${OF_FAKETIME_ACTIVE:-} ]]; then
    section "deps"
    bash test/scripts/deps.sh ${OF_FAKETIME:+faketime} || abort "deps.sh failed"
fi
PGXS_DIR=$(of_pgxs_dir) || abort "pg_config --pgxs failed"

if [[ -z ${OF_FAKETIME_ACTIVE:-} ]]; then
    section "build + install"
    if [[ ${OF_SKIP_BUILD:-0} == 1 ]]; then
        echo "OF_SKIP_BUILD=1: testing the $OF_EXTENSION already installed"
    else
        build_install || abort "build/install failed"
        echo "built and installed $OF_EXTENSION"
    fi
fi

if [[ -n ${OF_FAKETIME:-} ]]; then
    command -v faketime >/dev/null || abort "FAKETIME is set but faketime is not installed"
    faketime "$OF_FAKETIME" true || abort "faketime does not accept FAKETIME='$OF_FAKETIME'"
    section "clock moved: FAKETIME='$OF_FAKETIME'"
    # the rest of this script, the cluster and every client share one moved
    # clock (faketime's wrapper hands its offset down to every child)
    exec faketime "$OF_FAKETIME" env OF_FAKETIME_ACTIVE="$OF_FAKETIME" \
        bash "$OF_REPO_ROOT/test/scripts/test.sh"
fi

section "clock and time zone"
echo "clock: $(date -u '+%Y-%m-%d %H:%M:%S UTC')${OF_CLOCK_NOTE:+ ($OF_CLOCK_NOTE)}"
echo "server time zone: ${OF_TIMEZONE:-the initdb default (OF_TIMEZONE not set)}"

# shellcheck disable=SC2119
cluster_start || abort "could not start the test cluster"
echo "cluster: PGHOST=$PGHOST PGPORT=$PGPORT"
echo "server: $(psql_q -At -d postgres -c "SELECT format('now() = %s, TimeZone = %s', now(), current_setting('TimeZone'))" || echo '?')"

WORK=$(mktemp -d /tmp/order_flow_test.XXXXXX)
chmod 755 "$WORK"
work_cleanup() {
    [[ -n $WORK ]] || return 0
    if [[ ${KEEP:-0} == 1 ]]; then
        log "KEEP=1: scratch dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    WORK=
}
on_exit work_cleanup

# ---------------------------------------------------- the released scripts
suite_released() {
    section "released scripts"
    if make -s check-released PG_CONFIG="$PG_CONFIG"; then
        echo "src/sql/released/: every script matches SHA256SUMS"
        record released 1 0
    else
        echo "src/sql/released/: a released script was edited (see above)"
        record released 0 1
    fi
}

# ------------------------------------------------------------ a) pg_regress
suite_regress() {
    local files=(sql/*.sql) rc=0 out=$WORK/regress.log
    section "pg_regress (${#files[@]} tests)"
    if [[ ${#files[@]} -eq 0 ]]; then
        echo "no sql/*.sql files: skipped"
        record regress 0 0 "no tests"
        return 0
    fi
    # PGXS's installcheck, pg_regress part only: the isolation and TAP
    # suites run below with this harness's scratch directories and counts
    make -s installcheck PG_CONFIG="$PG_CONFIG" ISOLATION= TAP_TESTS= 2>&1 | tee "$out" || rc=$?
    count_pg_regress "$out"
    if [[ $rc -ne 0 ]]; then
        local missing=$((${#files[@]} - R_PASS - R_FAIL))
        ((missing > 0)) && R_FAIL=$((R_FAIL + missing))
        ((R_FAIL == 0)) && R_FAIL=1
        if [[ -s regression.diffs ]]; then
            echo "---- regression.diffs (first 400 lines) ----"
            head -n 400 regression.diffs
        fi
    fi
    record regress "$R_PASS" "$R_FAIL" "$(exit_note "$rc")"
}

# ----------------------------------------------------------------- b) pgTAP
suite_pgtap() {
    local files=(test/pgtap/*.sql) f rc out pass=0 fail=0 db=order_flow_tap
    section "pgTAP (${#files[@]} files)"
    if [[ ${#files[@]} -eq 0 ]]; then
        echo "no test/pgtap/*.sql files: skipped"
        record pgtap 0 0 "no tests"
        return 0
    fi
    for f in "${files[@]}"; do
        rc=0
        out=$WORK/pgtap_$(basename "$f" .sql).log
        if ! fresh_db "$db" >"$out" 2>&1; then
            cat "$out"
            echo "$f: could not create database $db"
            fail=$((fail + 1))
            continue
        fi
        pg_prove -v --psql-bin "$PG_BIN/psql" -d "$db" "$f" 2>&1 | tee "$out" || rc=$?
        count_tap "$out" "$rc"
        pass=$((pass + T_PASS))
        fail=$((fail + T_FAIL))
    done
    psql_q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    record pgtap "$pass" "$fail"
}

# ------------------------------------------------------------- c) isolation
suite_isolation() {
    local specs=(test/isolation/specs/*.spec) names=() s n
    local rc=0 outdir=$OF_REPO_ROOT/output_iso out=$WORK/isolation.log
    section "isolation (${#specs[@]} specs)"
    if [[ ${#specs[@]} -eq 0 ]]; then
        echo "no test/isolation/specs/*.spec files: skipped"
        record isolation 0 0 "no tests"
        return 0
    fi
    # pg_isolation_regress reads <outputdir>/specs/X.spec before
    # <inputdir>/specs/X.spec, and expected/X.out from <inputdir>/expected.
    rm -rf "$outdir"
    mkdir -p "$outdir/specs"
    for s in "${specs[@]}"; do
        n=$(basename "$s" .spec)
        ln -sf "$OF_REPO_ROOT/$s" "$outdir/specs/$n.spec"
        names+=("$n")
    done
    mapfile -t names < <(printf '%s\n' "${names[@]}" | sort -u)
    "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
        --inputdir="$OF_REPO_ROOT/test/isolation" --outputdir="$outdir" \
        --bindir="$PG_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
        --dbname=order_flow_isolation --load-extension="$OF_EXTENSION" \
        "${names[@]}" 2>&1 | tee "$out" || rc=$?
    count_pg_regress "$out"
    if [[ $rc -ne 0 ]]; then
        local missing=$((${#names[@]} - R_PASS - R_FAIL))
        ((missing > 0)) && R_FAIL=$((R_FAIL + missing))
        ((R_FAIL == 0)) && R_FAIL=1
        if [[ -s $outdir/regression.diffs ]]; then
            echo "---- output_iso/regression.diffs (first 400 lines) ----"
            head -n 400 "$outdir/regression.diffs"
        fi
    fi
    record isolation "$R_PASS" "$R_FAIL" "$(exit_note "$rc")"
}

# ------------------------------------------------------------------- d) TAP
suite_tap() {
    local files=(test/t/*.pl) f rc out pass=0 fail=0 tree=$WORK/tap name log
    section "TAP (${#files[@]} files)"
    if [[ ${#files[@]} -eq 0 ]]; then
        echo "no test/t/*.pl files: skipped"
        record tap 0 0 "no tests"
        return 0
    fi
    # initdb refuses root: run as postgres, from a copy postgres can write.
    rm -rf "$tree"
    mkdir -p "$tree"
    tar -C "$OF_REPO_ROOT" --exclude=./.git --exclude=./results \
        --exclude=./output_iso --exclude=./tmp_check --exclude=./log \
        --exclude='*.o' --exclude='*.bc' --exclude='*.so' -cf - . |
        tar -C "$tree" -xf -
    # TMPDIR: PostgreSQL::Test::Utils puts socket dirs there and keeps them
    # when a test fails; keep them inside the scratch dir.
    mkdir -p "$tree/.tmp"
    chown -R postgres:postgres "$tree"
    for f in "${files[@]}"; do
        rc=0
        name=$(basename "$f" .pl)
        out=$WORK/tap_$name.log
        (cd "$tree" && runuser -u postgres -- env -u PGHOST -u PGPORT \
            -u PGUSER -u PGDATABASE \
            ${OF_TIMEZONE:+TZ="$OF_TIMEZONE"} \
            PATH="$PG_BIN:/usr/local/bin:/usr/bin:/bin" HOME="$tree" TMPDIR="$tree/.tmp" \
            TESTDIR="$tree" PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
            OF_EXPORTER="$tree/.build/exporter/usr/bin/prometheus-postgres-exporter" \
            prove -v -I "$PGXS_DIR/src/test/perl" -I "$tree/test/t" "$f") \
            2>&1 | tee "$out" || rc=$?
        count_tap "$out" "$rc"
        pass=$((pass + T_PASS))
        fail=$((fail + T_FAIL))
        log=$tree/tmp_check/log/regress_log_$name
        if [[ $rc -ne 0 && -f $log ]]; then
            echo "---- end of $log ----"
            tail -n 60 "$log"
        fi
    done
    record tap "$pass" "$fail"
}

# ------------------------------------------------ d') application clients
suite_clients() {
    local rc out pass=0 fail=0 db=order_flow_clients f
    section "clients (psycopg 3, SQLAlchemy, node pg)"
    for f in test/clients/*; do
        [[ $(basename "$f") == _* ]] && continue      # shared helpers, not tests
        rc=0
        out=$WORK/clients_$(basename "$f").log
        if ! fresh_db "$db" order_flow >"$out" 2>&1; then
            cat "$out"
            fail=$((fail + 1))
            continue
        fi
        echo "$f:"
        case $f in
        *.py) PGDATABASE=$db /usr/bin/python3 "$f" 2>&1 | tee "$out" || rc=$? ;;
        *.js) PGDATABASE=$db NODE_PATH="$OF_REPO_ROOT/.build/node/node_modules:/usr/share/nodejs" node "$f" 2>&1 | tee "$out" || rc=$? ;;
        *) continue ;;
        esac
        count_tap "$out" "$rc"
        pass=$((pass + T_PASS))
        fail=$((fail + T_FAIL))
    done
    psql_q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    record clients "$pass" "$fail"
}

# ---------------------------------------------------------- e) the package
# script_suite NAME TITLE SCRIPT: a suite that is one bash script printing TAP
script_suite() {
    local rc=0 out=$WORK/$1.log
    section "$2"
    bash "$3" 2>&1 | tee "$out" || rc=$?
    count_tap "$out" "$rc"
    record "$1" "$T_PASS" "$T_FAIL"
}

suite_deb() { script_suite deb "Debian package" test/deb/package.sh; }

# why the package suite cannot run here (empty: it can)
deb_skip_reason() {
    if [[ -n $OF_CLOCK_NOTE ]]; then
        echo "the clock is moved ($OF_CLOCK_NOTE)"
    elif [[ $PG_CONFIG != "$OF_DEFAULT_PG_CONFIG" ]]; then
        echo "the package is for Debian's PostgreSQL; this run tests $PG_CONFIG"
    elif [[ $(id -u) -ne 0 ]]; then
        echo "installing a package needs root"
    fi
}

# ------------------------------------------------------------- f) Citus
suite_citus() { script_suite citus "Citus" test/citus/suite.sh; }

# why the Citus suite cannot run here (empty: it can)
citus_skip_reason() {
    if [[ ! -f $("$PG_CONFIG" --pkglibdir)/citus.so ]]; then
        echo "Citus is not installed for this server ($("$PG_CONFIG" --version)); README, \"Scale-out on Citus\", says how to build it"
    elif [[ -n $OF_CLOCK_NOTE ]]; then
        echo "the clock is moved ($OF_CLOCK_NOTE)"
    elif [[ $(id -u) -ne 0 ]]; then
        echo "its clusters are started as the postgres user, which needs root"
    fi
}

# ------------------------------------------------------------------- run all
for suite in released regress pgtap isolation clients tap deb citus; do
    if [[ " $OF_SUITES " != *" $suite "* ]]; then
        SUMMARY_ROWS+=("$(printf '%-10s not run (OF_SUITES=%s)' "$suite" "$OF_SUITES")")
        continue
    fi
    if [[ $suite == tap && -n $OF_CLOCK_NOTE ]]; then
        section "TAP"
        echo "TAP suite skipped: the clock is moved ($OF_CLOCK_NOTE) and the background-worker tests' waits go wrong under faketime; nothing counted"
        SUMMARY_ROWS+=("$(printf '%-10s skipped under the moved clock (not counted)' tap)")
        continue
    fi
    if [[ $suite == citus && -n $(citus_skip_reason) ]]; then
        section "Citus"
        echo "Citus suite skipped: $(citus_skip_reason); nothing counted"
        SUMMARY_ROWS+=("$(printf '%-10s skipped: %s (not counted)' citus "$(citus_skip_reason)")")
        continue
    fi
    if [[ $suite == deb && -n $(deb_skip_reason) ]]; then
        section "Debian package"
        echo "package suite skipped: $(deb_skip_reason); nothing counted"
        SUMMARY_ROWS+=("$(printf '%-10s skipped: %s (not counted)' deb "$(deb_skip_reason)")")
        continue
    fi
    if ! "suite_$suite"; then
        TOTAL_FAIL=$((TOTAL_FAIL + 1))
        SUMMARY_ROWS+=("$suite: harness error (counted as 1 failure)")
    fi
done

cluster_stop
work_cleanup
print_summary
[[ $TOTAL_FAIL -eq 0 ]]
