"""The job runner behind the widgets: background jobs on ocinb's loop, stale results dropped, one status line each.

Nothing here knows registries: a :class:`JobSlot` runs coroutines for one widget, a :class:`PendingJobs` counts
what a chain of widgets has in flight (so ``wait()`` can block until it settles), a :class:`StatusBoard`
shows loading and error lines, and :class:`QuietUpdates` marks programmatic changes that must not propagate.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Literal

import ipywidgets

from .._sync import loop_thread
from ..errors import NotFoundError, OcinbError, UnauthorizedError
from ..views import esc

__all__ = ["JobSlot", "PendingJobs", "QuietUpdates", "StatusBoard", "describe_error"]

log = logging.getLogger("ocinb.widgets")

LineKind = Literal["loading", "error", "info"]

_LINE_STYLE: dict[str, tuple[str, str, str]] = {
    "error": ("ocinb-error", "color:#b00020", "⚠ "),
    "loading": ("ocinb-loading", "color:#555", "⏳ "),
    "info": ("ocinb-info", "color:#555", ""),
}


def describe_error(exc: BaseException) -> str:
    """One line a person can act on, for the status widget."""
    if isinstance(exc, UnauthorizedError):
        return f"unauthorised: {exc} (pass username/password or log in with docker login)"
    if isinstance(exc, NotFoundError):
        return f"not found: {exc}"
    if isinstance(exc, OcinbError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out talking to the registry"
    return f"unexpected {type(exc).__name__}: {exc}"


class PendingJobs:
    """How many jobs a chain of widgets has in flight, so ``wait()`` can block until all of them settle."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._count = 0

    def add(self) -> None:
        with self._cond:
            self._count += 1

    def done(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    @property
    def count(self) -> int:
        return self._count

    def wait(self, timeout: float | None) -> None:
        """Block until no job is in flight; TimeoutError after ``timeout`` seconds, RuntimeError on the loop."""
        if threading.current_thread() is loop_thread().thread:
            raise RuntimeError("wait() was called from ocinb's loop thread; it would never return")
        with self._cond:
            if not self._cond.wait_for(lambda: self._count == 0, timeout):
                raise TimeoutError(f"{self._count} registry request(s) still pending after {timeout} s")


class StatusBoard:
    """One status line per source (loading, error or info), rendered escaped into an HTML widget."""

    def __init__(self) -> None:
        self.widget = ipywidgets.HTML(value="", layout=ipywidgets.Layout(min_height="1.5em"))
        self.widget.add_class("ocinb-status")
        self._lock = threading.Lock()
        self._lines: dict[str, tuple[LineKind, str]] = {}

    def set(self, key: str, kind: LineKind, text: str) -> None:
        with self._lock:
            self._lines[key] = (kind, text)
            self._render()

    def clear(self, key: str) -> None:
        with self._lock:
            if self._lines.pop(key, None) is not None:
                self._render()

    def get(self, key: str) -> tuple[LineKind, str] | None:
        return self._lines.get(key)

    def errors(self) -> list[str]:
        """The error lines now shown, in the order their sources first reported."""
        return [text for kind, text in list(self._lines.values()) if kind == "error"]

    def _render(self) -> None:
        parts = []
        for kind, text in self._lines.values():
            css_class, style, mark = _LINE_STYLE[kind]
            parts.append(f'<div class="{css_class}" style="{style}">{mark}{esc(text)}</div>')
        self.widget.value = "".join(parts)


class QuietUpdates:
    """Marks widget changes this thread makes programmatically, so observers can tell them from a user's.

    Per thread: a user's change on the kernel thread while the loop thread applies a result must still count.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def depth(self) -> int:
        """How deep this thread is in :meth:`quietly` (0: a change now is the user's)."""
        return int(getattr(self._local, "depth", 0))

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        self._local.depth = self.depth + 1
        try:
            yield
        finally:
            self._local.depth -= 1


class JobSlot:
    """At most one job of one widget in flight: a newer job supersedes the older, whose result is dropped.

    ``key`` names the widget's line on the shared :class:`StatusBoard`; every job counts in ``pending``.
    """

    def __init__(self, key: str, board: StatusBoard, pending: PendingJobs) -> None:
        self.key = key
        self.board = board
        self.pending = pending
        self._generation = 0
        self._future: concurrent.futures.Future[Any] | None = None
        self._lock = threading.Lock()

    def show(self, kind: LineKind, text: str) -> None:
        """Put ``text`` on this widget's status line."""
        self.board.set(self.key, kind, text)

    @property
    def line(self) -> tuple[LineKind, str] | None:
        """This widget's status line (kind, text), if it has one."""
        return self.board.get(self.key)

    def cancel(self, clear_status: bool = True) -> None:
        """Forget the job in flight (its result will be dropped) and clear this widget's status line."""
        with self._lock:
            self._generation += 1
            old, self._future = self._future, None
        if old is not None:
            old.cancel()
        if clear_status:
            self.board.clear(self.key)

    def run(self, label: str, coro: Coroutine[Any, Any, Any], apply: Callable[[Any], None],
            failed: Callable[[BaseException], None] | None = None) -> None:
        """Run ``coro`` on the background loop; when it ends ``apply`` its result (or call ``failed`` with its
        error, shown on the status line) unless a newer job came meanwhile."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            old = self._future
            self.board.set(self.key, "loading", f"{label}…")
            self.pending.add()
            future = asyncio.run_coroutine_threadsafe(coro, loop_thread().loop)
            self._future = future
        if old is not None:
            old.cancel()  # its done-callback runs here, sees a newer generation and drops the result

        def done(fut: concurrent.futures.Future[Any]) -> None:
            try:
                with self._lock:  # the status line changes only while this is still the newest job
                    if generation != self._generation or fut.cancelled():
                        return
                    self._future = None
                    exc = fut.exception()
                    if exc is None:
                        self.board.clear(self.key)
                    else:
                        log.debug("ocinb widget load failed: %s", label, exc_info=exc)
                        self.board.set(self.key, "error", describe_error(exc))
                if exc is None:
                    apply(fut.result())
                elif failed is not None:
                    failed(exc)
            except Exception as exc:
                log.debug("ocinb widget update failed", exc_info=True)
                self.board.set(self.key, "error", f"could not show the result: {type(exc).__name__}: {exc}")
            finally:
                self.pending.done()

        future.add_done_callback(done)
