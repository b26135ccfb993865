"""Layer file tables as plain data: tar entries (from a streamed tar or a table of contents), the image-spec's
"Applying Changesets" squash, and dive's efficiency numbers beside the spec-correct hidden bytes.

Pure functions over :class:`FileEntry` lists: no I/O, so a TOC reader, the streamed reader and the cache all
produce and consume the same rows (``source`` says where a row came from).
"""

from __future__ import annotations

import json
import posixpath
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

FORMAT_VERSION = 1
"""Version of the cached file-table format: bump it when a column or a rule changes, so old entries are ignored."""

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
MAX_LINK_HOPS = 40
"""Symlink hops followed when resolving a path before it counts as a loop (Linux's MAXSYMLINKS)."""

TAR_TYPES: dict[str, str] = {
    "0": "file", "\0": "file", "7": "file", "S": "file", "1": "hardlink", "2": "symlink", "3": "char",
    "4": "block", "5": "dir", "6": "fifo",
}


@dataclass(slots=True)
class FileEntry:
    """One tar entry of one layer, its name normalised and its type classified.

    ``path`` is ``/``-rooted and ``posixpath.normpath``-clean; ``raw_name`` is the name as stored (a directory's
    trailing ``/`` dropped, as tarfile does). Names that are
    not UTF-8 are shown with ``\\xNN`` escapes and flagged ``non_utf8``. ``flags`` lists what an auditor should see:
    ``absolute`` (a leading ``/``), ``dotdot`` (a ``..`` component, clamped at the root, never escaping it),
    ``non_utf8``, ``bare_whiteout`` (a ``.wh.`` with no name, which the spec calls invalid), ``duplicate``.
    """

    path: str
    raw_name: str
    type: str
    tar_type: str
    size: int
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: float
    linkname: str | None = None
    devmajor: int | None = None
    devminor: int | None = None
    xattrs: dict[str, str] | None = None
    digest: str | None = None
    whiteout_target: str | None = None
    flags: tuple[str, ...] = ()
    entry_index: int = 0
    source: str = "tar"


@dataclass
class LayerFiles:
    """The file table of one layer blob: its entries and what the reader learned about the stream.

    ``source`` is ``tar`` (streamed), ``estargz-toc`` or ``zstd-chunked-toc`` (only the table of contents was
    read, with Range requests: then ``diff_id`` and ``expanded_size`` are unknown). ``status`` is ``read``, or
    ``foreign`` / ``non-distributable`` for layers reported without a download (then ``entries`` is empty).
    ``format`` is what the bytes were (``gzip``, ``zstd``, ``tar``), sniffed from the magic;
    ``diff_id`` is the sha256 of the uncompressed tar; ``expanded_size`` its length.
    """

    digest: str
    media_type: str
    compressed_size: int
    entries: list[FileEntry] = field(default_factory=list)
    status: str = "read"
    format: str | None = None
    diff_id: str | None = None
    expanded_size: int | None = None
    digests: bool = False
    source: str = "tar"
    urls: tuple[str, ...] = ()
    toc_note: str | None = None
    """Why a layer that announced a table of contents was streamed whole instead (Range refused, a TOC that did
    not verify); ``None`` when it had none or its TOC was used."""
    columns: dict[str, list[Any]] | None = field(default=None, repr=False, compare=False)
    """The entries column by column when they came from the cache (the files table is built from these)."""

    @property
    def size_sum(self) -> int:
        """Σ header sizes of the entries (dive's layer size)."""
        return sum(e.size for e in self.entries)


def display_name(name: str) -> tuple[str, bool]:
    """``name`` (decoded with ``surrogateescape``) as printable text, and whether it was not valid UTF-8."""
    try:
        name.encode("utf-8")
        return name, False
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"), True


