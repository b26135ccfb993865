"""Load: 2,000 manifest fetches at concurrency 32 against the real registry, with 0 errors, flat memory
and a bounded number of connections."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil

import ocinb
from ocinb.cache import ContentCache
from ocinb.testing import LocalRegistry

FETCHES = 2000
CONCURRENCY = 32


def _connections_to(port: int) -> int:
    """Established TCP connections from this process to ``port``."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def test_2000_manifest_fetches_at_concurrency_32(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    """2,000 ``manifests.get`` at 32 in flight: 0 errors, RSS growth < 16 MiB, ≤ 32 connections."""
    port = int(registry.address.rsplit(":", 1)[1])

    async def run() -> tuple[int, int, int, int, float]:
        async with ocinb.AsyncClient(registry.address, max_concurrency=CONCURRENCY, docker_config=False,
                                     environment=False, cache=ContentCache(tmp_path / "c", enabled=False)) as c:
            repo = c.repo(repo_name)
            digests = []
            for i in range(4):
                config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                          "config": {"Labels": {"n": str(i)}}}
                digests.append((await repo.push_image(f"v{i}", config, [f"layer {i}".encode()])).digest)
            sem = asyncio.Semaphore(CONCURRENCY)
            errors = 0
            peak = 0
            done = False

            async def one(i: int) -> None:
                nonlocal errors
                async with sem:
                    try:
                        m = await repo.manifests.get(digests[i % 4] if i % 2 else f"v{i % 4}")
                        assert str(m.digest) == digests[i % 4]
                    except Exception:
                        errors += 1

            async def sample() -> None:
                nonlocal peak
                while not done:
                    peak = max(peak, await asyncio.to_thread(_connections_to, port))
                    await asyncio.sleep(0.05)

            await asyncio.gather(*(one(i) for i in range(200)))  # warm up pools, caches, lazy imports
            proc = psutil.Process()
            base = proc.memory_info().rss
            sampler = asyncio.create_task(sample())
            t0 = time.monotonic()
            await asyncio.gather(*(one(i) for i in range(FETCHES)))
            elapsed = time.monotonic() - t0
            done = True
            await sampler
            grown = proc.memory_info().rss - base
            return errors, peak, grown, c.stats.by_method.get("GET", 0), elapsed

    errors, peak, grown, gets, elapsed = asyncio.run(run())
    print(f"{FETCHES} fetches at concurrency {CONCURRENCY} in {elapsed:.1f}s: {errors} errors, "
          f"peak {peak} connections, RSS +{grown / 1024:.0f} KiB, {gets} GETs")
    assert errors == 0
    assert 1 <= peak <= CONCURRENCY
    assert grown < 16 * 1024 * 1024
    assert gets >= FETCHES
