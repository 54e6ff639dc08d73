#!/usr/bin/env sh
# A broker is healthy once it answers the admin principal on its own INTERNAL (TLS) listener.
set -eu
cat >/tmp/health.properties <<CONF
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=/run/secrets/kafka-admin.pem
ssl.truststore.type=PEM
ssl.truststore.location=/run/secrets/kafka-ca.pem
CONF
/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server "kafka-$NODE_ID:9094" \
  --command-config /tmp/health.properties >/dev/null
