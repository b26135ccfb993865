"""Referrers: the ``sha256-<hex>`` fallback kept on 2.8, the native API on the fake, the recursive walk."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from _fakeregistry import FakeRegistry, RecordedRequest, Resp

from ocinb import AsyncClient
from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.endpoints.referrers import fallback_tag
from ocinb.errors import NotFoundError
from ocinb.models import Descriptor
from ocinb.testing import LocalRegistry

pytestmark = pytest.mark.asyncio

SBOM = "application/spdx+json"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
CONFIG: dict[str, Any] = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}


def client(address: str, cache: ContentCache | None = None) -> AsyncClient:
    return AsyncClient(address, cache=cache or ContentCache(enabled=False), docker_config=False, environment=False)


async def _artifact(c: AsyncClient, repo: str, subject: Descriptor, artifact_type: str, payload: bytes,
                    annotations: dict[str, str] | None = None) -> Descriptor:
    result = await c.repo(repo).push_image(
        f"art-{abs(hash((payload, subject.digest))) % 10**8}", b"{}", [payload],
        config_media_type=mt.OCI_EMPTY, artifact_type=artifact_type, subject=subject, annotations=annotations)
    return result.descriptor


async def test_fallback_index_maintained_on_28(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    async with client(registry.address, cache) as c:
        repo = c.repo(repo_name)
        image = (await repo.push_image("v1", CONFIG, [b"layer"])).descriptor
        sbom = await _artifact(c, repo_name, image, SBOM, b"sbom", {"org.example.kind": "sbom"})
        assert repo.referrers.api_supported is not True
        again = await repo.push_manifest(sbom.digest, await repo.manifests.get(sbom.digest))
        assert again.digest == sbom.digest
        sig = await _artifact(c, repo_name, image, SIG, b"signature")

    async with client(registry.address) as fresh:
        frepo = fresh.repo(repo_name)
        index = (await frepo.manifests.get(fallback_tag(image.digest))).as_index()
        assert [d.digest for d in index.manifests] == [sbom.digest, sig.digest]
        assert index.manifests[0].artifact_type == SBOM
        assert index.manifests[0].annotations == {"org.example.kind": "sbom"}
        assert index.manifests[1].artifact_type == SIG and index.manifests[0].media_type == mt.OCI_MANIFEST
        listed = await frepo.referrers.list(image.digest)
        assert {d.digest for d in listed} == {sbom.digest, sig.digest}
        only_sbom = await frepo.referrers.list(image.digest, artifact_type=SBOM)
        assert [d.digest for d in only_sbom] == [sbom.digest]
        assert frepo.referrers.api_supported is False
        assert await frepo.referrers.list(sig.digest) == []

        await frepo.delete_manifest(sbom.digest)
        index = (await frepo.manifests.get(fallback_tag(image.digest))).as_index()
        assert [d.digest for d in index.manifests] == [sig.digest]
        assert [d.digest for d in await frepo.referrers.list(image.digest)] == [sig.digest]
        assert not await frepo.manifests.exists(sbom.digest)


async def test_recursive_walk_depths(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    async with client(registry.address, cache) as c:
        repo = c.repo(repo_name)
        image = (await repo.push_image("v1", CONFIG, [b"layer"])).descriptor
        sbom = await _artifact(c, repo_name, image, SBOM, b"sbom")
        sig_of_sbom = await _artifact(c, repo_name, sbom, SIG, b"sig of sbom")
        sig_of_image = await _artifact(c, repo_name, image, SIG, b"sig of image")
        nodes = await repo.referrers_tree("v1")
    by_digest = {n.descriptor.digest: n for n in nodes}
    assert set(by_digest) == {sbom.digest, sig_of_sbom.digest, sig_of_image.digest}
    assert by_digest[sbom.digest].depth == 1 and by_digest[sig_of_image.digest].depth == 1
    assert by_digest[sig_of_sbom.digest].depth == 2
    assert by_digest[sig_of_sbom.digest].subject == sbom.digest


class UnfilteredRegistry(FakeRegistry):
    """A native referrers API that ignores ``artifactType`` (and so sends no ``OCI-Filters-Applied``)."""

    def _referrers(self, rec: RecordedRequest, name: str, digest: str) -> Resp:
        rec = dataclasses.replace(rec, query=[(k, v) for k, v in rec.query if k != "artifactType"])
        return super()._referrers(rec, name, digest)


@pytest.fixture
def native() -> Iterator[FakeRegistry]:
    """FakeRegistry: distribution 2.8 has no referrers API, so paging, filters and OCI-Subject need the fake."""
    server = FakeRegistry(referrers_page_size=2)
    yield server
    server.stop()


async def test_native_api_pages_and_no_fallback_upkeep(native: FakeRegistry) -> None:
    async with client(native.address) as c:
        repo = c.repo("n/app")
        image = (await repo.push_image("v1", CONFIG, [b"layer"])).descriptor
        pushed = [await _artifact(c, "n/app", image, SBOM if i % 2 else SIG, f"p{i}".encode()) for i in range(5)]
        tag = fallback_tag(image.digest)
        assert native.count(path_prefix=f"/v2/n/app/manifests/{tag}") == 0
        assert native.get_manifest("n/app", tag) is None
        native.reset_log()
        listed = await repo.referrers.list(image.digest)
        assert {d.digest for d in listed} == {d.digest for d in pushed}
        assert native.count("GET", "/v2/n/app/referrers/") == 3
        assert repo.referrers.api_supported is True
        sboms = await repo.referrers.list(image.digest, artifact_type=SBOM)
        assert {d.digest for d in sboms} == {d.digest for i, d in enumerate(pushed) if i % 2}


async def test_native_api_filters_client_side_without_header() -> None:
    server = UnfilteredRegistry(referrers_page_size=2)
    try:
        async with client(server.address) as c:
            repo = c.repo("n/app")
            image = (await repo.push_image("v1", CONFIG, [b"layer"])).descriptor
            sbom = await _artifact(c, "n/app", image, SBOM, b"s")
            await _artifact(c, "n/app", image, SIG, b"g")
            await _artifact(c, "n/app", image, SIG, b"h")
            listed = await repo.referrers.list(image.digest, artifact_type=SBOM)
        assert [d.digest for d in listed] == [sbom.digest]
        gets = [r for r in server.requests if r.method == "GET" and r.path.startswith("/v2/n/app/referrers/")]
        assert len(gets) == 2 and gets[0].param("artifactType") == SBOM
    finally:
        server.stop()


async def test_native_api_merged_with_fallback_tag(native: FakeRegistry) -> None:
    async with client(native.address) as c:
        repo = c.repo("n/app")
        image = (await repo.push_image("v1", CONFIG, [b"layer"])).descriptor
        via_api = await _artifact(c, "n/app", image, SBOM, b"api")
        legacy = Descriptor(media_type=mt.OCI_MANIFEST, digest="sha256:" + "ab" * 32, size=10, artifact_type=SIG)
        native.put_manifest("n/app", fallback_tag(image.digest), {
            "schemaVersion": 2, "mediaType": mt.OCI_INDEX,
            "manifests": [legacy.model_dump(by_alias=True, exclude_none=True),
                          via_api.model_dump(by_alias=True, exclude_none=True)]})
        listed = await repo.referrers.list(image.digest)
        assert sorted(d.digest for d in listed) == sorted([via_api.digest, legacy.digest])
        assert [d.digest for d in await repo.referrers.list(image.digest, artifact_type=SIG)] == [legacy.digest]


async def test_delete_on_native_api_leaves_fallback_alone(native: FakeRegistry) -> None:
    async with client(native.address) as c:
        repo = c.repo("n/app")
        image = (await repo.push_image("v1", CONFIG, [b"layer"])).descriptor
        sbom = await _artifact(c, "n/app", image, SBOM, b"api")
        assert [d.digest for d in await repo.referrers.list(image.digest)] == [sbom.digest]
        native.reset_log()
        await repo.delete_manifest(sbom.digest)
        assert native.count("PUT") == 0
        assert await repo.referrers.list(image.digest) == []
        with pytest.raises(NotFoundError):
            await repo.manifests.get(sbom.digest)


async def test_concurrent_pushes_to_one_subject_keep_every_entry(registry: LocalRegistry, repo_name: str,
                                                                  cache: ContentCache) -> None:
    """The fallback tag is read, appended and written back: five signatures pushed at once all stay."""
    async with client(registry.address, cache) as c:
        image = (await c.repo(repo_name).push_image("v1", CONFIG, [b"layer"])).descriptor
        sigs = await asyncio.gather(*(_artifact(c, repo_name, image, SIG, f"sig {i}".encode()) for i in range(5)))
    async with client(registry.address) as fresh:
        listed = await fresh.repo(repo_name).referrers.list(image.digest)
    assert {d.digest for d in listed} == {s.digest for s in sigs}


async def test_fallback_tag_schema() -> None:
    """``<alg>-<ref>`` with ``<ref>`` cut to 64 characters (the spec's limit), so sha512 tags match others'."""
    sha256 = "sha256:" + "a" * 64
    sha512 = "sha512:" + "b" * 128
    assert fallback_tag(sha256) == "sha256-" + "a" * 64
    assert fallback_tag(sha512) == "sha512-" + "b" * 64
