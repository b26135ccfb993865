"""Helpers shared by the DataFrame, view and real-image tests: one fresh client per call, on its own loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from ocinb.cache import ContentCache
from ocinb.client import AsyncClient
from ocinb.testing import LocalRegistry

T = TypeVar("T")


def run(registry: LocalRegistry, cache_dir: Path, fn: Callable[[AsyncClient], Awaitable[T]]) -> T:
    """Run ``fn(client)`` on a fresh client of ``registry`` with its cache in ``cache_dir``."""

    async def main() -> T:
        async with AsyncClient(registry.address, cache=ContentCache(cache_dir), docker_config=False,
                               environment=False) as client:
            return await fn(client)

    return asyncio.run(main())
