"""pandas DataFrames of what the operations fetched: tags, platforms, layers, history, referrers, catalog, sizes.

Pure tabulation: each ``*_frame`` takes the dataclasses of :mod:`ocinb.ops.describe` (or models) and returns a
frame with stable columns and dtypes, listed in each docstring and in ``docs/columns.md``. Fetching is the
operations' job; :class:`~ocinb.AsyncClient` and the module-level helpers (``ocinb.tags``, …) put the two together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from . import media_types as mt
from ._http.transport import RateLimit
from .models import ImageConfig, ImageManifest, Platform, parse_timestamp
from .ops.catalogers import PackageRow
from .ops.describe import PlatformEntry, SizedImage, TagEntry
from .ops.doctor import DoctorCheck
from .ops.referrers import ReferrerNode
from .plots import plot_layers, plot_sizes

__all__ = [
    "CATALOG_COLUMNS", "DOCTOR_COLUMNS", "HISTORY_COLUMNS", "LAYERS_COLUMNS", "PACKAGES_COLUMNS", "PLATFORMS_COLUMNS",
    "REFERRERS_COLUMNS", "SIZES_COLUMNS", "TAGS_COLUMNS", "catalog_frame", "doctor_frame", "history_frame",
    "history_rows", "layer_rows", "layers_frame", "packages_frame", "platform_rows", "platforms_frame", "plot_layers",
    "plot_sizes", "provenance", "referrer_rows", "referrers_frame", "size_rows", "sizes_frame", "tag_rows",
    "tags_frame", "typed_frame",
]

STR = "str" if int(pd.__version__.split(".")[0]) >= 3 else "string"
"""pandas' string dtype: ``"str"`` in pandas 3, ``"string"`` in pandas 2."""


UTC_TIME = "datetime64[us, UTC]"
"""Every time column: UTC, microseconds (what registries' timestamps carry; pandas 3's default unit)."""

TAGS_COLUMNS = {"tag": STR, "digest": STR, "media_type": STR, "size": "Int64"}
PLATFORMS_COLUMNS = {
    "platform": STR, "os": STR, "architecture": STR, "variant": STR, "os_version": STR, "digest": STR,
    "media_type": STR, "manifest_size": "int64", "image_size": "Int64", "layer_count": "Int64",
    "created": UTC_TIME, "is_attestation": "bool", "attests": STR,
}
LAYERS_COLUMNS = {
    "position": "int64", "digest": STR, "media_type": STR, "size": "int64", "share": "float64",
    "created_by": STR, "created": UTC_TIME,
}
HISTORY_COLUMNS = {
    "step": "int64", "created": UTC_TIME, "created_by": STR, "comment": STR, "author": STR,
    "empty_layer": "bool", "layer_digest": STR, "layer_size": "Int64",
}
REFERRERS_COLUMNS = {
    "digest": STR, "artifact_type": STR, "media_type": STR, "size": "int64", "subject": STR, "depth": "int64",
    "created": UTC_TIME, "title": STR,
}
CATALOG_COLUMNS = {"repository": STR}
DOCTOR_COLUMNS = {"check": STR, "result": STR, "evidence": STR, "advice": STR}
SIZES_COLUMNS = {
    "tag": STR, "platform": STR, "digest": STR, "size": "int64", "unique_size": "int64", "shared_size": "int64",
    "layer_count": "int64",
}
PACKAGES_COLUMNS = {
    "ecosystem": STR, "name": STR, "version": STR, "arch": STR, "source_name": STR, "size": "Int64",
    "license": STR, "path": STR, "layer": "Int64", "purl": STR, "warning": STR,
}


def typed_frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    """A DataFrame with exactly ``columns`` in order and their dtypes, even when ``rows`` is empty."""
    data: dict[str, Any] = {}
    for name, dtype in columns.items():
        values = [row.get(name) for row in rows]
        if dtype.startswith("datetime64"):
            data[name] = pd.Series(pd.to_datetime(values, utc=True)).astype(dtype)
        elif dtype == "bool":
            data[name] = pd.Series([bool(v) for v in values], dtype="bool")
        elif dtype == STR:
            data[name] = pd.Series([None if v is None else str(v) for v in values], dtype=STR)
        else:
            data[name] = pd.Series([pd.NA if v is None else v for v in values], dtype=dtype)
    return pd.DataFrame(data, columns=list(columns))


