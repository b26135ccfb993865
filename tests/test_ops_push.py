"""push_image / push_index: blobs first, then manifests, the tag last; read back independently."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ocinb import AsyncClient
from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.errors import RegistryError
from ocinb.ops.push import Layer
from ocinb.testing import AccessLogEntry, LocalRegistry

pytestmark = pytest.mark.asyncio


def client(address: str, cache: ContentCache | None = None) -> AsyncClient:
    return AsyncClient(address, cache=cache or ContentCache(enabled=False), docker_config=False, environment=False)


CONFIG: dict[str, Any] = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}


def _log(registry: LocalRegistry, repo: str) -> list[AccessLogEntry]:
    return [e for e in registry.access_log() if e.path.startswith(f"/v2/{repo}/") and e.method in ("PUT", "POST")]


async def test_push_image_blobs_before_manifest(registry: LocalRegistry, repo_name: str, cache: ContentCache,
                                                tmp_path: Path) -> None:
    path = tmp_path / "layer.tar"
    path.write_bytes(os.urandom(700_000))
    async with client(registry.address, cache) as c:
        result = await c.repo(repo_name).push_image(
            "v1", CONFIG, [b"first layer", Layer(path, mt.OCI_LAYER, {"org.example.k": "v"})],
            annotations={"org.opencontainers.image.title": "demo"})
    log = _log(registry, repo_name)
    manifest_puts = [i for i, e in enumerate(log) if "/manifests/" in e.path]
    blob_puts = [i for i, e in enumerate(log) if "/blobs/uploads/" in e.path and e.method == "PUT"]
    assert len(blob_puts) == 3 and manifest_puts == [len(log) - 1]
    assert log[-1].path == f"/v2/{repo_name}/manifests/v1" and log[-1].status == 201
    async with client(registry.address) as fresh:
        m = await fresh.repo(repo_name).manifests.get("v1")
        assert str(m.digest) == result.digest
        image = m.as_manifest()
        assert image.annotations == {"org.opencontainers.image.title": "demo"}
        assert [d.media_type for d in image.layers] == [mt.OCI_LAYER_GZIP, mt.OCI_LAYER]
        assert image.layers[1].annotations == {"org.example.k": "v"}
        assert await fresh.repo(repo_name).blobs.get(image.layers[1].digest) == path.read_bytes()
        assert json.loads(await fresh.repo(repo_name).blobs.get(image.config.digest)) == CONFIG


async def test_push_index_children_before_tag(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    async with client(registry.address, cache) as c:
        repo = c.repo(repo_name)
        amd = await repo.push_image("amd64", CONFIG, [b"a"])
        arm = await repo.push_image("arm64", {**CONFIG, "architecture": "arm64"}, [b"b"])
        registry.reset_request_count()
        index = await repo.push_index("multi", [amd, arm], platforms=["linux/amd64", "linux/arm64"],
                                      annotations={"k": "v"})
    log = _log(registry, repo_name)
    assert log[-1].path == f"/v2/{repo_name}/manifests/multi"
    async with client(registry.address) as fresh:
        m = await fresh.repo(repo_name).manifests.get("multi")
        assert str(m.digest) == index.digest
        parsed = m.as_index()
        assert [d.digest for d in parsed.manifests] == [amd.digest, arm.digest]
        assert [str(d.platform) for d in parsed.manifests] == ["linux/amd64", "linux/arm64"]
        assert parsed.annotations == {"k": "v"}


async def test_push_image_to_digest_then_tag(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    """Pushing children by digest and the index by tag: the tag is the only tag-addressed PUT, and last."""
    async with client(registry.address, cache) as c:
        repo = c.repo(repo_name)
        first = await repo.push_image("latest", CONFIG, [b"x"])
        by_digest = await repo.push_manifest(first.digest, await repo.manifests.get(first.digest))
        await repo.push_index("idx", [by_digest])
    tag_puts = [e.path for e in _log(registry, repo_name) if "/manifests/" in e.path and "sha256:" not in e.path]
    assert tag_puts == [f"/v2/{repo_name}/manifests/latest", f"/v2/{repo_name}/manifests/idx"]


async def test_push_index_missing_child_fails(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    async with client(registry.address, cache) as c:
        repo = c.repo(repo_name)
        other = await c.repo(repo_name + "-other").push_image("v", CONFIG, [b"elsewhere"])
        with pytest.raises(RegistryError):
            await repo.push_index("idx", [other])
        assert not await repo.manifests.exists("idx")
