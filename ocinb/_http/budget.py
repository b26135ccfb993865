"""The rate-limit budget of one registry host: requests per second, and a reserve of Docker Hub's quota.

Docker Hub counts manifest GETs against ``ratelimit-remaining`` (HEADs are free). Bulk work (anything run
under :func:`bulk`, which ``gather_progress`` and the crawl enter) never spends the last ``reserve`` of
them: it stops with :class:`~ocinb.errors.RateBudgetExceededError`, or with ``wait=True`` waits for the
window to reopen (probing with free HEADs). Single interactive calls may still spend the reserve.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import RateBudgetExceededError
from .headers import parse_ratelimit

__all__ = ["Budget", "QuotaSeen", "RateBudget", "Turn", "bulk", "counts_against_quota", "in_bulk", "latest_quota"]

DEFAULT_WAIT = 60.0
"""Seconds between probes while waiting, when the registry's window and limit are not known."""


@dataclass(frozen=True)
class RateBudget:
    """How much of a registry bulk work may use: ``requests_per_second`` per host (all requests), and a
    ``reserve`` of ``ratelimit-remaining`` it never spends; at the reserve it stops, or waits if ``wait``."""

    requests_per_second: float | None = None
    reserve: int | None = None
    wait: bool = False

    def __post_init__(self) -> None:
        rps = self.requests_per_second
        if rps is not None and (not isinstance(rps, int | float) or not math.isfinite(rps) or rps <= 0):
            raise ValueError(f"RateBudget.requests_per_second must be a positive number, not {rps!r}")
        if self.reserve is not None and (not isinstance(self.reserve, int) or self.reserve < 0):
            raise ValueError(f"RateBudget.reserve must be a whole number ≥ 0, not {self.reserve!r}")


@dataclass(frozen=True)
class QuotaSeen:
    """The rate-limit quota a host last reported (what the progress bars show)."""

    host: str
    remaining: int
    limit: int | None


_BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("ocinb_bulk", default=False)
_latest: QuotaSeen | None = None


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Mark the requests made inside (and in tasks started inside) as bulk work, which keeps the reserve."""
    token = _BULK.set(True)
    try:
        yield
    finally:
        _BULK.reset(token)


def in_bulk() -> bool:
    """Whether the current task is doing bulk work."""
    return _BULK.get()


def latest_quota() -> QuotaSeen | None:
    """The quota most recently reported by any host in this process, or None if none sent one."""
    return _latest


def counts_against_quota(method: str, url: str) -> bool:
    """Whether Docker Hub counts this request: a GET of a manifest (HEADs and blobs are free)."""
    return method == "GET" and "/manifests/" in urlsplit(url).path


Probe = Callable[[], Awaitable[tuple[int, Mapping[str, str]]]]
"""A free request (a HEAD of the same manifest) that reports the current quota: (status, headers)."""


class Turn:
    """One request's turn in a :class:`Budget`; :meth:`reply` notes the quota the reply reports."""

    def __init__(self, budget: Budget, counted: bool) -> None:
        self.budget = budget
        self.counted = counted
        self.done = False

    def reply(self, status: int, headers: Mapping[str, str]) -> None:
        self.done = True
        self.budget.after(self.counted, status, headers)


