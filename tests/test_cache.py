"""The content cache: by digest, verified on read, safe across processes, configurable, switchable off."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from ocinb import AsyncClient
from ocinb.cache import ContentCache, default_cache_dir
from ocinb.testing import LocalRegistry

CONFIG: dict[str, Any] = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def client(address: str, cache: ContentCache) -> AsyncClient:
    return AsyncClient(address, cache=cache, docker_config=False, environment=False)


@pytest.fixture(autouse=True)
def _cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path / "env-cache"))
    monkeypatch.delenv("OCINB_CACHE", raising=False)


@pytest.mark.asyncio
async def test_manifest_and_config_cached_by_digest(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "c")
    async with client(registry.address, cache) as c:
        pushed = await c.repo(repo_name).push_image("v1", CONFIG, [b"layer"])
        pulled = await c.repo(repo_name).pull("v1")
    config_digest = pulled.manifest.config.digest
    files = {p.name for p in (tmp_path / "c").rglob("*") if p.is_file()}
    assert files == {pushed.digest.split(":")[1], config_digest.split(":")[1]}
    async with client(registry.address, ContentCache(tmp_path / "c")) as again:
        second = await again.repo(repo_name).pull(f"{pushed.digest}")
        assert again.stats.requests == 0
    assert second.config == pulled.config


@pytest.mark.asyncio
async def test_corrupt_entry_is_refetched(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "c")
    async with client(registry.address, cache) as c:
        pushed = await c.repo(repo_name).push_image("v1", CONFIG, [b"layer"])
        first = await c.repo(repo_name).get_manifest(pushed.digest)
    entry = next(p for p in (tmp_path / "c").rglob("*") if p.name == pushed.digest.split(":")[1])
    entry.write_bytes(first.data.replace(b"amd64", b"arm64") + b" ")
    async with client(registry.address, ContentCache(tmp_path / "c")) as c:
        m = await c.repo(repo_name).get_manifest(pushed.digest)
        assert c.stats.by_method == {"GET": 1}
        assert m.data == first.data
    assert entry.read_bytes() == first.data
    cache2 = ContentCache(tmp_path / "c")
    entry.write_bytes(b"garbage")
    assert cache2.get(pushed.digest) is None and not entry.exists()
    assert cache2.misses == 1


@pytest.mark.asyncio
async def test_tag_twice_costs_get_then_head(registry: LocalRegistry, repo_name: str, tmp_path: Path) -> None:
    async with client(registry.address, ContentCache(tmp_path / "c")) as c:
        repo = c.repo(repo_name)
        await repo.push_image("v1", CONFIG, [b"layer"])
        registry.reset_request_count()
        before = dict(c.stats.by_method)
        a = await repo.get_manifest("v1")
        b = await repo.get_manifest("v1")
        delta = {k: v - before.get(k, 0) for k, v in c.stats.by_method.items() if v != before.get(k, 0)}
        assert delta == {"GET": 1, "HEAD": 1}
        assert a.data == b.data
        path = f"/v2/{repo_name}/manifests/v1"
        assert registry.request_count("GET", path) == 1 and registry.request_count("HEAD", path) == 1
        moved = await repo.push_image("v1", {**CONFIG, "os": "freebsd"}, [b"layer"])
        c_after = await repo.get_manifest("v1")
        assert str(c_after.digest) == moved.digest


@pytest.mark.asyncio
async def test_cache_off(registry: LocalRegistry, repo_name: str, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCINB_CACHE", "0")
    cache = ContentCache(tmp_path / "off")
    assert cache.enabled is False
    async with client(registry.address, cache) as c:
        pushed = await c.repo(repo_name).push_image("v1", CONFIG, [b"layer"])
        before = c.stats.by_method.get("GET", 0)
        await c.repo(repo_name).get_manifest(pushed.digest)
        await c.repo(repo_name).get_manifest(pushed.digest)
        await c.repo(repo_name).get_manifest("v1")
        await c.repo(repo_name).get_manifest("v1")
        assert c.stats.by_method["GET"] - before == 4
    assert not (tmp_path / "off").exists()
    assert ContentCache(tmp_path / "x", enabled=False).enabled is False


def test_location_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ContentCache().root == tmp_path / "env-cache"
    monkeypatch.delenv("OCINB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ocinb"
    cache = ContentCache(tmp_path / "explicit")
    cache.put(_digest(b"abc"), b"abc")
    assert (tmp_path / "explicit" / "blobs" / "sha256").is_dir()
    assert cache.get(_digest(b"abc")) == b"abc"
    cache.put(_digest(b"abc"), b"not abc")
    cache.put(_digest(b"zzz"), b"wrong bytes")
    assert cache.get(_digest(b"zzz")) is None


def _writer(root: str, data: bytes, rounds: int) -> None:
    cache = ContentCache(root)
    digest = _digest(data)
    path = cache._path(digest)
    for _ in range(rounds):
        path.unlink(missing_ok=True)
        cache.put(digest, data)


def test_two_processes_never_leave_a_partial_entry(tmp_path: Path) -> None:
    data = os.urandom(4 * 1024 * 1024)
    root = str(tmp_path / "shared")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(root, data, 40)) for _ in range(2)]
    for p in procs:
        p.start()
    path = ContentCache(root)._path(_digest(data))
    seen = 0
    while any(p.is_alive() for p in procs):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        assert raw == data
        seen += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert seen > 0
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == [path.name]
