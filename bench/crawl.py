"""Crawl benchmark (issue 14): 100 repositories × 20 tags on the local registry, tables platforms, layers, history.

1. Time: ``ocinb.crawl`` against the same requests made by ocinb's bulk path alone (tags lists, then per tag a
   HEAD, the manifest by digest, its images and parsed configs, gathered under the client's limit), so the
   ratio is the cost of the crawl's bookkeeping (rows, Parquet, journal) — target ≤ 1.2×.
2. Memory: peak RSS growth of a crawl of 10 repositories and of 100 (the registry 10× bigger), each in a fresh
   process — target: flat (the bounded digest map and batch writer keep it so).
3. Resume: an ``ocinb crawl`` process SIGKILLed at 50 % of its units and run again, against an uninterrupted
   run: requests counted from the registry's access log — target ≤ 1.05×.

The content cache is off everywhere (``OCINB_CACHE=0``), so every run makes its requests. About 2–3 minutes:
``python bench/crawl.py [--repos 100 --tags 20 --runs 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["OCINB_CACHE"] = "0"

import ocinb  # noqa: E402
from ocinb.ops.crawl import JOURNAL_DIR  # noqa: E402
from ocinb.testing import LocalRegistry  # noqa: E402

TABLES = ["platforms", "layers", "history"]


def child_env() -> dict[str, str]:
    return {**os.environ, "OCINB_CACHE": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


async def seed(address: str, repos: int, tags: int) -> None:
    """``repos`` × ``tags`` distinct single-platform images (own config, one shared layer)."""
    async with ocinb.AsyncClient(address, cache=ocinb.ContentCache(enabled=False)) as client:
        gate = asyncio.Semaphore(16)

        async def one(r: int, t: int) -> None:
            config = {"architecture": "amd64", "os": "linux", "created": "2024-05-01T00:00:00Z",
                      "rootfs": {"type": "layers", "diff_ids": []},
                      "history": [{"created_by": f"build {r}/{t}"}, {"created_by": "label", "empty_layer": True}]}
            async with gate:
                await client.repo(f"bench/r{r:03d}").push_image(f"t{t:02d}", config, [ocinb.Layer(b"shared layer")])

        await asyncio.gather(*(one(r, t) for r in range(repos) for t in range(tags)))


def bulk_path(address: str, repos: list[str]) -> float:
    """What the crawl fetches, by ocinb's bulk path alone (tags lists, then per tag a HEAD, the manifest by digest
    and ``describe.platform_entries``: the image manifests and parsed configs the tables are made of), without
    the crawl's bookkeeping (rows, Parquet, journal): seconds."""
    from ocinb.ops import pull
    from ocinb.ops._gather import SingleFlight, gather_progress
    from ocinb.ops.describe import platform_entries

    async def go() -> float:
        started = time.perf_counter()
        async with ocinb.AsyncClient(address, cache=ocinb.ContentCache(enabled=False)) as client:
            lists = await asyncio.gather(*(client.repo(r).tags.list() for r in repos))
            flight = SingleFlight()

            async def image(repo: str, tag: str) -> None:
                r = client.repo(repo)
                desc = await r.manifests.head(tag)
                top = await flight.run(desc.digest, lambda: pull.get_manifest(r, desc.digest))
                await platform_entries(r, top, progress=False, flight=flight)

            await gather_progress([image(r, t) for r, tags in zip(repos, lists, strict=True) for t in tags],
                                  progress=False)
        return time.perf_counter() - started

    return asyncio.run(go())


def crawl_time(address: str, repos: list[str], out: Path) -> float:
    async def go() -> float:
        from ocinb._defaults import crawl_with

        started = time.perf_counter()
        client = ocinb.AsyncClient(address, cache=ocinb.ContentCache(enabled=False))
        try:
            await crawl_with(lambda _r: client, [f"{address}/{r}" for r in repos], out, TABLES, resume=False,
                             progress=False)
        finally:
            await client.aclose()
        return time.perf_counter() - started

    return asyncio.run(go())


