"""What is installed in an image, from the files of its squashed tree: pure parsers, one module per ecosystem.

:data:`CATALOGERS` run cheapest first (``os-release``, then dpkg, apk, Python, npm, rpm, Go). A streaming
reader asks :func:`read_limit` whether to buffer a file (and up to what size), holds what :func:`keep` returns
of it, then :func:`catalog_files` turns the squashed result into :class:`PackageRow` s; :func:`catalog_tree`
does all of it over an iterable of squashed-tree entries whose bytes can be read on demand. The input is
the squashed view (a file deleted by a later layer is simply absent), so the caller handles layer order and
whiteouts. Nothing here raises for bad content: an unknown or malformed database is a row with ``warning`` set.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from . import apk, dpkg, golang, npm, osrelease, python, rpm
from .base import (
    CatalogContext,
    Cataloger,
    OsRelease,
    PackageRow,
    WantedFile,
    globs_regex,
    is_executable_candidate,
    normalize_path,
    warning_row,
)

__all__ = [
    "CATALOGERS", "Catalog", "CatalogContext", "Cataloger", "OsRelease", "PackageRow", "TreeEntry",
    "WantedFile", "catalog_files", "catalog_tree", "keep", "read_limit", "wanted",
]

CATALOGERS: tuple[Cataloger, ...] = (
    osrelease.CATALOGER, dpkg.CATALOGER, apk.CATALOGER, python.CATALOGER, npm.CATALOGER, rpm.CATALOGER,
    golang.CATALOGER,
)
"""Every cataloger, cheapest first; ``os-release`` first of all since the OS names the distro in purls."""

ECOSYSTEM = {"os-release": "os", "dpkg": "deb", "apk": "apk", "python": "pypi", "npm": "npm", "rpm": "rpm",
             "golang": "golang"}
"""The ``ecosystem`` value of each cataloger's rows (the purl type)."""

