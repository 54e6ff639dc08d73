"""Provider actions and the report through the API, on a real broker."""

from __future__ import annotations

from tests.api.conftest import Actors
from tests.conftest import every_adapter

pytestmark = every_adapter


async def test_actions_feed_the_report_as_json_and_markdown(actors: Actors) -> None:
    crisis = await actors.crisis(title="Christchurch-like attack")
    cid = crisis["id"]
    first = await actors.shared_id(cid, {"kind": "sha256", "value": "a" * 64})
    second = await actors.shared_id(cid, {"kind": "md5", "value": "b" * 32})
    for indicator, outcome in [(first, "received"), (first, "removed"), (second, "received")]:
        r = await actors.call(
            "POST",
            f"/v1/crises/{cid}/actions",
            "provider",
            json={"indicator_id": indicator, "outcome": outcome},
        )
        assert r.status_code == 201, r.text
        assert r.json()["provider_org"] == "vidshare" and r.json()["outcome"] == outcome
    report = await actors.call("GET", f"/v1/crises/{cid}/report", "coordinator")
    assert report.status_code == 200
    body = report.json()
    assert body["crisis"]["id"] == cid and body["one_hour_s"] == 3600
    assert [t["type"] for t in body["timeline"]] == [
        "crisis.activated",
        "indicator.shared",
        "indicator.shared",
        "action.reported",
        "action.reported",
        "action.reported",
    ]
    [provider] = body["providers"]
    assert provider["org"] == "vidshare"
    assert (provider["indicators"], provider["received"], provider["actioned"]) == (2, 2, 1)
    assert provider["receipt_within_hour"] == 2 and provider["action_within_hour"] == 1
    assert provider["items"][0]["first_action"] == "removed"
    assert 0 <= provider["slowest_receipt_s"] < 60
    markdown = await actors.call(
        "GET", f"/v1/crises/{cid}/report", "authority", headers={"Accept": "text/markdown"}
    )
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.startswith("# Crisis report: Christchurch-like attack")
    assert "| vidshare | no | 2 | 2 | 0 of 2 | 1 | 0 of 1 |" in markdown.text


async def test_an_action_needs_a_known_indicator_and_a_valid_outcome(actors: Actors) -> None:
    crisis = await actors.crisis()
    path = f"/v1/crises/{crisis['id']}/actions"
    unknown = await actors.call("POST", path, "provider", json={"indicator_id": "nope", "outcome": "removed"})
    assert unknown.status_code == 404
    indicator = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "c" * 32})
    bad = await actors.call("POST", path, "provider", json={"indicator_id": indicator, "outcome": "deleted"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "outcome"
    long_note = await actors.call(
        "POST", path, "provider", json={"indicator_id": indicator, "outcome": "removed", "note": "x" * 1001}
    )
    assert long_note.status_code == 422


async def test_metrics_count_published_events(actors: Actors) -> None:
    crisis = await actors.crisis()
    await actors.share(crisis["id"], [{"kind": "md5", "value": f"{i:032x}"} for i in range(5)])
    text = (await actors.http.get("/metrics")).text
    assert "crisis_events_published_total 6.0" in text
    assert 'route="/v1/crises/{crisis_id}/indicators"' in text


async def test_a_retried_action_answers_the_first_report(actors: Actors) -> None:
    crisis = await actors.crisis()
    indicator = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "d" * 32})
    path = f"/v1/crises/{crisis['id']}/actions"
    body = {"indicator_id": indicator, "outcome": "blocked"}
    headers = {"Idempotency-Key": "ack-1"}
    first = await actors.call("POST", path, "provider", json=body, headers=headers)
    again = await actors.call("POST", path, "provider", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(actors.stack.ledger.book.crises[crisis["id"]].actions) == 1
