#!/usr/bin/env sh
# docker-compose.yml's setup job, as the `admin` principal (mutual TLS on the INTERNAL listener): the
# SCRAM credentials of crisis-api and crisis-gateway from their password files (set again on every run, so
# a changed file rotates the password), the topic, and the ACLs.
set -eu
SECRETS=/run/secrets
export COMMAND_CONFIG=/tmp/admin.properties BOOTSTRAP="${BOOTSTRAP:-kafka-1:9094}"
cat >"$COMMAND_CONFIG" <<CONF
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$SECRETS/kafka-admin.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS/kafka-ca.pem
CONF

for user in crisis-api crisis-gateway; do
  password=$(cat "$SECRETS/$user-password")
  kafka-configs.sh --bootstrap-server "$BOOTSTRAP" --command-config "$COMMAND_CONFIG" --alter \
    --entity-type users --entity-name "$user" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
done
sh /deploy/topics.sh
sh /deploy/kafka-acls.sh
