"""The fold of the event log into crisis state, and the write rules every event must pass.

Every reader (each API process, each gateway) applies the same log in the same order with these rules,
so all of them reach the same verdict on every event: this is what makes "a stale version gets 409" hold
across processes. A writer publishes, then waits for its own reader to fold the event and learns the verdict.

The rules here are the ones no path may bypass: a route, the CLI, an exercise, a second API process or a
record written by hand all meet them. Checks that need more than the log (is an organisation registered?)
belong to the commands (crisis.domain.commands), which build the events in the first place.

Role rules read the `role` the API stamps on each event from the authenticated key. Events without a stamp
(written before it existed, or by test fixtures) are judged on everything else; the sharer of an indicator
is the only organisation that may retract it without a coordinator's stamp.

Two API processes may each publish `indicator.shared` for the same value before either has folded the
other's event. The fold keeps both as distinct indicators: each writer has answered "created" with its own
id, every subscriber has received that id, and acknowledgements of either id work. Only a share folded
after an equal, readable indicator exists is written as `indicator.sighted` (the commands decide that).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import datetime

from pydantic import BaseModel, ValidationError

from crisis.domain import audience, deadlines, disputes, retention, sensitive
from crisis.domain.chain import CHAIN_CONFLICT, GENESIS
from crisis.domain.crisis import (
    CrisisState,
    TransitionError,
    advance,
    clock_changed,
    may_open,
    may_transition,
)
from crisis.domain.deadlines import Answer, Overdue
from crisis.domain.disputes import Dispute, DisputeResolved
from crisis.domain.enums import ActionOutcome, Deadline, EventType, Mode, Role, Status, Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.events import (
    EVENT_DATA,
    ActionReported,
    ClockChanged,
    ClockOverdue,
    CrisisChanged,
    IndicatorErased,
    IndicatorRetracted,
    IndicatorShared,
    IndicatorSighted,
    RetentionExpired,
    shared_data,
)
from crisis.domain.principal import Principal
from crisis.domain.reads import READS_SOURCE, READS_SUBJECT, AuditReads, ReadTotals
from crisis.domain.storage import (
    Entries,
    Indicators,
    MemoryIndicators,
    MemoryStorage,
    Outcomes,
    Requests,
    Storage,
)

# The erasure event's type (its rules live with retention): counted here for the transparency report.
ERASED = "indicator.erased"
SHARERS = frozenset({Role.COORDINATOR, Role.AUTHORITY, Role.PROVIDER})


@dataclass(frozen=True)
class Outcome:
    """The verdict on one event. A rejected event stays in the log but no reader acts on it or delivers it."""

    accepted: bool
    code: str = ""
    message: str = ""
    sighting_of: str | None = None
    duplicate: bool = False

    @property
    def deliverable(self) -> bool:
        return self.accepted and not self.duplicate


ACCEPTED = Outcome(accepted=True)


def rejected(code: str, message: str) -> Outcome:
    return Outcome(accepted=False, code=code, message=message)


class Rejected(Exception):
    """Raised inside the fold's rules; becomes a rejected Outcome."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Sighting:
    org: str
    at: datetime


@dataclass
class IndicatorRecord:
    data: IndicatorShared
    shared_at: datetime
    tlp: Tlp
    tlprecipients: tuple[str, ...]
    sightings: list[Sighting] = field(default_factory=list)
    retracted: bool = False

    @property
    def handling(self) -> tuple[Tlp, tuple[str, ...]]:
        return self.tlp, self.tlprecipients

    def readable_by(self, principal: Principal, mode: Mode) -> bool:
        return audience.may_read_indicator(
            principal,
            tlp=self.tlp,
            recipients=self.tlprecipients,
            shared_by=self.data.shared_by,
            mode=mode,
        )

    @property
    def follow_up_recipients(self) -> tuple[str, ...]:
        """Who an action on, or the retraction of, this indicator is addressed to."""
        return audience.follow_up_recipients(self.tlp, self.tlprecipients, self.data.shared_by)


