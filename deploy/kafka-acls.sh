#!/usr/bin/env sh
# Least privilege on Apache Kafka: the API and the gateway connect as separate principals.
#   User:crisis-api      writes events and reads the log back (its ledger folds it), makes and destroys the
#                        data keys (tombstones on the compacted keys topic): Write, Read, Describe on both
#   User:crisis-gateway  only reads, the log and the data keys, for its clients: Read, Describe on both; it
#                        can write nothing (its read audit goes to the API over HTTP, and it only forgets
#                        the keys an erasure destroys)
# Neither uses consumer groups (they read by assignment and keep their own positions), so no group ACL is
# granted; neither creates topics (the setup job does). Idempotent producing needs no cluster ACL since
# Kafka 3.0: Write on the topic implies it. Rerunning is harmless (ACLs are a set).
#
# BOOTSTRAP and COMMAND_CONFIG name an admin connection (a super user: docker-compose.yml's setup job uses
# the `admin` certificate); TOPIC defaults to crisis.events and KEYS_TOPIC to TOPIC.keys (deploy/topics.sh).
# Strimzi: deploy/k8s/kafka.yaml (KafkaUser).
set -eu
BOOTSTRAP="${BOOTSTRAP:-kafka-1:9094}"
COMMAND_CONFIG="${COMMAND_CONFIG:-/tmp/admin.properties}"
TOPIC="${TOPIC:-crisis.events}"
KEYS_TOPIC="${KEYS_TOPIC:-$TOPIC.keys}"

acl() {
  kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$COMMAND_CONFIG" --add "$@"
}

acl --allow-principal User:crisis-api --operation Write --operation Read --operation Describe --topic "$TOPIC"
acl --allow-principal User:crisis-api --operation Write --operation Read --operation Describe --topic "$KEYS_TOPIC"
acl --allow-principal User:crisis-gateway --operation Read --operation Describe --topic "$TOPIC"
acl --allow-principal User:crisis-gateway --operation Read --operation Describe --topic "$KEYS_TOPIC"
