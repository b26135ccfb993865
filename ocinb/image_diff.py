"""The tables of an image diff and its summary view: pure functions from :class:`~ocinb.ops.imagediff.DiffResult`
to DataFrames, and :class:`ImageDiff`, which holds them and renders an escaped HTML summary (no JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .frames import STR, typed_frame
from .ops.imagediff import DiffResult, config_items, history_rows
from .tarfs import SquashedEntry
from .views import esc, human_size

FILES_COLUMNS = {
    "path": STR, "change": STR, "changed": STR, "a_type": STR, "b_type": STR, "a_size": "Int64", "b_size": "Int64",
    "a_digest": STR, "b_digest": STR, "a_mode": STR, "b_mode": STR, "a_owner": STR, "b_owner": STR,
    "a_link": STR, "b_link": STR, "a_layer": "Int64", "b_layer": "Int64", "base_unknown": "bool",
}
LAYERS_COLUMNS = {
    "position": "int64", "a_digest": STR, "b_digest": STR, "a_chain_id": STR, "b_chain_id": STR,
    "same_digest": "bool", "same_chain_id": "bool", "shared": "bool", "a_size": "Int64", "b_size": "Int64",
    "a_entries": "Int64", "b_entries": "Int64", "read": "bool",
}
HISTORY_COLUMNS = {"step": "int64", "a_created_by": STR, "b_created_by": STR, "a_empty_layer": "boolean",
                   "b_empty_layer": "boolean", "same": "bool"}
CONFIG_COLUMNS = {"key": STR, "a": STR, "b": STR, "change": STR}
SIZES_COLUMNS = {"measure": STR, "a": "Int64", "b": "Int64", "delta": "Int64"}
PACKAGES_COLUMNS = {"ecosystem": STR, "name": STR, "arch": STR, "change": STR, "a_version": STR, "b_version": STR,
                    "a_layer": "Int64", "b_layer": "Int64", "path": STR}


def _side(prefix: str, n: SquashedEntry | None) -> dict[str, Any]:
    if n is None:
        return {}
    e = n.entry
    return {f"{prefix}_type": e.type, f"{prefix}_size": n.content_size if e.type in ("file", "hardlink") else None,
            f"{prefix}_digest": n.content_digest, f"{prefix}_mode": None if n.implicit else f"{e.mode:04o}",
            f"{prefix}_owner": None if n.implicit else f"{e.uid}:{e.gid}",
            f"{prefix}_link": e.linkname, f"{prefix}_layer": n.layer_index}


def files_frame(result: DiffResult) -> pd.DataFrame:
    """One row per path that differs: ``change``, ``changed`` (comma-separated: type, size, content, mode,
    owner, link, device, xattrs, and mtime, names unless semantic), and each side's attributes."""
    rows = [{"path": c.path, "change": c.change, "changed": ",".join(c.changed) or None, **_side("a", c.a),
             **_side("b", c.b), "base_unknown": c.base_unknown} for c in result.files]
    return typed_frame(rows, FILES_COLUMNS)


def layers_frame(result: DiffResult) -> pd.DataFrame:
    """The layers side by side by position, with their ChainIDs and whether they are the shared base."""
    la, lb = result.a.details.image.layers, result.b.details.image.layers
    rows = []
    for i in range(max(len(la), len(lb))):
        da = la[i] if i < len(la) else None
        db = lb[i] if i < len(lb) else None
        ca = result.a.chain[i] if result.a.chain and i < len(result.a.chain) else None
        cb = result.b.chain[i] if result.b.chain and i < len(result.b.chain) else None
        ta = result.a.tables[i] if i < len(result.a.tables) else None
        tb = result.b.tables[i] if i < len(result.b.tables) else None
        rows.append({"position": i, "a_digest": da.digest if da else None, "b_digest": db.digest if db else None,
                     "a_chain_id": ca, "b_chain_id": cb,
                     "same_digest": da is not None and db is not None and da.digest == db.digest,
                     "same_chain_id": ca is not None and ca == cb, "shared": i < result.shared,
                     "a_size": da.size if da else None, "b_size": db.size if db else None,
                     "a_entries": len(ta.entries) if ta else None, "b_entries": len(tb.entries) if tb else None,
                     "read": i >= result.shared or result.base_read})
    return typed_frame(rows, LAYERS_COLUMNS)


def history_frame(result: DiffResult) -> pd.DataFrame:
    """The two histories aligned by step, empty layers included."""
    return typed_frame(history_rows(result.a.details.config, result.b.details.config), HISTORY_COLUMNS)


def config_frame(result: DiffResult, *, all_keys: bool = False) -> pd.DataFrame:
    """The flattened config keys whose values differ (every key with ``all_keys``): both values and the change."""
    ca, cb = config_items(result.a.details.config), config_items(result.b.details.config)
    rows = []
    for key in sorted(ca.keys() | cb.keys()):
        a, b = ca.get(key), cb.get(key)
        change = "added" if a is None else "removed" if b is None else "modified" if a != b else "same"
        if change != "same" or all_keys:
            rows.append({"key": key, "a": a, "b": b, "change": change})
    return typed_frame(rows, CONFIG_COLUMNS)


