"""A gateway alone in its own process (settings from CRISIS_* variables), for tests that kill it.

python -m tests.gateway.gateway_process      # prints "ready <port>" once it serves
"""

from __future__ import annotations

import asyncio

from crisis.config import Settings
from crisis.logging import configure_logging
from crisis.runtime import stack


async def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)  # to stderr: stdout carries the ready line only
    async with stack(settings, api=False) as running:
        print("ready", running.ws_url.split(":")[2].split("/")[0], flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
