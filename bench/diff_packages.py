"""Issue 13's benchmarks, standalone: ``python bench/diff_packages.py [--base-mib 450] [--top-mib 50]``.

Two versions of an image share a base layer (a tar of this machine's /usr files, gzip -1) and differ in a top
layer that only adds and modifies files (seeded random bytes). Against the real registry (LocalRegistry), each
measured call with an empty cache directory:

- diff v1 v2: bytes of blob GETs in the registry's access log ÷ the two top layers' bytes (target ≤ 1.1), and its
  time ÷ the time of ``files`` of the two top layers alone (target ≤ 1.2);
- packages v1 ÷ files v1 (the whole image, base included; target ≤ 1.0).

Times are the best of ``--runs`` (default 2) and the ratios are printed; runs take a few minutes at the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import io
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inside_layers import build_tar

import ocinb
from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.ops.push import Layer
from ocinb.testing import LocalRegistry

MIB = 1024 * 1024


def top_tar(version: int, mib: int) -> bytes:
    """The top layer: ``mib`` MiB of 1 MiB files; version 2 modifies every other one and adds a tenth more."""
    rng = random.Random(13)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        count = mib + (mib // 10 if version == 2 else 0)
        for i in range(count):
            data = rng.randbytes(MIB)
            if version == 2 and i % 2 == 0:
                data = b"v2" + data[2:]
            info = tarfile.TarInfo(f"app/data/f{i:04d}.bin")
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def push(address: str, base: Path, base_diff: str, tops: list[bytes]) -> list[str]:
    async with ocinb.AsyncClient(address, cache=ContentCache(enabled=False), docker_config=False,
                                 environment=False) as c:
        digests = []
        for v, top in enumerate(tops, 1):
            blob = gzip.compress(top, compresslevel=1, mtime=0)
            config = {"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": [base_diff, sha(top)]}}
            await c.repo("bench/diff").push_image(f"v{v}", config, [Layer(base, mt.OCI_LAYER_GZIP),
                                                                      Layer(blob, mt.OCI_LAYER_GZIP)])
            digests.append(sha(blob))
        return digests


def timed(address: str, fn: Callable[[ocinb.AsyncClient], Awaitable[Any]], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            async def main() -> None:
                async with ocinb.AsyncClient(address, cache=ContentCache(Path(cache)), docker_config=False,
                                             environment=False) as c:
                    await fn(c)

            start = time.perf_counter()
            asyncio.run(main())
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-mib", type=int, default=450)
    parser.add_argument("--top-mib", type=int, default=50)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalRegistry() as reg:
        base_tar = Path(tmp) / "base.tar"
        size, entries = build_tar(base_tar, args.base_mib * MIB)
        h = hashlib.sha256()
        with open(base_tar, "rb") as f:
            while chunk := f.read(MIB):
                h.update(chunk)
        base_gz = Path(tmp) / "base.tar.gz"
        with open(base_gz, "wb") as out:
            subprocess.run(["gzip", "-1", "-c", str(base_tar)], stdout=out, check=True)
        tops = [top_tar(1, args.top_mib), top_tar(2, args.top_mib)]
        top_digests = asyncio.run(push(reg.address, base_gz, "sha256:" + h.hexdigest(), tops))
        top_bytes = sum(len(gzip.compress(t, compresslevel=1, mtime=0)) for t in tops)
        print(f"base: {size / MIB:.0f} MiB tar, {entries} entries, {base_gz.stat().st_size / MIB:.0f} MiB gzip; "
              f"tops: {top_bytes / MIB:.1f} MiB gzip together")

        before = len(reg.access_log())
        t_diff = timed(reg.address, lambda c: c.diff("bench/diff:v1", "bench/diff:v2"), 1)
        log = reg.access_log()[before:]
        read = sum(e.size for e in log if e.method == "GET" and "/blobs/" in e.path)
        t_diff = min(t_diff, timed(reg.address, lambda c: c.diff("bench/diff:v1", "bench/diff:v2"),
                                   max(args.runs - 1, 1)))

        async def tops_only(c: ocinb.AsyncClient) -> None:
            await c.files("bench/diff:v1", layer=-1, progress=False)
            await c.files("bench/diff:v2", layer=-1, progress=False)

        t_tops = timed(reg.address, tops_only, args.runs)
        print(f"diff: {read / MIB:.1f} MiB read ÷ {top_bytes / MIB:.1f} MiB of differing layers = "
              f"{read / top_bytes:.3f} (target ≤ 1.1); {t_diff:.2f} s ÷ {t_tops:.2f} s listing them = "
              f"{t_diff / t_tops:.2f} (target ≤ 1.2)")
        assert not {d for d in top_digests} - {e.path.rsplit("/", 1)[-1] for e in log}
        t_pk = timed(reg.address, lambda c: c.packages("bench/diff:v1"), args.runs)
        t_files = timed(reg.address, lambda c: c.files("bench/diff:v1", progress=False), args.runs)
        print(f"packages: {t_pk:.2f} s ÷ files {t_files:.2f} s = {t_pk / t_files:.2f} (target ≤ 1.0)")


if __name__ == "__main__":
    main()
