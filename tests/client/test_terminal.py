"""Text an organisation wrote reaches the officer's terminal inert: no escape sequence survives."""

from __future__ import annotations

from crisis.cli import tail
from crisis.cli.officer import crisis_line
from crisis.client import Message
from crisis.terminal import printable

# Clear the screen, retitle the window, write the clipboard (OSC 52), reverse the text direction.
HOSTILE = "Attack\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07\u202egnp.exe\x9b31m\rX\x00"


def test_control_characters_are_shown_not_obeyed() -> None:
    shown = printable(HOSTILE)
    assert shown == (
        "Attack\\x1b[2J\\x1b]0;pwned\\x07\\x1b]52;c;ZWNobyBoaQ==\\x07\\u202egnp.exe\\x9b31m\\x0dX\\x00"
    )
    assert printable("line one\nline two\ttab", keep="\n") == "line one\nline two\\x09tab"
    assert printable("Ünïcödé and emoji 🚨 stay") == "Ünïcödé and emoji 🚨 stay"


def event(kind: str, data: dict[str, object]) -> Message:
    body = {"specversion": "1.0", "type": kind, "subject": "c1", "time": "2026-12-01T12:00:00+00:00"}
    return Message(kind, {**body, "tlp": "green", "cursor": "C", "data": data})


def test_tail_lines_carry_no_control_characters() -> None:
    messages = [
        event(
            "crisis.opened",
            {"crisis": {"title": HOSTILE, "status": "monitoring"}, "transition": {"reason": HOSTILE}},
        ),
        event("indicator.shared", {"kind": "url", "canonical": HOSTILE, "shared_by": "bka\x1b[31m"}),
        event("action.reported", {"provider_org": "vid\x1b[0mshare", "outcome": "removed", "note": HOSTILE}),
        event("indicator.sighted", {"note": HOSTILE}),
        Message("state", {"type": "state", "crisis": {"id": "c", "title": HOSTILE}}),
        Message("gap", {"type": "gap", "reason": HOSTILE, "missing": []}),
    ]
    for message in messages:
        line = tail.describe(message)
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E for c in line)
    assert "\\x1b[2J" in tail.describe(messages[0])


def test_status_lines_carry_no_control_characters() -> None:
    line = crisis_line(
        {"id": "c1", "status": "activated", "level": 2, "version": 3, "mode": "live", "tlp": "amber",
         "title": HOSTILE}
    )  # fmt: skip
    assert "\x1b" not in line and "\u202e" not in line and line.startswith("c1  activated level 2  v3")
