"""Authentication against the real registry: htpasswd Basic and token auth, sync and async."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_endpoints as _endpoints
from _fakeregistry import BlobMirror, FakeRegistry, Resp, parse_request, range_response, send_response
from _tokenserver import TokenServer
from conftest import ALICE, READER, _start
from test_endpoints import MakeClient, push_image

from ocinb.cache import ContentCache
from ocinb.client import AsyncClient
from ocinb.digest import Digest
from ocinb.errors import DeniedError, RegistryError, UnauthorizedError
from ocinb.testing import LocalRegistry

mode = _endpoints.mode
make_client = _endpoints.make_client


def token_gets(server: TokenServer) -> list[Any]:
    """The token server's successful requests so far."""
    return [r for r in server.requests if r.status == 200]


@pytest.fixture(scope="module")
def short_token_server() -> Iterator[TokenServer]:
    """A token server with 2-second tokens and no OAuth2 POST support."""
    server = TokenServer(users=dict([ALICE, READER]), expires_in=2, post_supported=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def short_token_registry(short_token_server: TokenServer) -> Iterator[LocalRegistry]:
    """A real registry trusting `short_token_server` (distribution grants 60 s leeway on exp)."""
    reg = _start(LocalRegistry(token_auth=short_token_server.settings()))
    yield reg
    reg.stop()


def test_basic_push_pull(make_client: MakeClient, basic_registry: LocalRegistry, basic_credentials: tuple[str, str],
                         repo_name: str) -> None:
    user, password = basic_credentials
    client = make_client(basic_registry.address, username=user, password=password)
    assert client.ping().auth_scheme == "basic"
    repo = client.repo(repo_name)
    _c, layers, manifest = push_image(repo, "v1", repo_name)
    assert repo.manifests.get("v1").data == manifest
    assert repo.blobs.get(str(Digest.of(layers[0]))) == layers[0]
    assert repo.tags.list() == ["v1"]


def test_basic_without_credentials(make_client: MakeClient, basic_registry: LocalRegistry, repo_name: str) -> None:
    client = make_client(basic_registry.address)
    with pytest.raises(UnauthorizedError) as err:
        client.repo(repo_name).tags.list()
    assert err.value.status == 401 and err.value.code == "UNAUTHORIZED"
    with pytest.raises(UnauthorizedError):
        client.ping()


def test_basic_wrong_password_not_leaked(make_client: MakeClient, basic_registry: LocalRegistry,
                                         repo_name: str) -> None:
    secret = "Wr0ng-Passw0rd-XYZZY"
    client = make_client(basic_registry.address, username="alice", password=secret)
    basic_registry.reset_request_count()
    with pytest.raises(UnauthorizedError) as err:
        client.repo(repo_name).tags.list()
    exc = err.value
    for text in (str(exc), repr(exc), str(exc.headers), repr(client), repr(client.aio) if hasattr(client, "aio")
                 else ""):
        assert secret not in text
    # One anonymous try, one with the (refused) credentials: no loop.
    assert basic_registry.request_count("GET", "/tags/list") == 2


def test_token_push_pull_and_cache(make_client: MakeClient, token_registry: LocalRegistry,
                                   token_server: TokenServer, repo_name: str) -> None:
    user, password = ALICE
    client = make_client(token_registry.address, username=user, password=password)
    repo = client.repo(repo_name)
    _c, layers, manifest = push_image(repo, "v1", repo_name)
    repo = make_client(token_registry.address, username=user, password=password).repo(repo_name)
    token_server.clear()
    for _ in range(5):
        assert repo.tags.list() == ["v1"]
        assert repo.manifests.get("v1").data == manifest
        assert repo.blobs.get(str(Digest.of(layers[0]))) == layers[0]
    fetched = token_gets(token_server)
    assert len(fetched) == 1, [r.scopes for r in fetched]
    assert fetched[0].scopes == [f"repository:{repo_name}:pull"]
    assert fetched[0].basic_auth and fetched[0].username == "alice"
    # More pushes to the same repo reuse the push token.
    token_server.clear()
    repo.blobs.upload(b"another " + repo_name.encode())
    repo.blobs.upload(b"and another " + repo_name.encode())
    assert len(token_gets(token_server)) == 1
    assert token_gets(token_server)[0].scopes == [f"repository:{repo_name}:pull,push"]


def test_token_reader_cannot_push(make_client: MakeClient, token_registry: LocalRegistry,
                                  token_server: TokenServer, repo_name: str) -> None:
    user, password = READER
    client = make_client(token_registry.address, username=user, password=password)
    repo = client.repo(repo_name)
    client.ping()
    token_registry.reset_request_count()
    token_server.clear()
    with pytest.raises((DeniedError, UnauthorizedError)) as err:
        repo.uploads.start()
    assert isinstance(err.value, DeniedError) and err.value.status == 401
    assert "insufficient_scope" in str(err.value) and f"repository:{repo_name}:pull,push" in str(err.value)
    # The challenge was known from the ping: one token, one refused POST, no retry loop.
    assert token_registry.request_count("POST", "/blobs/uploads/") == 1
    assert len(token_server.requests) == 1
    # A fresh client: anonymous POST → challenge → token → refused POST; then it stops.
    fresh = make_client(token_registry.address, username=user, password=password).repo(repo_name)
    token_registry.reset_request_count()
    token_server.clear()
    with pytest.raises(DeniedError):
        fresh.uploads.start()
    assert token_registry.request_count("POST", "/blobs/uploads/") == 2
    assert len(token_server.requests) == 1
    # Pulling is still allowed for the reader.
    assert fresh.blobs.exists("sha256:" + "0" * 64) is False


def test_token_mount_scopes(make_client: MakeClient, token_registry: LocalRegistry, token_server: TokenServer,
                            repo_name: str) -> None:
    user, password = ALICE
    client = make_client(token_registry.address, username=user, password=password)
    src, dst = f"{repo_name}-src", f"{repo_name}-dst"
    data = b"mount with tokens " + repo_name.encode()
    digest = str(client.repo(src).blobs.upload(data).digest)
    token_server.clear()
    mounted = client.repo(dst).blobs.mount(digest, from_repo=src)
    assert mounted.digest == digest
    scope_params = [[v for k, v in r.query if k == "scope"] for r in token_gets(token_server)]
    assert any(f"repository:{dst}:pull,push" in p and f"repository:{src}:pull" in p for p in scope_params), \
        scope_params
    assert client.repo(dst).blobs.get(digest) == data


def test_token_catalog_scope(make_client: MakeClient, token_registry: LocalRegistry, token_server: TokenServer,
                             repo_name: str) -> None:
    user, password = ALICE
    client = make_client(token_registry.address, username=user, password=password)
    push_image(client.repo(repo_name), "v1", repo_name)
    token_server.clear()
    assert repo_name in client.catalog()
    assert [r.scopes for r in token_gets(token_server)] == [["registry:catalog:*"]]


def test_token_anonymous_refused(make_client: MakeClient, token_registry: LocalRegistry, repo_name: str) -> None:
    client = make_client(token_registry.address)
    with pytest.raises(UnauthorizedError):
        client.repo(repo_name).tags.list()


def test_token_wrong_password(make_client: MakeClient, token_registry: LocalRegistry, repo_name: str) -> None:
    secret = "not-alices-Password-77"
    client = make_client(token_registry.address, username="alice", password=secret)
    with pytest.raises(UnauthorizedError) as err:
        client.repo(repo_name).tags.list()
    assert secret not in str(err.value) and secret not in repr(err.value)


def test_oauth2_refresh_token_post(make_client: MakeClient, token_registry: LocalRegistry,
                                   token_server: TokenServer, repo_name: str) -> None:
    refresh = token_server.new_refresh_token("alice")
    client = make_client(token_registry.address, token=refresh)
    repo = client.repo(repo_name)
    token_server.clear()
    _c, _l, manifest = push_image(repo, "v1", repo_name)
    assert repo.manifests.get("v1").data == manifest
    methods = {(r.method, r.grant_type) for r in token_server.requests}
    assert methods == {("POST", "refresh_token")}
    assert all(r.status == 200 for r in token_server.requests)
    assert refresh not in repr(client)


def test_oauth2_falls_back_to_get(make_client: MakeClient, short_token_registry: LocalRegistry,
                                  short_token_server: TokenServer, repo_name: str) -> None:
    """The token server answers POST with 404: the client uses GET with its Basic credentials."""
    refresh = short_token_server.new_refresh_token("alice")
    user, password = ALICE
    client = make_client(short_token_registry.address, username=user, password=password, token=refresh)
    short_token_server.clear()
    push_image(client.repo(repo_name), "v1", repo_name)
    posts = [r for r in short_token_server.requests if r.method == "POST"]
    gets = [r for r in short_token_server.requests if r.method == "GET"]
    assert gets and all(r.status == 200 for r in gets)
    assert all(r.status == 404 for r in posts)
    assert len(posts) == 1, "a realm that refused POST once is not asked again"
    assert len(gets) >= 2  # pull and push scopes


def test_short_lived_token_refreshed(make_client: MakeClient, short_token_registry: LocalRegistry,
                                     short_token_server: TokenServer, repo_name: str) -> None:
    user, password = ALICE
    client = make_client(short_token_registry.address, username=user, password=password)
    push_image(client.repo(repo_name), "v1", repo_name)
    repo = make_client(short_token_registry.address, username=user, password=password).repo(repo_name)
    short_token_server.clear()
    repo.tags.list()
    repo.tags.list()
    assert len(token_gets(short_token_server)) == 1
    time.sleep(2.1)
    repo.tags.list()
    assert len(token_gets(short_token_server)) == 2


@pytest.mark.parametrize("mirror_host", ["127.0.0.2", "127.0.0.1"], ids=["other-host", "same-host-other-port"])
@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_redirect_drops_authorization(make_client: MakeClient, scheme: str, mirror_host: str) -> None:
    """The fake is needed: distribution's filesystem driver never redirects blob GETs. Storage on another
    host, or on the registry's own host at another port, is another origin: no Authorization goes there."""
    kwargs: dict[str, Any] = {"basic_auth": ("u", "p")} if scheme == "basic" else {"bearer": {"service": "fake"}}
    with FakeRegistry(**kwargs) as fake, BlobMirror(fake, host=mirror_host) as mirror:
        if mirror_host == "127.0.0.1":
            assert mirror.host == fake.host and mirror.port != fake.port
        fake.redirect_blobs_to = mirror.url
        data = b"redirected blob bytes"
        digest = fake.put_blob("r/a", data)
        client = make_client(fake.address, username="u", password="p")
        assert client.repo("r/a").blobs.get(digest) == data
        assert mirror.count("GET") == 1
        assert all("authorization" not in {k.lower() for k in r.headers} for r in mirror.requests)
        sent = [r for r in fake.requests if r.path.startswith("/v2/r/a/blobs/")]
        assert sent and sent[-1].headers.get("Authorization")
        assert client.stats.redirects == 1


def test_registry_error_has_no_credentials(make_client: MakeClient, basic_registry: LocalRegistry) -> None:
    secret = "leaky-Secret-123"
    client = make_client(basic_registry.address, username="alice", password=secret)
    with pytest.raises(RegistryError) as err:
        client.catalog()
    assert secret not in f"{err.value} {err.value!r} {err.value.headers} {err.value.body}"


def test_token_ping_and_streamed_body_after_token(make_client: MakeClient, token_registry: LocalRegistry,
                                                  token_server: TokenServer, repo_name: str,
                                                  tmp_path: Path) -> None:
    """A streamed (file) body is sent once, with the token already in hand: never a 401'd PUT."""
    user, password = ALICE
    client = make_client(token_registry.address, username=user, password=password)
    assert client.ping().auth_scheme == "bearer"
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 4096)  # 1 MiB: POST then a streamed PUT
    token_registry.reset_request_count()
    desc = client.repo(repo_name).blobs.upload(src)
    assert desc.size == src.stat().st_size
    assert token_registry.request_count("PUT", "/blobs/uploads/") == 1
    assert client.repo(repo_name).blobs.get(str(desc.digest)) == src.read_bytes()


