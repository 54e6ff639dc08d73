"""The duty console, driven in a real headless Chromium against a real stack on the test broker."""

from __future__ import annotations

import json

import pytest

from tests.console.cdp import Page
from tests.console.conftest import Console

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

SHA = "ab" * 32


def state(selector: str) -> str:
    """An expression for the clock state of the matrix cell `selector` names."""
    return f"document.querySelector({json.dumps(selector)})?.dataset.state"


async def share(console: Console, key: str, crisis_id: str, value: str) -> str:
    answer = await console.post(
        key, f"/v1/crises/{crisis_id}/indicators", {"indicators": [{"kind": "sha256", "value": value}]}
    )
    indicator_id: str = answer["items"][0]["indicator_id"]
    return indicator_id


async def declare(console: Console, **fields: object) -> str:
    body = {"title": "Attack streamed", "status": "activated", "level": 2, "criteria": ["depicts_violence"]}
    crisis = await console.post(console.coordinator, "/v1/crises", {**body, **fields})
    crisis_id: str = crisis["id"]
    return crisis_id


def no_problems(*pages: Page) -> None:
    # Script errors and Content-Security-Policy violations are reported here by the browser.
    assert [p for page in pages for p in page.problems] == []


async def test_coordinator_declares_activates_and_watches_the_clock(console: Console) -> None:
    authority = console.stack.add_key("bka", "authority")
    console.stack.add_key("vidshare", "provider")
    page = await console.signed_in(console.coordinator, "#/declare")
    assert await page.text("#whoami") == "hub (coordinator)"

    # Declared activated without a criterion: the API's error is shown next to the criteria, not elsewhere.
    await page.type("#d-title", "Live-streamed attack in <b>Halle</b>")
    await page.type("#d-jurisdictions", "DE")
    await page.type("#d-roster", "vidshare")
    await page.type("#d-receipt", "3")
    await page.click("#declare-form button[type=submit]")
    error = await page.wait_for("document.getElementById('err-criteria').textContent")
    assert "criteri" in error
    assert (
        await page.evaluate("document.querySelector('fieldset[data-field=criteria]').ariaInvalid") == "true"
    )
    assert await page.text("#err-title") == ""
    await console.shot(page, "declare-error")

    # Opened in monitoring instead, then activated behind a confirmation that insists on a reason.
    await page.choose("#d-status", "monitoring")
    await page.click("#declare-form button[type=submit]")
    await page.wait_for("location.hash.startsWith('#/crisis/')")
    crisis_id = (await page.evaluate("location.hash")).split("/")[-1]
    await page.wait_for("document.getElementById('crisis-status')?.textContent === 'monitoring'")
    # The title arrived as text: markup in it is shown, never parsed.
    assert await page.text("#crisis-title") == "Live-streamed attack in <b>Halle</b>"
    await page.click("#crisis-actions button:first-child")
    assert await page.evaluate("document.getElementById('confirm').open") is True
    assert await page.evaluate("document.activeElement.id") == "confirm-level"
    # Escape backs out, and the keyboard is back on the button that opened the dialog.
    await page.press("Escape")
    await page.wait_for("!document.getElementById('confirm').open")
    assert await page.evaluate("document.activeElement.textContent") == "Activate"
    await page.press("Enter")
    await page.wait_for("document.getElementById('confirm').open")
    await page.click("#confirm-ok")
    assert "reason is required" in await page.wait_for("document.getElementById('xerr-reason').textContent")
    await page.choose("#confirm-level", "3")
    await page.click("#confirm-criteria-field input[value=viral_spread]")
    await page.type("#confirm-reason", "the video is spreading on three platforms")
    await page.click("#confirm-ok")
    await page.wait_for("document.getElementById('crisis-status')?.textContent === 'activated'")
    assert await page.text("#crisis-level") == "3"
    assert await page.evaluate("document.getElementById('confirm').open") is False
    report = await console.get(console.coordinator, f"/v1/crises/{crisis_id}/report?view=summary")
    assert "the video is spreading on three platforms" in json.dumps(report["timeline"])

    # An indicator shared by someone else arrives live; the silent provider's receipt goes overdue.
    indicator_id = await share(console, authority, crisis_id, SHA)
    await page.wait_for(f"!!document.querySelector('#indicator-list li[data-indicator=\"{indicator_id}\"]')")
    cell = f'#matrix tr[data-indicator="{indicator_id}"] td[data-org="vidshare"]'
    assert await page.wait_for(state(cell)) in ("due", "overdue")
    await page.wait_for(f"{state(cell)} === 'overdue'", timeout=10)
    assert "OVERDUE" in await page.text(cell)
    await console.shot(page, "crisis")

    # The board counts the clock's overdue event (from the stream), beside the crisis's other facts.
    await page.evaluate("location.hash = '#/board'")
    row = f'#board-rows tr[data-crisis="{crisis_id}"]'
    await page.wait_for(f"document.querySelector('{row} [data-col=overdue]')?.textContent === '1 overdue'")
    assert await page.text(f"{row} [data-col=indicators]") == "1"
    assert await page.text(f"{row} [data-col=status]") == "activated"
    await console.shot(page, "board")
    no_problems(page)


