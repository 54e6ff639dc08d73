"""A user's mistake ends in one line on stderr and a non-zero exit, never a traceback (real processes)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from crisis.domain.enums import Tlp
from tests.conftest import Stack
from tests.gateway.conftest import open_crisis
from tests.gateway.events import indicator_shared

HEAVY = ("fastapi", "aiokafka", "uvicorn", "websockets", "httpx", "pydantic", "rich", "structlog")


def crisis(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crisis", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_imports_no_server_or_network_library() -> None:
    probe = (
        "import sys\nfrom crisis.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('loaded:', *sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "usage: crisis" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


def test_a_missing_file(tmp_path: Path) -> None:
    line = one_line_error(crisis("share", "c1", "--file", str(tmp_path / "nope.csv"), "--key", "k"))
    assert line == f"crisis: error: {tmp_path / 'nope.csv'}: no such indicators file"


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    latin = tmp_path / "hashes.csv"
    latin.write_bytes("kind,value\nurl,https://example.com/caf\xe9\n".encode("latin-1"))
    line = one_line_error(crisis("share", "c1", "--file", str(latin), "--key", "k"))
    assert "not UTF-8 text (byte 0xe9 at offset" in line and "caf" not in line


def test_a_device_is_not_read(tmp_path: Path) -> None:
    line = one_line_error(crisis("share", "c1", "--file", "/dev/zero", "--key", "k"))
    assert line == "crisis: error: /dev/zero: not a regular file or a pipe"


def test_an_unreachable_api() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    line = one_line_error(crisis("status", "--key", "k", env={"CRISIS_API_URL": url}))
    assert line.startswith(f"crisis: error: cannot reach the API at {url}") and "crisis up" in line


def test_an_unreachable_stream() -> None:
    url = f"ws://127.0.0.1:{closed_port()}/v1/stream"
    result = crisis("tail", "--key", "k", env={"CRISIS_STREAM_URL": url})
    line = one_line_error(result)
    assert line.startswith(f"crisis: error: cannot reach the stream at {url}") and result.stdout == ""


def test_scenario_files_missing_or_not_utf8(tmp_path: Path) -> None:
    result = crisis("exercise", "check", str(tmp_path / "none.yaml"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "none.yaml: cannot read the scenario file: no such file" in result.stderr
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    result = crisis("exercise", "check", str(latin))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not UTF-8 text (byte 0xe9 at offset 9)" in result.stderr


def test_a_saved_report_that_is_missing() -> None:
    line = one_line_error(crisis("exercise", "report", "--from-json", "/nonexistent/report.json"))
    assert line == "crisis: error: /nonexistent/report.json: no such report JSON"


@pytest.mark.kafka
async def test_tail_into_head_stops_quietly(full_stack: Stack) -> None:
    s = full_stack
    key = s.add_key("vidshare", "provider")
    crisis_ = await open_crisis(s, title="Piped", tlp=Tlp.GREEN)
    shell = f"{sys.executable} -m crisis tail --json --url {s.ws_url} --key {key} | head -n 1"
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        shell + "; echo exit=${PIPESTATUS[0]} >&2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # head has its line (the crisis's state) and is gone: the next event meets a closed pipe.
    assert process.stdout is not None
    first = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
    assert first["type"] == "state" and first["crisis"]["title"] == "Piped"
    while process.returncode is None:
        await s.ledger.write([indicator_shared(crisis_)])
        try:
            await asyncio.wait_for(process.wait(), 0.3)
        except TimeoutError:
            continue
    _, err = await process.communicate()
    assert "Traceback" not in err.decode() and "Exception ignored" not in err.decode()
    assert err.decode().strip().splitlines()[-1] == "exit=141"


def test_a_saved_report_that_is_not_one(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"title": "SECRET-TITLE"')
    line = one_line_error(crisis("exercise", "report", "--from-json", str(broken)))
    assert line == f"crisis: error: {broken}: not JSON (Expecting ',' delimiter)"
    other = tmp_path / "other.json"
    other.write_text('{"title": "SECRET-TITLE"}')
    line = one_line_error(crisis("exercise", "report", "--from-json", str(other)))
    assert "not a crisis report (check crisis, generated_at" in line and "SECRET" not in line
