"""The duty-officer CLI against a real API and broker (the CLI runs in a thread: the API shares our loop)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from crisis.cli import main
from tests.conftest import Stack

pytestmark = pytest.mark.kafka


async def crisis(stack: Stack, key: str, *args: str) -> int:
    return await asyncio.to_thread(main, [*args, "--api", stack.api_url, "--key", key])


async def test_a_crisis_from_declaration_to_report(
    api_stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = api_stack.add_key("hub", "coordinator")
    provider = api_stack.add_key("vidshare", "provider")
    assert (
        await crisis(
            api_stack,
            hub,
            "declare",
            "Live-streamed attack",
            "--level",
            "2",
            "--criteria",
            "ongoing_violent_event",
            "viral_spread",
        )
        == 0
    )
    cid = capsys.readouterr().out.strip()

    csv_file = tmp_path / "hashes.csv"
    csv_file.write_text("kind,value\nmd5," + "1" * 32 + "\nmd5,XYZ\nsha1," + "2" * 40 + "\n")
    lines = tmp_path / "more.jsonl"
    lines.write_text(json.dumps({"kind": "url", "value": "https://example.com/v"}) + "\n{not json\n")
    code = await crisis(
        api_stack,
        hub,
        "share",
        cid,
        "sha256:" + "a" * 64,
        "md5:" + "1" * 32,
        "--file",
        str(csv_file),
        "--batch",
        "2",
    )
    out, err = capsys.readouterr()
    assert code == 3  # one line was rejected: scripts must notice (the others stand)
    assert "created 3, sighting 1, rejected 1" in out
    assert "rejected hashes.csv:3:" in out and "hexadecimal" in out
    assert "1 of 5 indicators were rejected (listed on stdout); the other 4 were shared" in err
    assert await crisis(api_stack, hub, "share", cid, "--file", str(lines)) == 3
    out = capsys.readouterr().out
    assert "created 1, sighting 0, rejected 1" in out and "more.jsonl:2" in out

    indicator = next(iter(api_stack.ledger.book.crises[cid].indicators))
    assert await crisis(api_stack, provider, "ack", cid, indicator, "removed", "--note", "gone") == 0
    assert "removed reported" in capsys.readouterr().out

    assert (
        await crisis(api_stack, hub, "transition", cid, "--to", "concluded", "--expected-version", "1") == 0
    )
    assert "concluded" in capsys.readouterr().out
    assert await crisis(api_stack, hub, "status") == 0
    assert cid in capsys.readouterr().out
    # One crisis: its deadlines and every expected provider (the provider key existed at declaration).
    assert await crisis(api_stack, hub, "status", cid) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  deadlines  receipt within 3600 s, action within 3600 s" in out
    assert "  expected   vidshare" in out
    assert (
        "  ack        vidshare: received 1/4, actioned 1/4; missed 0 of 1 receipts and 0 of 1 actions due"
    ) in out, out
    assert "  overdue    0" in out
    assert await crisis(api_stack, hub, "report", cid, "--markdown") == 0
    assert "| vidshare | yes | 4 | 1 | 0 of 1 | 1 | 0 of 1 |" in capsys.readouterr().out
    assert await crisis(api_stack, hub, "report", cid) == 0
    assert json.loads(capsys.readouterr().out)["providers"][0]["org"] == "vidshare"


async def test_errors_are_readable_and_exit_1(api_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    hub = api_stack.add_key("hub", "coordinator")
    observer = api_stack.add_key("press", "observer")
    assert await crisis(api_stack, hub, "declare", "Early warning", "--monitoring") == 0
    cid = capsys.readouterr().out.strip()
    assert await crisis(api_stack, hub, "transition", cid, "--to", "closed", "--expected-version", "7") == 1
    err = capsys.readouterr().err
    assert "error: Conflict (409)" in err and "not 7" in err
    assert await crisis(api_stack, observer, "share", cid, "md5:" + "0" * 32) == 1
    assert "Forbidden (403)" in capsys.readouterr().err
    assert await crisis(api_stack, "cb_nope_nope", "status") == 1
    assert "Unauthorized (401)" in capsys.readouterr().err
    assert await crisis(api_stack, hub, "share", cid, "nocolon") == 1
    assert "is not KIND:VALUE" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["status", "--api", "http://127.0.0.1:9", "--key", hub]) == 1
    assert "cannot reach the API" in capsys.readouterr().err
