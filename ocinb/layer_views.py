"""The squashed filesystem as a collapsible tree with sizes: ``<details>`` elements, no JavaScript, every name
escaped; a plain-text tree in terminals."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from .tarfs import SquashResult
from .views import clean, esc, human_size

MAX_CHILDREN = 200
"""Children listed per directory (largest first); the rest are counted in one line."""
MAX_NODES = 5000
"""Nodes rendered in all, so a tree of 100,000 files stays a page a browser opens."""


@dataclass
class _Node:
    name: str
    kind: str = "dir"
    size: int = 0
    layer: int | None = None
    link: str | None = None
    children: dict[str, _Node] = field(default_factory=dict)


def _build(squashed: SquashResult) -> _Node:
    root = _Node("/")
    for n in squashed.entries:
        parts = [p for p in n.entry.path.split("/") if p]
        node = root
        for part in parts[:-1]:
            node = node.children.setdefault(part, _Node(part))
        if not parts:
            continue
        leaf = node.children.setdefault(parts[-1], _Node(parts[-1]))
        leaf.kind, leaf.layer, leaf.link = n.entry.type, n.layer_index, n.entry.linkname
        leaf.size = n.content_size if n.entry.type != "dir" else 0

    def total(node: _Node) -> int:
        if node.children:
            node.size = sum(total(c) for c in node.children.values())
        return node.size

    total(root)
    return root


@dataclass
class FilesystemTree:
    """The squashed filesystem of ``reference``, as a tree whose directories show the bytes beneath them."""

    reference: str
    squashed: SquashResult
    _root: _Node | None = None

    @property
    def root(self) -> _Node:
        if self._root is None:
            self._root = _build(self.squashed)
        return self._root

    def _repr_html_(self) -> str:
        budget = [MAX_NODES]

        def label(node: _Node) -> str:
            where = f' <span style="color:#888">layer {node.layer}</span>' if node.layer is not None else ""
            link = f" → {esc(node.link, 200)}" if node.link else ""
            return (f"<code>{esc(node.name, 300)}</code>{link} <b>{esc(human_size(node.size))}</b>"
                    f"{where}")

        def render(node: _Node, depth: int) -> str:
            kids = sorted(node.children.values(), key=lambda c: (-c.size, c.name))
            out = []
            for child in kids[:MAX_CHILDREN]:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
                if child.children:
                    out.append(f'<details style="margin-left:{12 if depth else 0}px"><summary>{label(child)}/'
                               f"</summary>{render(child, depth + 1)}</details>")
                else:
                    out.append(f'<div style="margin-left:{12 + (12 if depth else 0)}px">{label(child)}</div>')
            hidden = len(kids) - len(out)
            if hidden > 0:
                out.append(f'<div style="margin-left:24px;color:#888">… {hidden} more</div>')
            return "".join(out)

        root = self.root
        body = render(root, 0)
        return (f'<div class="ocinb-tree"><div><b>{esc(self.reference, 300)}</b>: '
                f"{len(self.squashed.entries)} paths, {esc(human_size(root.size))}</div>{body}</div>")

    def __repr__(self) -> str:
        root = self.root
        lines = [f"{clean(self.reference, 300)}: {len(self.squashed.entries)} paths, {human_size(root.size)}"]

        def walk(node: _Node, indent: str, depth: int) -> None:
            kids = sorted(node.children.values(), key=lambda c: (-c.size, c.name))
            for child in kids[:20]:
                suffix = "/" if child.children else ""
                lines.append(f"{indent}{human_size(child.size):>9}  {clean(child.name, 120)}{suffix}")
                if child.children and depth < 2:
                    walk(child, indent + "  ", depth + 1)
            if len(kids) > 20:
                lines.append(f"{indent}      … {len(kids) - 20} more")

        walk(root, "  ", 0)
        return "\n".join(lines)

    def directory_sizes(self, depth: int = 1) -> dict[str, int]:
        """Bytes under each directory ``depth`` levels down (``{"/usr": …, "/etc": …}`` for 1)."""
        out: dict[str, int] = {}

        def walk(node: _Node, path: str, level: int) -> None:
            for child in node.children.values():
                p = posixpath.join(path, child.name)
                if level == depth:
                    out[p] = child.size
                elif child.children:
                    walk(child, p, level + 1)

        walk(self.root, "/", 1)
        return out