def normalise(name: str) -> tuple[str, tuple[str, ...]]:
    """A tar name as a ``/``-rooted clean path and the flags it earned (``absolute``, ``dotdot``, ``non_utf8``).

    ``..`` is resolved lexically and clamped at the root, as a chroot does, so a path never leaves the image.
    """
    shown, non_utf8 = display_name(name)
    flags: list[str] = []
    stripped = shown
    while stripped.startswith("./"):
        stripped = stripped[2:]
    if stripped.startswith("/"):
        flags.append("absolute")
    if ".." in stripped.split("/"):
        flags.append("dotdot")
    if non_utf8:
        flags.append("non_utf8")
    path = posixpath.normpath("/" + stripped.lstrip("/"))
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path, tuple(flags)


def classify(path: str, tar_type: str) -> tuple[str, str | None, tuple[str, ...]]:
    """The entry ``type`` of a normalised path and tar flag, its whiteout target, and extra flags."""
    base = posixpath.basename(path)
    if base.startswith(WHITEOUT_PREFIX) and path != "/":
        parent = posixpath.dirname(path)
        if base == OPAQUE_WHITEOUT:
            return "opaque_whiteout", parent, ()
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return "meta", None, ()
        target = base[len(WHITEOUT_PREFIX):]
        if not target:
            return "meta", None, ("bare_whiteout",)
        return "whiteout", posixpath.join(parent, target), ()
    return TAR_TYPES.get(tar_type, "other"), None, ()


def make_entry(*, name: str, tar_type: str, size: int, mode: int, uid: int, gid: int, uname: str, gname: str,
               mtime: float, linkname: str | None, devmajor: int | None, devminor: int | None,
               xattrs: dict[str, str] | None, entry_index: int, digest: str | None = None,
               source: str = "tar") -> FileEntry:
    """A :class:`FileEntry` from raw header fields (the one constructor both the tar walk and TOC readers use)."""
    path, flags = normalise(name)
    kind, target, more = classify(path, tar_type)
    raw, _ = display_name(name)
    if linkname is not None:
        linkname, bad = display_name(linkname)
        if bad and "non_utf8" not in flags:
            more = (*more, "non_utf8")
    if kind == "hardlink" and linkname is not None:
        linkname, link_flags = normalise(linkname)
        more = (*more, *(f"link_{f}" for f in link_flags if f != "non_utf8"))
    return FileEntry(path=path, raw_name=raw, type=kind, tar_type=tar_type, size=size if kind != "hardlink" else 0,
                     mode=stat.S_IMODE(mode), uid=uid, gid=gid, uname=uname, gname=gname, mtime=mtime,
                     linkname=linkname or None, devmajor=devmajor if kind in ("char", "block") else None,
                     devminor=devminor if kind in ("char", "block") else None, xattrs=xattrs or None,
                     digest=digest, whiteout_target=target, flags=(*flags, *more), entry_index=entry_index,
                     source=source)


_ENTRY_FIELDS = [f.name for f in fields(FileEntry)]


def dump_layer(layer: LayerFiles) -> bytes:
    """The cache form of a layer table: columnar JSON with the format version (fast to load, compact)."""
    columns: dict[str, list[Any]] = {name: [] for name in _ENTRY_FIELDS}
    for entry in layer.entries:
        for name in _ENTRY_FIELDS:
            value = getattr(entry, name)
            columns[name].append(list(value) if name == "flags" else value)
    meta = {k: getattr(layer, k) for k in ("digest", "media_type", "compressed_size", "status", "format",
                                           "diff_id", "expanded_size", "digests", "source", "toc_note")}
    meta["urls"] = list(layer.urls)
    return json.dumps({"version": FORMAT_VERSION, "layer": meta, "entries": columns},
                      separators=(",", ":")).encode()