class Budget:
    """The budget of one host, shared by every request its core sends.

    The quota estimate is conservative: each counted request lowers it before it is sent, and a reply
    raises it only when it cannot be stale (replies of overlapping requests may arrive out of order).
    """

    def __init__(self, policy: RateBudget | None, host: str, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.policy = policy or RateBudget()
        self.host = host
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._estimate: int | None = None
        self._limit: int | None = None
        self._window: int | None = None
        self._metered: bool | None = None
        self._pending = 0
        self._run_min: int | None = None
        self._changed = asyncio.Event()

    @property
    def remaining(self) -> int | None:
        """The quota left as this budget reckons it (None until the registry has reported one)."""
        return self._estimate

    @property
    def active(self) -> bool:
        return self.policy.requests_per_second is not None or self.policy.reserve is not None

    async def before(self, method: str, url: str, probe: Probe | None = None) -> bool:
        """Wait for this request's turn and check the reserve; return whether the request counts.

        Raises :class:`RateBudgetExceededError` when bulk work would spend into the reserve (unless ``wait``).
        """
        if not self.active:
            return False
        await self._pace()
        counted = counts_against_quota(method, url)
        if not counted:
            return False
        reserve = self.policy.reserve
        probed = False
        while reserve is not None and in_bulk() and self._metered is not False:
            if self._estimate is None:
                if self._pending == 0:
                    break  # the first counted request goes alone, to learn the quota
                await self._wait_change()
                continue
            if self._estimate - 1 >= reserve:
                break
            if self._pending > 0:  # in-flight replies may report a fresher (higher) quota
                await self._wait_change()
                continue
            if not self.policy.wait:
                if probe is not None and not probed:  # the window may have reopened since: ask, for free
                    probed = True
                    await self._probe(probe)
                    continue
                raise RateBudgetExceededError(self.host, remaining=self._estimate, reserve=reserve)
            await self._wait_window(probe)
        if self._pending == 0:
            self._run_min = None  # a new run of overlapping counted requests
        self._pending += 1
        if self._estimate is not None:
            self._estimate -= 1
        return True

    @contextlib.asynccontextmanager
    async def turn(self, method: str, url: str, probe: Probe | None = None) -> AsyncIterator[Turn]:
        """:meth:`before` and :meth:`after` around one exchange: ``turn.reply(resp)`` notes the reply."""
        t = Turn(self, await self.before(method, url, probe))
        try:
            yield t
        finally:
            if not t.done:
                self.after(t.counted, None, None)

    def after(self, counted: bool, status: int | None, headers: Mapping[str, str] | None, *,
              fresh: bool = False) -> None:
        """Note a reply (``status`` None when the request failed on the wire) and the quota it reports.

        Within a window the quota only falls, so once every counted request of an overlapping run has
        answered, the lowest quota they reported is the true one (replies may arrive out of order); until then
        a reply may only lower the estimate. A probe (``fresh``, nothing in flight) is taken as it is.
        """
        if counted:
            self._pending -= 1
        rem = parse_ratelimit(headers.get("ratelimit-remaining")) if headers is not None else None
        if rem is not None:
            global _latest
            lim = parse_ratelimit(headers.get("ratelimit-limit")) if headers is not None else None
            self._metered = True
            self._limit = lim[0] if lim else self._limit
            self._window = rem[1] or (lim[1] if lim else None) or self._window
            value = rem[0]
            if counted or self._pending > 0:
                self._run_min = value if self._run_min is None else min(self._run_min, value)
            if self._estimate is None or (fresh and self._pending == 0):
                self._estimate = value - self._pending
            elif counted and self._pending == 0 and self._run_min is not None:
                self._estimate = self._run_min
            else:
                self._estimate = min(self._estimate, value - self._pending)
            _latest = QuotaSeen(self.host, self._estimate, self._limit)
        elif counted and status is not None and status < 400 and self._metered is None:
            self._metered = False  # a manifest GET answered without a quota: this registry has none
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    async def _pace(self) -> None:
        rps = self.policy.requests_per_second
        if rps is None:
            return
        now = self._clock()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / rps
        if slot > now:
            await self._sleep(slot - now)

    async def _wait_window(self, probe: Probe | None) -> None:
        """Sleep for about one request's share of the window, then ask the registry (for free) what remains."""
        step = self._window / self._limit if self._window and self._limit else DEFAULT_WAIT
        await self._sleep(step)
        if self._pending > 0:
            return
        if probe is None:
            self._estimate = None  # nothing to ask: let one request learn the quota again
            return
        await self._probe(probe)

    async def _probe(self, probe: Probe) -> None:
        status, headers = await probe()
        self.after(False, status, headers, fresh=True)
