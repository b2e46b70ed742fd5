# Shared by scripts/test and scripts/peers/*.sh (sourced, not run).
# shellcheck shell=bash
# The cache lives outside the repo so a fresh clone on the same machine reuses it.
: "${SMTRUST_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/smtrust}"
export SMTRUST_CACHE

log() { printf '[%s] %s\n' "${SMTRUST_STEP:-peers}" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Run a command as root: directly, through sudo, or fail saying why.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "root or sudo is needed to run: $*"
  fi
}

# fetch_crate_src NAME VERSION -> prints the unpacked source dir of a crates.io package.
# cargo does the download and checksum check; a throwaway manifest outside any workspace drives it.
fetch_crate_src() {
  local name=$1 version=$2 tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/src"
  : >"$tmp/src/lib.rs"
  cat >"$tmp/Cargo.toml" <<TOML
[package]
name = "smtrust-peer-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$name = "=$version"

[workspace]
TOML
  cargo fetch --quiet --manifest-path "$tmp/Cargo.toml" >&2 || {
    rm -rf "$tmp"
    die "cargo fetch of $name $version failed"
  }
  cargo metadata --quiet --format-version 1 --manifest-path "$tmp/Cargo.toml" |
    python3 -c '
import json, os, sys
name = sys.argv[1]
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == name:
        print(os.path.dirname(p["manifest_path"]))
        break
else:
    sys.exit("package %s not in cargo metadata" % name)
' "$name" || {
    rm -rf "$tmp"
    die "could not locate the source of $name $version"
  }
  rm -rf "$tmp"
}
