"""The deliverer: fed by the ledger's listener, it records a delivery per (endpoint, event) and sends each
one, signed, retrying with exponential backoff and jitter until it succeeds or is dead-lettered.

At least once: a delivery is marked delivered only after a 2xx answer, so a crash between the answer and
the record sends it again; its `webhook-id` (the event id) never changes, and receivers dedupe on it.
Run it in one process per deployment (`CRISIS_WEBHOOK_DELIVERER`): every process folds the same log, and
two deliverers sharing one store would each send the same deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import stamina
import structlog

from crisis.bus.base import Delivered
from crisis.config import Settings
from crisis.domain.book import Outcome
from crisis.domain.envelope import Envelope, utcnow
from crisis.domain.webhooks import DeliveryState, Endpoint, wants
from crisis.keys import KeyStore
from crisis.webhooks.signing import headers
from crisis.webhooks.store import Attempt, Job, WebhookStore
from crisis.webhooks.targets import resolves_inward

log = structlog.get_logger(__name__)

# How much older than this process's last look at the endpoints an event may be and still be matched: an
# endpoint is stamped before it is stored, so one read just after that look may carry an earlier stamp.
REGISTRATION_MARGIN = timedelta(seconds=60)


class AttemptFailed(Exception):
    """One attempt did not get a 2xx answer (the message says what it got)."""


class Abandoned(Exception):
    """The endpoint went away between attempts: no more are made (not retried)."""


class Deliverer:
    def __init__(self, settings: Settings, keys: KeyStore) -> None:
        self.settings = settings
        self.keys = keys
        # Opened once the file exists: a deployment that never registers a webhook never gets one.
        self.store: WebhookStore | None = None
        self.endpoints: list[Endpoint] = []
        self._secrets: dict[str, str] = {}
        self._since = utcnow() - REGISTRATION_MARGIN
        self._incoming: list[Envelope] = []
        self._wake = asyncio.Event()
        self._active: dict[tuple[str, str], asyncio.Task[None]] = {}

    def on_folded(self, folded: list[tuple[Delivered, Outcome]]) -> None:
        """The ledger's listener: keep the accepted events some endpoint may want (no I/O here).

        Endpoints are matched later, against a fresh list, so an event folded just after a registration
        this process has not read yet still reaches it.
        """
        since = min((self._since, *(ep.created_at for ep in self.endpoints)))
        kept = [i.envelope for i, o in folded if o.deliverable and i.envelope.time >= since]
        if kept:
            self._incoming.extend(kept)
            self._wake.set()

    async def run(self) -> None:
        """Record what the listener kept, start due deliveries; until cancelled."""
        async with httpx.AsyncClient(
            timeout=self.settings.webhook_timeout_s, follow_redirects=False, trust_env=False
        ) as http:
            try:
                while True:
                    await self._step(http)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.settings.webhook_poll_s):
                            await self._wake.wait()
                    self._wake.clear()
            finally:
                for task in self._active.values():
                    task.cancel()
                await asyncio.gather(*self._active.values(), return_exceptions=True)

    async def load(self) -> WebhookStore | None:
        """Open the store once its file exists and read the endpoints; None while there is no file."""
        checked = utcnow()
        if self.store is None:
            if not self.settings.webhooks_file.exists():
                self._since = checked - REGISTRATION_MARGIN
                return None
            self.store = await asyncio.to_thread(WebhookStore, self.settings.webhooks_file)
        self.endpoints = await asyncio.to_thread(self.store.endpoints)
        self._secrets = await asyncio.to_thread(self.store.secrets)
        self._since = checked - REGISTRATION_MARGIN
        return self.store

    async def _step(self, http: httpx.AsyncClient) -> None:
        # Taken before the endpoints are read: every event matched here was folded before that read, so
        # an endpoint registered before the event was written is in the list (see WebhookStore.add_endpoint).
        events, self._incoming = self._incoming, []
        store = await self.load()
        if store is None:
            return
        self.keys.refresh()
        if events:
            matched = [
                (ep, env)
                for env in events
                for ep in self.endpoints
                if wants(ep, env) and self.keys.still_valid(ep.key_id)
            ]
            if matched:
                await asyncio.to_thread(store.enqueue, matched)
        # A share of the slots per endpoint: a dead receiver's retries never hold up the others.
        for endpoint in self.endpoints:
            if not self.keys.still_valid(endpoint.key_id):
                continue  # a revoked key's endpoint is sent nothing more, pending deliveries included
            busy = {event for ep, event in self._active if ep == endpoint.id}
            room = min(
                self.settings.webhook_max_in_flight_per_endpoint - len(busy),
                self.settings.webhook_max_in_flight - len(self._active),
            )
            secret = self._secrets.get(endpoint.id)
            if room > 0 and secret is not None:
                for job in await asyncio.to_thread(store.pending, endpoint, secret, room, busy):
                    self._start(http, store, job)

    def _start(self, http: httpx.AsyncClient, store: WebhookStore, job: Job) -> None:
        name = (job.endpoint.id, job.event_id)
        self._active[name] = task = asyncio.create_task(self._deliver(http, store, job))
        task.add_done_callback(lambda _: self._done(name))

    def _done(self, name: tuple[str, str]) -> None:
        self._active.pop(name, None)
        self._wake.set()

    async def _deliver(self, http: httpx.AsyncClient, store: WebhookStore, job: Job) -> None:
        left = max(1, self.settings.webhook_attempts - job.round_attempts)
        try:
            async for attempt in stamina.retry_context(
                on=AttemptFailed,
                attempts=left,
                timeout=None,
                wait_initial=self.settings.webhook_backoff_initial_s,
                wait_max=self.settings.webhook_backoff_max_s,
                wait_jitter=self.settings.webhook_backoff_initial_s,
                wait_exp_base=2,
            ):
                with attempt:
                    await self._attempt(http, store, job, last=attempt.num == left)
        except AttemptFailed:
            log.warning("webhook_dead", endpoint=job.endpoint.id, event_id=job.event_id)
        except Abandoned:
            log.info("webhook_abandoned", endpoint=job.endpoint.id, event_id=job.event_id)

    async def _attempt(self, http: httpx.AsyncClient, store: WebhookStore, job: Job, *, last: bool) -> None:
        if job.endpoint.id not in {ep.id for ep in self.endpoints} or not self.keys.still_valid(
            job.endpoint.key_id
        ):
            raise Abandoned  # removed, or its key revoked, while the delivery was being retried
        start = time.perf_counter()
        status: int | None = None
        error = ""
        try:
            await self._check_target(job.endpoint.url)
            stamp = int(utcnow().timestamp())
            sent = headers(job.secret, job.event_id, stamp, job.body)
            response = await http.post(job.endpoint.url, content=job.body, headers=sent)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except (httpx.HTTPError, OSError, AttemptFailed) as exc:
            error = str(exc) or type(exc).__name__
        state = (
            DeliveryState.DELIVERED if not error else DeliveryState.DEAD if last else DeliveryState.PENDING
        )
        took = (time.perf_counter() - start) * 1000
        record = Attempt(at=utcnow(), status=status, error=error[:500], duration_ms=round(took, 2))
        await asyncio.to_thread(store.record_attempt, job, record, state)
        if error:
            raise AttemptFailed(error)

    async def _check_target(self, url: str) -> None:
        if self.settings.webhook_allow_private:
            return
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if await resolves_inward(parts.hostname or "", port):
            raise AttemptFailed("the webhook host resolves to a private or loopback address")


@asynccontextmanager
async def delivering(settings: Settings, keys: KeyStore) -> AsyncIterator[Deliverer]:
    """A deliverer working in the background; attach `on_folded` to the ledger before it folds."""
    deliverer = Deliverer(settings, keys)
    # Endpoints known before the first event is folded: the events of the catch-up are matched to them.
    await deliverer.load()
    task: asyncio.Task[None] | None = None
    try:
        task = asyncio.create_task(deliverer.run(), name="webhooks")
        yield deliverer
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if deliverer.store is not None:
            deliverer.store.close()
