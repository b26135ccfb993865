"""The pickers: repository, tag, platform and layer, each a widget that can follow the one before it.

Every network call goes through the public client API (``client.catalog``, ``client.tags``,
``client.platforms``, ``client.layers``, ``repo.resolve``) on ocinb's background loop (see ``_jobs``), so
setting a value never blocks the kernel; errors land in the shared status line as escaped text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import ipywidgets
import pandas as pd
import traitlets

from .. import media_types as mt
from ..client import AsyncClient
from ..errors import DeniedError, NotFoundError, OcinbError, UnauthorizedError
from ..models import Platform
from ..sync_client import Client, as_async
from ..views import cell_text, esc, human_size
from ._jobs import JobSlot, PendingJobs, QuietUpdates, StatusBoard

__all__ = ["LayerPicker", "Picker", "PlatformPicker", "RepositoryPicker", "TagPicker"]

MAX_SHOWN_TAGS = 200

PlatformChoices = tuple[str, bool, list[tuple[str, str]], str | None]
"""What the platform picker loads: top digest, whether it is an index, (label, value) options, the default."""


def platform_value(os: str, architecture: str, variant: str | None = None, os_version: str | None = None) -> str:
    """A platform as a string ``Platform.parse`` reads back, the OS version kept (``windows(10.0)/amd64``)."""
    os_part = f"{os}({os_version})" if os_version else os
    out = f"{os_part}/{architecture}"
    return f"{out}/{variant}" if variant else out


def _of(platform: Platform) -> str:
    return platform_value(platform.os, platform.architecture, platform.variant, platform.os_version)


def _row_value(row: Any) -> str:
    """:func:`platform_value` of a row of the platforms frame ("" when the row has no platform)."""
    if not cell_text(row.platform):
        return ""
    return platform_value(cell_text(row.os), cell_text(row.architecture), cell_text(row.variant) or None,
                          cell_text(row.os_version) or None)


class Picker:
    """What every picker shares: the client, background jobs with stale results dropped, a status line,
    ``value`` delegated to ``widget``, and chaining to the picker it follows.

    Subclasses set ``_follows`` (the picker type a ``source`` of theirs may be) and the hooks: ``_build``
    makes the widget, ``_open`` shows what a string ``source`` names, ``_upstream_changed`` follows the
    upstream picker. Options a hook needs are set before ``super().__init__``.
    """

    widget: Any
    _key: ClassVar[str] = "picker"
    _follows: ClassVar[type[Picker] | None] = None
    _source: Picker | None
    _jobs: JobSlot

    def __init__(self, client: Client | AsyncClient, source: str | Picker | None = None) -> None:
        self.client: AsyncClient = as_async(client)
        if isinstance(source, Picker) and (self._follows is None or not isinstance(source, self._follows)):
            wanted = self._follows.__name__ if self._follows is not None else "no picker"
            raise TypeError(f"{type(self).__name__} follows {wanted}, not a {type(source).__name__}")
        upstream = source if isinstance(source, Picker) else None
        if upstream is not None:
            board, pending = upstream._jobs.board, upstream._jobs.pending
        else:
            board, pending = StatusBoard(), PendingJobs()
        self.owns_status = upstream is None
        self._source = upstream
        self._downstream: list[Callable[[], None]] = []
        self._jobs = JobSlot(self._key, board, pending)
        self._quiet_updates = QuietUpdates()
        self.widget = self._build()
        if upstream is not None:
            upstream._downstream.append(self._upstream_changed)
            self._upstream_changed()
        elif isinstance(source, str) and source:
            self._open(source)

    def _build(self) -> Any:
        """Make the widget (hook; called once by the constructor)."""
        return None

    def _open(self, source: str) -> None:
        """Show what a string ``source`` names (hook; a repository, a reference)."""

    def _upstream_changed(self) -> None:
        """Follow the picker this one is chained to, which settled on a new value (hook)."""

    @property
    def status(self) -> ipywidgets.HTML:
        """The HTML widget showing loading state and errors (shared along a chain of pickers)."""
        return self._jobs.board.widget

    @property
    def error(self) -> str | None:
        """This picker's current error text, if its last load failed."""
        line = self._jobs.line
        return line[1] if line and line[0] == "error" else None

    @property
    def errors(self) -> list[str]:
        """Every error line now on the status this picker shares with its chain."""
        return self._jobs.board.errors()

    @property
    def loading(self) -> bool:
        line = self._jobs.line
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
        self._jobs.pending.wait(timeout)

    @property
    def _quiet(self) -> int:
        """How deep this thread is in :meth:`_quietly` (0: a change now is the user's and propagates)."""
        return self._quiet_updates.depth

    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        """Programmatic widget updates made by this thread inside this block do not propagate downstream."""
        with self._quiet_updates.quietly():
            yield

    def _propagate(self) -> None:
        for notify in list(self._downstream):
            notify()

    def _on_widget_value(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._propagate()

    def _display_widget(self) -> Any:
        return ipywidgets.VBox([self.widget, self.status]) if self.owns_status else self.widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self._display_widget()._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._display_widget())


