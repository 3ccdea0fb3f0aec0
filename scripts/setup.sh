#!/usr/bin/env bash
# Sets up everything WalBridge needs on a fresh Debian 12 machine of this kind, as root:
#   1. Debian packages (PostgreSQL 15 server + headers, librdkafka's build deps, Node.js tools);
#      RocksDB is not one of them: the NuGet package RocksDB bundles its native library
#   2. librdkafka 2.15.1 built from source with our mock-broker patches (scripts/build-librdkafka.sh),
#      for the test broker only (the connector uses the librdkafka.redist NuGet package)
#   3. the wal2arrow output plugin (native/wal2arrow, PGXS) and npm apache-arrow (tools/arrow-js)
#   4. `dotnet restore` of the solution
# Idempotent and fast when nothing changed. Prints lines prefixed with "setup:".
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"
cd "$repo_root"
log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages -------------------------------------------------------------------
packages=(
    build-essential pkg-config flex bison
    libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev   # librdkafka for the test broker
    postgresql-15 postgresql-server-dev-15 postgresql-contrib   # source database, plugin headers
    nodejs npm                                                  # apache-arrow JS reader (conformance), the benchmark's peer
    gnuplot-nox                                                 # benchmark charts
    procps psmisc util-linux
)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$package")
    fi
done
if (( ${#missing[@]} > 0 )); then
    if [[ $(id -u) -ne 0 ]]; then
        die "missing Debian packages: ${missing[*]} (run this script as root, or install them)"
    fi
    # Node.js may come from outside Debian on this kind of machine; don't fight it.
    if command -v node >/dev/null && command -v npm >/dev/null; then
        filtered=()
        for package in "${missing[@]}"; do
            [[ $package == nodejs || $package == npm ]] || filtered+=("$package")
        done
        missing=("${filtered[@]}")
    fi
    if (( ${#missing[@]} > 0 )); then
        log "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    log "Debian packages present"
fi
command -v dotnet >/dev/null || die "the .NET SDK (dotnet) is not on PATH"
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || die "PostgreSQL 15 server binaries missing after install"
id postgres >/dev/null 2>&1 || die "the 'postgres' user does not exist (Debian's postgresql-15 package creates it)"

# --- 2. librdkafka for the test broker ----------------------------------------------------
"$script_dir/build-librdkafka.sh"

# --- 2b. the wal2arrow output plugin (PGXS), and apache-arrow JS (the independent Arrow reader) ---
"$script_dir/build-wal2arrow.sh"
"$script_dir/setup-js.sh"
"$script_dir/setup-peer.sh"

# --- 3. NuGet restore ---------------------------------------------------------------------
stamp="$repo_root/.cache/restore.stamp"
if [[ ! -f "$stamp" ]] || [[ -n "$(find . -path ./.cache -prune -o \( -name '*.csproj' -o -name '*.props' -o -name 'NuGet.Config' \) -newer "$stamp" -print -quit)" ]]; then
    log "dotnet restore"
    dotnet restore Connector.sln --nologo -v q
    touch "$stamp"
else
    log "NuGet packages restored"
fi
log "done"