@dataclass
class CrisisRecord:
    state: CrisisState
    # What grows with the crisis lives in the Book's storage (crisis.domain.storage); memory by default.
    timeline: Entries[Envelope] = field(default_factory=list[Envelope])
    indicators: Indicators = field(default_factory=MemoryIndicators)
    actions: Entries[tuple[Envelope, ActionReported]] = field(
        default_factory=list[tuple[Envelope, ActionReported]]
    )
    # (indicator id, provider) -> when it first answered; what the deadlines read.
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    # (indicator id, provider, deadline) -> the accepted `clock.overdue`, withdrawn by a late answer; and
    # those events in log order, kept in storage, from which a restored fold rebuilds the map.
    overdue: dict[tuple[str, str, Deadline], Overdue] = field(default_factory=dict)
    # The `chainhash` of the last event taken into this crisis's hash chain (crisis.domain.chain).
    chain_head: str = GENESIS
    # Dispute id -> the dispute (crisis.domain.disputes): few, so kept here and rebuilt on restore.
    disputes: dict[str, Dispute] = field(default_factory=dict)
    # Accepted `indicator.erased` events, for the transparency report (counted as they are folded).
    erasures: int = 0
    missed: Entries[Envelope] = field(default_factory=list[Envelope])
    # The handling of the last share that passed the checks which depend on its writer, label and
    # recipients and on the crisis's state alone (with that state): a batch of shares is checked once.
    shares_checked: tuple[CrisisState, str, Role | None, Tlp, tuple[str, ...]] | None = None

    def repeat_of(
        self, kind: str, canonical: str, reader: Principal, handling: tuple[Tlp, tuple[str, ...]]
    ) -> str | None:
        """The live indicator a new share of this value merges into: one `reader` may read, with exactly
        the same audience. None when there is none (the share then stands as its own indicator).
        Live indicators with one value are one per audience as a rule, more when two processes shared
        the same value at the same moment (see the module docstring)."""
        for indicator_id in self.indicators.live(str(kind), canonical):
            found = self.indicators[indicator_id]
            same = audience.same_audience(found.handling, found.data.shared_by, handling, reader.org)
            if same and found.readable_by(reader, self.state.mode):
                return indicator_id
        return None


@dataclass
class FirstRequest:
    """The first request made with one Idempotency-Key: its digest and the events it wrote, in order."""

    digest: str
    envelopes: list[Envelope] = field(default_factory=list)


def takes_follow_ups(state: CrisisState) -> bool:
    """Whether a crisis takes indicators, sightings and provider actions: until it closes. A concluded
    crisis has stood down, but late copies still surface and providers still remove them; only the
    debrief's closure ends the record."""
    return state.status is not Status.CLOSED


def actor_of(env: Envelope) -> Principal:
    """The writer as the log records it. An unstamped event is read with a sharer's rights (the TLP
    rules still apply to it in full); role rules are checked only against a stamp."""
    return _writer(env.author_org, env.role or Role.PROVIDER)


@functools.lru_cache(maxsize=4096)
def _writer(org: str, role: Role) -> Principal:
    # Asked of nearly every event folded, by a handful of writers: one immutable Principal each.
    return Principal(org=org, role=role, key_id="")


