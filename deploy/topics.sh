#!/usr/bin/env sh
# The event log: one compacted-never, time-retained topic. Keyed by crisis id, so partitions only bound
# parallelism across crises; replication 3 with min.insync.replicas 2 makes acks=all survive one broker loss.
# Retention is the safeguard "indicator retention ends a configurable time after the crisis closes":
# the log keeps events RETENTION_MS (default 400 days), after which resume cursors report a gap.
# BOOTSTRAP and COMMAND_CONFIG name an admin connection (see deploy/kafka-acls.sh).
set -eu
BOOTSTRAP="${BOOTSTRAP:-kafka-1:9094}"
COMMAND_CONFIG="${COMMAND_CONFIG:-/tmp/admin.properties}"
RETENTION_MS="${RETENTION_MS:-34560000000}"
kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --command-config "$COMMAND_CONFIG" \
  --create --if-not-exists --topic crisis.events \
  --partitions 12 --replication-factor 3 \
  --config min.insync.replicas=2 \
  --config unclean.leader.election.enable=false \
  --config retention.ms="$RETENTION_MS" \
  --config cleanup.policy=delete
