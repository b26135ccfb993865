"""A 200 MiB blob pushed from a file and pulled to a file with memory measured and bounded."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ocinb import AsyncClient
from ocinb.cache import ContentCache
from ocinb.testing import LocalRegistry

SIZE = 200 * 1024 * 1024
MIB = 1024 * 1024
BOUND = 64 * MIB


def _write_streaming(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes one MiB at a time; return their digest."""
    h = hashlib.sha256()
    seed = hashlib.sha256(b"ocinb large blob").digest()
    block = os.urandom(MIB)
    with open(path, "wb") as fh:
        for i in range(size // MIB):
            piece = seed[i % 32:i % 32 + 1] + block[1:]
            h.update(piece)
            fh.write(piece)
    return "sha256:" + h.hexdigest()


class RssPeak:
    """Samples this process's RSS on a thread; ``growth`` is the peak above the starting value."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.start = self.proc.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start


@pytest.fixture
def big_file(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    path = tmp_path / "big.bin"
    digest = _write_streaming(path, SIZE)
    yield path, digest
    path.unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_200mib_push_and_pull_memory_flat(registry: LocalRegistry, repo_name: str, tmp_path: Path,
                                                big_file: tuple[Path, str]) -> None:
    path, digest = big_file
    out = tmp_path / "out" / "big.bin"
    async with AsyncClient(registry.address, cache=ContentCache(tmp_path / "cache"), docker_config=False,
                           environment=False) as c:
        repo = c.repo(repo_name)
        await c.ping()
        tracemalloc.start()
        try:
            with RssPeak() as push_rss:
                desc = await repo.blobs.upload(path)
            _, push_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            with RssPeak() as pull_rss:
                await repo.blobs.download(digest, out)
            _, pull_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert desc.digest == digest and desc.size == SIZE
    assert out.stat().st_size == SIZE
    h = hashlib.sha256()
    with open(out, "rb") as fh:
        while data := fh.read(MIB):
            h.update(data)
    assert "sha256:" + h.hexdigest() == digest
    assert push_peak < BOUND, f"push allocated {push_peak / MIB:.1f} MiB at peak"
    assert pull_peak < BOUND, f"pull allocated {pull_peak / MIB:.1f} MiB at peak"
    assert push_rss.growth < BOUND, f"push grew RSS by {push_rss.growth / MIB:.1f} MiB"
    assert pull_rss.growth < BOUND, f"pull grew RSS by {pull_rss.growth / MIB:.1f} MiB"
    out.unlink()
