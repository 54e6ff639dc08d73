"""Which values of which events erasure and retention must be able to make unrecoverable, under which key.

Indicator values (value, canonical form, blob reference, context) and the free text about them (retraction
reasons, action notes) are sealed under a key of their own per indicator, so one indicator can be erased
alone; a crisis's free text (summary, transition and clock reasons) under the crisis's key. Retention
destroys every key of a crisis. What is never sealed: ids, kinds, times, outcomes, organisations, labels of
handling, the crisis title, and the reason given for an erasure (the audit and the statistics).

Pure: the encryption itself is an adapter (crisis.crypto); this module says what it covers and what an
erased value reads as.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from crisis.domain.enums import EventType
from crisis.domain.envelope import Envelope

Path = tuple[str, ...]

_INDICATOR: Final[tuple[Path, ...]] = (("value",), ("canonical",), ("blob",), ("context",))
_CRISIS: Final[tuple[Path, ...]] = (("crisis", "summary"), ("transition", "reason"))
FIELDS: Final[dict[EventType, tuple[Path, ...]]] = {
    EventType.CRISIS_OPENED: _CRISIS,
    EventType.CRISIS_ACTIVATED: _CRISIS,
    EventType.CRISIS_LEVEL_CHANGED: _CRISIS,
    EventType.CRISIS_CONCLUDED: _CRISIS,
    EventType.CRISIS_CLOSED: _CRISIS,
    EventType.CRISIS_CLOCK_CHANGED: (("crisis", "summary"), ("change", "reason")),
    EventType.INDICATOR_SHARED: _INDICATOR,
    EventType.INDICATOR_SIGHTED: _INDICATOR,
    EventType.INDICATOR_RETRACTED: (("reason",),),
    EventType.ACTION_REPORTED: (("note",),),
}
_OPENINGS: Final = frozenset({EventType.CRISIS_OPENED, EventType.CRISIS_ACTIVATED})
# What an erased field reads as; an indicator's canonical form becomes unique to it, so an erased value
# never matches a new share of the same value.
_MARKERS: Final[dict[str, Callable[[dict[str, Any]], Any]]] = {
    "value": lambda data: None,
    "canonical": lambda data: f"erased:{data.get('indicator_id', '')}",
    "blob": lambda data: None,
    "context": lambda data: {},
    "summary": lambda data: "",
    "reason": lambda data: "",
    "note": lambda data: "",
}


def crisis_key(crisis_id: str) -> str:
    return crisis_id


def indicator_key(crisis_id: str, indicator_id: str) -> str:
    return f"{crisis_id}/{indicator_id}"


def key_id(env: Envelope) -> str | None:
    """The key that seals this event's sensitive fields; None when it has none."""
    if env.type not in FIELDS:
        return None
    if env.type.is_crisis_state:
        return crisis_key(env.subject)
    return indicator_key(env.subject, str(env.data.get("indicator_id", "")))


def creates_key(env: Envelope) -> bool:
    """Whether this event is the first under its key (a crisis's opening, an indicator's share): the only
    events for which a missing key is made, never one destroyed earlier."""
    if env.type in _OPENINGS:
        return env.data.get("expected_version") == 0
    return env.type is EventType.INDICATOR_SHARED


def has(data: dict[str, Any], path: Path) -> bool:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def get(data: dict[str, Any], path: Path) -> Any:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def put(data: dict[str, Any], path: Path, value: Any) -> None:
    """Set the field at `path`, copying the dicts on the way: `data` is a copy, the nested ones are not."""
    node = data
    for part in path[:-1]:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[path[-1]] = value


def drop(data: dict[str, Any], path: Path) -> None:
    """Remove the field at `path`, copying the dicts on the way (as `put`)."""
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            return
        node[part] = child = dict(child)
        node = child
    node.pop(path[-1], None)


def erased_data(type: EventType, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with every sensitive field of `type` set to its erased value, and marked erased."""
    out = dict(data)
    out.pop("sealed", None)
    for path in FIELDS.get(type, ()):
        put(out, path, _MARKERS[path[-1]](out))
    if type in FIELDS:
        out["erased"] = True
        if isinstance(out.get("crisis"), dict):
            put(out, ("crisis", "erased"), True)
    return out


def erased(env: Envelope) -> Envelope:
    """The event as every reader sees it once its key is gone."""
    if env.type not in FIELDS or env.data.get("erased") is True:
        return env
    return env.model_copy(update={"data": erased_data(env.type, env.data)})


@dataclass(frozen=True)
class Covers:
    """Which key ids an erasure destroys: some of one crisis's keys (`<crisis id>`, `<crisis id>/...`), so
    a key store finds them in that range of ids; `kids` None: all of them."""

    crisis_id: str
    kids: frozenset[str] | None

    def __call__(self, kid: str) -> bool:
        if self.kids is not None:
            return kid in self.kids
        return kid == self.crisis_id or kid.startswith(indicator_key(self.crisis_id, ""))


def erasure_covers(erasure: Envelope) -> Covers:
    """Which key ids an erasure event destroys: one indicator's, the crisis's own, or all of the crisis."""
    crisis_id = erasure.subject
    if erasure.type is EventType.INDICATOR_ERASED:
        return Covers(
            crisis_id, frozenset({indicator_key(crisis_id, str(erasure.data.get("indicator_id", "")))})
        )
    if erasure.type is EventType.CRISIS_ERASED:
        return Covers(crisis_id, frozenset({crisis_key(crisis_id)}))
    if erasure.type is EventType.CRISIS_RETENTION_EXPIRED:
        return Covers(crisis_id, None)
    return Covers(crisis_id, frozenset())
