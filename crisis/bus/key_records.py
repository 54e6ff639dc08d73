"""The records of the keys topic and what a process knows of them, without I/O (crisis.bus.kafka_keys).

A batch record holds the keys made together: record key `batch/<uuid4 hex>`, value a JSON object
{key id: base64 key}. Destroying a key rewrites its batch under the same record key with the keys that
remain, or a tombstone when none remain, so compaction drops the old record. Records of the first format
(record key = key id, value the base64 key, a tombstone to destroy) are still read, and destroyed by their
tombstone. Key ids are `<crisis id>` or `<crisis id>/<indicator id>` with a UUID for the crisis id
(crisis.domain.sensitive), so none starts with the batch or the marker prefix.

A batch only ever loses keys. Several processes rewrite the same batch, each from what it has read, so a
process behind may write back a key another already destroyed (last write wins in compaction): a reader
never takes such a key back, and a process that destroys writes the batch again without it.

Destroying a key also writes a marker, record key `gone/<key id>`, value `{"gone":true}`: never a tombstone,
so compaction keeps the latest one for good. A process restarted after every process that knew of the
erasure has stopped reads the marker with the batches, and so never takes the key back from a stale
rewrite, whichever of the two it reads first. A marker holds a key id, never a key.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Collection, Mapping
from typing import Final

import orjson

from crisis.crypto.keycache import KeyFile
from crisis.crypto.keyring import Covers

BATCH_PREFIX: Final = "batch/"
GONE_PREFIX: Final = "gone/"
MARKER: Final = b'{"gone":true}'
# Keys per record: 2,000 keys make about 250 kB, well under Kafka's default 1 MB per message.
RECORD_KEYS: Final = 2_000


class RecordError(ValueError):
    """A record of the keys topic that holds no keys in either format."""


def new_batch() -> str:
    return f"{BATCH_PREFIX}{uuid.uuid4().hex}"


def marker(kid: str) -> str:
    """The record key of the marker that says a key was destroyed."""
    return f"{GONE_PREFIX}{kid}"


def marked(record_key: str) -> str | None:
    """The key id a marker's record key names, or None for a record of keys."""
    return record_key.removeprefix(GONE_PREFIX) if record_key.startswith(GONE_PREFIX) else None


def encode(keys: Mapping[str, bytes]) -> bytes | None:
    """A batch record's value: compact JSON, or None (a tombstone) when no key remains."""
    if not keys:
        return None
    # orjson: a batch of shares files a record of 1,000 keys on the event loop.
    return orjson.dumps({kid: base64.b64encode(key).decode() for kid, key in keys.items()})


def decode(record_key: str, value: bytes | None) -> dict[str, bytes]:
    """The keys a record holds (none for a tombstone), in either format."""
    if value is None:
        return {}
    try:
        if not record_key.startswith(BATCH_PREFIX):
            return {record_key: base64.b64decode(value, validate=True)}
        raw = orjson.loads(value)
        if not isinstance(raw, dict):
            raise RecordError(f"a batch record holds {type(raw).__name__}, not an object")
        return {str(kid): base64.b64decode(key, validate=True) for kid, key in raw.items()}
    except (ValueError, TypeError, binascii.Error) as exc:
        raise RecordError(f"record {record_key!r} holds no keys: {exc}") from exc


