"""Crawls past one machine: the targets split across a ``dask.distributed`` cluster, each worker crawling its
share with its own clients (so its own rate budget) into its own part files of the same datasets.

Dask does the scheduling, the retries of lost workers and the dashboard; ocinb only splits the work. The
driver prepares ``out`` (a start over, removing parts no journal names) and lists registries' catalogs, so
the shares are repositories and references; workers leave other workers' unjournaled parts alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ._defaults import crawl_with
from ._sync import run_sync
from .client import AsyncClient
from .crawl_tables import select
from .errors import OcinbError
from .ops.crawl import CrawlReport, Journal, Target, check_output, remove_orphans, reset

__all__ = ["crawl_on", "crawl_share"]


def crawl_share(targets: Sequence[str], out: str, tables: Sequence[str], client_kwargs: Mapping[str, Any]
                ) -> CrawlReport:
    """One worker's share: the crawl of ``targets`` with clients of its own, closed afterwards."""
    clients: dict[str, AsyncClient] = {}

    def client_for(registry: str) -> AsyncClient:
        if registry not in clients:
            clients[registry] = AsyncClient(registry, **client_kwargs)
        return clients[registry]

    async def run() -> CrawlReport:
        try:
            return await crawl_with(client_for, targets, out, tables, resume=True, clean=False, progress=False)
        finally:
            for c in clients.values():
                await c.aclose()

    return run_sync(run())


def crawl_on(scheduler: Any, targets: Sequence[str], out: str | os.PathLike[str],
             tables: str | Sequence[str] | None = None, *, resume: bool = True,
             client_kwargs: Mapping[str, Any] | None = None, shares: int | None = None) -> CrawlReport:
    """Crawl ``targets`` on the Dask cluster of ``scheduler`` (a ``distributed.Client``) into ``out``, which every
    worker must reach (a shared file system); ``shares`` defaults to twice the workers, for balance."""
    kwargs = dict(client_kwargs or {})
    chosen = [t.name for t in select(tables)]
    parsed = [Target.parse(t) for t in targets]
    root = check_output(out)
    if not resume:
        reset(root, chosen)
    journal = Journal(root)
    journal.load()
    remove_orphans(root, journal, chosen)
    work: list[str] = []
    driver: dict[str, AsyncClient] = {}
    try:
        for target in parsed:
            if target.repository is not None:
                work.append(str(target))
                continue
            client = driver.setdefault(target.registry, AsyncClient(target.registry, **kwargs))
            try:
                work += [str(Target(target.registry, name)) for name in run_sync(client.catalog())]
            except OcinbError:
                work.append(str(target))  # a worker records the failure in the errors table
    finally:
        for c in driver.values():
            run_sync(c.aclose())
    count = shares or 2 * max(1, len(scheduler.scheduler_info().get("workers", {})))
    groups = [g for g in (work[i::count] for i in range(count)) if g]
    futures = scheduler.map(crawl_share, groups, out=str(root), tables=chosen, client_kwargs=kwargs, pure=False)
    report = CrawlReport(str(root), chosen)
    for part in scheduler.gather(futures):
        report = report.merge(part)
    return report
