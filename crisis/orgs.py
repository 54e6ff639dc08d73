"""The registry of organisations: who may be named as a TLP recipient and who may hold a key.

A JSON file beside the keys file (`CRISIS_ORGS_FILE`, default `.crisis/orgs.json`), re-read when it changes
like the keys file, so `crisis orgs add` applies to running servers. Until the file exists there is no
registry and every well-formed name is accepted (a deployment that never registers keeps working);
`crisis up` creates it with the bootstrap coordinator's organisation.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.domain.crisis import OrgName
from crisis.domain.envelope import utcnow


class OrgRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: OrgName
    added_at: AwareDatetime
    label: str = Field(default="", max_length=200)


class OrgFile(BaseModel):
    orgs: list[OrgRecord] = Field(default_factory=list)


class OrgRegistry:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._records: dict[str, OrgRecord] | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._reload()

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._records, self._stamp = None, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            parsed = OrgFile.model_validate_json(self.path.read_bytes())
            self._records = {r.name: r for r in parsed.orgs}
            self._stamp = stamp

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._checked > 1.0:
            self._checked = now
            self._reload()

    @property
    def exists(self) -> bool:
        self._reload()
        return self._records is not None

    def known(self, org: str) -> bool:
        """True for a registered organisation, and for any organisation while no registry exists."""
        self._fresh()
        return self._records is None or org in self._records

    def add(self, name: str, label: str = "") -> tuple[OrgRecord, bool]:
        """Register `name` (creating the registry if needed); returns the record and whether it is new."""
        self._reload()
        records = dict(self._records or {})
        if name in records:
            return records[name], False
        record = OrgRecord(name=name, added_at=utcnow(), label=label)
        records[name] = record
        self._save(records)
        return record, True

    def list(self) -> list[OrgRecord]:
        self._reload()
        return sorted((self._records or {}).values(), key=lambda r: r.name)

    def _save(self, records: dict[str, OrgRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = OrgFile(orgs=list(records.values())).model_dump_json(indent=2)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        os.replace(tmp, self.path)
        self._stamp = None
        self._reload()
