"""/v1/audit/reads: a gateway-only process's read audit, written to the log by the API.

Only the service token (CRISIS_AUDIT_TOKEN) is accepted here, never an API key: no organisation writes
another's read audit. The answer comes after the ledger's verdict, so the gateway forgets its counts only
once they are in the log.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from crisis.api.deps import LedgerDep, MetricsDep, SettingsDep
from crisis.api.problems import Problem
from crisis.api.writes import commit, raise_for
from crisis.audit.reads import LINES, event
from crisis.domain.reads import AuditReads, ReadKind

router = APIRouter(prefix="/v1/audit", tags=["audit"])

# What one period of one process holds at most (crisis.audit.reads.LINES).
MAX_LINES = LINES
MAX_FILTERS_BYTES = 8192
Name = Annotated[str, Field(min_length=1, max_length=128)]
Cursor = Annotated[str, Field(max_length=512)]


async def service_token(
    settings: SettingsDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """The caller is a process of this deployment: `Authorization: Bearer <CRISIS_AUDIT_TOKEN>`."""
    expected = settings.audit_token
    if expected is None:
        raise Problem(
            401, "this API takes no read audit: CRISIS_AUDIT_TOKEN is not set", code="unauthenticated"
        )
    scheme, _, given = (authorization or "").partition(" ")
    # Compared in constant time, as bytes (compare_digest refuses non-ASCII str).
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.get_secret_value().encode()
    ):
        raise Problem(
            401, "send the service token as 'Authorization: Bearer <token>'", code="unauthenticated"
        )


ServiceDep = Annotated[None, Depends(service_token)]


class ReadCountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: Name
    key_id: Name
    crisis_id: str = Field(default="", max_length=128)
    kind: ReadKind
    count: int = Field(ge=1, le=10**12)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: Name
    key_id: Name
    filters: dict[str, Any]
    from_cursor: Cursor | None
    to_cursor: Cursor | None
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None

    @field_validator("filters")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_FILTERS_BYTES:
            raise ValueError(f"filters above {MAX_FILTERS_BYTES} bytes")
        return value


class AuditReadsCreate(BaseModel):
    """One gateway process's reads over one period (the data of `audit.reads`)."""

    model_config = ConfigDict(extra="forbid")

    process: str = Field(min_length=1, max_length=64)
    period_from: AwareDatetime
    period_to: AwareDatetime
    counts: list[ReadCountIn] = Field(default_factory=list, max_length=MAX_LINES)
    subscriptions: list[SubscriptionIn] = Field(default_factory=list, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _period(self) -> AuditReadsCreate:
        if self.period_to < self.period_from:
            raise ValueError("period_to is before period_from")
        return self


class AuditReadsPublic(BaseModel):
    event_id: str
    process: str
    period_from: AwareDatetime
    period_to: AwareDatetime


@router.post("/reads", status_code=201, response_model=AuditReadsPublic)
async def write_reads(
    body: AuditReadsCreate, _: ServiceDep, ledger: LedgerDep, metrics: MetricsDep
) -> AuditReadsPublic:
    """Write a gateway's read audit for one period (service token only); 201 once the log holds it."""
    data = AuditReads.model_validate(body.model_dump())
    env = event(data)
    # The same period sent again is the same event id: the ledger answers with the first verdict.
    [outcome] = await commit(ledger, metrics, [env])
    raise_for(outcome)
    return AuditReadsPublic(
        event_id=env.id, process=data.process, period_from=data.period_from, period_to=data.period_to
    )
