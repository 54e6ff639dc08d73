"""The report of one crisis, computed from the folded log: timeline, indicators, per-provider clocks.

Pure: the same log gives the same report in the API, the CLI and the exercise after-action report.
A provider's "receipt" is its first report of any outcome for an indicator (a provider that answers
`removed` straight away has evidently received it); its "first action" is its first outcome other than
`received`. Both are measured from the indicator's first share.

Every provider on the crisis's roster has a line, silent ones included, and its deadlines count as due
once they have passed (or been met): a deadline still open at `generated_at` is neither met nor missed.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.domain.audience import may_read_event
from crisis.domain.book import CrisisRecord, IndicatorRecord
from crisis.domain.crisis import ONE_HOUR_S, CrisisState
from crisis.domain.disputes import DisputeResolved
from crisis.domain.enums import ActionOutcome, EventType, IndicatorKind, Role, Status
from crisis.domain.envelope import Envelope
from crisis.domain.events import ActionReported, ClockChanged, ClockOverdue, CrisisChanged, IndicatorRetracted
from crisis.domain.principal import Principal

Visible = Callable[[Envelope], bool]


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time: AwareDatetime
    type: EventType
    event_id: str
    org: str
    summary: str
    status: Status | None = Field(default=None, description="For crisis events: the status after the change.")
    level: int | None = Field(default=None, description="For crisis events: the level after the change.")
    note: str = Field(default="", description="For provider actions: the provider's note, if any.")


class SightingOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: str
    at: AwareDatetime


class IndicatorLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    indicator_id: str
    kind: IndicatorKind
    canonical: str
    shared_at: AwareDatetime
    shared_by: str
    sightings: list[SightingOut]
    retracted: bool


class ProviderItem(BaseModel):
    """One indicator as one provider handled it; times in seconds from the share."""

    model_config = ConfigDict(extra="forbid")

    indicator_id: str
    shared_at: AwareDatetime
    received_at: AwareDatetime | None = None
    receipt_s: float | None = None
    first_action: ActionOutcome | None = None
    first_action_at: AwareDatetime | None = None
    action_s: float | None = None
    receipt_due_at: AwareDatetime | None = None
    action_due_at: AwareDatetime | None = None


class ProviderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: str
    indicators: int
    received: int
    actioned: int
    receipt_within_hour: int
    action_within_hour: int
    median_receipt_s: float | None
    median_action_s: float | None
    slowest_receipt_s: float | None
    slowest_action_s: float | None
    items: list[ProviderItem]
    expected: bool = Field(default=False, description="On the crisis's roster of expected providers.")
    receipts_due: int = Field(default=0, description="Receipt deadlines passed or met by generated_at.")
    receipts_missed: int = Field(default=0, description="Receipt deadlines passed without a timely receipt.")
    actions_due: int = Field(default=0, description="Action deadlines passed or met by generated_at.")
    actions_missed: int = Field(default=0, description="Action deadlines passed without a timely outcome.")


class Report(BaseModel):
    """The whole report; the exercise after-action report builds on these field names."""

    model_config = ConfigDict(extra="forbid")

    crisis: CrisisState
    generated_at: AwareDatetime
    one_hour_s: int = ONE_HOUR_S
    receipt_deadline_s: int = ONE_HOUR_S
    action_deadline_s: int = ONE_HOUR_S
    roster: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry]
    indicators: list[IndicatorLine]
    providers: list[ProviderLine]


def visible_to(principal: Principal | None) -> Visible:
    """The TLP/role filter for one reader; None reads everything (the log's owner, an exercise controller)."""
    if principal is None:
        return lambda _env: True
    return lambda env: may_read_event(principal, env)


def indicator_visible(principal: Principal | None, record: IndicatorRecord, state: CrisisState) -> bool:
    """Whether `principal` may read one indicator (the audience rule; None reads everything)."""
    return principal is None or record.readable_by(principal, state.mode)


def build_report(record: CrisisRecord, generated_at: datetime, reader: Principal | None = None) -> Report:
    """The report as `reader` may see it."""
    visible = visible_to(reader)
    indicators = list(_readable(record, reader))
    readable_ids = {r.data.indicator_id for r in indicators}
    touched = _touched(record, visible, readable_ids.__contains__)
    state = record.state
    providers = [
        provider_line(
            org,
            list(_items(org, indicators, touched.get(org, {}), state)),
            now=generated_at,
            expected=org in state.roster,
            state=state,
        )
        for org in _orgs(state, touched)
    ]
    return Report(
        crisis=state,
        generated_at=generated_at,
        receipt_deadline_s=state.receipt_deadline_s,
        action_deadline_s=state.action_deadline_s,
        roster=list(state.roster),
        timeline=[_entry(env, record) for env in record.timeline if _shown(env, visible, readable_ids)],
        indicators=[_indicator_line(r) for r in indicators],
        providers=providers,
    )


def report_summary(
    record: CrisisRecord, generated_at: datetime, reader: Principal | None = None
) -> tuple[Report, int]:
    """The report without its per-indicator parts (the crisis, its own events and one line per provider),
    and how many indicators `reader` may read: what `summary_of(build_report(...))` gives, computed in
    one pass over the indicators with nothing held per indicator, so its size grows with the providers.
    `lines_of` gives the rest, one line each."""
    visible = visible_to(reader)
    state = record.state
    touched = _touched(record, visible, _readable_lookup(record, reader))
    orgs = _orgs(state, touched)
    tallies = {org: _Tally(now=generated_at, state=state) for org in orgs}
    total = 0
    for r in _readable(record, reader):
        total += 1
        for org in orgs:
            answers = touched.get(org, {})
            if _owed(org, r, answers, state):
                tallies[org].add(_item(r, answers.get(r.data.indicator_id, []), state))
    summary = Report(
        crisis=state,
        generated_at=generated_at,
        receipt_deadline_s=state.receipt_deadline_s,
        action_deadline_s=state.action_deadline_s,
        roster=list(state.roster),
        timeline=[
            _entry(env, record) for env in record.timeline if env.type.is_crisis_state and visible(env)
        ],
        indicators=[],
        providers=[tallies[org].line(org, [], expected=org in state.roster) for org in orgs],
    )
    return summary, total


def summary_of(full: Report) -> Report:
    """The report without its per-indicator parts: the crisis, its own events and one line per provider.

    Its size grows with the providers, not the indicators; `report_lines` gives the rest, one line each.
    """
    return full.model_copy(
        update={
            "indicators": [],
            "timeline": [t for t in full.timeline if t.type.is_crisis_state],
            "providers": [p.model_copy(update={"items": []}) for p in full.providers],
        }
    )


def report_lines(report: Report) -> Iterator[dict[str, object]]:
    """The per-indicator parts of a report as plain JSON objects, each tagged with the part it belongs to:
    `indicator` lines, then each provider's `item` lines, then the `timeline` (NDJSON, one per line)."""
    for i in report.indicators:
        yield {"part": "indicator", **i.model_dump(mode="json")}
    for p in report.providers:
        for item in p.items:
            yield {"part": "item", "org": p.org, **item.model_dump(mode="json")}
    for t in report.timeline:
        yield {"part": "timeline", **t.model_dump(mode="json")}


def lines_of(record: CrisisRecord, reader: Principal | None = None) -> Iterator[dict[str, object]]:
    """`report_lines(build_report(...))` read straight from the crisis's storage, a line at a time: the
    whole report is never held (each provider's items take one more pass over the indicators)."""
    visible = visible_to(reader)
    readable = _readable_lookup(record, reader)
    state = record.state
    for r in _readable(record, reader):
        yield {"part": "indicator", **_indicator_line(r).model_dump(mode="json")}
    touched = _touched(record, visible, readable)
    for org in _orgs(state, touched):
        for item in _items(org, _readable(record, reader), touched.get(org, {}), state):
            yield {"part": "item", "org": org, **item.model_dump(mode="json")}
    for env in record.timeline:
        if _shown(env, visible, readable):
            yield {"part": "timeline", **_entry(env, record).model_dump(mode="json")}


def _readable(record: CrisisRecord, reader: Principal | None) -> Iterator[IndicatorRecord]:
    return (r for r in record.indicators.values() if indicator_visible(reader, r, record.state))


def _readable_lookup(record: CrisisRecord, reader: Principal | None) -> Callable[[str], bool]:
    """Whether `reader` may read an indicator, by id, looked up once each (no set of every id)."""
    known: dict[str, bool] = {}

    def readable(indicator_id: str) -> bool:
        if indicator_id not in known:
            found = record.indicators.get(indicator_id)
            known[indicator_id] = found is not None and indicator_visible(reader, found, record.state)
        return known[indicator_id]

    return readable


def _touched(
    record: CrisisRecord, visible: Visible, readable: Callable[[str], bool]
) -> dict[str, dict[str, list[ActionReported]]]:
    """provider -> indicator id -> its reports the reader may see, in log order."""
    touched: dict[str, dict[str, list[ActionReported]]] = {}
    for env, data in record.actions:
        if visible(env) and readable(data.indicator_id):
            touched.setdefault(data.provider_org, {}).setdefault(data.indicator_id, []).append(data)
    return touched


def _orgs(state: CrisisState, touched: dict[str, dict[str, list[ActionReported]]]) -> list[str]:
    """Every provider that answered and every expected one, silent or not."""
    return sorted({*state.roster, *touched})


def assemble(summary: Report, lines: Iterable[dict[str, Any]]) -> Report:
    """A whole report again from its summary and its lines (what a client that wants it all does)."""
    indicators: list[IndicatorLine] = []
    items: dict[str, list[ProviderItem]] = {}
    timeline: list[TimelineEntry] = []
    for line in lines:
        part = line.pop("part", None)
        if part == "indicator":
            indicators.append(IndicatorLine.model_validate(line))
        elif part == "item":
            items.setdefault(str(line.pop("org")), []).append(ProviderItem.model_validate(line))
        elif part == "timeline":
            timeline.append(TimelineEntry.model_validate(line))
    providers = [p.model_copy(update={"items": items.get(p.org, [])}) for p in summary.providers]
    return summary.model_copy(update={"indicators": indicators, "timeline": timeline, "providers": providers})


def _shown(env: Envelope, visible: Visible, readable: Callable[[str], bool] | set[str]) -> bool:
    """An event about an indicator is shown only with the indicator: its id alone must not leak."""
    if not visible(env):
        return False
    if env.type in _REFERS:
        indicator_id = env.data.get("indicator_id")
        if not isinstance(indicator_id, str):
            return False
        return indicator_id in readable if isinstance(readable, set) else readable(indicator_id)
    return True


# Events that name an existing indicator by its id.
_REFERS = (
    EventType.INDICATOR_SIGHTED,
    EventType.INDICATOR_RETRACTED,
    EventType.ACTION_REPORTED,
    EventType.CLOCK_OVERDUE,
    EventType.DISPUTE_RESOLVED,
    EventType.INDICATOR_ERASED,
)


def _entry(env: Envelope, record: CrisisRecord) -> TimelineEntry:
    status = level = None
    if env.type is EventType.CRISIS_CLOCK_CHANGED:
        after = ClockChanged.model_validate(env.data).crisis
        status, level = after.status, after.level
    elif env.type.is_crisis_state:
        change = CrisisChanged.model_validate(env.data).transition
        status, level = change.to_status, change.level
    return TimelineEntry(
        time=env.time,
        type=env.type,
        event_id=env.id,
        org=env.author_org,
        summary=summarise(env, record),
        status=status,
        level=level,
        note=str(env.data.get("note") or "") if env.type is EventType.ACTION_REPORTED else "",
    )


def summarise(env: Envelope, record: CrisisRecord) -> str:
    """One human line per event."""
    data = env.data
    if env.type is EventType.CRISIS_CLOCK_CHANGED:
        clock = ClockChanged.model_validate(data).change
        text = (
            f"clock: receipt within {_dur(clock.receipt_deadline_s)}, action within "
            f"{_dur(clock.action_deadline_s)}; roster: {', '.join(clock.roster) or 'none'}"
        )
        return text + (f"; reason: {clock.reason}" if clock.reason else "")
    if env.type is EventType.CLOCK_OVERDUE:
        overdue = ClockOverdue.model_validate(data)
        return f"{overdue.provider_org}: {overdue.deadline} overdue for {overdue.indicator_id}"
    if env.type.is_crisis_state:
        change = CrisisChanged.model_validate(data).transition
        text = f"{change.from_status or 'new'} -> {change.to_status}"
        if change.level is not None:
            text += f" (level {change.level})"
        if change.criteria:
            text += "; criteria: " + ", ".join(change.criteria)
        return text + (f"; reason: {change.reason}" if change.reason else "")
    if env.type is EventType.INDICATOR_SHARED:
        # The fold accepted this event, so its data has IndicatorShared's shape; reading the fields
        # directly keeps a report over 100,000 indicators fast.
        return f"{data['kind']} {data['canonical']} shared as {data['indicator_id']}"
    if env.type is EventType.INDICATOR_SIGHTED:
        # Shown only to readers of the indicator it names (see _shown), who know that id already.
        return f"{data['kind']} {data['canonical']} seen again (sighting of {data['indicator_id']})"
    if env.type is EventType.INDICATOR_RETRACTED:
        retracted = IndicatorRetracted.model_validate(data)
        return f"{retracted.indicator_id} retracted" + (f": {retracted.reason}" if retracted.reason else "")
    if env.type is EventType.DISPUTE_RESOLVED:
        resolved = DisputeResolved.model_validate(data)
        text = f"{resolved.resolved_by}: dispute on {resolved.indicator_id} {resolved.outcome}"
        return text + (f": {resolved.reason}" if resolved.reason else "")
    if env.type is EventType.INDICATOR_ERASED:
        return f"{data['indicator_id']} erased by {data['erased_by']}: {data['reason']}"
    if env.type is EventType.CRISIS_ERASED:
        return f"free text erased by {data['erased_by']}: {data['reason']}"
    if env.type is EventType.CRISIS_RETENTION_EXPIRED:
        return "retention after closure ended: indicator values and free text destroyed"
    action = ActionReported.model_validate(data)
    return f"{action.provider_org}: {action.outcome} for {action.indicator_id}"


def _indicator_line(r: IndicatorRecord) -> IndicatorLine:
    return IndicatorLine(
        indicator_id=r.data.indicator_id,
        kind=r.data.kind,
        canonical=r.data.canonical,
        shared_at=r.shared_at,
        shared_by=r.data.shared_by,
        sightings=[SightingOut(org=s.org, at=s.at) for s in r.sightings],
        retracted=r.retracted,
    )


def _owed(org: str, r: IndicatorRecord, answers: dict[str, list[ActionReported]], state: CrisisState) -> bool:
    """Whether `r` is on a provider's due list: it could read it and it was not withdrawn, or it answered
    anyway."""
    provider = Principal(org=org, role=Role.PROVIDER, key_id="")
    return r.data.indicator_id in answers or (not r.retracted and indicator_visible(provider, r, state))


def _items(
    org: str,
    indicators: Iterable[IndicatorRecord],
    answers: dict[str, list[ActionReported]],
    state: CrisisState,
) -> Iterator[ProviderItem]:
    for r in indicators:
        if _owed(org, r, answers, state):
            yield _item(r, answers.get(r.data.indicator_id, []), state)


class _Tally:
    """One provider's figures, item by item: what provider_line reports, without holding the items."""

    def __init__(self, scale: float = 1.0, *, now: datetime | None, state: CrisisState | None) -> None:
        self.scale, self.now = scale, now
        self.receipt_limit = state.receipt_deadline_s if state else ONE_HOUR_S
        self.action_limit = state.action_deadline_s if state else ONE_HOUR_S
        self.count = 0
        self.receipts: list[float] = []
        self.acts: list[float] = []
        self.receipts_due = [0, 0]
        self.actions_due = [0, 0]

    def add(self, i: ProviderItem) -> None:
        self.count += 1
        if i.receipt_s is not None:
            self.receipts.append(i.receipt_s * self.scale)
        if i.action_s is not None:
            self.acts.append(i.action_s * self.scale)
        _count_deadline(self.receipts_due, i.receipt_due_at, i.receipt_s, self.now, self.receipt_limit)
        _count_deadline(self.actions_due, i.action_due_at, i.action_s, self.now, self.action_limit)

    def line(self, org: str, items: list[ProviderItem], *, expected: bool) -> ProviderLine:
        receipts, acts = self.receipts, self.acts
        return ProviderLine(
            org=org,
            indicators=self.count,
            received=len(receipts),
            actioned=len(acts),
            receipt_within_hour=sum(1 for s in receipts if s <= ONE_HOUR_S),
            action_within_hour=sum(1 for s in acts if s <= ONE_HOUR_S),
            median_receipt_s=_median(receipts),
            median_action_s=_median(acts),
            slowest_receipt_s=max(receipts, default=None),
            slowest_action_s=max(acts, default=None),
            items=items,
            expected=expected,
            receipts_due=self.receipts_due[0],
            receipts_missed=self.receipts_due[1],
            actions_due=self.actions_due[0],
            actions_missed=self.actions_due[1],
        )


def provider_line(
    org: str,
    items: list[ProviderItem],
    scale: float = 1.0,
    *,
    now: datetime | None = None,
    expected: bool = False,
    state: CrisisState | None = None,
) -> ProviderLine:
    """One provider's figures from its items; `scale` turns wall-clock seconds into exercise seconds.

    With `now` and the crisis `state`, its deadlines are counted: due once passed or met by `now`.
    """
    tally = _Tally(scale, now=now, state=state)
    for i in items:
        tally.add(i)
    return tally.line(org, items, expected=expected)


def _count_deadline(
    tally: list[int], due_at: datetime | None, took: float | None, now: datetime | None, limit: int
) -> None:
    """Counts into (due, missed): a deadline is due once it has passed or been met; missed when passed
    unmet."""
    met = took is not None and took <= limit
    passed = due_at is not None and now is not None and now >= due_at
    if met or passed:
        tally[0] += 1
        tally[1] += 0 if met else 1


def _item(r: IndicatorRecord, reports: list[ActionReported], state: CrisisState) -> ProviderItem:
    ordered = sorted(reports, key=lambda a: a.at)
    first = ordered[0] if ordered else None
    acted = next((a for a in ordered if not a.outcome.is_receipt), None)
    return ProviderItem(
        indicator_id=r.data.indicator_id,
        shared_at=r.shared_at,
        received_at=first.at if first else None,
        receipt_s=_seconds(r.shared_at, first.at) if first else None,
        first_action=acted.outcome if acted else None,
        first_action_at=acted.at if acted else None,
        action_s=_seconds(r.shared_at, acted.at) if acted else None,
        receipt_due_at=r.shared_at + timedelta(seconds=state.receipt_deadline_s),
        action_due_at=r.shared_at + timedelta(seconds=state.action_deadline_s),
    )


def _seconds(start: datetime, end: datetime) -> float:
    # Clocks of different API processes may differ slightly; a report never shows a negative delay.
    return max(0.0, (end - start).total_seconds())


def _median(values: Iterable[float]) -> float | None:
    data = list(values)
    return statistics.median(data) if data else None


class Cell(NamedTuple):
    """One provider's answer to one indicator: its first action, else its receipt; seconds from the share.
    `due` without an outcome: the provider could read the indicator and has not answered."""

    outcome: str | None
    seconds: float | None
    due: bool


def matrix(providers: list[ProviderLine], indicators: list[IndicatorLine]) -> list[tuple[str, list[Cell]]]:
    """The provider x indicator matrix: one row per indicator (its id), one cell per provider, in order."""
    answered = [{i.indicator_id: i for i in p.items} for p in providers]
    rows = []
    for line in indicators:
        cells = []
        for items in answered:
            item = items.get(line.indicator_id)
            if item is None:
                cells.append(Cell(None, None, False))
            elif item.first_action is not None:
                cells.append(Cell(str(item.first_action), item.action_s, True))
            elif item.received_at is not None:
                cells.append(Cell(str(ActionOutcome.RECEIVED), item.receipt_s, True))
            else:
                cells.append(Cell(None, None, True))
        rows.append((line.indicator_id, cells))
    return rows


def cell_text(cell: Cell, duration: Callable[[float | None], str]) -> str:
    """`removed 3m12s`; `no answer` when due and unanswered; empty when not the provider's to act on."""
    if cell.outcome is None:
        return "no answer" if cell.due else ""
    return f"{cell.outcome} {duration(cell.seconds)}"


def notes(report: Report) -> list[TimelineEntry]:
    """The provider actions that carry a note, in log order."""
    return [t for t in report.timeline if t.note]


def render_markdown(report: Report) -> str:
    """The report as Markdown, for people and for pasting into a debrief."""
    c = report.crisis
    lines = [
        f"# Crisis report: {_cell(c.title)}",
        "",
        f"- id: `{c.id}`, mode: {c.mode}, status: {c.status}"
        + (f", level {c.level}" if c.level else "")
        + f", TLP:{str(c.tlp).upper()}",
        f"- generated at {report.generated_at.isoformat()}",
        f"- indicators: {len(report.indicators)}, providers: {len(report.providers)} "
        f"(expected: {', '.join(map(_cell, report.roster)) or 'none'})",
        f"- deadlines: receipt within {_dur(report.receipt_deadline_s)}, "
        f"action within {_dur(report.action_deadline_s)} of the share",
        "",
        "## Providers",
        "",
        "| provider | expected | indicators | received | receipts missed of due | actioned "
        "| actions missed of due | median receipt | median action | slowest receipt | slowest action |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in report.providers:
        lines.append(
            f"| {_cell(p.org)} | {'yes' if p.expected else 'no'} | {p.indicators} | {p.received} "
            f"| {p.receipts_missed} of {p.receipts_due} | {p.actioned} "
            f"| {p.actions_missed} of {p.actions_due} "
            f"| {_dur(p.median_receipt_s)} | {_dur(p.median_action_s)} "
            f"| {_dur(p.slowest_receipt_s)} | {_dur(p.slowest_action_s)} |"
        )
    lines += _markdown_matrix(report)
    lines += _markdown_notes(report)
    lines += ["", "## Indicators", "", "| id | kind | canonical | shared at | by | sightings | retracted |"]
    lines.append("|---|---|---|---|---|---:|---|")
    for i in report.indicators:
        lines.append(
            f"| `{i.indicator_id}` | {i.kind} | {_cell(i.canonical)} | {i.shared_at.isoformat()} "
            f"| {_cell(i.shared_by)} | {len(i.sightings)} | {'yes' if i.retracted else 'no'} |"
        )
    lines += ["", "## Timeline", "", "| time | event | org | summary |", "|---|---|---|---|"]
    for t in report.timeline:
        lines.append(f"| {t.time.isoformat()} | {t.type} | {_cell(t.org)} | {_cell(t.summary)} |")
    return "\n".join(lines) + "\n"


def _markdown_matrix(report: Report) -> list[str]:
    lines = ["", "## Answers by indicator and provider", ""]
    if not report.providers or not report.indicators:
        return [*lines, "None."]
    lines += [
        "First action (else receipt) and its delay from the share; `no answer`: due, not answered.",
        "",
        "| indicator | " + " | ".join(_cell(p.org) for p in report.providers) + " |",
        "|---|" + "---|" * len(report.providers),
    ]
    for indicator_id, cells in matrix(report.providers, report.indicators):
        texts = " | ".join(cell_text(c, _dur) for c in cells)
        lines.append(f"| `{indicator_id}` | {texts} |")
    return lines


def _markdown_notes(report: Report) -> list[str]:
    lines = ["", "## Action notes", ""]
    found = notes(report)
    if not found:
        return [*lines, "None."]
    lines += ["| time | provider | action | note |", "|---|---|---|---|"]
    for t in found:
        lines.append(f"| {t.time.isoformat()} | {_cell(t.org)} | {_cell(t.summary)} | {_cell(t.note)} |")
    return lines


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _cell(text: str) -> str:
    # A pipe or a newline in user text would break the table; its HTML would run in a Markdown viewer.
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")
