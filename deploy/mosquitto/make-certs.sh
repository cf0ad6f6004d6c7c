#!/usr/bin/env bash
# Make a private CA and a server certificate for Mosquitto's TLS listener.
#
#   deploy/mosquitto/make-certs.sh OUTDIR BROKER_NAME [EXTRA_NAME ...]
#
# BROKER_NAME (and any EXTRA_NAME) are the host names or IP addresses clients
# use to reach the broker, e.g. `make-certs.sh certs mqtt.lan 192.168.1.10`.
# Writes OUTDIR/ca.crt (give this to the listener and Home Assistant), ca.key
# (keep it offline), server.crt and server.key (for mosquitto only).
# The same commands by hand are listed in deploy/README.md.
# EDGE_CERT_DAYS (825) and EDGE_CERT_BITS (3072) change validity and RSA size.
set -euo pipefail

if [[ $# -lt 2 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,12s/^# \{0,1\}//p' "$0"
    exit 2
fi
out="$1"
shift
cn="$1"
days="${EDGE_CERT_DAYS:-825}"
bits="${EDGE_CERT_BITS:-3072}"

san=""
for name in "$@"; do
    if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then
        san+="${san:+,}IP:$name"
    else
        san+="${san:+,}DNS:$name"
    fi
done

mkdir -p "$out"
umask 077
# 1. The certificate authority.
openssl req -x509 -newkey "rsa:$bits" -sha256 -nodes -days 3650 \
    -subj "/CN=edge-listener MQTT CA" \
    -keyout "$out/ca.key" -out "$out/ca.crt"
# 2. The broker's key and signing request.
openssl req -newkey "rsa:$bits" -sha256 -nodes -subj "/CN=$cn" \
    -keyout "$out/server.key" -out "$out/server.csr"
# 3. The broker certificate, signed by the CA, valid for every name clients use.
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$out/server.ext"
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$out/server.ext" -out "$out/server.crt"
rm -f "$out/server.csr" "$out/server.ext" "$out/ca.srl"
chmod 0644 "$out/ca.crt" "$out/server.crt"
echo "made $out/ca.crt, $out/server.crt (names: $san), $out/server.key, $out/ca.key"
# Mosquitto 2 drops privileges before it loads the key, so its user must own it.
echo "now: chown 1883:1883 $out/server.key (container) or chown mosquitto: $out/server.key (apt)"
