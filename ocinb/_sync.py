"""The sync facade: the async API run on one library-owned background event-loop thread.

Because the coroutines never run on the caller's loop, ``ocinb.Client`` works in plain scripts and
inside Jupyter's already-running loop alike, without ``nest_asyncio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class _LoopThread:
    """A daemon thread running one event loop forever."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="ocinb-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("ocinb's sync API was called from its own loop thread; await the async API instead")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise


_lock = threading.Lock()
_runner: _LoopThread | None = None
_runner_pid: int | None = None


def loop_thread() -> _LoopThread:
    """The process-wide background loop (recreated after a fork)."""
    global _runner, _runner_pid
    with _lock:
        if _runner is None or _runner_pid != os.getpid() or not _runner.thread.is_alive():
            _runner = _LoopThread()
            _runner_pid = os.getpid()
        return _runner


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the background loop and return its result (exceptions propagate)."""
    return loop_thread().run(coro)


async def _exhausted() -> AsyncIterator[Any]:
    return
    yield


class SyncIterator(Iterator[T]):
    """A blocking iterator over an async iterable, each step run on the background loop."""

    def __init__(self, source: AsyncIterable[T]) -> None:
        self._it: AsyncIterator[T] = source.__aiter__()
        self._source = source

    def __iter__(self) -> SyncIterator[T]:
        return self

    def __next__(self) -> T:
        async def step() -> tuple[bool, Any]:
            try:
                return True, await self._it.__anext__()
            except StopAsyncIteration:
                return False, None

        ok, value = run_sync(step())
        if not ok:
            raise StopIteration
        return value

    def close(self) -> None:
        """Finish the underlying iterator now (a blob stream gives its connection back)."""
        aclose = getattr(self._it, "aclose", None)
        if aclose is not None:
            self._it = _exhausted()
            run_sync(aclose())

    def __enter__(self) -> SyncIterator[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


_WRAPPERS: dict[type, Callable[[Any], Any]] = {}
_NAMESPACES: list[type] = []


def register_wrapper(async_type: type, wrap: Callable[[Any], Any]) -> None:
    """Results of ``async_type`` reach sync callers as ``wrap(result)`` (an async repository → its facade)."""
    _WRAPPERS[async_type] = wrap


def register_namespace(base: type) -> None:
    """Attributes that are instances of ``base`` (endpoint namespaces) are wrapped in a :class:`Facade` too."""
    _NAMESPACES.append(base)


def wrap_result(value: Any) -> Any:
    """Give async results their sync face: facades for async objects, iterators for async iterables."""
    for async_type, wrap in _WRAPPERS.items():
        if isinstance(value, async_type):
            return wrap(value)
    if isinstance(value, AsyncIterable):
        return SyncIterator(value)
    if isinstance(value, tuple):
        return tuple(wrap_result(v) for v in value)
    return value


def unwrap(value: Any) -> Any:
    """The async object behind a facade (a sync ``Client`` or ``Repository`` passed to an async method)."""
    return value._async if isinstance(value, Facade) else value


class Facade:
    """Forwards attribute access to an async object, running its coroutines on the background loop;
    facades passed as arguments are handed to the async side as the objects they wrap."""

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_async", target)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._async, name)
        if inspect.iscoroutinefunction(attr):
            @functools.wraps(attr)
            def call(*args: Any, **kwargs: Any) -> Any:
                args = tuple(unwrap(a) for a in args)
                kwargs = {k: unwrap(v) for k, v in kwargs.items()}
                return wrap_result(run_sync(attr(*args, **kwargs)))

            return call
        if inspect.isasyncgenfunction(attr) or (callable(attr) and inspect.ismethod(attr)):
            @functools.wraps(attr)
            def call_plain(*args: Any, **kwargs: Any) -> Any:
                args = tuple(unwrap(a) for a in args)
                kwargs = {k: unwrap(v) for k, v in kwargs.items()}
                return wrap_result(attr(*args, **kwargs))

            return call_plain
        if isinstance(attr, tuple(_NAMESPACES)):  # a namespace: tags, manifests, …
            return Facade(attr)
        return attr

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | {n for n in dir(self._async) if not n.startswith("_")})

    def __repr__(self) -> str:
        return f"<sync {self._async!r}>"
