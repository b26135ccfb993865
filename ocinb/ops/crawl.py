"""Crawls: many registries, repositories and references into one Parquet dataset per table, resumable.

Targets expand into work units (a registry → its catalog's repositories → their tags → one unit per
reference and table). Units run concurrently as bulk work under the client's concurrency limit and rate
budget; each unit's rows (or its failure, into the ``errors`` table) are buffered and written in batches:
Parquet part files first, then one small journal file naming the finished units and their parts, each
written to a temporary name and renamed (atomic). A crawl stopped at any point — Ctrl-C, a crash, a kill,
the rate budget — resumes from the journal: finished units are not fetched again, and part files no
journal names (a kill between the two writes) are removed. Manifests and configs are fetched once per
digest across every target (a bounded single-flight map, over the content cache).

What each table is made of is not known here: the notebook layer hands in :class:`CrawlTable` entries
(``ocinb.crawl_tables``), so a new table is one entry there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._http.budget import bulk, latest_quota
from ..digest import is_digest
from ..endpoints.repository import RepositoryEndpoints
from ..errors import NotFoundError, OcinbError, RateBudgetExceededError, RegistryError
from ..manifest import Manifest
from ..models import Descriptor
from ..reference import Reference, is_fallback_tag, parse_registry
from . import pull
from ._gather import PROGRESS_THRESHOLD, SingleFlight
from .describe import PlatformEntry, platform_entries, referrer_nodes, sized_images
from .referrers import ReferrerNode

if TYPE_CHECKING:
    import pandas as pd

    from .describe import SizedImage

T = TypeVar("T")

JOURNAL_DIR = "_journal"
ERRORS_TABLE = "errors"
BATCH_SIZE = 50
"""Finished units (references, each with all its tables) buffered before a batch is written: a kill loses at most
this many units' work, which is fetched again on resume."""
UNIT_CONCURRENCY = 32
"""Units in flight at once (requests are bounded by the client's own limit; this bounds memory)."""
FLIGHT_SIZE = 512
"""Digests whose fetched manifest or config the crawl keeps for reuse across targets."""

Scope = Literal["reference", "repository"]


@dataclass(frozen=True)
class Target:
    """What the user asked to crawl: a registry (``repository`` None: its catalog), a repository
    (``identifier`` None: every tag), or one reference."""

    registry: str
    repository: str | None = None
    identifier: str | None = None
    listed: bool = field(default=False, compare=False)
    """Whether the repository came from a catalog (so a repository whose tags are all deleted is empty, not an
    error: distribution keeps such names in its catalog and answers NAME_UNKNOWN for their tags)."""

    @classmethod
    def parse(cls, text: str) -> Target:
        """``127.0.0.1:5000`` (a registry), ``ghcr.io/org/app`` (a repository), ``…/app:1.0`` or ``…@sha256:…``.

        Raises :class:`~ocinb.InvalidReferenceError` for anything else, before any request.
        """
        host, colon, port = text.partition(":")
        if "/" not in text and "@" not in text and (not colon or port.isdigit()) and (
                "." in host or host == "localhost"):
            return cls(parse_registry(text))
        ref = Reference.parse(text)
        return cls(ref.registry, ref.repository, ref.digest or ref.tag)

    def __str__(self) -> str:
        if self.repository is None:
            return self.registry
        out = f"{self.registry}/{self.repository}"
        if self.identifier:
            out += ("@" if is_digest(self.identifier) else ":") + self.identifier
        return out


