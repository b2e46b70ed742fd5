#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Debian packages the tests need. apt runs only when one is missing, so re-runs stay fast.
set -euo pipefail
SMTRUST_STEP=apt
. "$(dirname "$0")/common.sh"

# cmake: GmSSL build. mosquitto(-clients): MQTT broker tests. postgresql: store tests.
packages=(cmake mosquitto mosquitto-clients postgresql)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "all installed: ${packages[*]}"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"
log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
aptlog=$(mktemp)
trap 'rm -f "$aptlog"' EXIT
as_root apt-get update -qq >"$aptlog" 2>&1 || { cat "$aptlog" >&2; die "apt-get update failed"; }
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
  >"$aptlog" 2>&1 || { tail -n 40 "$aptlog" >&2; die "apt-get install ${missing[*]} failed"; }
log "installed: ${missing[*]}"
