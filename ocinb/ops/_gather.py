"""Concurrency helpers of the operations: ``gather`` with an optional progress bar, and a single-flight map."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

PROGRESS_THRESHOLD = 20
"""Above this many concurrent fetches a ``tqdm.auto`` progress bar is shown (unless ``progress=False``)."""


async def gather_progress(aws: Sequence[Awaitable[T]], *, progress: bool | None = None,
                          desc: str | None = None) -> list[T]:
    """``asyncio.gather`` with a ``tqdm.auto`` bar when there are many items (``progress=False`` hides it)."""
    show = progress if progress is not None else len(aws) > PROGRESS_THRESHOLD
    if not show or not aws:
        return list(await asyncio.gather(*aws))
    from tqdm.auto import tqdm

    bar = tqdm(total=len(aws), desc=desc, leave=False)

    async def tick(aw: Awaitable[T]) -> T:
        try:
            return await aw
        finally:
            bar.update(1)

    try:
        return list(await asyncio.gather(*(tick(aw) for aw in aws)))
    finally:
        bar.close()


class SingleFlight:
    """One in-flight or finished fetch per key, so concurrent rows never fetch the same digest twice."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Future[Any]] = {}

    async def run(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """The result of ``fetch()`` for ``key``, started once however many callers ask."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._tasks[key] = task
        return await asyncio.shield(task)
