"""copy between registries (all platforms, filtered, with referrers), mounts within one, and the shared limit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from _fakeregistry import FakeRegistry

from ocinb import AsyncClient
from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.endpoints.referrers import fallback_tag
from ocinb.errors import NotFoundError
from ocinb.models import Descriptor
from ocinb.testing import LocalRegistry

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def _cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path / "cache"))


def client(address: str, **kw: Any) -> AsyncClient:
    """A client without a content cache, so every read below really asks the registry."""
    return AsyncClient(address, cache=ContentCache(enabled=False), docker_config=False, environment=False, **kw)


def _config(arch: str) -> dict[str, Any]:
    return {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}


async def _multi_arch(c: AsyncClient, repo_name: str) -> dict[str, Any]:
    repo = c.repo(repo_name)
    amd = await repo.push_image("amd64", _config("amd64"), [b"amd64 base " * 1000, b"shared layer"])
    arm = await repo.push_image("arm64", _config("arm64"), [b"arm64 base " * 1000, b"shared layer"])
    att = await repo.push_image("att", b"{}", [b"statement"], config_media_type=mt.OCI_EMPTY)
    att_desc = att.descriptor.model_copy(update={"annotations": {
        "vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd.digest}})
    index = await repo.push_index("multi", [amd, arm, att_desc],
                                  platforms=["linux/amd64", "linux/arm64/v8", "unknown/unknown"])
    return {"amd": amd.digest, "arm": arm.digest, "att": att.digest, "index": index.digest}


async def _blobs_of(c: AsyncClient, repo: str, digest: str) -> list[str]:
    image = (await c.repo(repo).manifests.get(digest)).as_manifest()
    return [image.config.digest, *(d.digest for d in image.layers)]


async def test_copy_between_registries_all_platforms(registry: LocalRegistry, registry2: LocalRegistry,
                                                     repo_name: str) -> None:
    async with client(registry.address) as src:
        d = await _multi_arch(src, repo_name)
        async with client(registry2.address) as dst:
            report = await src.copy(f"{repo_name}:multi", f"{repo_name}-copy:v1", dst_client=dst)
    assert report.digest == d["index"] and report.mounted == 0 and report.streamed > 0
    async with client(registry.address) as s, client(registry2.address) as t:
        src_repo, dst_repo = s.repo(repo_name), t.repo(repo_name + "-copy")
        top = await dst_repo.manifests.get("v1")
        assert str(top.digest) == d["index"]
        assert top.data == (await src_repo.manifests.get("multi")).data
        for child in (d["amd"], d["arm"], d["att"]):
            assert (await dst_repo.manifests.get(child)).data == (await src_repo.manifests.get(child)).data
            for blob in await _blobs_of(s, repo_name, child):
                assert await dst_repo.blobs.exists(blob)
                assert await dst_repo.blobs.get(blob) == await src_repo.blobs.get(blob)
    tag_put = [e for e in registry2.access_log() if e.method == "PUT" and e.path.startswith(f"/v2/{repo_name}-copy/")]
    assert tag_put[-1].path == f"/v2/{repo_name}-copy/manifests/v1"


async def test_copy_with_platform_filter(registry: LocalRegistry, registry2: LocalRegistry, repo_name: str) -> None:
    async with client(registry.address) as src:
        d = await _multi_arch(src, repo_name)
        amd_blobs = await _blobs_of(src, repo_name, d["amd"])
        arm_blobs = await _blobs_of(src, repo_name, d["arm"])
        async with client(registry2.address) as dst:
            report = await src.copy(f"{repo_name}:multi", f"{repo_name}-arm:v1", dst_client=dst,
                                    platforms=["linux/arm64"])
    async with client(registry2.address) as t:
        dst_repo = t.repo(repo_name + "-arm")
        index = (await dst_repo.manifests.get("v1")).as_index()
        assert report.digest != d["index"]
        assert [e.digest for e in index.manifests] == [d["arm"]]
        assert str(index.manifests[0].platform) == "linux/arm64/v8"
        assert all([await dst_repo.blobs.exists(b) for b in arm_blobs])
        assert not await dst_repo.blobs.exists(amd_blobs[1])
        assert not await dst_repo.manifests.exists(d["amd"])
        assert not await dst_repo.manifests.exists(d["att"])


async def test_copy_with_referrers(registry: LocalRegistry, registry2: LocalRegistry, repo_name: str) -> None:
    async with client(registry.address) as src:
        repo = src.repo(repo_name)
        d = await _multi_arch(src, repo_name)
        index_desc = Descriptor(media_type=mt.OCI_INDEX, digest=d["index"],
                                size=(await repo.manifests.head("multi")).size)
        sbom = await repo.push_image("sbom", b"{}", [b"sbom body"], config_media_type=mt.OCI_EMPTY,
                                     artifact_type="application/spdx+json", subject=index_desc)
        sig = await repo.push_image("sig", b"{}", [b"signature"], config_media_type=mt.OCI_EMPTY,
                                    artifact_type="application/vnd.example.sig", subject=sbom.descriptor)
        child_desc = Descriptor(media_type=mt.OCI_MANIFEST, digest=d["arm"],
                                size=(await repo.manifests.head(d["arm"])).size)
        prov = await repo.push_image("prov", b"{}", [b"provenance"], config_media_type=mt.OCI_EMPTY,
                                     artifact_type="application/vnd.example.prov", subject=child_desc)
        async with client(registry2.address) as dst:
            report = await src.copy(f"{repo_name}:multi", f"{repo_name}-refs:v1", dst_client=dst, referrers=True)
    assert report.referrers == 3
    async with client(registry2.address) as t:
        dst_repo = t.repo(repo_name + "-refs")
        assert [x.digest for x in await dst_repo.referrers.list(d["index"])] == [sbom.digest]
        assert [x.digest for x in await dst_repo.referrers.list(sbom.digest)] == [sig.digest]
        assert [x.digest for x in await dst_repo.referrers.list(d["arm"])] == [prov.digest]
        assert await dst_repo.manifests.exists(fallback_tag(d["index"]))
        for art in (sbom, sig, prov):
            for blob in await _blobs_of(t, repo_name + "-refs", art.digest):
                assert await dst_repo.blobs.exists(blob)
        nodes = await dst_repo.referrers_tree("v1")
        assert sorted(n.depth for n in nodes) == [1, 2]


async def test_copy_within_registry_mounts(registry: LocalRegistry, repo_name: str) -> None:
    async with client(registry.address) as c:
        d = await _multi_arch(c, repo_name)
        report = await c.copy(f"{repo_name}:multi", f"{repo_name}-mounted:v2")
    assert report.mounted > 0 and report.streamed == 0 and report.digest == d["index"]
    assert registry.request_count("POST", f"/v2/{repo_name}-mounted/blobs/uploads/?from=") + registry.request_count(
        "POST", f"/v2/{repo_name}-mounted/blobs/uploads/?mount=") == report.mounted
    async with client(registry.address) as fresh:
        assert str((await fresh.repo(repo_name + "-mounted").manifests.get("v2")).digest) == d["index"]


async def test_copy_without_destination_tag_keeps_the_source_tag(registry: LocalRegistry, repo_name: str) -> None:
    async with client(registry.address) as c:
        d = await _multi_arch(c, repo_name)
        await c.copy(f"{repo_name}:multi", f"{repo_name}-same")
        assert await c.repo(f"{repo_name}-same").tags.list() == ["multi"]
        assert str((await c.repo(f"{repo_name}-same").manifests.get("multi")).digest) == d["index"]


async def test_copy_mount_202_falls_into_session() -> None:
    """FakeRegistry(mount_mode="always_202"): distribution 2.8 answers 202 only to a mount it cannot satisfy,
    and copy only asks to mount from the repository it reads, so there it always mounts."""
    server = FakeRegistry(mount_mode="always_202")
    try:
        async with client(server.address) as c:
            pushed = await c.repo("src/app").push_image("v1", _config("amd64"), [b"layer one", b"layer two"])
            report = await c.copy("src/app:v1", "dst/app:v1")
        assert report.mounted == 0 and report.streamed == 3
        blobs = await _blobs_of_fake(server, pushed.digest)
        assert all(server.has_blob("dst/app", b) for b in blobs)
        assert server.upload_sessions() == 0
        assert server.count("POST", "/v2/dst/app/blobs/uploads/") == 3
    finally:
        server.stop()


async def _blobs_of_fake(server: FakeRegistry, digest: str) -> list[str]:
    async with client(server.address) as c:
        return await _blobs_of(c, "src/app", digest)


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts requests in flight (sent, response headers not yet back)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.now = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.now -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("limit", [8, 3])
async def test_one_concurrency_limit_shared_by_bulk_operations(registry: LocalRegistry, repo_name: str,
                                                               tmp_path: Path, limit: int) -> None:
    """A pull and two copies at once, against the real registry, never have more than the client's limit
    (default 8) of requests in flight together, and do overlap."""
    layers = [f"layer {i} {repo_name}".encode() * 100 for i in range(24)]
    async with client(registry.address) as setup:
        await setup.repo(repo_name).push_image("v1", _config("amd64"), layers)
    counter = CountingTransport()
    kw: dict[str, Any] = {} if limit == 8 else {"max_concurrency": limit}
    async with client(registry.address, transport=counter, **kw) as c:
        await asyncio.gather(
            c.repo(repo_name).pull("v1", layers=True, dest=tmp_path / "layers"),
            c.copy(f"{repo_name}:v1", f"{repo_name}-b:v1"),
            c.copy(f"{repo_name}:v1", f"{repo_name}-c:v1"),
        )
        assert c.stats.requests > 3 * 24
    print(f"{counter.peak} requests in flight at most, limit {limit}")
    assert counter.now == 0
    assert 2 <= counter.peak <= limit, counter.peak


async def test_copy_to_a_digest_pushes_no_tag(registry: LocalRegistry, repo_name: str) -> None:
    async with client(registry.address) as c:
        d = await _multi_arch(c, repo_name)
        report = await c.copy(f"{repo_name}:multi", f"{repo_name}-bydigest@{d['index']}")
        assert report.digest == d["index"]
        assert await c.repo(f"{repo_name}-bydigest").manifests.exists(d["index"])
        try:
            tags = await c.repo(f"{repo_name}-bydigest").tags.list()
        except NotFoundError as exc:  # distribution 2.8: a repository without tags is NAME_UNKNOWN here
            assert exc.code == "NAME_UNKNOWN"
            tags = []
        assert tags == []
