"""Dropped connections, rate limits, server errors and corrupted bytes: nothing is lost, nothing bad is written.

Transport faults come from tests/_faultproxy.FaultProxy in front of the REAL registry (a real registry
cannot drop a connection mid-body or flip a byte on demand). Status faults (429/503 with
``Retry-After``, bare 500/502, rate-limit headers) come from tests/_fakeregistry.FakeRegistry, because
the CNCF registry never answers them.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _fakeregistry import OCI_MANIFEST, BlobMirror, FakeRegistry
from _faultproxy import FaultProxy
from _grep_secrets import FAST_RETRY

import ocinb
from ocinb import RetryPolicy
from ocinb.cache import ContentCache
from ocinb.errors import (
    DigestMismatchError,
    OcinbError,
    RegistryError,
    ServerError,
    TooManyRequestsError,
)
from ocinb.testing import LocalRegistry

SEED = 20240607
KIB = 1024


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _client(address: str, tmp_path: Path, **kwargs: object) -> ocinb.AsyncClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return ocinb.AsyncClient(
        address, docker_config=False, environment=False, cache=ContentCache(tmp_path / "cache"), **kwargs
    )


class _Proxy(FaultProxy):
    """FaultProxy that closes each relayed upstream response (works around a 502 after an empty 202 body)."""

    def _relay(self, handler, rec, resp, fault):  # type: ignore[no-untyped-def]
        try:
            super()._relay(handler, rec, resp, fault)
        finally:
            resp.close()


def _is_blob(digest: str):
    return lambda method, path: method == "GET" and path.endswith(f"/blobs/{digest}")


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultProxy]:
    """A FaultProxy in front of the real registry."""
    p = _Proxy(registry.url, seed=SEED)
    yield p
    p.stop()


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    """An in-memory registry (status faults and rate-limit headers the real one cannot send)."""
    reg = FakeRegistry()
    yield reg
    reg.stop()


async def _seed_blobs(registry: LocalRegistry, repo: str, tmp_path: Path, blobs: list[bytes]) -> list[str]:
    async with _client(registry.address, tmp_path) as client:
        r = client.repo(repo)
        return [(await r.blobs.upload(b)).digest for b in blobs]


def test_50_of_50_cut_downloads_resume_with_range(
    registry: LocalRegistry, proxy: FaultProxy, repo_name: str, tmp_path: Path
) -> None:
    """50 blob downloads each cut once at a random offset complete, verified, through ``Range`` resume.

    Half stream with ``blobs.open`` into memory, half into a file; both read 4 KiB chunks so the bytes
    received before the cut count (``Range: bytes=N-`` with N within 4 KiB of the cut).
    """
    rng = random.Random(SEED)
    blobs = [rng.randbytes(rng.randrange(20 * KIB, 60 * KIB)) for _ in range(50)]
    digests = asyncio.run(_seed_blobs(registry, repo_name, tmp_path, blobs))
    cut_at = {}
    for data, digest in zip(blobs, digests, strict=True):
        cut_at[digest] = rng.randrange(5 * KIB, len(data) - 1)
        proxy.cut_response_after(cut_at[digest], match=_is_blob(digest))

    async def run() -> tuple[int, int]:
        completed = resumed = 0
        out = tmp_path / "out"
        out.mkdir()
        async with _client(proxy.address, tmp_path) as client:
            repo = client.repo(repo_name)
            for i, (data, digest) in enumerate(zip(blobs, digests, strict=True)):
                stream = repo.blobs.open(digest, size=len(data), chunk_size=4 * KIB)
                if i % 2:
                    with open(out / f"b{i}", "wb") as fh:
                        async for chunk in stream:
                            fh.write(chunk)
                    got = (out / f"b{i}").read_bytes()
                else:
                    got = b"".join([chunk async for chunk in stream])
                resumed += stream.resumed == 1
                assert got == data and _digest(got) == digest
                completed += 1
        return completed, resumed

    completed, resumed = asyncio.run(run())
    starts = {
        r.path.rsplit("/", 1)[-1]: int(r.headers["range"].split("=")[1].rstrip("-"))
        for r in proxy.requests
        if r.method == "GET" and "range" in r.headers
    }
    cuts = sum(1 for _, f in proxy.fired if f.kind == "cut_response")
    print(f"{completed}/50 downloads completed, {len(starts)}/50 resumed with Range ({cuts} cuts)")
    assert cuts == 50 and proxy.pending_faults() == 0
    assert completed == 50 and resumed == 50
    assert len(starts) == 50
    assert all(cut_at[d] - 4 * KIB < start <= cut_at[d] for d, start in starts.items())


def test_download_resumes_from_the_cut_not_from_zero(
    registry: LocalRegistry, proxy: FaultProxy, repo_name: str, tmp_path: Path
) -> None:
    """``blobs.download`` cut at 40 KiB of 60 KiB asks for ``Range: bytes=N-`` with N > 0."""
    data = random.Random(SEED + 5).randbytes(60 * KIB)
    (digest,) = asyncio.run(_seed_blobs(registry, repo_name, tmp_path, [data]))
    proxy.cut_response_after(40 * KIB, match=_is_blob(digest))

    async def run() -> bytes:
        async with _client(proxy.address, tmp_path) as client:
            return (await client.repo(repo_name).blobs.download(digest, tmp_path / "blob")).read_bytes()

    assert asyncio.run(run()) == data
    ranges = [r.headers["range"] for r in proxy.requests if r.method == "GET" and "range" in r.headers]
    print(f"download resumed with {ranges}")
    assert ranges and ranges[0] != "bytes=0-" and int(ranges[0].split("=")[1].rstrip("-")) > 0


@pytest.mark.parametrize("how", ["download", "open"])
def test_download_cut_at_blob_storage_resumes_with_range(tmp_path: Path, how: str) -> None:
    """FakeRegistry and BlobMirror: distribution's filesystem driver never redirects. The registry (Basic
    auth) redirects the blob GET to storage, whose answer is cut at 40 KiB of 60 KiB: the download goes on
    with ``Range: bytes=N-`` (N > 0) through the redirect again, never sending Authorization to storage."""
    data = random.Random(SEED + 9).randbytes(60 * KIB)
    with FakeRegistry(basic_auth=("u", "p-Secret-7")) as fake, BlobMirror(fake) as mirror:
        storage = _Proxy(mirror.url, seed=SEED)
        try:
            fake.redirect_blobs_to = storage.url
            digest = fake.put_blob("r/a", data)
            storage.cut_response_after(40 * KIB, match=lambda method, path: method == "GET")

            async def run() -> bytes:
                async with _client(fake.address, tmp_path, username="u", password="p-Secret-7") as client:
                    blobs = client.repo("r/a").blobs
                    if how == "download":
                        return (await blobs.download(digest, tmp_path / "blob")).read_bytes()
                    return b"".join([chunk async for chunk in blobs.open(digest, size=len(data),
                                                                         chunk_size=4 * KIB)])

            assert asyncio.run(run()) == data
            gets = [r for r in storage.requests if r.method == "GET"]
            assert len(gets) == 2 and "range" not in gets[0].headers
            start = int(gets[1].headers["range"].removeprefix("bytes=").rstrip("-"))
            assert 0 < start <= 40 * KIB
            assert all("authorization" not in r.headers for r in gets)
            assert [r.path for r in mirror.requests] == [f"/blobs/{digest}"] * 2
            registry_gets = [r for r in fake.requests if r.method == "GET" and "/blobs/" in r.path]
            # The resume asks the registry again (a signed storage URL may have expired), with the Range.
            assert registry_gets[-1].headers.get("Range") == gets[1].headers["range"]
            assert all(r.headers.get("Authorization") for r in registry_gets[-2:])
        finally:
            storage.stop()


def test_20_of_20_cut_uploads_resume_from_upload_status(
    registry: LocalRegistry, proxy: FaultProxy, repo_name: str, tmp_path: Path
) -> None:
    """20 uploads, each with its body cut at a random offset, complete through the end-13 status resume.

    Ten are chunked (a PATCH is cut), ten monolithic from a file (the final PUT is cut).
    """
    rng = random.Random(SEED + 1)
    blobs = [rng.randbytes(rng.randrange(20 * KIB, 60 * KIB)) for _ in range(20)]
    chunk = 8 * KIB

    async def run() -> int:
        done = 0
        async with _client(proxy.address, tmp_path) as client:
            repo = client.repo(repo_name)
            for i, data in enumerate(blobs):
                digest = _digest(data)
                if i < 10:
                    nth_patch = rng.randrange(len(data) // chunk)
                    seen = [0]

                    def match(method: str, path: str, nth: int = nth_patch, seen: list[int] = seen) -> bool:
                        if method != "PATCH" or "/blobs/uploads/" not in path:
                            return False
                        seen[0] += 1
                        return seen[0] == nth + 1

                    proxy.cut_request_after(rng.randrange(1, chunk - 1), match=match)
                    desc = await repo.blobs.upload(data, chunk_size=chunk)
                else:
                    src = tmp_path / f"src{i}"
                    src.write_bytes(data)
                    proxy.cut_request_after(
                        rng.randrange(1, len(data) - 1),
                        match=lambda m, p: m == "PUT" and "/blobs/uploads/" in p,
                    )
                    desc = await repo.blobs.upload(src)
                assert desc.digest == digest and desc.size == len(data)
                assert proxy.pending_faults() == 0, f"upload {i}: the cut never fired"
                assert await repo.blobs.get(digest) == data
                done += 1
        return done

    done = asyncio.run(run())
    cuts = sum(1 for _, f in proxy.fired if f.kind == "cut_request")
    status_checks = sum(
        1 for r in proxy.requests if r.method == "GET" and "/blobs/uploads/" in r.path
    )
    print(f"{done}/20 uploads completed after {cuts} cut requests, {status_checks} upload-status resumes")
    assert cuts == 20
    assert done == 20
    assert status_checks >= 20


async def _impossible(proxy: FaultProxy, repo: str, digest: str, out: Path, tmp_path: Path, via: str) -> OcinbError:
    async with _client(proxy.address, tmp_path) as client:
        blobs = client.repo(repo).blobs
        with pytest.raises(OcinbError) as info:
            if via == "download":
                await blobs.download(digest, out / "blob")
            else:
                with open(out / "blob.part", "wb") as fh:
                    async for chunk in blobs.open(digest, chunk_size=4 * KIB):
                        fh.write(chunk)
        return info.value


def _check_impossible(
    registry: LocalRegistry, repo_name: str, tmp_path: Path, mode: str, via: str
) -> tuple[OcinbError, list[str]]:
    data = random.Random(SEED + 2).randbytes(40 * KIB)
    (digest,) = asyncio.run(_seed_blobs(registry, repo_name, tmp_path, [data]))
    proxy = _Proxy(registry.url, seed=SEED, range_mode=mode)  # type: ignore[arg-type]
    out = tmp_path / "out"
    out.mkdir()
    try:
        proxy.cut_response_after(10 * KIB, match=_is_blob(digest))
        err = asyncio.run(_impossible(proxy, repo_name, digest, out, tmp_path, via))
    finally:
        proxy.stop()
    print(f"range_mode={mode} via {via}: {type(err).__name__}: {err}")
    assert isinstance(err, RegistryError)
    assert "416" in str(err) if mode == "refuse" else "RANGE_INVALID" in str(err) and "206" in str(err)
    return err, sorted(p.name for p in out.iterdir() if via == "download" or p.name != "blob.part")


@pytest.mark.parametrize("mode", ["refuse", "ignore"])
def test_resume_impossible_stream_is_a_clear_error(
    registry: LocalRegistry, repo_name: str, tmp_path: Path, mode: str
) -> None:
    """When the server cannot serve a ``Range`` (416, or 200 for the whole blob) ``open`` says so, by status."""
    _check_impossible(registry, repo_name, tmp_path, mode, "open")


@pytest.mark.parametrize("mode", ["refuse", "ignore"])
def test_resume_impossible_download_is_clear_and_leaves_no_file(
    registry: LocalRegistry, repo_name: str, tmp_path: Path, mode: str
) -> None:
    """``download`` whose resume is refused raises the clear error and leaves no file, partial or final."""
    _, left = _check_impossible(registry, repo_name, tmp_path, mode, "download")
    assert left == []


def test_429_and_503_honour_retry_after_then_succeed(fake: FakeRegistry, tmp_path: Path) -> None:
    """Two 429s and one 503 with ``Retry-After: 1`` cost ≥ 3 s and end in success (the real registry never
    answers 429/503, hence the fake)."""
    data = b'{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"x/y","digest":"%s","size":2},"layers":[]}'
    raw = data % (OCI_MANIFEST.encode(), _digest(b"{}").encode())
    fake.put_blob("app", b"{}")
    fake.put_manifest("app", "v1", raw, OCI_MANIFEST)
    fake.fail_next(2, 429, retry_after=1, match=lambda m, p: "/manifests/" in p)
    fake.fail_next(1, 503, retry_after="1", match=lambda m, p: "/manifests/" in p)

    async def run() -> tuple[float, bytes, int]:
        async with _client(fake.address, tmp_path, retry=RetryPolicy(retries=3, backoff=0.01)) as client:
            t0 = time.monotonic()
            m = await client.repo("app").manifests.get("v1")
            return time.monotonic() - t0, m.data, client.stats.retries

    elapsed, got, retries = asyncio.run(run())
    print(f"3 retries honoured Retry-After: {elapsed:.2f}s elapsed (>= 3.0), {retries} retries")
    assert got == raw
    assert retries == 3
    assert elapsed >= 3.0
    assert fake.count("GET", "/v2/app/manifests/") == 4


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_retry_budget_spent_then_error_names_status(fake: FakeRegistry, tmp_path: Path, status: int) -> None:
    """A status that never clears is tried 1 + ``retries`` times with growing backoff, then raised by name."""
    fake.put_blob("app", b"{}")
    fake.fail_next(100, status, match=lambda m, p: "/manifests/" in p)
    policy = RetryPolicy(retries=3, backoff=0.1, backoff_max=1.0)

    async def run() -> tuple[float, RegistryError]:
        async with _client(fake.address, tmp_path, retry=policy) as client:
            t0 = time.monotonic()
            with pytest.raises(RegistryError) as info:
                await client.repo("app").manifests.get("v1")
            return time.monotonic() - t0, info.value

    elapsed, err = asyncio.run(run())
    attempts = fake.count("GET", "/v2/app/manifests/")
    print(f"HTTP {status}: {attempts}/4 attempts in {elapsed:.2f}s, then {type(err).__name__}: {err}")
    assert attempts == 4
    # Backoff 0.1, 0.2, 0.4 each jittered to at least half: >= 0.35 s in all.
    assert elapsed >= 0.35
    assert err.status == status
    assert f"HTTP {status}" in str(err)
    assert isinstance(err, TooManyRequestsError if status == 429 else ServerError)


def test_retry_after_beyond_the_cap_fails_fast(fake: FakeRegistry, tmp_path: Path) -> None:
    """A ``Retry-After`` longer than ``max_retry_after`` is not slept through: the 429 is raised at once."""
    fake.fail_next(5, 429, retry_after=3600, match=lambda m, p: "/manifests/" in p)
    policy = RetryPolicy(retries=3, backoff=0.01, max_retry_after=5)

    async def run() -> tuple[float, RegistryError]:
        async with _client(fake.address, tmp_path, retry=policy) as client:
            t0 = time.monotonic()
            with pytest.raises(TooManyRequestsError) as info:
                await client.repo("app").manifests.get("v1")
            return time.monotonic() - t0, info.value

    elapsed, err = asyncio.run(run())
    print(f"Retry-After 3600 > cap 5: raised after {elapsed:.2f}s with 1 attempt")
    assert elapsed < 2.0
    assert fake.count("GET", "/v2/app/manifests/") == 1
    assert "429" in str(err)


def test_ratelimit_headers_parsed_and_exposed(fake: FakeRegistry, tmp_path: Path) -> None:
    """Docker Hub's ``ratelimit-limit``/``ratelimit-remaining`` (``100;w=21600``) land on ``client.rate_limit``."""
    raw = b'{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"x/y","digest":"%s","size":2},"layers":[]}' % (
        OCI_MANIFEST.encode(),
        _digest(b"{}").encode(),
    )
    fake.put_blob("app", b"{}")
    fake.put_manifest("app", "v1", raw, OCI_MANIFEST)
    fake.ratelimit = (100, 100)

    async def run() -> tuple[list[tuple[int | None, int | None, int | None]], dict]:
        seen = []
        async with _client(fake.address, tmp_path) as client:
            for _ in range(3):
                await client.repo("app").manifests.get("v1")
                rl = client.rate_limit
                seen.append((rl.limit, rl.remaining, rl.window_seconds))
            df = await client.layers("app:v1")
        return seen, df.attrs

    seen, attrs = asyncio.run(run())
    print(f"rate limit seen: {seen}; df.attrs['rate_limit'] = {attrs.get('rate_limit')}")
    assert seen == [(100, 99, 21600), (100, 98, 21600), (100, 97, 21600)]
    assert attrs["rate_limit"]["limit"] == 100
    assert attrs["rate_limit"]["remaining"] < 97


