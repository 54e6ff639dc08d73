"""Checking the hash chains of a log read in order: pure, on records with their positions.

Every event must be intact (its `chainhash` is the digest of what it carries) and link to the genesis or to
an event before it of the same crisis. Linking to the crisis's latest event is the rule; linking to an older
one is what a writer that lost a race published (every fold refused it, and the writer published the same
event again on the new head), and links to nothing that was not in the log. So an altered event breaks
where it is, a dropped event breaks at the first event that linked to it, and two events swapped break at
the one that now comes before what it links to. The rules of the fold are not run again here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from crisis.domain import chain
from crisis.domain.envelope import Envelope


@dataclass(frozen=True)
class Record:
    envelope: Envelope
    partition: int
    offset: int


@dataclass(frozen=True)
class Break:
    """The first broken link of a crisis: where, which event, what the chain expected and what it found."""

    crisis_id: str
    partition: int
    offset: int
    event_id: str
    reason: str
    expected: str
    found: str


@dataclass
class CrisisChain:
    events: int = 0
    # The chainhash of the last intact, linked event: what the next event is expected to link to.
    head: str = chain.GENESIS
    seen: set[str] = field(default_factory=lambda: {chain.GENESIS})
    broken: Break | None = None


@dataclass(frozen=True)
class Verdict:
    crises: dict[str, CrisisChain]

    @property
    def breaks(self) -> list[Break]:
        return [c.broken for c in self.crises.values() if c.broken is not None]

    @property
    def valid(self) -> bool:
        return not self.breaks

    def as_json(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "crises": {
                crisis_id: {
                    "events": c.events,
                    "head": c.head,
                    "broken": None if c.broken is None else c.broken.__dict__,
                }
                for crisis_id, c in sorted(self.crises.items())
            },
        }


def verify(records: Iterable[Record], crisis_id: str | None = None) -> Verdict:
    """The chains of every crisis (or of one) in these records, read in log order."""
    crises: dict[str, CrisisChain] = {}
    for record in records:
        env = record.envelope
        if crisis_id is not None and env.subject != crisis_id:
            continue
        state = crises.setdefault(env.subject, CrisisChain())
        if state.broken is None:
            state.broken = _check(state, record)
    return Verdict(crises)


def _check(state: CrisisChain, record: Record) -> Break | None:
    env = record.envelope
    state.events += 1

    def broken(reason: str, expected: str, found: str) -> Break:
        return Break(env.subject, record.partition, record.offset, env.id, reason, expected, found)

    if env.chainhash is None or env.chainprev is None:
        return broken("unchained: the event carries no chain attributes", state.head, "")
    actual = chain.digest(env)
    if actual != env.chainhash:
        return broken("altered: the digest of the event is not its chainhash", env.chainhash, actual)
    if env.chainprev not in state.seen:
        return broken("unlinked: the event links to no event before it", state.head, env.chainprev)
    state.head = env.chainhash
    state.seen.add(env.chainhash)
    return None
