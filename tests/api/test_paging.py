"""Every list reads a page at a time in a stable order, with a `next` link, and the report comes as a summary
plus NDJSON lines: a client reads a crisis of any size end to end with one page in memory."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crisis.domain.report import Report, assemble
from crisis.orgs import OrgRegistry
from tests.api.conftest import ORGS, Actors
from tests.conftest import every_adapter

pytestmark = every_adapter


@pytest.fixture
def settings(make_settings: Any) -> Any:
    """A registry naming the organisations a RED indicator may be addressed to."""
    result = make_settings()
    registry = OrgRegistry(result.orgs_file)
    for org in [*ORGS.values(), "tubeco"]:
        registry.add(org)
    return result


def sha(n: int) -> dict[str, str]:
    return {"kind": "sha256", "value": f"{n:064x}"}


async def read_all(actors: Actors, path: str, role: str, org: str | None = None) -> list[dict[str, Any]]:
    """Follow `next` to the end, checking each page's size."""
    items: list[dict[str, Any]] = []
    url: str | None = path
    while url:
        r = await actors.call("GET", url, role, org)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 10
        items += page["items"]
        url = page["next"]
    return items


async def test_indicator_pages_follow_the_share_order_and_continue_past_new_shares(actors: Actors) -> None:
    cid = (await actors.crisis())["id"]
    shared = await actors.share(cid, [sha(n) for n in range(25)])
    ids = [i["indicator_id"] for i in shared.json()["items"]]
    path = f"/v1/crises/{cid}/indicators?limit=10&kind=sha256"

    first = (await actors.call("GET", path, "provider")).json()
    assert [i["indicator_id"] for i in first["items"]] == ids[:10]
    assert first["total"] == 25 and "kind=sha256" in first["next"]
    # Indicators shared between two pages come at the end, and nothing already read comes again.
    later = await actors.share(cid, [sha(n) for n in range(100, 103)])
    ids += [i["indicator_id"] for i in later.json()["items"]]
    rest = await read_all(actors, first["next"], "provider")
    assert [i["indicator_id"] for i in first["items"] + rest] == ids
    second = (await actors.call("GET", first["next"], "provider")).json()
    assert second["total"] is None  # counted only on the first page


async def test_pages_hold_only_what_the_reader_may_read(actors: Actors) -> None:
    cid = (await actors.crisis())["id"]
    await actors.share(cid, [sha(n) for n in range(12)], tlp="red", tlprecipients=["vidshare"])
    amber = await actors.share(cid, [sha(n) for n in range(50, 55)])
    amber_ids = [i["indicator_id"] for i in amber.json()["items"]]
    path = f"/v1/crises/{cid}/indicators?limit=10"
    outsider = await read_all(actors, path, "provider", "tubeco")
    assert [i["indicator_id"] for i in outsider] == amber_ids
    insider = await read_all(actors, path, "provider")
    assert len(insider) == 17
    first = (await actors.call("GET", path, "provider", "tubeco")).json()
    assert first["total"] == 5


async def test_a_cursor_not_handed_out_is_a_clear_400(actors: Actors) -> None:
    cid = (await actors.crisis())["id"]
    for path in (f"/v1/crises/{cid}/indicators", f"/v1/crises/{cid}/actions", "/v1/crises"):
        r = await actors.call("GET", f"{path}?cursor=not-a-cursor!", "provider")
        assert r.status_code == 400, r.text
        assert r.json()["errors"] == [{"field": "cursor", "message": r.json()["detail"]}]
    # A cursor of one list does not continue another.
    page = (await actors.call("GET", f"/v1/crises/{cid}/indicators?limit=1", "provider")).json()
    assert page["next"] is None
    await actors.share(cid, [sha(1), sha(2)])
    page = (await actors.call("GET", f"/v1/crises/{cid}/indicators?limit=1", "provider")).json()
    cursor = page["next"].split("cursor=")[1]
    r = await actors.call("GET", f"/v1/crises?cursor={cursor}", "provider")
    assert r.status_code == 400 and "crises" in r.json()["detail"]


async def test_crisis_pages_are_newest_first_without_repeats(actors: Actors) -> None:
    opened = [(await actors.crisis(title=f"Attack {n}"))["id"] for n in range(7)]
    listed = await read_all(actors, "/v1/crises?limit=3", "authority")
    assert [c["id"] for c in listed if c["id"] in opened] == opened[::-1]


async def test_actions_list_by_page_for_readers_of_their_indicator(actors: Actors) -> None:
    cid = (await actors.crisis())["id"]
    shared = await actors.share(cid, [sha(n) for n in range(12)])
    ids = [i["indicator_id"] for i in shared.json()["items"]]
    for indicator_id in ids:
        body = {"indicator_id": indicator_id, "outcome": "removed"}
        r = await actors.call("POST", f"/v1/crises/{cid}/actions", "provider", json=body)
        assert r.status_code == 201, r.text
    listed = await read_all(actors, f"/v1/crises/{cid}/actions?limit=5", "authority")
    assert [(a["indicator_id"], a["outcome"], a["provider_org"]) for a in listed] == [
        (i, "removed", "vidshare") for i in ids
    ]
    observer = await actors.call("GET", f"/v1/crises/{cid}/actions", "observer")
    assert observer.status_code == 403


async def test_the_report_summary_and_its_lines_make_the_whole_report(actors: Actors) -> None:
    cid = (await actors.crisis())["id"]
    shared = await actors.share(cid, [sha(n) for n in range(30)])
    first = shared.json()["items"][0]["indicator_id"]
    body = {"indicator_id": first, "outcome": "blocked"}
    assert (await actors.call("POST", f"/v1/crises/{cid}/actions", "provider", json=body)).status_code == 201
    path = f"/v1/crises/{cid}/report"

    summary = (await actors.call("GET", f"{path}?view=summary", "authority")).json()
    assert summary["indicators"] == [] and summary["indicators_total"] == 30
    [provider] = summary["providers"]
    assert provider["org"] == "vidshare" and provider["actioned"] == 1 and provider["items"] == []
    assert [t["type"] for t in summary["timeline"]] == ["crisis.activated"]

    stream = await actors.call("GET", summary["lines"], "authority")
    assert stream.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in stream.text.splitlines()]
    assert sum(1 for line in lines if line["part"] == "indicator") == 30
    full = Report.model_validate((await actors.call("GET", path, "authority")).json())
    for part in ("indicators_total", "lines"):
        summary.pop(part)
    rebuilt = assemble(Report.model_validate(summary), lines)
    assert rebuilt.model_dump(exclude={"generated_at"}) == full.model_dump(exclude={"generated_at"})
