"""One ``files`` reading of an image in a fresh process: ``python bench/_inside_worker.py ADDRESS REF CACHE_DIR``.

Prints JSON: ``seconds`` and RSS (``rss_base``, ``rss_peak``) of the first reading (layers streamed), ``rows``,
and ``cached_seconds`` of a second reading by a new client on the same cache directory (no layer bytes).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _util import PeakRSS

import ocinb
from ocinb.cache import ContentCache


async def main(address: str, ref: str, cache_dir: str) -> dict[str, object]:
    import pandas  # noqa: F401  (imported before the RSS baseline, as a notebook has it)

    async with ocinb.AsyncClient(address, cache=ContentCache(cache_dir), docker_config=False,
                                 environment=False) as client:
        await client.ping()
        with PeakRSS() as rss:
            start = time.perf_counter()
            df = await client.files(ref, progress=False)
            seconds = time.perf_counter() - start
    async with ocinb.AsyncClient(address, cache=ContentCache(cache_dir), docker_config=False,
                                 environment=False) as client:
        start = time.perf_counter()
        again = await client.files(ref, progress=False)
        cached = time.perf_counter() - start
    assert len(again) == len(df)
    return {"seconds": seconds, "rss_base": rss.base, "rss_peak": rss.peak, "rows": len(df),
            "cached_seconds": cached}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