class Book:
    """All crises as folded from the log so far; what grows with history is kept in `storage`."""

    def __init__(self, storage: Storage | None = None) -> None:
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        self.outcomes: Outcomes = self.storage.outcomes
        # Idempotency scope (organisation and key) -> the first request seen with it: its digest and its
        # events, so a retry is answered from the log even when the state has moved on since.
        self.requests: Requests = self.storage.requests
        self.crises: dict[str, CrisisRecord] = {}
        # Chain heads of subjects that are no crisis (the read audit); never a reason to refuse.
        self.loose_heads: dict[str, str] = {}
        self.reads = ReadTotals()
        for state in self.storage.crisis_states():
            self.crises[state.id] = self._record(state)

    def _record(self, state: CrisisState) -> CrisisRecord:
        s = self.storage
        record = CrisisRecord(state, s.timeline(state.id), s.indicators(state.id), s.actions(state.id))
        if len(record.timeline):
            record.chain_head = record.timeline[-1].chainhash or GENESIS
        record.missed = s.missed(state.id)
        # Restored from a store: who has answered is derived from the stored actions, or the clock would
        # take an answered deadline for a missed one; and the overdue map from the stored overdue events.
        answered_at: dict[tuple[str, str, Deadline], datetime] = {}
        disputed = False
        for env, data in record.actions:
            answer = record.answers.setdefault((data.indicator_id, data.provider_org), Answer())
            answer.record(data.outcome, data.at)
            for deadline in Deadline:
                if answer.at(deadline) is not None:
                    answered_at.setdefault((data.indicator_id, data.provider_org, deadline), env.time)
            disputed = disputed or data.outcome is ActionOutcome.DISAGREE
        for env in record.missed:
            missed = ClockOverdue.model_validate(env.data)
            key = (missed.indicator_id, missed.provider_org, missed.deadline)
            # An overdue event stands only while its deadline is unanswered: any answer came later and
            # withdrew it, at the time of the first event that answered it.
            record.overdue[key] = Overdue(env.id, missed.due_at, withdrawn_at=answered_at.get(key))
        if disputed:
            # Disputes open and close in log order: replayed from the timeline, for a disputed crisis only.
            for env in record.timeline:
                _replay_dispute(record, env)
        return record

    def apply(self, env: Envelope) -> Outcome:
        """Fold one event; a repeated event id (a retried write) gets its first verdict, marked duplicate."""
        earlier = self.outcomes.get(env.id)
        if earlier is not None:
            return replace(earlier, duplicate=True)
        refusal = self._chain_refusal(env)
        if refusal is not None:
            # Not recorded: its writer restamps the same event id on the new head and publishes it again.
            return refusal
        outcome = self.reused_key(env)
        if outcome is None:
            if env.idempotency is not None:
                scope, _, digest = env.idempotency.partition(".")
                self.requests.record(scope, digest, env)
            try:
                outcome = self._decide(env)
            except Rejected as exc:
                outcome = rejected(exc.code, exc.message)
        self.outcomes[env.id] = outcome
        if outcome.accepted and env.subject not in self.crises and env.chainhash is not None:
            self.loose_heads[env.subject] = env.chainhash
        if outcome.accepted and env.subject in self.crises:
            record = self.crises[env.subject]
            record.timeline.append(env)
            # The head is a function of the last accepted event alone, as a store restores it.
            record.chain_head = env.chainhash or GENESIS
            if env.type.value == ERASED:
                record.erasures += 1
            if env.type.is_crisis_state:
                self.storage.save_crisis(record.state)
            if env.type.is_erasure:
                self._erase(env, record)
        return outcome

    def chain_head(self, crisis_id: str) -> str:
        """Where the next event of this crisis links (the genesis for a crisis not opened yet)."""
        record = self.crises.get(crisis_id)
        return record.chain_head if record is not None else self.loose_heads.get(crisis_id, GENESIS)

    def _chain_refusal(self, env: Envelope) -> Outcome | None:
        """An event linked to anything but its crisis's head lost a race with another writer: refused, so
        the chain stays one line whatever the processes do. Unchained events (written by hand or before the
        chain existed) are judged on the other rules; `crisis audit verify` reports them."""
        if env.chainhash is None or env.chainprev == self.chain_head(env.subject):
            return None
        if env.subject not in self.crises and not env.type.is_crisis_state:
            # No crisis's chain (the read audit, or an event for no crisis, refused anyway): its link is
            # checked by `crisis audit verify` only, so a process restored without these heads agrees.
            return None
        return rejected(CHAIN_CONFLICT, f"another event of crisis {env.subject} was written first; retry")

    def _erase(self, erasure: Envelope, record: CrisisRecord) -> None:
        """Drop from the folded state every value the erasure's keys sealed: what the log no longer
        yields (its keys are destroyed) is not kept here either."""
        covers = sensitive.erasure_covers(erasure)

        def erase(env: Envelope) -> Envelope | None:
            kid = sensitive.key_id(env)
            if kid is None or not covers(kid) or env.data.get("erased") is True:
                return None
            return sensitive.erased(env)

        for i, env in enumerate(record.timeline):
            if (after := erase(env)) is not None:
                record.timeline[i] = after
        for i, (env, _) in enumerate(record.actions):
            if (after := erase(env)) is not None:
                record.actions[i] = (after, ActionReported.model_validate(after.data))
        if erasure.type is EventType.INDICATOR_ERASED:
            one = record.indicators.get(str(erasure.data.get("indicator_id")))
            indicators = [one] if one is not None else []
        elif erasure.type is EventType.CRISIS_RETENTION_EXPIRED:
            indicators = list(record.indicators.values())
        else:
            indicators = []
        for indicator in indicators:
            if not indicator.data.erased:
                data = sensitive.erased_data(
                    EventType.INDICATOR_SHARED, indicator.data.model_dump(mode="json")
                )
                # A new record, not the stored one changed: storage finds the old value to unindex.
                record.indicators.put(replace(indicator, data=IndicatorShared.model_validate(data)))
        if covers(sensitive.crisis_key(record.state.id)):
            record.state = retention.erase_text(record.state)
        if erasure.type is EventType.CRISIS_RETENTION_EXPIRED:
            record.state = record.state.model_copy(update={"retention_expired_at": erasure.time})
        self.storage.save_crisis(record.state)
        self.requests.scrub(record.state.id, erase)
        self.storage.erased()

    def reused_key(self, env: Envelope) -> Outcome | None:
        """The verdict for an Idempotency-Key already used with a different request body, else None."""
        if env.idempotency is None:
            return None
        scope, _, digest = env.idempotency.partition(".")
        first = self.requests.digest(scope)
        if first is None or first == digest:
            return None
        return rejected(
            "idempotency_key_reused",
            "this Idempotency-Key was used before with a different request; use a new key for a new request",
        )

    def _decide(self, env: Envelope) -> Outcome:
        try:
            if env.type is EventType.INDICATOR_SHARED:
                data: BaseModel = shared_data(env.data)
            else:
                data = EVENT_DATA[env.type].model_validate(env.data)
        except ValidationError as exc:
            return rejected(
                "malformed", f"{env.type} data does not match its schema: {exc.error_count()} errors"
            )
        if isinstance(data, AuditReads):
            return self._audit_reads(env, data)
        record = self.crises.get(env.subject)
        if isinstance(data, CrisisChanged):
            return self._crisis_changed(env, data, record)
        if record is None:
            return rejected("unknown_crisis", f"no crisis {env.subject}")
        if env.mode is not record.state.mode:
            return rejected("mode_mismatch", f"crisis {env.subject} is a {record.state.mode} crisis")
        return _INDICATOR_RULES[env.type](env, data, record)

    def _audit_reads(self, env: Envelope, data: AuditReads) -> Outcome:
        # Only the processes write the read audit; a key's write always carries a role stamp.
        if env.source != READS_SOURCE or env.role is not None or env.subject != READS_SUBJECT:
            raise Rejected("forbidden", "only the servers write the read audit")
        self.reads.add(data)
        return ACCEPTED

    def _crisis_changed(self, env: Envelope, data: CrisisChanged, record: CrisisRecord | None) -> Outcome:
        if data.crisis.id != env.subject:
            return rejected("malformed", "the crisis in the data is not the event's subject")
        if record is None:
            if data.expected_version != 0 or data.crisis.version != 1:
                return rejected("unknown_crisis", f"no crisis {env.subject}")
            _check_opening(env, data)
            self.crises[env.subject] = self._record(data.crisis)
            return ACCEPTED
        if data.expected_version == 0:
            return rejected("conflict", f"crisis {env.subject} exists already")
        _check_crisis_handling(env, record.state)
        if env.role is not None and not may_transition(actor_of(env)):
            raise Rejected("forbidden", f"a {env.role} key may not change a crisis's status")
        try:
            record.state = advance(record.state, data.transition, data.expected_version)
        except TransitionError as exc:
            return rejected(exc.code, exc.message)
        return ACCEPTED


