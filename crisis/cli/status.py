"""`crisis status ID`: one crisis at a glance, from its state and (when the key may read it) its report."""

from __future__ import annotations

from typing import Any


def summary(crisis: dict[str, Any], report: dict[str, Any] | None) -> dict[str, Any]:
    """The structured view `--json` prints; `counts`, `acknowledgements` and `overdue` are None when the
    key may not read the report (an observer sees the crisis's state only)."""
    result: dict[str, Any] = {
        "crisis": crisis,
        "criteria": list(crisis.get("criteria") or []),
        "deadlines": {
            "receipt_s": crisis.get("receipt_deadline_s"),
            "action_s": crisis.get("action_deadline_s"),
        },
        "roster": list(crisis.get("roster") or []),
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
            "expected": p.get("expected", False),
            "receipts_due": p.get("receipts_due", 0),
            "receipts_missed": p.get("receipts_missed", 0),
            "actions_due": p.get("actions_due", 0),
            "actions_missed": p.get("actions_missed", 0),
        }
        for p in providers
    ]
    # Deadlines passed without a timely answer, over every expected provider (the clock's overdue events).
    result["overdue"] = sum(p.get("receipts_missed", 0) + p.get("actions_missed", 0) for p in providers)
    return result


def _decision(timeline: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Who made the crisis's latest status decision, when, and why (the last crisis event)."""
    decisions = [t for t in timeline if t.get("status")]
    if not decisions:
        return None
    last = decisions[-1]
    return {"org": last["org"], "at": last["time"], "status": last["status"], "summary": last["summary"]}


def lines(view: dict[str, Any]) -> list[str]:
    """The summary for a person, one fact a line (the caller makes each line printable)."""
    c = view["crisis"]
    level = f" level {c['level']}" if c.get("level") else ""
    deadlines = view["deadlines"]
    out = [
        f"{c['id']}  {c['title']}",
        f"  status     {c['status']}{level}  v{c['version']}  {c['mode']}  TLP:{str(c['tlp']).upper()}",
        f"  criteria   {', '.join(view['criteria']) or 'none recorded'}",
        f"  deadlines  receipt within {deadlines['receipt_s']} s, action within {deadlines['action_s']} s",
        f"  expected   {', '.join(view['roster']) or 'no provider'}",
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
            f"  ack        {ack['org']}: received {ack['received']}/{ack['indicators']}, "
            f"actioned {ack['actioned']}/{ack['indicators']}; missed {ack['receipts_missed']} of "
            f"{ack['receipts_due']} receipts and {ack['actions_missed']} of {ack['actions_due']} actions due"
        )
    out.append(f"  overdue    {view['overdue']}")
    return out
