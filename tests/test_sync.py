"""The sync facade: blocking calls on ocinb's own loop thread, usable inside a running event loop (Jupyter)."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import ocinb
from ocinb import media_types as mt
from ocinb._sync import loop_thread
from ocinb.cache import ContentCache
from ocinb.digest import Digest
from ocinb.testing import LocalRegistry


def seed(client: ocinb.Client, repo_name: str, tags: list[str]) -> str:
    """Push one manifest under ``tags`` with the sync API; return its digest."""
    repo = client.repo(repo_name)
    config = b'{"architecture":"amd64","os":"linux"}'
    repo.blobs.upload(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {
        "mediaType": mt.OCI_CONFIG, "digest": str(Digest.of(config)), "size": len(config)}, "layers": []}).encode()
    for tag in tags:
        repo.manifests.put(tag, manifest)
    return str(Digest.of(manifest))


def test_sync_inside_running_loop(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    """What Jupyter needs: the blocking API called from a coroutine on a running loop."""

    async def main() -> tuple[list[str], str, list[list[str]], bool]:
        assert asyncio.get_running_loop().is_running()
        client = ocinb.Client(registry.address, cache=cache, docker_config=False, environment=False)
        digest = seed(client, repo_name, ["b", "a"])
        repo = client.repo(repo_name)
        tags = sorted(repo.tags.list())
        got = str(repo.manifests.get("a").digest)
        pages = [sorted(p) for p in repo.tags.pages()]
        ok = repo_name in client.catalog()
        client.close()
        assert got == digest
        return tags, got, pages, ok

    tags, _digest, pages, in_catalog = asyncio.run(main())
    assert tags == ["a", "b"] and pages == [["a", "b"]] and in_catalog


def test_sync_types_and_iterators(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    with ocinb.Client(registry.address, cache=cache, docker_config=False, environment=False) as client:
        assert isinstance(client.aio, ocinb.AsyncClient)
        repo = client.repo(repo_name)
        assert isinstance(repo, ocinb.Repository) and repo.name == repo_name
        data = b"streamed through the sync iterator " * 1000
        digest = str(repo.blobs.upload(data).digest)
        stream = repo.blobs.open(digest, chunk_size=4096)
        chunks = list(stream)
        assert b"".join(chunks) == data and len(chunks) > 1
        assert list(client.catalog_pages()) and repo_name in [n for p in client.catalog_pages() for n in p]
        assert client.ping().status == 200
        assert repo.blobs.exists(digest) is True
        # Calls run on ocinb's loop thread, not the caller's.
        assert loop_thread().thread is not threading.current_thread()


def test_sync_from_many_threads(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    with ocinb.Client(registry.address, cache=cache, docker_config=False, environment=False) as client:
        seed(client, repo_name, ["x", "y", "z"])
        repo = client.repo(repo_name)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: sorted(repo.tags.list()), range(16)))
        assert results == [["x", "y", "z"]] * 16


def test_sync_errors_propagate(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    with ocinb.Client(registry.address, cache=cache, docker_config=False, environment=False) as client:
        with pytest.raises(ocinb.errors.NotFoundError) as err:
            client.repo(repo_name).manifests.get("absent")
        assert err.value.code == "NAME_UNKNOWN" or err.value.code == "MANIFEST_UNKNOWN"


def test_async_client_second_loop(registry: LocalRegistry, cache: ContentCache) -> None:
    client = ocinb.AsyncClient(registry.address, cache=cache, docker_config=False, environment=False)
    assert asyncio.run(client.ping()).status == 200
    with pytest.raises(RuntimeError) as err:
        asyncio.run(client.ping())
    message = str(err.value)
    assert "event loop" in message and "ocinb.Client" in message


def test_async_client_two_live_loops(registry: LocalRegistry, cache: ContentCache) -> None:
    """Used from a second, concurrently running loop in another thread: a clear RuntimeError."""
    client = ocinb.AsyncClient(registry.address, cache=cache, docker_config=False, environment=False)
    errors: list[BaseException] = []

    async def first() -> None:
        await client.ping()
        done = threading.Event()

        def other() -> None:
            try:
                asyncio.run(client.repo("a/b").tags.list())
            except BaseException as exc:
                errors.append(exc)
            finally:
                done.set()

        threading.Thread(target=other).start()
        await asyncio.to_thread(done.wait, 30)
        await client.aclose()

    asyncio.run(first())
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert "event loop" in str(errors[0])


def test_sync_parse_and_early_close(registry: LocalRegistry, repo_name: str, cache: ContentCache) -> None:
    """``Client.parse`` hands back a sync repository; a stream closed early gives its connection back."""
    with ocinb.Client(registry.address, cache=cache, docker_config=False, environment=False) as client:
        digest = seed(client, repo_name, ["v1"])
        repo, ident = client.parse(f"{repo_name}:v1")
        assert isinstance(repo, ocinb.Repository) and ident == "v1"
        assert str(repo.manifests.get(ident).digest) == digest
        config = repo.manifests.get(ident).as_manifest().config.digest
        with repo.blobs.open(config) as stream:
            next(stream)
        assert list(stream) == []


def test_sync_copy_between_sync_clients(registry: LocalRegistry, registry2: LocalRegistry, repo_name: str,
                                        cache: ContentCache) -> None:
    """Sync objects passed to sync methods (a destination client or repository) reach the async core unwrapped."""
    kwargs = {"cache": cache, "docker_config": False, "environment": False}
    with ocinb.Client(registry.address, **kwargs) as src, ocinb.Client(registry2.address, **kwargs) as dst:
        digest = seed(src, repo_name, ["v1"])
        report = src.copy(f"{repo_name}:v1", f"{repo_name}:v1", dst_client=dst)
        assert report.digest == digest
        again = src.repo(repo_name).copy_to(dst.repo(f"{repo_name}-again"), "v1")
        assert again.digest == digest
        assert str(dst.repo(f"{repo_name}-again").manifests.get("v1").digest) == digest


def test_as_async_gives_the_async_client_behind_either_kind() -> None:
    """Code serving both kinds of client (the widgets) gets the one AsyncClient; anything else is refused."""
    from ocinb.sync_client import as_async

    sync = ocinb.Client("127.0.0.1:1", docker_config=False, environment=False)
    try:
        assert as_async(sync) is sync.aio
        assert as_async(sync.aio) is sync.aio
        with pytest.raises(TypeError, match="expected an ocinb Client or AsyncClient, got str"):
            as_async("127.0.0.1:1")  # type: ignore[arg-type]
    finally:
        sync.close()
