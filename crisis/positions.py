"""Log positions as a token a client carries from a write to its next request (read your own writes).

API processes behind one load balancer each fold the same log at their own pace: an indicator written
through one may not be folded yet by the next one asked about it. Every answer to a write carries the log
positions its events reached (`Crisis-Position`); a client sends the latest it holds back as `Crisis-After`,
and whichever process takes the request first folds the log up to there (crisis.api.positions).

A token is `partition:offset` pairs joined by commas, the offset being the next one after the write's last
event in that partition (`0:1042,3:77`). Opaque to clients: they keep the latest per partition (`merged`).
"""

from __future__ import annotations

import re
from typing import Final

WRITTEN_HEADER: Final = "Crisis-Position"
AFTER_HEADER: Final = "Crisis-After"
# A log has a handful of partitions: a token naming more, or longer than this, is not one of ours.
MAX_PARTITIONS: Final = 1024
MAX_LENGTH: Final = 16 * 1024
_PAIR: Final = re.compile(r"([0-9]{1,6}):([0-9]{1,19})", re.ASCII)


class BadToken(ValueError):
    """Not a token this API made."""


def parse(text: str) -> dict[int, int]:
    if len(text) > MAX_LENGTH:
        raise BadToken(f"longer than {MAX_LENGTH} characters")
    positions: dict[int, int] = {}
    for pair in text.split(","):
        found = _PAIR.fullmatch(pair.strip())
        if found is None:
            raise BadToken(f"{pair.strip()[:40]!r} is not partition:offset")
        p, o = int(found[1]), int(found[2])
        positions[p] = max(o, positions.get(p, 0))
        if len(positions) > MAX_PARTITIONS:
            raise BadToken(f"more than {MAX_PARTITIONS} partitions")
    return positions


def token(positions: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


def merged(held: str | None, new: str) -> str:
    """The later of two tokens in each partition (a client that wrote twice waits for both)."""
    if not held:
        return new
    try:
        mine = parse(held)
        for p, o in parse(new).items():
            mine[p] = max(o, mine.get(p, 0))
    except BadToken:
        return new
    return token(mine)
