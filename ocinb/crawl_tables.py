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
from .ops.crawl import CrawlTable, Rows, Scope, UnitFetch
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


def table(name: str, columns: Mapping[str, str], make: Callable[[UnitFetch], Awaitable[Rows]],
          scope: Scope = "reference") -> CrawlTable:
    """A crawl table from ``make`` (a unit's rows of ``columns``): the provenance columns are put first."""
    full = {**PROVENANCE_COLUMNS, **columns}

    async def rows(unit: UnitFetch) -> Rows:
        where = {"registry": unit.registry, "repository": unit.repository, "reference": unit.reference}
        return [{**where, **row} for row in await make(unit)]

    def frame(rows: Rows) -> pd.DataFrame:
        return typed_frame(rows, full)

    return CrawlTable(name, rows, frame, scope)


async def _tags(unit: UnitFetch) -> Rows:
    if unit.tag is None:
        return []
    return frames.tag_rows([TagEntry(unit.tag, await unit.descriptor())])


async def _platforms(unit: UnitFetch) -> Rows:
    return frames.platform_rows(await unit.entries())


def _per_image(rows_of: Callable[..., Rows]) -> Callable[[UnitFetch], Awaitable[Rows]]:
    """Rows of every image of the unit (each index entry but attestations), tagged with its platform."""
    async def make(unit: UnitFetch) -> Rows:
        rows: Rows = []
        for entry in await unit.entries():
            if entry.is_attestation or entry.image is None:
                continue
            extra = {"platform": str(entry.platform) if entry.platform is not None else None,
                     "image_digest": entry.descriptor.digest}
            rows += [{**extra, **row} for row in rows_of(entry.image, entry.config)]
        return rows
    return make


async def _referrers(unit: UnitFetch) -> Rows:
    return frames.referrer_rows(await unit.referrers())


async def _sizes(unit: UnitFetch) -> Rows:
    return frames.size_rows(await unit.sized_images())


TABLES: dict[str, CrawlTable] = {
    "tags": table("tags", frames.TAGS_COLUMNS, _tags),
    "platforms": table("platforms", frames.PLATFORMS_COLUMNS, _platforms),
    "layers": table("layers", {**IMAGE_COLUMNS, **frames.LAYERS_COLUMNS},
                    _per_image(frames.layer_rows)),
    "history": table("history", {**IMAGE_COLUMNS, **frames.HISTORY_COLUMNS},
                     _per_image(frames.history_rows)),
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