def _corrupt_setup(registry: LocalRegistry, repo: str, tmp_path: Path) -> tuple[str, str, list[str], bytes]:
    """Push one image (config + 2 layers); return (manifest digest, config digest, layer digests, manifest bytes)."""
    rng = random.Random(SEED + 3)
    layers = [rng.randbytes(30 * KIB), rng.randbytes(25 * KIB)]

    async def run() -> tuple[str, str, list[str], bytes]:
        async with _client(registry.address, tmp_path) as client:
            r = client.repo(repo)
            config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
            res = await r.push_image("v1", config, layers)
            m = await r.manifests.get(res.digest)
            image = m.as_manifest()
            return res.digest, image.config.digest, [d.digest for d in image.layers], m.data

    return asyncio.run(run())


def test_flipped_bytes_detected_every_time_nothing_written(
    registry: LocalRegistry, proxy: FaultProxy, repo_name: str, tmp_path: Path
) -> None:
    """One flipped byte in a blob, a manifest (by digest and by tag) or a config: 40/40 detected, nothing kept."""
    mdigest, cdigest, ldigests, mbytes = _corrupt_setup(registry, repo_name, tmp_path)
    rng = random.Random(SEED + 4)
    out = tmp_path / "out"
    out.mkdir()
    results: dict[str, int] = {"blob": 0, "manifest-digest": 0, "manifest-tag": 0, "config": 0}

    async def run() -> None:
        for round_ in range(10):
            cache = ContentCache(tmp_path / f"cache{round_}")
            async with ocinb.AsyncClient(
                proxy.address, docker_config=False, environment=False, cache=cache, retry=FAST_RETRY
            ) as client:
                repo = client.repo(repo_name)
                mask = rng.randrange(1, 256)
                layer = ldigests[round_ % 2]

                proxy.flip_byte(rng.randrange(0, 25 * KIB), match=_is_blob(layer), mask=mask)
                with pytest.raises(DigestMismatchError) as info:
                    await repo.blobs.download(layer, out / "layer")
                assert info.value.expected == layer and info.value.actual != layer
                assert layer in str(info.value) and info.value.actual in str(info.value)
                results["blob"] += 1

                proxy.flip_byte(
                    rng.randrange(0, len(mbytes)), mask=mask,
                    match=lambda m, p: m == "GET" and p.endswith(f"/manifests/{mdigest}"),
                )
                with pytest.raises(DigestMismatchError) as info:
                    await repo.manifests.get(mdigest)
                assert info.value.expected == mdigest and info.value.actual in str(info.value)
                results["manifest-digest"] += 1

                proxy.flip_byte(
                    rng.randrange(0, len(mbytes)), mask=mask,
                    match=lambda m, p: m == "GET" and p.endswith("/manifests/v1"),
                )
                with pytest.raises(DigestMismatchError) as info:
                    await repo.get_manifest("v1")
                assert info.value.expected == mdigest and mdigest in str(info.value)
                results["manifest-tag"] += 1

                proxy.flip_byte(rng.randrange(0, 60), match=_is_blob(cdigest), mask=mask)
                with pytest.raises(DigestMismatchError) as info:
                    await repo.config("v1")
                assert info.value.expected == cdigest and info.value.actual in str(info.value)
                results["config"] += 1
                assert cache.get(cdigest) is None
                assert proxy.pending_faults() == 0
            assert not (tmp_path / f"cache{round_}" / "blobs" / "sha256" / cdigest[7:9] / cdigest[7:]).exists()

    asyncio.run(run())
    detected = sum(results.values())
    print(f"{detected}/40 corruptions detected: {results}")
    assert results == {"blob": 10, "manifest-digest": 10, "manifest-tag": 10, "config": 10}
    assert list(out.iterdir()) == []


def test_corrupt_layer_in_pull_leaves_no_file(
    registry: LocalRegistry, proxy: FaultProxy, repo_name: str, tmp_path: Path
) -> None:
    """``pull(layers=True)`` with one corrupted layer raises the mismatch and writes no corrupt layer."""
    mdigest, _, ldigests, _ = _corrupt_setup(registry, repo_name, tmp_path)
    dest = tmp_path / "layers"
    proxy.flip_byte(1000, match=_is_blob(ldigests[1]))

    async def run() -> DigestMismatchError:
        async with _client(proxy.address, tmp_path) as client:
            with pytest.raises(DigestMismatchError) as info:
                await client.repo(repo_name).pull(mdigest, layers=True, dest=dest)
            return info.value

    err = asyncio.run(run())
    bad = ldigests[1].replace(":", "-")
    left = sorted(p.name for p in dest.iterdir()) if dest.exists() else []
    print(f"pull with 1 corrupt layer: {err}; files left: {left}")
    assert err.expected == ldigests[1]
    assert bad not in left and not [n for n in left if n.endswith(".part")]
