"""Pictures of the console's views for docs/console/: `python bench/console_screens.py [--out docs/console]`.

Starts a stack on the memory bus, plays a small crisis into it (several providers, some answers, a short
receipt deadline so that some are overdue), and photographs each view in a headless Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.console.cdp

from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.runtime import stack
from tests.console.cdp import Browser, Page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def post(http: httpx.AsyncClient, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


async def signed_in(browser: Browser, url: str, key: str) -> Page:
    page = await browser.page()
    await page.goto(url)
    await page.type("#login-key", key)
    await page.click("#login-form button[type=submit]")
    await page.wait_for("document.getElementById('conn').dataset.state === 'live'")
    return page


async def play(http: httpx.AsyncClient, keys: dict[str, str]) -> str:
    """A few crises; the first with indicators, answers and missed receipts."""
    hub = keys["hub"]
    roster = ["clipnet", "tubeco", "vidshare"]
    await post(http, hub, "/v1/crises", {"title": "Early warning: threat posted on a forum", "tlp": "green"})
    exercise = {"title": "Tabletop exercise Nordlicht", "mode": "exercise", "status": "activated", "level": 1}
    await post(http, hub, "/v1/crises", {**exercise, "criteria": ["ongoing_violent_event"]})
    crisis = await post(
        http,
        hub,
        "/v1/crises",
        {
            "title": "Shooting live-streamed in Halle",
            "summary": "Attacker's stream of about 35 minutes; copies re-uploaded with edits.",
            "status": "activated",
            "level": 2,
            "criteria": ["ongoing_violent_event", "perpetrator_content", "depicts_violence"],
            "jurisdictions": ["DE"],
            "roster": roster,
            "receipt_deadline_s": 4,
            "action_deadline_s": 900,
        },
    )
    cid = crisis["id"]
    hashes = [f"{n:02x}" * 32 for n in (0x3A, 0x5C, 0x7E)]
    shared = await post(
        http,
        keys["bka"],
        f"/v1/crises/{cid}/indicators",
        {"indicators": [{"kind": "sha256", "value": h} for h in hashes]},
    )
    ids = [item["indicator_id"] for item in shared["items"]]
    answers = [("vidshare", 0, "received"), ("vidshare", 0, "removed"), ("vidshare", 1, "received")]
    answers += [("tubeco", 0, "received"), ("tubeco", 0, "blocked")]
    for org, index, outcome in answers:
        body = {"indicator_id": ids[index], "outcome": outcome}
        await post(http, keys[org], f"/v1/crises/{cid}/actions", body)
    await asyncio.sleep(6)  # clipnet stays silent: its receipts go overdue
    url = {"kind": "url", "value": "https://video.example/watch?v=h4ll3&utm_source=share"}
    await post(http, keys["bka"], f"/v1/crises/{cid}/indicators", {"indicators": [url]})
    await asyncio.sleep(1)
    return str(cid)


async def main(out: Path) -> None:
    api_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            bus_url="memory://",
            keys_file=Path(tmp, "keys.json"),
            orgs_file=Path(tmp, "orgs.json"),
            webhooks_file=Path(tmp, "webhooks.db"),
            api_port=api_port,
            gateway_port=free_port(),
            gateway_allowed_origins=[f"http://127.0.0.1:{api_port}"],
        )
        async with stack(settings) as running, Browser() as browser:
            roles = {"hub": Role.COORDINATOR, "bka": Role.AUTHORITY}
            roles |= {org: Role.PROVIDER for org in ("clipnet", "tubeco", "vidshare")}
            keys = {org: running.keys.add(org, role)[1] for org, role in roles.items()}
            async with httpx.AsyncClient(base_url=running.api_url, timeout=10) as http:
                cid = await play(http, keys)
            page = await signed_in(browser, running.api_url, keys["hub"])
            await page.wait_for("document.querySelectorAll('#board-rows tr').length === 3")
            await page.screenshot(out / "board.png")
            await page.evaluate(f"location.hash = '#/crisis/{cid}'")
            await page.wait_for("document.querySelectorAll('#matrix tbody tr').length === 4")
            await page.screenshot(out / "crisis.png")
            await page.evaluate("location.hash = '#/declare'")
            await page.type("#d-title", "Stabbing filmed at a festival")
            await page.type("#d-jurisdictions", "FR, X")
            await page.click("#declare-form button[type=submit]")
            await page.wait_for("document.getElementById('err-jurisdictions').textContent")
            await page.screenshot(out / "declare-error.png")
            inbox = await signed_in(browser, running.api_url, keys["vidshare"])
            await inbox.wait_for("document.querySelectorAll('#inbox-rows tr').length === 4")
            await inbox.screenshot(out / "inbox.png")
    print(f"wrote board.png, crisis.png, declare-error.png and inbox.png to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    asyncio.run(main(parser.parse_args().out))
