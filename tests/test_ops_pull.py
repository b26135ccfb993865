"""Downloads (verified, resumed, nothing left behind) and pulls (platform resolution, config, layers)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from _faultproxy import FaultProxy

from ocinb import AsyncClient
from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.errors import DigestMismatchError, PlatformNotFoundError, RegistryError, TransportError
from ocinb.models import ImageConfig
from ocinb.testing import LocalRegistry

pytestmark = pytest.mark.asyncio


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def client(address: str, cache: ContentCache) -> AsyncClient:
    return AsyncClient(address, cache=cache, docker_config=False, environment=False)


async def _push(registry: LocalRegistry, repo: str, data: bytes, cache: ContentCache) -> str:
    async with client(registry.address, cache) as c:
        return (await c.repo(repo).blobs.upload(data)).digest


async def test_download_resumes_with_range(registry: LocalRegistry, repo_name: str, cache: ContentCache,
                                           tmp_path: Path) -> None:
    data = os.urandom(3_000_000)
    digest = await _push(registry, repo_name, data, cache)
    proxy = FaultProxy(registry.url)
    try:
        proxy.cut_response_after(1_000_000, match=lambda m, p: m == "GET" and "/blobs/sha256" in p, times=2)
        async with client(proxy.address, cache) as c:
            out = await c.repo(repo_name).blobs.download(digest, tmp_path / "dl" / "blob")
        ranged = [r for r in proxy.requests if r.method == "GET" and "range" in r.headers]
        assert [r.headers["range"] for r in ranged] == ["bytes=1000000-", "bytes=2000000-"]
        assert len(proxy.fired) == 2
    finally:
        proxy.stop()
    assert out.read_bytes() == data
    assert sorted(os.listdir(tmp_path / "dl")) == ["blob"]
    entries = [e for e in registry.access_log() if e.method == "GET" and digest in e.path]
    assert 206 in {e.status for e in entries}


async def test_digest_mismatch_leaves_nothing(registry: LocalRegistry, repo_name: str, cache: ContentCache,
                                              tmp_path: Path) -> None:
    data = os.urandom(500_000)
    digest = await _push(registry, repo_name, data, cache)
    folder = tmp_path / "dl"
    proxy = FaultProxy(registry.url)
    try:
        proxy.flip_byte(123_456, match=lambda m, p: m == "GET" and "/blobs/sha256" in p)
        async with client(proxy.address, cache) as c:
            with pytest.raises(DigestMismatchError) as info:
                await c.repo(repo_name).blobs.download(digest, folder / "blob")
    finally:
        proxy.stop()
    flipped = bytearray(data)
    flipped[123_456] ^= 0xFF
    assert info.value.expected == digest
    assert info.value.actual == _digest(bytes(flipped))
    assert digest in str(info.value) and info.value.actual in str(info.value)
    assert os.listdir(folder) == []


@pytest.mark.parametrize("mode", ["refuse", "ignore"])
async def test_resume_impossible_clear_error_nothing_left(registry: LocalRegistry, repo_name: str,
                                                          cache: ContentCache, tmp_path: Path, mode: str) -> None:
    data = os.urandom(2_000_000)
    digest = await _push(registry, repo_name, data, cache)
    folder = tmp_path / "dl"
    proxy = FaultProxy(registry.url, range_mode=mode)  # type: ignore[arg-type]
    try:
        proxy.cut_response_after(700_000, match=lambda m, p: m == "GET" and "/blobs/sha256" in p)
        async with client(proxy.address, cache) as c:
            with pytest.raises(RegistryError) as info:
                await c.repo(repo_name).blobs.download(digest, folder / "blob")
    finally:
        proxy.stop()
    assert info.value.status == (416 if mode == "refuse" else 200)
    if mode == "ignore":
        assert "cannot resume at byte 700000" in str(info.value)
    assert os.listdir(folder) == []


async def test_download_resume_budget(registry: LocalRegistry, repo_name: str, cache: ContentCache,
                                      tmp_path: Path) -> None:
    data = os.urandom(1_000_000)
    digest = await _push(registry, repo_name, data, cache)
    proxy = FaultProxy(registry.url)
    try:
        proxy.cut_response_after(100, match=lambda m, p: m == "GET" and "/blobs/sha256" in p, once=False)
        async with client(proxy.address, cache) as c:
            with pytest.raises(TransportError, match="after 2 resumes"):
                await c.repo(repo_name).blobs.download(digest, tmp_path / "dl" / "blob", resumes=2)
        assert len(proxy.fired) == 3
    finally:
        proxy.stop()
    assert os.listdir(tmp_path / "dl") == []


def _config(arch: str, variant: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    if variant:
        doc["variant"] = variant
    return doc


async def _multi_arch(c: AsyncClient, repo_name: str) -> dict[str, str]:
    """Push amd64, arm64/v8 and arm/v7 images, an attestation, and an index listing the attestation first."""
    repo = c.repo(repo_name)
    amd = await repo.push_image("amd64", _config("amd64"), [b"amd64 layer"])
    arm64 = await repo.push_image("arm64", _config("arm64", "v8"), [b"arm64 layer 1", b"arm64 layer 2"])
    arm = await repo.push_image("arm", _config("arm", "v7"), [b"arm layer"])
    att = await repo.push_image("att", b"{}", [b"in-toto statement"], config_media_type=mt.EMPTY_JSON
                                if hasattr(mt, "EMPTY_JSON") else "application/vnd.oci.empty.v1+json")
    att_desc = att.descriptor.model_copy(update={"annotations": {
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": arm64.digest}})
    await repo.push_index("multi", [att_desc, amd, arm64, arm],
                          platforms=["unknown/unknown", "linux/amd64", "linux/arm64/v8", "linux/arm/v7"])
    return {"amd64": amd.digest, "arm64": arm64.digest, "arm": arm.digest, "att": att.digest}


async def test_pull_resolves_platform(registry: LocalRegistry, repo_name: str, cache: ContentCache,
                                      tmp_path: Path) -> None:
    async with client(registry.address, cache) as c:
        digests = await _multi_arch(c, repo_name)
    async with client(registry.address, ContentCache(tmp_path / "fresh")) as c:
        repo = c.repo(repo_name)
        pulled = await repo.pull("multi", platform="linux/arm64")
        assert pulled.digest == digests["arm64"]
        assert pulled.config.architecture == "arm64" and pulled.config.variant == "v8"
        assert pulled.layer_paths == []
        assert c.stats.by_method["GET"] == 3  # index, manifest, config: no layer
        assert (await repo.pull("multi", platform="linux/arm64/v8")).digest == digests["arm64"]
        assert (await repo.pull("multi", platform="linux/arm/v7")).digest == digests["arm"]
        assert (await repo.pull("multi")).digest == digests["amd64"]
        with pytest.raises(PlatformNotFoundError, match="linux/s390x") as err:
            await repo.pull("multi", platform="linux/s390x")
        assert err.value.offered == ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
        with pytest.raises(PlatformNotFoundError):
            await repo.pull("multi", platform="unknown/unknown")
        resolved = await repo.resolve("multi", "linux/arm64")
        assert resolved.top.is_index and resolved.entry is not None
        assert str(resolved.platform) in ("linux/arm64/v8", "linux/arm64")


async def test_pull_layers_on_request(registry: LocalRegistry, repo_name: str, cache: ContentCache,
                                      tmp_path: Path) -> None:
    async with client(registry.address, cache) as c:
        await _multi_arch(c, repo_name)
        pulled = await c.repo(repo_name).pull("multi", platform="linux/arm64", layers=True, dest=tmp_path / "L")
    assert [p.read_bytes() for p in pulled.layer_paths] == [b"arm64 layer 1", b"arm64 layer 2"]
    assert sorted(os.listdir(tmp_path / "L")) == sorted(p.name for p in pulled.layer_paths)
    assert isinstance(pulled.config, ImageConfig)


async def test_pull_single_manifest_and_by_digest(registry: LocalRegistry, repo_name: str,
                                                  cache: ContentCache) -> None:
    async with client(registry.address, cache) as c:
        repo = c.repo(repo_name)
        pushed = await repo.push_image("v1", _config("riscv64"), [b"l"])
        by_tag = await c.pull(f"{repo_name}:v1")
        by_digest = await c.pull(f"{repo_name}@{pushed.digest}", platform="linux/riscv64")
        with pytest.raises(PlatformNotFoundError, match=r"linux/amd64 in .*@sha256:.*offered: linux/riscv64"):
            await c.pull(f"{repo_name}@{pushed.digest}", platform="linux/amd64")
    assert by_tag.digest == by_digest.digest == pushed.digest
    assert by_tag.config.architecture == "riscv64"


async def test_pull_layers_replaces_a_corrupt_file_already_there(registry: LocalRegistry, repo_name: str,
                                                                  cache: ContentCache, tmp_path: Path) -> None:
    """A layer file of the right size but the wrong bytes is downloaded again, never trusted by size."""
    async with client(registry.address, cache) as c:
        repo = c.repo(repo_name)
        await repo.push_image("v1", _config("amd64"), [b"real layer bytes"])
        first = await repo.pull("v1", layers=True, dest=tmp_path / "layers")
        path = first.layer_paths[0]
        path.write_bytes(b"X" * path.stat().st_size)
        again = await repo.pull("v1", layers=True, dest=tmp_path / "layers")
    assert again.layer_paths[0].read_bytes() == b"real layer bytes"
