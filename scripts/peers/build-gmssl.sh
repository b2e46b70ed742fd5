#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build the GmSSL 3.1.1 `gmssl` CLI (TLS 1.3-SM, TLCP, certificates, CRLs) into the cache.
# Source: crates.io gmssl-rs-sys 0.1.0, dir GmSSL/. Needs cmake (system-packages.sh).
set -euo pipefail
SMTRUST_STEP=gmssl
. "$(dirname "$0")/common.sh"

dest="$SMTRUST_CACHE/gmssl-3.1.1"
bin="$dest/gmssl"

works() {
  [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q 'GmSSL 3.1.1'
}

if works; then
  log "cached: $bin"
  exit 0
fi
command -v cmake >/dev/null 2>&1 || die "cmake not found (scripts/peers/system-packages.sh installs it)"

src=$(fetch_crate_src gmssl-rs-sys 0.1.0)
[ -f "$src/GmSSL/CMakeLists.txt" ] || die "no GmSSL/CMakeLists.txt in $src"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/GmSSL" "$work/src"
log "configuring in $work"
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  >"$work/cmake.log" 2>&1 || { tail -n 40 "$work/cmake.log" >&2; die "cmake configure failed"; }
log "building gmssl-bin"
cmake --build "$work/build" --target gmssl-bin -j 2 >"$work/build.log" 2>&1 ||
  { tail -n 60 "$work/build.log" >&2; die "cmake --build gmssl-bin failed"; }
out=$(find "$work/build" -type f -name gmssl -perm -u+x | head -n 1)
[ -n "$out" ] || die "gmssl binary not found under $work/build"
mkdir -p "$dest"
cp "$out" "$dest/gmssl.tmp"
mv "$dest/gmssl.tmp" "$bin"
works || die "built $bin but 'gmssl version' does not say GmSSL 3.1.1"
log "built: $bin ($("$bin" version | head -n 1))"
