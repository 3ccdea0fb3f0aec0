#!/usr/bin/env bash
# Builds librdkafka 2.15.1 from source with WalBridge's mock-broker patches and installs it
# under .cache/librdkafka/2.15.1-<patches hash>, with .cache/librdkafka/current pointing at it.
#
# Why from source: Debian's librdkafka is too old, and the mock broker needs our patches (see
# scripts/patches/: read_committed Fetch, fencing, CreateTopics, ...). The sources come from
# the npm package @confluentinc/kafka-javascript, which vendors librdkafka.
#
# The patches are applied in the order of the `patches` list below; the hash covers their
# names, order and contents, so changing, adding or reordering a patch rebuilds from pristine
# sources. A patch file in scripts/patches/ that is not in the list is an error.
#
# Idempotent: when the library for the current patches hash is installed, only the symlink is
# checked and the script exits. Safe to run concurrently (serialised with flock).
set -euo pipefail

readonly NPM_PACKAGE='@confluentinc/kafka-javascript'
readonly NPM_VERSION='1.10.1'
readonly LIBRDKAFKA_VERSION='2.15.1'

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"
patch_dir="$script_dir/patches"
# In application order: each one is made against the sources with the previous ones applied.
readonly patches=(
    "librdkafka-${LIBRDKAFKA_VERSION}-mock-read-committed.patch"
    "librdkafka-${LIBRDKAFKA_VERSION}-mock-create-topics.patch"
)

cache="$repo_root/.cache"
downloads="$cache/downloads"
src_dir="$cache/build/librdkafka-src"
# Build logs live outside the source tree: mklove's configure treats ./configure.* files as
# modules, so a ./configure.log breaks it.
logs="$cache/build/librdkafka-logs"
install_root="$cache/librdkafka"

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

for name in "${patches[@]}"; do
    [[ -f "$patch_dir/$name" ]] || die "patch not found: $patch_dir/$name"
done
for file in "$patch_dir"/librdkafka-"${LIBRDKAFKA_VERSION}"-*.patch; do
    listed=0
    for name in "${patches[@]}"; do
        [[ "$(basename "$file")" == "$name" ]] && listed=1
    done
    (( listed )) || die "$file is not in the patches list of $(basename "${BASH_SOURCE[0]}")"
done
# Names and contents, in order.
patch_hash="$(for name in "${patches[@]}"; do printf '%s\n' "$name"; cat "$patch_dir/$name"; done \
    | sha256sum | cut -c1-12)"
prefix_name="${LIBRDKAFKA_VERSION}-${patch_hash}"
prefix="$install_root/$prefix_name"
current="$install_root/current"

mkdir -p "$downloads" "$cache/build" "$logs" "$install_root"

# Fast path, before taking the lock: nothing to do.
if [[ -f "$current/lib/librdkafka.so.1" && "$(readlink "$current")" == "$prefix_name" ]]; then
    log "librdkafka $prefix_name up to date ($current/lib/librdkafka.so.1)"
    exit 0
fi

# Serialise concurrent runs (e.g. two test runs starting at once); the second one then
# finds the finished build.
exec 9>"$install_root/.lock"
flock 9

point_current() {
    # Relative link so the repository can be moved; -n replaces the link, not its target.
    ln -sfn "$prefix_name" "$current"
    log "librdkafka ready: $current -> $prefix_name"
}

if [[ -f "$prefix/lib/librdkafka.so.1" ]]; then
    point_current
    exit 0
fi

# 1. Download the npm tarball (reused when present).
tarball="$downloads/confluentinc-kafka-javascript-${NPM_VERSION}.tgz"
if [[ ! -s "$tarball" ]]; then
    log "downloading ${NPM_PACKAGE}@${NPM_VERSION} with npm pack"
    tmp_dl="$(mktemp -d "$downloads/.pack.XXXXXX")"
    trap 'rm -rf "$tmp_dl"' EXIT
    (cd "$tmp_dl" && npm pack "${NPM_PACKAGE}@${NPM_VERSION}" --silent >/dev/null)
    packed=("$tmp_dl"/*.tgz)
    [[ -f "${packed[0]}" ]] || die "npm pack produced no tarball"
    mv -f "${packed[0]}" "$tarball"
    rm -rf "$tmp_dl"
    trap - EXIT
else
    log "reusing $tarball"
fi

# 2. Extract and patch the sources. A stamp records which patches the tree carries, so an
#    interrupted build resumes incrementally while changed patches get a pristine tree.
stamp="$src_dir/.walbridge-patch-$patch_hash"
if [[ ! -f "$stamp" ]]; then
    log "extracting librdkafka ${LIBRDKAFKA_VERSION} sources into $src_dir"
    rm -rf "$src_dir" "$cache/build/.extract"
    mkdir -p "$cache/build/.extract"
    tar -xzf "$tarball" -C "$cache/build/.extract" package/deps/librdkafka
    mv "$cache/build/.extract/package/deps/librdkafka" "$src_dir"
    rm -rf "$cache/build/.extract"
    grep -q "RD_KAFKA_VERSION 0x020f01ff" "$src_dir/src/rdkafka.h" \
        || die "unexpected librdkafka version in $tarball (want ${LIBRDKAFKA_VERSION})"
    for name in "${patches[@]}"; do
        log "applying $name"
        (cd "$src_dir" && patch -p1 --forward --batch --quiet < "$patch_dir/$name") \
            || die "$name does not apply"
    done
    touch "$stamp"
fi

# 3. Configure, build, install.
cd "$src_dir"
if [[ ! -f "$src_dir/.walbridge-configured-$patch_hash" ]]; then
    log "configuring (prefix $prefix)"
    ./configure --prefix="$prefix" --disable-gssapi --disable-curl >"$logs/configure.log" 2>&1 \
        || { tail -n 40 "$logs/configure.log" >&2; die "configure failed (see $logs/configure.log)"; }
    touch "$src_dir/.walbridge-configured-$patch_hash"
fi
log "building (make -j2 libs; about a minute on 2 cores)"
make -j2 libs >"$logs/build.log" 2>&1 \
    || { tail -n 40 "$logs/build.log" >&2; die "build failed (see $logs/build.log)"; }
log "installing into $prefix"
# install-subdirs is `make install` without doc-install: the npm package omits the examples/
# folder that doc-install wants.
make install-subdirs >"$logs/install.log" 2>&1 \
    || { tail -n 40 "$logs/install.log" >&2; die "install failed (see $logs/install.log)"; }
[[ -f "$prefix/lib/librdkafka.so.1" ]] || die "install did not produce $prefix/lib/librdkafka.so.1"

point_current