def _check_opening(env: Envelope, data: CrisisChanged) -> None:
    state = data.crisis
    if state.created_by != env.author_org:
        raise Rejected("forbidden", "a crisis is created by the organisation that writes it")
    if env.role is not None and not may_open(actor_of(env), state.status):
        raise Rejected("forbidden", f"a {env.role} key may not open a crisis as {state.status}")
    problem = audience.handling_problem(state.tlp, state.tlprecipients)
    if problem is not None:
        raise Rejected(*problem)
    _check_crisis_handling(env, state)


def _check_crisis_handling(env: Envelope, state: CrisisState) -> None:
    """A crisis's events carry its own label and reach its audience, declarer included."""
    declarer = state.created_by
    named = set(env.tlprecipients) - {declarer}
    if env.tlp is not state.tlp or named != set(state.tlprecipients) - {declarer}:
        raise Rejected("handling_mismatch", "a crisis event must carry the crisis's TLP and recipients")
    if state.tlp.names_recipients and env.author_org != declarer and declarer not in env.tlprecipients:
        raise Rejected("handling_mismatch", "a crisis event must name the crisis's declarer")


def _check_reader(env: Envelope, record: CrisisRecord) -> None:
    if not audience.may_read_crisis(actor_of(env), record.state):
        raise Rejected("unknown_crisis", f"no crisis {env.subject}")


