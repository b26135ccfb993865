"""512 MiB blob push and pull against a LocalRegistry: ocinb beside curl, wall time and peak RSS.

Run: ``python bench/pull_push_512.py [--size-mib 512]``. Each measurement is a separate process under
``/usr/bin/time -v`` (peak RSS = "Maximum resident set size").
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024


def _make_file(path: Path, size_mib: int) -> str:
    h = hashlib.sha256()
    block = os.urandom(MIB)
    with open(path, "wb") as fh:
        for i in range(size_mib):
            piece = i.to_bytes(4, "big") + block[4:]
            h.update(piece)
            fh.write(piece)
    return "sha256:" + h.hexdigest()


async def _worker(action: str, address: str, repo: str, path: str, digest: str) -> None:
    from ocinb import AsyncClient
    from ocinb.cache import ContentCache

    async with AsyncClient(address, cache=ContentCache(enabled=False), docker_config=False,
                           environment=False) as c:
        blobs = c.repo(repo).blobs
        if action == "push":
            await blobs.upload(Path(path), digest)
        elif action == "push-hash":
            await blobs.upload(Path(path))
        elif action == "pull-file":
            await blobs.download(digest, path)
        elif action == "pull-null":
            async for _ in blobs.open(digest):
                pass


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of ``cmd`` under /usr/bin/time -v."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    return elapsed, rss_kib / 1024


def _curl_push(url: str, repo: str, path: Path, digest: str, body: str = "--data-binary @") -> list[str]:
    script = (
        f'loc=$(curl -s -o /dev/null -D - -X POST -H "Content-Length: 0" {url}/v2/{repo}/blobs/uploads/ '
        f"| tr -d '\\r' | awk -F': ' 'tolower($1)==\"location\" {{print $2}}'); "
        f'case "$loc" in http*) ;; *) loc="{url}$loc";; esac; '
        f'sep="?"; case "$loc" in *\\?*) sep="&";; esac; '
        f'curl -sf -o /dev/null -X PUT -H "Content-Type: application/octet-stream" '
        f'{body}{path} "$loc${{sep}}digest={digest}"'
    )
    return ["sh", "-c", script]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--worker", nargs=5, metavar=("ACTION", "ADDRESS", "REPO", "PATH", "DIGEST"))
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker(*args.worker))
        return

    from ocinb.testing import LocalRegistry

    with tempfile.TemporaryDirectory() as tmp, LocalRegistry() as reg:
        src = Path(tmp) / "blob.bin"
        digest = _make_file(src, args.size_mib)
        me = [sys.executable, os.path.abspath(__file__), "--worker"]
        rows: list[tuple[str, float, float]] = []
        rows.append(("ocinb push (digest given)", *_timed([*me, "push", reg.address, "b/ocinb1", str(src), digest])))
        rows.append(("ocinb push (hashes file first)",
                     *_timed([*me, "push-hash", reg.address, "b/ocinb2", str(src), digest])))
        rows.append(("curl POST + PUT --data-binary", *_timed(_curl_push(reg.url, "b/curl", src, digest))))
        rows.append(("curl POST + PUT -T (streamed)",
                     *_timed(_curl_push(reg.url, "b/curl2", src, digest, body="-T "))))
        out = Path(tmp) / "out.bin"
        rows.append(("ocinb pull -> file (verified, rename)",
                     *_timed([*me, "pull-file", reg.address, "b/ocinb1", str(out), digest])))
        out.unlink()
        rows.append(("ocinb pull -> discard (verified)",
                     *_timed([*me, "pull-null", reg.address, "b/ocinb1", "-", digest])))
        rows.append(("curl GET -o file", *_timed(["curl", "-sf", "-o", str(out),
                                                  f"{reg.url}/v2/b/curl/blobs/{digest}"])))
        out.unlink()
        rows.append(("curl GET -o /dev/null", *_timed(["curl", "-sf", "-o", "/dev/null",
                                                       f"{reg.url}/v2/b/curl/blobs/{digest}"])))
        print(f"{args.size_mib} MiB blob, registry {reg.address}")
        print(f"{'operation':40} {'seconds':>8} {'MiB/s':>8} {'peak RSS MiB':>13}")
        for name, secs, rss in rows:
            print(f"{name:40} {secs:8.2f} {args.size_mib / secs:8.0f} {rss:13.1f}")


if __name__ == "__main__":
    main()
