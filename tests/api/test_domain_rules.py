"""Rules users expect, through the real API: criteria on activation, allowed transitions, hex case, URLs."""

from __future__ import annotations

from tests.api.conftest import Actors
from tests.conftest import every_adapter

pytestmark = every_adapter


async def test_activation_without_a_criterion_is_refused(actors: Actors) -> None:
    body = {"title": "Attack", "status": "activated", "level": 1}
    declared = await actors.call("POST", "/v1/crises", "coordinator", json=body)
    assert declared.status_code == 422, declared.text
    [error] = declared.json()["errors"]
    assert error["field"] == "criteria" and "at least one criterion" in error["message"]
    crisis = await actors.crisis(status="monitoring", level=None, criteria=[])
    path = f"/v1/crises/{crisis['id']}/transitions"
    move = {"to": "activated", "level": 2, "expected_version": 1}
    refused = await actors.call("POST", path, "coordinator", json=move)
    assert refused.status_code == 409, refused.text
    assert "at least one criterion" in refused.json()["detail"]
    accepted = await actors.call("POST", path, "coordinator", json={**move, "criteria": ["viral_spread"]})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["criteria"] == ["viral_spread"]


async def test_a_refused_transition_names_the_allowed_ones(actors: Actors) -> None:
    crisis = await actors.crisis()
    path = f"/v1/crises/{crisis['id']}/transitions"
    r = await actors.call("POST", path, "coordinator", json={"to": "closed", "expected_version": 1})
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == (
        "an activated crisis cannot become closed; it may become activated at another level or concluded"
    )


async def test_uppercase_hex_is_accepted_and_stored_lowercase(actors: Actors) -> None:
    crisis = await actors.crisis()
    upper = "0123456789ABCDEF" * 4
    first = await actors.shared_id(crisis["id"], {"kind": "sha256", "value": upper})
    r = await actors.share(crisis["id"], [{"kind": "sha256", "value": upper.lower()}], role="provider")
    [repeat] = r.json()["items"]
    assert (repeat["status"], repeat["sighting_of"]) == ("sighting", first)
    listed = (await actors.call("GET", f"/v1/crises/{crisis['id']}/indicators", "provider")).json()
    [indicator] = listed["items"]
    assert indicator["value"] == indicator["canonical"] == upper.lower()


async def test_urls_differing_only_by_escapes_and_tracking_are_one_indicator(actors: Actors) -> None:
    crisis = await actors.crisis()
    items = [
        {"kind": "url", "value": "https://video.example/~clip?id=7"},
        {"kind": "url", "value": "https://video.example/%7Eclip?utm_source=share&id=7&fbclid=abc"},
    ]
    r = await actors.share(crisis["id"], items)
    assert r.status_code == 200, r.text
    first, second = r.json()["items"]
    assert (first["status"], second["status"]) == ("created", "sighting")
    assert second["sighting_of"] == first["indicator_id"]
    listed = (await actors.call("GET", f"/v1/crises/{crisis['id']}/indicators", "provider")).json()
    [indicator] = listed["items"]
    assert indicator["canonical"] == "https://video.example/~clip?id=7"
    assert indicator["canonicalization"] == "crisis-url/2"
