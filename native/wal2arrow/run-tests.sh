#!/usr/bin/env bash
# Runs the wal2arrow regression tests (sql/*.sql against expected/*.out) on a throwaway
# PostgreSQL cluster: temporary data directory, a free port, socket under /tmp, wal_level=logical,
# dynamic_library_path pointing at the build folder, output_plugin_libraries when the server has
# that setting (15.20+). Then checks the server log for crashes, decodes one payload with the
# independent apache-arrow JS reader when node is available, reads the plugin's streams with the
# official Apache.Arrow C# reader and compares them by meaning with the C# ChangeBatchBuilder's
# (test-tools/cscheck.sh) when dotnet is available, stops and deletes the cluster.
#   run-tests.sh [BUILD_DIR]     (default: <repo>/.cache/wal2arrow, built by scripts/build-wal2arrow.sh)
# Exit status non-zero on any failure. As root the server runs as the postgres user.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$src/../.." && pwd)"
build="$(cd "${1:-$repo_root/.cache/wal2arrow}" && pwd)"
pg_config="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
bindir="$("$pg_config" --bindir)"
pgxs_dir="$(dirname "$(dirname "$(dirname "$("$pg_config" --pgxs)")")")"
pg_regress="$pgxs_dir/src/test/regress/pg_regress"
log() { printf 'wal2arrow-test: %s\n' "$*"; }
die() { printf 'wal2arrow-test: error: %s\n' "$*" >&2; exit 1; }

[[ -f $build/wal2arrow.so ]] || die "$build/wal2arrow.so not found; run scripts/build-wal2arrow.sh"
[[ -x $pg_regress ]] || die "pg_regress not found at $pg_regress"

as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    as_pg=(runuser -u postgres --)
fi

tmp="$(mktemp -d /tmp/wal2arrow-test.XXXXXX)"
chmod 755 "$tmp"
data="$tmp/data"
sock="$tmp/sock"
mkdir -p "$sock"
[[ ${#as_pg[@]} -eq 0 ]] || chown postgres: "$tmp" "$sock"

port=""
for candidate in $(shuf -i 20000-29999 -n 40); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
    fi
done
[[ -n $port ]] || die "no free port found"

started=0
cleanup() {
    if (( started )); then
        "${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$data" -U postgres --encoding=UTF8 --locale=C.UTF-8 -A trust >"$tmp/initdb.log" 2>&1 \
    || { cat "$tmp/initdb.log"; die "initdb failed"; }
cat >>"$data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$sock'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
dynamic_library_path = '$build:\$libdir'
fsync = off
log_min_messages = warning
CONF
# PostgreSQL 15.20+ loads only listed output plugins; older minors refuse the unknown setting.
if "${as_pg[@]}" "$bindir/postgres" -D "$data" -C output_plugin_libraries >/dev/null 2>&1; then
    echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2arrow'" >>"$data/postgresql.conf"
    log "server has output_plugin_libraries: listing wal2arrow"
fi

"${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -l "$tmp/server.log" -w -t 60 start >/dev/null \
    || { cat "$tmp/server.log"; die "server did not start"; }
started=1
log "cluster on port $port ($tmp)"

export PGHOST="$sock" PGPORT="$port" PGUSER=postgres
# wal2arrow messages of the JS check, read again with Apache.Arrow (C#) by the C# cross-check
export WAL2ARROW_STREAMS_DIR="$tmp/streams"
mkdir -p "$WAL2ARROW_STREAMS_DIR"
"$bindir/createdb" contrib_regression

read -r -a tests <<<"$(sed -n 's/^REGRESS = //p' "$src/Makefile")"
status=0
"$pg_regress" --use-existing --host="$sock" --port="$port" --user=postgres --bindir="$bindir" \
    --inputdir="$src" --outputdir="$build" --dbname=contrib_regression "${tests[@]}" || status=$?
if (( status != 0 )) && [[ -f $build/regression.diffs ]]; then
    cat "$build/regression.diffs"
fi

if grep -E "terminated by signal|server process .* was terminated|PANIC" "$tmp/server.log"; then
    log "the server log shows a crash"
    status=1
fi

# Independent check: decode a payload with apache-arrow (JS) when node is available.
if (( status == 0 )) && command -v node >/dev/null && [[ -z ${WAL2ARROW_SKIP_JS:-} ]]; then
    if ! "$src/test-tools/js-check.sh" "$bindir" contrib_regression; then
        log "apache-arrow JS check failed"
        status=1
    fi
fi

# Check against the C# reference (ChangeBatchBuilder), both read with Apache.Arrow (C#), when dotnet
# is available; it also reads the JS check's chunks with Apache.Arrow.
if (( status == 0 )) && command -v dotnet >/dev/null && [[ -z ${WAL2ARROW_SKIP_CS:-} ]]; then
    if ! "$src/test-tools/cscheck.sh" "$bindir" contrib_regression; then
        log "C# cross-check failed"
        status=1
    fi
fi

if (( status == 0 )); then
    log "all tests passed"
else
    log "FAILED"
fi
exit $status
