#!/usr/bin/env bash
# Installs the benchmark peer (tools/peer-js: npm pg-logical-replication feeding kafkajs, exact
# versions pinned in package.json and package-lock.json) into tools/peer-js/node_modules with
# `npm ci`. Used by `./connector bench` (docs/benchmarks.md). Idempotent and fast when already done
# (npm ci writes node_modules/.package-lock.json, which is then newer than the committed lock file).
# Needs node and npm on PATH. Prints lines prefixed with "setup:".
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"
peer_dir="$repo_root/tools/peer-js"
log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (needed for the benchmark peer)"
command -v npm >/dev/null || die "npm is not installed (needed for the benchmark peer)"
[[ -f "$peer_dir/package.json" && -f "$peer_dir/package-lock.json" ]] || die "$peer_dir/package.json or package-lock.json is missing"

installed_version() {
    local manifest="$peer_dir/node_modules/$1/package.json"
    [[ -f "$manifest" ]] || return 0
    node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' "$manifest"
}
wanted_version() {
    node -e 'console.log(require(process.argv[1]).dependencies[process.argv[2]])' "$peer_dir/package.json" "$1"
}

installed_lock="$peer_dir/node_modules/.package-lock.json"
current=true
for package in pg-logical-replication kafkajs pg; do
    [[ "$(installed_version "$package")" == "$(wanted_version "$package")" ]] || current=false
done
if [[ $current == true && -f "$installed_lock" && "$installed_lock" -nt "$peer_dir/package-lock.json" ]]; then
    log "benchmark peer (pg-logical-replication $(installed_version pg-logical-replication), kafkajs $(installed_version kafkajs)) already installed in tools/peer-js"
    exit 0
fi

log "installing the benchmark peer into tools/peer-js (npm ci)"
(cd "$peer_dir" && npm ci --no-audit --no-fund --loglevel=error 2>&1 | sed '/^$/d; /Unknown user config/d; s/^/setup: npm: /')
for package in pg-logical-replication kafkajs pg; do
    got="$(installed_version "$package")"
    [[ "$got" == "$(wanted_version "$package")" ]] || die "npm installed $package $got, expected $(wanted_version "$package")"
done
touch "$installed_lock"
log "benchmark peer installed: pg-logical-replication $(installed_version pg-logical-replication), kafkajs $(installed_version kafkajs)"