class Batches:
    """Which record holds which key, as this process last read or wrote the topic, and the keys it must
    never hold again (destroyed, forgotten, covered by an erasure, or missing from a later record)."""

    def __init__(self) -> None:
        self.held: dict[str, set[str]] = {}  # record key -> the key ids its latest record holds
        self.offsets: dict[str, int] = {}  # record key -> the offset of its latest record known here
        self.where: dict[str, str] = {}  # key id -> its record key
        self.dead: set[str] = set()
        self.marked: set[str] = set()  # dead keys whose marker was read or written here
        self.erased: list[Covers] = []
        # Record keys whose latest record still holds a dead key: to be written again without it.
        self.stale: set[str] = set()

    def is_dead(self, kid: str) -> bool:
        if kid in self.dead:
            return True
        # Covers count for keys this process never held too: one it did not know when the erasure was
        # folded must not be learned from a record written back by a process behind.
        if self.erased and any(covers(kid) for covers in self.erased):
            self.dead.add(kid)
            return True
        return False

    def read(self, record_key: str, keys: dict[str, bytes], offset: int) -> tuple[dict[str, bytes], set[str]]:
        """Take in a record: returns the keys to hold and the key ids to drop from memory."""
        self.offsets[record_key] = offset
        before = self.held.get(record_key, set())
        # Missing from the batch's latest record: destroyed by some process, for good.
        drop = before - keys.keys()
        self.dead |= drop
        for kid in drop:
            self.where.pop(kid, None)
        live = {kid: key for kid, key in keys.items() if not self.is_dead(kid)}
        if len(live) < len(keys):
            drop |= keys.keys() - live.keys()
            self.stale.add(record_key)
        else:
            self.stale.discard(record_key)
        if keys:
            self.held[record_key] = set(keys)
            self.where.update(dict.fromkeys(keys, record_key))
        else:
            self.held.pop(record_key, None)
            self.offsets.pop(record_key, None)
            self.stale.discard(record_key)
        return live, drop

    def gone(self, kid: str) -> None:
        """Take in a key's marker: dead for good, whatever record holds it before or after, and its batch
        to write again if the latest record of that batch holds it."""
        self.marked.add(kid)
        self.dead.add(kid)
        if kid in self.where:
            self.stale.add(self.where[kid])

    def wrote(
        self, record_key: str, kids: Collection[str], offset: int, keys: Mapping[str, bytes] | None = None
    ) -> None:
        """A record this process wrote is acknowledged at `offset`: unless a later one was read meanwhile,
        it is the latest (reading it back changes nothing). `keys`: the keys it holds (kept by a stored
        record only)."""
        if self.offsets.get(record_key, -1) > offset:
            return
        for kid in self.held.get(record_key, set()) - set(kids):
            self.where.pop(kid, None)
        if kids:
            self.held[record_key] = set(kids)
            self.offsets[record_key] = offset
            self.where.update(dict.fromkeys(kids, record_key))
        else:
            self.held.pop(record_key, None)
            self.offsets.pop(record_key, None)
        if not self.held.get(record_key, set()) & self.dead:
            self.stale.discard(record_key)

    def doomed(self, kids: Collection[str], covers: Covers) -> set[str]:
        """The key ids a destruction ends: those named, and those of the records known here it covers."""
        return {*kids, *(kid for kid in self.where if covers(kid))}

    def destroy(self, kids: Collection[str], covers: Covers) -> set[str]:
        """Mark keys dead; returns the record keys to write again."""
        doomed = self.doomed(kids, covers)
        self.dead |= doomed
        records = {self.where[kid] for kid in doomed if kid in self.where}
        self.stale |= records
        return records

    def kept(self, record_key: str) -> list[str]:
        """The key ids a record is to hold when written again: its latest ones less the dead."""
        return [kid for kid in self.held.get(record_key, ()) if not self.is_dead(kid)]

    def kept_keys(self, record_key: str, keys: Mapping[str, bytes]) -> dict[str, bytes]:
        """The keys a record is to hold when written again, from `keys` (those this process holds)."""
        return {kid: keys[kid] for kid in self.kept(record_key)}

    def forgot(self, kids: Collection[str]) -> None:
        """Keys this process forgot: dead here for good."""
        self.dead.update(kids)

    def unmarked(self, kids: Collection[str]) -> set[str]:
        """Those of `kids` whose marker was neither read nor written here."""
        return set(kids) - self.marked

    def marked_now(self, kids: Collection[str]) -> None:
        """The markers of `kids` are acknowledged."""
        self.marked |= set(kids)


class StoredBatches(Batches):
    """The same knowledge kept with the keys in the process's key file (crisis.crypto.keycache): which
    record holds which key, at which offset, and which keys are dead. Only the erasures folded by this
    run and the records to write again are in memory."""

    def __init__(self, local: KeyFile) -> None:
        super().__init__()
        self.local = local
        self.stale = local.stale()

    def is_dead(self, kid: str) -> bool:
        return bool(self._erased({kid})) or bool(self.local.dead({kid}))

    def _erased(self, kids: Collection[str]) -> set[str]:
        if not self.erased:
            return set()
        return {kid for kid in kids if any(covers(kid) for covers in self.erased)}

    def read(self, record_key: str, keys: dict[str, bytes], offset: int) -> tuple[dict[str, bytes], set[str]]:
        before = set(self.local.held(record_key))
        drop = before - keys.keys()
        dead = self.local.dead(keys.keys()) | self._erased(keys.keys())
        live = {kid: key for kid, key in keys.items() if kid not in dead}
        drop |= keys.keys() - live.keys()
        if dead and keys:
            self.stale.add(record_key)
        else:
            self.stale.discard(record_key)
        # Missing from the batch's latest record: destroyed by some process, for good (take() kills them).
        self.local.take(record_key, {kid: live.get(kid) for kid in keys}, pos=offset)
        return live, drop

    def gone(self, kid: str) -> None:
        self.local.kill({kid}, marked=True)
        self.stale.update(self.local.where({kid}).values())

    def wrote(
        self, record_key: str, kids: Collection[str], offset: int, keys: Mapping[str, bytes] | None = None
    ) -> None:
        known = self.local.pos(record_key)
        if known is not None and known > offset:
            return
        given = keys or {}
        self.local.take(record_key, {kid: given.get(kid) for kid in kids}, pos=offset)
        if not self.local.dead(kids):
            self.stale.discard(record_key)

    def doomed(self, kids: Collection[str], covers: Covers) -> set[str]:
        return {*kids, *self.local.covered(covers)}

    def destroy(self, kids: Collection[str], covers: Covers) -> set[str]:
        doomed = self.doomed(kids, covers)
        self.local.kill(doomed)
        records = set(self.local.where(doomed).values())
        self.stale |= records
        return records

    def kept(self, record_key: str) -> list[str]:
        held = self.local.held(record_key)
        erased = self._erased(held.keys())
        return [kid for kid, key in held.items() if key is not None and kid not in erased]

    def kept_keys(self, record_key: str, keys: Mapping[str, bytes]) -> dict[str, bytes]:
        held = self.local.held(record_key)
        return {kid: key for kid in self.kept(record_key) if (key := held[kid]) is not None}

    def forgot(self, kids: Collection[str]) -> None:
        self.local.kill(kids)

    def unmarked(self, kids: Collection[str]) -> set[str]:
        return self.local.unmarked(kids)

    def marked_now(self, kids: Collection[str]) -> None:
        self.local.kill(kids, marked=True)
