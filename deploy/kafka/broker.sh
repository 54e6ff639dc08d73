#!/usr/bin/env sh
# One Apache Kafka node (broker and KRaft controller) of docker-compose.yml, configured from files we
# control rather than the image's environment translation: every listener speaks TLS, the client
# listener also requires SASL/SCRAM, brokers and the admin principal authenticate each other by
# certificate, and ACLs are enforced (nothing is allowed that no ACL allows).
#
# The log directory is formatted once, with the cluster id, on first start; later starts keep it.
set -eu
: "${NODE_ID:?}" "${CLUSTER_ID:?}"
DATA=/var/lib/kafka/data
CONFIG=/tmp/server.properties
SECRETS=/run/secrets

cat >"$CONFIG" <<EOF
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093
listeners=CLIENT://:9092,CONTROLLER://:9093,INTERNAL://:9094
advertised.listeners=CLIENT://kafka-$NODE_ID:9092,INTERNAL://kafka-$NODE_ID:9094
listener.security.protocol.map=CLIENT:SASL_SSL,CONTROLLER:SSL,INTERNAL:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
log.dirs=$DATA

ssl.keystore.type=PEM
ssl.keystore.location=$SECRETS/kafka-$NODE_ID.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECRETS/kafka-ca.pem
ssl.endpoint.identification.algorithm=https
listener.name.controller.ssl.client.auth=required
listener.name.internal.ssl.client.auth=required
# CN=kafka-1 becomes User:kafka-1, CN=admin User:admin.
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT

sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:kafka-1;User:kafka-2;User:kafka-3

default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
EOF

if [ ! -f "$DATA/meta.properties" ]; then
  /opt/kafka/bin/kafka-storage.sh format --cluster-id "$CLUSTER_ID" --config "$CONFIG"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
