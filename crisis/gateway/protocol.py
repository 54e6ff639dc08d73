"""The stream's protocol with no I/O: subscriptions, client messages, control messages, close codes.

Everything here takes and returns plain values so it is tested without a socket or an event loop.

Client -> server (JSON text):
    {"type": "auth", "token": "<key>"}                      first message when no Authorization header;
                                                             may carry subscription fields (below)
    {"type": "subscribe", "crises": [...], "types": [...], "kinds": [...], "mode": "live", "cursor": "..."}
                                                             replaces the subscription at any time
    "backfill": true (instead of a cursor)                   the history of the crises from their start
                                                             (of every crisis not closed, when none is
                                                             named), then live, each event once
Query parameters of GET /v1/stream: crisis, type, kind (comma-separated or repeated), mode, cursor,
backfill (true or false).

Server -> client: CloudEvents in structured JSON with a `cursor`, and control messages whose `type`
has no dot: subscribed, state, gap, closing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs

from crisis.domain.audience import may_read
from crisis.domain.enums import EventType, IndicatorKind, Mode, Tlp
from crisis.domain.principal import Principal
from crisis.gateway import cursor as cursors

PATH: Final = "/v1/stream"
SUBPROTOCOL: Final = "cloudevents.json"

# Close codes (RFC 6455 section 7.4; 4000-4999 are ours).
POLICY_VIOLATION: Final = 1008  # no or bad credentials, invalid or forbidden subscription or message
MESSAGE_TOO_BIG: Final = 1009  # a message over max_size (sent by websockets itself) or nested too deep
UNSUPPORTED_DATA: Final = 1003  # a binary message: the stream speaks JSON text only
INVALID_DATA: Final = 1007  # a text message that is not JSON (websockets sends it for invalid UTF-8)
GOING_AWAY: Final = 1001  # the gateway is shutting down: reconnect with your cursor
INTERNAL_ERROR: Final = 1011  # the gateway failed: reconnect with your cursor, nothing is lost
SLOW_CONSUMER: Final = 4008  # the client fell behind its buffer; the reason carries its last cursor
TRY_AGAIN_LATER: Final = 1013  # this key already holds its maximum of connections

MAX_REASON_BYTES: Final = 123
# Client messages are flat (an object of strings and lists of strings: depth 2); deeper ones are refused
# before decoding, so no message costs the decoder more than one linear scan.
MAX_DEPTH: Final = 32
MAX_CRISES: Final = 100
_MAX_ID = 128
_QUERY_KEYS = frozenset({"crisis", "type", "kind", "mode", "cursor", "backfill"})
_MESSAGE_KEYS = frozenset({"crises", "types", "kinds", "mode", "cursor", "backfill"})
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False, "": False}
_ALL = frozenset({"", "*"})
E = TypeVar("E", EventType, IndicatorKind)


class ProtocolError(ValueError):
    """A request or message the gateway refuses; the text is safe to show the client, `code` closes it."""

    def __init__(self, message: str, code: int = POLICY_VIOLATION) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Filter:
    """What a subscriber asked for; None means "all" for crises, types and kinds."""

    crises: frozenset[str] | None = None
    types: frozenset[EventType] | None = None
    kinds: frozenset[IndicatorKind] | None = None
    modes: frozenset[Mode] = frozenset({Mode.LIVE})

    def to_json(self) -> dict[str, Any]:
        return {
            "crises": sorted(self.crises) if self.crises is not None else None,
            "types": sorted(self.types) if self.types is not None else None,
            "kinds": sorted(self.kinds) if self.kinds is not None else None,
            "mode": _mode_name(self.modes),
        }


@dataclass(frozen=True, slots=True)
class Subscription:
    filter: Filter
    cursor: cursors.Cursor | None = None
    cursor_text: str | None = None
    backfill: bool = False  # from the start of the crises' history (never with a cursor)


@dataclass(frozen=True, slots=True)
class Auth:
    token: str
    subscription: Subscription | None  # None: keep the one from the query string


@dataclass(frozen=True, slots=True)
class Facts:
    """What the selection rules look at in an event (or in a crisis state sent as `state`)."""

    crisis: str
    type: EventType
    kind: IndicatorKind | None
    tlp: Tlp
    mode: Mode
    author_org: str
    recipients: tuple[str, ...]
    concerns: str | None = None  # the provider a clock event is about


# ------------------------------------------------------------------------------------------ selection


def matches(f: Filter, facts: Facts) -> bool:
    """The subscriber's own filter. Kinds narrow indicator events only; crisis events carry no kind."""
    if f.crises is not None and facts.crisis not in f.crises:
        return False
    if f.types is not None and facts.type not in f.types:
        return False
    if f.kinds is not None and facts.kind is not None and facts.kind not in f.kinds:
        return False
    return facts.mode in f.modes