class BoundedFlight(SingleFlight):
    """A :class:`SingleFlight` that forgets its oldest results beyond ``size`` and never keeps a failure,
    so a long crawl's memory stays flat and a transient error is retried by the next unit that asks."""

    def __init__(self, size: int = FLIGHT_SIZE) -> None:
        super().__init__()
        self.size = size
        self._lru: OrderedDict[str, asyncio.Future[Any]] = OrderedDict()

    async def run(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        task = self._lru.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._lru[key] = task
            task.add_done_callback(functools.partial(self._forget_failed, key))
            while len(self._lru) > self.size:
                self._lru.popitem(last=False)
        else:
            self._lru.move_to_end(key)
        result: T = await asyncio.shield(task)
        return result

    def _forget_failed(self, key: str, task: asyncio.Future[Any]) -> None:
        if (task.cancelled() or task.exception() is not None) and self._lru.get(key) is task:
            del self._lru[key]


class UnitFetch:
    """One work unit's view of the registry: what a table's rows are made of, each fetched once per unit
    (and once per digest across the crawl)."""

    def __init__(self, repo: RepositoryEndpoints, identifier: str | None, flight: BoundedFlight,
                 tags: Sequence[str] = ()) -> None:
        self.repo = repo
        self.identifier = identifier
        self.flight = flight
        self.tags = list(tags)
        """The repository's tags, for repository-scoped tables."""
        self._memo: dict[str, asyncio.Future[Any]] = {}

    @property
    def registry(self) -> str:
        return self.repo.registry

    @property
    def repository(self) -> str:
        return self.repo.name

    @property
    def tag(self) -> str | None:
        return None if self.identifier is None or is_digest(self.identifier) else self.identifier

    @property
    def reference(self) -> str:
        """The reference the rows come from (``registry/repository:tag``, ``…@digest``, or the repository)."""
        return str(Target(self.registry, self.repository, self.identifier))

    def _once(self, name: str, make: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        fut = self._memo.get(name)
        if fut is None:
            fut = self._memo[name] = asyncio.ensure_future(make())
        return asyncio.shield(fut)

    def _ident(self) -> str:
        if self.identifier is None:
            raise ValueError(f"{self.reference} is a repository unit: it has no single image")
        return self.identifier

    async def descriptor(self) -> Descriptor:
        """The reference's descriptor: a HEAD for a tag (free on Docker Hub), the manifest's own for a digest."""
        async def make() -> Descriptor:
            ident = self._ident()
            if is_digest(ident):
                return (await self.top()).descriptor()
            return await self.repo.manifests.head(ident)
        return await self._once("descriptor", make)

    async def top(self) -> Manifest:
        """The top manifest (an index or an image), fetched by digest once across the crawl."""
        async def make() -> Manifest:
            ident = self._ident()
            digest = ident if is_digest(ident) else (await self.descriptor()).digest
            return await self.flight.run(digest, lambda: pull.get_manifest(self.repo, digest))
        return await self._once("top", make)

    async def entries(self) -> list[PlatformEntry]:
        """Every entry of the top manifest with its image manifest and config (one entry for an image)."""
        async def make() -> list[PlatformEntry]:
            return await platform_entries(self.repo, await self.top(), progress=False, flight=self.flight)
        return await self._once("entries", make)

    async def referrers(self) -> list[ReferrerNode]:
        """The referrer tree of the top manifest."""
        async def make() -> list[ReferrerNode]:
            return await referrer_nodes(self.repo, str((await self.top()).digest))
        return await self._once("referrers", make)

    async def sized_images(self) -> list[SizedImage]:
        """Every image of the repository's tags (a repository unit), for the size audit."""
        async def make() -> list[SizedImage]:
            return await sized_images(self.repo, self.tags, progress=False)
        return await self._once("sized_images", make)


Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class CrawlTable:
    """One table of a crawl: its name, how a unit's rows are made (dicts, provenance included), how rows
    become the typed frame written (its schema too, given no rows), and whether it is made per reference or
    per repository. Rows are tabulated once per written batch, not once per unit: that is most of the cost."""

    name: str
    rows: Callable[[UnitFetch], Awaitable[Rows]]
    frame: Callable[[Rows], pd.DataFrame]
    scope: Scope = "reference"


@dataclass
class CrawlReport:
    """What a crawl did: units finished now and found finished in the journal, rows written per table,
    failures recorded in ``errors``, and whether the rate budget stopped it."""

    out: str
    tables: list[str]
    units: int = 0
    done: int = 0
    skipped: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    stopped: bool = False

    def merge(self, other: CrawlReport) -> CrawlReport:
        """This report and ``other`` (another worker's share) added together."""
        rows = dict(self.rows)
        for k, v in other.rows.items():
            rows[k] = rows.get(k, 0) + v
        return CrawlReport(self.out, self.tables, self.units + other.units, self.done + other.done,
                           self.skipped + other.skipped, rows, self.errors + other.errors,
                           self.stopped or other.stopped)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsynced and renamed: readers see all or nothing."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Journal:
    """The durable record of finished work: one JSON file per written batch under ``out/_journal``.

    A batch file names the units it finished (``table\\treference``), the Parquet parts holding their rows
    and the expansions it learnt (a registry's repositories, a repository's tags).
    """

    def __init__(self, out: Path) -> None:
        self.dir = out / JOURNAL_DIR
        self.done: set[str] = set()
        self.parts: set[str] = set()
        self.expansions: dict[str, list[str]] = {}

    def load(self) -> None:
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("batch-*.json")):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # never written whole (renames are atomic), so an unreadable file is foreign
            self.done.update(entry.get("units", []))
            self.parts.update(entry.get("parts", []))
            self.expansions.update(entry.get("expansions", {}))

    def record(self, units: Sequence[str], parts: Sequence[str], expansions: Mapping[str, list[str]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"units": list(units), "parts": list(parts), "expansions": dict(expansions)})
        _atomic_write(self.dir / f"batch-{uuid.uuid4().hex}.json", body.encode())
        self.done.update(units)
        self.parts.update(parts)
        self.expansions.update(expansions)


@dataclass
class _Batch:
    """Finished units waiting to be written: their journal keys, rows by table, failures, expansions."""

    units: list[str]
    rows: dict[str, Rows]
    errors: Rows
    expansions: dict[str, list[str]]


class _Writer:
    """Buffers finished units and writes them as one Parquet part per table, then journals them."""

    def __init__(self, out: Path, tables: Sequence[CrawlTable], errors_frame: Callable[[list[dict[str, Any]]],
                 pd.DataFrame], journal: Journal, report: CrawlReport, batch_size: int) -> None:
        import pyarrow as pa

        self.out = out
        self.tables = {t.name: t for t in tables}
        self.errors_frame = errors_frame
        self.journal = journal
        self.report = report
        self.batch_size = batch_size
        self.frames: dict[str, Callable[[Rows], pd.DataFrame]] = {t.name: t.frame for t in tables}
        self.frames[ERRORS_TABLE] = errors_frame
        self.schemas = {name: pa.Schema.from_pandas(frame([]), preserve_index=False)
                        for name, frame in self.frames.items()}
        self._rows: dict[str, Rows] = {}
        self._errors: list[dict[str, Any]] = []
        self._units: list[str] = []
        self._expansions: dict[str, list[str]] = {}
        self._count = 0
        self._lock = asyncio.Lock()
        self._writes: set[asyncio.Future[None]] = set()

    def add(self, keys: Sequence[str], rows: Mapping[str, Rows], errors: Rows) -> None:
        """Buffer one finished unit (its keys, rows and failures); a full batch is written in a thread."""
        for name, some in rows.items():
            self._rows.setdefault(name, []).extend(some)
        self._errors.extend(errors)
        self._units.extend(keys)
        self._count += 1
        if self._count >= self.batch_size:
            self._writes.add(asyncio.ensure_future(self._write_async(self._take())))

    def expanded(self, key: str, items: list[str]) -> None:
        self._expansions[key] = items

    def _take(self) -> _Batch:
        batch = _Batch(self._units, self._rows, self._errors, self._expansions)
        self._rows, self._errors, self._units, self._expansions, self._count = {}, [], [], {}, 0
        return batch

    async def _write_async(self, batch: _Batch) -> None:
        async with self._lock:  # batches are written one at a time, off the event loop
            await asyncio.to_thread(self._write_batch, batch)

    async def drain(self) -> None:
        """Wait for the batches being written (the first failure to write is raised)."""
        while self._writes:
            done = list(self._writes)
            self._writes.clear()
            for r in await asyncio.gather(*done, return_exceptions=True):
                if isinstance(r, BaseException):
                    raise r

    def flush(self) -> None:
        """Write what is buffered now, in this thread (at the end, or when the crawl is stopped)."""
        self._write_batch(self._take())

    def _write_batch(self, batch: _Batch) -> None:
        if not batch.units and not batch.expansions:
            return
        parts: list[str] = []
        for name, rows in batch.rows.items():
            if rows:
                parts.append(self._write(name, self.frames[name](rows)))
        if batch.errors:
            parts.append(self._write(ERRORS_TABLE, self.errors_frame(batch.errors)))
        self.journal.record(batch.units, parts, batch.expansions)
        for name, rows in batch.rows.items():
            self.report.rows[name] = self.report.rows.get(name, 0) + len(rows)
        self.report.errors += len(batch.errors)
        self.report.done += len(batch.units)

    def _write(self, name: str, df: pd.DataFrame) -> str:
        import pyarrow as pa
        import pyarrow.parquet as pq

        directory = self.out / name
        directory.mkdir(parents=True, exist_ok=True)
        rel = f"{name}/part-{uuid.uuid4().hex}.parquet"
        table = pa.Table.from_pandas(df, schema=self.schemas[name], preserve_index=False)
        tmp = self.out / name / f".{uuid.uuid4().hex}.tmp"
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.out / rel)
        return rel

    def ensure_schemas(self) -> None:
        """Give every table a dataset, empty if it has no rows yet, so queries over it work."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        for name, schema in self.schemas.items():
            directory = self.out / name
            if directory.is_dir() and any(directory.glob("*.parquet")):
                continue
            directory.mkdir(parents=True, exist_ok=True)
            empty = self.frames[name]([])
            path = directory / "part-empty.parquet"
            tmp = directory / f".empty-{uuid.uuid4().hex}.tmp"  # workers may race to write it
            pq.write_table(pa.Table.from_pandas(empty, schema=schema, preserve_index=False), tmp)
            os.replace(tmp, path)


def _unit_key(table: str, reference: str) -> str:
    return f"{table}\t{reference}"


def remove_orphans(out: Path, journal: Journal, tables: Sequence[str]) -> int:
    """Delete part files no journal names (written just before a kill) and stale temporary files."""
    removed = 0
    for name in [*tables, ERRORS_TABLE]:
        directory = out / name
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            rel = f"{name}/{path.name}"
            stale = path.name.startswith(".") and path.name.endswith(".tmp")
            orphan = path.name.startswith("part-") and path.name != "part-empty.parquet" and rel not in journal.parts
            if stale or orphan:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def reset(out: Path, tables: Sequence[str]) -> None:
    """Forget a previous crawl in ``out`` (``resume=False``): its journal and the tables' part files only."""
    shutil.rmtree(out / JOURNAL_DIR, ignore_errors=True)
    for name in [*tables, ERRORS_TABLE]:
        directory = out / name
        if directory.is_dir():
            for path in directory.glob("part-*.parquet"):
                path.unlink(missing_ok=True)


