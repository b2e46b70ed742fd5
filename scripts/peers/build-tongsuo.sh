#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build the Tongsuo 8.5.0 `openssl` CLI (RFC 8998 TLS 1.3-SM, TLCP/NTLS) into the cache.
# Source: crates.io tongsuo-src =850.1.1+8.5.0, dir tongsuo/. Skipped when a working binary is cached.
set -euo pipefail
SMTRUST_STEP=tongsuo
. "$(dirname "$0")/common.sh"

dest="$SMTRUST_CACHE/tongsuo-8.5.0"
bin="$dest/openssl"

works() {
  [ -x "$bin" ] && OPENSSL_CONF="$dest/openssl.cnf" "$bin" version 2>/dev/null | grep -q 'Tongsuo 8.5.0'
}

if works; then
  log "cached: $bin"
  exit 0
fi

src=$(fetch_crate_src tongsuo-src 850.1.1+8.5.0)
[ -x "$src/tongsuo/config" ] || die "no tongsuo/config in $src"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/tongsuo" "$work/"
cd "$work/tongsuo"
log "configuring in $work/tongsuo"
./config enable-ntls no-shared no-tests no-module >"$work/config.log" 2>&1 ||
  { tail -n 40 "$work/config.log" >&2; die "./config failed"; }
log "building (make -j2 build_programs)"
make -j2 build_programs >"$work/make.log" 2>&1 ||
  { tail -n 60 "$work/make.log" >&2; die "make build_programs failed"; }
mkdir -p "$dest"
cp apps/openssl "$dest/openssl.tmp"
cp apps/openssl.cnf "$dest/openssl.cnf"
mv "$dest/openssl.tmp" "$bin"
works || die "built $bin but 'openssl version' does not say Tongsuo 8.5.0"
log "built: $bin ($(OPENSSL_CONF="$dest/openssl.cnf" "$bin" version))"
