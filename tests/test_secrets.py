"""Redirects and secrets: ``Authorization`` never follows a redirect to another host, and no password,
token or signed-URL secret appears in any repr, str, log record, exception or HTML produced.

The redirect to blob storage on another loopback host (127.0.0.2) needs tests/_fakeregistry.py
(FakeRegistry ``redirect_blobs_to`` + BlobMirror): the CNCF registry with filesystem storage never
redirects. The real ``basic_registry`` and ``token_registry`` are used for the rest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fakeregistry import BlobMirror, FakeRegistry
from _grep_secrets import FAST_RETRY, basic_forms, debug_logging, leaks, render_records
from _tokenserver import TokenServer

import ocinb
from ocinb.cache import ContentCache
from ocinb.errors import OcinbError
from ocinb.testing import LocalRegistry

USER = "alice"
PASSWORD = "p4ss-W0rd-Never-Shown-7319"
SIG = "sig=abc"  # the pre-signed query FakeRegistry puts on its redirect; a secret by convention


@pytest.fixture
def mirror_registry(request: pytest.FixtureRequest) -> Iterator[tuple[FakeRegistry, BlobMirror]]:
    """A FakeRegistry whose blob GETs redirect (307) to a BlobMirror on 127.0.0.2; auth per ``param``."""
    kind = getattr(request, "param", "basic")
    reg = FakeRegistry(basic_auth=(USER, PASSWORD), bearer={"expires_in": 300} if kind == "bearer" else None)
    mirror = BlobMirror(reg)
    reg.redirect_blobs_to = mirror.url
    yield reg, mirror
    mirror.stop()
    reg.stop()


def _texts_of(*objects: Any) -> list[str]:
    out: list[str] = []
    for obj in objects:
        out += [repr(obj), str(obj)]
        if isinstance(obj, BaseException):
            out += [repr(obj.args), repr(getattr(obj, "__dict__", {}))]
    return out


async def _exercise(client: ocinb.AsyncClient, repo_name: str, tmp_path: Path) -> list[str]:
    """Push, pull, download, fail; return every repr/str/HTML/frame text produced along the way."""
    produced: list[str] = []
    repo = client.repo(repo_name)
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    res = await repo.push_image("v1", config, [b"layer-one" * 500, b"layer-two" * 700],
                                annotations={"org.opencontainers.image.title": "secret test"})
    pulled = await repo.pull("v1", layers=True, dest=tmp_path / "layers")
    m = await repo.get_manifest("v1")
    blob = await repo.blobs.get(pulled.manifest.layers[0].digest)
    assert blob == b"layer-one" * 500
    produced += _texts_of(client, repo, res, pulled, m, client._core, client._core.auth, client.rate_limit)
    produced.append(m._repr_html_())
    view = await client.inspect(f"{repo_name}:v1")
    produced += [view._repr_html_(), repr(view), str(view)]
    for df in (await client.layers(f"{repo_name}:v1"), await client.tags(repo_name, resolve=True)):
        produced += [df.to_string(), df.to_html(), repr(df.attrs)]
    for bad in (repo.manifests.get("nope"), repo.blobs.get("sha256:" + "0" * 64)):
        try:
            await bad
        except OcinbError as exc:
            produced += _texts_of(exc)
        else:
            raise AssertionError("expected a 404")
    return produced


@pytest.mark.parametrize("mirror_registry", ["basic", "bearer"], indirect=True)
def test_redirected_blob_gets_no_authorization_and_nothing_leaks(
    mirror_registry: tuple[FakeRegistry, BlobMirror], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Blob GETs 307 to 127.0.0.2: 0 requests carry ``Authorization`` there; 0 secrets in all output."""
    reg, mirror = mirror_registry
    debug_logging(caplog)

    async def run() -> list[str]:
        async with ocinb.AsyncClient(reg.address, username=USER, password=PASSWORD, docker_config=False,
                                     environment=False, cache=ContentCache(tmp_path / "c"), retry=FAST_RETRY) as c:
            return await _exercise(c, "team/app", tmp_path)

    produced = asyncio.run(run())
    tokens = list(reg._tokens)
    with_auth = [r for r in mirror.requests if "authorization" in r.headers]
    secrets = [*basic_forms(USER, PASSWORD), *tokens, SIG]
    # httpx's own URL logging of the signed query is covered by the next test.
    ours = render_records(r for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    theirs = render_records(r for r in caplog.records if r.name.startswith(("httpx", "httpcore")))
    found = leaks([*produced, *ours], secrets) + leaks(theirs, secrets[:-1])
    print(f"{mirror.count('GET')} GETs redirected to {mirror.host}, {len(with_auth)} with Authorization; "
          f"{len(tokens)} tokens; {len(caplog.records)} log records, {len(produced)} texts, {len(found)} leaks")
    assert mirror.count("GET") >= 3
    assert with_auth == []
    assert reg.bearer is None or tokens
    assert found == [], found[:3]


def test_signed_redirect_query_not_in_httpx_logs(
    mirror_registry: tuple[FakeRegistry, BlobMirror], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pre-signed blob URL's signature never reaches a log record, httpx's included."""
    reg, _ = mirror_registry
    digest = reg.put_blob("team/app", b"x" * 1000)
    debug_logging(caplog)

    async def run() -> bytes:
        async with ocinb.AsyncClient(reg.address, username=USER, password=PASSWORD, docker_config=False,
                                     environment=False, cache=ContentCache(tmp_path / "c")) as c:
            return await c.repo("team/app").blobs.get(digest)

    assert asyncio.run(run()) == b"x" * 1000
    found = leaks(render_records(caplog.records), [SIG])
    print(f"{len(found)} log records hold the signed query")
    assert found == []


def test_basic_registry_wrong_and_right_password_never_shown(
    basic_registry: LocalRegistry, basic_credentials: tuple[str, str], repo_name: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Real htpasswd registry: a refused password and an accepted one both stay out of every output."""
    user, password = basic_credentials
    wrong = "Wrong-Pass-Never-Shown-1234"
    debug_logging(caplog)

    async def run() -> list[str]:
        produced: list[str] = []
        kw: dict[str, Any] = {"docker_config": False, "environment": False, "cache": ContentCache(tmp_path / "c")}
        async with ocinb.AsyncClient(basic_registry.address, username=user, password=wrong, **kw) as bad:
            with pytest.raises(OcinbError) as info:
                await bad.repo(repo_name).tags.list()
            produced += _texts_of(info.value, bad, bad._core, bad._core.auth)
        async with ocinb.AsyncClient(basic_registry.address, username=user, password=password, **kw) as good:
            produced += await _exercise(good, repo_name, tmp_path)
        return produced

    produced = asyncio.run(run())
    sync = ocinb.Client(basic_registry.address, username=user, password=password, docker_config=False,
                        environment=False, cache=ContentCache(tmp_path / "s"))
    try:
        produced += [repr(sync), str(sync), repr(sync.repo(repo_name)), repr(sync.aio)]
        produced += [json.dumps(sync.repo(repo_name).tags.list())]
    finally:
        sync.close()
    found = leaks([*produced, *render_records(caplog.records)], [*basic_forms(user, password),
                                                                 *basic_forms(user, wrong)])
    print(f"basic auth: {len(produced)} texts and {len(caplog.records)} log records, {len(found)} leaks")
    assert found == [], found[:3]


def test_token_registry_tokens_never_shown(
    token_registry: LocalRegistry, token_server: TokenServer, basic_credentials: tuple[str, str], repo_name: str,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Real token-auth registry: neither the password nor any issued JWT shows up anywhere."""
    user, password = basic_credentials
    debug_logging(caplog)
    before = len(token_server.issued)

    async def run() -> list[str]:
        async with ocinb.AsyncClient(token_registry.address, username=user, password=password,
                                     docker_config=False, environment=False,
                                     cache=ContentCache(tmp_path / "c")) as c:
            return await _exercise(c, repo_name, tmp_path)

    produced = asyncio.run(run())
    tokens = [e["token"] for e in token_server.issued[before:]]
    # Each JWT's signature part alone is a secret too (a header or payload prefix may repeat).
    secrets = [*basic_forms(user, password), *tokens, *(t.rsplit(".", 1)[-1] for t in tokens)]
    found = leaks([*produced, *render_records(caplog.records)], secrets)
    print(f"token auth: {len(tokens)} tokens issued, {len(produced)} texts, "
          f"{len(caplog.records)} log records, {len(found)} leaks")
    assert tokens
    assert found == [], found[:3]


def test_error_from_token_server_does_not_echo_credentials(
    token_registry: LocalRegistry, repo_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A token request refused for bad credentials raises UnauthorizedError without the password in it."""
    debug_logging(caplog)
    wrong = "Token-Wrong-Never-Shown-99"

    async def run() -> OcinbError:
        async with ocinb.AsyncClient(token_registry.address, username="alice", password=wrong,
                                     docker_config=False, environment=False,
                                     cache=ContentCache(tmp_path / "c")) as c:
            with pytest.raises(OcinbError) as info:
                await c.repo(repo_name).tags.list()
            return info.value

    err = asyncio.run(run())
    found = leaks([*_texts_of(err), *render_records(caplog.records)], basic_forms("alice", wrong))
    print(f"refused token request: {type(err).__name__}: {err}; {len(found)} leaks")
    assert isinstance(err, ocinb.errors.UnauthorizedError)
    assert found == []
