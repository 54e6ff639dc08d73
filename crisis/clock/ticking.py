"""The loop every clock of an API process runs: one tick per period, a failed tick logged, never fatal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


async def tick_forever(tick: Callable[[], Awaitable[None]], every_s: float, failed: str) -> None:
    """Call `tick` every `every_s` seconds until cancelled; a tick that fails is logged as `failed` and the
    next one runs (a broker away for a moment must not stop the clock for good)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(failed)
