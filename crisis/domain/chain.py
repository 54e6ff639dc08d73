"""The hash chain of each crisis: every event carries the digest of the previous one of its crisis.

The digest is SHA-256 over the event's canonical JSON as published: the structured-mode CloudEvent (attributes
and `data`) with keys sorted, no whitespace, UTF-8, the absent extensions left out, the derived `dataschema`
and the digest itself (`chainhash`) left out. `chainprev` is inside it, so changing, dropping or moving any
earlier event breaks every later link. What is published is what is hashed: fields encrypted before
publishing are hashed as ciphertext, so destroying their key (erasure) leaves the chain verifiable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from crisis.domain.envelope import Envelope

GENESIS: Final = "0" * 64
# The fold's answer to an event whose `chainprev` is not its crisis's head: its writer restamps and retries.
CHAIN_CONFLICT: Final = "chain_conflict"
_LEFT_OUT: Final = frozenset({"chainhash", "dataschema"})


def canonical(env: Envelope) -> bytes:
    """The bytes the digest covers (see the module docstring)."""
    dumped: dict[str, Any] = env.model_dump(mode="json")
    attributes = {k: v for k, v in dumped.items() if k not in _LEFT_OUT and v is not None and v != ""}
    return json.dumps(attributes, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(env: Envelope) -> str:
    return hashlib.sha256(canonical(env)).hexdigest()


def stamp(env: Envelope, prev: str) -> Envelope:
    """The event linked after `prev`, with its own digest."""
    linked = env.model_copy(update={"chainprev": prev, "chainhash": None})
    return linked.model_copy(update={"chainhash": digest(linked)})


def intact(env: Envelope) -> bool:
    """Whether the event's `chainhash` is the digest of what it carries."""
    return env.chainhash is not None and env.chainhash == digest(env)
