"""What changed between two images, reading only what differs: layers matched by position and ChainID, the
squashed trees compared path by path, history and config aligned, the package inventories compared.

The layers the two images share as a prefix (same digests, or the same ChainIDs computed from the configs'
``rootfs.diff_ids`` as the image-spec says) are the same filesystem on both sides, so a path neither side's
later layers touch is the same in both and is never looked at. The shared base is consulted only when its
contents decide the answer: a differing layer's whiteout reaching into it, or a file a cataloger reads written
on one side only (a package database or metadata file; not executables). Then its tables come from the content
cache when known, else it is read once. Otherwise a path written on one side only is reported against the base
unseen (``base_unknown``), Go binaries' packages included.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..endpoints.repository import RepositoryEndpoints
from ..models import Descriptor, ImageConfig, Platform
from ..tarfs import LayerFiles, LayerLimits, SquashedEntry, SquashResult, squash, waste
from . import catalogers
from .capture import LayerCapture, cached_layers, capture_layers, tree_entries
from .catalogers import PackageRow
from .describe import ImageDetails, describe_image

SEMANTIC_IGNORES = ("mtime", "names")
"""What ``semantic=True`` leaves out, as diffoci's ``--semantic`` does: times, user/group names (and the tar
format, which a file table does not keep)."""


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The image-spec's ChainIDs: ``ChainID(L0) = DiffID(L0)``, ``ChainID(Ln) = sha256(ChainID(Ln-1) + " " +
    DiffID(Ln))`` (hex digest, ``sha256:`` prefixed)."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(str(diff_id))
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def _config_chain(config: ImageConfig | None, count: int) -> list[str] | None:
    if config is None or config.rootfs is None or len(config.rootfs.diff_ids) != count:
        return None
    return chain_ids([str(d) for d in config.rootfs.diff_ids])


def shared_prefix(a: Sequence[Descriptor], b: Sequence[Descriptor], chain_a: Sequence[str] | None,
                  chain_b: Sequence[str] | None) -> int:
    """How many bottom layers the images share: the same digest, or the same ChainID, at every position below."""
    k = 0
    while k < min(len(a), len(b)):
        same_chain = chain_a is not None and chain_b is not None and chain_a[k] == chain_b[k]
        if a[k].digest != b[k].digest and not same_chain:
            break
        k += 1
    return k


# --- Debian and Python versions -----------------------------------------------------------------------------


def _order(c: str) -> int:
    if c.isdigit():
        return 0
    if c.isalpha() and c.isascii():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's ``verrevcmp``: non-digit runs by :func:`_order` (``~`` before everything, letters before the rest),
    digit runs numerically."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_deb(version: str) -> tuple[int, str, str]:
    epoch, colon, rest = version.partition(":")
    if not colon:
        epoch, rest = "0", version
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return (int(epoch) if epoch.isdigit() else 0), upstream, revision


def compare_deb(a: str, b: str) -> int:
    """Debian version order (dpkg's algorithm: epoch, then upstream and revision by ``verrevcmp``): <0, 0, >0."""
    ea, ua, ra = _split_deb(a)
    eb, ub, rb = _split_deb(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


_RUN = re.compile(r"\d+|[A-Za-z]+")


def compare_plain(a: str, b: str) -> int:
    """Other ecosystems (pypi included: ``packaging`` is not a dependency, so not PEP 440): numeric runs as
    numbers, letter runs as text, a letter run sorting before a number (``1.0rc1`` < ``1.0.1``), shorter first."""

    def key(v: str) -> list[tuple[int, int, str]]:
        return [(1, int(t), "") if t.isdigit() else (0, 0, t.lower()) for t in _RUN.findall(v)]

    ka, kb = key(a), key(b)
    return (ka > kb) - (ka < kb)


def compare_versions(ecosystem: str, a: str, b: str) -> int:
    """The order of two versions of one ecosystem's package: dpkg's for deb, :func:`compare_plain` otherwise."""
    return compare_deb(a, b) if ecosystem == "deb" else compare_plain(a, b)


# --- results ------------------------------------------------------------------------------------------------


@dataclass
class FileChange:
    """One path that differs between the squashed trees: ``change`` (added/removed/modified), what changed, and
    each side's entry (``None`` where absent or, with ``base_unknown``, in the shared base that was not read)."""

    path: str
    change: str
    changed: tuple[str, ...]
    a: SquashedEntry | None
    b: SquashedEntry | None
    base_unknown: bool = False


@dataclass
class PackageChange:
    """One package whose presence or version differs: added/removed/upgraded/downgraded/changed."""

    ecosystem: str
    name: str
    arch: str | None
    change: str
    a: PackageRow | None
    b: PackageRow | None


@dataclass
class Side:
    """One image of the pair: its details, ChainIDs (``None`` without matching diff_ids), the tables read
    (``None`` for a layer not read), the squash when the whole tree was known, and its catalog."""

    details: ImageDetails
    chain: list[str] | None
    tables: list[LayerFiles | None]
    squashed: SquashResult | None = None
    wasted: int | None = None
    packages: list[PackageRow] = field(default_factory=list)


@dataclass
class DiffResult:
    """Everything :func:`diff_images` found; ``shared`` is the number of bottom layers both images share and
    ``base_read`` whether their tables were consulted."""

    a: Side
    b: Side
    shared: int
    base_read: bool
    files: list[FileChange]
    packages: list[PackageChange]
    semantic: bool
    ignore_paths: tuple[str, ...]


# --- comparing trees ----------------------------------------------------------------------------------------


def _owner(e: SquashedEntry) -> tuple[int, int]:
    return e.entry.uid, e.entry.gid


def compare_entries(a: SquashedEntry, b: SquashedEntry, semantic: bool = True) -> tuple[str, ...]:
    """What differs between two entries of one path: ``type``, ``size``, ``content`` (same size, other sha256),
    ``mode``, ``owner``, ``link``, ``device``, ``xattrs`` (and ``mtime``, ``names`` unless ``semantic``). The same
    entry of the shared base on both sides is equal; two entries of the same size of which one has no digest (a
    base table cached without digests) are ``content_unknown``."""
    ea, eb = a.entry, b.entry
    if ea is eb:
        return ()
    if ea.type != eb.type:
        return ("type",)
    if a.implicit or b.implicit:
        return ()
    out: list[str] = []
    if ea.type in ("file", "hardlink"):
        if a.content_size != b.content_size:
            out.append("size")
        if a.content_size == b.content_size:
            if a.content_digest is None or b.content_digest is None:
                out.append("content_unknown")
            elif a.content_digest != b.content_digest:
                out.append("content")
    if ea.mode != eb.mode:
        out.append("mode")
    if _owner(a) != _owner(b):
        out.append("owner")
    if ea.linkname != eb.linkname and ea.type in ("symlink", "hardlink"):
        out.append("link")
    if (ea.devmajor, ea.devminor) != (eb.devmajor, eb.devminor):
        out.append("device")
    if (ea.xattrs or {}) != (eb.xattrs or {}):
        out.append("xattrs")
    if not semantic:
        if ea.mtime != eb.mtime:
            out.append("mtime")
        if (ea.uname, ea.gname) != (eb.uname, eb.gname):
            out.append("names")
    return tuple(out)


def ignored(path: str, globs: Sequence[str]) -> bool:
    """Whether ``path`` (``/``-rooted) matches one of ``globs`` (with or without the leading ``/``; a glob
    naming a directory also covers what is under it)."""
    bare = path.lstrip("/")
    for glob in globs:
        g = glob.rstrip("/")
        gb = g.lstrip("/")
        if fnmatch.fnmatchcase(bare, gb) or fnmatch.fnmatchcase(bare, gb + "/*") or fnmatch.fnmatchcase(path, g):
            return True
    return False


def diff_trees(a: SquashResult, b: SquashResult, *, semantic: bool = True, ignore_paths: Sequence[str] = (),
               base_unknown: bool = False) -> list[FileChange]:
    """The paths that differ between two squashed trees, sorted. With ``base_unknown`` the trees are only the
    layers above a shared base that was not read: a path on one side only is reported with that flag, and
    implied parent directories are left out (the base may hold them)."""
    ta = {n.entry.path: n for n in a.entries}
    tb = {n.entry.path: n for n in b.entries}
    out: list[FileChange] = []
    for path in sorted(ta.keys() | tb.keys()):
        if ignore_paths and ignored(path, ignore_paths):
            continue
        na, nb = ta.get(path), tb.get(path)
        if na is not None and nb is not None:
            changed = compare_entries(na, nb, semantic)
            if changed:
                out.append(FileChange(path, "modified", changed, na, nb))
            continue
        node = na if na is not None else nb
        if node is None or (base_unknown and node.implicit):
            continue
        out.append(FileChange(path, "removed" if nb is None else "added", (), na, nb, base_unknown))
    return out


def _package_key(row: PackageRow) -> tuple[str, str, str, str]:
    if row.ecosystem in ("deb", "apk", "rpm"):
        where = row.path
    elif row.ecosystem in ("pypi", "npm"):
        where = posixpath.dirname(posixpath.dirname(row.path))
    else:
        where = row.path
    return row.ecosystem, row.name or "", row.arch or "", where


def diff_packages(a: Sequence[PackageRow], b: Sequence[PackageRow]) -> list[PackageChange]:
    """Packages present on one side only (added/removed) or at another version (upgraded/downgraded, by
    :func:`compare_versions`; ``changed`` when the order is equal but the strings are not)."""
    ka = {_package_key(r): r for r in a if r.warning is None}
    kb = {_package_key(r): r for r in b if r.warning is None}
    out: list[PackageChange] = []
    for key in sorted(ka.keys() | kb.keys()):
        ra, rb = ka.get(key), kb.get(key)
        eco, name, arch, _ = key
        if ra is None or rb is None:
            out.append(PackageChange(eco, name, arch or None, "added" if ra is None else "removed", ra, rb))
            continue
        if (ra.version or "") == (rb.version or ""):
            continue
        order = compare_versions(eco, ra.version or "", rb.version or "")
        change = "upgraded" if order < 0 else "downgraded" if order > 0 else "changed"
        out.append(PackageChange(eco, name, arch or None, change, ra, rb))
    return out


def config_items(config: ImageConfig | None) -> dict[str, str]:
    """An image config flattened to ``key → value`` text: ``Env.NAME``, ``Labels.name``, ``ExposedPorts.80/tcp``,
    ``Entrypoint``, ``Cmd``, ``User``, … and the platform fields; history and rootfs are compared elsewhere."""
    if config is None:
        return {}
    out: dict[str, str] = {}
    for key in ("architecture", "os", "variant", "os_version", "author"):
        value = getattr(config, key)
        if value is not None:
            out[key] = str(value)
    cc = config.config
    if cc is None:
        return out
    for item in cc.env or []:
        name, _, value = item.partition("=")
        out[f"Env.{name}"] = value
    for name, value in (cc.labels or {}).items():
        out[f"Labels.{name}"] = value
    for port in cc.exposed_ports or {}:
        out[f"ExposedPorts.{port}"] = "{}"
    for vol in cc.volumes or {}:
        out[f"Volumes.{vol}"] = "{}"
    for key, value in (("Entrypoint", cc.entrypoint), ("Cmd", cc.cmd)):
        if value is not None:
            out[key] = json.dumps(value)
    for key, value2 in (("User", cc.user), ("WorkingDir", cc.working_dir), ("StopSignal", cc.stop_signal)):
        if value2 is not None:
            out[key] = value2
    return out


# --- fetching -----------------------------------------------------------------------------------------------


def _has_whiteouts(layers: Sequence[LayerCapture]) -> bool:
    return any(e.type in ("whiteout", "opaque_whiteout") for c in layers for e in c.table.entries)


def _one_sided_wanted(changes: Sequence[FileChange]) -> bool:
    """Whether a path on one side only is a file a database cataloger reads (a package database, metadata, os-
    release): then the base's version of it decides the package diff. Executables (the Go cataloger wants every
    one) do not count: a new binary on one side is reported like any one-sided file, against the base unseen."""
    for c in changes:
        node = c.a or c.b
        if (c.base_unknown and node is not None and node.entry.type in ("file", "hardlink", "symlink")
                and any(not k.executables for k in catalogers.wanted(node.entry.path, node.entry.mode))):
            return True
    return False


def _catalog(layers: Sequence[LayerCapture], offset: int) -> tuple[SquashResult, list[PackageRow]]:
    squashed = squash([c.table for c in layers])
    rows = catalogers.catalog_tree(tree_entries(squashed, layers)).rows
    shifted = [PackageRow(**{**r.__dict__, "layer": None if r.layer is None else r.layer + offset}) for r in rows]
    return squashed, shifted


async def diff_images(repo_a: RepositoryEndpoints, ref_a: str, repo_b: RepositoryEndpoints, ref_b: str,
                      platform: str | Platform | None = None, *, semantic: bool = True,
                      ignore_paths: Sequence[str] = (), read_base: bool | None = None,
                      limits: LayerLimits | None = None) -> DiffResult:
    """Compare ``ref_a`` (in ``repo_a``) with ``ref_b``: the layers above the shared prefix are read (with
    content digests and the catalogers' files), the shared base only when needed (see the module docstring) or
    when ``read_base`` is true, and never when it is false."""
    da, db = await asyncio.gather(describe_image(repo_a, ref_a, platform), describe_image(repo_b, ref_b, platform))
    la, lb = da.image.layers, db.image.layers
    chain_a, chain_b = _config_chain(da.config, len(la)), _config_chain(db.config, len(lb))
    k = shared_prefix(la, lb, chain_a, chain_b)
    upper_a = await capture_layers(repo_a, la[k:], digests=True, limits=limits)
    upper_b = await capture_layers(repo_b, lb[k:], digests=True, limits=limits)
    base: list[LayerCapture] | None = [] if k == 0 else (cached_layers(repo_a, la[:k], digests=True)
                                                         or cached_layers(repo_a, la[:k]))
    if base is None and read_base is not False and (read_base or _has_whiteouts(upper_a) or _has_whiteouts(upper_b)):
        base = await capture_layers(repo_a, la[:k], digests=True, limits=limits)
    changes: list[FileChange] = []
    if base is None:
        sa, pa = _catalog(upper_a, k)
        sb, pb = _catalog(upper_b, k)
        changes = diff_trees(sa, sb, semantic=semantic, ignore_paths=ignore_paths, base_unknown=True)
        if read_base is not False and _one_sided_wanted(changes):
            base = await capture_layers(repo_a, la[:k], digests=True, limits=limits)
    side_a = Side(da, chain_a, [None] * k + [c.table for c in upper_a])
    side_b = Side(db, chain_b, [None] * k + [c.table for c in upper_b])
    if base is not None:
        sa, pa = _catalog([*base, *upper_a], 0)
        sb, pb = _catalog([*base, *upper_b], 0)
        changes = diff_trees(sa, sb, semantic=semantic, ignore_paths=ignore_paths)
        for side, upper, squashed in ((side_a, upper_a, sa), (side_b, upper_b, sb)):
            side.tables = [c.table for c in [*base, *upper]]
            side.squashed = squashed
            side.wasted = waste(side.tables, squashed)[1].wasted_bytes  # type: ignore[arg-type]
    side_a.packages, side_b.packages = pa, pb
    return DiffResult(side_a, side_b, k, base is not None and k > 0, changes, diff_packages(pa, pb), semantic,
                      tuple(ignore_paths))


def history_rows(a: ImageConfig | None, b: ImageConfig | None) -> list[dict[str, Any]]:
    """The two histories aligned step by step (empty layers included)."""
    ha, hb = (a.history or []) if a else [], (b.history or []) if b else []
    rows = []
    for i in range(max(len(ha), len(hb))):
        x = ha[i] if i < len(ha) else None
        y = hb[i] if i < len(hb) else None
        rows.append({"step": i, "a_created_by": x.created_by if x else None,
                     "b_created_by": y.created_by if y else None,
                     "a_empty_layer": x.empty_layer if x else None, "b_empty_layer": y.empty_layer if y else None,
                     "same": x is not None and y is not None and x.created_by == y.created_by
                     and x.empty_layer == y.empty_layer})
    return rows
