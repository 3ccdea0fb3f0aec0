#!/usr/bin/env bash
# Builds the wal2arrow PostgreSQL output plugin (native/wal2arrow) with PGXS into .cache/wal2arrow/,
# outside the source folder, leaving .cache/wal2arrow/wal2arrow.so for a test cluster's
# dynamic_library_path. Idempotent; fast when up to date. Prints lines prefixed with "setup:".
#   scripts/build-wal2arrow.sh            build
#   scripts/build-wal2arrow.sh --check    build, then run the regression tests on a throwaway cluster
#   scripts/build-wal2arrow.sh --clean    remove the build folder
# PG_CONFIG overrides the pg_config used (default: PostgreSQL 15's).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"
src="$repo_root/native/wal2arrow"
build="$repo_root/.cache/wal2arrow"
pg_config="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    --clean) rm -rf "$build"; log "wal2arrow: removed $build"; exit 0 ;;
    *) die "unknown argument: $1 (use --check or --clean)" ;;
esac

[[ -x $pg_config ]] || die "pg_config not found at $pg_config (install postgresql-server-dev-15 or set PG_CONFIG)"
pgxs="$("$pg_config" --pgxs)"
[[ -f $pgxs ]] || die "PGXS not found ($pgxs): install postgresql-server-dev-15"

mkdir -p "$build"
make_args=(-C "$build" -f "$src/Makefile" VPATH="$src" srcdir="$src" PG_CONFIG="$pg_config")
if [[ -f $build/wal2arrow.so ]] && make -q "${make_args[@]}" all >/dev/null 2>&1; then
    log "wal2arrow: up to date ($build/wal2arrow.so)"
else
    make -s "${make_args[@]}" all 2>&1 | sed 's/^/setup: make: /'
    [[ ${PIPESTATUS[0]} -eq 0 && -f $build/wal2arrow.so ]] || die "wal2arrow: build failed"
    log "wal2arrow: built $build/wal2arrow.so"
fi

if (( check )); then
    exec "$src/run-tests.sh" "$build"
fi