def sizes_frame(result: DiffResult) -> pd.DataFrame:
    """compressed, uncompressed, squashed and wasted bytes of both images and the delta (b − a). Without the
    shared base read, uncompressed/squashed/wasted are unknown per side (``<NA>``); the uncompressed delta is
    still exact (the base is the same on both sides)."""
    def total(values: list[int | None]) -> int | None:
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    ca = sum(d.size for d in result.a.details.image.layers)
    cb = sum(d.size for d in result.b.details.image.layers)
    ua = total([t.expanded_size if t else None for t in result.a.tables])
    ub = total([t.expanded_size if t else None for t in result.b.tables])
    k = result.shared
    upper_delta = total([t.expanded_size if t else None for t in result.b.tables[k:]])
    upper_a = total([t.expanded_size if t else None for t in result.a.tables[k:]])
    udelta = upper_delta - upper_a if upper_delta is not None and upper_a is not None else None

    def squashed(sq: Any) -> int | None:
        return None if sq is None else sum(n.content_size for n in sq.entries if n.entry.type == "file")

    sa, sb = squashed(result.a.squashed), squashed(result.b.squashed)
    rows: list[dict[str, Any]] = [{"measure": "compressed", "a": ca, "b": cb, "delta": cb - ca},
            {"measure": "uncompressed", "a": ua, "b": ub, "delta": udelta},
            {"measure": "squashed", "a": sa, "b": sb, "delta": sb - sa if sa is not None and sb is not None else None},
            {"measure": "wasted", "a": result.a.wasted, "b": result.b.wasted,
             "delta": result.b.wasted - result.a.wasted
             if result.a.wasted is not None and result.b.wasted is not None else None}]
    return typed_frame(rows, SIZES_COLUMNS)


def packages_frame(result: DiffResult) -> pd.DataFrame:
    """Packages added, removed, upgraded or downgraded (Debian order for deb, a plain order otherwise)."""
    rows = [{"ecosystem": p.ecosystem, "name": p.name, "arch": p.arch, "change": p.change,
             "a_version": p.a.version if p.a else None, "b_version": p.b.version if p.b else None,
             "a_layer": p.a.layer if p.a else None, "b_layer": p.b.layer if p.b else None,
             "path": p.b.path if p.b else p.a.path if p.a else None} for p in result.packages]
    return typed_frame(rows, PACKAGES_COLUMNS)


TABLES = ("files", "layers", "history", "config", "sizes", "packages")
"""The tables of an :class:`ImageDiff`, in the order the summary shows them."""


@dataclass
class ImageDiff:
    """What changed from image ``a`` to image ``b``: the DataFrames :data:`TABLES` and an HTML summary."""

    a: str
    b: str
    files: pd.DataFrame
    layers: pd.DataFrame
    history: pd.DataFrame
    config: pd.DataFrame
    sizes: pd.DataFrame
    packages: pd.DataFrame
    shared_layers: int
    base_read: bool

    @classmethod
    def of(cls, a: str, b: str, result: DiffResult) -> ImageDiff:
        """The tables of ``result`` (see :func:`ocinb.ops.imagediff.diff_images`)."""
        return cls(a, b, files_frame(result), layers_frame(result), history_frame(result), config_frame(result),
                   sizes_frame(result), packages_frame(result), result.shared, result.base_read)

    def table(self, name: str) -> pd.DataFrame:
        """One of :data:`TABLES` by name."""
        if name not in TABLES:
            raise ValueError(f"no table {name!r}: one of {', '.join(TABLES)}")
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def counts(self) -> dict[str, int]:
        """Files added/removed/modified, packages changed, config keys changed."""
        ch = self.files["change"].value_counts()
        return {"added": int(ch.get("added", 0)), "removed": int(ch.get("removed", 0)),
                "modified": int(ch.get("modified", 0)), "packages": len(self.packages), "config": len(self.config)}

    def __repr__(self) -> str:
        c = self.counts()
        unread = ", not read" if self.shared_layers and not self.base_read else ""
        return (f"ImageDiff({self.a!r} → {self.b!r}: {c['added']} added, {c['removed']} removed, {c['modified']} "
                f"modified files; {c['packages']} package and {c['config']} config changes; "
                f"{self.shared_layers} shared layers{unread})")

    def _repr_html_(self) -> str:
        c = self.counts()
        delta = self.sizes.set_index("measure")["delta"]
        compressed = delta.get("compressed")
        sign = "+" if compressed is not None and compressed >= 0 else "−"
        parts = [f"<div class='ocinb-diff'><h4>{esc(self.a)} → {esc(self.b)}</h4><ul>",
                 f"<li>files: {c['added']} added, {c['removed']} removed, {c['modified']} modified</li>",
                 f"<li>packages: {c['packages']} changed; config: {c['config']} keys changed</li>",
                 f"<li>layers: {self.shared_layers} shared "
                 f"({'read' if self.base_read else 'not read'}); compressed size "
                 f"{sign}{esc(human_size(abs(int(compressed))) if compressed is not None else '?')}</li></ul>"]
        for name, frame in (("packages", self.packages), ("config", self.config), ("files", self.files)):
            if len(frame):
                shown = frame.head(20)
                head = "".join(f"<th>{esc(col)}</th>" for col in shown.columns)
                body = "".join("<tr>" + "".join(f"<td>{esc('' if pd.isna(v) else v)}</td>" for v in row) + "</tr>"
                               for row in shown.itertuples(index=False))
                more = f"<p>… {len(frame) - 20} more</p>" if len(frame) > 20 else ""
                parts.append(f"<h5>{esc(name)}</h5><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                             f"</table>{more}")
        parts.append("</div>")
        return "".join(parts)
