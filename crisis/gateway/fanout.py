"""Live fan-out, driven by the ledger's listener: the one Kafka reader of this process feeds every client.

Per folded batch: each deliverable event is checked once per *group* of subscribers (same audience, same
filter), its frame is built once, and every connection gets the frames of the whole batch in a single
`transport.write()`. Nothing here awaits: a client whose write buffer is over the limit is handed to
`on_drop` (the server closes it with its cursor) and the others never wait for it. Every deliverable
event's item also goes to the recent window (recent.py), which resuming clients catch up from.

A subscriber's `cursor` only ever names what was written to it. So whatever goes wrong here, closing the
connection is always safe: the client resumes from that cursor and loses nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from crisis.bus.base import Delivered
from crisis.domain.audience import concerned
from crisis.domain.book import Book, Outcome
from crisis.domain.enums import EventType, IndicatorKind, Role
from crisis.domain.envelope import Envelope
from crisis.domain.principal import Principal
from crisis.gateway import cursor as cursors
from crisis.gateway.frames import event_frame, event_prefix, text_frame
from crisis.gateway.protocol import INTERNAL_ERROR, SLOW_CONSUMER, Facts, Filter, admits
from crisis.gateway.recent import Item, Recent

log = structlog.get_logger(__name__)

_INDICATOR_REFS = (
    EventType.INDICATOR_RETRACTED,
    EventType.ACTION_REPORTED,
    EventType.CLOCK_OVERDUE,
    EventType.DISPUTE_RESOLVED,
    EventType.INDICATOR_ERASED,
)


class Transport(Protocol):
    """The part of asyncio.Transport the fan-out uses."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...


class HasState(Protocol):
    """websockets' protocol object: only its `state` is read (OPEN means frames may still be sent)."""

    @property
    def state(self) -> object: ...


def facts_of(env: Envelope, book: Book) -> Facts:
    """Selection facts of an event; retractions and actions take the kind of the indicator they name."""
    kind: IndicatorKind | None = None
    if env.type in (EventType.INDICATOR_SHARED, EventType.INDICATOR_SIGHTED):
        kind = _kind(env.data.get("kind"))
    elif env.type in _INDICATOR_REFS:
        record = book.crises.get(env.subject)
        indicator = record.indicators.get(str(env.data.get("indicator_id"))) if record else None
        kind = indicator.data.kind if indicator else None
    return Facts(
        env.subject, env.type, kind, env.tlp, env.mode, env.author_org, env.tlprecipients, concerned(env)
    )


def _kind(value: object) -> IndicatorKind | None:
    try:
        return IndicatorKind(str(value))
    except ValueError:
        return None


class Phase(enum.Enum):
    CATCHING_UP = "catching_up"  # live frames are held while the catch-up reader fills the gap
    FLOOR = "floor"  # resumed ahead of this gateway: live frames below the client's cut are skipped
    LIVE = "live"  # the fast path: coalesced bytes, one write per batch


class Subscriber:
    """One connection's subscription. `cursor` is the cut after the last frame written to it."""

    __slots__ = (
        "cursor",
        "filter",
        "floor",
        "group",
        "owner",
        "pending",
        "pending_bytes",
        "phase",
        "principal",
        "proto",
        "skip",
        "transport",
    )

    def __init__(
        self, principal: Principal, f: Filter, transport: Transport, proto: HasState, owner: object = None
    ) -> None:
        self.owner = owner  # the server's connection object; the fan-out never looks inside
        self.principal = principal
        self.filter = f
        self.transport = transport
        self.proto = proto
        self.phase = Phase.LIVE
        self.floor: tuple[int, ...] = ()
        self.pending: list[Item] = []
        self.pending_bytes = 0
        self.cursor = ""
        self.group: Group | None = None
        # Crises a backfill's catch-up leaves out (closed before it started); live events are never skipped.
        self.skip: frozenset[str] = frozenset()

    @property
    def attached(self) -> bool:
        return self.group is not None


GroupKey = tuple[str, Role, bool, Filter]


def group_key(principal: Principal, f: Filter) -> GroupKey:
    # The audience rule reads the organisation, the role and the exercise flag, never the key id:
    # every key of one organisation and role with the same filter receives exactly the same events.
    return (principal.org, principal.role, principal.exercise_only, f)


