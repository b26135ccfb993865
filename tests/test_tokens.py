"""Bearer tokens: expiry mid-session is refreshed transparently; ``insufficient_scope`` widens once, never loops.

The real ``token_registry`` shows client-side expiry (short ``expires_in``) and a refused push scope.
Server-side revocation while the client still trusts its token (``expire_tokens``) and a registry that asks
for a wider scope than requested need tests/_fakeregistry.py: distribution 2.8 allows 60 s of leeway and
always names exactly the scope the request needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _fakeregistry import OCI_MANIFEST, FakeRegistry
from _tokenserver import TokenServer

import ocinb
from ocinb.cache import ContentCache
from ocinb.errors import OcinbError, UnauthorizedError
from ocinb.testing import LocalRegistry

USER, PASSWORD = "alice", "tok-pass-123"


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    """FakeRegistry with bearer auth served by its own /token endpoint (Basic credentials required there)."""
    reg = FakeRegistry(basic_auth=(USER, PASSWORD), bearer={"expires_in": 300})
    cfg = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    cdigest = reg.put_blob("team/app", cfg)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": len(cfg)},
           "layers": []}
    reg.put_manifest("team/app", "v1", doc)
    yield reg
    reg.stop()


def _client(address: str, tmp_path: Path, user: str = USER, password: str = PASSWORD) -> ocinb.AsyncClient:
    return ocinb.AsyncClient(address, username=user, password=password, docker_config=False, environment=False,
                             cache=ContentCache(tmp_path / "cache"))


def test_token_expiring_client_side_is_refreshed(
    token_registry: LocalRegistry, token_server: TokenServer, basic_credentials: tuple[str, str],
    repo_name: str, tmp_path: Path,
) -> None:
    """Tokens living 2 s: 6 calls spread over ~5 s all succeed, fetching a fresh token as each one ages out."""
    user, password = basic_credentials
    saved = token_server.expires_in
    token_server.expires_in = 2
    try:
        async def run() -> tuple[int, int]:
            async with _client(token_registry.address, tmp_path, user, password) as c:
                repo = c.repo(repo_name)
                await repo.push_image("v1", {"architecture": "amd64", "os": "linux",
                                             "rootfs": {"type": "layers", "diff_ids": []}}, [])
                start = c._core.auth.token_requests
                ok = 0
                for _ in range(6):
                    await repo.manifests.get("v1")
                    ok += 1
                    await asyncio.sleep(0.9)
                return ok, c._core.auth.token_requests - start

        ok, fetched = asyncio.run(run())
    finally:
        token_server.expires_in = saved
    print(f"{ok}/6 calls over ~5.4 s succeeded with 2 s tokens, {fetched} token refreshes")
    assert ok == 6
    assert 2 <= fetched <= 6


def test_token_revoked_server_side_is_refreshed_once(fake: FakeRegistry, tmp_path: Path) -> None:
    """``expire_tokens()`` mid-session: the next call gets 401 invalid_token, fetches 1 token, succeeds."""

    async def run() -> tuple[int, int, int]:
        async with _client(fake.address, tmp_path) as c:
            repo = c.repo("team/app")
            await repo.manifests.get("v1")
            tokens_before = fake.count("GET", "/token")
            fake.expire_tokens()
            fake.reset_log()
            m = await repo.manifests.get("v1")
            assert m.as_manifest().config.size > 0
            return tokens_before, fake.count("GET", "/token"), fake.count("GET", "/v2/team/app/manifests/v1")

    before, refetched, gets = asyncio.run(run())
    print(f"after revocation: {refetched} token fetch, {gets} manifest GETs (1 refused + 1 ok)")
    assert before == 1
    assert refetched == 1
    assert gets == 2


def test_insufficient_scope_rechallenges_once_for_the_wider_scope(fake: FakeRegistry, tmp_path: Path) -> None:
    """A 401 ``insufficient_scope`` naming ``pull,push`` makes exactly one re-challenge with that scope."""
    wider = 'Bearer realm="%s/token",service="fake",scope="repository:team/app:pull,push",error="insufficient_scope"'

    async def run() -> tuple[list[str], int]:
        async with _client(fake.address, tmp_path) as c:
            repo = c.repo("team/app")
            await repo.manifests.get("v1")
            fake.reset_log()
            fake.fail_next(1, 401, headers={"WWW-Authenticate": wider % fake.url},
                           match=lambda m, p: p.endswith("/manifests/v1"))
            await repo.manifests.get("v1")
            scopes = [r.param("scope") or "" for r in fake.requests if r.path == "/token"]
            return scopes, fake.count("GET", "/v2/team/app/manifests/v1")

    scopes, gets = asyncio.run(run())
    print(f"insufficient_scope: {len(scopes)} re-challenge(s) for {scopes}, {gets} manifest GETs")
    assert scopes == ["repository:team/app:pull,push"]
    assert gets == 2


def test_insufficient_scope_forever_is_not_a_loop(fake: FakeRegistry, tmp_path: Path) -> None:
    """A registry that answers ``insufficient_scope`` to every token: 1 re-challenge, then an auth error."""
    wider = 'Bearer realm="%s/token",service="fake",scope="repository:team/app:pull,push",error="insufficient_scope"'

    async def run() -> tuple[OcinbError, int, int, float]:
        async with _client(fake.address, tmp_path) as c:
            repo = c.repo("team/app")
            await repo.manifests.get("v1")
            fake.reset_log()
            fake.fail_next(50, 401, headers={"WWW-Authenticate": wider % fake.url},
                           match=lambda m, p: p.endswith("/manifests/v1"))
            t0 = time.monotonic()
            with pytest.raises(OcinbError) as info:
                await repo.manifests.get("v1")
            return (info.value, fake.count("GET", "/token"), fake.count("GET", "/v2/team/app/manifests/v1"),
                    time.monotonic() - t0)

    err, tokens, gets, elapsed = asyncio.run(run())
    print(f"endless insufficient_scope: {gets} GETs, {tokens} token fetch, {elapsed:.2f}s, then {err}")
    assert isinstance(err, UnauthorizedError | ocinb.errors.DeniedError)
    assert "insufficient_scope" in str(err)
    assert tokens == 1
    assert gets == 2
    assert "401" in str(err)


def test_pull_only_user_push_is_refused_without_a_loop(
    token_registry: LocalRegistry, token_server: TokenServer, repo_name: str, tmp_path: Path
) -> None:
    """Real registry, user ``reader`` (pull only) pushing: a bounded number of requests, then an auth error."""
    from conftest import READER

    token_registry.reset_request_count()
    before = len(token_server.requests)

    async def run() -> OcinbError:
        async with _client(token_registry.address, tmp_path, *READER) as c:
            with pytest.raises(OcinbError) as info:
                await c.repo(repo_name).blobs.upload(b"not allowed" * 100)
            return info.value

    err = asyncio.run(run())
    token_calls = len(token_server.requests) - before
    posts = token_registry.request_count("POST", "/blobs/uploads")
    print(f"reader push refused after {posts} POSTs and {token_calls} token requests: {type(err).__name__}: {err}")
    assert isinstance(err, UnauthorizedError | ocinb.errors.DeniedError)
    assert posts <= 2
    assert token_calls <= 3