def entitled(principal: Principal, facts: Facts) -> bool:
    return may_read(
        principal,
        type=facts.type,
        tlp=facts.tlp,
        mode=facts.mode,
        author_org=facts.author_org,
        recipients=facts.recipients,
        concerns=facts.concerns,
    )


def admits(principal: Principal, f: Filter, facts: Facts) -> bool:
    """True when this subscriber receives this event: its filter and the one audience rule both agree."""
    return matches(f, facts) and entitled(principal, facts)


def forbidden(principal: Principal, f: Filter) -> str | None:
    """Why no event could ever pass this filter for this principal, or None when some could.

    Asks the audience rule itself about every (type, mode, TLP) the filter allows, with the most
    favourable author (the subscriber's own organisation), so there is no second copy of the rules.
    """
    modes = [m for m in f.modes if principal.may_touch_mode(m)]
    if not modes:
        return "an exercise-only key may not subscribe to live events; use mode=exercise"
    types = f.types if f.types is not None else frozenset(EventType)
    for t in types:
        for m in modes:
            for tlp in Tlp:
                own = principal.org
                if may_read(principal, type=t, tlp=tlp, mode=m, author_org=own, recipients=(), concerns=own):
                    return None
    return f"{principal.role.value} keys may never receive {', '.join(sorted(types))}"


# ------------------------------------------------------------------------------------------ parsing


def parse_query(query: str) -> Subscription:
    """The subscription in the query string of GET /v1/stream."""
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=64)
    except ValueError as exc:
        raise ProtocolError(f"invalid query string: {exc}") from exc
    unknown = set(params) - _QUERY_KEYS
    if unknown:
        raise ProtocolError(f"unknown query parameter {sorted(unknown)[0]!r}")
    return _subscription(
        crises=_split(params.get("crisis")),
        types=_split(params.get("type")),
        kinds=_split(params.get("kind")),
        mode=_single(params.get("mode"), "mode"),
        cursor=_single(params.get("cursor"), "cursor"),
        backfill=_flag(_single(params.get("backfill"), "backfill")),
    )


def parse_message(text: str | bytes) -> Auth | Subscription:
    """A client message: `auth` (first, when no header) or `subscribe`."""
    if not isinstance(text, str):
        raise ProtocolError("messages must be JSON text, not binary", UNSUPPORTED_DATA)
    if too_deep(text):
        raise ProtocolError(f"messages may nest at most {MAX_DEPTH} levels", MESSAGE_TOO_BIG)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("messages must be JSON", INVALID_DATA) from exc
    if not isinstance(obj, dict):
        raise ProtocolError("messages must be JSON objects")
    kind = obj.get("type")
    if kind == "auth":
        token = obj.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("an auth message needs a token")
        fields = {k: v for k, v in obj.items() if k not in ("type", "token")}
        return Auth(token, _from_mapping(fields) if fields else None)
    if kind == "subscribe":
        return _from_mapping({k: v for k, v in obj.items() if k != "type"})
    raise ProtocolError("expected a message of type 'auth' or 'subscribe'")


