#!/usr/bin/env sh
# Makes what docker-compose.yml mounts from deploy/secrets/ (never committed): a private CA; a certificate
# per broker (named as its service, so clients verify the host name); one for the `admin` principal the
# setup job and the health checks use (mutual TLS); one for the TLS proxy (PUBLIC_HOST); random SCRAM
# passwords for the crisis-api and crisis-gateway principals; and the service token (audit.token) with which
# the gateway sends its read audit to the API (CRISIS_AUDIT_TOKEN_FILE).
#
# Existing files are kept, so running it again is harmless. To rotate one, delete it and run again
# (docs/operations.md, "Rotating credentials"). Requires openssl 1.1.1 or later.
set -eu
cd "$(dirname "$0")"
OUT="${OUT:-secrets}"
PUBLIC_HOST="${PUBLIC_HOST:-localhost}"
DAYS="${DAYS:-397}"

# The directory is private to its owner on the host; the files in it are world-readable so that the
# containers' own users (Kafka's, crisis-bus's 10001, the proxy's) can read the single files mounted.
mkdir -p "$OUT"
chmod 0700 "$OUT"

if [ ! -f "$OUT/ca.pem" ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 \
    -subj "/CN=crisis-bus Kafka CA" -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2>/dev/null
  chmod 0600 "$OUT/ca.key"
fi

# issue NAME SUBJECT_ALT_NAMES: NAME.crt, NAME.key (PKCS#8), and NAME.pem (key + chain: Kafka's PEM store).
issue() {
  name=$1
  san=$2
  [ -f "$OUT/$name.pem" ] && return 0
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$name" \
    -keyout "$OUT/$name.key.tmp" -out "$OUT/$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' \
    "$san" >"$OUT/$name.ext"
  openssl x509 -req -sha256 -days "$DAYS" -in "$OUT/$name.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" \
    -CAcreateserial -extfile "$OUT/$name.ext" -out "$OUT/$name.crt" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$OUT/$name.key.tmp" -out "$OUT/$name.key"
  cat "$OUT/$name.key" "$OUT/$name.crt" "$OUT/ca.pem" >"$OUT/$name.pem"
  rm -f "$OUT/$name.key.tmp" "$OUT/$name.csr" "$OUT/$name.ext"
  chmod 0644 "$OUT/$name.key" "$OUT/$name.pem" "$OUT/$name.crt"
}

for n in 1 2 3; do
  issue "kafka-$n" "DNS:kafka-$n,DNS:localhost"
done
issue admin "DNS:admin"
issue proxy "DNS:$PUBLIC_HOST"

# password NAME: a random SCRAM password for the Kafka principal NAME (no trailing newline).
password() {
  [ -f "$OUT/$1.password" ] && return 0
  openssl rand -base64 32 | tr -d '\n=+/' >"$OUT/$1.password"
  chmod 0644 "$OUT/$1.password"
}
password crisis-api
password crisis-gateway

# The read audit's service token: 256 random bits, shared by the API and the gateway only.
if [ ! -f "$OUT/audit.token" ]; then
  openssl rand -hex 32 | tr -d '\n' >"$OUT/audit.token"
  chmod 0644 "$OUT/audit.token"
fi

echo "secrets in $(cd "$OUT" && pwd): CA, kafka-1..3, admin, proxy ($PUBLIC_HOST), SCRAM passwords, audit token"
