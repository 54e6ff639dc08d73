"""A gateway-only process's read audit, sent to the API over HTTP (`POST /v1/audit/reads`).

The gateway's Kafka principal may only read the log, so it never writes its `audit.reads` itself: the API
writes it through its ledger and answers once the fold has given its verdict. The request carries the
service token (CRISIS_AUDIT_TOKEN), not an API key. An API that is down or refuses leaves the counts here
for the next period; the trouble is logged once, and its end once.
"""

from __future__ import annotations

import httpx
import structlog
from pydantic import SecretStr

from crisis.audit.reads import Sent
from crisis.domain.reads import AuditReads

log = structlog.get_logger(__name__)

AUDIT_READS_PATH = "/v1/audit/reads"
# Statuses after which the same request may yet be written (the API busy, starting, or its Kafka away).
RETRY_SAME = {408, 429, 500, 502, 503, 504}


class HttpSink:
    def __init__(self, api_url: str, token: SecretStr, timeout_s: float = 10.0) -> None:
        self.url = api_url.rstrip("/") + AUDIT_READS_PATH
        self._token = token
        self._timeout_s = timeout_s
        self._failing = False

    async def send(self, data: AuditReads) -> Sent:
        headers = {
            "Authorization": f"Bearer {self._token.get_secret_value()}",
            "Content-Type": "application/json",
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as http:
                response = await http.post(self.url, content=data.model_dump_json(), headers=headers)
        except httpx.HTTPError as exc:
            self._failed(Sent.UNKNOWN, error=f"{type(exc).__name__}: {exc}")
            return Sent.UNKNOWN
        if response.status_code < 300:
            if self._failing:
                log.info("audit_reads_forwarding_resumed", url=self.url)
                self._failing = False
            return Sent.WRITTEN
        sent = Sent.UNKNOWN if response.status_code in RETRY_SAME else Sent.REFUSED
        self._failed(sent, status=response.status_code, detail=_detail(response))
        return sent

    def _failed(self, sent: Sent, **why: object) -> None:
        """Said once until the API takes a period again: a gateway cut off for hours logs one line."""
        if not self._failing:
            log.warning("audit_reads_not_forwarded", url=self.url, kept_for_next_period=True, **why)
        self._failing = True


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:300]
    except ValueError:
        return response.text[:300]
