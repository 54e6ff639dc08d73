"""What `crisis up`, `crisis serve` and `crisis broker` run (loaded only when one of them runs)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog
from pydantic import ValidationError

from crisis import heap
from crisis.broker import BrokerError, EmbeddedBroker, port_is_free, run_broker
from crisis.config import Settings
from crisis.domain.enums import Role
from crisis.keys import KeyStore
from crisis.logging import configure_logging
from crisis.orgs import OrgRegistry
from crisis.runtime import StartupError, stack
from crisis.store.local import with_local_store

log = structlog.get_logger(__name__)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@asynccontextmanager
async def _kafka_for(settings: Settings) -> AsyncIterator[tuple[Settings, int]]:
    """The configured bus (Kafka or memory), or an embedded broker with its log restored from disk;
    and how many events were restored."""
    if settings.bus_target:
        yield settings, 0
        return
    from crisis.bus.journal import JournalError
    from crisis.bus.kafka import restore_journal

    journal = settings.kafka_journal_dir or settings.keys_file.parent / "log"
    async with EmbeddedBroker() as broker:
        # The embedded broker cannot run the idempotent producer (InitProducerId fails).
        embedded = settings.model_copy(
            update={
                "kafka_bootstrap": broker.bootstrap,
                "kafka_idempotence": False,
                "kafka_journal_dir": journal,
            }
        )
        try:
            restored = await restore_journal(embedded)
        except JournalError as exc:
            raise StartupError(f"the log in {journal} could not be restored: {exc}") from exc
        yield embedded, restored


def _first_key(settings: Settings) -> str | None:
    """On a fresh directory, one coordinator key so the newcomer can act at once."""
    store = KeyStore(settings.keys_file)
    if store.list():
        return None
    OrgRegistry(settings.orgs_file).add("local-hub", label="created by crisis up")
    _, key = store.add("local-hub", Role.COORDINATOR, label="created by crisis up")
    return key


def _console_origins(settings: Settings) -> Settings:
    """The console page is served by the API: its origin must be allowed to open the stream."""
    origins = [f"http://{host}:{settings.api_port}" for host in ("127.0.0.1", "localhost")]
    merged = list(dict.fromkeys([*settings.gateway_allowed_origins, *origins]))
    return settings.model_copy(update={"gateway_allowed_origins": merged})


def _bus_line(settings: Settings, effective: Settings) -> str:
    if effective.bus_target.startswith("memory://"):
        return "  bus       memory://  (this process only: nothing is kept when it stops)"
    return f"  Kafka     {effective.bus_target.removeprefix('kafka://')}" + (
        "" if settings.bus_target else "  (embedded)"
    )


async def _up(settings: Settings) -> None:
    key = _first_key(settings)
    settings = with_local_store(_console_origins(settings), "up")
    async with _kafka_for(settings) as (effective, restored), stack(effective) as running:
        lines = [
            "crisis-bus is up",
            f"  console   {running.api_url}/",
            f"  API       {running.api_url}/v1   (docs {running.api_url}/docs)",
            f"  stream    {running.ws_url}",
            _bus_line(settings, effective),
            f"  keys      {effective.keys_file}",
        ]
        if effective.state_dir is not None:
            lines.append(f"  state     {effective.state_dir}  (a local store of the folded log)")
        if effective.kafka_journal_dir is not None:
            lines.append(f"  log       {effective.kafka_journal_dir}  ({restored} events restored)")
        if key:
            lines.append(f"  coordinator key for org local-hub (shown once):\n  {key}")
        lines.append("Ctrl-C stops everything.")
        print("\n".join(lines), flush=True)
        heap.settle()
        await _until_signalled()
        log.info("stopping")


async def _serve(settings: Settings, what: str) -> None:
    if not settings.bus_target:
        raise SystemExit(
            "crisis serve needs CRISIS_BUS_URL (kafka://HOST:PORT, or memory:// for one process) or "
            "CRISIS_KAFKA_BOOTSTRAP (crisis up runs an embedded broker)"
        )
    if settings.bus_target.startswith("memory://"):
        log.warning("memory_bus", note="the log lives in this process only and is gone when it stops")
    settings = with_local_store(settings, what)
    async with stack(settings, api=what == "api", gateway=what == "gateway") as running:
        state = f" (state in {settings.state_dir})" if settings.state_dir is not None else ""
        print(f"crisis {what} serving {running.api_url or running.ws_url}{state}", flush=True)
        heap.settle()
        await _until_signalled()


def _settings(**overrides: object) -> Settings:
    try:
        base = Settings()
        return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise SystemExit(f"invalid settings: {exc}") from exc


def _check_ports(*addresses: tuple[str, int, str]) -> None:
    """Fail before starting anything, naming the flag that fixes it."""
    for host, port, flag in addresses:
        if port and not port_is_free(host, port):
            raise StartupError(f"{host}:{port} is already in use (choose another with {flag})")


def _run(main: Coroutine[Any, Any, None]) -> int:
    heap.tune()  # before the process reads the log: restore and catch-up allocate as much as serving
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        pass
    except (StartupError, BrokerError, OSError) as exc:
        print(f"crisis: {exc}", file=sys.stderr)
        return 1
    return 0


def run_up(args: argparse.Namespace) -> int:
    settings = _settings(api_port=args.api_port, gateway_port=args.gateway_port)
    configure_logging(settings.log_level)
    try:
        _check_ports(
            (settings.api_host, settings.api_port, "--api-port"),
            (settings.gateway_host, settings.gateway_port, "--gateway-port"),
        )
    except StartupError as exc:
        print(f"crisis: {exc}", file=sys.stderr)
        return 1
    return _run(_up(settings))


def run_serve(args: argparse.Namespace) -> int:
    settings = _settings(
        api_port=args.port if args.what == "api" else None,
        gateway_port=args.port if args.what == "gateway" else None,
    )
    configure_logging(settings.log_level)
    return _run(_serve(settings, args.what))


def run_broker_command(args: argparse.Namespace) -> int:
    configure_logging(_settings().log_level)
    return run_broker(args.port)