def error_row(target: str, table: str, exc: BaseException, registry: str | None = None,
              repository: str | None = None) -> dict[str, Any]:
    """One row of the ``errors`` table (no credentials: ocinb's errors carry redacted URLs only)."""
    status = exc.status if isinstance(exc, RegistryError) else None
    return {"registry": registry, "repository": repository, "reference": target, "table": table,
            "error": type(exc).__name__, "status": status, "message": " ".join(str(exc).split())[:2000]}


def require_pyarrow() -> None:
    """A clear error, before any request, when the Parquet writer is not installed."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError("ocinb.crawl writes Parquet with pyarrow, which is not installed: "
                          "pip install 'ocinb[crawl]'") from None


def check_output(out: str | os.PathLike[str]) -> Path:
    """``out`` as a directory for the datasets (created); a clear error if it is a file."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"crawl output {str(path)!r} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


async def crawl(
    targets: Sequence[str | Target],
    out: str | os.PathLike[str],
    tables: Sequence[CrawlTable],
    errors_frame: Callable[[list[dict[str, Any]]], pd.DataFrame],
    *,
    open_repo: Callable[[str, str], RepositoryEndpoints],
    list_catalog: Callable[[str], Awaitable[list[str]]],
    resume: bool = True,
    clean: bool = True,
    progress: bool | None = None,
    concurrency: int = UNIT_CONCURRENCY,
    batch_size: int = BATCH_SIZE,
) -> CrawlReport:
    """Crawl ``targets`` into ``out/<table>/part-*.parquet`` (and ``out/errors``); see the module docstring.

    ``open_repo(registry, name)`` and ``list_catalog(registry)`` reach the registries (one client each).
    ``clean=False`` leaves unjournaled parts alone: other processes (Dask workers) may be writing them.
    Raises :class:`RateBudgetExceededError` carrying this :class:`CrawlReport` in ``done`` when the budget stops it.
    """
    parsed = [t if isinstance(t, Target) else Target.parse(t) for t in targets]
    require_pyarrow()
    root = check_output(out)
    names = [t.name for t in tables]
    if not resume:
        reset(root, names)
    journal = Journal(root)
    journal.load()
    if clean:
        remove_orphans(root, journal, names)
    report = CrawlReport(str(root), names)
    writer = _Writer(root, tables, errors_frame, journal, report, batch_size)
    flight = BoundedFlight()
    by_ref = [t for t in tables if t.scope == "reference"]
    by_repo = [t for t in tables if t.scope == "repository"]

    async def expand(key: str, make: Callable[[], Awaitable[list[str]]], target: Target) -> list[str] | None:
        if key in journal.expansions:
            return journal.expansions[key]
        if key in journal.done:
            return None  # its failure is already in the errors table
        try:
            items = await make()
        except RateBudgetExceededError:
            raise
        except Exception as exc:  # a failure is recorded, never stops the crawl
            writer.add([key], {}, [error_row(str(target), "expand", exc, target.registry, target.repository)])
            return None
        writer.expanded(key, items)
        return items

    async def tags_of(registry: str, repository: str, listed: bool = False) -> list[str] | None:
        target = Target(registry, repository)

        async def make() -> list[str]:
            try:
                names = await open_repo(registry, repository).tags.list()
            except NotFoundError as exc:
                if listed and "NAME_UNKNOWN" in exc.codes:
                    return []
                raise
            return [t for t in names if not is_fallback_tag(t)]

        return await expand(_unit_key("expand", str(target)), make, target)

    async def repositories_of(target: Target) -> list[Target]:
        if target.repository is not None:
            return [target]
        names = await expand(_unit_key("expand", str(target)), lambda: list_catalog(target.registry), target)
        return [Target(target.registry, n, listed=True) for n in names or []]

    Work = tuple[Target, list[CrawlTable], Sequence[str]]

    async def units_of(target: Target) -> list[Work]:
        if target.repository is None:
            return []
        if target.identifier is not None:
            return [(target, by_ref, ())]
        tags = await tags_of(target.registry, target.repository, target.listed)
        if tags is None:
            return []
        out: list[Work] = [(Target(target.registry, target.repository, t), by_ref, ()) for t in tags]
        if by_repo:
            out.append((target, by_repo, tags))
        return out

    async def run_unit(target: Target, wanted: list[CrawlTable], tags: Sequence[str]) -> None:
        assert target.repository is not None
        reference = str(target)
        try:
            repo = open_repo(target.registry, target.repository)
        except OcinbError as exc:
            writer.add([_unit_key(t.name, reference) for t in wanted], {},
                       [error_row(reference, t.name, exc, target.registry, target.repository) for t in wanted])
            return
        unit = UnitFetch(repo, target.identifier, flight, tags)

        async def one(table: CrawlTable) -> tuple[Rows | None, dict[str, Any] | None]:
            try:
                return await table.rows(unit), None
            except RateBudgetExceededError:
                raise
            except Exception as exc:  # recorded in errors, never stops the crawl
                return None, error_row(reference, table.name, exc, target.registry, target.repository)

        results = await asyncio.gather(*(one(t) for t in wanted), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        rows = {t.name: r[0] for t, r in zip(wanted, results, strict=True)
                if not isinstance(r, BaseException) and r[0] is not None}
        errors = [r[1] for r in results if not isinstance(r, BaseException) and r[1] is not None]
        writer.add([_unit_key(t.name, reference) for t in wanted], rows, errors)

    bar: Any = None
    try:
        with bulk():
            repos = [r for group in await asyncio.gather(*(repositories_of(t) for t in parsed)) for r in group]
            works = [w for group in await asyncio.gather(*(units_of(t) for t in repos)) for w in group]
            todo: list[Work] = []
            for target, wanted, tags in works:
                report.units += len(wanted)
                missing = [t for t in wanted if _unit_key(t.name, str(target)) not in journal.done]
                report.skipped += len(wanted) - len(missing)
                if missing:
                    todo.append((target, missing, tags))
            show = progress if progress is not None else len(todo) > PROGRESS_THRESHOLD
            if show:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(todo), desc="crawl", leave=False)
            await _run_bounded(todo, lambda w: run_unit(*w), concurrency, bar)
            await writer.drain()
    except RateBudgetExceededError as exc:
        report.stopped = True
        await writer.drain()
        writer.flush()
        raise exc.with_done(report) from None
    finally:
        if bar is not None:
            bar.close()
        with contextlib.suppress(Exception):
            writer.flush()  # what finished is kept, whatever stopped the crawl
    writer.ensure_schemas()
    return report


async def _run_bounded(items: Sequence[T], run: Callable[[T], Awaitable[None]], concurrency: int, bar: Any) -> None:
    """Run ``run`` over ``items``, at most ``concurrency`` at once; the first budget stop ends it (the units
    in flight finish first, so their work is kept)."""
    pending: set[asyncio.Future[None]] = set()
    stop: BaseException | None = None
    it = iter(items)
    try:
        while True:
            while stop is None and len(pending) < concurrency:
                item = next(it, None)
                if item is None:
                    break
                pending.add(asyncio.ensure_future(run(item)))
            if not pending:
                break
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for f in finished:
                if not f.cancelled() and f.exception() is not None and stop is None:
                    stop = f.exception()
                if bar is not None:
                    quota = latest_quota()
                    if quota is not None:
                        bar.set_postfix(quota=quota.remaining, refresh=False)
                    bar.update(1)
    finally:
        for f in pending:
            f.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    if stop is not None:
        raise stop
