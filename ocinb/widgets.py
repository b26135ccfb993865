"""ipywidgets pickers (repository, tag, platform, layer) and ``explorer``, which composes them with a live view.

Every network call runs on ocinb's background loop; results are applied from its done-callback, so the
kernel never blocks. Stale results (a newer selection came meanwhile) are dropped, and errors land in a
status widget as escaped text, never as a traceback. ``wait()`` blocks until the pending work is done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import html
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import ipywidgets
import traitlets

from ._defaults import default_client
from ._sync import loop_thread
from .client import AsyncClient
from .errors import DeniedError, NotFoundError, OcinbError, UnauthorizedError
from .models import Platform
from .ops import pull as pull_ops
from .reference import Reference, is_fallback_tag
from .views import cell_text, esc, human_size

__all__ = ["Explorer", "LayerPicker", "PlatformPicker", "RepositoryPicker", "TagPicker", "explorer"]

log = logging.getLogger(__name__)

MAX_SHOWN_TAGS = 200


def _platform_value(platform: Platform) -> str:
    """A platform as a string ``Platform.parse`` reads back, the OS version kept (``windows(10.0)/amd64``)."""
    os_part = f"{platform.os}({platform.os_version})" if platform.os_version else platform.os
    out = f"{os_part}/{platform.architecture}"
    return f"{out}/{platform.variant}" if platform.variant else out


def _describe_error(exc: BaseException) -> str:
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


class _Tracker:
    """Counts in-flight jobs of a chain of pickers, so ``wait()`` can block until all of them settle."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending = 0

    def add(self) -> None:
        with self._cond:
            self._pending += 1

    def done(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        return self._pending

    def wait(self, timeout: float | None) -> None:
        if threading.current_thread() is loop_thread().thread:
            raise RuntimeError("wait() was called from ocinb's loop thread; it would never return")
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(f"{self._pending} registry request(s) still pending after {timeout} s")


class _StatusBoard:
    """One status line per source (loading or error), rendered escaped into an HTML widget."""

    def __init__(self) -> None:
        self.widget = ipywidgets.HTML(value="", layout=ipywidgets.Layout(min_height="1.5em"))
        self.widget.add_class("ocinb-status")
        self._lock = threading.Lock()
        self._lines: dict[str, tuple[str, str]] = {}

    def set(self, key: str, kind: str, text: str) -> None:
        with self._lock:
            self._lines[key] = (kind, text)
            self._render()

    def clear(self, key: str) -> None:
        with self._lock:
            if self._lines.pop(key, None) is not None:
                self._render()

    def get(self, key: str) -> tuple[str, str] | None:
        return self._lines.get(key)

    def errors(self) -> list[str]:
        return [text for kind, text in list(self._lines.values()) if kind == "error"]

    def _render(self) -> None:
        parts = []
        for kind, text in self._lines.values():
            if kind == "error":
                parts.append(f'<div class="ocinb-error" style="color:#b00020">⚠ {html.escape(text)}</div>')
            elif kind == "loading":
                parts.append(f'<div class="ocinb-loading" style="color:#555">⏳ {html.escape(text)}</div>')
            else:
                parts.append(f'<div class="ocinb-info" style="color:#555">{html.escape(text)}</div>')
        self.widget.value = "".join(parts)


class _Picker:
    """Shared machinery: background jobs with stale-dropping, status lines, value delegation, chaining."""

    widget: Any
    _key = "picker"
    _tracker: _Tracker
    _board: _StatusBoard

    def __init__(self, client: AsyncClient | Any, upstream: _Picker | None = None) -> None:
        self.client: AsyncClient = getattr(client, "aio", client)
        if upstream is not None:
            self._tracker, self._board = upstream._tracker, upstream._board
            self.owns_status = False
            upstream._downstream.append(self._upstream_changed)
        else:
            self._tracker, self._board = _Tracker(), _StatusBoard()
            self.owns_status = True
        self._downstream: list[Callable[[], None]] = []
        self._generation = 0
        self._future: concurrent.futures.Future[Any] | None = None
        self._quiet_local = threading.local()
        self._job_lock = threading.Lock()

    @property
    def status(self) -> ipywidgets.HTML:
        """The HTML widget showing loading state and errors (shared along a chain of pickers)."""
        return self._board.widget

    @property
    def error(self) -> str | None:
        """This picker's current error text, if its last load failed."""
        line = self._board.get(self._key)
        return line[1] if line and line[0] == "error" else None

    @property
    def loading(self) -> bool:
        line = self._board.get(self._key)
        return bool(line and line[0] == "loading")

    @property
    def value(self) -> Any:
        return self.widget.value

    @value.setter
    def value(self, value: Any) -> None:
        self.widget.value = value

    def observe(self, handler: Callable[[dict[str, Any]], None], names: Any = "value", **kwargs: Any) -> None:
        """Observe the underlying widget (``names="value"`` by default), as with any ipywidget."""
        self.widget.observe(handler, names=names, **kwargs)

    def unobserve(self, handler: Callable[[dict[str, Any]], None], names: Any = "value", **kwargs: Any) -> None:
        self.widget.unobserve(handler, names=names, **kwargs)

    def wait(self, timeout: float | None = 10) -> None:
        """Block until every pending fetch of this chain of pickers is applied (TimeoutError otherwise)."""
        self._tracker.wait(timeout)

    @property
    def _quiet(self) -> int:
        """How deep this thread is in :meth:`_quietly` (per thread: a user's change on the kernel thread
        while the loop thread applies a result must still propagate)."""
        return int(getattr(self._quiet_local, "depth", 0))

    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        """Programmatic widget updates made by this thread inside this block do not propagate downstream."""
        self._quiet_local.depth = self._quiet + 1
        try:
            yield
        finally:
            self._quiet_local.depth -= 1

    def _propagate(self) -> None:
        for notify in list(self._downstream):
            notify()

    def _on_widget_value(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._propagate()

    def _upstream_changed(self) -> None:
        """Called when the picker this one is chained to settles on a new value."""

    def _cancel(self, clear_status: bool = True) -> None:
        """Forget the job in flight (its result will be dropped) and clear this picker's status line."""
        with self._job_lock:
            self._generation += 1
            old, self._future = self._future, None
        if old is not None:
            old.cancel()
        if clear_status:
            self._board.clear(self._key)

    def _run(self, label: str, coro: Coroutine[Any, Any, Any], apply: Callable[[Any], None],
             failed: Callable[[BaseException], None] | None = None) -> None:
        """Run ``coro`` on the background loop; on completion ``apply`` its result unless a newer job came."""
        with self._job_lock:
            self._generation += 1
            generation = self._generation
            old = self._future
            self._board.set(self._key, "loading", f"{label}…")
            self._tracker.add()
            future = asyncio.run_coroutine_threadsafe(coro, loop_thread().loop)
            self._future = future
        if old is not None:
            old.cancel()  # its done-callback runs here, sees a newer generation and drops the result

        def done(fut: concurrent.futures.Future[Any]) -> None:
            try:
                with self._job_lock:  # the status line changes only while this is still the newest job
                    if generation != self._generation or fut.cancelled():
                        return
                    self._future = None
                    exc = fut.exception()
                    if exc is None:
                        self._board.clear(self._key)
                    else:
                        log.debug("ocinb widget load failed: %s", label, exc_info=exc)
                        self._board.set(self._key, "error", _describe_error(exc))
                if exc is None:
                    apply(fut.result())
                elif failed is not None:
                    failed(exc)
            except Exception as exc:
                log.debug("ocinb widget update failed", exc_info=True)
                self._board.set(self._key, "error", f"could not show the result: {type(exc).__name__}: {exc}")
            finally:
                self._tracker.done()

        future.add_done_callback(done)

    def _display_widget(self) -> Any:
        return ipywidgets.VBox([self.widget, self.status]) if self.owns_status else self.widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self._display_widget()._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._display_widget())


class RepositoryPicker(_Picker):
    """A Combobox of the registry's repositories (from the catalog); names may also be typed."""

    _key = "catalog"

    def __init__(self, client: AsyncClient | Any, value: str | None = None, *, load_catalog: bool = True) -> None:
        super().__init__(client)
        self.repositories: list[str] = []
        self.widget = ipywidgets.Combobox(
            value=value or "", options=[], placeholder="repository (type or pick)", ensure_option=False,
            continuous_update=False, description="repository", layout=ipywidgets.Layout(width="100%"))
        self.widget.add_class("ocinb-repository-picker")
        self.widget.observe(self._on_widget_value, names="value")
        if load_catalog:
            self.refresh()

    def refresh(self) -> None:
        """Reload the catalog in the background."""
        self._run(f"loading the catalog of {self.client.registry}", self.client.catalog(), self._apply,
                  self._no_catalog)

    def _no_catalog(self, exc: BaseException) -> None:
        # Most public registries (Docker Hub, GHCR) do not list repositories: that is no error.
        if isinstance(exc, UnauthorizedError | DeniedError | NotFoundError):
            self._board.set(self._key, "info", f"{self.client.registry} does not list its repositories; type a name")

    def _apply(self, names: list[str]) -> None:
        self.repositories = list(names)
        self.widget.options = tuple(self.repositories)
        if not self.repositories:
            self._board.set(self._key, "info", "the catalog is empty; type a repository name")


class _ValueBox(ipywidgets.VBox):
    """A VBox carrying a Python-side ``value`` trait, so a composite picker observes like a single widget."""

    value = traitlets.Unicode(None, allow_none=True)


class TagPicker(_Picker):
    """The tags of one repository: a text filter over a Select showing at most 200 matches, usable with thousands.

    ``value`` is the chosen tag (any string may be set, typed tags included). ``repository`` is a name or
    a :class:`RepositoryPicker` to follow.
    """

    _key = "tags"

    def __init__(self, client: AsyncClient | Any, repository: str | RepositoryPicker | None = None,
                 value: str | None = None, *, max_shown: int = MAX_SHOWN_TAGS) -> None:
        upstream = repository if isinstance(repository, RepositoryPicker) else None
        super().__init__(client, upstream)
        self._source = upstream
        self.max_shown = max_shown
        self.tags: list[str] = []
        self._wanted = value
        self._repository: str | None = None
        self.input = ipywidgets.Text(value=value or "", placeholder="tag (type + Enter, or pick below)",
                                     description="tag", continuous_update=False, layout=ipywidgets.Layout(width="100%"))
        self.filter = ipywidgets.Text(value="", placeholder="filter tags", continuous_update=True,
                                      description="filter", layout=ipywidgets.Layout(width="100%"))
        self.select = ipywidgets.Select(options=[], rows=10, layout=ipywidgets.Layout(width="100%"))
        self.count = ipywidgets.HTML(value="")
        self.widget = _ValueBox(children=[self.input, self.filter, self.select, self.count],
                                layout=ipywidgets.Layout(width="100%"))
        self.widget.add_class("ocinb-tag-picker")
        self.input.add_class("ocinb-tag-input")
        self.filter.add_class("ocinb-tag-filter")
        self.select.add_class("ocinb-tag-select")
        self.input.observe(self._on_input, names="value")
        self.filter.observe(self._on_filter, names="value")
        self.select.observe(self._on_select, names="value")
        self.widget.observe(self._on_value, names="value")
        if upstream is not None:
            if upstream.value:
                self.repository = upstream.value
        elif isinstance(repository, str) and repository:
            self.repository = repository

    @property
    def repository(self) -> str | None:
        return self._repository

    @repository.setter
    def repository(self, name: str | None) -> None:
        """Show the tags of ``name`` (loaded in the background); ``None`` empties the picker."""
        self._repository = name or None
        if not name:
            self._cancel()
            self._apply([])
            return
        if self._wanted is None:
            with self._quietly():
                self.widget.value = None
        self._run(f"loading the tags of {name}", self._list(name), self._apply, lambda _exc: self._apply([]))

    @property
    def ref(self) -> str | None:
        """``repository:tag`` for the current choice."""
        return f"{self._repository}:{self.value}" if self._repository and self.value else None

    async def _list(self, name: str) -> list[str]:
        return [t for t in await self.client.repo(name).tags.list() if not is_fallback_tag(t)]

    def _upstream_changed(self) -> None:
        assert self._source is not None
        self.repository = self._source.value or None

    def _matches(self) -> list[str]:
        needle = self.filter.value.strip().lower()
        return [t for t in self.tags if needle in t.lower()] if needle else list(self.tags)

    def _show(self) -> None:
        """Fill the Select with up to ``max_shown`` tags matching the filter, keeping the choice selected."""
        matches = self._matches()
        shown = matches[: self.max_shown]
        with self._quietly():
            self.select.options = tuple(shown)
            self.select.value = self.value if self.value in shown else None
            self.input.value = self.value or ""
        total = len(self.tags)
        text = f"{len(matches)} of {total} tags match" if self.filter.value.strip() else f"{total} tags"
        if len(matches) > len(shown):
            text += f"; showing the first {len(shown)}, type to narrow"
        self.count.value = f'<span style="color:#555">{html.escape(text)}</span>'

    def _apply(self, tags: list[str]) -> None:
        self.tags = sorted(set(tags))
        wanted, self._wanted = self._wanted, None
        if wanted:
            choice: str | None = wanted
        elif "latest" in self.tags:
            choice = "latest"
        else:
            choice = self.tags[0] if self.tags else None
        with self._quietly():
            self.widget.value = choice
        self._show()
        self._propagate()

    def _on_filter(self, change: dict[str, Any]) -> None:
        self._show()

    def _on_input(self, change: dict[str, Any]) -> None:
        typed = change["new"].strip()
        if not self._quiet and typed and typed != self.value:
            self.value = typed

    def _on_select(self, change: dict[str, Any]) -> None:
        if not self._quiet and change["new"] is not None and change["new"] != self.value:
            self.value = change["new"]

    def _on_value(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        with self._quietly():
            self.select.value = change["new"] if change["new"] in self.select.options else None
            self.input.value = change["new"] or ""
        self._propagate()


class PlatformPicker(_Picker):
    """A Dropdown of the runnable platforms of a tag's index (attestations excluded; one entry for an image).

    ``ref`` is ``repository:tag`` (or ``@digest``), or a :class:`TagPicker` to follow.
    """

    _key = "platforms"

    def __init__(self, client: AsyncClient | Any, ref: str | TagPicker | None = None,
                 value: str | None = None) -> None:
        upstream = ref if isinstance(ref, TagPicker) else None
        super().__init__(client, upstream)
        self._source = upstream
        self._wanted = value
        self._ref: str | None = None
        self.digest: str | None = None
        self.is_index = False
        self.widget = ipywidgets.Dropdown(options=[], description="platform", layout=ipywidgets.Layout(width="100%"))
        self.widget.add_class("ocinb-platform-picker")
        self.widget.observe(self._on_widget_value, names="value")
        if upstream is not None:
            if upstream.ref:
                self.ref = upstream.ref
        elif isinstance(ref, str) and ref:
            self.ref = ref

    @property
    def ref(self) -> str | None:
        """The reference whose platforms are listed."""
        return self._ref

    @ref.setter
    def ref(self, ref: str | None) -> None:
        self._ref = ref or None
        if not ref:
            self._cancel()
            self._apply(None)
            return
        self._run(f"loading the platforms of {ref}", self._load(ref), self._apply, lambda _exc: self._apply(None))

    async def _load(self, ref: str) -> tuple[str, bool, list[tuple[str, str]], str | None]:
        repo, ident = self.client.parse(ref)
        top = await repo.get_manifest(ident)
        if top.is_index:
            index = top.as_index()
            options: list[tuple[str, str]] = []
            for desc in index.platform_descriptors(include_attestations=False):
                assert desc.platform is not None
                value = _platform_value(desc.platform)
                options.append((value, value))
            try:
                default_entry = pull_ops.select_platform(index, None)
                default = _platform_value(default_entry.platform) if default_entry.platform else None
            except OcinbError:
                default = None
            return str(top.digest), True, options, default
        image = top.as_manifest()
        config = await pull_ops.fetch_config(repo, image.config)
        platform = config.platform
        value = _platform_value(platform) if platform else ""
        label = f"{value} (single-platform image)" if value else "(single image, no platform)"
        return str(top.digest), False, [(label, value)], value

    def _upstream_changed(self) -> None:
        assert self._source is not None
        self.ref = self._source.ref

    @property
    def platforms(self) -> list[str]:
        """The values on offer."""
        return [value for _label, value in self.widget.options]

    def _apply(self, loaded: tuple[str, bool, list[tuple[str, str]], str | None] | None) -> None:
        if loaded is None:
            self.digest, self.is_index = None, False
            with self._quietly():
                self.widget.options = []
                self.widget.value = None
            self._propagate()
            return
        self.digest, self.is_index, options, default = loaded
        values = [value for _label, value in options]
        wanted, self._wanted = self._wanted, None
        choice = wanted if wanted in values else (default if default in values else (values[0] if values else None))
        with self._quietly():
            self.widget.options = options
            if options:
                self.widget.value = choice
        if not options:
            self._board.set(self._key, "error", f"{self._ref} lists no runnable platform")
        self._propagate()


def _layer_label(row: Any) -> str:
    """``  3    12.3 MB  RUN apt-get install …`` for one row of the layers frame."""
    step = " ".join(cell_text(row.created_by).split())
    step = step.removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
    if len(step) > 80:
        step = step[:79] + "…"
    return f"{row.position:>3}  {human_size(int(row.size)):>9}  {step or str(row.digest)[:19]}"


class LayerPicker(_Picker):
    """A Select of the layers of the resolved image (position, size, ``created_by``); ``value`` is the position.

    Follows a :class:`PlatformPicker`, or loads ``ref`` (``repository:tag``) for ``platform`` given here.
    ``frame`` is the :func:`ocinb.frames.layers_frame` DataFrame behind the options.
    """

    _key = "layers"

    def __init__(self, client: AsyncClient | Any, ref: str | PlatformPicker | None = None,
                 platform: str | None = None) -> None:
        upstream = ref if isinstance(ref, PlatformPicker) else None
        super().__init__(client, upstream)
        self._source = upstream
        self.frame: Any = None
        self.digest: str | None = None
        self.widget = ipywidgets.Select(options=[], rows=8, description="layers",
                                        layout=ipywidgets.Layout(width="100%"))
        self.widget.add_class("ocinb-layer-picker")
        self.widget.observe(self._on_widget_value, names="value")
        if upstream is not None:
            self._upstream_changed()
        elif isinstance(ref, str) and ref:
            self.load(ref, platform)

    def load(self, ref: str | None, platform: str | None = None) -> None:
        """List the layers of ``ref`` for ``platform`` (in the background); ``None`` empties the picker."""
        if not ref:
            self._cancel()
            self._apply(None)
            return
        where = f"{ref} ({platform})" if platform else ref
        self._run(f"loading the layers of {where}", self.client.layers(ref, platform or None), self._apply,
                  lambda _exc: self._apply(None))

    def _upstream_changed(self) -> None:
        assert self._source is not None
        source = self._source
        if source.ref and source.widget.options:
            self.load(source.ref, source.value)
        else:
            self.load(None)

    @property
    def layers(self) -> list[str]:
        """The option labels, one per layer in order."""
        return [label for label, _position in self.widget.options]

    @property
    def layer(self) -> dict[str, Any] | None:
        """The selected layer's row (position, digest, media_type, size, share, created_by, created)."""
        value = self.value
        if self.frame is None or not isinstance(value, int) or not 0 <= value < len(self.frame):
            return None
        return dict(self.frame.iloc[value])

    def _apply(self, frame: Any) -> None:
        self.frame = frame
        self.digest = frame.attrs.get("digest") if frame is not None else None
        rows = list(frame.itertuples(index=False)) if frame is not None else []
        with self._quietly():
            self.widget.options = [(_layer_label(row), int(row.position)) for row in rows]
            self.widget.value = None
        self._propagate()


class _ViewLoader(_Picker):
    """The explorer's background job that fetches the ``inspect`` view for the platform picker's choice."""

    _key = "view"

    def __init__(self, client: AsyncClient, upstream: PlatformPicker, apply: Callable[[Any], None]) -> None:
        super().__init__(client, upstream)
        self._source = upstream
        self._show = apply

    def _upstream_changed(self) -> None:
        source = self._source
        if not source.ref or not source.widget.options:
            self._cancel()
            self._show(None)
            return
        ref, platform = source.ref, source.value or None
        where = f"{ref} ({platform})" if platform else ref
        self._run(f"loading the view of {where}", self.client.inspect(ref, platform), self._show,
                  lambda _exc: self._show(None))


def _parse_target(target: str) -> tuple[str, str | None, str | None]:
    """``registry``, ``registry/repo`` or ``registry/repo:tag`` → (registry, repository, tag or digest)."""
    target = target.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if "/" not in target:
        return target, None, None
    ref = Reference.parse(target)
    explicit = ref.digest or ref.tag
    return ref.registry, ref.repository, explicit


class Explorer:
    """Repository, tag, platform and layer pickers over an output showing the ``inspect`` view of the choice.

    ``explorer.widget`` is the VBox; ``repository``, ``tag``, ``platform``, ``layer`` are the pickers,
    ``output`` the Output widget (the view, whose layers table has size bars, then the selected layer)
    and ``status`` the HTML widget with loading state and errors.
    """

    def __init__(self, client: AsyncClient | Any, repository: str | None = None, tag: str | None = None,
                 platform: str | None = None, *, load_catalog: bool = True) -> None:
        self.client: AsyncClient = getattr(client, "aio", client)
        self.view: Any = None
        self.output = ipywidgets.Output(layout=ipywidgets.Layout(width="100%"))
        self.output.add_class("ocinb-output")
        self.repository = RepositoryPicker(self.client, repository, load_catalog=load_catalog)
        self.tag = TagPicker(self.client, self.repository, value=tag)
        self.platform = PlatformPicker(self.client, self.tag, value=platform)
        self.layer = LayerPicker(self.client, self.platform)
        self._loader = _ViewLoader(self.client, self.platform, self._show)
        self.layer.observe(lambda _change: self._render())
        header = ipywidgets.HTML(
            value=f"<b>ocinb explorer</b> · <code>{html.escape(self.client.registry)}</code>")
        left = ipywidgets.VBox([self.repository.widget, self.tag.widget], layout=ipywidgets.Layout(width="40%"))
        right = ipywidgets.VBox([self.platform.widget, self.layer.widget], layout=ipywidgets.Layout(width="58%"))
        self.widget = ipywidgets.VBox([header, ipywidgets.HBox([left, right]), self.status, self.output])
        self.widget.add_class("ocinb-explorer")
        self._loader._upstream_changed()

    @property
    def status(self) -> ipywidgets.HTML:
        return self.repository.status

    @property
    def errors(self) -> list[str]:
        """The error lines currently shown in ``status``."""
        return self.repository._board.errors()

    @property
    def html(self) -> str:
        """The HTML currently shown in ``output``."""
        return "".join(str(item.get("data", {}).get("text/html", "")) for item in self.output.outputs)

    def wait(self, timeout: float | None = 10) -> Explorer:
        """Block until every pending fetch is applied (for tests and scripts); TimeoutError otherwise."""
        self.repository.wait(timeout)
        return self

    def _show(self, view: Any) -> None:
        self.view = view
        self._render()

    def _render(self) -> None:
        """Put the view, and the selected layer's details, into ``output`` (display data, no kernel needed)."""
        if self.view is None:
            self.output.outputs = ()
            return
        outputs = [{"output_type": "display_data", "metadata": {},
                    "data": {"text/html": self.view._repr_html_(), "text/plain": repr(self.view)}}]
        layer = self.layer.layer
        if layer is not None:
            rows = "".join(f"<tr><th style='text-align:left;padding-right:8px'>{esc(k)}</th>"
                           f"<td>{esc(cell_text(v))}</td></tr>"
                           for k, v in (("position", layer["position"]), ("digest", layer["digest"]),
                                        ("media type", layer["media_type"]), ("size", human_size(layer["size"])),
                                        ("created", layer["created"]), ("created by", layer["created_by"])))
            outputs.append({"output_type": "display_data", "metadata": {},
                            "data": {"text/html": f"<h4>Selected layer</h4><table>{rows}</table>",
                                     "text/plain": f"layer {layer['position']}: {layer['digest']}"}})
        self.output.outputs = tuple(outputs)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return f"<Explorer {self.client.registry} {self.tag.ref or self.repository.value or ''}>"


def explorer(registry_or_repo: str | AsyncClient | Any, tag: str | None = None, platform: str | None = None,
             *, load_catalog: bool | None = None, **client_kwargs: Any) -> Explorer:
    """An interactive explorer of a registry (``"ghcr.io"``), a repository (``"127.0.0.1:5000/demo/app"``)
    or a tag (``"…/app:1.0"``); a client (``AsyncClient`` or ``Client``) may be passed instead.

    Without ``client_kwargs`` it uses the default client of ``ocinb.configure``; the catalog is loaded
    when no repository was named (``load_catalog`` overrides that).
    """
    repository: str | None = None
    if isinstance(registry_or_repo, str):
        registry, repository, explicit = _parse_target(registry_or_repo)
        tag = tag or explicit
        client: AsyncClient = AsyncClient(registry, **client_kwargs) if client_kwargs else default_client(registry)
    else:
        client = getattr(registry_or_repo, "aio", registry_or_repo)
    if load_catalog is None:
        load_catalog = repository is None
    return Explorer(client, repository, tag, platform, load_catalog=load_catalog)
