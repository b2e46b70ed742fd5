#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Python venv with PyPI gmssl (a third, pure-Python SM2/SM3/SM4) and pkilint (RFC 5280/6960 linter).
set -euo pipefail
SMTRUST_STEP=venv
. "$(dirname "$0")/common.sh"

venv="$SMTRUST_CACHE/venv"
py="$venv/bin/python"
gmssl_version=3.2.2
pkilint_spec='pkilint>=0.13,<0.14'

works() {
  [ -x "$py" ] && "$py" - "$gmssl_version" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import gmssl.sm2, gmssl.sm3, gmssl.sm4, pkilint  # noqa: F401
assert version("gmssl") == sys.argv[1], version("gmssl")
PY
}

if works; then
  log "cached: $py"
  exit 0
fi
command -v python3 >/dev/null 2>&1 || die "python3 not found"
log "creating $venv"
python3 -m venv --clear "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
"$py" -m pip install --quiet --disable-pip-version-check "gmssl==$gmssl_version" "$pkilint_spec" ||
  die "pip install gmssl==$gmssl_version pkilint failed"
works || die "venv built but gmssl $gmssl_version / pkilint do not import"
log "ready: $py (gmssl $gmssl_version, $("$venv/bin/pip" show pkilint 2>/dev/null | sed -n 's/^Version: /pkilint /p'))"
