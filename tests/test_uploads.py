"""Every blob upload path round-trips: monolithic, single POST, chunked, resumed, mounted, skipped."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from _fakeregistry import FakeRegistry
from _faultproxy import FaultProxy

from ocinb import AsyncClient
from ocinb.cache import ContentCache
from ocinb.digest import Digest
from ocinb.endpoints.uploads import UploadSession
from ocinb.errors import RegistryError, SizeMismatchError, TransportError
from ocinb.models import Descriptor
from ocinb.testing import LocalRegistry

pytestmark = pytest.mark.asyncio


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    yield server
    server.stop()


def client(address: str, cache: ContentCache, **kw: object) -> AsyncClient:
    return AsyncClient(address, cache=cache, docker_config=False, environment=False, **kw)  # type: ignore[arg-type]


async def _read_back(address: str, repo: str, digest: str, cache: ContentCache) -> bytes:
    """Read a blob with a fresh client (an independent check of what the registry holds)."""
    async with client(address, cache) as c:
        return await c.repo(repo).blobs.get(digest)


async def test_monolithic_bytes(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    data = os.urandom(300_001)
    async with client(registry.address, cache) as c:
        desc = await c.repo(repo_name).blobs.upload(data)
        assert desc.digest == _digest(data) and desc.size == len(data)
        assert c.stats.by_method.get("PATCH", 0) == 0
        assert c.stats.by_method["PUT"] == 1
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data


async def test_monolithic_file(registry: LocalRegistry, repo_name: str, cache: ContentCache, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    async with client(registry.address, cache) as c:
        desc = await c.repo(repo_name).blobs.upload(path)
        assert c.stats.by_method.get("PATCH", 0) == 0
    assert desc.digest == _digest(data) and desc.size == len(data)
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data


async def test_single_post_202_continues_in_session(registry: LocalRegistry, repo_name: str,
                                                    cache: ContentCache) -> None:
    """Distribution 2.8 answers a single ``POST ?digest=`` with 202 and drops the body: the client PUTs."""
    data = b"small enough for a single POST"
    async with client(registry.address, cache) as c:
        desc = await c.repo(repo_name).blobs.upload(data)
        assert c.stats.by_method["POST"] == 1 and c.stats.by_method["PUT"] == 1
        assert c.state.single_post is False
        other = await c.repo(repo_name).blobs.upload(b"second small blob")
    assert registry.request_count("POST", f"/v2/{repo_name}/blobs/uploads/?digest=") == 1
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data
    assert await _read_back(registry.address, repo_name, other.digest, cache) == b"second small blob"


async def test_single_post_201(fake: FakeRegistry, cache: ContentCache) -> None:
    """FakeRegistry: a registry that finishes a single POST with 201 needs no PUT (2.8 never answers 201)."""
    data = b"one request"
    async with client(fake.address, cache) as c:
        desc = await c.repo("a/b").blobs.upload(data)
    assert fake.count("PUT") == 0 and fake.count("POST") == 1
    assert fake.get_blob(desc.digest) == data


def _odd_pieces(data: bytes) -> Iterator[bytes]:
    sizes = [1, 7, 999, 4096, 3, 12345, 2, 65537]
    pos = 0
    i = 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        yield data[pos:pos + step]
        pos += step
        i += 1


async def test_chunked_iterable_odd_sizes(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    data = os.urandom(250_003)
    async with client(registry.address, cache) as c:
        desc = await c.repo(repo_name).blobs.upload(_odd_pieces(data), chunk_size=40_000)
        assert c.stats.by_method["PATCH"] == math.ceil(len(data) / 40_000)
    assert desc.digest == _digest(data) and desc.size == len(data)
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data


async def test_chunked_async_iterable(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    data = os.urandom(100_000)

    async def gen() -> AsyncIterator[bytes]:
        for piece in _odd_pieces(data):
            yield piece

    async with client(registry.address, cache) as c:
        desc = await c.repo(repo_name).blobs.upload(gen(), _digest(data), chunk_size=33_333)
        assert c.stats.by_method["PATCH"] == 4
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data


async def test_chunked_file_and_bytes_with_chunk_size(registry: LocalRegistry, repo_name: str, cache: ContentCache,
                                                      tmp_path: Path) -> None:
    data = os.urandom(1_500_001)
    path = tmp_path / "f"
    path.write_bytes(data)
    async with client(registry.address, cache) as c:
        desc = await c.repo(repo_name).blobs.upload(path, chunk_size=700_000)
        assert c.stats.by_method["PATCH"] == 3
        small = os.urandom(5000)
        d2 = await c.repo(repo_name).blobs.upload(small, chunk_size=2048)
        assert c.stats.by_method["PATCH"] == 6
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data
    assert await _read_back(registry.address, repo_name, d2.digest, cache) == small


async def test_chunk_min_length_respected(cache: ContentCache) -> None:
    """FakeRegistry: distribution 2.8 sends no ``OCI-Chunk-Min-Length``; the fake does (4096 here)."""
    fake = FakeRegistry(chunk_min_length=4096)
    try:
        data = os.urandom(20_000)
        async with client(fake.address, cache) as c:
            desc = await c.repo("a/min").blobs.upload(_odd_pieces(data), chunk_size=1000)
        patches = [r for r in fake.requests if r.method == "PATCH"]
        assert len(patches) == 5
        assert all(r.body_length >= 4096 for r in patches[:-1])
        assert sum(r.body_length for r in patches) == len(data)
        assert fake.get_blob(desc.digest) == data
    finally:
        fake.stop()


async def test_chunked_patch_cut_resumes_from_status(registry: LocalRegistry, repo_name: str,
                                                     cache: ContentCache) -> None:
    """A PATCH cut before the registry saw it: GET the status, resume from its Range (one-shot stream)."""
    data = os.urandom(300_000)
    proxy = FaultProxy(registry.url)
    try:
        proxy.cut_request_after(50_000, match=lambda m, p: m == "PATCH" and proxy.count("PATCH") == 2)
        async with client(proxy.address, cache) as c:
            desc = await c.repo(repo_name).blobs.upload(iter([data]), chunk_size=100_000)
        assert len(proxy.fired) == 1
        assert proxy.count("GET", f"/v2/{repo_name}/blobs/uploads/") == 1
        assert proxy.count("POST") == 1
        assert proxy.count("PATCH") == 4
    finally:
        proxy.stop()
    assert desc.digest == _digest(data)
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data


async def test_patch_cut_after_partial_write_restarts_replayable_source(
        registry: LocalRegistry, repo_name: str, cache: ContentCache, tmp_path: Path) -> None:
    """Part of the PATCH reached 2.8, which then cancels the session (status → 404 BLOB_UPLOAD_INVALID):
    a file source starts over in a new session."""
    data = os.urandom(300_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    proxy = FaultProxy(registry.url)
    try:
        proxy.cut_request_after(50_000, match=lambda m, p: m == "PATCH" and proxy.count("PATCH") == 2,
                                forward_partial=True)
        async with client(proxy.address, cache) as c:
            desc = await c.repo(repo_name).blobs.upload(path, chunk_size=100_000)
        assert len(proxy.fired) == 1
        # 2.8 cancels the session when it notices the dropped connection, a moment after the cut: the
        # first status query may still find it (then one more PATCH meets 404 and a second query follows).
        assert 1 <= proxy.count("GET", f"/v2/{repo_name}/blobs/uploads/") <= 2
        assert proxy.count("POST") == 2
    finally:
        proxy.stop()
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data


async def test_patch_cut_after_partial_write_one_shot_stream_fails_clearly(
        registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    data = os.urandom(300_000)
    proxy = FaultProxy(registry.url)
    try:
        proxy.cut_request_after(50_000, match=lambda m, p: m == "PATCH" and proxy.count("PATCH") == 2,
                                forward_partial=True)
        async with client(proxy.address, cache) as c:
            with pytest.raises(TransportError, match="one-shot stream"):
                await c.repo(repo_name).blobs.upload(iter([data]), chunk_size=100_000)
    finally:
        proxy.stop()


async def test_monolithic_file_put_cut_resumes(registry: LocalRegistry, repo_name: str, cache: ContentCache,
                                               tmp_path: Path) -> None:
    """A monolithic PUT of a file cut mid-body: status, then the body again (2.8 kept nothing)."""
    data = os.urandom(2_000_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    proxy = FaultProxy(registry.url)
    try:
        proxy.cut_request_after(700_000, match=lambda m, p: m == "PUT")
        async with client(proxy.address, cache) as c:
            desc = await c.repo(repo_name).blobs.upload(path)
        assert len(proxy.fired) == 1
        assert proxy.count("GET", f"/v2/{repo_name}/blobs/uploads/") == 1
        assert proxy.count("PUT") == 2
    finally:
        proxy.stop()
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data


async def test_monolithic_put_cut_after_partial_write_restarts(registry: LocalRegistry, repo_name: str,
                                                               cache: ContentCache, tmp_path: Path) -> None:
    data = os.urandom(2_000_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    proxy = FaultProxy(registry.url)
    try:
        proxy.cut_request_after(700_000, match=lambda m, p: m == "PUT", forward_partial=True)
        async with client(proxy.address, cache) as c:
            desc = await c.repo(repo_name).blobs.upload(path)
        assert len(proxy.fired) == 1
        assert proxy.count("GET", f"/v2/{repo_name}/blobs/uploads/") == 1
    finally:
        proxy.stop()
    assert await _read_back(registry.address, repo_name, desc.digest, cache) == data


async def test_416_then_status_then_resume(fake: FakeRegistry, cache: ContentCache) -> None:
    """FakeRegistry: the real registry cannot be made to answer 416 on demand."""
    data = os.urandom(30_000)
    fake.fail_next(1, 416, match=lambda m, p: m == "PATCH")
    async with client(fake.address, cache) as c:
        desc = await c.repo("a/r").blobs.upload(iter([data]), chunk_size=10_000)
    assert fake.count("GET", "/v2/a/r/blobs/uploads/") == 1
    assert fake.count("PATCH") == 4
    assert fake.get_blob(desc.digest) == data


async def test_spec_416_resumes_from_its_range_and_location(fake: FakeRegistry, cache: ContentCache) -> None:
    """FakeRegistry: distribution cannot be made to lose a chunk. The registry acknowledged chunk 2 but kept
    nothing; chunk 3 then gets the spec's 416 with ``Range: 0-9999`` and a new ``Location``: the client
    continues from byte 10000 at that Location, without asking for the status."""
    data = os.urandom(30_000)
    fake.lose_next_chunks(1, after=1)
    async with client(fake.address, cache) as c:
        desc = await c.repo("a/r").blobs.upload(data, chunk_size=10_000)
    patches = [r for r in fake.requests if r.method == "PATCH"]
    assert [r.headers.get("Content-Range") for r in patches] == [
        "0-9999", "10000-19999", "20000-29999", "10000-19999", "20000-29999"]
    refused, resumed = patches[2], patches[3]
    assert resumed.param("_state") != refused.param("_state")  # the 416's Location, not the old one
    assert fake.count("GET", "/v2/a/r/blobs/uploads/") == 0
    assert fake.get_blob(desc.digest) == data and desc.digest == _digest(data)
    assert fake.upload_sessions() == 0


async def test_spec_416_behind_a_one_shot_stream_fails_clearly(fake: FakeRegistry, cache: ContentCache) -> None:
    """FakeRegistry, as above, with a one-shot stream: the registry holds less than the stream can still
    send, so the upload stops with a TransportError saying so, and nothing is committed."""
    data = os.urandom(30_000)
    fake.lose_next_chunks(1, after=1)
    async with client(fake.address, cache) as c:
        with pytest.raises(TransportError, match="registry holds 10000 bytes"):
            await c.repo("a/r").blobs.upload(iter([data[:10_000], data[10_000:20_000], data[20_000:]]),
                                             chunk_size=10_000)
    assert fake.get_blob(_digest(data)) is None


async def test_resume_budget_exhausted_raises(fake: FakeRegistry, cache: ContentCache) -> None:
    fake.fail_next(10, 416, match=lambda m, p: m == "PATCH")
    async with client(fake.address, cache) as c:
        with pytest.raises(Exception, match="gave up after 2 resumes"):
            await c.repo("a/r").blobs.upload(iter([b"x" * 100]), chunk_size=50, resumes=2)


async def test_mount_201(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    data = os.urandom(10_000)
    async with client(registry.address, cache) as c:
        src = c.repo(repo_name)
        desc = await src.blobs.upload(data)
        dst = c.repo(repo_name + "-dst")
        answer = await dst.blobs.mount(desc.digest, src.name)
        assert isinstance(answer, Descriptor) and answer.size == len(data)
    assert registry.request_count("POST", f"/v2/{repo_name}-dst/blobs/uploads/?") == 1
    assert await _read_back(registry.address, repo_name + "-dst", desc.digest, cache) == data


async def test_mount_202_uploads_into_opened_session(registry: LocalRegistry, repo_name: str,
                                                     cache: ContentCache) -> None:
    """Distribution 2.8 answers 202 to a mount it cannot satisfy (the source lacks the blob): the client
    gets the opened session back and uploads into it, opening no other."""
    data = os.urandom(5000)
    digest = _digest(data)
    async with client(registry.address, cache) as c:
        await c.repo(repo_name + "-elsewhere").blobs.upload(data)  # the blob exists, but not in the source
        dst = c.repo(repo_name + "-dst")
        answer = await dst.blobs.mount(digest, repo_name + "-src")
        assert isinstance(answer, UploadSession)
        desc = await dst.blobs.upload(data, session=answer)
        assert desc.digest == digest
    session_path = answer.location.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
    assert registry.request_count("POST", f"/v2/{repo_name}-dst/blobs/uploads/") == 1
    assert registry.request_count("PUT", "/" + session_path) == 1
    assert await _read_back(registry.address, repo_name + "-dst", digest, cache) == data


async def test_head_skips_existing_blob(registry: LocalRegistry, repo_name: str, cache: ContentCache,
                                        tmp_path: Path) -> None:
    data = os.urandom(400_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    async with client(registry.address, cache) as c:
        repo = c.repo(repo_name)
        await repo.blobs.upload(data)
        before = dict(c.stats.by_method)
        again = await repo.blobs.upload(data)
        from_file = await repo.blobs.upload(path)
        after = dict(c.stats.by_method)
    assert again.digest == from_file.digest == _digest(data) and from_file.size == len(data)
    assert after["HEAD"] - before["HEAD"] == 2
    assert after.get("POST") == before.get("POST") and after.get("PUT") == before.get("PUT")


async def test_failed_upload_cancels_its_session(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    """A wrong digest is refused at the final PUT; the half-written session is then deleted, not left behind."""
    wrong = "sha256:" + "0" * 64
    async with client(registry.address, cache) as c:
        with pytest.raises(RegistryError, match="DIGEST_INVALID"):
            await c.repo(repo_name).blobs.upload(b"these bytes do not hash to zero" * 100, wrong)
    assert registry.request_count("DELETE", f"/v2/{repo_name}/blobs/uploads/") == 1


async def test_stream_shorter_than_its_size_is_refused_before_the_put(registry: LocalRegistry, repo_name: str,
                                                                      cache: ContentCache) -> None:
    """A stream given ``size=`` but no digest that ends early fails as one that runs long does: nothing is
    committed and the session is deleted."""
    data = os.urandom(50_000)
    async with client(registry.address, cache) as c:
        with pytest.raises(SizeMismatchError):
            await c.repo(repo_name).blobs.upload(iter([data]), size=len(data) + 1, chunk_size=20_000)
        assert not await c.repo(repo_name).blobs.exists(_digest(data))
    assert registry.request_count("PUT", f"/v2/{repo_name}/blobs/uploads/") == 0
    assert registry.request_count("DELETE", f"/v2/{repo_name}/blobs/uploads/") == 1


async def test_concurrent_uploads_of_one_blob_send_it_once(registry: LocalRegistry, repo_name: str,
                                                           cache: ContentCache) -> None:
    """Five pushes of the same blob at once: one upload, four wait for it (distribution loses a blob
    for a moment when a second commit of it lands, which broke concurrent image pushes)."""
    data = b"shared layer " * 5000
    async with client(registry.address, cache) as c:
        repo = c.repo(repo_name)
        descs = await asyncio.gather(*(repo.blobs.upload(data) for _ in range(5)))
        images = await asyncio.gather(*(repo.push_image(f"v{i}", {"architecture": "amd64", "os": "linux", "i": i},
                                                        [b"base " * 3000]) for i in range(5)))
    assert {d.digest for d in descs} == {str(Digest.of(data))}
    assert registry.request_count("POST", f"/v2/{repo_name}/blobs/uploads/") == 1 + 1 + 5  # blob, base, configs
    assert len({i.digest for i in images}) == 5
