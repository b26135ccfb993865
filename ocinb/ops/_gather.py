"""Concurrency helpers of the operations: ``gather`` with an optional progress bar, and a single-flight map."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from .._http.budget import bulk, latest_quota
from ..errors import RateBudgetExceededError

T = TypeVar("T")

PROGRESS_THRESHOLD = 20
"""Above this many concurrent fetches a ``tqdm.auto`` progress bar is shown (unless ``progress=False``)."""


async def gather_progress(aws: Sequence[Awaitable[T]], *, progress: bool | None = None,
                          desc: str | None = None) -> list[T]:
    """``asyncio.gather`` as bulk work, with a ``tqdm.auto`` bar when there are many items (``progress=False``
    hides it) showing the rate-limit quota left.

    Bulk work keeps the rate budget's reserve: when it is reached, the error raised carries in ``done`` the
    results finished so far (in order, ``None`` for the unfinished).
    """
    show = progress if progress is not None else len(aws) > PROGRESS_THRESHOLD
    bar: Any = None
    if show and aws:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(aws), desc=desc, leave=False)

    async def tick(aw: Awaitable[T]) -> T:
        try:
            return await aw
        finally:
            if bar is not None:
                quota = latest_quota()
                if quota is not None:
                    bar.set_postfix(quota=quota.remaining, refresh=False)
                bar.update(1)

    try:
        with bulk():
            results = await asyncio.gather(*(tick(aw) for aw in aws), return_exceptions=True)
    finally:
        if bar is not None:
            bar.close()
    stop: RateBudgetExceededError | None = None
    for r in results:
        if isinstance(r, RateBudgetExceededError):
            stop = stop or r
        elif isinstance(r, BaseException):
            raise r
    if stop is not None:
        raise stop.with_done([None if isinstance(r, BaseException) else r for r in results])
    return cast(list[T], results)


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
