"""Every endpoint (end-1 … end-13), sync and async, against the real CNCF registry; tag pagination on the fake."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import math
from collections.abc import AsyncIterable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _fakeregistry import FakeRegistry

import ocinb
from ocinb import RetryPolicy
from ocinb import media_types as mt
from ocinb.cache import ContentCache
from ocinb.client import AsyncClient, AsyncRepository
from ocinb.digest import Digest
from ocinb.endpoints import UploadSession
from ocinb.errors import (
    DigestMismatchError,
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
    ServerError,
    TooManyRequestsError,
    UnsupportedError,
)
from ocinb.models import Descriptor
from ocinb.testing import LocalRegistry


class Runner:
    """Drives an async ocinb object from sync test code on a test-owned event loop (the async mode)."""

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target = target
        self._runner = runner

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, AsyncRepository):
            return Runner(value, self._runner)
        if isinstance(value, AsyncIterable):
            return self._iterate(value)
        return value

    def _iterate(self, source: AsyncIterable[Any]) -> Iterator[Any]:
        it = source.__aiter__()
        while True:
            try:
                yield self._runner.run(it.__anext__())
            except StopAsyncIteration:
                return

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **k: self._wrap(self._runner.run(attr(*a, **k)))
        if inspect.ismethod(attr) or inspect.isasyncgenfunction(attr):
            return lambda *a, **k: self._wrap(attr(*a, **k))
        if type(attr).__module__.startswith("ocinb.endpoints"):
            return Runner(attr, self._runner)
        return attr


MakeClient = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Each test runs once through ``ocinb.Client`` and once through ``ocinb.AsyncClient``."""
    return str(request.param)


@pytest.fixture
def make_client(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeClient]:
    """A factory of clients of the current mode, isolated from ~/.docker and the environment."""
    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path / "cache"))
    runner = asyncio.Runner()
    made: list[Any] = []

    def make(address: str, **kwargs: Any) -> Any:
        kwargs.setdefault("cache", ContentCache(tmp_path / "cache"))
        kwargs.setdefault("docker_config", False)
        kwargs.setdefault("environment", False)
        kwargs.setdefault("retry", RetryPolicy(retries=2, backoff=0.01))
        if mode == "sync":
            client = ocinb.Client(address, **kwargs)
            made.append(client)
            return client
        aclient = AsyncClient(address, **kwargs)
        made.append(aclient)
        return Runner(aclient, runner)

    yield make
    for c in made:
        if isinstance(c, AsyncClient):
            runner.run(c.aclose())
        else:
            c.close()
    runner.close()


