"""The report of one crisis, computed from the folded log: timeline, indicators, per-provider clocks.

Pure: the same log gives the same report in the API, the CLI and the exercise after-action report.
A provider's "receipt" is its first report of any outcome for an indicator (a provider that answers
`removed` straight away has evidently received it); its "first action" is its first outcome other than
`received`. Both are measured from the indicator's first share.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.domain.audience import may_read_event
from crisis.domain.book import CrisisRecord, IndicatorRecord
from crisis.domain.crisis import CrisisState
from crisis.domain.enums import ActionOutcome, EventType, IndicatorKind, Role, Status
from crisis.domain.envelope import Envelope
from crisis.domain.events import ActionReported, CrisisChanged, IndicatorRetracted
from crisis.domain.principal import Principal

ONE_HOUR_S: Final = 3600

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


class Report(BaseModel):
    """The whole report; the exercise after-action report builds on these field names."""

    model_config = ConfigDict(extra="forbid")

    crisis: CrisisState
    generated_at: AwareDatetime
    one_hour_s: int = ONE_HOUR_S
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
    indicators = [r for r in record.indicators.values() if indicator_visible(reader, r, record.state)]
    readable_ids = {r.data.indicator_id for r in indicators}
    actions = [
        (env, data) for env, data in record.actions if visible(env) and data.indicator_id in readable_ids
    ]
    return Report(
        crisis=record.state,
        generated_at=generated_at,
        timeline=[_entry(env, record) for env in record.timeline if _shown(env, visible, readable_ids)],
        indicators=[_indicator_line(r) for r in indicators],
        providers=_providers(indicators, actions, record.state),
    )


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


def _shown(env: Envelope, visible: Visible, readable_ids: set[str]) -> bool:
    """An event about an indicator is shown only with the indicator: its id alone must not leak."""
    if not visible(env):
        return False
    if env.type in _REFERS:
        return env.data.get("indicator_id") in readable_ids
    return True


# Events that name an existing indicator by its id.
_REFERS = (EventType.INDICATOR_SIGHTED, EventType.INDICATOR_RETRACTED, EventType.ACTION_REPORTED)


def _entry(env: Envelope, record: CrisisRecord) -> TimelineEntry:
    status = level = None
    if env.type.is_crisis_state:
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
    )


def summarise(env: Envelope, record: CrisisRecord) -> str:
    """One human line per event."""
    data = env.data
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


def _providers(
    indicators: list[IndicatorRecord],
    actions: list[tuple[Envelope, ActionReported]],
    state: CrisisState,
) -> list[ProviderLine]:
    by_org: dict[str, list[ActionReported]] = {}
    for _env, data in actions:
        by_org.setdefault(data.provider_org, []).append(data)
    return [_provider(org, indicators, by_org[org], state) for org in sorted(by_org)]


def _provider(
    org: str, indicators: list[IndicatorRecord], reports: list[ActionReported], state: CrisisState
) -> ProviderLine:
    provider = Principal(org=org, role=Role.PROVIDER, key_id="")
    touched: dict[str, list[ActionReported]] = {}
    for a in reports:
        touched.setdefault(a.indicator_id, []).append(a)
    # Its due list: what it could read and was not withdrawn, plus anything it answered anyway.
    due = [
        r
        for r in indicators
        if r.data.indicator_id in touched or (not r.retracted and indicator_visible(provider, r, state))
    ]
    items = [_item(r, touched.get(r.data.indicator_id, [])) for r in due]
    return provider_line(org, items)


def provider_line(org: str, items: list[ProviderItem], scale: float = 1.0) -> ProviderLine:
    """One provider's figures from its items; `scale` turns wall-clock seconds into exercise seconds."""
    receipts = [i.receipt_s * scale for i in items if i.receipt_s is not None]
    acts = [i.action_s * scale for i in items if i.action_s is not None]
    return ProviderLine(
        org=org,
        indicators=len(items),
        received=len(receipts),
        actioned=len(acts),
        receipt_within_hour=sum(1 for s in receipts if s <= ONE_HOUR_S),
        action_within_hour=sum(1 for s in acts if s <= ONE_HOUR_S),
        median_receipt_s=_median(receipts),
        median_action_s=_median(acts),
        slowest_receipt_s=max(receipts, default=None),
        slowest_action_s=max(acts, default=None),
        items=items,
    )


def _item(r: IndicatorRecord, reports: list[ActionReported]) -> ProviderItem:
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
    )


def _seconds(start: datetime, end: datetime) -> float:
    # Clocks of different API processes may differ slightly; a report never shows a negative delay.
    return max(0.0, (end - start).total_seconds())


def _median(values: Iterable[float]) -> float | None:
    data = list(values)
    return statistics.median(data) if data else None


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
        f"- indicators: {len(report.indicators)}, providers reporting: {len(report.providers)}",
        "",
        "## Providers",
        "",
        "| provider | indicators | received | within 1 h | actioned | within 1 h "
        "| median receipt | median action | slowest receipt | slowest action |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in report.providers:
        lines.append(
            f"| {_cell(p.org)} | {p.indicators} | {p.received} | {p.receipt_within_hour} | {p.actioned} "
            f"| {p.action_within_hour} | {_dur(p.median_receipt_s)} | {_dur(p.median_action_s)} "
            f"| {_dur(p.slowest_receipt_s)} | {_dur(p.slowest_action_s)} |"
        )
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


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _cell(text: str) -> str:
    # A pipe or a newline in user text would break the table; its HTML would run in a Markdown viewer.
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")