def load_layer(data: bytes) -> LayerFiles | None:
    """The layer table of :func:`dump_layer`'s bytes; ``None`` for another format version or a damaged entry."""
    try:
        doc = json.loads(data)
        if doc.get("version") != FORMAT_VERSION:
            return None
        meta = doc["layer"]
        cols = doc["entries"]
        ordered = [cols[name] for name in _ENTRY_FIELDS]
        flags_at = _ENTRY_FIELDS.index("flags")
        entries = []
        for values in zip(*ordered, strict=True):
            entry = FileEntry(*values)
            if values[flags_at]:
                entry.flags = tuple(values[flags_at])
            else:
                entry.flags = ()
            entries.append(entry)
        return LayerFiles(digest=meta["digest"], media_type=meta["media_type"],
                          compressed_size=meta["compressed_size"], entries=entries, status=meta["status"],
                          format=meta["format"], diff_id=meta["diff_id"], expanded_size=meta["expanded_size"],
                          digests=meta["digests"], source=meta["source"], urls=tuple(meta["urls"]),
                          toc_note=meta.get("toc_note"),
                          columns=cols)
    except (ValueError, KeyError, TypeError, IndexError):
        return None


@dataclass(slots=True)
class SquashedEntry:
    """One path of the squashed filesystem: the visible entry, the layer that last wrote it, its history.

    ``implicit`` marks a parent directory no layer listed; ``content_size`` is a hardlink's target size (the
    entry's own size otherwise); ``flags`` adds ``dangling_hardlink``, ``symlink_loop``, ``link_escapes`` and
    ``parent_replaced`` (a non-directory turned into a directory by a child entry) to the entry's own.
    """

    entry: FileEntry
    layer_index: int
    first_layer: int
    n_versions: int
    implicit: bool = False
    content_size: int = 0
    content_digest: str | None = None
    flags: tuple[str, ...] = ()


def _implicit_dir(path: str, layer_index: int) -> FileEntry:
    return FileEntry(path=path, raw_name="", type="dir", tar_type="5", size=0, mode=0o755, uid=0, gid=0, uname="",
                     gname="", mtime=0.0, source="implicit")


class _Tree:
    """A path → entry map with a children index, so removing a subtree costs its size, not the map's."""

    def __init__(self) -> None:
        self.nodes: dict[str, SquashedEntry] = {}
        self.children: dict[str, set[str]] = {}

    def remove(self, path: str, *, keep_root: bool = False) -> list[SquashedEntry]:
        """Remove ``path`` and its descendants (only the descendants with ``keep_root``); what was removed."""
        removed: list[SquashedEntry] = []
        stack = list(self.children.pop(path, ()))
        while stack:
            p = stack.pop()
            node = self.nodes.pop(p, None)
            if node is not None:
                removed.append(node)
            stack.extend(self.children.pop(p, ()))
        if keep_root:
            if path in self.nodes:
                self.children[path] = set()
            return removed
        node = self.nodes.pop(path, None)
        if node is not None:
            removed.append(node)
            parent = posixpath.dirname(path)
            if path != "/" and parent in self.children:
                self.children[parent].discard(path)
        return removed

    def insert(self, node: SquashedEntry, layer_index: int) -> None:
        path = node.entry.path
        self.nodes[path] = node
        parent = posixpath.dirname(path)
        while path != "/":
            kids = self.children.setdefault(parent, set())
            kids.add(path)
            existing = self.nodes.get(parent)
            if parent == "/":
                break
            if existing is None:
                self.nodes[parent] = SquashedEntry(_implicit_dir(parent, layer_index), layer_index, layer_index, 0,
                                                   implicit=True)
            elif existing.entry.type != "dir":
                self.remove(parent)
                self.children.setdefault(parent, set()).add(path)
                self.children.setdefault(posixpath.dirname(parent), set()).add(parent)
                self.nodes[parent] = SquashedEntry(_implicit_dir(parent, layer_index), layer_index, layer_index, 0,
                                                   implicit=True, flags=("parent_replaced",))
            else:
                break
            path, parent = parent, posixpath.dirname(parent)


@dataclass
class SquashResult:
    """The squashed tree and, per layer, the bytes its entries lost to later layers (overwritten, deleted, hidden
    under an opaque directory): the spec-correct hidden bytes."""

    entries: list[SquashedEntry]
    hidden_by_path: dict[str, int]
    hidden_by_layer: list[int]


