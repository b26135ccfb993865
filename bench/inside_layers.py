"""Case 7: listing a big layer's files, ``ocinb.files`` beside ``curl | tar -tzv`` and ``curl | zstd -dc | tar -tv``.

The layer is a tar of files this machine has (from /usr, in walk order, files ≤ 32 MiB, until ``--inside-mib`` of
tar), gzip -6 and zstd -3, pushed as the single layer of two images. ocinb runs in a fresh process per run
(``bench/_inside_worker.py``): the time of the first ``files`` call with an empty cache, its RSS growth, and a
second call on the same cache directory. Targets (issue 12): ≤ 0.6× the reference, ≤ 64 MiB growth, cached ≤ 0.1 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from _util import MIB, timed_subprocess

import ocinb
from ocinb.cache import ContentCache
from ocinb.ops.push import Layer
from ocinb.testing import LocalRegistry

HERE = Path(__file__).resolve().parent
CASE = "9. files of a big layer"


def build_tar(path: Path, limit: int) -> tuple[int, int]:
    """A tar of /usr files (regular files ≤ 32 MiB, symlinks, dirs) up to ``limit`` bytes; (bytes, entries)."""
    total = entries = 0
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirnames, filenames in os.walk("/usr"):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                    if not (os.path.islink(full) or (os.path.isfile(full) and st.st_size <= 32 * MIB)):
                        continue
                    tf.add(full, recursive=False)
                except OSError:
                    continue
                entries += 1
                total += st.st_size if not os.path.islink(full) else 0
                if total >= limit:
                    return path.stat().st_size, entries
    return path.stat().st_size, entries


async def _push(address: str, repo: str, blob: Path, media_type: str, diff_id: str) -> None:
    async with ocinb.AsyncClient(address, cache=ContentCache(enabled=False), docker_config=False,
                                 environment=False) as c:
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
        await c.repo(repo).push_image("latest", config, [Layer(blob, media_type)])


def _sha(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout
    return "sha256:" + out.split()[0]


def case9(b: Any, reg: LocalRegistry) -> None:
    from run import _interleaved, _target  # the harness's helpers (bench/run.py imports this module lazily)

    tmp = b.tmp / "inside"
    tmp.mkdir(exist_ok=True)
    tar = tmp / "layer.tar"
    size, entries = build_tar(tar, b.args.inside_mib * MIB)
    print(f"  built a {size / MIB:.0f} MiB tar of {entries} entries; compressing", flush=True)
    subprocess.run(f"gzip -6 -c {tar} > {tar}.gz && zstd -3 -q -T1 -f {tar} -o {tar}.zst", shell=True, check=True)
    diff_id = _sha(tar)
    tar.unlink()
    blobs = {"gzip": (Path(f"{tar}.gz"), "application/vnd.oci.image.layer.v1.tar+gzip"),
             "zstd": (Path(f"{tar}.zst"), "application/vnd.oci.image.layer.v1.tar+zstd")}
    digests = {}
    for how, (path, media) in blobs.items():
        asyncio.run(_push(reg.address, f"bench/inside-{how}", path, media, diff_id))
        digests[how] = _sha(path)
        b.note(CASE, f"{how} layer: {path.stat().st_size / MIB:.0f} MiB compressed, {size / MIB:.0f} MiB tar, "
                     f"{entries} entries")
    extra: dict[str, dict[str, Any]] = {}

    def ocinb_run(how: str) -> Any:
        def fn() -> float:
            cache = tempfile.mkdtemp(prefix="ocinb-bench-inside-", dir=tmp)
            out = subprocess.run([sys.executable, str(HERE / "_inside_worker.py"), reg.address,
                                  f"bench/inside-{how}:latest", cache], capture_output=True, text=True, check=True)
            info = json.loads(out.stdout.strip().splitlines()[-1])
            e = extra.setdefault(f"ocinb.files ({how})", {"rss_growth_mib": [], "rss_peak_mib": [], "cached_s": [],
                                                          "rows": info["rows"]})
            e["rss_growth_mib"].append(round((info["rss_peak"] - info["rss_base"]) / MIB, 1))
            e["rss_peak_mib"].append(round(info["rss_peak"] / MIB, 1))
            e["cached_s"].append(round(info["cached_seconds"], 4))
            subprocess.run(["rm", "-rf", cache], check=False)
            return float(info["seconds"])
        return fn

    def reference(how: str) -> Any:
        url = f"{reg.url}/v2/bench/inside-{how}/blobs/{digests[how]}"
        cmd = (f"curl -s -f {url} | tar -tzv > /dev/null" if how == "gzip"
               else f"curl -s -f {url} | zstd -dc | tar -tv > /dev/null")

        def fn() -> float:
            return timed_subprocess(cmd, shell=True)[0]
        return fn

    for how, ref_name in (("gzip", "curl | tar -tzv"), ("zstd", "curl | zstd -dc | tar -tv")):
        case = f"{CASE} ({how})"
        _interleaved(b, case, [(ref_name, reference(how), True), (f"ocinb.files ({how})", ocinb_run(how), False)],
                     b.args.big_runs, extra=extra)
        _target(b, case, f"ocinb.files ({how})", 0.6, "≤ 0.6× the reference", max_growth=64)
        cached = max(extra[f"ocinb.files ({how})"]["cached_s"])
        b.note(case, f"cached second call (new client, same cache dir): {cached:.3f} s "
                     f"(target ≤ 0.1 s): {'MET' if cached <= 0.1 else 'MISSED'}")
    for path, _ in blobs.values():
        path.unlink(missing_ok=True)
