"""The hash chain of each crisis: every event carries the digest of the previous one of its crisis.

The digest is SHA-256 over the event's canonical JSON as published: the structured-mode CloudEvent
(attributes and `data`) with keys sorted, no whitespace, UTF-8, `time` in UTC with microseconds, the
absent or empty extensions left out, the derived `dataschema` and the digest itself (`chainhash`) left
out. `chainprev` is inside it, so changing, dropping or moving any earlier event breaks every later link.
What is published is what is hashed: fields encrypted before publishing are hashed as ciphertext, so
destroying their key (erasure) leaves the chain verifiable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

import orjson

from crisis.domain.envelope import Envelope, replaced, utc_text
from crisis.domain.jsonvalues import exact

GENESIS: Final = "0" * 64
# The fold's answer to an event whose `chainprev` is not its crisis's head: its writer restamps and retries.
CHAIN_CONFLICT: Final = "chain_conflict"
# The canonical form is this encoder's output; orjson writes the same bytes for the values it takes
# (crisis.domain.jsonvalues), this encoder the rest. Built once: json.dumps with options builds one per call.
_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(env: Envelope, chainprev: str | None = None) -> bytes:
    """The bytes the digest covers (see the module docstring); `chainprev` as given, else the event's."""
    # The enums are StrEnums, written as their values by both encoders (and `.value` costs a property call).
    attributes: dict[str, Any] = {
        "specversion": env.specversion,
        "id": env.id,
        "source": env.source,
        "type": env.type,
        "time": utc_text(env.time),
        "subject": env.subject,
        "datacontenttype": env.datacontenttype,
        "tlp": env.tlp,
        "mode": env.mode,
        "data": env.data,
    }
    # The optional extensions only when set and not empty.
    if env.tlprecipients:
        attributes["tlprecipients"] = ",".join(env.tlprecipients)
    if env.role is not None:
        attributes["role"] = env.role
    if env.idempotency:
        attributes["idempotency"] = env.idempotency
    prev = chainprev if chainprev is not None else env.chainprev
    if prev:
        attributes["chainprev"] = prev
    if exact(env.data):  # only `data` can hold what orjson writes differently (the rest: str, StrEnum)
        try:
            return orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an int beyond 64 bits, a key that is not a string, a lone surrogate
            pass
    return _ENCODER.encode(attributes).encode()


def digest(env: Envelope, chainprev: str | None = None) -> str:
    return hashlib.sha256(canonical(env, chainprev)).hexdigest()


def stamp(env: Envelope, prev: str) -> Envelope:
    """The event linked after `prev`, with its own digest."""
    return replaced(env, chainprev=prev, chainhash=digest(env, prev))


def intact(env: Envelope) -> bool:
    """Whether the event's `chainhash` is the digest of what it carries."""
    return env.chainhash is not None and env.chainhash == digest(env)