def squash(layers: Sequence[LayerFiles]) -> SquashResult:
    """Apply ``layers`` bottom to top as the image-spec's "Applying Changesets" says.

    Per layer: opaque whiteouts and whiteouts first (they hide lower layers only, whatever their position in the
    tar), then each entry: directory over directory replaces the attributes and keeps the children, anything else
    replaces the path and its subtree. ``.wh..wh.*`` metadata is skipped and whiteouts are never shown.
    """
    tree = _Tree()
    versions: dict[str, int] = {}
    first: dict[str, int] = {}
    hidden_by_path: dict[str, int] = {}
    hidden_by_layer = [0] * len(layers)

    def lose(nodes: Iterable[SquashedEntry]) -> None:
        for n in nodes:
            if n.implicit:
                continue
            hidden_by_path[n.entry.path] = hidden_by_path.get(n.entry.path, 0) + n.entry.size
            hidden_by_layer[n.layer_index] += n.entry.size

    for index, layer in enumerate(layers):
        opaque = [e.whiteout_target for e in layer.entries if e.type == "opaque_whiteout"]
        gone = [e.whiteout_target for e in layer.entries if e.type == "whiteout"]
        for d in opaque:
            if d is not None:
                lose(tree.remove(d, keep_root=True))
        for p in gone:
            if p is not None and p != "/":
                lose(tree.remove(p))
        seen: set[str] = set()
        for e in layer.entries:
            if e.type in ("whiteout", "opaque_whiteout", "meta"):
                continue
            flags = e.flags
            if e.path in seen:
                flags = (*flags, "duplicate")
            seen.add(e.path)
            versions[e.path] = versions.get(e.path, 0) + 1
            first.setdefault(e.path, index)
            old = tree.nodes.get(e.path)
            node = SquashedEntry(e, index, first[e.path], versions[e.path], content_size=e.size,
                                 content_digest=e.digest, flags=flags)
            if e.path == "/":
                tree.nodes["/"] = node
                continue
            if old is not None and old.entry.type == "dir" and e.type == "dir":
                if not old.implicit:
                    lose([old])
                tree.nodes[e.path] = node
                continue
            if old is not None:
                lose(tree.remove(e.path))
            if e.type == "hardlink":
                target = tree.nodes.get(e.linkname or "")
                if target is None or target.entry.type == "dir":
                    node.flags = (*node.flags, "dangling_hardlink")
                else:
                    node.content_size = target.content_size
                    node.content_digest = target.content_digest
            tree.insert(node, index)
    tree.nodes.pop("/", None)
    for node in tree.nodes.values():
        if node.entry.type == "symlink":
            problem = _link_problem(tree.nodes, node.entry.path)
            if problem:
                node.flags = (*node.flags, problem)
    entries = sorted(tree.nodes.values(), key=lambda n: n.entry.path)
    return SquashResult(entries, hidden_by_path, hidden_by_layer)


def _link_problem(nodes: dict[str, SquashedEntry], path: str) -> str | None:
    """``symlink_loop`` when following ``path`` takes more than :data:`MAX_LINK_HOPS` hops, ``link_escapes`` when
    a relative target climbs above the root (clamped there, as in a chroot), else ``None``."""
    escapes = False
    current = path
    for _ in range(MAX_LINK_HOPS):
        node = nodes.get(current)
        if node is None or node.entry.type != "symlink":
            return "link_escapes" if escapes else None
        target = node.entry.linkname or ""
        joined = target if target.startswith("/") else posixpath.join(posixpath.dirname(current), target)
        depth = 0
        for part in joined.split("/"):
            if part == "..":
                depth -= 1
                if depth < 0 and not target.startswith("/"):
                    escapes = True
                depth = max(depth, 0)
            elif part not in ("", "."):
                depth += 1
        current = posixpath.normpath("/" + joined.lstrip("/"))
        current = _resolve_parents(nodes, current)
    return "symlink_loop"


