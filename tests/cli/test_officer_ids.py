"""Ids as `crisis tail` shows them, `crisis status ID`, and acting after stand-down, against a real API."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from crisis.cli import tail
from crisis.client import Message
from tests.cli.test_officer import crisis
from tests.conftest import Stack

pytestmark = pytest.mark.kafka


async def test_ack_takes_the_ids_tail_shows_and_never_names_unreadable_ones(
    api_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = api_stack.add_key("hub", "coordinator")
    provider = api_stack.add_key("vidshare", "provider")
    assert await crisis(api_stack, hub, "declare", "Attack", "--criteria", "ongoing_violent_event") == 0
    cid = capsys.readouterr().out.strip()
    hashes = [f"md5:{i:032x}" for i in range(40)]
    assert await crisis(api_stack, hub, "share", cid, *hashes) == 0
    # Shared to another provider only: vidshare may not read it, so no answer may name it.
    red_share = ("md5:" + "f" * 32, "--tlp", "red", "--recipient", "tubeco")
    assert await crisis(api_stack, hub, "share", cid, *red_share) == 0
    capsys.readouterr()
    record = api_stack.ledger.book.crises[cid]
    [red] = [r.data.indicator_id for r in record.indicators.values() if r.tlp == "red"]
    readable = [i for i in record.indicators if i != red]

    env = record.timeline[1]
    shown = tail.describe(Message(env.type.value, env.model_dump(mode="json")))
    short_crisis, short_indicator = cid[: tail.SHORT_ID], env.data["indicator_id"][: tail.SHORT_ID]
    assert short_crisis in shown and f"[{short_indicator}]" in shown
    assert await crisis(api_stack, provider, "ack", short_crisis, short_indicator, "removed") == 0
    assert f"removed reported for {env.data['indicator_id']} by vidshare" in capsys.readouterr().out

    assert await crisis(api_stack, provider, "ack", cid, red[: tail.SHORT_ID], "removed") == 1
    err = capsys.readouterr().err
    assert "no indicator you may read in crisis" in err and red not in err
    first, _ = Counter(i[0] for i in readable).most_common(1)[0]
    assert await crisis(api_stack, provider, "ack", cid, first, "received") == 1
    err = capsys.readouterr().err
    assert f"'{first}' matches" in err and "give more characters" in err and red not in err


async def test_status_shows_decision_counts_and_acknowledgements(
    api_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = api_stack.add_key("hub", "coordinator")
    provider = api_stack.add_key("vidshare", "provider")
    observer = api_stack.add_key("press", "observer")
    declared = ("declare", "Attack", "--level", "2", "--criteria", "ongoing_violent_event", "viral_spread")
    assert await crisis(api_stack, hub, *declared, "--tlp", "clear") == 0
    cid = capsys.readouterr().out.strip()
    assert await crisis(api_stack, hub, "share", cid, "md5:" + "1" * 32, "sha1:" + "2" * 40) == 0
    capsys.readouterr()
    first = next(iter(api_stack.ledger.book.crises[cid].indicators))
    assert await crisis(api_stack, provider, "ack", cid, first, "removed") == 0
    capsys.readouterr()

    assert await crisis(api_stack, hub, "status", cid[:6], "--json") == 0
    view = json.loads(capsys.readouterr().out)
    assert view["crisis"]["id"] == cid and view["crisis"]["level"] == 2
    assert view["criteria"] == ["ongoing_violent_event", "viral_spread"]
    assert view["decided_by"]["org"] == "hub" and view["decided_by"]["status"] == "activated"
    assert view["counts"] == {"indicators": 2, "retracted": 0, "sightings": 0, "providers_reporting": 1}
    assert view["acknowledgements"] == [
        {
            "org": "vidshare",
            "indicators": 2,
            "received": 1,
            "actioned": 1,
            "receipt_within_hour": 1,
            "action_within_hour": 1,
            "expected": True,
            "receipts_due": 1,
            "receipts_missed": 0,
            "actions_due": 1,
            "actions_missed": 0,
        }
    ]
    assert view["overdue"] == 0

    assert await crisis(api_stack, hub, "status", cid) == 0
    text = capsys.readouterr().out
    assert "criteria   ongoing_violent_event, viral_spread" in text
    assert "decided    activated by hub" in text
    assert "vidshare: received 1/2, actioned 1/2; missed 0 of 1 receipts" in text and "overdue    0" in text
    # An observer reads the crisis, not its report: the state alone, said plainly.
    assert await crisis(api_stack, observer, "status", cid) == 0
    assert "may not read the report" in capsys.readouterr().out


async def test_a_removal_is_recorded_after_the_crisis_is_concluded(
    api_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = api_stack.add_key("hub", "coordinator")
    provider = api_stack.add_key("vidshare", "provider")
    assert await crisis(api_stack, hub, "declare", "Attack", "--criteria", "ongoing_violent_event") == 0
    cid = capsys.readouterr().out.strip()
    assert await crisis(api_stack, hub, "share", cid, "md5:" + "3" * 32) == 0
    indicator = next(iter(api_stack.ledger.book.crises[cid].indicators))
    assert (
        await crisis(api_stack, hub, "transition", cid, "--to", "concluded", "--expected-version", "1") == 0
    )
    capsys.readouterr()
    assert await crisis(api_stack, provider, "ack", cid, indicator[:8], "removed", "--note", "late copy") == 0
    assert "removed reported" in capsys.readouterr().out
    assert await crisis(api_stack, hub, "transition", cid, "--to", "closed", "--expected-version", "2") == 0
    assert await crisis(api_stack, provider, "ack", cid, indicator[:8], "blocked") == 1
    assert "is closed" in capsys.readouterr().err
