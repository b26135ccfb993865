"""Layers streamed once for their tables and the bytes of the files the package catalogers want (each under its
cap, cached by layer digest), and the squashed tree as :class:`~ocinb.ops.catalogers.TreeEntry` s over them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ..endpoints.repository import RepositoryEndpoints
from ..models import Descriptor
from ..tarfs import LayerFiles, LayerLimits, SquashResult
from . import catalogers, layer_reader
from .catalogers import TreeEntry

CAPTURE_KEY = hashlib.sha256(repr([(c.name, c.paths, c.globs, c.exclude, c.max_size, c.executables)
                                   for c in catalogers.CATALOGERS]).encode()).hexdigest()[:16]
"""Names what the catalogers capture (their paths, globs and caps): part of the cache key of captured bytes."""


def _capture(path: str, mode: int) -> int | None:
    return catalogers.read_limit(path, mode)


def _keep(path: str, data: bytes, mode: int) -> bytes | None:
    return catalogers.keep(path, data, mode)


@dataclass
class LayerCapture:
    """One layer's table and the bytes of its wanted regular files, by entry index."""

    table: LayerFiles
    captured: dict[int, bytes]


async def capture_layers(repo: RepositoryEndpoints, descs: Sequence[Descriptor], *, digests: bool = False,
                         limits: LayerLimits | None = None) -> list[LayerCapture]:
    """Each layer of ``descs`` streamed once (or from the cache), its wanted files' bytes captured on the way
    (``digests``: each file's sha256 too)."""
    out = []
    for desc in descs:
        table, captured = await layer_reader.read_layer_capturing(repo, desc, _capture, _keep, CAPTURE_KEY,
                                                                  digests=digests, limits=limits)
        out.append(LayerCapture(table, captured))
    return out


def cached_layers(repo: RepositoryEndpoints, descs: Sequence[Descriptor], *,
                  digests: bool = False) -> list[LayerCapture] | None:
    """:func:`capture_layers` from the content cache alone; ``None`` unless every layer is there."""
    out = []
    for desc in descs:
        found = layer_reader.cached_capture(repo, desc, CAPTURE_KEY, digests)
        if found is None:
            return None
        out.append(LayerCapture(*found))
    return out


def tree_entries(squashed: SquashResult, layers: Sequence[LayerCapture]) -> list[TreeEntry]:
    """The squashed tree's files and symlinks as catalogers see them; a file's ``read`` answers its captured
    bytes (a hard link its target's, in the same layer), ``None`` for what was not captured."""
    by_path: list[dict[str, bytes]] = []
    for layer in layers:
        entries = layer.table.entries
        by_path.append({entries[i].path: data for i, data in layer.captured.items() if i < len(entries)})
    out: list[TreeEntry] = []
    for node in squashed.entries:
        e = node.entry
        if e.type not in ("file", "hardlink", "symlink"):
            continue
        held = by_path[node.layer_index] if node.layer_index < len(by_path) else {}
        key = e.linkname if e.type == "hardlink" and e.linkname else e.path

        def read(held: dict[str, bytes] = held, key: str = key) -> bytes | None:
            return held.get(key)

        out.append(TreeEntry(path=e.path, layer=node.layer_index, size=node.content_size, read=read, mode=e.mode,
                             linkname=e.linkname if e.type == "symlink" else None))
    return out