def peak_rss_growth(address: str, repos: list[str], out: Path) -> int:
    """Peak RSS growth (bytes) of a crawl of ``repos`` in a fresh process."""
    code = (
        "import json, sys, threading, time, psutil, ocinb\n"
        "p = psutil.Process(); import pandas, pyarrow, ocinb.crawl_tables\n"
        "base = peak = p.memory_info().rss; stop = False\n"
        "def sample():\n"
        "    global peak\n"
        "    while not stop:\n"
        "        peak = max(peak, p.memory_info().rss); time.sleep(0.005)\n"
        "t = threading.Thread(target=sample, daemon=True); t.start()\n"
        "ocinb.crawl(json.loads(sys.argv[1]), sys.argv[2], sys.argv[3].split(','), resume=False, progress=False)\n"
        "stop = True; t.join(); print(peak - base)\n"
    )
    targets = json.dumps([f"{address}/{r}" for r in repos])
    result = subprocess.run([sys.executable, "-c", code, targets, str(out), ",".join(TABLES)], env=child_env(),
                            capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1])


def journaled(out: Path) -> int:
    return sum(len(json.loads(p.read_text())["units"]) for p in (out / JOURNAL_DIR).glob("batch-*.json"))


def cli(address: str, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ocinb", "crawl", address, "-o", str(out), "--tables",
                             ",".join(TABLES)], env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def resume_requests(reg: LocalRegistry, tmp: Path, units: int) -> tuple[int, int, int]:
    """(uninterrupted requests, killed + resumed requests, units journaled at the kill)."""
    start = len(reg.access_log())
    proc = cli(reg.address, tmp / "whole")
    assert proc.wait() == 0, proc.stderr.read().decode() if proc.stderr else ""
    whole = len(reg.access_log()) - start

    start = len(reg.access_log())
    out = tmp / "killed"
    proc = cli(reg.address, out)
    while journaled(out) < units // 2:  # poll the journal
        if proc.poll() is not None:
            raise RuntimeError("the crawl ended before half way; use more repositories")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = journaled(out)
    proc = cli(reg.address, out)
    assert proc.wait() == 0, proc.stderr.read().decode() if proc.stderr else ""
    return whole, len(reg.access_log()) - start, at_kill


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default="1,2,3", help="which measurements: 1 time, 2 memory, 3 resume")
    args = parser.parse_args()
    cases = {int(c) for c in args.cases.split(",")}
    with tempfile.TemporaryDirectory(prefix="ocinb-bench-crawl-") as tmp_name, LocalRegistry() as reg:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        asyncio.run(seed(reg.address, args.repos, args.tags))
        print(f"seeded {args.repos} × {args.tags} images in {time.perf_counter() - t0:.1f} s")
        repos = [f"bench/r{r:03d}" for r in range(args.repos)]

        results: dict[str, Any] = {"load_average_start": os.getloadavg()}
        if 1 in cases:
            bulk: list[float] = []
            crawl: list[float] = []
            for i in range(args.runs):  # interleaved, so background load hits both alike
                bulk.append(bulk_path(reg.address, repos))
                crawl.append(crawl_time(reg.address, repos, tmp / f"time-{i}"))
            b, c = statistics.median(bulk), statistics.median(crawl)
            results.update(bulk_s=b, crawl_s=c, time_ratio=c / b)
            print(f"1. time: bulk path {b:.2f} s, crawl {c:.2f} s → {c / b:.2f}× (target ≤ 1.2×)")
        if 2 in cases:
            small = peak_rss_growth(reg.address, repos[: max(1, args.repos // 10)], tmp / "mem-small")
            large = peak_rss_growth(reg.address, repos, tmp / "mem-large")
            results.update(rss_small=small, rss_large=large, memory_ratio=large / max(small, 1))
            print(f"2. memory: peak RSS growth {small / 2**20:.1f} MiB for {max(1, args.repos // 10)} "
                  f"repositories, {large / 2**20:.1f} MiB for {args.repos} → {large / max(small, 1):.2f}× "
                  "(target: flat)")
        if 3 in cases:
            units = args.repos * args.tags * len(TABLES)
            whole, killed, at_kill = resume_requests(reg, tmp, units)
            results.update(requests_whole=whole, requests_killed_resumed=killed, journaled_at_kill=at_kill,
                           resume_ratio=killed / whole)
            print(f"3. resume: uninterrupted {whole} requests; killed at {at_kill}/{units} units and resumed "
                  f"{killed} → {killed / whole:.3f}× (target ≤ 1.05×)")
        results["load_average_end"] = os.getloadavg()
        print(f"load average: {results['load_average_start'][0]:.2f} at the start, "
              f"{results['load_average_end'][0]:.2f} at the end (2 cores shared)")
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "crawl-latest.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
