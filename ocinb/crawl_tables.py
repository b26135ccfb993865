"""The tables a crawl can write, one :class:`~ocinb.ops.crawl.CrawlTable` entry each, built from ``ocinb.frames``.

Every table has the columns and dtypes of its DataFrame (``docs/columns.md``) after the provenance columns
``registry``, ``repository`` and ``reference`` (the reference the row came from); ``layers`` and ``history``,
one row set per image of an index, also carry ``platform`` and ``image_digest``. A new table (``files``,
``packages``) is one more entry in :data:`TABLES`: a coroutine from a :class:`~ocinb.ops.crawl.UnitFetch` to
its frame, wrapped by :func:`table`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from . import frames
from .frames import STR, typed_frame
from .ops.crawl import CrawlTable, Scope, UnitFetch
from .ops.describe import TagEntry

__all__ = ["ERRORS_COLUMNS", "PROVENANCE_COLUMNS", "TABLES", "errors_frame", "select", "table"]

PROVENANCE_COLUMNS = {"registry": STR, "repository": STR, "reference": STR}
IMAGE_COLUMNS = {"platform": STR, "image_digest": STR}
ERRORS_COLUMNS = {
    "registry": STR, "repository": STR, "reference": STR, "table": STR, "error": STR, "status": "Int64",
    "message": STR,
}
"""The ``errors`` table: the target or reference that failed, the table it was for (``expand`` for listing a
catalog or tags), the exception's class, the HTTP status when there was one, and the message."""


def errors_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``errors`` table of a batch of failures."""
    return typed_frame(rows, ERRORS_COLUMNS)


def _provenance(df: pd.DataFrame, unit: UnitFetch, reference: str | None = None) -> pd.DataFrame:
    values = {"registry": unit.registry, "repository": unit.repository, "reference": reference or unit.reference}
    for i, (name, dtype) in enumerate(PROVENANCE_COLUMNS.items()):
        df.insert(i, name, pd.Series([values[name]] * len(df), dtype=dtype, index=df.index))
    return df


def table(name: str, columns: Mapping[str, str], make: Callable[[UnitFetch], Awaitable[pd.DataFrame]],
          scope: Scope = "reference") -> CrawlTable:
    """A crawl table from ``make`` (a unit's frame with ``columns``): the provenance columns are put first."""
    async def rows(unit: UnitFetch) -> pd.DataFrame:
        return _provenance(await make(unit), unit)

    def empty() -> pd.DataFrame:
        return typed_frame([], {**PROVENANCE_COLUMNS, **columns})

    return CrawlTable(name, rows, empty, scope)


async def _tags(unit: UnitFetch) -> pd.DataFrame:
    if unit.tag is None:
        return typed_frame([], frames.TAGS_COLUMNS)
    return frames.tags_frame([TagEntry(unit.tag, await unit.descriptor())], resolve=True)


async def _platforms(unit: UnitFetch) -> pd.DataFrame:
    return frames.platforms_frame(await unit.entries())


def _per_image(rows_of: Callable[..., list[dict[str, Any]]], columns: Mapping[str, str]
               ) -> Callable[[UnitFetch], Awaitable[pd.DataFrame]]:
    """Rows of every image of the unit (each index entry but attestations), tagged with its platform."""
    async def make(unit: UnitFetch) -> pd.DataFrame:
        rows: list[dict[str, Any]] = []
        for entry in await unit.entries():
            if entry.is_attestation or entry.image is None:
                continue
            extra = {"platform": str(entry.platform) if entry.platform is not None else None,
                     "image_digest": entry.descriptor.digest}
            rows += [{**extra, **row} for row in rows_of(entry.image, entry.config)]
        return typed_frame(rows, {**IMAGE_COLUMNS, **columns})
    return make


async def _referrers(unit: UnitFetch) -> pd.DataFrame:
    return frames.referrers_frame(await unit.referrers())


async def _sizes(unit: UnitFetch) -> pd.DataFrame:
    return frames.sizes_frame(await unit.sized_images())


TABLES: dict[str, CrawlTable] = {
    "tags": table("tags", frames.TAGS_COLUMNS, _tags),
    "platforms": table("platforms", frames.PLATFORMS_COLUMNS, _platforms),
    "layers": table("layers", {**IMAGE_COLUMNS, **frames.LAYERS_COLUMNS},
                    _per_image(frames.layer_rows, frames.LAYERS_COLUMNS)),
    "history": table("history", {**IMAGE_COLUMNS, **frames.HISTORY_COLUMNS},
                     _per_image(frames.history_rows, frames.HISTORY_COLUMNS)),
    "referrers": table("referrers", frames.REFERRERS_COLUMNS, _referrers),
    "sizes": table("sizes", frames.SIZES_COLUMNS, _sizes, scope="repository"),
}
"""Every table a crawl can write, by name."""

DEFAULT_TABLES = ("tags", "platforms", "layers", "history", "referrers")


def select(names: str | Sequence[str] | None) -> list[CrawlTable]:
    """The tables called ``names`` (a list, or one comma-separated string); a clear error for unknown ones."""
    if names is None:
        names = DEFAULT_TABLES
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in TABLES]
    if unknown or not names:
        raise ValueError(f"unknown crawl table(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"choose from {', '.join(TABLES)}")
    return [TABLES[n] for n in dict.fromkeys(names)]
