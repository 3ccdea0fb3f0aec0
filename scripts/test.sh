#!/usr/bin/env bash
# The whole test suite on a fresh machine of this kind: setup, build, every test project in
# turn (unit, then integration against a real PostgreSQL 15 and the local broker), then a check
# that nothing was left running. Ends with a line "N passed, N failed".
# --long (or WALBRIDGE_LONG=1) adds the long scenarios: a 10-minute soak and Kafka down for 5 minutes (matrix P5).
set -euo pipefail
long="${WALBRIDGE_LONG:-0}"
for arg in "$@"; do
    case "$arg" in
        --long) long=1 ;;
        *) echo "test: unknown option '$arg' (known: --long)" >&2; exit 2 ;;
    esac
done

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"
cd "$repo_root"

"$script_dir/setup.sh"

echo "test: building (Release)"
dotnet build Connector.sln -c Release --nologo -v q -clp:ErrorsOnly

projects=(
    tests/Serialization.Tests
    tests/Client.Tests
    tests/Offsets.Tests
    tests/Connector.Tests
    tests/Broker.Tests
    tests/Integration
)
results_dir="$repo_root/.cache/test-results"
rm -rf "$results_dir"
mkdir -p "$results_dir"
total_passed=0
total_failed=0
failed_projects=()
for project in "${projects[@]}"; do
    name="$(basename "$project")"
    echo "test: $name"
    log="$results_dir/$name.log"
    set +e
    dotnet test "$project" -c Release --no-build --nologo --logger "console;verbosity=normal" \
        --results-directory "$results_dir" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    # VSTest's closing block: "Total tests: N" then "     Passed: N" / "     Failed: N".
    passed="$(grep -E '^ +Passed: +[0-9]+$' "$log" | tail -n 1 | grep -oE '[0-9]+' || true)"
    failed="$(grep -E '^ +Failed: +[0-9]+$' "$log" | tail -n 1 | grep -oE '[0-9]+' || true)"
    [[ $passed =~ ^[0-9]+$ ]] || passed=0
    [[ $failed =~ ^[0-9]+$ ]] || failed=0
    if (( status != 0 )) && (( failed == 0 )); then
        failed=1   # the run itself failed (crash, build problem)
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    (( status == 0 )) || failed_projects+=("$name")
done

# The wal2arrow plugin's pg_regress suite (throwaway cluster), the crash/fault suite and the randomized check.
run_suite() {
    local name="$1"; shift
    echo "test: $name"
    set +e
    "$@" 2>&1 | tee "$results_dir/$name.log"
    local status=${PIPESTATUS[0]}
    set -e
    if (( status == 0 )); then
        total_passed=$((total_passed + 1))
    else
        total_failed=$((total_failed + 1))
        failed_projects+=("$name")
    fi
}
run_suite wal2arrow-regress "$script_dir/build-wal2arrow.sh" --check
run_suite chaos-quick "$script_dir/chaos.sh" --quick
run_suite chaos-quick-wal2arrow "$script_dir/chaos.sh" --quick --plugin wal2arrow --set topic.partitions=3
run_suite chaos-quick-formats "$script_dir/chaos.sh" --quick --set output.formats=arrow,debezium-avro
# Crashes inside the initial snapshot (docs/chaos.md): 200,000 pre-filled rows, writes going on, both plugins.
run_suite chaos-quick-snapshot "$script_dir/chaos.sh" --quick --prefill 200000 --set snapshot.chunk.rows=20000
run_suite chaos-quick-snapshot-wal2arrow "$script_dir/chaos.sh" --quick --prefill 200000 --plugin wal2arrow --set snapshot.chunk.rows=20000 --set topic.partitions=3
# The randomized end-to-end check (docs/chaos.md), a fixed seed per plugin and pgoutput tuple format, one minute each:
# each must end with "mismatches 0, duplicates 0". Reproduce or extend one with the same line and --minutes M.
run_suite random-pgoutput-binary "$script_dir/chaos.sh" --workload random --seed 101 --minutes 1 --plugin pgoutput --set binary.format=auto --set topic.partitions=3
run_suite random-pgoutput-text "$script_dir/chaos.sh" --workload random --seed 202 --minutes 1 --plugin pgoutput --set binary.format=off
run_suite random-wal2arrow "$script_dir/chaos.sh" --workload random --seed 303 --minutes 1 --plugin wal2arrow --set topic.partitions=3
# Long mode only (docs/operations.md): memory, descriptors, threads and spill space flat over 10 minutes of load and
# faults; Kafka down for 5 minutes while PostgreSQL keeps writing.
if [[ "$long" == 1 ]]; then
    run_suite soak-10min "$repo_root/connector" soak --minutes 10
    run_suite chaos-kafka-outage-5min "$script_dir/chaos.sh" --quick --outage-seconds 300
fi

# Nothing the tests started may still run.
sleep 2
leftovers="$(pgrep -af 'walbridge-pg-|WalBridge.Broker.dll|WalBridge.Connector.dll|WalBridge.DevTools.dll' | grep -v pgrep || true)"
if [[ -n "$leftovers" ]]; then
    echo "test: FAILED: processes left running after the tests:"
    echo "$leftovers"
    total_failed=$((total_failed + 1))
    failed_projects+=("leftover-processes")
fi

echo
if (( ${#failed_projects[@]} > 0 )); then
    echo "test: failing: ${failed_projects[*]}"
fi
echo "$total_passed passed, $total_failed failed"
(( total_failed == 0 ))
