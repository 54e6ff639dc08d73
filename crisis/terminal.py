"""Text an organisation wrote, made safe for a terminal: no control sequence reaches the screen."""

from __future__ import annotations

import re
from typing import Final

# C0 and C1 controls and DEL (ESC starts cursor moves, screen clears, title changes, OSC 52 clipboard
# writes), plus the bidirectional overrides that make a line read differently from its bytes.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object, keep: str = "") -> str:
    """`text` with every control character shown as a visible escape (`\\x1b`), except those in `keep`."""
    return _CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m.group()), str(text))


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
