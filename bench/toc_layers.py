"""Case 8: listing a layer that carries a table of contents (eStargz, zstd:chunked) with Range requests only.

The layer is a tar of this machine's /usr files (``--toc-mib`` of tar), written as eStargz and as zstd:chunked by
the tests' format builders (``tests/_lazykit.py``, which follow the published formats), each the single layer of an
image. ``ocinb.files`` runs with an empty cache; the registry's access log gives the bytes it fetched from the
blob, beside the full streamed reading of the same layer. Target (issue 12): bytes fetched ≤ 2% of the layer.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _util import MIB
from inside_layers import build_tar

import ocinb
from ocinb.cache import ContentCache
from ocinb.ops.layer_reader import read_layer
from ocinb.ops.push import Layer
from ocinb.testing import LocalRegistry

HERE = Path(__file__).resolve().parent
CASE = "8. files from a TOC"


async def _push(address: str, repo: str, blob: bytes, media_type: str, diff_id: str,
                annotations: dict[str, str]) -> ocinb.Descriptor:
    async with ocinb.AsyncClient(address, cache=ContentCache(enabled=False), docker_config=False,
                                 environment=False) as c:
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
        await c.repo(repo).push_image("latest", config, [Layer(blob, media_type, annotations)])
        parsed = (await c.repo(repo).manifests.get("latest")).parsed
        assert isinstance(parsed, ocinb.ImageManifest)
        return parsed.layers[0]


async def _list(address: str, repo: str, desc: ocinb.Descriptor, cache: str, toc: bool) -> tuple[float, int, str]:
    async with ocinb.AsyncClient(address, cache=ContentCache(cache), docker_config=False, environment=False) as c:
        t0 = time.perf_counter()
        table = await read_layer(c.repo(repo), desc, toc=toc)
        return time.perf_counter() - t0, len(table.entries), table.source


def case8(b: Any, reg: LocalRegistry) -> None:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from _lazykit import estargz, zstd_chunked

    tmp = b.tmp / "toc"
    tmp.mkdir(exist_ok=True)
    tar_path = tmp / "layer.tar"
    size, entries = build_tar(tar_path, b.args.toc_mib * MIB)
    tar = tar_path.read_bytes()
    tar_path.unlink()
    for kind, build, media in (("estargz", estargz, "application/vnd.oci.image.layer.v1.tar+gzip"),
                               ("zstd:chunked", zstd_chunked, "application/vnd.oci.image.layer.v1.tar+zstd")):
        layer = build(tar)
        repo = f"bench/toc-{kind.replace(':', '-')}"
        desc = asyncio.run(_push(reg.address, repo, layer.blob, media, layer.diff_id, layer.annotations))
        del layer
        timings: dict[str, list[float]] = {"toc": [], "stream": []}
        fetched: dict[str, list[int]] = {"toc": [], "stream": []}
        rows: dict[str, int] = {}
        for _ in range(b.args.big_runs):
            for how in ("stream", "toc"):
                start = len(reg.access_log())
                cache = tempfile.mkdtemp(prefix="ocinb-bench-toc-", dir=tmp)
                seconds, n, source = asyncio.run(_list(reg.address, repo, desc, cache, how == "toc"))
                got = sum(e.size for e in reg.access_log()[start:]
                          if e.method == "GET" and e.path.endswith(f"/blobs/{desc.digest}"))
                timings[how].append(seconds)
                fetched[how].append(got)
                rows[how] = n
                if how == "toc" and source == "tar":
                    b.note(f"{CASE} ({kind})", "the TOC was not used: the layer was streamed")
        case = f"{CASE} ({kind})"
        b.row(case, "ocinb read_layer, whole layer streamed", timings["stream"], ref=True,
              bytes_fetched=max(fetched["stream"]), rows=rows["stream"])
        b.row(case, "ocinb read_layer from the TOC (Range)", timings["toc"], bytes_fetched=max(fetched["toc"]),
              rows=rows["toc"])
        share = max(fetched["toc"]) / desc.size
        b.note(case, f"{desc.size / MIB:.1f} MiB layer of {entries} entries ({size / MIB:.0f} MiB tar): "
                     f"{max(fetched['toc'])} bytes fetched = {100 * share:.3f}% of the layer (target ≤ 2%): "
                     f"{'MET' if share <= 0.02 else 'MISSED'}")
