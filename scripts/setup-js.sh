#!/usr/bin/env bash
# Installs the independent Arrow reader used by the tests: npm apache-arrow (exact version pinned in
# tools/arrow-js/package.json and package-lock.json) into tools/arrow-js/node_modules with `npm ci`.
# Idempotent and fast when already done (the installed lock file is compared with the committed one).
# Needs node and npm on PATH. Prints lines prefixed with "setup:".
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"
js_dir="$repo_root/tools/arrow-js"
log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (needed for the apache-arrow conformance reader)"
command -v npm >/dev/null || die "npm is not installed (needed for the apache-arrow conformance reader)"
[[ -f "$js_dir/package.json" && -f "$js_dir/package-lock.json" ]] || die "$js_dir/package.json or package-lock.json is missing"

wanted="$(node -e 'console.log(require(process.argv[1]).dependencies["apache-arrow"])' "$js_dir/package.json")"
installed_lock="$js_dir/node_modules/.package-lock.json"
installed_version=""
if [[ -f "$js_dir/node_modules/apache-arrow/package.json" ]]; then
    installed_version="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' "$js_dir/node_modules/apache-arrow/package.json")"
fi

# npm ci writes node_modules/.package-lock.json; it is newer than package-lock.json when nothing changed since.
if [[ "$installed_version" == "$wanted" && -f "$installed_lock" && "$installed_lock" -nt "$js_dir/package-lock.json" ]]; then
    log "apache-arrow $installed_version already installed in tools/arrow-js"
    exit 0
fi

log "installing apache-arrow $wanted into tools/arrow-js (npm ci)"
(cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error 2>&1 | sed '/^$/d; s/^/setup: npm: /')
installed_version="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' "$js_dir/node_modules/apache-arrow/package.json")"
[[ "$installed_version" == "$wanted" ]] || die "npm installed apache-arrow $installed_version, expected $wanted"
touch "$installed_lock"
log "apache-arrow $installed_version installed"