class RepositoryPicker(Picker):
    """A Combobox of the registry's repositories (from the catalog); names may also be typed."""

    _key = "catalog"

    def __init__(self, client: Client | AsyncClient, value: str | None = None, *, load_catalog: bool = True) -> None:
        self.repositories: list[str] = []
        self._initial = value or ""
        super().__init__(client)
        if load_catalog:
            self.refresh()

    def _build(self) -> Any:
        widget = ipywidgets.Combobox(
            value=self._initial, options=[], placeholder="repository (type or pick)", ensure_option=False,
            continuous_update=False, description="repository", layout=ipywidgets.Layout(width="100%"))
        widget.add_class("ocinb-repository-picker")
        widget.observe(self._on_widget_value, names="value")
        return widget

    def refresh(self) -> None:
        """Reload the catalog in the background."""
        self._jobs.run(f"loading the catalog of {self.client.registry}", self.client.catalog(), self._apply,
                       self._no_catalog)

    def _no_catalog(self, exc: BaseException) -> None:
        # Most public registries (Docker Hub, GHCR) do not list repositories: that is no error.
        if isinstance(exc, UnauthorizedError | DeniedError | NotFoundError):
            self._jobs.show("info", f"{self.client.registry} does not list its repositories; type a name")

    def _apply(self, names: list[str]) -> None:
        self.repositories = list(names)
        self.widget.options = tuple(self.repositories)
        if not self.repositories:
            self._jobs.show("info", "the catalog is empty; type a repository name")


class _ValueBox(ipywidgets.VBox):
    """A VBox carrying a Python-side ``value`` trait, so a composite picker observes like a single widget."""

    value = traitlets.Unicode(None, allow_none=True)


class TagPicker(Picker):
    """The tags of one repository: a text filter over a Select showing at most 200 matches, usable with thousands.

    ``value`` is the chosen tag (any string may be set, typed tags included). ``repository`` is a name or
    a :class:`RepositoryPicker` to follow.
    """

    _key = "tags"
    _follows = RepositoryPicker
    _source: RepositoryPicker | None

    def __init__(self, client: Client | AsyncClient, repository: str | RepositoryPicker | None = None,
                 value: str | None = None, *, max_shown: int = MAX_SHOWN_TAGS) -> None:
        self.max_shown = max_shown
        self.tags: list[str] = []
        self._wanted = value
        self._repository: str | None = None
        super().__init__(client, repository)

    def _build(self) -> Any:
        self.input = ipywidgets.Text(value=self._wanted or "", placeholder="tag (type + Enter, or pick below)",
                                     description="tag", continuous_update=False, layout=ipywidgets.Layout(width="100%"))
        self.filter = ipywidgets.Text(value="", placeholder="filter tags", continuous_update=True,
                                      description="filter", layout=ipywidgets.Layout(width="100%"))
        self.select = ipywidgets.Select(options=[], rows=10, layout=ipywidgets.Layout(width="100%"))
        self.count = ipywidgets.HTML(value="")
        widget = _ValueBox(children=[self.input, self.filter, self.select, self.count],
                           layout=ipywidgets.Layout(width="100%"))
        widget.add_class("ocinb-tag-picker")
        self.input.add_class("ocinb-tag-input")
        self.filter.add_class("ocinb-tag-filter")
        self.select.add_class("ocinb-tag-select")
        self.input.observe(self._on_input, names="value")
        self.filter.observe(self._on_filter, names="value")
        self.select.observe(self._on_select, names="value")
        widget.observe(self._on_value, names="value")
        return widget

    def _open(self, source: str) -> None:
        self.repository = source

    def _upstream_changed(self) -> None:
        assert self._source is not None
        name = self._source.value or None
        if name is None and self._repository is None:
            return  # nothing shown, nothing to clear: a tag asked for stays wanted
        self.repository = name

    @property
    def repository(self) -> str | None:
        return self._repository

    @repository.setter
    def repository(self, name: str | None) -> None:
        """Show the tags of ``name`` (loaded in the background); ``None`` empties the picker."""
        self._repository = name or None
        if not name:
            self._jobs.cancel()
            self._apply([])
            return
        if self._wanted is None:
            with self._quietly():
                self.widget.value = None
        self._jobs.run(f"loading the tags of {name}", self._list(name), self._apply, lambda _exc: self._apply([]))

    @property
    def ref(self) -> str | None:
        """``repository:tag`` for the current choice."""
        return f"{self._repository}:{self.value}" if self._repository and self.value else None

    async def _list(self, name: str) -> list[str]:
        frame = await self.client.tags(name, progress=False)  # referrers fallback tags left out
        return [str(tag) for tag in frame["tag"]]

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
        self.count.value = f'<span style="color:#555">{esc(text)}</span>'

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


