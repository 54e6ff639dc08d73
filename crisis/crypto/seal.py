"""Seal an event's sensitive fields (crisis.domain.sensitive) with AES-GCM, and open them again.

A sealed event carries its sensitive fields in one box: `data.sealed = {"kid", "alg", "box"}`, the box
being base64 of a 96-bit nonce and the ciphertext of the fields as JSON. The associated data binds the
box to the event's id, type and key id, so a box moved to another event does not open. Without the key
(destroyed) the event opens as erased: the same data with the erased values and `erased: true`.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crisis.domain import sensitive
from crisis.domain.envelope import Envelope, replaced
from crisis.domain.jsonvalues import exact

ALG: Final = "A256GCM"
KEY_BYTES: Final = 32
_NONCE: Final = 12


class SealError(ValueError):
    """A sealed box that does not open with its key: altered, or moved to another event."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def _aad(env: Envelope, kid: str) -> bytes:
    return f"{env.id}\n{env.type}\n{kid}".encode()


def is_sealed(env: Envelope) -> bool:
    return isinstance(env.data.get("sealed"), dict)


def seal(env: Envelope, key: bytes | None, kid: str | None = None) -> Envelope:
    """The event as published: its sensitive fields in a box under `key`; erased outright when its key
    is already gone (a note on an erased indicator is never written in clear). `kid`: the event's key id,
    when the caller has it already."""
    if kid is None:
        kid = sensitive.key_id(env)
    if kid is None or is_sealed(env):
        return env
    if key is None:
        return sensitive.erased(env)
    data: dict[str, Any] = dict(env.data)  # drop() copies the nested dicts it changes
    fields = {}
    for path in sensitive.FIELDS[env.type]:
        if len(path) == 1:  # a top-level field (every indicator field): no walk
            name = path[0]
            if name in data:
                fields[name] = data.pop(name)
        elif sensitive.has(data, path):
            fields["/".join(path)] = sensitive.get(data, path)
            sensitive.drop(data, path)
    nonce = os.urandom(_NONCE)
    box = nonce + AESGCM(key).encrypt(nonce, _plaintext(fields), _aad(env, kid))
    data["sealed"] = {"kid": kid, "alg": ALG, "box": base64.b64encode(box).decode()}
    return replaced(env, data=data)


def _plaintext(fields: dict[str, Any]) -> bytes:
    """The sealed fields as JSON, read back by json.loads: orjson's (floats in their shortest exact form)
    unless it refuses the value (an int beyond 64 bits), then the json module's."""
    try:
        return orjson.dumps(fields)
    except TypeError:
        return json.dumps(fields, separators=(",", ":")).encode()


def _fields(plain: bytes) -> dict[str, Any]:
    """The sealed fields read back as json.loads reads them: by orjson (a fifth of the cost, and every
    reader opens every event) where it reads the same values (crisis.domain.jsonvalues), by json when
    orjson refuses the text or reads a float (an int beyond 64 bits is a float to orjson)."""
    try:
        fields = orjson.loads(plain)
    except orjson.JSONDecodeError:
        return dict(json.loads(plain))
    return fields if type(fields) is dict and exact(fields) else dict(json.loads(plain))


def sealed_kid(env: Envelope) -> str | None:
    box = env.data.get("sealed")
    return str(box.get("kid")) if isinstance(box, dict) else None


def unseal(env: Envelope, key: bytes | None) -> Envelope:
    """The event as readers see it: plaintext while its key exists, erased after."""
    box = env.data.get("sealed")
    if not isinstance(box, dict):
        return env
    if key is None:
        return sensitive.erased(env)
    kid = str(box.get("kid"))
    if kid != sensitive.key_id(env) or box.get("alg") != ALG:
        raise SealError(f"event {env.id}: a box under {kid} does not belong to it")
    raw = base64.b64decode(str(box.get("box", "")))
    try:
        plain = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], _aad(env, kid))
    except InvalidTag as exc:
        raise SealError(f"event {env.id}: its sealed fields do not open (altered or moved)") from exc
    data = {k: v for k, v in env.data.items() if k != "sealed"}
    for name, value in _fields(plain).items():
        sensitive.put(data, tuple(name.split("/")), value)
    return replaced(env, data=data)