def _check_role(env: Envelope, roles: frozenset[Role], action: str) -> None:
    if env.role is not None and env.role not in roles:
        raise Rejected("forbidden", f"a {env.role} key may not {action}")


def _check_indicator_handling(env: Envelope, record: CrisisRecord) -> None:
    crisis = record.state
    if audience.is_wider(env.tlp, crisis.tlp):
        raise Rejected(
            "tlp_wider_than_crisis",
            f"TLP:{env.tlp.upper()} is wider than the crisis's TLP:{crisis.tlp.upper()}",
        )
    problem = audience.handling_problem(env.tlp, env.tlprecipients)
    if problem is not None:
        raise Rejected(*problem)
    outside = audience.within_crisis(crisis, env.tlprecipients)
    if outside:
        raise Rejected(
            "recipients_outside_crisis",
            f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in the crisis's audience",
        )


def _indicator_shared(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, IndicatorShared)
    checked = record.shares_checked
    # The same writer, label and recipients on the same crisis state (an immutable model: a change
    # replaces it) as the last share that passed: the checks below would pass again (each reads only
    # these), so they are skipped, not changed.
    again = (
        checked is not None
        and checked[0] is record.state
        and checked[1] == env.source
        and checked[2] is env.role
        and checked[3] is env.tlp
        and checked[4] == env.tlprecipients
    )
    if not again:
        _check_role(env, SHARERS, "share indicators")
        _check_reader(env, record)
        if not takes_follow_ups(record.state):
            return rejected("crisis_closed", f"crisis {env.subject} is closed and takes no indicators")
    if data.shared_by != env.author_org:
        raise Rejected("forbidden", "an indicator is shared by the organisation that writes it")
    if not again:
        _check_indicator_handling(env, record)
        record.shares_checked = (record.state, env.source, env.role, env.tlp, env.tlprecipients)
    if data.indicator_id in record.indicators:
        return rejected("conflict", f"indicator id {data.indicator_id} is taken")
    record.indicators.add(
        IndicatorRecord(data=data, shared_at=env.time, tlp=env.tlp, tlprecipients=env.tlprecipients)
    )
    return ACCEPTED


def _indicator_sighted(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, IndicatorSighted)
    _check_role(env, SHARERS, "share indicators")
    _check_reader(env, record)
    if not takes_follow_ups(record.state):
        return rejected("crisis_closed", f"crisis {env.subject} is closed and takes no indicators")
    if data.sighted_by != env.author_org:
        raise Rejected("forbidden", "a sighting is reported by the organisation that writes it")
    indicator = _readable(env, record, data.indicator_id)
    if indicator.retracted:
        return rejected("conflict", f"indicator {data.indicator_id} is retracted")
    if (data.kind, data.canonical) != (indicator.data.kind, indicator.data.canonical):
        raise Rejected("malformed", "a sighting names the kind and value of the indicator it repeats")
    if not audience.same_audience(
        (env.tlp, env.tlprecipients), env.author_org, indicator.handling, indicator.data.shared_by
    ):
        raise Rejected("handling_mismatch", "a sighting has exactly the audience of the indicator it repeats")
    indicator.sightings.append(Sighting(org=data.sighted_by, at=env.time))
    record.indicators.put(indicator)
    return Outcome(accepted=True, sighting_of=data.indicator_id)


