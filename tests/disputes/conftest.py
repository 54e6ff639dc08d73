"""Actors (one key per role) over the full stack: API and gateway on one bus, real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from tests.api.conftest import Actors
from tests.conftest import Stack


@pytest_asyncio.fixture
async def actors(full_stack: Stack) -> AsyncIterator[Actors]:
    async with httpx.AsyncClient(base_url=full_stack.api_url, timeout=30) as http:
        yield Actors(full_stack, http)
