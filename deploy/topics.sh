#!/usr/bin/env sh
# The event log: one compacted-never, time-retained topic. Keyed by crisis id, so partitions only bound
# parallelism across crises; replication 3 with min.insync.replicas 2 makes acks=all survive one broker loss.
# The log keeps events RETENTION_MS (default 400 days), after which resume cursors report a gap. Indicator
# values end earlier, a configurable time after their crisis closes, by crypto-shredding: their data keys on
# crisis.events.keys are destroyed (docs/safeguards-retention.md).
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
# The data keys: one record per batch of keys, written again without a destroyed key (a tombstone when none
# remain). Compaction removes the older record within about SEGMENT_MS plus the cleaner's backoff, and a
# tombstone DELETE_RETENTION_MS later.
kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --command-config "$COMMAND_CONFIG" \
  --create --if-not-exists --topic crisis.events.keys \
  --partitions 1 --replication-factor 3 \
  --config min.insync.replicas=2 \
  --config unclean.leader.election.enable=false \
  --config cleanup.policy=compact \
  --config segment.ms=60000 \
  --config min.cleanable.dirty.ratio=0.01 \
  --config min.compaction.lag.ms=0 \
  --config delete.retention.ms=60000