def _indicator_retracted(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, IndicatorRetracted)
    _check_role(env, SHARERS, "retract indicators")
    indicator = _readable(env, record, data.indicator_id)
    if env.role is not Role.COORDINATOR and env.author_org != indicator.data.shared_by:
        raise Rejected(
            "forbidden", "only the organisation that shared an indicator, or a coordinator, may retract it"
        )
    if data.retracted_by != env.author_org:
        raise Rejected("forbidden", "a retraction is made by the organisation that writes it")
    _check_follow_up(env, indicator)
    if indicator.retracted:
        return rejected("conflict", f"indicator {data.indicator_id} is already retracted")
    indicator.retracted = True
    record.indicators.put(indicator)
    return ACCEPTED


def _action_reported(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, ActionReported)
    _check_role(env, frozenset({Role.PROVIDER}), "report actions")
    indicator = _readable(env, record, data.indicator_id)
    if data.provider_org != env.author_org:
        raise Rejected("forbidden", "an action is reported by the organisation that writes it")
    _check_follow_up(env, indicator)
    if not takes_follow_ups(record.state):
        return rejected("crisis_closed", f"crisis {record.state.id} is closed")
    if data.outcome is ActionOutcome.REINSTATED and not disputes.may_reinstate(
        disputes.current(record.disputes, data.indicator_id)
    ):
        return rejected("conflict", f"indicator {data.indicator_id} was not retracted by a dispute")
    record.actions.append((env, data))
    if data.outcome is ActionOutcome.DISAGREE:
        disputes.raised(
            record.disputes, env.id, data.indicator_id, indicator.data.shared_by, env.author_org, env.time
        )
    record.answers.setdefault((data.indicator_id, data.provider_org), Answer()).record(data.outcome, data.at)
    deadlines.withdraw(record, data.indicator_id, data.provider_org, env.time)
    return ACCEPTED


def _crisis_clock_changed(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, ClockChanged)
    if data.crisis.id != env.subject:
        return rejected("malformed", "the crisis in the data is not the event's subject")
    _check_crisis_handling(env, record.state)
    if env.role is not None and not may_transition(actor_of(env)):
        raise Rejected("forbidden", f"a {env.role} key may not change a crisis's roster or deadlines")
    outside = audience.within_crisis(record.state, data.change.roster)
    if outside:
        raise Rejected("recipients_outside_crisis", f"not in the crisis's audience: {', '.join(outside)}")
    try:
        record.state = clock_changed(record.state, data.change, data.expected_version)
    except TransitionError as exc:
        return rejected(exc.code, exc.message)
    return ACCEPTED


def _clock_overdue(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, ClockOverdue)
    # Only the clock of an API process writes these; a key's write always carries a role stamp.
    if env.source != deadlines.CLOCK_SOURCE or env.role is not None:
        raise Rejected("forbidden", "only the clock writes clock events")
    indicator = record.indicators.get(data.indicator_id)
    if indicator is None:
        return rejected("unknown_indicator", f"no indicator {data.indicator_id} in crisis {env.subject}")
    _check_follow_up(env, indicator)
    problem = deadlines.refusal(record, data, env.time)
    if problem is not None:
        return rejected("not_overdue", problem)
    key = (data.indicator_id, data.provider_org, data.deadline)
    record.overdue[key] = Overdue(event_id=env.id, due_at=data.due_at)
    record.missed.append(env)
    return ACCEPTED


def _dispute_resolved(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, DisputeResolved)
    dispute = record.disputes.get(data.dispute_id)
    problem = disputes.refusal(dispute, data.dispute_id, env.role, env.author_org)
    if problem is not None:
        raise Rejected(*problem)
    assert dispute is not None
    if data.resolved_by != env.author_org or data.indicator_id != dispute.indicator_id:
        raise Rejected("malformed", "a resolution names its writer's organisation and the disputed indicator")
    indicator = _readable(env, record, dispute.indicator_id)
    _check_follow_up(env, indicator)
    disputes.resolved(dispute, data, env.time)
    if data.outcome is disputes.Resolution.RETRACTED and not indicator.retracted:
        indicator.retracted = True
        record.indicators.put(indicator)
    return ACCEPTED


