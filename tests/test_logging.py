"""Logs: JSON lines off a terminal, context bound to every line, keys never written."""

from __future__ import annotations

import json

import pytest
import structlog

from crisis.logging import configure_logging


def test_json_lines_carry_bound_context_and_never_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    try:
        structlog.contextvars.bind_contextvars(request_id="req-1")
        structlog.get_logger("t").info("something_happened", key="cb_abc_secret", org="hub")
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "something_happened"
    assert line["request_id"] == "req-1"
    assert line["org"] == "hub"
    assert line["key"] == "[redacted]"
    assert "cb_abc_secret" not in json.dumps(line)
