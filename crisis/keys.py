"""API keys: bound to an organisation and a role; only a hash is stored.

A key reads `cb_<id>_<secret>`: the id finds the record, the secret is compared with its SHA-256 in
constant time. The secret is 256 random bits, so a fast hash is enough (nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.domain.crisis import OrgName
from crisis.domain.enums import Role
from crisis.domain.envelope import utcnow
from crisis.domain.principal import Principal
from crisis.jsonfile import SharedJsonFile

PREFIX = "cb"


class KeyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    org: OrgName
    role: Role
    hash: str
    created_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None
    exercise_only: bool = False
    label: str = Field(default="", max_length=200)

    def valid_at(self, now: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def principal(self) -> Principal:
        return Principal(org=self.org, role=self.role, key_id=self.id, exercise_only=self.exercise_only)


class KeyFile(BaseModel):
    keys: list[KeyRecord] = Field(default_factory=list)


def _digest(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """The keys file, re-read when it changes, so `crisis keys add|revoke` applies to running servers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SharedJsonFile(path, KeyFile, mode=0o600)
        self._parsed: KeyFile | None = None
        self._records: dict[str, KeyRecord] = {}
        self._reload()

    def _use(self, parsed: KeyFile | None) -> None:
        if parsed is not self._parsed:
            self._parsed = parsed
            self._records = {} if parsed is None else {r.id: r for r in parsed.keys}

    def _reload(self) -> None:
        self._use(self._file.load())

    def _fresh(self) -> None:
        self._use(self._file.fresh())

    def refresh(self) -> None:
        """Re-read the file if another process changed it (one `stat`: cheap enough twice a second)."""
        self._reload()

    def still_valid(self, key_id: str, now: datetime | None = None) -> bool:
        """Whether a key that authenticated earlier is still neither revoked, expired nor removed."""
        record = self._records.get(key_id)
        return record is not None and record.valid_at(now or utcnow())

    def _save(self) -> None:
        self._file.save(KeyFile(keys=list(self._records.values())))
        self._reload()

    def add(
        self,
        org: str,
        role: Role,
        *,
        expires_at: datetime | None = None,
        exercise_only: bool = False,
        label: str = "",
    ) -> tuple[KeyRecord, str]:
        """Create a key; returns its record and the key itself, which is never stored."""
        self._reload()
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = KeyRecord(
            id=key_id,
            org=org,
            role=role,
            hash=_digest(secret),
            created_at=utcnow(),
            expires_at=expires_at,
            exercise_only=exercise_only,
            label=label,
        )
        self._records[key_id] = record
        self._save()
        return record, f"{PREFIX}_{key_id}_{secret}"

    def revoke(self, key_id: str) -> KeyRecord:
        self._reload()
        record = self._records.get(key_id)
        if record is None:
            raise KeyError(key_id)
        record = record.model_copy(update={"revoked_at": utcnow()})
        self._records[key_id] = record
        self._save()
        return record

    def list(self) -> list[KeyRecord]:
        self._reload()
        return sorted(self._records.values(), key=lambda r: r.created_at)

    def authenticate(self, token: str, now: datetime | None = None) -> Principal | None:
        """The principal for a valid, unexpired, unrevoked key; None otherwise."""
        self._fresh()
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        record = self._records.get(parts[1])
        if record is None or not hmac.compare_digest(record.hash, _digest(parts[2])):
            return None
        return record.principal() if record.valid_at(now or utcnow()) else None