def oci_manifest(config: bytes, layers: list[bytes], **extra: Any) -> bytes:
    """An OCI image manifest over the given config and layer bytes (compact JSON)."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(Digest.of(config)), "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER, "digest": str(Digest.of(b)), "size": len(b)} for b in layers],
        **extra,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def push_image(repo: Any, tag: str, seed: str) -> tuple[bytes, list[bytes], bytes]:
    """Push a small image (config + one layer) under ``tag``; return (config, layers, manifest bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layers = [f"layer of {seed}".encode()]
    for blob in (config, *layers):
        repo.blobs.upload(blob)
    manifest = oci_manifest(config, layers)
    repo.manifests.put(tag, manifest)
    return config, layers, manifest


ZERO = "sha256:" + "0" * 64


def test_ping(make_client: MakeClient, registry: LocalRegistry) -> None:
    client = make_client(registry.address)
    answer = client.ping()
    assert answer.status == 200
    assert answer.api_version == "registry/2.0"
    assert answer.auth_scheme is None
    assert answer.url == registry.url.rstrip("/")


def test_blob_get_head_delete(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    data = b"blob bytes \x00\xff" * 100
    desc = repo.blobs.upload(data)
    assert isinstance(desc, Descriptor)
    assert desc.digest == Digest.of(data) and desc.size == len(data)
    assert repo.blobs.get(desc.digest) == data
    assert b"".join(repo.blobs.open(desc.digest)) == data
    head = repo.blobs.head(desc.digest)
    assert (head.digest, head.size) == (desc.digest, len(data))
    assert repo.blobs.exists(desc.digest) is True
    assert repo.blobs.delete(desc.digest) is None
    assert repo.blobs.exists(desc.digest) is False
    with pytest.raises(NotFoundError) as err:
        repo.blobs.get(desc.digest)
    assert err.value.status == 404 and err.value.code == "BLOB_UNKNOWN"


@pytest.fixture(scope="module")
def no_delete_registry() -> Iterator[LocalRegistry]:
    """A real registry with ``storage.delete.enabled: false``."""
    reg = LocalRegistry(delete_enabled=False)
    try:
        yield reg.start()
    finally:
        reg.stop()


def test_deletes_disabled_raise_unsupported_and_keep_content(make_client: MakeClient,
                                                            no_delete_registry: LocalRegistry,
                                                            repo_name: str) -> None:
    """Distribution with deletes off answers 405 UNSUPPORTED to both DELETEs: an UnsupportedError that says
    so, and the manifest and blob are still served afterwards."""
    repo = make_client(no_delete_registry.address).repo(repo_name)
    config, _layers, manifest = push_image(repo, "v1", repo_name)
    digest, config_digest = str(Digest.of(manifest)), str(Digest.of(config))
    for delete, target in ((repo.manifests.delete, digest), (repo.blobs.delete, config_digest)):
        with pytest.raises(UnsupportedError) as err:
            delete(target)
        assert err.value.status == 405 and "UNSUPPORTED" in err.value.codes, err.value
        assert "delet" in str(err.value).lower()
    assert repo.manifests.get("v1").data == manifest
    assert repo.blobs.get(config_digest) == config


def test_blob_unknown(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    with pytest.raises(NotFoundError) as err:
        repo.blobs.get(ZERO)
    assert err.value.code == "BLOB_UNKNOWN"
    assert ZERO in str(err.value)
    with pytest.raises(NotFoundError) as err_head:
        repo.blobs.head(ZERO)
    assert err_head.value.status == 404 and err_head.value.method == "HEAD"
    assert repo.blobs.exists(ZERO) is False
    with pytest.raises(NotFoundError):
        repo.blobs.delete(ZERO)


def test_manifest_get_head_put_delete(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    _config, _layers, manifest = push_image(repo, "v1", repo_name)
    digest = str(Digest.of(manifest))
    m = repo.manifests.get("v1")
    assert m.data == manifest and str(m.digest) == digest and m.media_type == mt.OCI_MANIFEST
    assert m.as_manifest().layers[0].size == len(f"layer of {repo_name}")
    by_digest = repo.manifests.get(digest)
    assert by_digest.data == manifest
    head = repo.manifests.head("v1")
    assert (head.digest, head.size, head.media_type) == (digest, len(manifest), mt.OCI_MANIFEST)
    assert repo.manifests.exists("v1") and not repo.manifests.exists("nope")
    # PUT by digest, then the same bytes under a second tag.
    result = repo.manifests.put(digest, manifest)
    assert result.digest == digest and result.location and digest in result.location
    repo.manifests.put("v2", manifest)
    assert sorted(repo.tags.list()) == ["v1", "v2"]
    assert repo.manifests.delete(digest) is None
    with pytest.raises(NotFoundError) as err:
        repo.manifests.get(digest)
    assert err.value.code == "MANIFEST_UNKNOWN"


def test_manifest_unknown(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    push_image(repo, "v1", repo_name)
    with pytest.raises(NotFoundError) as err:
        repo.manifests.get("missing")
    assert err.value.code == "MANIFEST_UNKNOWN" and err.value.status == 404
    assert "missing" in err.value.url
    with pytest.raises(NotFoundError):
        repo.manifests.head(ZERO)


def test_manifest_put_wrong_digest_fails_before_network(make_client: MakeClient, registry: LocalRegistry,
                                                        repo_name: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    _c, _l, manifest = push_image(repo, "v1", repo_name)
    registry.reset_request_count()
    with pytest.raises(DigestMismatchError):
        repo.manifests.put(ZERO, manifest)
    assert registry.request_count("PUT") == 0


def test_manifest_put_missing_blob(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    config = b'{"architecture":"amd64","os":"linux"}'
    repo.blobs.upload(config)
    manifest = oci_manifest(config, [b"never uploaded " + repo_name.encode()])
    with pytest.raises(RegistryError) as err:
        repo.manifests.put("v1", manifest)
    assert err.value.status == 400 and "MANIFEST_BLOB_UNKNOWN" in err.value.codes


def test_manifest_delete_by_tag_surfaces_code(make_client: MakeClient, registry: LocalRegistry,
                                              repo_name: str) -> None:
    """Distribution 2.8 answers 400 DIGEST_INVALID to DELETE by tag; the code must reach the caller."""
    repo = make_client(registry.address).repo(repo_name)
    push_image(repo, "v1", repo_name)
    with pytest.raises(UnsupportedError) as err:
        repo.manifests.delete("v1")
    assert err.value.status == 400 and err.value.code == "DIGEST_INVALID"
    assert err.value.codes[-1] == "UNSUPPORTED" and "delete the digest" in str(err.value)
    assert repo.manifests.exists("v1")


def test_monolithic_post_then_put(make_client: MakeClient, registry: LocalRegistry, repo_name: str,
                                  tmp_path: Path) -> None:
    repo = make_client(registry.address).repo(repo_name)
    data = bytes(range(256)) * 2000  # over the single-POST size: POST then PUT
    registry.reset_request_count()
    desc = repo.blobs.upload(data)
    assert desc.size == len(data)
    assert registry.request_count("POST", "/blobs/uploads/") == 1
    assert registry.request_count("PUT", "/blobs/uploads/") == 1
    assert registry.request_count("PATCH") == 0
    assert repo.blobs.get(desc.digest) == data
    # From a file, low level: start + finish carrying the whole body.
    src = tmp_path / "blob.bin"
    src.write_bytes(b"file body " + repo_name.encode())
    session = repo.uploads.start()
    assert isinstance(session, UploadSession) and session.offset == 0 and "_state=" in session.location
    done = repo.uploads.finish(session, str(Digest.of(src.read_bytes())), src.read_bytes())
    assert done.digest == Digest.of(src.read_bytes()) and done.size == src.stat().st_size
    assert repo.blobs.upload(src).digest == done.digest  # already present: skipped


def test_single_post_202_still_lands(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    """Distribution 2.8 answers a single POST ``?digest=`` with 202 and drops the body."""
    repo = make_client(registry.address).repo(repo_name)
    data = b"small single post " + repo_name.encode()
    answer = repo.uploads.post(str(Digest.of(data)), data)
    assert isinstance(answer, UploadSession)
    assert repo.blobs.exists(str(Digest.of(data))) is False
    repo.uploads.finish(answer, str(Digest.of(data)), data)
    assert repo.blobs.get(str(Digest.of(data))) == data
    other = b"through upload() " + repo_name.encode()
    desc = repo.blobs.upload(other)
    assert repo.blobs.get(desc.digest) == other


def test_chunked_upload_odd_sizes(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    pieces = [b"a" * 1, b"b" * 7, b"c" * 4099, b"d" * 13]
    data = b"".join(pieces)
    session = repo.uploads.start()
    offset = 0
    for piece in pieces:
        session = repo.uploads.patch(session, piece, length=len(piece))
        offset += len(piece)
        assert session.offset == offset
    status = repo.uploads.status(session)
    assert status.offset == len(data)
    desc = repo.uploads.finish(status, str(Digest.of(data)))
    assert desc.digest == Digest.of(data) and desc.size == len(data)
    assert repo.blobs.get(desc.digest) == data
    # High level, chunk size odd and an iterable source.
    stream = [data[i:i + 1000] for i in range(0, len(data), 1000)]
    desc2 = make_client(registry.address).repo(repo_name + "-b").blobs.upload(iter(stream), chunk_size=777)
    assert desc2.digest == Digest.of(data)


def test_upload_status_and_cancel(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    session = repo.uploads.start()
    assert repo.uploads.status(session).offset == 0
    session = repo.uploads.patch(session, b"12345", length=5)
    assert repo.uploads.status(session).offset == 5
    assert repo.uploads.cancel(session) is None
    with pytest.raises(NotFoundError) as err:
        repo.uploads.status(session)
    assert err.value.code == "BLOB_UPLOAD_UNKNOWN"


def test_mount_from_other_repo(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    client = make_client(registry.address)
    src, dst = client.repo(repo_name + "-src"), client.repo(repo_name + "-dst")
    data = b"mount me " + repo_name.encode()
    digest = str(src.blobs.upload(data).digest)
    registry.reset_request_count()
    got = dst.blobs.mount(digest, from_repo=repo_name + "-src")
    assert isinstance(got, Descriptor) and got.digest == digest and got.size == len(data)
    assert registry.request_count("POST", "mount=") == 1
    assert dst.blobs.get(digest) == data
    # Unknown source blob: 202, an upload session to push into.
    fallback = dst.blobs.mount(ZERO, from_repo=repo_name + "-src")
    assert isinstance(fallback, UploadSession)
    dst.uploads.cancel(fallback)


def test_tags_and_catalog(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    client = make_client(registry.address)
    repo = client.repo(repo_name)
    _c, _l, manifest = push_image(repo, "b", repo_name)
    for tag in ("a", "c", "1.0"):
        repo.manifests.put(tag, manifest)
    assert sorted(repo.tags.list()) == ["1.0", "a", "b", "c"]
    assert repo_name in client.catalog()
    with pytest.raises(NotFoundError) as err:
        client.repo(repo_name + "-none").tags.list()
    assert err.value.code == "NAME_UNKNOWN"


def test_referrers_fallback_empty(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    """Distribution 2.8 has no referrers API (plain-text 404): the fallback tag is absent → []."""
    repo = make_client(registry.address).repo(repo_name)
    _c, _l, manifest = push_image(repo, "v1", repo_name)
    assert repo.referrers.list(str(Digest.of(manifest))) == []
    assert repo.referrers.api_supported is False


def test_referrers_fallback_tag(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    _c, _l, manifest = push_image(repo, "v1", repo_name)
    subject = str(Digest.of(manifest))
    empty = b"{}"
    repo.blobs.upload(empty)
    art = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": "application/x-sig",
        "config": {"mediaType": mt.OCI_EMPTY, "digest": str(Digest.of(empty)), "size": 2}, "layers": [],
        "subject": {"mediaType": mt.OCI_MANIFEST, "digest": subject, "size": len(manifest)},
    }).encode()
    repo.manifests.put(str(Digest.of(art)), art)
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": str(Digest.of(art)), "size": len(art),
         "artifactType": "application/x-sig"}]}).encode()
    repo.manifests.put("sha256-" + subject.split(":")[1], index)
    found = repo.referrers.list(subject)
    assert [d.digest for d in found] == [str(Digest.of(art))]
    assert repo.referrers.list(subject, artifact_type="application/x-other") == []


@pytest.mark.parametrize("bad", ["UPPER/case", "a//b", "-lead", "a/", ""])
def test_invalid_repository_before_request(make_client: MakeClient, registry: LocalRegistry, bad: str) -> None:
    client = make_client(registry.address)
    registry.reset_request_count()
    with pytest.raises(InvalidReferenceError) as err:
        client.repo(bad)
    assert "repository" in str(err.value)
    assert registry.request_count() == 0


@pytest.mark.parametrize(("call", "part"), [
    (lambda r: r.manifests.get("bad tag!"), "tag"),
    (lambda r: r.manifests.get(".dot"), "tag"),
    (lambda r: r.manifests.put("x" * 129, b"{}"), "tag"),
    (lambda r: r.manifests.get("sha256:abc"), "digest"),
    (lambda r: r.blobs.get("sha256:" + "G" * 64), "digest"),
    (lambda r: r.blobs.head("md5"), "digest"),
    (lambda r: r.blobs.delete("sha256:" + "a" * 63), "digest"),
    (lambda r: r.blobs.mount(ZERO, from_repo="Bad/Repo"), "repository"),
    (lambda r: r.uploads.post("nope", b"x"), "digest"),
    (lambda r: r.referrers.list("sha256:zz"), "digest"),
    (lambda r: r.manifests.delete("not a ref"), "tag"),
])
def test_invalid_input_before_request(make_client: MakeClient, registry: LocalRegistry, repo_name: str,
                                      call: Callable[[Any], Any], part: str) -> None:
    repo = make_client(registry.address).repo(repo_name)
    registry.reset_request_count()
    with pytest.raises(InvalidReferenceError) as err:
        call(repo)
    assert part in str(err.value).lower()
    assert registry.request_count() == 0


def test_invalid_registry_and_parse(make_client: MakeClient, registry: LocalRegistry) -> None:
    with pytest.raises(InvalidReferenceError) as err:
        make_client("bad host:x")
    assert "registry" in str(err.value)
    client = make_client(registry.address)
    with pytest.raises(InvalidReferenceError) as err2:
        client.parse("demo/app:bad tag")
    assert "tag" in str(err2.value).lower()
    with pytest.raises(InvalidReferenceError) as err3:
        client.parse("other.example.com/demo/app:1")
    assert "other.example.com" in str(err3.value)


def test_base_url_schemes() -> None:
    assert AsyncClient("127.0.0.1:5000").base_url == "http://127.0.0.1:5000"
    assert AsyncClient("localhost:5000").base_url == "http://localhost:5000"
    assert AsyncClient("[::1]:5000").base_url == "http://[::1]:5000"
    assert AsyncClient("ghcr.io").base_url == "https://ghcr.io"
    assert AsyncClient("docker.io").base_url == "https://registry-1.docker.io"
    assert AsyncClient("registry.example.com:5000", insecure=True).base_url == "http://registry.example.com:5000"
    assert AsyncClient("localhost:5000", insecure=False).base_url == "https://localhost:5000"


@pytest.mark.parametrize(("total", "page"), [(7, 3), (6, 3), (5, 10), (1, 1)])
def test_tag_pagination_follows_link(make_client: MakeClient, total: int, page: int) -> None:
    """The fake is needed: distribution 2.8 ignores ``n``/``last`` and never sends ``Link``."""
    with FakeRegistry(tag_page_size=page) as fake:
        digest = fake.put_manifest("p/r", "seed", {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []})
        tags = [*sorted(f"t{i:02d}" for i in range(total - 1)), "seed"]
        for tag in tags:
            fake.put_manifest("p/r", tag, fake.get_manifest("p/r", digest)[0])
        repo = make_client(fake.address).repo("p/r")
        fake.reset_log()
        assert repo.tags.list() == sorted(tags)
        assert fake.count("GET", "/v2/p/r/tags/list") == math.ceil(total / page)
        fake.reset_log()
        assert repo.tags.list(n=2) == sorted(tags)
        first = fake.requests[0]
        assert first.param("n") == "2"
        assert fake.count("GET", "/v2/p/r/tags/list") == math.ceil(total / 2)


def test_tag_pagination_n_last_and_zero(make_client: MakeClient) -> None:
    """The fake is needed for a spec-compliant ``n``/``last``/``Link`` server."""
    with FakeRegistry(tag_page_size=2) as fake:
        raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}).encode()
        for tag in ("a", "b", "c", "d", "e"):
            fake.put_manifest("p/r", tag, raw)
        repo = make_client(fake.address).repo("p/r")
        fake.reset_log()
        assert repo.tags.list(last="b") == ["c", "d", "e"]
        assert fake.requests[0].param("last") == "b"
        assert [list(p) for p in repo.tags.pages(n=2, last="a")] == [["b", "c"], ["d", "e"]]
        fake.reset_log()
        assert repo.tags.list(n=0) == []
        assert fake.count("GET") == 1 and fake.requests[0].param("n") == "0"
        with pytest.raises(ValueError):
            repo.tags.list(n=-1)


@pytest.fixture
def own_registry() -> Iterator[LocalRegistry]:
    """A real registry of the test's own, so its catalog holds only what the test pushed."""
    reg = LocalRegistry()
    try:
        yield reg.start()
    finally:
        reg.stop()


def test_catalog_pagination(make_client: MakeClient, own_registry: LocalRegistry) -> None:
    """Distribution 2.8 pages the catalog with ``Link`` when ``n`` is given (and sends it all without ``n``)."""
    names = [f"r/n{i}" for i in range(5)]
    client = make_client(own_registry.address)
    seen = 0

    def catalog_requests() -> list[str]:
        """The catalog requests the registry served since the last call."""
        nonlocal seen
        log = own_registry.access_log()
        fresh, seen = log[seen:], len(log)
        return [e.path for e in fresh if e.method == "GET" and e.path.startswith("/v2/_catalog")]

    for name in names:
        client.repo(name).blobs.upload(name.encode())
    catalog_requests()
    assert client.catalog(n=2) == names
    pages = catalog_requests()
    assert len(pages) == 3  # [n0 n1] [n2 n3] [n4]: the last page is short and has no Link
    assert "n=2" in pages[0] and "last=" not in pages[0]
    assert all("last=r%2Fn" in page or "last=r/n" in page for page in pages[1:]), pages
    assert client.catalog(n=3, last="r/n0") == names[1:]
    pages = catalog_requests()
    assert len(pages) == 2 and "n=3" in pages[0] and ("last=r%2Fn0" in pages[0] or "last=r/n0" in pages[0])
    assert client.catalog(n=0) == []
    assert len(catalog_requests()) == 1
    assert client.catalog() == names
    assert len(catalog_requests()) == 1


def test_retry_429_with_retry_after(make_client: MakeClient) -> None:
    """The fake is needed for fault injection."""
    with FakeRegistry() as fake:
        fake.put_blob("r/a", b"data")
        repo = make_client(fake.address).repo("r/a")
        repo.blobs.exists(str(Digest.of(b"data")))
        fake.reset_log()
        fake.fail_next(1, 429, retry_after=0)
        assert repo.blobs.get(str(Digest.of(b"data"))) == b"data"
        assert fake.count("GET", "/v2/r/a/blobs/") == 2
        fake.reset_log()
        fake.fail_next(1, 503, retry_after=1)
        assert repo.tags.list() == []
        assert fake.count("GET", "/v2/r/a/tags/list") == 2
        fake.reset_log()
        fake.fail_next(1, 500, body="<html>oops</html>")
        assert repo.blobs.head(str(Digest.of(b"data"))).size == 4
        assert fake.count("HEAD") == 2


def test_retry_budget_exhausted(make_client: MakeClient) -> None:
    """The fake is needed for fault injection; the client's retry budget is 2 (3 attempts)."""
    with FakeRegistry() as fake:
        client = make_client(fake.address)
        repo = client.repo("r/a")
        client.ping()
        fake.reset_log()
        fake.fail_next(10, 429, retry_after=0)
        with pytest.raises(TooManyRequestsError) as err:
            repo.tags.list()
        assert err.value.status == 429 and "429" in str(err.value) and err.value.code == "TOOMANYREQUESTS"
        assert fake.count("GET") == 3
        fake.clear_faults()
        fake.fail_next(10, 500, body="plain text failure")
        with pytest.raises(ServerError) as err5:
            repo.tags.list()
        assert err5.value.status == 500 and "500" in str(err5.value)
        assert "plain text failure" in str(err5.value)
        fake.clear_faults()


def test_warning_and_rate_limit(make_client: MakeClient) -> None:
    """The fake is needed: distribution sends neither ``Warning`` nor rate-limit headers."""
    with FakeRegistry(warning="this registry is deprecated", ratelimit=(100, 50)) as fake:
        fake.put_manifest("r/a", "v1", {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []})
        client = make_client(fake.address)
        client.ping()
        client.catalog()
        client.repo("r/a").manifests.get("v1")
        assert client.warnings == ['299 - "this registry is deprecated"']
        assert client.rate_limit.limit == 100
        assert client.rate_limit.remaining == 49
        assert client.rate_limit.window_seconds == 21600


def test_upload_status_one_byte(make_client: MakeClient, registry: LocalRegistry, repo_name: str) -> None:
    """Distribution reports both an empty and a one-byte upload as ``Range: 0-0``: the client must not lose a byte."""
    repo = make_client(registry.address).repo(repo_name)
    session = repo.uploads.patch(repo.uploads.start(), b"Z", length=1)
    assert session.offset == 1
    status = repo.uploads.status(session)
    assert status.offset == 1
    session = repo.uploads.patch(status, b"YX", length=2)
    assert repo.uploads.finish(session, str(Digest.of(b"ZYX"))).size == 3
    assert repo.blobs.get(str(Digest.of(b"ZYX"))) == b"ZYX"


def test_upload_patch_infers_length_from_bytes(make_client: MakeClient, registry: LocalRegistry,
                                               repo_name: str) -> None:
    """``uploads.patch(session, chunk)`` takes its length from bytes, as ``finish`` does; a streamed chunk
    must say ``length=``, and a wrong length is refused before anything is sent."""
    repo = make_client(registry.address).repo(repo_name)
    first, second, third = b"bytes know their size ", b"so do these ", b"but a stream must say"

    def streamed(data: bytes) -> Callable[[], AsyncIterable[bytes]]:
        async def gen() -> AsyncIterable[bytes]:
            yield data[:5]
            yield data[5:]
        return gen

    session = repo.uploads.patch(repo.uploads.start(), first)
    assert session.offset == len(first)
    session = repo.uploads.patch(session, second, length=len(second))
    assert repo.uploads.status(session).offset == len(first) + len(second)
    with pytest.raises(TypeError, match="length="):
        repo.uploads.patch(session, streamed(third))
    with pytest.raises(ValueError, match="length=3 but the chunk holds"):
        repo.uploads.patch(session, third, length=3)
    assert repo.uploads.status(session).offset == len(first) + len(second)  # the refused calls sent nothing
    assert registry.request_count("PATCH", f"/v2/{repo_name}/blobs/uploads/") == 2
    session = repo.uploads.patch(session, streamed(third), length=len(third))
    data = first + second + third
    desc = repo.uploads.finish(session, "sha256:" + hashlib.sha256(data).hexdigest())
    assert desc.size == len(data)
    assert repo.blobs.get(desc.digest) == data


def test_referrers_native_api_survives_unknown_repo(make_client: MakeClient) -> None:
    """The fake is needed for the native referrers API. A JSON ``NAME_UNKNOWN`` 404 for one repository
    says nothing about the API: it must not switch the API off for the whole registry."""
    with FakeRegistry(referrers_api=True) as fake:
        subject_raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}).encode()
        subject = fake.put_manifest("r/a", "v1", subject_raw)
        art = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": "application/x-sig",
               "config": {"mediaType": mt.OCI_EMPTY, "digest": str(Digest.of(b"{}")), "size": 2}, "layers": [],
               "subject": {"mediaType": mt.OCI_INDEX, "digest": subject, "size": len(subject_raw)}}
        art_digest = fake.put_manifest("r/a", str(Digest.of(json.dumps(art).encode())), art)
        client = make_client(fake.address)
        fake.fail_next(1, 404, body=json.dumps({"errors": [{"code": "NAME_UNKNOWN", "message": "no such repo"}]}),
                       headers={"Content-Type": "application/json"},
                       match=lambda method, path: "/referrers/" in path)
        assert client.repo("r/missing").referrers.list(subject) == []
        found = client.repo("r/a").referrers.list(subject)
        assert [d.digest for d in found] == [art_digest]
        assert client.repo("r/a").referrers.api_supported is True
        assert fake.count("GET", "/v2/r/a/referrers/") == 1
