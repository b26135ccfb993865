"""One big-blob transfer by one Python client, in a fresh process so its peak RSS is its own.

Usage: ``python bench/_worker.py CLIENT OP ADDRESS REPO DIGEST PATH [CHUNK]`` with CLIENT in
ocinb/ocinb-httpx/dxf/oras, OP in pull/push/push-chunked. Prints JSON: seconds, rss_base, rss_peak, digest.
The clock and the RSS baseline start after imports and client set-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import MIB, PeakRSS, sha256_file


def _iter_file(path: str, chunk: int = MIB):  # type: ignore[no-untyped-def]
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            yield data


def ocinb_op(op: str, address: str, repo: str, digest: str, path: str, chunk: int | None,
             wire: str = "default") -> str:
    import ocinb
    from ocinb.cache import ContentCache

    async def main() -> str:
        cache = ContentCache(tempfile.mkdtemp(prefix="ocinb-bench-cache-"))
        transport = None
        if wire == "httpx":
            import httpx

            transport = httpx.AsyncHTTPTransport()
        async with ocinb.AsyncClient(address, cache=cache, docker_config=False, environment=False,
                                     transport=transport) as client:
            r = client.repo(repo)
            await client.ping()
            with PeakRSS() as rss:
                start = time.perf_counter()
                if op == "pull":
                    await r.blobs.download(digest, path)
                    got = digest
                else:
                    desc = await r.blobs.upload(path, digest, chunk_size=chunk)
                    got = desc.digest
                seconds = time.perf_counter() - start
            _report(seconds, rss, got)
            return got

    return asyncio.run(main())


def dxf_op(op: str, address: str, repo: str, digest: str, path: str, chunk: int | None) -> str:
    from dxf import DXF

    d = DXF(address, repo, insecure=True)
    d.api_version_check()
    with PeakRSS() as rss:
        start = time.perf_counter()
        if op == "pull":
            with open(path, "wb") as fh:
                for piece in d.pull_blob(digest, chunk_size=MIB):  # verifies the digest at the end
                    fh.write(piece)
            got = digest
        else:
            got = d.push_blob(data=_iter_file(path), digest=digest, check_exists=False)
        seconds = time.perf_counter() - start
    _report(seconds, rss, got)
    return got


def oras_op(op: str, address: str, repo: str, digest: str, path: str, chunk: int | None) -> str:
    import oras.provider

    reg = oras.provider.Registry(hostname=address, insecure=True)
    container = f"{address}/{repo}"
    with PeakRSS() as rss:
        start = time.perf_counter()
        if op == "pull":
            reg.download_blob(container, digest, path)
            got = sha256_file(Path(path))  # oras-py does not verify: a separate pass
            if got != digest:
                raise SystemExit(f"oras download digest mismatch: {got}")
        else:
            layer = {"mediaType": "application/octet-stream", "digest": digest, "size": os.path.getsize(path)}
            if chunk:
                resp = reg.chunked_upload(path, reg.get_container(container), layer, chunk_size=chunk)
            else:
                resp = reg.put_upload(path, reg.get_container(container), layer)
            if resp.status_code not in (201, 204):
                raise SystemExit(f"oras push answered {resp.status_code}: {resp.text[:300]}")
            got = digest
        seconds = time.perf_counter() - start
    _report(seconds, rss, got)
    return got


def _report(seconds: float, rss: PeakRSS, digest: str) -> None:
    print(json.dumps({"seconds": seconds, "rss_base": rss.base, "rss_peak": rss.peak, "digest": digest}))


def main() -> None:
    client, op, address, repo, digest, path = sys.argv[1:7]
    chunk = int(sys.argv[7]) if len(sys.argv) > 7 and sys.argv[7] != "0" else None
    if client == "ocinb-httpx":  # ocinb over httpx's own transport, the wire it had before aiohttp
        ocinb_op(op, address, repo, digest, path, chunk, wire="httpx")
        return
    {"ocinb": ocinb_op, "dxf": dxf_op, "oras": oras_op}[client](op, address, repo, digest, path, chunk)


if __name__ == "__main__":
    main()