def provenance(df: pd.DataFrame, *, registry: str, rate_limit: RateLimit | None = None,
               **extra: Any) -> pd.DataFrame:
    """Record where ``df`` came from in ``df.attrs``: registry, the given keys (reference, digest, …),
    ``fetched_at`` and Docker Hub's rate limit when one was seen."""
    df.attrs["registry"] = registry
    for key, value in extra.items():
        if value is not None:
            df.attrs[key] = value
    df.attrs["fetched_at"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if rate_limit is not None and (rate_limit.limit is not None or rate_limit.remaining is not None):
        df.attrs["rate_limit"] = dataclasses.asdict(rate_limit)
    return df


def _platform_str(platform: Platform | None) -> str | None:
    return str(platform) if platform is not None else None


def tag_rows(entries: Sequence[TagEntry]) -> list[dict[str, Any]]:
    """Rows of the tags frame (``digest``, ``media_type``, ``size`` set for resolved tags)."""
    rows: list[dict[str, Any]] = []
    for entry in entries:
        row: dict[str, Any] = {"tag": entry.tag}
        if entry.descriptor is not None:
            d = entry.descriptor
            row.update(digest=d.digest, media_type=d.media_type, size=d.size)
        rows.append(row)
    return rows


def tags_frame(entries: Sequence[TagEntry], *, resolve: bool = False) -> pd.DataFrame:
    """One row per tag.

    Columns: ``tag``; with ``resolve=True`` also ``digest``, ``media_type``, ``size`` (manifest bytes, Int64,
    <NA> when the tag vanished meanwhile).
    """
    return typed_frame(tag_rows(entries), dict(TAGS_COLUMNS) if resolve else {"tag": STR})


def platform_rows(entries: Sequence[PlatformEntry]) -> list[dict[str, Any]]:
    """Rows of the platforms frame, one per entry."""
    rows = []
    for e in entries:
        d = e.descriptor
        row: dict[str, Any] = {
            "digest": d.digest, "media_type": d.media_type, "manifest_size": d.size,
            "is_attestation": e.is_attestation, "attests": e.attests,
        }
        if e.image is not None:
            row.update(image_size=e.image.total_size, layer_count=len(e.image.layers))
        if e.config is not None:
            row["created"] = e.config.created
        if e.platform is not None:
            p = e.platform
            row.update(platform=str(p), os=p.os, architecture=p.architecture, variant=p.variant,
                       os_version=p.os_version)
        rows.append(row)
    return rows


def platforms_frame(entries: Sequence[PlatformEntry]) -> pd.DataFrame:
    """One row per index entry (one row for a single image); attestation rows last.

    Columns: ``platform`` (``linux/arm64/v8``), ``os``, ``architecture``, ``variant``, ``os_version``,
    ``digest``, ``media_type``, ``manifest_size``, ``image_size`` (config + layers, compressed; Int64),
    ``layer_count`` (Int64), ``created`` (UTC, from the config), ``is_attestation``, ``attests``.
    """
    return typed_frame(platform_rows(entries), PLATFORMS_COLUMNS)


def layer_rows(image: ImageManifest, config: ImageConfig | None) -> list[dict[str, Any]]:
    """Rows of the layers frame: each layer with the non-empty history step that produced it."""
    steps = config.layer_history() if config is not None else []
    total = sum(layer.size for layer in image.layers)
    rows = []
    for i, layer in enumerate(image.layers):
        step = steps[i] if i < len(steps) else None
        rows.append({
            "position": i, "digest": layer.digest, "media_type": layer.media_type, "size": layer.size,
            "share": layer.size / total if total else 0.0,
            "created_by": step.created_by if step else None, "created": step.created if step else None,
        })
    return rows


def history_rows(image: ImageManifest, config: ImageConfig | None) -> list[dict[str, Any]]:
    """Rows of the history frame: every step, non-empty ones paired with the layers in order."""
    rows = []
    layer_index = 0
    for i, step in enumerate((config.history if config is not None else None) or []):
        layer = None
        if not step.empty_layer:
            layer = image.layers[layer_index] if layer_index < len(image.layers) else None
            layer_index += 1
        rows.append({
            "step": i, "created": step.created, "created_by": step.created_by, "comment": step.comment,
            "author": step.author, "empty_layer": step.empty_layer,
            "layer_digest": layer.digest if layer else None, "layer_size": layer.size if layer else None,
        })
    return rows


def layers_frame(image: ImageManifest, config: ImageConfig | None) -> pd.DataFrame:
    """One row per layer of ``image``.

    Columns: ``position`` (0-based), ``digest``, ``media_type``, ``size`` (compressed), ``share`` (of the
    image's layer bytes), ``created_by`` and ``created`` of the history step that made the layer
    (``empty_layer`` steps skipped, so the pairing is right).
    """
    return typed_frame(layer_rows(image, config), LAYERS_COLUMNS)


def history_frame(image: ImageManifest, config: ImageConfig | None) -> pd.DataFrame:
    """One row per history entry of the image config, empty layers included.

    Columns: ``step`` (0-based), ``created`` (UTC), ``created_by``, ``comment``, ``author``, ``empty_layer``,
    ``layer_digest`` (the layer the step produced, <NA> for empty steps), ``layer_size`` (Int64).
    """
    return typed_frame(history_rows(image, config), HISTORY_COLUMNS)


def referrer_rows(nodes: Iterable[ReferrerNode]) -> list[dict[str, Any]]:
    """Rows of the referrers frame from a walked referrers tree."""
    rows = []
    for node in nodes:
        desc = node.descriptor
        annotations = desc.annotations or {}
        rows.append({
            "digest": desc.digest, "artifact_type": desc.artifact_type, "media_type": desc.media_type,
            "size": desc.size, "subject": node.subject, "depth": node.depth,
            "created": parse_timestamp(annotations.get(mt.ANNOTATION_CREATED)),
            "title": annotations.get(mt.ANNOTATION_TITLE),
        })
    return rows


def referrers_frame(nodes: Iterable[ReferrerNode]) -> pd.DataFrame:
    """One row per referrer, breadth first.

    Columns: ``digest``, ``artifact_type``, ``media_type``, ``size``, ``subject`` (the digest it refers to),
    ``depth`` (1 = direct), ``created`` (the ``org.opencontainers.image.created`` annotation, UTC), ``title``.
    """
    return typed_frame(referrer_rows(nodes), REFERRERS_COLUMNS)


def catalog_frame(names: Iterable[str]) -> pd.DataFrame:
    """One row per repository of a registry's catalog. Columns: ``repository``."""
    return typed_frame([{"repository": n} for n in names], CATALOG_COLUMNS)


def size_rows(images: Sequence[SizedImage]) -> list[dict[str, Any]]:
    """Rows of the size audit (sharing counted between the distinct images of ``images``)."""
    # Rows of the same manifest (two tags of one image) are one image: sharing is between distinct images.
    users: dict[str, set[str]] = {}
    for item in images:
        for blob in [item.image.config, *item.image.layers]:
            users.setdefault(blob.digest, set()).add(item.digest)
    rows = []
    for item in images:
        blobs = [item.image.config, *item.image.layers]
        size = sum(b.size for b in blobs)
        unique = sum(b.size for b in blobs if users[b.digest] == {item.digest})
        rows.append({"tag": item.tag, "platform": _platform_str(item.platform), "digest": item.digest,
                     "size": size, "unique_size": unique, "shared_size": size - unique,
                     "layer_count": len(item.image.layers)})
    return rows


def sizes_frame(images: Sequence[SizedImage]) -> pd.DataFrame:
    """The size audit: one row per tag × platform.

    Columns: ``tag``, ``platform``, ``digest`` (the image manifest), ``size`` (compressed: config + layers),
    ``unique_size`` (bytes of blobs, config and layers, that no other image uses; tags of one digest are one
    image), ``shared_size`` (``size - unique_size``), ``layer_count``.
    """
    return typed_frame(size_rows(images), SIZES_COLUMNS)


def doctor_frame(checks: Sequence[DoctorCheck]) -> pd.DataFrame:
    """One row per doctor check, in the order run.

    Columns: ``check`` (what was checked), ``result`` (pass, warn, fail, info or skip), ``evidence`` (what the
    registry answered), ``advice`` (what to do; empty when nothing is needed).
    """
    return typed_frame([dataclasses.asdict(c) for c in checks], DOCTOR_COLUMNS)


def packages_frame(rows: Iterable[PackageRow]) -> pd.DataFrame:
    """One row per installed package (the catalogers' order: dpkg, apk, Python, npm, rpm, Go), then a row per
    database that could not be read (``warning`` set, ``name``/``version`` as far as known).

    Columns: ``ecosystem`` (the purl type: deb, apk, pypi, npm, rpm, golang), ``name``, ``version``, ``arch``,
    ``source_name``, ``size`` (installed bytes, where the database says), ``license``, ``path`` (the database
    or metadata file), ``layer`` (index of the layer it came from), ``purl``, ``warning``.
    """
    ordered = sorted(rows, key=lambda r: r.warning is not None)
    return typed_frame([dataclasses.asdict(r) for r in ordered], PACKAGES_COLUMNS)
