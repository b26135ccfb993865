"""pandas DataFrames of what is inside an image's layers: every file, the squashed filesystem, the wasted space.

Pure tabulation of :mod:`ocinb.tarfs`'s tables (read by :mod:`ocinb.ops.layer_reader`), built column by column
so tens of thousands of rows stay fast; columns are listed in each docstring and in ``docs/columns.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .frames import STR, UTC_TIME
from .tarfs import LayerFiles, SquashResult, WastePath

FILES_COLUMNS = {
    "layer_index": "int64", "layer_digest": STR, "entry_index": "int64", "path": STR, "raw_name": STR, "type": STR,
    "tar_type": STR, "size": "int64", "mode": "int64", "uid": "int64", "gid": "int64", "uname": STR, "gname": STR,
    "mtime": UTC_TIME, "linkname": STR, "whiteout_target": STR, "devmajor": "Int64", "devminor": "Int64",
    "xattrs": STR, "digest": STR, "flags": STR, "source": STR,
}
FILESYSTEM_COLUMNS = {
    "path": STR, "type": STR, "size": "int64", "content_size": "int64", "mode": "int64", "uid": "int64",
    "gid": "int64", "mtime": UTC_TIME, "linkname": STR, "layer_index": "int64", "layer_digest": STR,
    "first_layer": "int64", "n_versions": "int64", "implicit": "bool", "digest": STR, "flags": STR, "source": STR,
}
WASTE_COLUMNS = {
    "path": STR, "count": "int64", "cumulative_size": "int64", "min_size": "int64", "wasted_bytes": "int64",
    "reclaimable_bytes": "int64", "hidden_bytes": "int64", "visible": "bool", "layers": STR,
}


_ENTRY_COLUMNS = [c for c in FILES_COLUMNS if c not in ("layer_index", "layer_digest")]


def _frame(columns: dict[str, list[Any]], spec: dict[str, str]) -> pd.DataFrame:
    data: dict[str, pd.Series] = {}
    for name, dtype in spec.items():
        values = columns[name]
        if dtype == UTC_TIME:
            data[name] = pd.Series(pd.to_datetime(pd.Series(values, dtype="float64"), unit="s", utc=True)
                                   ).astype(UTC_TIME)
        elif dtype == "Int64":
            data[name] = pd.Series([pd.NA if v is None else v for v in values], dtype="Int64")
        else:
            data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, columns=list(spec))


def _flags(flags: Sequence[str]) -> str | None:
    return ",".join(flags) if flags else None


def _xattrs(x: dict[str, str] | None) -> str | None:
    return json.dumps(x, sort_keys=True, ensure_ascii=True) if x else None


def files_frame(layers: Sequence[LayerFiles], indexes: Sequence[int]) -> pd.DataFrame:
    """One row per tar entry per layer, in layer then tar order.

    Columns: ``layer_index``, ``layer_digest``, ``entry_index`` (position in the tar), ``path`` (``/``-rooted,
    clean), ``raw_name`` (as stored), ``type`` (file, dir, symlink, hardlink, char, block, fifo, whiteout,
    opaque_whiteout, meta, other), ``tar_type`` (the typeflag), ``size`` (header size; 0 for hardlinks), ``mode``
    (permission bits), ``uid``, ``gid``, ``uname``, ``gname``, ``mtime`` (UTC), ``linkname``, ``whiteout_target``
    (the path a whiteout deletes), ``devmajor``/``devminor`` (devices), ``xattrs`` (JSON), ``digest`` (sha256 of
    the content with ``digests=True``), ``flags`` (comma-separated: absolute, dotdot, non_utf8, bare_whiteout),
    ``source`` (where the row came from: ``tar``, ``estargz-toc``, ``zstd-chunked-toc``).
    """
    cols: dict[str, list[Any]] = {name: [] for name in FILES_COLUMNS}
    for layer, index in zip(layers, indexes, strict=True):
        n = len(layer.entries)
        cols["layer_index"] += [index] * n
        cols["layer_digest"] += [layer.digest] * n
        source = layer.columns
        for name in _ENTRY_COLUMNS:
            values = source[name] if source is not None else [getattr(e, name) for e in layer.entries]
            if name in ("uname", "gname"):
                values = [v or None for v in values]
            elif name == "flags":
                values = [_flags(v) for v in values]
            elif name == "xattrs":
                values = [_xattrs(v) for v in values]
            cols[name] += values
    return _frame(cols, FILES_COLUMNS)


def filesystem_frame(squashed: SquashResult, layers: Sequence[LayerFiles]) -> pd.DataFrame:
    """One row per path of the squashed filesystem (whiteouts and opaque whiteouts applied), sorted by path.

    Columns: ``path``, ``type``, ``size`` (header size), ``content_size`` (a hardlink's target size, else ``size``),
    ``mode``, ``uid``, ``gid``, ``mtime``, ``linkname``, ``layer_index`` and ``layer_digest`` (the layer that last
    wrote the path), ``first_layer`` (the first that wrote it), ``n_versions`` (how many layers wrote it, deleted
    versions included), ``implicit`` (a parent directory no layer listed), ``digest``, ``flags`` (the entry's, plus
    dangling_hardlink, symlink_loop, link_escapes, parent_replaced, duplicate), ``source``.
    """
    cols: dict[str, list[Any]] = {name: [] for name in FILESYSTEM_COLUMNS}
    for n in squashed.entries:
        e = n.entry
        cols["path"].append(e.path)
        cols["type"].append(e.type)
        cols["size"].append(e.size)
        cols["content_size"].append(n.content_size)
        cols["mode"].append(e.mode)
        cols["uid"].append(e.uid)
        cols["gid"].append(e.gid)
        cols["mtime"].append(e.mtime)
        cols["linkname"].append(e.linkname)
        cols["layer_index"].append(n.layer_index)
        cols["layer_digest"].append(layers[n.layer_index].digest)
        cols["first_layer"].append(n.first_layer)
        cols["n_versions"].append(n.n_versions)
        cols["implicit"].append(n.implicit)
        cols["digest"].append(n.content_digest)
        cols["flags"].append(_flags(n.flags))
        cols["source"].append(e.source)
    return _frame(cols, FILESYSTEM_COLUMNS)


def waste_frame(rows: Sequence[WastePath]) -> pd.DataFrame:
    """One row per path that has two or more copies across layers or lost bytes to a later layer, most wasted first.

    Columns: ``path``, ``count`` (copies, dive's leaf rule), ``cumulative_size`` and ``min_size`` (of those
    copies), ``wasted_bytes`` (dive's: every copy when count ≥ 2), ``reclaimable_bytes`` (cumulative − min),
    ``hidden_bytes`` (spec-correct: bytes of this path that later layers overwrote, deleted or hid under an opaque
    directory), ``visible`` (whether the path is in the squashed filesystem), ``layers`` (indexes, comma-separated).
    """
    keep = [r for r in rows if r.count >= 2 or r.hidden_bytes > 0]
    cols: dict[str, list[Any]] = {
        "path": [r.path for r in keep], "count": [r.count for r in keep],
        "cumulative_size": [r.cumulative_size for r in keep], "min_size": [r.min_size for r in keep],
        "wasted_bytes": [r.dive_wasted for r in keep], "reclaimable_bytes": [r.reclaimable for r in keep],
        "hidden_bytes": [r.hidden_bytes for r in keep], "visible": [r.visible for r in keep],
        "layers": [",".join(map(str, r.layers)) for r in keep],
    }
    return _frame(cols, WASTE_COLUMNS)
