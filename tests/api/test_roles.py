"""Every route against every role: each forbidden cell answers 403, each allowed cell succeeds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from tests.api.conftest import Actors
from tests.conftest import every_adapter

pytestmark = every_adapter

ROLES = ("coordinator", "authority", "provider", "observer")
Cell = Callable[[Actors, str], Awaitable[httpx.Response]]


async def _open_monitoring(a: Actors, role: str) -> httpx.Response:
    return await a.call("POST", "/v1/crises", role, json={"title": "Early warning", "tlp": "clear"})


async def _declare(a: Actors, role: str) -> httpx.Response:
    body = {
        "title": "Attack",
        "status": "activated",
        "level": 2,
        "criteria": ["viral_spread"],
        "tlp": "clear",
    }
    return await a.call("POST", "/v1/crises", role, json=body)


async def _list(a: Actors, role: str) -> httpx.Response:
    return await a.call("GET", "/v1/crises", role)


async def _read(a: Actors, role: str) -> httpx.Response:
    crisis = await a.crisis(tlp="clear")
    return await a.call("GET", f"/v1/crises/{crisis['id']}", role)


async def _transition(a: Actors, role: str) -> httpx.Response:
    crisis = await a.crisis(tlp="clear")
    body = {"to": "activated", "level": 3, "expected_version": 1}
    return await a.call("POST", f"/v1/crises/{crisis['id']}/transitions", role, json=body)


async def _share(a: Actors, role: str) -> httpx.Response:
    crisis = await a.crisis(tlp="clear")
    return await a.share(crisis["id"], [{"kind": "md5", "value": "c" * 32}], role=role)


async def _list_indicators(a: Actors, role: str) -> httpx.Response:
    crisis = await a.crisis(tlp="clear")
    return await a.call("GET", f"/v1/crises/{crisis['id']}/indicators", role)


async def _retract_others(a: Actors, role: str) -> httpx.Response:
    """Retract an indicator another organisation (a second authority) shared."""
    crisis = await a.crisis(tlp="clear")
    indicator = await a.shared_id(crisis["id"], {"kind": "md5", "value": "d" * 32}, org="police-nl")
    return await a.call("POST", f"/v1/crises/{crisis['id']}/indicators/{indicator}/retract", role)


async def _act(a: Actors, role: str) -> httpx.Response:
    crisis = await a.crisis(tlp="clear")
    indicator = await a.shared_id(crisis["id"], {"kind": "md5", "value": "e" * 32})
    body = {"indicator_id": indicator, "outcome": "removed", "note": "taken down"}
    return await a.call("POST", f"/v1/crises/{crisis['id']}/actions", role, json=body)


async def _report(a: Actors, role: str) -> httpx.Response:
    crisis = await a.crisis(tlp="clear")
    return await a.call("GET", f"/v1/crises/{crisis['id']}/report", role)


# route -> the roles allowed; every other role must get 403.
MATRIX: dict[str, tuple[Cell, set[str]]] = {
    "POST /v1/crises (monitoring)": (_open_monitoring, {"coordinator", "authority"}),
    "POST /v1/crises (activated)": (_declare, {"coordinator"}),
    "GET /v1/crises": (_list, set(ROLES)),
    "GET /v1/crises/{id}": (_read, set(ROLES)),
    "POST /v1/crises/{id}/transitions": (_transition, {"coordinator"}),
    "POST /v1/crises/{id}/indicators": (_share, {"coordinator", "authority", "provider"}),
    "GET /v1/crises/{id}/indicators": (_list_indicators, {"coordinator", "authority", "provider"}),
    "POST .../indicators/{id}/retract (another org's)": (_retract_others, {"coordinator"}),
    "POST /v1/crises/{id}/actions": (_act, {"provider"}),
    "GET /v1/crises/{id}/report": (_report, {"coordinator", "authority", "provider"}),
}


async def test_role_route_matrix(actors: Actors) -> None:
    wrong = []
    for route, (cell, allowed) in MATRIX.items():
        for role in ROLES:
            r = await cell(actors, role)
            ok = r.status_code in (200, 201) and role in allowed
            forbidden = r.status_code == 403 and role not in allowed
            if forbidden:
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["code"] == "forbidden"
            if not (ok or forbidden):
                wrong.append(f"{route} as {role}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)


async def test_the_sharing_org_may_retract_its_own(actors: Actors) -> None:
    for role in ("authority", "provider", "coordinator"):
        crisis = await actors.crisis()
        indicator = await actors.shared_id(crisis["id"], {"kind": "md5", "value": "f" * 32}, role=role)
        r = await actors.call("POST", f"/v1/crises/{crisis['id']}/indicators/{indicator}/retract", role)
        assert r.status_code == 200, (role, r.text)


async def test_expired_key_is_refused_everywhere(actors: Actors) -> None:
    from datetime import timedelta

    from crisis.domain.envelope import utcnow

    crisis = await actors.crisis()
    key = actors.stack.add_key("hub", "coordinator", expires_at=utcnow() - timedelta(seconds=1))
    for method, path in [
        ("GET", "/v1/crises"),
        ("GET", f"/v1/crises/{crisis['id']}/report"),
        ("POST", f"/v1/crises/{crisis['id']}/indicators"),
    ]:
        r = await actors.http.request(method, path, headers={"Authorization": f"Bearer {key}"}, json={})
        assert r.status_code == 401, (path, r.text)