def test_expired_token_is_refetched(make_client: MakeClient) -> None:
    """The fake is needed to expire tokens server-side before the client thinks they expire."""
    with FakeRegistry(bearer={"service": "fake", "expires_in": 300}) as fake:
        digest = fake.put_blob("r/a", b"payload")
        client = make_client(fake.address)
        repo = client.repo("r/a")
        assert repo.blobs.get(digest) == b"payload"
        tokens_before = fake.count("GET", "/token")
        fake.expire_tokens()
        fake.reset_log()
        assert repo.blobs.get(digest) == b"payload"
        assert fake.count("GET", "/token") == 1 and tokens_before == 1
        assert fake.count("GET", "/v2/r/a/blobs/") == 2  # refused once (invalid_token), then served


@pytest.fixture(scope="module")
def rotating_token_server() -> Iterator[TokenServer]:
    """A token server that rotates refresh tokens: each refresh grant returns a new one and retires the old."""
    server = TokenServer(users=dict([ALICE]), rotate_refresh_tokens=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rotating_token_registry(rotating_token_server: TokenServer) -> Iterator[LocalRegistry]:
    """A real registry trusting `rotating_token_server`."""
    reg = _start(LocalRegistry(token_auth=rotating_token_server.settings()))
    yield reg
    reg.stop()


def test_refresh_token_rotation(make_client: MakeClient, rotating_token_registry: LocalRegistry,
                                rotating_token_server: TokenServer, repo_name: str) -> None:
    """Each token answer carries the next refresh token and retires the one sent: the client must send the
    newest every time (the retired one is refused), and show none of them."""
    server = rotating_token_server
    first = server.new_refresh_token("alice")
    others = set(server.refresh_tokens) - {first}  # live tokens of earlier tests
    client = make_client(rotating_token_registry.address, token=first)
    server.clear()
    repo = client.repo(repo_name)
    _c, _l, manifest = push_image(repo, "v1", repo_name)  # push scopes
    assert repo.manifests.get("v1").data == manifest
    assert client.catalog()  # registry:catalog:* is one more scope set, so one more grant
    grants = [r for r in server.requests if r.grant_type == "refresh_token"]
    assert len(grants) >= 2 and all(r.status == 200 for r in grants), [(r.scopes, r.status) for r in grants]
    live = set(server.refresh_tokens) - others
    assert first not in live and len(live) == 1
    current = live.pop()
    assert first not in repr(client) and current not in repr(client)
    stale = make_client(rotating_token_registry.address, token=first)
    with pytest.raises(UnauthorizedError) as err:
        stale.repo(repo_name).tags.list()
    assert first not in f"{err.value} {err.value!r}"


def test_refresh_token_rotation_under_concurrent_grants(rotating_token_registry: LocalRegistry,
                                                         rotating_token_server: TokenServer, repo_name: str,
                                                         tmp_path: Path) -> None:
    """Four repositories listed at once need four grants: with rotation, each must be made with the token
    the previous one returned, so concurrent grants may not race on the same refresh token."""
    server = rotating_token_server
    user, password = ALICE
    names = [f"{repo_name}-{i}" for i in range(4)]

    async def run() -> None:
        async with AsyncClient(rotating_token_registry.address, username=user, password=password,
                               docker_config=False, environment=False,
                               cache=ContentCache(tmp_path / "seed")) as seeder:
            for name in names:
                await seeder.repo(name).push_image("v1", {"architecture": "amd64", "os": "linux"}, [name.encode()])
        async with AsyncClient(rotating_token_registry.address, token=server.new_refresh_token("alice"),
                               docker_config=False, environment=False,
                               cache=ContentCache(tmp_path / "cache")) as client:
            server.clear()
            listed = await asyncio.gather(*(client.repo(name).tags.list() for name in names))
            assert listed == [["v1"]] * 4

    asyncio.run(run())
    grants = [r for r in server.requests if r.grant_type == "refresh_token"]
    assert len(grants) == 4 and all(r.status == 200 for r in grants), [r.status for r in grants]


class _DualFakeRegistry(FakeRegistry):
    """FakeRegistry answering TLS and plain HTTP on one port: TLS connections are the registry, plain ones
    stand in for blob storage at ``/blobs/<digest>`` (so an https→http redirect keeps host and port)."""

    def __init__(self, cert: Path, key: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plain_requests: list[Any] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        accept = self._server.get_request

        def get_request() -> tuple[Any, Any]:
            conn, addr = accept()
            if conn.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello
                conn = context.wrap_socket(conn, server_side=True)
            return conn, addr

        self._server.get_request = get_request  # type: ignore[method-assign]

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def handle(self, handler: Any) -> None:
        if isinstance(handler.connection, ssl.SSLSocket):
            super().handle(handler)
            return
        rec = parse_request(handler)
        with self._lock:
            self.plain_requests.append(rec)
        data = self.get_blob(rec.path.removeprefix("/blobs/"))
        send_response(handler, range_response(data, rec.headers.get("Range"), [], "application/octet-stream")
                      if data is not None else Resp(404, b"no such blob\n", [], "text/plain"))


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_to_http_redirect_sends_no_authorization(make_client: MakeClient, tmp_path: Path) -> None:
    """The fake is needed (a TLS registry redirecting blobs). A redirect from https://127.0.0.1:P to
    http://127.0.0.1:P, same host and port, is a downgrade: the Basic credentials are not sent in clear."""
    cert, key = _self_signed(tmp_path)
    fake = _DualFakeRegistry(cert, key, basic_auth=("u", "p-Secret-9"))
    try:
        fake.redirect_blobs_to = f"http://{fake.address}"
        data = b"bytes behind a downgrade"
        digest = fake.put_blob("r/a", data)
        client = make_client(fake.address, username="u", password="p-Secret-9", insecure=False, verify=str(cert))
        assert client.repo("r/a").blobs.get(digest) == data
        assert [r.path for r in fake.plain_requests] == [f"/blobs/{digest}"]
        assert all("authorization" not in {k.lower() for k in r.headers} for r in fake.plain_requests)
        sent = [r for r in fake.requests if r.path.startswith("/v2/r/a/blobs/")]
        assert sent and sent[-1].headers.get("Authorization", "").startswith("Basic ")
    finally:
        fake.stop()
