#!/usr/bin/env bash
# test/scripts/test_clock.sh -- `make test-clock`: the SQL-level suites
# (pg_regress, pgTAP, isolation) at calendar edges and in other time zones.
#
# Builds and installs once (OF_SKIP_BUILD=1: not at all), then runs test.sh
# once per row of RUNS below with OF_SUITES="regress pgtap isolation",
# FAKETIME=<the row's instant> (the private cluster and every client under
# Debian's faketime, the clock running on from there) and OF_TIMEZONE=<the
# row's zone> (the cluster's timezone: the pgTAP sessions' and the
# scheduler's; pg_regress and isolation sessions stay in PST8PDT). The TAP
# suite is not run: its background-worker waits go wrong under faketime.
#
# Ends, like `make test`, with one line `N passed, N failed`: the sum over
# the runs (a run that printed no such line counts as 1 failure). Exit status
# is non-zero if anything failed. KEEP=1 is handed on to every run.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$OF_REPO_ROOT"

# description | FAKETIME | OF_TIMEZONE
RUNS=(
    "a month's first day, 10 min in|2027-03-01 00:10:00 UTC|UTC"
    "a month's last day, 10 min to go|2027-01-31 23:50:00 UTC|UTC"
    "30 min before New York springs forward (07:00 UTC)|2027-03-14 06:30:00 UTC|America/New_York"
    "New York's repeated hour after falling back (01:30 EST; the day before has 25 h)|2027-11-07 06:30:00 UTC|America/New_York"
    "a UTC month's last day, already the next month in Shanghai|2027-04-30 16:10:00 UTC|Asia/Shanghai"
    "a UTC year's last minutes, already New Year in Auckland|2027-12-31 23:50:00 UTC|Pacific/Auckland"
    "a leap day|2028-02-29 12:00:00 UTC|UTC"
)
RUN_SUITES="regress pgtap isolation"

TOTAL_PASS=0
TOTAL_FAIL=0
ROWS=()

finish() {
    local row
    echo
    echo "==================== test-clock summary ===================="
    for row in "${ROWS[@]}"; do
        echo "  $row"
    done
    echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
    [[ $TOTAL_FAIL -eq 0 ]]
}

echo "==================== test-clock: deps ===================="
if ! bash test/scripts/deps.sh faketime; then
    TOTAL_FAIL=$((TOTAL_FAIL + 1))
    ROWS+=("harness: deps.sh failed (counted as 1 failure)")
    finish
    exit 1
fi

echo "==================== test-clock: build + install ===================="
if [[ ${OF_SKIP_BUILD:-0} == 1 ]]; then
    echo "OF_SKIP_BUILD=1: testing the $OF_EXTENSION already installed"
elif build_install; then
    echo "built and installed $OF_EXTENSION"
else
    TOTAL_FAIL=$((TOTAL_FAIL + 1))
    ROWS+=("harness: build/install failed (counted as 1 failure)")
    finish
    exit 1
fi

LOG=$(mktemp /tmp/order_flow_test_clock.XXXXXX)
on_exit "rm -f '$LOG'"

for run in "${RUNS[@]}"; do
    IFS='|' read -r what when zone <<<"$run"
    echo
    echo "#################### test-clock: $what"
    echo "#################### FAKETIME='$when' OF_TIMEZONE=$zone"
    rc=0
    env OF_SKIP_BUILD=1 OF_SUITES="$RUN_SUITES" FAKETIME="$when" OF_TIMEZONE="$zone" \
        bash test/scripts/test.sh 2>&1 | tee "$LOG" || rc=$?
    line=$(tail -n 1 "$LOG")
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        pass=${BASH_REMATCH[1]}
        fail=${BASH_REMATCH[2]}
        if [[ $rc -ne 0 && $fail -eq 0 ]]; then
            fail=1
        fi
    else
        pass=0
        fail=1
    fi
    TOTAL_PASS=$((TOTAL_PASS + pass))
    TOTAL_FAIL=$((TOTAL_FAIL + fail))
    ROWS+=("$(printf '%5d passed, %3d failed  %s (%s, %s)' "$pass" "$fail" "$what" "$when" "$zone")")
done

finish
