"""ocinb benchmarks against oras-py, python-dxf, skopeo and curl, on one local registry, in one run.

Run: ``bash scripts/bench-deps.sh && .venv/bin/python bench/run.py`` (``make bench``). Prints a
Markdown table, writes ``bench/results/latest.json``. Options: ``--runs``, ``--big-runs``,
``--size-mib``, ``--cases 1,2,3``. Peers that are not installed are skipped and said so.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _util import MIB, machine, make_file, median, timed_subprocess, tool_version  # noqa: E402

import ocinb  # noqa: E402
from ocinb.cache import ContentCache  # noqa: E402
from ocinb.models import Descriptor  # noqa: E402
from ocinb.testing import LocalRegistry  # noqa: E402

PY = sys.executable
ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
MANY = "bench/many"
MULTI = "bench/multi"
BIG = "bench/big"


class Bench:
    """Collects rows (one per case × client) and prints them."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.rows: list[dict[str, Any]] = []
        self.notes: dict[str, list[str]] = {}
        self.loads: dict[str, tuple[float, float, float]] = {}

    def row(self, case: str, client: str, times: list[float], *, ref: bool = False, **extra: Any) -> dict[str, Any]:
        r = {"case": case, "client": client, "runs": len(times), "times_s": [round(t, 4) for t in times],
             "median_s": round(median(times), 4), "reference": ref, **extra}
        self.rows.append(r)
        print(f"  {case:28s} {client:40s} {r['median_s']:8.3f} s  {extra or ''}", flush=True)
        return r

    def note(self, case: str, text: str) -> None:
        self.notes.setdefault(case, []).append(text)
        print(f"  note [{case}]: {text}", flush=True)

    def ratios(self) -> None:
        refs = {r["case"]: r["median_s"] for r in self.rows if r["reference"]}
        for r in self.rows:
            ref = refs.get(r["case"])
            r["ratio"] = round(r["median_s"] / ref, 2) if ref else None


def client(address: str, cache_dir: Path | None = None, wire: str = "default") -> ocinb.AsyncClient:
    """A fresh ocinb client with an empty cache; ``wire`` picks the transport under HttpCore (see ``wires()``)."""
    cache = ContentCache(cache_dir or tempfile.mkdtemp(prefix="ocinb-bench-cache-"))
    return ocinb.AsyncClient(address, cache=cache, docker_config=False, environment=False,
                             transport=make_wire(wire))


WIRE_LABELS = {"default": "aiohttp wire (default)", "httpx": "httpx's own transport",
               "httpx-aiohttp": "httpx-aiohttp AiohttpTransport"}


def make_wire(name: str) -> Any:
    """None for ocinb's default wire, else the named httpx transport (candidates measured in cases 1, 3, 4)."""
    if name == "default":
        return None
    import httpx

    if name == "httpx":
        return httpx.AsyncHTTPTransport()
    from httpx_aiohttp import AiohttpTransport

    return AiohttpTransport()


def wires() -> list[str]:
    """The transports installed to compare: the default, httpx's own, httpx-aiohttp when present."""
    import importlib.util

    return ["default", "httpx"] + (["httpx-aiohttp"] if importlib.util.find_spec("httpx_aiohttp") else [])


async def seed(address: str, ntags: int) -> list[str]:
    """200 single-platform images with their own config and a shared layer; one 3-platform index."""
    async with client(address) as c:
        many = c.repo(MANY)
        shared = os.urandom(4096)
        tags = [f"t{i:03d}" for i in range(ntags)]

        def config(arch: str, n: int, variant: str | None = None) -> dict[str, Any]:
            doc: dict[str, Any] = {"architecture": arch, "os": "linux", "config": {"Labels": {"n": str(n)}},
                                   "rootfs": {"type": "layers", "diff_ids": []},
                                   "created": "2026-01-01T00:00:00Z"}
            if variant:
                doc["variant"] = variant
            return doc

        await many.blobs.upload(shared)
        await asyncio.gather(*(many.push_image(t, config("amd64", i), [shared]) for i, t in enumerate(tags)))
        multi = c.repo(MULTI)
        plats = [("amd64", None), ("arm64", "v8"), ("arm", "v7")]
        pushed = await asyncio.gather(*(
            multi.push_image(f"{a}-{v}", config(a, 0, v), [os.urandom(2048)]) for a, v in plats))
        await multi.push_index("latest", pushed, platforms=["linux/amd64", "linux/arm64/v8", "linux/arm/v7"])
        return tags


