#!/usr/bin/env bash
# Crash and fault scenarios with the exactly-once checks (see tools/DevTools/Chaos/ChaosCommand.cs).
#   scripts/chaos.sh --quick     each scenario once (a few minutes)
#   scripts/chaos.sh             three rounds
#   scripts/chaos.sh --workload random --seed N --minutes M [--plugin wal2arrow] [--set binary.format=off]
#                                the randomized end-to-end check (docs/chaos.md); ends with "random: seed N, …:
#                                mismatches 0, duplicates 0" before the scenario count
# Prints one line per scenario and ends with "scenarios: N, violations: M"; exit 0 only with no violation.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$root/connector" chaos "$@"
