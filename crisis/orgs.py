"""The registry of organisations: who may be named as a TLP recipient and who may hold a key.

A JSON file beside the keys file (`CRISIS_ORGS_FILE`, default `.crisis/orgs.json`), re-read when it changes
like the keys file, so `crisis orgs add` applies to running servers. Until the file exists there is no
registry and every well-formed name is accepted (a deployment that never registers keeps working);
`crisis up` creates it with the bootstrap coordinator's organisation.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crisis.domain.crisis import OrgName
from crisis.domain.envelope import utcnow
from crisis.jsonfile import SharedJsonFile


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
        self._file = SharedJsonFile(path, OrgFile, mode=0o644)
        self._parsed: OrgFile | None = None
        self._records: dict[str, OrgRecord] | None = None
        self._reload()

    def _use(self, parsed: OrgFile | None) -> None:
        if parsed is not self._parsed:
            self._parsed = parsed
            self._records = None if parsed is None else {r.name: r for r in parsed.orgs}

    def _reload(self) -> None:
        self._use(self._file.load())

    def _fresh(self) -> None:
        self._use(self._file.fresh())

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
        self._file.save(OrgFile(orgs=list(records.values())))
        self._reload()