@dataclass(eq=False, slots=True)
class Group:
    principal: Principal
    filter: Filter
    live: set[Subscriber] = field(default_factory=set)
    special: set[Subscriber] = field(default_factory=set)
    chunks: list[bytes] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.live) + len(self.special)


class Fanout:
    def __init__(
        self,
        origin: bytes,
        vector: Sequence[int],
        book: Book,
        *,
        limit: int,
        on_drop: Callable[[Subscriber, int, str], None],
        open_state: object,
        recent_bytes: int = 0,
    ) -> None:
        self.origin = origin
        self.vector = list(vector)
        self.book = book
        # Every deliverable event's item, whether a live group wanted it or not: catch-ups read it there.
        self.recent = Recent(vector, recent_bytes)
        self.limit = limit
        self.delivered = 0
        self._on_drop = on_drop
        self._open = open_state
        self._groups: dict[GroupKey, Group] = {}
        self._floored: set[Subscriber] = set()

    # ------------------------------------------------------------------ subscriptions

    def cursor_now(self) -> str:
        return cursors.encode(self.origin, self.vector)

    def attach(self, sub: Subscriber, floor: Sequence[int] | None = None) -> tuple[int, ...]:
        """Register `sub` for live events from the current cut V, which is returned.

        Without `floor` the subscriber is live at once. With `floor` (a resume cut) live frames are held
        until `go_live`, after the caller has delivered [floor, V) from a catch-up reader.
        """
        self.detach(sub)
        key = group_key(sub.principal, sub.filter)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = Group(sub.principal, sub.filter)
        sub.group = group
        now = tuple(self.vector)
        if floor is None:
            sub.phase, sub.floor, sub.cursor = Phase.LIVE, (), cursors.encode(self.origin, now)
            group.live.add(sub)
        else:
            sub.phase, sub.floor = Phase.CATCHING_UP, _pad(floor, len(now))
            sub.pending, sub.pending_bytes = [], 0
            sub.cursor = cursors.encode(self.origin, sub.floor)
            group.special.add(sub)
        return now

    def go_live(self, sub: Subscriber) -> None:
        """Send the frames held during catch-up, then join the fast path (or skip below the floor)."""
        group = sub.group
        if group is None or sub.phase is not Phase.CATCHING_UP:
            return
        held, sub.pending, sub.pending_bytes = sub.pending, [], 0
        sub.phase = Phase.FLOOR
        self._floored.add(sub)
        if not self._take(sub, held):
            self._drop(sub, SLOW_CONSUMER, "slow consumer")
            return
        self._promote()

    def detach(self, sub: Subscriber) -> None:
        group = sub.group
        if group is None:
            return
        sub.group = None
        group.live.discard(sub)
        group.special.discard(sub)
        self._floored.discard(sub)
        sub.pending, sub.pending_bytes = [], 0
        if not group:
            key = group_key(group.principal, group.filter)
            if self._groups.get(key) is group:
                del self._groups[key]

    @property
    def subscribers(self) -> int:
        return sum(len(g) for g in self._groups.values())

    @property
    def groups(self) -> int:
        return len(self._groups)

    # ------------------------------------------------------------------ the ledger listener

    def publish(self, batch: Sequence[tuple[Delivered, Outcome]]) -> None:
        """Called by the ledger with each folded batch; must never raise into the ledger."""
        try:
            self._publish(batch)
        except Exception:
            # Which frames reached whom is unknown from here on: every client resumes from its cursor.
            log.exception("fanout_failed")
            for group in list(self._groups.values()):
                group.chunks, group.items = [], []
                for sub in [*group.live, *group.special]:
                    self._drop(sub, INTERNAL_ERROR, "gateway error")

    def _publish(self, batch: Sequence[tuple[Delivered, Outcome]]) -> None:
        self._deliver(batch)
        if any(o.accepted and d.envelope.type.is_erasure for d, o in batch):
            self.recent.forget()

    def _deliver(self, batch: Sequence[tuple[Delivered, Outcome]]) -> None:
        vector, groups = self.vector, list(self._groups.values())
        touched: list[Group] = []
        for delivered, outcome in batch:
            p = delivered.partition
            if p >= len(vector):
                vector.extend([0] * (p + 1 - len(vector)))
            vector[p] = delivered.offset + 1
            if not outcome.deliverable:
                continue
            env = delivered.envelope
            facts = facts_of(env, self.book)
            item: Item | None = None
            if self.recent.budget > 0:
                item = self._item(delivered, env, facts)
                self.recent.append(item)
            else:  # no window: a frame only for a group that wants the event
                self.recent.passed(delivered.partition, delivered.offset)
            for group in groups:
                if not admits(group.principal, group.filter, facts):
                    continue
                if item is None:
                    item = self._item(delivered, env, facts)
                if not group.items:
                    touched.append(group)
                group.chunks.append(item.frame)
                group.items.append(item)
        dropped: list[tuple[Subscriber, int, str]] = []
        for group in touched:
            self._flush(group, dropped)
        for sub, code, reason in dropped:
            self._drop(sub, code, reason)
        if self._floored:
            self._promote()

    def _item(self, delivered: Delivered, env: Envelope, facts: Facts) -> Item:
        """The event's frame, built once: for every live group and every later catch-up alike."""
        cursor = cursors.encode(self.origin, self.vector)
        payload = event_prefix(env) + cursor.encode() + b'"}'
        frame = text_frame(payload)
        head = len(frame) - len(payload)
        return Item(delivered.partition, delivered.offset, tuple(self.vector), cursor, frame, head, facts)

    def _flush(self, group: Group, dropped: list[tuple[Subscriber, int, str]]) -> None:
        data = b"".join(group.chunks)
        items, count, last = group.items, len(group.items), group.items[-1].cursor
        group.chunks, group.items = [], []
        limit, open_state, sent = self.limit, self._open, 0
        for sub in group.live:
            if sub.proto.state is not open_state:
                continue  # closing: the handler detaches it as soon as the close completes
            transport = sub.transport
            if transport.get_write_buffer_size() > limit:
                dropped.append((sub, SLOW_CONSUMER, "slow consumer"))
                continue
            try:
                transport.write(data)
            except Exception:  # a transport that cannot take bytes: this one client resumes
                dropped.append((sub, INTERNAL_ERROR, "write failed"))
                continue
            sub.cursor = last
            sent += 1
        self.delivered += sent * count
        for sub in list(group.special):
            if not self._take(sub, items):
                dropped.append((sub, SLOW_CONSUMER, "slow consumer"))

    def _take(self, sub: Subscriber, items: list[Item]) -> bool:
        """The slow path, for subscribers catching up or resumed ahead of us. False on overflow."""
        if sub.phase is Phase.CATCHING_UP:
            sub.pending.extend(items)
            sub.pending_bytes += sum(len(i.frame) for i in items)
            return sub.pending_bytes <= self.limit
        if sub.proto.state is not self._open:
            return True
        if sub.transport.get_write_buffer_size() > self.limit:
            return False
        floor, frames = sub.floor, []
        for item in items:
            if item.offset < _at(floor, item.partition):
                continue  # the client saw it on a gateway further along than this one
            if all(v >= f for v, f in zip(item.vector, floor, strict=False)):
                frames.append(item.frame)
                sub.cursor = item.cursor
            else:
                vector = tuple(max(v, f) for v, f in zip(_pad(item.vector, len(floor)), floor, strict=True))
                sub.cursor = cursors.encode(self.origin, vector)
                frames.append(event_frame(item.prefix, sub.cursor))
        if frames:
            sub.transport.write(b"".join(frames))
            self.delivered += len(frames)
        return True

    def _promote(self) -> None:
        """A subscriber resumed ahead joins the fast path once this gateway has passed its cut."""
        for sub in list(self._floored):
            if sub.phase is Phase.FLOOR and all(_at(self.vector, p) >= f for p, f in enumerate(sub.floor)):
                self._floored.discard(sub)
                group = sub.group
                if group is not None:
                    group.special.discard(sub)
                    group.live.add(sub)
                sub.phase = Phase.LIVE

    def _drop(self, sub: Subscriber, code: int, reason: str) -> None:
        self.detach(sub)
        try:
            self._on_drop(sub, code, reason)
        except Exception:
            log.exception("drop_handler_failed")


def _at(vector: Sequence[int], partition: int) -> int:
    return vector[partition] if partition < len(vector) else 0


def _pad(vector: Sequence[int], size: int) -> tuple[int, ...]:
    return tuple(vector) + (0,) * (size - len(vector)) if len(vector) < size else tuple(vector)
