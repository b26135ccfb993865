"""How the pure types show themselves in notebooks without importing the notebook layer.

``ocinb/__init__.py`` (the top of the package) installs the renderer, :func:`ocinb.views.render` loaded on
first use, so the dependency points down: the types layer never imports ``views``.
"""

from __future__ import annotations

import html
from collections.abc import Callable

_renderer: Callable[[object], str] | None = None


def install_renderer(render: Callable[[object], str]) -> None:
    """Set the function that turns a model, a manifest or a view into self-contained HTML."""
    global _renderer
    _renderer = render


class HtmlRepr:
    """Gives a type Jupyter's ``_repr_html_`` through the installed renderer (an escaped ``repr`` without one)."""

    def _repr_html_(self) -> str:
        if _renderer is None:
            return f"<pre>{html.escape(repr(self))}</pre>"
        return _renderer(self)
