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
from datetime import UTC
from typing import Any, Final

from crisis.domain.envelope import Envelope

GENESIS: Final = "0" * 64
# The fold's answer to an event whose `chainprev` is not its crisis's head: its writer restamps and retries.
CHAIN_CONFLICT: Final = "chain_conflict"
# RFC 3339 in UTC, always with microseconds: one spelling of every instant.
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
# Built once: json.dumps with options builds a new encoder per call.
_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(env: Envelope, chainprev: str | None = None) -> bytes:
    """The bytes the digest covers (see the module docstring); `chainprev` as given, else the event's."""
    attributes: dict[str, Any] = {
        "specversion": env.specversion,
        "id": env.id,
        "source": env.source,
        "type": env.type.value,
        "time": env.time.astimezone(UTC).strftime(TIME_FORMAT),
        "subject": env.subject,
        "datacontenttype": env.datacontenttype,
        "tlp": env.tlp.value,
        "mode": env.mode.value,
        "data": env.data,
    }
    optional = {
        "tlprecipients": ",".join(env.tlprecipients),
        "role": env.role.value if env.role is not None else None,
        "idempotency": env.idempotency,
        "chainprev": chainprev if chainprev is not None else env.chainprev,
    }
    attributes.update((k, v) for k, v in optional.items() if v)
    return _ENCODER.encode(attributes).encode()


def digest(env: Envelope, chainprev: str | None = None) -> str:
    return hashlib.sha256(canonical(env, chainprev)).hexdigest()


def stamp(env: Envelope, prev: str) -> Envelope:
    """The event linked after `prev`, with its own digest."""
    return env.model_copy(update={"chainprev": prev, "chainhash": digest(env, prev)})


def intact(env: Envelope) -> bool:
    """Whether the event's `chainhash` is the digest of what it carries."""
    return env.chainhash is not None and env.chainhash == digest(env)
