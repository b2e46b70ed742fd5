#!/usr/bin/env bash
# Regenerates the seed corpora from real peers (no smtrust output): Tongsuo 8.5.0 and GmSSL 3.1.1.
#   sniff/: the first bytes each client sends (TLS 1.3-SM, TLCP, plain TLS 1.3) captured on a local socket.
#   cert/:  a Tongsuo SM2 root, a server and a device certificate it signed (GM/T default ID).
# Usage: tls/fuzz/seeds/make.sh   (needs SMTRUST_TONGSUO / SMTRUST_GMSSL or the ~/.cache/smtrust builds)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SMTRUST_CACHE:-$HOME/.cache/smtrust}
T=${SMTRUST_TONGSUO:-$cache/tongsuo-8.5.0/openssl}
G=${SMTRUST_GMSSL:-$cache/gmssl-3.1.1/gmssl}
export OPENSSL_CONF=${OPENSSL_CONF:-$(dirname "$T")/openssl.cnf}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Certificates.
"$T" ecparam -name SM2 -genkey -noout -out root.key
"$T" req -x509 -new -key root.key -sm3 -sigopt distid:1234567812345678 -days 3650 -subj "/CN=fuzz root" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out root.pem
leaf() { # name subject ext
  "$T" ecparam -name SM2 -genkey -noout -out "$1.key"
  "$T" req -new -key "$1.key" -sm3 -sigopt distid:1234567812345678 -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  "$T" x509 -req -in "$1.csr" -CA root.pem -CAkey root.key -sm3 -sigopt distid:1234567812345678 \
    -vfyopt distid:1234567812345678 -days 3650 -extfile "$1.ext" -out "$1.pem"
}
leaf server "/CN=localhost" $'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost'
leaf device "/CN=ctw-0000001234/serialNumber=ctw-0000001234" \
  $'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:urn:smtrust:device:ctw-0000001234'
for c in root server device; do "$T" x509 -in "$c.pem" -outform DER -out "$here/cert/$c.der"; done

# ClientHellos: a one-shot listener keeps the first read.
capture() { # out, then the client command
  local out=$1; shift
  python3 - "$out" 4499 <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2]))); s.listen(1); s.settimeout(10)
open(sys.argv[1] + ".ready", "w").close()
c, _ = s.accept(); c.settimeout(2); buf = b""
try:
    while len(buf) < 5 or len(buf) < 5 + int.from_bytes(buf[3:5], "big"):
        d = c.recv(65536)
        if not d: break
        buf += d
except socket.timeout:
    pass
open(sys.argv[1], "wb").write(buf)
PY
  local pid=$!
  while [ ! -e "$out.ready" ]; do sleep 0.1; done
  rm -f "$out.ready"
  timeout 3 "$@" </dev/null >/dev/null 2>&1 || true
  wait "$pid"
}
SM="-tls1_3 -ciphersuites TLS_SM4_GCM_SM3:TLS_SM4_CCM_SM3 -groups curveSM2 -sigalgs sm2sig_sm3 -enable_sm_tls13_strict"
# shellcheck disable=SC2086
capture "$here/sniff/tongsuo-tls13-sm.bin" "$T" s_client -connect 127.0.0.1:4499 $SM -servername localhost
capture "$here/sniff/tongsuo-tlcp.bin" "$T" s_client -connect 127.0.0.1:4499 -enable_ntls -ntls -cipher ECC-SM2-SM4-CBC-SM3
capture "$here/sniff/tongsuo-tls13-international.bin" "$T" s_client -connect 127.0.0.1:4499 -tls1_3
capture "$here/sniff/gmssl-tls13.bin" "$G" tls13_client -host 127.0.0.1 -port 4499 -cacert root.pem
capture "$here/sniff/gmssl-tlcp.bin" "$G" tlcp_client -host 127.0.0.1 -port 4499 -cacert root.pem
ls -l "$here/sniff" "$here/cert"
