"""Idempotency-Key: retry-stable event ids, and the fingerprint that tells a retry from a new request.

Following the IETF Idempotency-Key header draft: a retry with the same key and the same request gets the
first answer (the events carry the same ids, so Kafka and the fold never count them twice); the same key
with a different request is refused with 422 `idempotency_key_reused`, never answered with the first result.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from crisis.domain.envelope import new_event_id
from crisis.domain.principal import Principal

_NAMESPACE = uuid.UUID("5b0e1f7c-6c1d-4b8e-9a51-2f1c0c8e6a10")


def stable_id(principal: Principal, idempotency_key: str | None, *parts: object) -> str:
    """A random id, or, with an Idempotency-Key, the same id on every retry of the same request."""
    if idempotency_key is None:
        return new_event_id()
    name = ":".join([principal.org, idempotency_key, *map(str, parts)])
    return str(uuid.uuid5(_NAMESPACE, name))


def request_fingerprint(principal: Principal, key: str, method: str, path: str, body: bytes) -> str:
    """`<scope>.<digest>`: the scope names (organisation, key), the digest the request itself.

    The body is compared as canonical JSON (sorted keys, no spaces), so a client that re-serialises the
    same request differently is still recognised as retrying it.
    """
    scope = uuid.uuid5(_NAMESPACE, f"{principal.org}\n{key}").hex
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()
    return f"{scope}.{digest}"
