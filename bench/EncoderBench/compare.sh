#!/usr/bin/env bash
# Runs bench/EncoderBench of another commit (default: the merge base with main) and of the working tree side by side,
# alternating, on this machine in one session, and prints rows/s, MB/s of text input, stream bytes and allocated bytes
# per batch of both (median and best of the rounds: on a shared machine other load only ever slows a run down), and the
# CPU seconds of each whole run (startup, JIT, warm-up, encode, decode; all threads). The other commit is checked out
# into a temporary `git worktree` (removed at exit); nothing of it is kept.
#   bench/EncoderBench/compare.sh [--base REF] [--rounds N] [ROWS_PER_BATCH [BATCHES]]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
base=""
rounds=3
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base) base="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        *) break ;;
    esac
done
args=("$@")
if [[ -z $base ]]; then
    base="$(git -C "$repo" merge-base HEAD main)"
fi
base_commit="$(git -C "$repo" rev-parse --short "$base^{commit}")"
head_commit="$(git -C "$repo" rev-parse --short HEAD)"
if [[ -n $(git -C "$repo" status --porcelain -- src bench) ]]; then
    head_commit="$head_commit+changes"
fi

work="$(mktemp -d /tmp/encoderbench-compare.XXXXXX)"
cleanup() {
    git -C "$repo" worktree remove --force "$work/base" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

log() { printf 'compare: %s\n' "$*" >&2; }
log "building $base_commit (temporary worktree) and the working tree ($head_commit)"
git -C "$repo" worktree add --detach "$work/base" "$base" >/dev/null 2>&1
dotnet build "$work/base/bench/EncoderBench/EncoderBench.csproj" -c Release -o "$work/base-bin" -nologo -v q >"$work/base-build.log" 2>&1 \
    || { cat "$work/base-build.log"; exit 1; }
dotnet build "$repo/bench/EncoderBench/EncoderBench.csproj" -c Release -o "$work/head-bin" -nologo -v q >"$work/head-build.log" 2>&1 \
    || { cat "$work/head-build.log"; exit 1; }

# "encode: 1,671,838 rows/s, 252.4 MB/s of text input, 215,336 bytes per 1000-row stream, 10,786 bytes allocated per stream"
parse() { sed -n 's/^encode: \([0-9,]*\) rows\/s, \([0-9.,]*\) MB\/s of text input, \([0-9,]*\) bytes per [0-9]*-row stream, \([0-9,]*\) bytes allocated per stream$/\1 \2 \3 \4/p' | tr -d ','; }

declare -a base_rows=() head_rows=() base_mb=() head_mb=() base_cpu=() head_cpu=()
base_bytes="" head_bytes="" base_alloc=() head_alloc=()
printf '%-7s %-16s %12s %10s %14s %22s %10s\n' round build rows/s MB/s stream-bytes allocated-bytes/batch cpu-s
TIMEFORMAT='%U %S'
for ((r = 1; r <= rounds; r++)); do
    for which in base head; do
        { time dotnet "$work/$which-bin/WalBridge.EncoderBench.dll" "${args[@]}" >"$work/out"; } 2>"$work/time"
        read -r rows mb bytes alloc <<<"$(parse <"$work/out")"
        cpu="$(awk '{printf "%.2f", $1 + $2}' "$work/time")"
        label=$([[ $which == base ]] && echo "$base_commit" || echo "$head_commit")
        printf '%-7s %-16s %12s %10s %14s %22s %10s\n' "$r" "$label" "$rows" "$mb" "$bytes" "$alloc" "$cpu"
        if [[ $which == base ]]; then
            base_rows+=("$rows"); base_mb+=("$mb"); base_bytes="$bytes"; base_alloc+=("$alloc"); base_cpu+=("$cpu")
        else
            head_rows+=("$rows"); head_mb+=("$mb"); head_bytes="$bytes"; head_alloc+=("$alloc"); head_cpu+=("$cpu")
        fi
    done
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }
br="$(median "${base_rows[@]}")"; hr="$(median "${head_rows[@]}")"
bm="$(median "${base_mb[@]}")"; hm="$(median "${head_mb[@]}")"
ba="$(median "${base_alloc[@]}")"; ha="$(median "${head_alloc[@]}")"
bc="$(median "${base_cpu[@]}")"; hc="$(median "${head_cpu[@]}")"
echo
printf '%-26s %16s %16s %9s\n' "median of $rounds rounds" "$base_commit" "$head_commit" "change"
awk -v b="$br" -v h="$hr" 'BEGIN { printf "%-26s %16.0f %16.0f %+8.1f%%\n", "rows/s", b, h, (h - b) * 100 / b }'
awk -v b="$(best "${base_rows[@]}")" -v h="$(best "${head_rows[@]}")" 'BEGIN { printf "%-26s %16.0f %16.0f %+8.1f%%\n", "best rows/s", b, h, (h - b) * 100 / b }'
awk -v b="$bm" -v h="$hm" 'BEGIN { printf "%-26s %16.1f %16.1f %+8.1f%%\n", "MB/s of text input", b, h, (h - b) * 100 / b }'
awk -v b="$ba" -v h="$ha" 'BEGIN { printf "%-26s %16.0f %16.0f %+8.1f%%\n", "allocated bytes per batch", b, h, (h - b) * 100 / b }'
awk -v b="$base_bytes" -v h="$head_bytes" 'BEGIN { printf "%-26s %16.0f %16.0f %+8.1f%%\n", "stream bytes per batch", b, h, (h - b) * 100 / b }'
awk -v b="$bc" -v h="$hc" 'BEGIN { printf "%-26s %16.2f %16.2f %+8.1f%%\n", "CPU seconds per whole run", b, h, (h - b) * 100 / b }'
