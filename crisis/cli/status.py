"""`crisis status ID`: one crisis at a glance, from its state and (when the key may read it) its report."""

from __future__ import annotations

from typing import Any


def summary(crisis: dict[str, Any], report: dict[str, Any] | None) -> dict[str, Any]:
    """The structured view `--json` prints; `counts`, `acknowledgements` and `overdue` are None when the
    key may not read the report (an observer sees the crisis's state only)."""
    result: dict[str, Any] = {
        "crisis": crisis,
        "criteria": list(crisis.get("criteria") or []),
        "decided_by": None,
        "counts": None,
        "acknowledgements": None,
        "overdue": None,
    }
    if report is None:
        return result
    result["decided_by"] = _decision(report.get("timeline") or [])
    indicators = report.get("indicators") or []
    providers = report.get("providers") or []
    result["counts"] = {
        "indicators": len(indicators),
        "retracted": sum(1 for i in indicators if i.get("retracted")),
        "sightings": sum(len(i.get("sightings") or []) for i in indicators),
        "providers_reporting": len(providers),
    }
    result["acknowledgements"] = [
        {
            "org": p["org"],
            "indicators": p["indicators"],
            "received": p["received"],
            "actioned": p["actioned"],
            "receipt_within_hour": p["receipt_within_hour"],
            "action_within_hour": p["action_within_hour"],
        }
        for p in providers
    ]
    result["overdue"] = _count(report.get("overdue"))
    return result


def _decision(timeline: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Who made the crisis's latest status decision, when, and why (the last crisis event)."""
    decisions = [t for t in timeline if t.get("status")]
    if not decisions:
        return None
    last = decisions[-1]
    return {"org": last["org"], "at": last["time"], "status": last["status"], "summary": last["summary"]}


def _count(overdue: object) -> int:
    # The report lists overdue deadlines (or counts them) once the clock runs; absent means none yet.
    if isinstance(overdue, bool) or overdue is None:
        return 0
    if isinstance(overdue, int):
        return overdue
    if isinstance(overdue, list | dict):
        return len(overdue)
    return 0


def lines(view: dict[str, Any]) -> list[str]:
    """The summary for a person, one fact a line (the caller makes each line printable)."""
    c = view["crisis"]
    level = f" level {c['level']}" if c.get("level") else ""
    out = [
        f"{c['id']}  {c['title']}",
        f"  status     {c['status']}{level}  v{c['version']}  {c['mode']}  TLP:{str(c['tlp']).upper()}",
        f"  criteria   {', '.join(view['criteria']) or 'none recorded'}",
    ]
    decision = view["decided_by"]
    if decision:
        out.append(f"  decided    {decision['status']} by {decision['org']} at {decision['at']}")
    counts = view["counts"]
    if counts is None:
        out.append("  (indicators and acknowledgements: this key's role may not read the report)")
        return out
    out.append(
        f"  indicators {counts['indicators']} ({counts['retracted']} retracted, "
        f"{counts['sightings']} sightings), {counts['providers_reporting']} providers reporting"
    )
    for ack in view["acknowledgements"]:
        out.append(
            f"  ack        {ack['org']}: received {ack['received']}/{ack['indicators']} "
            f"({ack['receipt_within_hour']} within 1 h), actioned {ack['actioned']}/{ack['indicators']} "
            f"({ack['action_within_hour']} within 1 h)"
        )
    out.append(f"  overdue    {view['overdue']}")
    return out