def _replay_dispute(record: CrisisRecord, env: Envelope) -> None:
    """One accepted event of a restored crisis, as far as its disputes go."""
    if env.type is EventType.ACTION_REPORTED and env.data.get("outcome") == ActionOutcome.DISAGREE:
        action = ActionReported.model_validate(env.data)
        indicator = record.indicators.get(action.indicator_id)
        shared_by = indicator.data.shared_by if indicator is not None else ""
        disputes.raised(record.disputes, env.id, action.indicator_id, shared_by, env.author_org, env.time)
    elif env.type is EventType.DISPUTE_RESOLVED:
        resolution = DisputeResolved.model_validate(env.data)
        dispute = record.disputes.get(resolution.dispute_id)
        if dispute is not None:
            disputes.resolved(dispute, resolution, env.time)


def _indicator_erased(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, IndicatorErased)
    if data.indicator_id is None:
        raise Rejected("malformed", "an indicator erasure names the indicator")
    _check_erasure(env, data)
    indicator = _readable(env, record, data.indicator_id)
    _check_follow_up(env, indicator)
    # A second erasure of the same values is accepted (it destroys nothing more): whether a value reads
    # as erased depends on when a reader folds it (a replay finds the key gone), never the verdict.
    return ACCEPTED


def _crisis_erased(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, IndicatorErased)
    if data.indicator_id is not None:
        raise Rejected("malformed", "a crisis erasure names no indicator")
    _check_erasure(env, data)
    _check_reader(env, record)
    _check_crisis_handling(env, record.state)
    return ACCEPTED


def _check_erasure(env: Envelope, data: IndicatorErased) -> None:
    if env.role is not None and not retention.may_erase(actor_of(env)):
        raise Rejected("forbidden", f"a {env.role} key may not erase values")
    if data.erased_by != env.author_org:
        raise Rejected("forbidden", "an erasure is made by the organisation that writes it")


def _retention_expired(env: Envelope, data: object, record: CrisisRecord) -> Outcome:
    assert isinstance(data, RetentionExpired)
    # Only the clock of an API process writes these; a key's write always carries a role stamp.
    if env.source != deadlines.CLOCK_SOURCE or env.role is not None:
        raise Rejected("forbidden", "only the clock writes retention events")
    _check_crisis_handling(env, record.state)
    if record.state.retention_expired_at is not None:
        return rejected("conflict", f"the retention of crisis {record.state.id} has already ended")
    due = retention.expires_at(record.state)
    if due is None or env.time < due:
        return rejected("not_due", f"the retention of crisis {record.state.id} has not ended")
    return ACCEPTED


def _readable(env: Envelope, record: CrisisRecord, indicator_id: str) -> IndicatorRecord:
    """The indicator an event refers to; the same answer whether it does not exist or the writer may not
    read it, so no refusal tells anyone that an indicator outside their audience exists."""
    indicator = record.indicators.get(indicator_id)
    if indicator is None or not indicator.readable_by(actor_of(env), record.state.mode):
        raise Rejected("unknown_indicator", f"no indicator {indicator_id} in crisis {record.state.id}")
    return indicator


def _check_follow_up(env: Envelope, indicator: IndicatorRecord) -> None:
    """An event about an indicator reaches exactly that indicator's audience."""
    if env.tlp is not indicator.tlp or set(env.tlprecipients) != set(indicator.follow_up_recipients):
        raise Rejected("handling_mismatch", "an event about an indicator carries that indicator's audience")


_INDICATOR_RULES = {
    EventType.INDICATOR_SHARED: _indicator_shared,
    EventType.INDICATOR_SIGHTED: _indicator_sighted,
    EventType.INDICATOR_RETRACTED: _indicator_retracted,
    EventType.ACTION_REPORTED: _action_reported,
    EventType.CRISIS_CLOCK_CHANGED: _crisis_clock_changed,
    EventType.CLOCK_OVERDUE: _clock_overdue,
    EventType.DISPUTE_RESOLVED: _dispute_resolved,
    EventType.INDICATOR_ERASED: _indicator_erased,
    EventType.CRISIS_ERASED: _crisis_erased,
    EventType.CRISIS_RETENTION_EXPIRED: _retention_expired,
}