def log_breakdown(entries: list[Any]) -> dict[str, int]:
    """Requests by ``METHOD kind`` (manifests, blobs, tags, uploads, other) from access-log entries."""
    out: Counter[str] = Counter()
    for e in entries:
        kind = "other"
        for k in ("blobs/uploads", "manifests", "blobs", "tags"):
            if f"/{k}/" in e.path:
                kind = "uploads" if k == "blobs/uploads" else k
                break
        out[f"{e.method} {kind}"] += 1
    return dict(sorted(out.items()))


def case1(b: Bench, reg: LocalRegistry, tags: list[str]) -> None:
    case = "1. 200 manifests"
    runs = b.args.runs
    addr = reg.address

    def ocinb_gather(wire: str = "default") -> Callable[[], float]:
        def run() -> float:
            async def go() -> float:
                start = time.perf_counter()
                async with client(addr, wire=wire) as c:
                    r = c.repo(MANY)
                    await asyncio.gather(*(r.manifests.get(t) for t in tags))
                return time.perf_counter() - start
            return asyncio.run(go())
        return run

    def ocinb_get_manifest() -> float:
        async def go() -> float:
            start = time.perf_counter()
            async with client(addr) as c:
                r = c.repo(MANY)
                await asyncio.gather(*(r.get_manifest(t) for t in tags))
            return time.perf_counter() - start
        return asyncio.run(go())

    def ocinb_serial() -> float:
        async def go() -> float:
            start = time.perf_counter()
            async with client(addr) as c:
                r = c.repo(MANY)
                for t in tags:
                    await r.manifests.get(t)
            return time.perf_counter() - start
        return asyncio.run(go())

    def oras_loop() -> float:
        import oras.provider

        start = time.perf_counter()
        o = oras.provider.Registry(hostname=addr, insecure=True)
        for t in tags:
            o.get_manifest(f"{addr}/{MANY}:{t}")
        return time.perf_counter() - start

    def dxf_loop() -> float:
        from dxf import DXF

        start = time.perf_counter()
        d = DXF(addr, MANY, insecure=True)
        for t in tags:
            d.get_manifest(t)
        return time.perf_counter() - start

    urls = [f"{reg.url}/v2/{MANY}/manifests/{t}" for t in tags]

    def curl_loop() -> float:
        start = time.perf_counter()
        subprocess.run(["curl", "-s", "-f", "-H", f"Accept: {ACCEPT}", *urls], stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start

    clients: list[tuple[str, Callable[[], float], bool]] = [
        ("curl (one process, keep-alive, serial)", curl_loop, True),
        ("ocinb gather(repo.manifests.get)", ocinb_gather(), False),
        *((f"ocinb gather(repo.manifests.get), {WIRE_LABELS[w]}", ocinb_gather(w), False)
          for w in wires() if w != "default"),
        ("ocinb gather(repo.get_manifest), cold cache", ocinb_get_manifest, False),
        ("ocinb serial loop (for scale)", ocinb_serial, False),
    ]
    if _has("oras"):
        clients.append(("oras-py loop", oras_loop, False))
    else:
        b.note(case, "oras-py not installed: skipped")
    if _has("dxf"):
        clients.append(("python-dxf loop", dxf_loop, False))
    else:
        b.note(case, "python-dxf not installed: skipped")
    _interleaved(b, case, clients, runs, warmup=1)
    _target(b, case, "ocinb gather(repo.manifests.get)", 0.8, "≤ 0.8× curl's serial keep-alive loop")


def _target(b: Bench, case: str, client: str, max_ratio: float, text: str, max_growth: float | None = None) -> None:
    """Note whether ``client`` meets its target in ``case`` (time ratio to the reference, RSS growth)."""
    rows = {r["client"]: r for r in b.rows if r["case"] == case}
    ref = next((r for r in rows.values() if r["reference"]), None)
    row = rows.get(client)
    if ref is None or row is None:
        return
    ratio = row["median_s"] / ref["median_s"]
    ok = ratio <= max_ratio
    msg = f"target for {client} ({text}): {ratio:.2f}× {ref['client']}"
    if max_growth is not None and "rss_growth_mib" in row:
        growth = max(row["rss_growth_mib"])
        ok = ok and growth <= max_growth
        msg += f", RSS growth {growth:.0f} MiB (limit {max_growth:.0f})"
    b.note(case, f"{msg}: {'MET' if ok else 'MISSED'}")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _interleaved(b: Bench, case: str, clients: list[tuple[str, Callable[[], float], bool]], runs: int,
                 warmup: int = 0, extra: dict[str, dict[str, Any]] | None = None) -> None:
    """Run the clients round-robin (so background load hits all alike) and record one row each."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in clients}
    for _name, fn, _ in clients:
        for _ in range(warmup):
            fn()
    for _ in range(runs):
        for name, fn, _ in clients:
            times[name].append(fn())
    for name, _, ref in clients:
        b.row(case, name, times[name], ref=ref, **(extra or {}).get(name, {}))


def case2(b: Bench, reg: LocalRegistry, tags: list[str]) -> None:
    case_p = "2a. platforms (3-platform)"
    case_s = "2b. sizes() over 100 tags"
    runs = b.args.runs
    addr = reg.address
    ref = f"{MULTI}:latest"
    sizes_tags = tags[:100]
    import ocinb.frames  # noqa: F401  (pandas loads once per session; keep that out of the timings)

    async def measure(fn: Callable[[ocinb.AsyncClient], Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with client(addr) as c:
            for phase in ("cold", "warm"):
                n0 = len(reg.access_log())
                s0 = c.stats.requests
                start = time.perf_counter()
                df = await fn(c)
                out[f"{phase}_s"] = time.perf_counter() - start
                entries = reg.access_log()[n0:]
                out[f"{phase}_requests"] = len(entries)
                out[f"{phase}_by_kind"] = log_breakdown(entries)
                out[f"{phase}_client_stats"] = c.stats.requests - s0
                out["rows"] = len(df)
        return out

    for case, fn in ((case_p, lambda c: c.platforms(ref)), (case_s, lambda c: c.sizes(MANY, sizes_tags))):
        results = [asyncio.run(measure(fn)) for _ in range(runs)]
        last = results[-1]
        stable = all(r["cold_by_kind"] == last["cold_by_kind"] and r["warm_by_kind"] == last["warm_by_kind"]
                     for r in results)
        b.row(case, "ocinb, fresh client + empty cache (cold)", [r["cold_s"] for r in results],
              requests=last["cold_requests"], by_kind=last["cold_by_kind"],
              client_stats=last["cold_client_stats"], rows=last["rows"], stable_counts=stable)
        b.row(case, "ocinb, same client again (warm)", [r["warm_s"] for r in results],
              requests=last["warm_requests"], by_kind=last["warm_by_kind"],
              client_stats=last["warm_client_stats"], rows=last["rows"], stable_counts=stable)
    cold = next(r for r in b.rows if r["case"] == case_p and "cold" in r["client"])
    warm = next(r for r in b.rows if r["case"] == case_p and "warm" in r["client"])
    want_cold = {"GET manifests": 4, "GET blobs": 3}
    b.note(case_p, f"target cold = 1 index + 3 manifests + 3 configs = {want_cold}: got {cold['by_kind']} "
                   f"({'MET' if cold['by_kind'] == want_cold else 'MISSED'}); target warm = 1 HEAD: got "
                   f"{warm['by_kind']} ({'MET' if warm['by_kind'] == {'HEAD manifests': 1} else 'MISSED'})")


def case7(b: Bench, reg: LocalRegistry, tags: list[str]) -> None:
    """A registry 25 ms away: ``sizes()`` over 100 tags and the platforms of a 3-platform image, cold."""
    case = "7. 25 ms away: sizes(100) + platforms"
    runs = b.args.runs7
    delay_ms = 25.0
    sizes_tags = tags[:100]
    import ocinb.frames  # noqa: F401  (pandas loads once per session; keep that out of the timings)

    proc = subprocess.Popen([PY, str(HERE / "_latency.py"), reg.address, str(delay_ms)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"latency proxy did not start: {line!r}")
        addr = line.split()[1]
        counts: dict[str, int] = {}

        def counted(name: str, fn: Callable[[], None]) -> Callable[[], float]:
            def run() -> float:
                n0 = len(reg.access_log())
                start = time.perf_counter()
                fn()
                seconds = time.perf_counter() - start
                counts[name] = len(reg.access_log()[n0:])
                return seconds
            return run

        def ocinb_work() -> None:
            async def go() -> None:
                async with client(addr) as c:
                    sizes, plats = await asyncio.gather(c.sizes(MANY, sizes_tags, progress=False),
                                                        c.platforms(f"{MULTI}:latest", progress=False))
                    if len(sizes) != 100 or len(plats) != 3:
                        raise RuntimeError(f"ocinb: {len(sizes)} sizes, {len(plats)} platforms")
            asyncio.run(go())

        def oras_work() -> None:
            import oras.provider

            o = oras.provider.Registry(hostname=addr, insecure=True)
            for t in sizes_tags:
                m = o.get_manifest(f"{addr}/{MANY}:{t}")
                o.get_blob(f"{addr}/{MANY}:{t}", m["config"]["digest"]).content  # noqa: B018
            index = o.get_manifest(f"{addr}/{MULTI}:latest", allowed_media_type=[
                "application/vnd.oci.image.index.v1+json"])
            for entry in index["manifests"]:
                m = o.get_manifest(f"{addr}/{MULTI}@{entry['digest']}")
                o.get_blob(f"{addr}/{MULTI}@{entry['digest']}", m["config"]["digest"]).content  # noqa: B018

        def dxf_work() -> None:
            from dxf import DXF

            d = DXF(addr, MANY, insecure=True)
            for t in sizes_tags:
                m = json.loads(d.get_manifest(t))
                b"".join(d.pull_blob(m["config"]["digest"]))
            dm = DXF(addr, MULTI, insecure=True)
            per_platform = dm.get_manifest("latest")  # an index: {platform: manifest} (index + manifests)
            assert isinstance(per_platform, dict) and len(per_platform) == 3
            for text in per_platform.values():
                b"".join(dm.pull_blob(json.loads(text)["config"]["digest"]))

        def skopeo_work() -> None:
            base = ["skopeo", "inspect", "--tls-verify=false"]
            for t in sizes_tags:  # inspect = manifest + config: what sizes() needs of each tag
                subprocess.run([*base, f"docker://{addr}/{MANY}:{t}"], stdout=subprocess.DEVNULL, check=True)
            raw = subprocess.run([*base, "--raw", f"docker://{addr}/{MULTI}:latest"], capture_output=True,
                                 check=True).stdout
            for entry in json.loads(raw)["manifests"]:
                p = entry["platform"]
                extra = ["--override-variant", p["variant"]] if p.get("variant") else []
                subprocess.run([*base, "--override-os", p["os"], "--override-arch", p["architecture"], *extra,
                                f"docker://{addr}/{MULTI}:latest"], stdout=subprocess.DEVNULL, check=True)

        work: list[tuple[str, Callable[[], None]]] = [("ocinb gather(sizes(100 tags), platforms), cold", ocinb_work)]
        if _has("oras"):
            work.append(("oras-py manifest + config loop", oras_work))
        if _has("dxf"):
            work.append(("python-dxf manifest + config loop", dxf_work))
        if shutil.which("skopeo"):
            work.append(("skopeo inspect per tag and per platform", skopeo_work))
        _interleaved(b, case, [(label, counted(label, fn), False) for label, fn in work], runs)
        rows = [r for r in b.rows if r["case"] == case]
        for r in rows:
            r["requests"] = counts[r["client"]]
        ours = next(r for r in rows if r["client"].startswith("ocinb"))
        peers = [r for r in rows if not r["client"].startswith("ocinb")]
        concurrency = 8
        rounds = max(-(-ours["requests"] // concurrency), 3)  # platforms: index → manifests → configs
        limit = rounds * delay_ms / 1000
        ours["limit_s"] = round(limit, 3)
        msg = (f"limit = ⌈{ours['requests']} requests ÷ {concurrency}⌉ × {delay_ms:.0f} ms = {limit * 1000:.0f} ms; "
               f"ocinb {ours['median_s'] * 1000:.0f} ms = {ours['median_s'] / limit:.2f}× the limit (goal ≤ 1.5×: "
               f"{'MET' if ours['median_s'] <= 1.5 * limit else 'MISSED'})")
        if peers:
            fastest = min(peers, key=lambda r: r["median_s"])
            speedup = fastest["median_s"] / ours["median_s"]
            msg += (f"; {speedup:.1f}× faster than the fastest peer ({fastest['client']}, "
                    f"{fastest['median_s']:.2f} s; goal ≥ 5×: {'MET' if speedup >= 5 else 'MISSED'})")
        b.note(case, msg)
        b.note(case, f"bench/_latency.py (its own process) holds each response's first byte until {delay_ms:.0f} ms "
                     "after its request; requests counted from the registry's access log.")
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def case3(b: Bench, reg: LocalRegistry, big: Path, digest: str) -> None:
    case = "3. pull 512 MiB blob"
    runs = b.args.big_runs
    addr = reg.address
    out_dir = b.tmp / "pull"
    out_dir.mkdir(exist_ok=True)
    extra: dict[str, dict[str, Any]] = {}

    def py_worker(name: str) -> Callable[[], float]:
        def fn() -> float:
            target = out_dir / f"{name}.blob"
            info = _worker(name, "pull", addr, BIG, digest, target)
            target.unlink(missing_ok=True)
            e = extra.setdefault(_label(name), {"rss_growth_mib": [], "rss_peak_mib": []})
            e["rss_growth_mib"].append(round((info["rss_peak"] - info["rss_base"]) / MIB, 1))
            e["rss_peak_mib"].append(round(info["rss_peak"] / MIB, 1))
            return float(info["seconds"])
        return fn

    def curl() -> float:
        target = out_dir / "curl.blob"
        cmd = f"curl -s -f {reg.url}/v2/{BIG}/blobs/{digest} | tee {target} | openssl dgst -sha256"
        seconds, rss, out = timed_subprocess(cmd, shell=True)
        if digest.split(":", 1)[1] not in out:
            raise RuntimeError(f"curl|openssl digest mismatch: {out}")
        target.unlink(missing_ok=True)
        e = extra.setdefault("curl | tee file | openssl dgst -sha256", {"rss_peak_mib": []})
        e["rss_peak_mib"].append(round(rss / MIB, 1))
        return seconds

    def skopeo() -> float:
        target = out_dir / "skopeo"
        cmd = ["skopeo", "copy", "--quiet", "--insecure-policy", "--src-tls-verify=false",
               f"docker://{addr}/{BIG}:latest", f"dir:{target}"]
        seconds, rss, _ = timed_subprocess(cmd)
        shutil.rmtree(target, ignore_errors=True)
        e = extra.setdefault("skopeo copy docker:// → dir: (whole image)", {"rss_peak_mib": []})
        e["rss_peak_mib"].append(round(rss / MIB, 1))
        return seconds

    clients: list[tuple[str, Callable[[], float], bool]] = [
        ("curl | tee file | openssl dgst -sha256", curl, True),
        (_label("ocinb"), py_worker("ocinb"), False),
        (_label("ocinb-httpx"), py_worker("ocinb-httpx"), False),
    ]
    if _has("dxf"):
        clients.append((_label("dxf"), py_worker("dxf"), False))
    if _has("oras"):
        clients.append((_label("oras"), py_worker("oras"), False))
    if shutil.which("skopeo"):
        clients.append(("skopeo copy docker:// → dir: (whole image)", skopeo, False))
    else:
        b.note(case, "skopeo not installed: skipped")
    _interleaved(b, case, clients, runs, extra=extra)
    _target(b, case, _label("ocinb"), 1.0, "≤ 1.0× curl | openssl", max_growth=64)
    b.note(case, "Python clients: time and RSS growth of the transfer alone, in a fresh process after imports; "
                 "curl and skopeo: whole process under GNU time (peak RSS is absolute).")


def _label(name: str, op: str = "pull", chunk: int | None = None) -> str:
    if op == "pull":
        return {"ocinb": "ocinb repo.blobs.download (verified)",
                "ocinb-httpx": "ocinb repo.blobs.download (verified), httpx's own transport",
                "dxf": "python-dxf pull_blob 1 MiB chunks (verified)",
                "oras": "oras-py download_blob + sha256 pass"}[name]
    how = f"chunked {chunk // MIB} MiB" if chunk else "monolithic"
    return {"ocinb": f"ocinb repo.blobs.upload, {how}",
            "ocinb-httpx": f"ocinb repo.blobs.upload, {how}, httpx's own transport",
            "dxf": "python-dxf push_blob (streamed PUT)",
            "oras": f"oras-py {'chunked_upload' if chunk else 'put_upload'}, {how}"}[name]


def _worker(name: str, op: str, addr: str, repo: str, digest: str, path: Path, chunk: int | None = None
            ) -> dict[str, Any]:
    cmd = [PY, str(HERE / "_worker.py"), name, op, addr, repo, digest, str(path), str(chunk or 0)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {op} failed: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def case4(b: Bench, reg: LocalRegistry, big: Path, digest: str) -> None:
    case = "4. push 512 MiB blob"
    runs = b.args.big_runs
    addr = reg.address
    extra: dict[str, dict[str, Any]] = {}
    counter = iter(range(10**6))
    chunk = 16 * MIB

    def py_worker(name: str, chunk_size: int | None) -> Callable[[], float]:
        label = _label(name, "push", chunk_size)

        def fn() -> float:
            repo = f"bench/push-{name}-{next(counter)}"
            info = _worker(name, "push", addr, repo, digest, big, chunk_size)
            e = extra.setdefault(label, {"rss_growth_mib": [], "rss_peak_mib": []})
            e["rss_growth_mib"].append(round((info["rss_peak"] - info["rss_base"]) / MIB, 1))
            e["rss_peak_mib"].append(round(info["rss_peak"] / MIB, 1))
            return float(info["seconds"])
        return fn

    def curl() -> float:
        repo = f"bench/push-curl-{next(counter)}"
        start = time.perf_counter()
        post = subprocess.run(["curl", "-s", "-f", "-i", "-X", "POST", "-H", "Content-Length: 0",
                               f"{reg.url}/v2/{repo}/blobs/uploads/"], capture_output=True, text=True, check=True)
        m = re.search(r"^location:\s*(\S+)", post.stdout, re.I | re.M)
        if m is None:
            raise RuntimeError(f"no Location in {post.stdout[:500]}")
        loc = m.group(1)
        loc = loc if loc.startswith("http") else reg.url + loc
        sep = "&" if "?" in loc else "?"
        _, rss, out = timed_subprocess(
            ["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(big), "-H", "Expect:",
             "-H", "Content-Type: application/octet-stream", f"{loc}{sep}digest={digest}"])
        total = time.perf_counter() - start
        if out.strip() != "201":
            raise RuntimeError(f"curl PUT answered {out}")
        e = extra.setdefault("curl POST + PUT -T file", {"rss_peak_mib": []})
        e["rss_peak_mib"].append(round(rss / MIB, 1))
        return total

    clients: list[tuple[str, Callable[[], float], bool]] = [
        ("curl POST + PUT -T file", curl, True),
        (_label("ocinb", "push", None), py_worker("ocinb", None), False),
        (_label("ocinb", "push", chunk), py_worker("ocinb", chunk), False),
        (_label("ocinb-httpx", "push", None), py_worker("ocinb-httpx", None), False),
    ]
    if _has("oras"):
        clients += [(_label("oras", "push", None), py_worker("oras", None), False),
                    (_label("oras", "push", chunk), py_worker("oras", chunk), False)]
    if _has("dxf"):
        clients.append((_label("dxf", "push", None), py_worker("dxf", None), False))
    _interleaved(b, case, clients, runs, extra=extra)
    _target(b, case, _label("ocinb", "push", None), 1.0, "≤ 1.0× curl, memory flat", max_growth=64)
    _target(b, case, _label("ocinb", "push", chunk), 1.0, "≤ 1.0× curl, memory flat", max_growth=64)
    b.note(case, "every client gets the digest in advance (no hashing pass before the upload); each run pushes "
                 "into a new repository so the blob is really sent.")


def case5(b: Bench) -> None:
    case = "5. tags of 1,500 (paginated)"
    runs = b.args.runs
    page = 100
    ntags = 1500
    repo = "bench/tags"
    proc = subprocess.Popen([PY, str(HERE / "_fakeserver.py"), repo, str(ntags), str(page)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"fake registry did not start: {line!r}")
        addr = line.split()[1]

        def command(cmd: str) -> str:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(cmd + "\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()

        counts: dict[str, tuple[int, int, int]] = {}

        def counted(name: str, fn: Callable[[], int]) -> Callable[[], float]:
            def run() -> float:
                command("reset")
                start = time.perf_counter()
                got = fn()
                seconds = time.perf_counter() - start
                _, tag_gets, total = command("count").split()
                if got != ntags:
                    raise RuntimeError(f"{name} listed {got} tags, not {ntags}")
                counts[name] = (int(tag_gets), int(total), got)
                return seconds
            return run

        def ocinb_list() -> int:
            async def go() -> int:
                async with client(addr) as c:
                    return len(await c.repo(repo).tags.list())
            return asyncio.run(go())

        def oras_list() -> int:
            import oras.provider

            return len(oras.provider.Registry(hostname=addr, insecure=True).get_tags(f"{addr}/{repo}"))

        def dxf_list() -> int:
            from dxf import DXF

            return len(DXF(addr, repo, insecure=True).list_aliases())

        def curl_list() -> int:
            url: str | None = f"http://{addr}/v2/{repo}/tags/list"
            n = 0
            while url:
                raw = subprocess.run(["curl", "-s", "-f", "-i", url], capture_output=True, check=True).stdout
                head_b, _, body = raw.partition(b"\r\n\r\n")
                head = head_b.decode("latin-1")
                n += len(json.loads(body)["tags"])
                m = re.search(r"^link:\s*<([^>]+)>", head, re.I | re.M)
                url = f"http://{addr}{m.group(1)}" if m and m.group(1).startswith("/") else (m.group(1) if m else None)
            return n

        clients: list[tuple[str, Callable[[], float], bool]] = [
            ("ocinb repo.tags.list()", counted("ocinb", ocinb_list), False)]
        if _has("oras"):
            clients.append(("oras-py get_tags", counted("oras", oras_list), False))
        if _has("dxf"):
            clients.append(("python-dxf list_aliases", counted("dxf", dxf_list), False))
        clients.append(("curl, one process per page (shell-style loop)", counted("curl", curl_list), True))
        _interleaved(b, case, clients, runs)
        names = {"ocinb repo.tags.list()": "ocinb", "oras-py get_tags": "oras", "python-dxf list_aliases": "dxf",
                 "curl, one process per page (shell-style loop)": "curl"}
        for r in b.rows:
            if r["case"] == case:
                tag_gets, total, _ = counts[names[r["client"]]]
                r.update(requests=total, tag_list_gets=tag_gets)
        want = -(-ntags // page)
        got = counts["ocinb"][1]
        b.note(case, f"page size {page}: target {want} GETs and nothing else; ocinb sent {got} "
                     f"({'MET' if got == want and counts['ocinb'][0] == want else 'MISSED'}). "
                     "Server: tests/_fakeregistry.py FakeRegistry in its own process.")
        command("quit")
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def case6(b: Bench) -> None:
    case = "6. import time"
    runs = max(b.args.runs, 7)
    stmts = {"python -c pass (interpreter start)": "pass", "import pandas": "import pandas",
             "import ocinb": "import ocinb", "import ocinb; ocinb.Client (first use)": "import ocinb; ocinb.Client"}
    times: dict[str, list[float]] = {k: [] for k in stmts}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for s in stmts.values():
        subprocess.run([PY, "-c", s], check=True, env=env)
    for _ in range(runs):
        for k, s in stmts.items():
            start = time.perf_counter()
            subprocess.run([PY, "-c", s], check=True, env=env)
            times[k].append(time.perf_counter() - start)
    for k in stmts:
        b.row(case, k, times[k], ref=k == "import pandas")
    probe = ("import sys, ocinb; heavy = ('pandas', 'numpy', 'ipywidgets', 'tqdm', 'matplotlib', 'IPython'); "
             "print(','.join(m for m in heavy if m in sys.modules))")
    eager = subprocess.run([PY, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout.strip()
    imp = subprocess.run([PY, "-X", "importtime", "-c", "import ocinb"], capture_output=True, text=True,
                         check=True, env=env).stderr
    entries = []
    for line in imp.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            entries.append((int(m.group(2)), int(m.group(1)), len(m.group(3)) - 1, m.group(4)))
    top = sorted((e for e in entries if "." not in e[3] and e[3] != "ocinb"), reverse=True)[:10]
    offenders = [f"{name} {cum / 1000:.1f} ms" for cum, _, _, name in top]
    pandas_ms = median(times["import pandas"]) * 1000
    ocinb_ms = median(times["import ocinb"]) * 1000
    b.note(case, f"`import ocinb` loads eagerly: {eager or 'none of pandas/numpy/ipywidgets/tqdm/matplotlib/IPython'}")
    b.note(case, f"-X importtime, biggest packages under `import ocinb` (cumulative): {'; '.join(offenders)}")
    b.note(case, f"target ocinb ≤ pandas + 150 ms: {ocinb_ms:.0f} ms vs {pandas_ms:.0f} + 150 ms "
                 f"({'MET' if ocinb_ms <= pandas_ms + 150 else 'MISSED'})")
    for r in b.rows:
        if r["case"] == case and r["client"] == "import ocinb":
            r["eager_heavy_modules"] = eager.split(",") if eager else []
            r["importtime_top"] = offenders


def markdown(b: Bench, meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [
        f"Run {meta['date']} on {m['nproc']} × {m['cpu']}, {m['ram_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}; load average at start {_load(meta['load_start'])}, at end {_load(meta['load_end'])}.",
        f"Peers: {', '.join(f'{k} {v}' for k, v in meta['tools'].items() if v)}.",
        "",
        "| case | client | median | runs | × ref | requests / memory |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in b.rows:
        ratio = "ref" if r["reference"] else (f"{r['ratio']:.2f}" if r.get("ratio") else "")
        client = r["client"].replace("|", "\\|")  # a shell pipeline in a Markdown cell
        lines.append(f"| {r['case']} | {client} | {_fmt_s(r['median_s'])} | {r['runs']} | {ratio} | "
                     f"{_detail(r)} |")
    lines.append("")
    for case, notes in b.notes.items():
        for n in notes:
            lines.append(f"- {case}: {n}")
    return "\n".join(lines)


def _load(la: Any) -> str:
    return "/".join(f"{x:.2f}" for x in la)


def _fmt_s(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _detail(r: dict[str, Any]) -> str:
    parts = []
    if "requests" in r:
        parts.append(f"{r['requests']} requests")
    if r.get("by_kind"):
        parts.append(", ".join(f"{v} {k}" for k, v in r["by_kind"].items()))
    if "rss_growth_mib" in r:
        parts.append(f"RSS +{max(r['rss_growth_mib']):.0f} MiB (peak {max(r['rss_peak_mib']):.0f} MiB)")
    elif "rss_peak_mib" in r:
        parts.append(f"peak RSS {max(r['rss_peak_mib']):.0f} MiB")
    if "cached_s" in r:
        parts.append(f"cached second call {max(r['cached_s']) * 1000:.0f} ms")
    if "eager_heavy_modules" in r:
        parts.append("eager heavy modules: " + (", ".join(r["eager_heavy_modules"]) or "none"))
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per client for the small cases")
    parser.add_argument("--big-runs", type=int, default=3, help="runs per client for the 512 MiB cases")
    parser.add_argument("--size-mib", type=int, default=512, help="size of the big blob")
    parser.add_argument("--tags", type=int, default=200, help="tags for case 1")
    parser.add_argument("--runs7", type=int, default=3, help="runs per client for case 7 (the peers are slow)")
    parser.add_argument("--cases", default="1,2,3,4,5,6,7,8,9")
    parser.add_argument("--inside-mib", type=int, default=1300,
                        help="tar size of case 9's layer (about 500 MiB gzip from /usr)")
    parser.add_argument("--toc-mib", type=int, default=256, help="tar size of case 8's eStargz / zstd:chunked layer")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    args = parser.parse_args()
    cases = {c.strip() for c in args.cases.split(",")}
    os.environ.setdefault("OCINB_CACHE_DIR", tempfile.mkdtemp(prefix="ocinb-bench-cache-"))
    tmp = Path(tempfile.mkdtemp(prefix="ocinb-bench-"))
    b = Bench(args, tmp)
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_start": os.getloadavg(),
        "tools": {
            "ocinb": getattr(ocinb, "__version__", "dev"),
            "oras-py": _pkg_version("oras"), "python-dxf": _pkg_version("python-dxf"),
            "skopeo": tool_version(["skopeo", "--version"]),
            "curl": (tool_version(["curl", "--version"]) or "").split(" (")[0] or None,
            "openssl": tool_version(["openssl", "version"]),
            "registry": tool_version(["docker-registry", "--version"]),
        },
        "args": vars(args),
    }
    started = time.perf_counter()
    try:
        if cases & {"1", "2", "3", "4", "7"}:
            with LocalRegistry(storage_dir=tmp / "registry") as reg:
                print(f"registry {reg.url}; seeding", flush=True)
                tags = asyncio.run(seed(reg.address, args.tags))
                if "1" in cases:
                    b.loads["1"] = os.getloadavg()
                    case1(b, reg, tags)
                if "2" in cases:
                    b.loads["2"] = os.getloadavg()
                    case2(b, reg, tags)
                if "7" in cases:
                    b.loads["7"] = os.getloadavg()
                    case7(b, reg, tags)
                if cases & {"3", "4"}:
                    big = tmp / "big.blob"
                    print(f"writing {args.size_mib} MiB of random bytes", flush=True)
                    digest = make_file(big, args.size_mib * MIB)
                    asyncio.run(_push_big(reg.address, big, digest))
                    try:
                        if "3" in cases:
                            b.loads["3"] = os.getloadavg()
                            case3(b, reg, big, digest)
                        if "4" in cases:
                            b.loads["4"] = os.getloadavg()
                            case4(b, reg, big, digest)
                    finally:
                        big.unlink(missing_ok=True)
        if "9" in cases:
            from inside_layers import case9

            with LocalRegistry(storage_dir=tmp / "registry9") as reg:
                b.loads["9"] = os.getloadavg()
                case9(b, reg)
        if "8" in cases:
            from toc_layers import case8

            with LocalRegistry(storage_dir=tmp / "registry8") as reg:
                b.loads["8"] = os.getloadavg()
                case8(b, reg)
        if "5" in cases:
            b.loads["5"] = os.getloadavg()
            case5(b)
        if "6" in cases:
            b.loads["6"] = os.getloadavg()
            case6(b)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta["load_end"] = os.getloadavg()
    meta["load_per_case"] = b.loads
    meta["total_s"] = round(time.perf_counter() - started, 1)
    b.ratios()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**meta, "rows": b.rows, "notes": b.notes}, indent=2, default=str))
    print()
    print(markdown(b, meta))
    print(f"\n(results in {out}; {meta['total_s']} s)")


async def _push_big(address: str, big: Path, digest: str) -> None:
    """The big blob as the only layer of ``bench/big:latest`` (skopeo copies images, not blobs)."""
    async with client(address) as c:
        r = c.repo(BIG)
        desc = await r.blobs.upload(big, digest)
        layer = Descriptor(media_type="application/vnd.oci.image.layer.v1.tar", digest=desc.digest, size=desc.size)
        await r.push_image("latest", {"architecture": "amd64", "os": "linux",
                                      "rootfs": {"type": "layers", "diff_ids": [desc.digest]}}, [layer])


def _pkg_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
