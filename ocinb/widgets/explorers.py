"""``explorer``: the four pickers over an output showing the ``inspect`` view of the choice, and a pair of tag
pickers below it whose two choices open their ``diff``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets

from .._defaults import default_client
from ..client import AsyncClient
from ..image_diff import ImageDiff
from ..reference import Reference, parse_registry
from ..sync_client import Client, as_async
from ..views import InspectView, esc, table
from .pickers import LayerPicker, Picker, PlatformPicker, RepositoryPicker, TagPicker

__all__ = ["Explorer", "explorer"]

LAYER_COLUMNS = ["position", "digest", "media_type", "size", "created", "created_by"]
"""The columns of the layers frame shown for the selected layer."""


class _ViewLoader(Picker):
    """The explorer's background job that fetches the ``inspect`` view for the platform picker's choice."""

    _key = "view"
    _follows = PlatformPicker
    _source: PlatformPicker | None

    def __init__(self, client: AsyncClient, upstream: PlatformPicker,
                 show: Callable[[InspectView | None], None]) -> None:
        self._show = show
        super().__init__(client, upstream)

    def _upstream_changed(self) -> None:
        assert self._source is not None
        source = self._source
        if not source.ref or not source.widget.options:
            self._jobs.cancel()
            self._show(None)
            return
        ref, platform = source.ref, source.value or None
        where = f"{ref} ({platform})" if platform else ref
        self._jobs.run(f"loading the view of {where}", self.client.inspect(ref, platform), self._show,
                       lambda _exc: self._show(None))


class _DiffLoader(Picker):
    """The explorer's background job that fetches the diff of two tag pickers' choices (``other`` → upstream)."""

    _key = "diff"
    _follows = TagPicker
    _source: TagPicker | None

    def __init__(self, client: AsyncClient, upstream: TagPicker, other: TagPicker,
                 show: Callable[[ImageDiff | None], None]) -> None:
        self._other = other
        self._show = show
        super().__init__(client, upstream)
        other.observe(lambda _change: self._upstream_changed())

    def _upstream_changed(self) -> None:
        assert self._source is not None
        a, b = self._other.ref, self._source.ref
        if not a or not b or a == b:
            self._jobs.cancel()
            self._show(None)
            return
        self._jobs.run(f"comparing {a} with {b}", self.client.diff(a, b), self._show, lambda _exc: self._show(None))


def _parse_target(target: str) -> tuple[str, str | None, str | None]:
    """``registry``, ``registry/repo`` or ``registry/repo:tag`` → (registry, repository, tag or digest)."""
    target = target.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if "/" not in target:
        return parse_registry(target), None, None
    ref = Reference.parse(target)
    return ref.registry, ref.repository, ref.digest or ref.tag


def _display(html: str, text: str) -> dict[str, Any]:
    """One ``display_data`` output (shown without a kernel: the Output widget's ``outputs``)."""
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": html, "text/plain": text}}


class Explorer:
    """Repository, tag, platform and layer pickers over an output showing the ``inspect`` view of the choice.

    ``explorer.widget`` is the VBox; ``repository``, ``tag``, ``platform``, ``layer`` are the pickers,
    ``output`` the Output widget (the view, whose layers table has size bars, then the selected layer)
    and ``status`` the HTML widget with loading state and errors. Below, ``diff_a`` and ``diff_b`` pick two tags
    of the same repository; ``diff_output`` shows their :class:`~ocinb.ImageDiff` (``diff``) once both are set.
    """

    def __init__(self, client: Client | AsyncClient, repository: str | None = None, tag: str | None = None,
                 platform: str | None = None, *, load_catalog: bool = True) -> None:
        self.client: AsyncClient = as_async(client)
        self.view: InspectView | None = None
        self.output = ipywidgets.Output(layout=ipywidgets.Layout(width="100%"))
        self.output.add_class("ocinb-output")
        self.repository = RepositoryPicker(self.client, repository, load_catalog=load_catalog)
        self.tag = TagPicker(self.client, self.repository, value=tag)
        self.platform = PlatformPicker(self.client, self.tag, value=platform)
        self.layer = LayerPicker(self.client, self.platform)
        self.layer.observe(lambda _change: self._render())
        header = ipywidgets.HTML(value=f"<b>ocinb explorer</b> · <code>{esc(self.client.registry)}</code>")
        left = ipywidgets.VBox([self.repository.widget, self.tag.widget], layout=ipywidgets.Layout(width="40%"))
        right = ipywidgets.VBox([self.platform.widget, self.layer.widget], layout=ipywidgets.Layout(width="58%"))
        self.diff: ImageDiff | None = None
        self.diff_output = ipywidgets.Output(layout=ipywidgets.Layout(width="100%"))
        self.diff_a = TagPicker(self.client, self.repository)
        self.diff_b = TagPicker(self.client, self.repository)
        for side, picker in (("a", self.diff_a), ("b", self.diff_b)):  # the main picker keeps the ocinb-tag-* names
            for part in ("picker", "input", "filter", "select"):
                widget = picker.widget if part == "picker" else getattr(picker, part)
                widget.remove_class(f"ocinb-tag-{part}")
                widget.add_class(f"ocinb-diff-{side}-{part}")
        pair = ipywidgets.VBox([ipywidgets.HTML(value="<b>compare two tags</b> (old → new)"),
                                ipywidgets.HBox([self.diff_a.widget, self.diff_b.widget]), self.diff_output])
        self.widget = ipywidgets.VBox([header, ipywidgets.HBox([left, right]), self.status, self.output, pair])
        self.widget.add_class("ocinb-explorer")
        self._loader = _ViewLoader(self.client, self.platform, self._show)
        self._diff_loader = _DiffLoader(self.client, self.diff_b, self.diff_a, self._show_diff)

    @property
    def status(self) -> ipywidgets.HTML:
        return self.repository.status

    @property
    def errors(self) -> list[str]:
        """The error lines currently shown in ``status``."""
        return self.repository.errors

    @property
    def html(self) -> str:
        """The HTML currently shown in ``output``."""
        return "".join(str(item.get("data", {}).get("text/html", "")) for item in self.output.outputs)

    def wait(self, timeout: float | None = 10) -> Explorer:
        """Block until every pending fetch is applied (for tests and scripts); TimeoutError otherwise."""
        self.repository.wait(timeout)
        return self

    def _show(self, view: InspectView | None) -> None:
        self.view = view
        self._render()

    @property
    def diff_html(self) -> str:
        """The HTML currently shown in ``diff_output``."""
        return "".join(str(item.get("data", {}).get("text/html", "")) for item in self.diff_output.outputs)

    def _show_diff(self, found: ImageDiff | None) -> None:
        self.diff = found
        self.diff_output.outputs = () if found is None else (_display(found._repr_html_(), repr(found)),)

    def _render(self) -> None:
        """Put the view, and the selected layer's details, into ``output`` (display data, no kernel needed)."""
        if self.view is None:
            self.output.outputs = ()
            return
        outputs = [_display(self.view._repr_html_(), repr(self.view))]
        frame, position = self.layer.frame, self.layer.value
        if self.layer.layer is not None and frame is not None:
            shown = table(frame.iloc[[position]][LAYER_COLUMNS], sizes=["size"])
            outputs.append(_display(f"<h4>Selected layer</h4>{shown}",
                                    f"layer {position}: {frame.iloc[position]['digest']}"))
        self.output.outputs = tuple(outputs)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return f"<Explorer {self.client.registry} {self.tag.ref or self.repository.value or ''}>"


def explorer(registry_or_repo: str | Client | AsyncClient, tag: str | None = None, platform: str | None = None,
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
        client = AsyncClient(registry, **client_kwargs) if client_kwargs else default_client(registry)
    else:
        client = as_async(registry_or_repo)
    if load_catalog is None:
        load_catalog = repository is None
    return Explorer(client, repository, tag, platform, load_catalog=load_catalog)