MAX_LINK_HOPS = 40
"""Symlinks followed before giving up (Linux's own limit)."""


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a squashed tree (a regular file or a symlink; directories are left out): its path, the layer
    it came from, its size and how to read its bytes.

    ``mode`` (permission bits) lets the Go cataloger pick executables; ``linkname`` marks a symlink (its target,
    relative to the link's directory or absolute), which is followed for the files catalogers want. A hard link
    is given as a regular file whose ``read`` returns its target's bytes. ``read`` is called at most once, only
    for wanted files under their size cap; it may return ``None`` when the bytes are not at hand (a streaming
    reader that buffered only what :func:`read_limit` asked for, and a link's target it could not foresee).
    """

    path: str
    layer: int
    size: int
    read: Callable[[], bytes | None]
    mode: int | None = None
    linkname: str | None = None


@dataclass
class Catalog:
    """The result: the OS (``None`` when the image has no os-release) and the rows, warnings among them."""

    os: OsRelease | None = None
    rows: list[PackageRow] = field(default_factory=list)

    @property
    def packages(self) -> list[PackageRow]:
        """The rows that are packages (no warning)."""
        return [r for r in self.rows if r.warning is None]

    @property
    def warnings(self) -> list[PackageRow]:
        """The rows that say what could not be read."""
        return [r for r in self.rows if r.warning is not None]


_ANY_GLOB = globs_regex(tuple(g for c in CATALOGERS for g in c.globs))
_ANY_PATH = frozenset(p for c in CATALOGERS for p in c.paths)
_ANY_LAYER_GLOB = globs_regex(tuple(g for c in CATALOGERS for g in c.layer_globs))


def wanted(path: str, mode: int | None = None) -> list[Cataloger]:
    """The catalogers that read ``path`` (``mode``: its permission bits, when the tree has them)."""
    path = normalize_path(path)
    if path not in _ANY_PATH and not _ANY_GLOB.fullmatch(path) and not is_executable_candidate(path, mode):
        return []  # the common case, decided with one match instead of one per cataloger
    return [c for c in CATALOGERS if c.wants(path, mode)]


def read_limit(path: str, mode: int | None = None) -> int | None:
    """How many bytes of ``path`` a reader should buffer at most (the largest cap of the catalogers that want
    it), ``None`` if none wants it. A larger file is left unread and passed as ``too_large`` instead."""
    takers = wanted(path, mode)
    return max(c.max_size for c in takers) if takers else None


def keep(path: str, data: bytes, mode: int | None = None) -> bytes | None:
    """What a reader should hold of a wanted file it just read: the part its cataloger parses (a Go binary's build
    info, a copyright file's license names) or the whole file; ``None`` when nothing in it is needed."""
    takers = wanted(path, mode)
    if len(takers) == 1 and takers[0].extract is not None:
        return takers[0].extract(normalize_path(path), data)
    return data if takers else None


def catalog_files(files: Mapping[str, tuple[int | None, bytes]], *, links: Mapping[str, str] | None = None,
                  layers: Mapping[str, int] | None = None, modes: Mapping[str, int] | None = None,
                  too_large: Mapping[str, tuple[int | None, int]] | None = None) -> Catalog:
    """Run every cataloger over a squashed view: ``files`` maps a path to (layer, bytes).

    ``links`` maps a symlink's path to its target: a wanted link whose target is in ``files`` but not wanted
    under its own name is read through the link (so each content is cataloged once). ``layers`` gives the
    layer of paths known only by name (dpkg's ``info/*.list``); ``modes`` the permission bits of files (so the
    Go cataloger sees executables outside ``bin``); ``too_large`` maps wanted paths that were not read to
    (layer, size), each a warning row. Files no cataloger wants are ignored; one over its cataloger's cap is a
    warning row.
    """
    view = {normalize_path(p): v for p, v in files.items()}
    bits = {normalize_path(p): m for p, m in (modes or {}).items()}
    link_map = {normalize_path(k): v for k, v in (links or {}).items()}
    for link in link_map:
        target = resolve(link, link_map)
        if target is not None and target in view and not wanted(target, mode=bits.get(target)):
            view.setdefault(link, view[target])
            if target in bits:
                bits.setdefault(link, bits[target])
    context = CatalogContext(os=None, layers={normalize_path(p): layer for p, layer in (layers or {}).items()},
                             links=link_map)
    skipped = {normalize_path(p): v for p, v in (too_large or {}).items()}
    result = Catalog()
    chosen_by: list[tuple[Cataloger, list[WantedFile]]] = []
    for cataloger in CATALOGERS:
        chosen: list[WantedFile] = []
        for path in sorted(view):
            if not cataloger.wants(path, bits.get(path)):
                continue
            layer, data = view[path]
            if len(data) > cataloger.max_size:
                result.rows.append(over_cap(cataloger, path, layer, len(data)))
                continue
            kept = cataloger.extract(path, data) if cataloger.extract else data
            if kept is not None:
                chosen.append(WantedFile(path=path, layer=layer, data=kept))
        for path, (layer, size) in sorted(skipped.items()):
            if cataloger.wants(path, bits.get(path)):
                result.rows.append(over_cap(cataloger, path, layer, size))
        chosen_by.append((cataloger, chosen))
    result.os = context.os = osrelease.identify(chosen_by[0][1])
    for cataloger, chosen in chosen_by:
        result.rows += cataloger.parse(chosen, context)
    return result


def over_cap(cataloger: Cataloger, path: str, layer: int | None, size: int) -> PackageRow:
    """The warning row for a wanted file larger than its cataloger reads."""
    return warning_row(ECOSYSTEM[cataloger.name], path, layer,
                       f"{path} is {size} bytes, over the {cataloger.name} cataloger's cap of "
                       f"{cataloger.max_size} bytes; not read")


def resolve(path: str, links: Mapping[str, str]) -> str | None:
    """Follow ``path`` through ``links`` (path → target) to a path that is not a link; ``None`` on a loop."""
    for _ in range(MAX_LINK_HOPS):
        target = links.get(path)
        if target is None:
            return path
        base = "" if target.startswith("/") else posixpath.dirname(path)
        path = normalize_path(posixpath.normpath(posixpath.join("/", base, target)))
    return None


def catalog_tree(entries: Iterable[TreeEntry | tuple[object, ...]]) -> Catalog:
    """Run every cataloger over a squashed tree's entries (:class:`TreeEntry` or ``(path, layer, size, read[,
    mode[, linkname]])`` tuples): only wanted files under their cap are read, each once, as they come by, and
    reduced at once to what their parser needs; a wanted symlink's target is read afterwards when no cataloger
    wants it under its own name."""
    files: dict[str, tuple[int | None, bytes]] = {}
    links: dict[str, str] = {}
    layers: dict[str, int] = {}
    modes: dict[str, int] = {}
    too_large: dict[str, tuple[int | None, int]] = {}
    regular: dict[str, TreeEntry] = {}

    def take(path: str, entry: TreeEntry, takers: list[Cataloger], wanted_as: str, mode: int | None) -> None:
        """Read ``entry`` (stored as ``path``) for the catalogers that want ``wanted_as`` (itself, or a link)."""
        if entry.size > max(c.max_size for c in takers):
            too_large[wanted_as] = (entry.layer, entry.size)
            return
        raw = entry.read()
        data = None if raw is None else keep(wanted_as, raw, mode)
        if data is not None:
            files[path] = (entry.layer, data)

    for item in entries:
        entry = item if isinstance(item, TreeEntry) else TreeEntry(*item)  # type: ignore[arg-type]
        path = normalize_path(entry.path)
        if entry.linkname is not None:
            links[path] = entry.linkname
            continue
        regular[path] = entry
        if entry.mode is not None:
            modes[path] = entry.mode
        if _ANY_LAYER_GLOB.fullmatch(path):
            layers[path] = entry.layer
        takers = wanted(path, entry.mode)
        if takers:
            take(path, entry, takers, path, entry.mode)
    for link in links:
        takers = wanted(link)
        target = resolve(link, links)
        if takers and target is not None and target in regular and target not in files and target not in too_large:
            take(target, regular[target], takers, link, None)
    return catalog_files(files, links=links, layers=layers, modes=modes, too_large=too_large)
