#!/bin/sh
# Certificates for gRPC over TLS (docs/security.md, TLS): a county CA, one server certificate
# for every API (SANs: the compose and Kubernetes service names, localhost, 127.0.0.1 and any
# names in SUPPLY_CERT_EXTRA_SANS, e.g. "DNS:supply.county.gov.cn,IP:10.0.0.5"), and a client
# certificate (for mTLS: departments, and our own processes). Keep *.key private.
#
#   deploy/scripts/make-certs.sh [OUT_DIR]          (default deploy/certs; existing CA is reused)
#   SUPPLY_CERT_CLIENT=dept-market deploy/scripts/make-certs.sh deploy/certs   # another client
#
# Writes ca.pem/ca.key, server.pem/server.key, client.pem/client.key (or <name>.pem/.key).
set -eu
out=${1:-deploy/certs}
days=${SUPPLY_CERT_DAYS:-825}
client=${SUPPLY_CERT_CLIENT:-client}
mkdir -p "$out"
umask 077
cd "$out"

if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 3650 -keyout ca.key -out ca.pem \
    -subj "/CN=county-supply CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

sans="DNS:localhost,IP:127.0.0.1,IP:::1"
for s in intake allocation logistics monitoring; do
  sans="$sans,DNS:$s-api,DNS:$s-api.county-supply,DNS:$s-api.county-supply.svc,DNS:$s-api.county-supply.svc.cluster.local"
done
[ -n "${SUPPLY_CERT_EXTRA_SANS:-}" ] && sans="$sans,$SUPPLY_CERT_EXTRA_SANS"

sign() {  # name subject extensions
  printf '%s\n' "$3" > "$1.ext"
  openssl req -new -newkey rsa:2048 -sha256 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -sha256 -days "$days" -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$1.pem" -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

if [ "$client" = client ] || [ ! -f server.pem ]; then
  sign server "/CN=county-supply-api" "subjectAltName=$sans
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
fi
sign "$client" "/CN=$client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
chmod 644 ca.pem server.pem "$client.pem"
echo "certificates in $out: ca.pem, server.pem/.key, $client.pem/.key"