async def test_provider_answers_from_its_inbox_and_the_coordinator_sees_it(console: Console) -> None:
    provider = console.stack.add_key("vidshare", "provider")
    crisis_id = await declare(console, roster=["vidshare"])
    coordinator = await console.signed_in(console.coordinator, f"#/crisis/{crisis_id}")
    inbox = await console.signed_in(provider)
    assert await inbox.evaluate("location.hash") in ("", "#/inbox")
    await inbox.wait_for("!document.getElementById('view-inbox').hidden")

    indicator_id = await share(console, console.coordinator, crisis_id, SHA)
    cell = f'#matrix tr[data-indicator="{indicator_id}"] td[data-org="vidshare"]'
    await coordinator.wait_for(f"{state(cell)} === 'due'")
    row = f'#inbox-rows tr[data-indicator="{indicator_id}"]'
    await inbox.wait_for(f"!!document.querySelector('{row}')")
    assert "receipt due in" in await inbox.text(f"{row} [data-col=answer]")
    await console.shot(inbox, "inbox")

    await inbox.click(f'{row} button[data-answer="{indicator_id} received"]')
    await coordinator.wait_for(f"{state(cell)} === 'received'")
    assert "action due in" in await coordinator.text(cell)
    # Keyboard use: the focused button answers to Enter.
    await inbox.evaluate(
        f"document.querySelector('{row} button[data-answer=\"{indicator_id} removed\"]').focus()"
    )
    await inbox.press("Enter")
    await coordinator.wait_for(f"{state(cell)} === 'acted'")
    assert (await coordinator.text(cell)).startswith("acted: removed")
    await inbox.wait_for(f"document.querySelector('{row} [data-col=answer]').textContent === 'removed'")

    actions = await console.get(provider, f"/v1/crises/{crisis_id}/actions")
    assert [a["outcome"] for a in actions["items"]] == ["received", "removed"]

    # The coordinator moves the receipt deadline; the roster it did not touch stays as it was.
    await coordinator.click("#view-crisis details > summary")
    await coordinator.type("#c-receipt", "1800")
    await coordinator.type("#c-reason", "providers asked for more time overnight")
    await coordinator.click("#clock-form button[type=submit]")
    await coordinator.wait_for(
        "document.getElementById('crisis-facts').textContent.includes('receipt 30:00')"
    )
    crisis = await console.get(console.coordinator, f"/v1/crises/{crisis_id}")
    assert (crisis["receipt_deadline_s"], crisis["roster"]) == (1800, ["vidshare"])
    no_problems(coordinator, inbox)


async def test_console_reconnects_after_a_network_cut_and_shows_what_was_shared_meanwhile(
    console: Console,
) -> None:
    crisis_id = await declare(console)
    first = await share(console, console.coordinator, crisis_id, "01" * 32)
    page = await console.signed_in(console.coordinator, f"#/crisis/{crisis_id}")
    await page.wait_for(f"!!document.querySelector('#indicator-list li[data-indicator=\"{first}\"]')")

    console.relay.down = True
    assert console.relay.cut()
    await page.wait_for("document.getElementById('conn').dataset.state === 'reconnecting'")
    assert "reconnecting" in await page.text("#conn")
    meanwhile = [await share(console, console.coordinator, crisis_id, v * 32) for v in ("02", "03")]
    console.relay.down = False

    await page.wait_for("document.getElementById('conn').dataset.state === 'live'", timeout=15)
    await page.wait_for("document.querySelectorAll('#indicator-list li').length === 3")
    listed = await page.evaluate(
        "[...document.querySelectorAll('#indicator-list li')].map(li => li.dataset.indicator)"
    )
    assert listed == [*reversed(meanwhile), first]  # newest first, each once
    no_problems(page)