def _resolve_parents(nodes: dict[str, SquashedEntry], path: str, budget: int = MAX_LINK_HOPS) -> str:
    """``path`` with symlinked parent directories followed (bounded), so ``/a/b`` under ``/a -> x`` is ``/x/b``."""
    parts = path.strip("/").split("/")
    out = "/"
    for i, part in enumerate(parts):
        if not part:
            continue
        candidate = posixpath.join(out, part)
        node = nodes.get(candidate)
        hops = 0
        while node is not None and node.entry.type == "symlink" and i < len(parts) - 1 and hops < budget:
            target = node.entry.linkname or ""
            candidate = posixpath.normpath("/" + (target if target.startswith("/") else
                                                  posixpath.join(posixpath.dirname(candidate), target)).lstrip("/"))
            node = nodes.get(candidate)
            hops += 1
        out = candidate
    return out


@dataclass
class WastePath:
    """One path of the waste table: its copies across layers (dive's leaf rule) and the spec's hidden bytes."""

    path: str
    count: int
    cumulative_size: int
    min_size: int
    layers: tuple[int, ...]
    hidden_bytes: int
    visible: bool

    @property
    def dive_wasted(self) -> int:
        """dive's wasted bytes for this path: every copy, the kept one too, when there are two or more."""
        return self.cumulative_size if self.count >= 2 else 0

    @property
    def reclaimable(self) -> int:
        """Bytes saved by keeping one copy (dive #685's ``cumulative − min``)."""
        return self.cumulative_size - self.min_size if self.count >= 2 else 0


