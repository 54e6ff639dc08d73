"""Composition root for servers: bus, ledger, API and gateway, each lifetime closed in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import uvicorn

from crisis.api.app import create_app
from crisis.api.problems import BodyLimit
from crisis.api.transport import deadlines
from crisis.audit.forward import HttpSink
from crisis.audit.reads import LedgerSink, ReadAudit, ReadsSink, reads_running
from crisis.bus.adapters import open_bus
from crisis.clock.retention import Retention
from crisis.clock.ticker import Clock
from crisis.config import Settings
from crisis.crypto.adapters import open_keyring
from crisis.crypto.sealed import SealedBus
from crisis.keys import KeyStore
from crisis.ledger import Ledger, Listener
from crisis.store.sqlite import SqliteStorage, StoreBusy
from crisis.webhooks.deliverer import delivering

if TYPE_CHECKING:
    from crisis.bus.base import Bus

log = structlog.get_logger(__name__)


class StartupError(RuntimeError):
    """A server could not start (a port in use, a broker that does not answer)."""


@dataclass
class Running:
    settings: Settings
    bus: Bus
    ledger: Ledger
    keys: KeyStore
    api_url: str = ""
    ws_url: str = ""


@asynccontextmanager
async def ledger_running(
    bus: Bus,
    settings: Settings,
    *,
    ready_timeout: float = 900.0,
    listeners: Sequence[Listener] = (),
) -> AsyncIterator[Ledger]:
    """A ledger folding the log in the background; entered once it has caught up (a first fold of a long
    log into an empty store takes minutes; every batch folded is kept, so a restart continues it).
    On a SealedBus it seals what it publishes and destroys the keys of every erasure it folds."""
    store = _open_store(settings)
    sealer = bus if isinstance(bus, SealedBus) else None
    ledger = Ledger(
        bus,
        verdict_timeout=settings.publish_timeout_s,
        poll=settings.kafka_fetch_wait_ms / 1000,
        store=store,
        sealer=sealer,
    )
    if sealer is not None:
        ledger.listeners.append(sealer.on_folded)
    ledger.listeners.extend(listeners)
    task = asyncio.create_task(ledger.run(), name="ledger")
    try:
        async with asyncio.timeout(ready_timeout):
            waiter = asyncio.create_task(ledger.caught_up.wait())
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                waiter.cancel()
                task.result()  # re-raises the reader's failure
        yield ledger
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if store is not None:
            store.close()


def _state_dir(settings: Settings) -> Path | None:
    """Where this process keeps its local store (and its key file), or None (the fold in memory)."""
    if settings.state_dir is None or settings.state_store is False:
        return None
    if settings.bus_target.startswith("memory://"):
        # The memory bus is this process's alone and gone at exit: there is no log to restore beside.
        return None
    return settings.state_dir


def _open_store(settings: Settings) -> SqliteStorage | None:
    """The local store named by CRISIS_STATE_DIR, or None (the fold in memory)."""
    state_dir = _state_dir(settings)
    if state_dir is None:
        return None
    try:
        return SqliteStorage(state_dir)
    except StoreBusy as exc:
        raise StartupError(f"{exc}: give each process its own CRISIS_STATE_DIR") from exc


@asynccontextmanager
async def api_running(
    settings: Settings, ledger: Ledger, keys: KeyStore, reads: ReadAudit | None = None
) -> AsyncIterator[str]:
    """uvicorn serving the API on settings.api_host:api_port (0 = a free port); yields its URL."""
    app = BodyLimit(create_app(settings, ledger, keys, reads), settings.max_body_bytes)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        http=deadlines(head_s=settings.http_head_timeout_s, body_s=settings.http_body_timeout_s),
        ssl_certfile=settings.api_tls_cert_file,
        ssl_keyfile=settings.api_tls_key_file,
    )
    server = uvicorn.Server(config)
    # _serve, not serve: serve() would take over SIGINT/SIGTERM, which belong to the CLI.
    task = asyncio.create_task(server._serve(), name="api")
    try:
        while not server.started:
            if task.done():
                # uvicorn reports a failed bind by exiting; say what failed instead.
                raise StartupError(f"the API could not listen on {settings.api_host}:{settings.api_port}")
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if settings.api_tls_cert_file is not None else "http"
        yield f"{scheme}://{settings.api_host}:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task


@asynccontextmanager
async def clock_running(ledger: Ledger) -> AsyncIterator[Clock]:
    """The deadline clock of an API process, ticking in the background."""
    clock = Clock(ledger)
    task = asyncio.create_task(clock.run(), name="clock")
    try:
        yield clock
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@asynccontextmanager
async def retention_running(ledger: Ledger, tick_s: float) -> AsyncIterator[Retention]:
    """Retention after closure in an API process, ticking in the background."""
    expiry = Retention(ledger, tick_s=tick_s)
    task = asyncio.create_task(expiry.run(), name="retention")
    try:
        yield expiry
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@asynccontextmanager
async def stack(settings: Settings, *, api: bool = True, gateway: bool = True) -> AsyncIterator[Running]:
    """Everything a server process runs, on the bus settings.bus_target names (Kafka or memory)."""
    if not settings.bus_target:
        raise StartupError("no bus named: set CRISIS_BUS_URL (kafka://HOST:PORT or memory://)")
    if not api and gateway and settings.environment == "production" and settings.audit_token is None:
        raise StartupError(
            "a gateway-only process in production needs CRISIS_AUDIT_TOKEN (or CRISIS_AUDIT_TOKEN_FILE): "
            "it sends its read audit to the API, and may not write to Kafka itself"
        )
    keys = KeyStore(settings.keys_file)
    deliver = settings.webhook_deliverer if settings.webhook_deliverer is not None else api and gateway
    async with contextlib.AsyncExitStack() as parts:
        raw = await parts.enter_async_context(open_bus(settings))
        # Every reader of the log reads it through the data keys (crisis.crypto). Only a process that runs
        # the API writes to Kafka: a gateway-only one forgets erased keys and leaves destroying them to it.
        keyring = await parts.enter_async_context(
            open_keyring(settings, destroys=api, state_dir=_state_dir(settings))
        )
        bus = SealedBus(raw, keyring, destroys=api)
        # The deliverer listens from the log's first event: what arrived while no deliverer ran is sent.
        listeners = (
            [(await parts.enter_async_context(delivering(settings, keys))).on_folded] if deliver else []
        )
        ledger = await parts.enter_async_context(ledger_running(bus, settings, listeners=listeners))
        running = Running(settings, bus, ledger, keys)
        # Left after the servers stop, so its last write holds every read they served.
        reads = ReadAudit()
        sink = LedgerSink(ledger) if api else _forwarder(settings) if gateway else None
        if sink is not None:
            await parts.enter_async_context(reads_running(sink, reads, settings.audit_reads_interval_s))
        if api:
            running.api_url = await parts.enter_async_context(api_running(settings, ledger, keys, reads))
            # Every API process runs the clock: the fold keeps each overdue event once.
            await parts.enter_async_context(clock_running(ledger))
            await parts.enter_async_context(retention_running(ledger, settings.retention_tick_s))
        if gateway:
            from crisis.gateway.server import Gateway

            gw = await parts.enter_async_context(Gateway(settings, ledger, keys, bus, reads))
            scheme = "wss" if settings.gateway_tls_cert_file is not None else "ws"
            running.ws_url = f"{scheme}://{settings.gateway_host}:{gw.port}/v1/stream"
        yield running


def _forwarder(settings: Settings) -> ReadsSink | None:
    """Where a gateway-only process sends its read audit: the API, with the service token (None: nowhere)."""
    if settings.audit_token is None:
        log.warning(
            "audit_reads_kept_in_memory",
            reason="no CRISIS_AUDIT_TOKEN: this gateway's read audit is counted but reaches no log; set "
            "CRISIS_AUDIT_TOKEN (the API's too) and CRISIS_AUDIT_API_URL to send it to the API",
        )
        return None
    return HttpSink(settings.audit_api_target, settings.audit_token)