# A JSON string (escapes skipped; an unterminated one runs to the end, so no position is scanned twice).
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def too_deep(text: str) -> bool:
    """True when the JSON in `text` opens more than MAX_DEPTH arrays or objects inside one another."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # every real message, decided at once
        return False
    # Brackets inside strings do not nest; the running sum of the others is the depth (all of it in C).
    brackets = _BRACKETS.findall(_STRINGS.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH


def bearer(header: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`; None when absent. ProtocolError when malformed."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProtocolError("the Authorization header must be 'Bearer <key>'")
    return token.strip()


def _from_mapping(fields: Mapping[str, Any]) -> Subscription:
    unknown = set(fields) - _MESSAGE_KEYS
    if unknown:
        raise ProtocolError(f"unknown subscription field {sorted(unknown)[0]!r}")
    mode, cursor_text = fields.get("mode"), fields.get("cursor")
    if mode is not None and not isinstance(mode, str):
        raise ProtocolError("mode must be a string")
    if cursor_text is not None and not isinstance(cursor_text, str):
        raise ProtocolError("cursor must be a string")
    backfill = fields.get("backfill", False)
    if not isinstance(backfill, bool):
        raise ProtocolError("backfill must be true or false")
    return _subscription(
        crises=_listed(fields.get("crises"), "crises"),
        types=_listed(fields.get("types"), "types"),
        kinds=_listed(fields.get("kinds"), "kinds"),
        mode=mode,
        cursor=cursor_text,
        backfill=backfill,
    )


def _flag(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise ProtocolError("backfill must be true or false") from None


def _subscription(
    *,
    crises: list[str] | None,
    types: list[str] | None,
    kinds: list[str] | None,
    mode: str | None,
    cursor: str | None,
    backfill: bool = False,
) -> Subscription:
    f = Filter(
        crises=_crises(crises),
        types=_types(types),
        kinds=_enum_set(kinds, IndicatorKind, "indicator kind"),
        modes=_modes(mode),
    )
    if cursor is None or cursor == "":
        return Subscription(f, backfill=backfill)
    if backfill:
        raise ProtocolError("send a cursor (to continue) or backfill (to start from the beginning), not both")
    try:
        return Subscription(f, cursors.decode(cursor), cursor)
    except cursors.CursorError as exc:
        raise ProtocolError(f"invalid cursor: {exc}") from exc


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",")]


def _single(values: list[str] | None, name: str) -> str | None:
    if values is None:
        return None
    if len(values) > 1:
        raise ProtocolError(f"{name} may be given once")
    return values[0]


def _listed(value: object, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ProtocolError(f"{name} must be a list of strings")


def _crises(values: list[str] | None) -> frozenset[str] | None:
    if values is None or set(values) <= _ALL:
        return None
    ids = frozenset(v for v in values if v)
    if len(ids) > MAX_CRISES:
        raise ProtocolError(f"at most {MAX_CRISES} crisis ids per subscription")
    if any(len(v) > _MAX_ID or "*" in v for v in ids):
        raise ProtocolError("a crisis id has at most 128 characters and no '*'")
    return ids


def _types(values: list[str] | None) -> frozenset[EventType] | None:
    if values is None or set(values) <= _ALL:
        return None
    out: set[EventType] = set()
    for value in filter(None, values):
        if value.endswith(".*"):  # "crisis.*": every type of that family
            family = [t for t in EventType if t.value.startswith(value[:-1])]
            if not family:
                raise ProtocolError(f"unknown event type family {value!r}")
            out.update(family)
        else:
            out.update(_enum_set([value], EventType, "event type") or ())
    return frozenset(out)


def _enum_set(values: list[str] | None, enum: type[E], what: str) -> frozenset[E] | None:
    if values is None or set(values) <= _ALL:
        return None
    out = set()
    for value in filter(None, values):
        try:
            out.add(enum(value))
        except ValueError:
            allowed = ", ".join(e.value for e in enum)
            raise ProtocolError(f"unknown {what} {value[:40]!r} (one of {allowed})") from None
    return frozenset(out)


def _modes(value: str | None) -> frozenset[Mode]:
    if value is None or value in ("", "live"):
        return frozenset({Mode.LIVE})
    if value == "exercise":
        return frozenset({Mode.EXERCISE})
    if value == "both":
        return frozenset(Mode)
    raise ProtocolError(f"unknown mode {value[:20]!r} (live, exercise or both)")


def _mode_name(modes: frozenset[Mode]) -> str:
    return "both" if len(modes) == 2 else next(iter(modes)).value


# ------------------------------------------------------------------------------------------ messages


def _dumps(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def subscribed(f: Filter, cursor: str, principal: Principal) -> bytes:
    """First message of every subscription: what was understood, and the cut the stream starts after."""
    return _dumps(
        {
            "type": "subscribed",
            "filter": f.to_json(),
            "org": principal.org,
            "role": principal.role.value,
            "cursor": cursor,
        }
    )


def state(crisis: Mapping[str, Any], cursor: str) -> bytes:
    """A crisis as it stands now, for a subscription without cursor; events after `cursor` follow."""
    return _dumps({"type": "state", "crisis": crisis, "cursor": cursor})


@dataclass(frozen=True, slots=True)
class Missing:
    partition: int
    start: int  # first offset the client has not seen
    end: int  # first offset still available


def gap(reason: str, missing: Iterable[Missing] | None, resume_cursor: str, detail: str) -> bytes:
    """Events the client should have had but cannot: said plainly before the stream goes on."""
    ranges = (
        None
        if missing is None
        else [{"partition": m.partition, "from": m.start, "to": m.end} for m in missing]
    )
    return _dumps(
        {"type": "gap", "reason": reason, "missing": ranges, "detail": detail, "cursor": resume_cursor}
    )


def closing(code: int, reason: str, cursor: str | None) -> bytes:
    """Sent just before a close frame, so a cursor too long for the close reason still arrives."""
    return _dumps({"type": "closing", "code": code, "reason": reason, "cursor": cursor})


def close_reason(text: str, cursor: str | None = None) -> str:
    """`text; cursor=...` when it fits the 123 bytes of a close reason, else `text` alone."""
    if cursor:
        full = f"{text}; cursor={cursor}"
        if len(full.encode()) <= MAX_REASON_BYTES:
            return full
    return text.encode()[:MAX_REASON_BYTES].decode("utf-8", "ignore")


def reason_cursor(reason: str) -> str | None:
    """The cursor in a close reason made by `close_reason`, if any."""
    _, sep, value = reason.rpartition("; cursor=")
    return value if sep else None