class PlatformPicker(Picker):
    """A Dropdown of the runnable platforms of a tag's index (attestations excluded; one entry for an image).

    ``ref`` is ``repository:tag`` (or ``@digest``), or a :class:`TagPicker` to follow.
    """

    _key = "platforms"
    _follows = TagPicker
    _source: TagPicker | None

    def __init__(self, client: Client | AsyncClient, ref: str | TagPicker | None = None,
                 value: str | None = None) -> None:
        self._wanted = value
        self._ref: str | None = None
        self.digest: str | None = None
        self.is_index = False
        super().__init__(client, ref)

    def _build(self) -> Any:
        widget = ipywidgets.Dropdown(options=[], description="platform", layout=ipywidgets.Layout(width="100%"))
        widget.add_class("ocinb-platform-picker")
        widget.observe(self._on_widget_value, names="value")
        return widget

    def _open(self, source: str) -> None:
        self.ref = source

    def _upstream_changed(self) -> None:
        assert self._source is not None
        self.ref = self._source.ref

    @property
    def ref(self) -> str | None:
        """The reference whose platforms are listed."""
        return self._ref

    @ref.setter
    def ref(self, ref: str | None) -> None:
        self._ref = ref or None
        if not ref:
            self._jobs.cancel()
            self._apply(None)
            return
        self._jobs.run(f"loading the platforms of {ref}", self._load(ref), self._apply,
                       lambda _exc: self._apply(None))

    async def _load(self, ref: str) -> PlatformChoices:
        frame = await self.client.platforms(ref, progress=False)
        digest = str(frame.attrs["digest"])
        if not mt.is_index(frame.attrs.get("media_type")):
            value = _row_value(next(frame.itertuples())) if len(frame) else ""
            label = f"{value} (single-platform image)" if value else "(single image, no platform)"
            return digest, False, [(label, value)], value
        runnable = frame[~frame["is_attestation"]]
        values = [value for value in (_row_value(row) for row in runnable.itertuples()) if value]
        repo, _ident = self.client.parse(ref)
        try:  # the default the library resolves to (the only one, else linux/amd64, else the first)
            resolved = await repo.resolve(digest)  # by digest: the very index just listed
            default = _of(resolved.platform) if resolved.platform is not None else None
        except OcinbError:
            default = None
        return digest, True, [(value, value) for value in values], default

    @property
    def platforms(self) -> list[str]:
        """The values on offer."""
        return [value for _label, value in self.widget.options]

    def _apply(self, loaded: PlatformChoices | None) -> None:
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
            self._jobs.show("error", f"{self._ref} lists no runnable platform")
        self._propagate()


def _layer_label(row: Any) -> str:
    """``  3    12.3 MB  RUN apt-get install …`` for one row of the layers frame."""
    step = " ".join(cell_text(row.created_by).split())
    step = step.removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
    if len(step) > 80:
        step = step[:79] + "…"
    return f"{row.position:>3}  {human_size(int(row.size)):>9}  {step or str(row.digest)[:19]}"


class LayerPicker(Picker):
    """A Select of the layers of the resolved image (position, size, ``created_by``); ``value`` is the position.

    Follows a :class:`PlatformPicker`, or loads ``ref`` (``repository:tag``) for ``platform`` given here.
    ``frame`` is the ``client.layers`` DataFrame behind the options.
    """

    _key = "layers"
    _follows = PlatformPicker
    _source: PlatformPicker | None

    def __init__(self, client: Client | AsyncClient, ref: str | PlatformPicker | None = None,
                 platform: str | None = None) -> None:
        self.frame: pd.DataFrame | None = None
        self.digest: str | None = None
        self._platform = platform
        super().__init__(client, ref)

    def _build(self) -> Any:
        widget = ipywidgets.Select(options=[], rows=8, description="layers", layout=ipywidgets.Layout(width="100%"))
        widget.add_class("ocinb-layer-picker")
        widget.observe(self._on_widget_value, names="value")
        return widget

    def _open(self, source: str) -> None:
        self.load(source, self._platform)

    def _upstream_changed(self) -> None:
        assert self._source is not None
        source = self._source
        if source.ref and source.widget.options:
            self.load(source.ref, source.value)
        else:
            self.load(None)

    def load(self, ref: str | None, platform: str | None = None) -> None:
        """List the layers of ``ref`` for ``platform`` (in the background); ``None`` empties the picker."""
        if not ref:
            self._jobs.cancel()
            self._apply(None)
            return
        where = f"{ref} ({platform})" if platform else ref
        self._jobs.run(f"loading the layers of {where}", self.client.layers(ref, platform or None), self._apply,
                       lambda _exc: self._apply(None))

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

    def _apply(self, frame: pd.DataFrame | None) -> None:
        self.frame = frame
        self.digest = frame.attrs.get("digest") if frame is not None else None
        rows = list(frame.itertuples(index=False)) if frame is not None else []
        with self._quietly():
            self.widget.options = [(_layer_label(row), int(row.position)) for row in rows]
            self.widget.value = None
        self._propagate()