@dataclass(frozen=True)
class WasteSummary:
    """Image-level waste: dive's numbers (``efficiency``, ``wasted_bytes``, ``user_wasted_percent``) so they
    compare with dive's, the reclaimable bytes, and the spec-correct ``hidden_bytes``."""

    efficiency: float
    wasted_bytes: int
    user_wasted_percent: float
    reclaimable_bytes: int
    hidden_bytes: int
    size_bytes: int
    user_size_bytes: int
    squashed_bytes: int

    def ci_check(self, lowest_efficiency: float | None = 0.9, highest_wasted_bytes: int | None = None,
                 highest_user_wasted_percent: float | None = 0.1) -> list[str]:
        """The failed rules of dive's CI (its defaults; ``None`` disables a rule): empty when the image passes."""
        failed = []
        if lowest_efficiency is not None and self.efficiency < lowest_efficiency:
            failed.append(f"efficiency {self.efficiency:.4f} is below {lowest_efficiency}")
        if highest_wasted_bytes is not None and self.wasted_bytes > highest_wasted_bytes:
            failed.append(f"wasted bytes {self.wasted_bytes} exceed {highest_wasted_bytes}")
        if highest_user_wasted_percent is not None and self.user_wasted_percent > highest_user_wasted_percent:
            failed.append(f"user wasted percent {self.user_wasted_percent:.4f} exceeds {highest_user_wasted_percent}")
        return failed

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def waste(layers: Sequence[LayerFiles], squashed: SquashResult | None = None) -> tuple[list[WastePath], WasteSummary]:
    """Per-path copies and the image summary, with dive v0.13's rules for its numbers.

    dive counts each layer's leaf entries (files, links, empty directories, whiteouts at the path they delete;
    ``.wh..wh.*`` names, opaque whiteouts included, dropped): a whiteout counts 0, or the bytes under it when it
    deletes a directory of the layers below. ``efficiency = Σ min / Σ cumulative``; wasted = Σ cumulative of paths
    seen twice or more; user wasted percent = wasted / the bytes of layers 1 and up.
    """
    squashed = squashed if squashed is not None else squash(layers)
    sizes: dict[str, list[int]] = {}
    where: dict[str, list[int]] = {}
    stacked: dict[str, int] = {}
    stacked_children: dict[str, set[str]] = {}

    def stacked_sum(path: str) -> int | None:
        if path not in stacked_children:
            return None
        total, stack = 0, list(stacked_children[path])
        while stack:
            p = stack.pop()
            total += stacked.get(p, 0)
            stack.extend(stacked_children.get(p, ()))
        return total

    def stacked_remove(path: str) -> None:
        stack = [path]
        while stack:
            p = stack.pop()
            stacked.pop(p, None)
            stack.extend(stacked_children.pop(p, ()))
        parent = posixpath.dirname(path)
        if parent in stacked_children:
            stacked_children[parent].discard(path)

    for index, layer in enumerate(layers):
        entries = [e for e in layer.entries if e.type not in ("meta", "opaque_whiteout") and e.path != "/"]
        parents: set[str] = set()
        for e in entries:
            p = posixpath.dirname(e.path)
            while p not in parents and p != "/":
                parents.add(p)
                p = posixpath.dirname(p)
        for e in entries:
            if e.type == "whiteout":
                target = e.whiteout_target or e.path
                under = stacked_sum(target)
                size, path = (under if under is not None and target in stacked_children else 0), target
            else:
                if e.path in parents:
                    continue
                size, path = e.size, e.path
            sizes.setdefault(path, []).append(size)
            where.setdefault(path, []).append(index)
        for e in entries:
            if e.type == "whiteout":
                stacked_remove(e.whiteout_target or e.path)
        for e in entries:
            if e.type == "whiteout":
                continue
            if e.type != "dir":
                stacked_remove(e.path)
            stacked[e.path] = e.size
            child, parent = e.path, posixpath.dirname(e.path)
            while True:
                kids = stacked_children.setdefault(parent, set())
                if child in kids:
                    break
                kids.add(child)
                if parent == "/":
                    break
                child, parent = parent, posixpath.dirname(parent)
            if e.type == "dir":
                stacked_children.setdefault(e.path, set())
    visible = {n.entry.path for n in squashed.entries}
    rows: list[WastePath] = []
    for path, sz in sizes.items():
        rows.append(WastePath(path, len(sz), sum(sz), min(sz), tuple(where[path]),
                              squashed.hidden_by_path.get(path, 0), path in visible))
    for path, hidden in squashed.hidden_by_path.items():
        if path not in sizes and hidden:
            rows.append(WastePath(path, 0, 0, 0, (), hidden, path in visible))
    total_cum = sum(r.cumulative_size for r in rows)
    total_min = sum(r.min_size for r in rows)
    size_bytes = sum(layer.size_sum for layer in layers)
    user_size = sum(layer.size_sum for layer in layers[1:])
    wasted = sum(r.dive_wasted for r in rows)
    squashed_bytes = sum(n.entry.size for n in squashed.entries)
    summary = WasteSummary(
        efficiency=total_min / total_cum if total_cum else 1.0,
        wasted_bytes=wasted,
        user_wasted_percent=wasted / user_size if user_size else 0.0,
        reclaimable_bytes=sum(r.reclaimable for r in rows),
        hidden_bytes=size_bytes - squashed_bytes,
        size_bytes=size_bytes,
        user_size_bytes=user_size,
        squashed_bytes=squashed_bytes,
    )
    rows.sort(key=lambda r: (-max(r.dive_wasted, r.hidden_bytes), r.path))
    return rows, summary


@dataclass(frozen=True)
class LayerLimits:
    """What the streamed layer reader accepts before it stops with :class:`~ocinb.errors.LayerLimitError`.

    A layer may expand to ``max_expanded_bytes`` (64 GiB), and past ``ratio_floor`` (16 MiB) to no more than
    ``max_ratio`` (256) times its compressed size: a gzip bomb of a few KB stops at 16 MiB, a real layer (2-10×)
    never meets it. ``max_entries`` (2,000,000) bounds the table, ``max_header_bytes`` (1 MiB) each PAX or GNU
    long-name header, so a hostile header cannot take memory. ``max_toc_bytes`` (64 MiB) bounds an eStargz or
    zstd:chunked table of contents, compressed and expanded (containers/storage allows 150 MiB; a bigger one is
    not fetched and the layer is streamed instead). ``None`` switches a rule off.
    """

    max_expanded_bytes: int | None = 64 * 1024**3
    max_ratio: float | None = 256.0
    ratio_floor: int = 16 * 1024**2
    max_entries: int | None = 2_000_000
    max_header_bytes: int | None = 1024**2
    max_toc_bytes: int | None = 64 * 1024**2
