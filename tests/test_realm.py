"""The token realm is checked before credentials go there (issue 11, item 3).

Refused whoever asks: link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata endpoints
(169.254.169.254, fd00:ec2::254, metadata.google.internal). Loopback realms only from a registry on
loopback; plain-HTTP realms only there, or with ``insecure=True``. The real registry names a metadata
realm below; the other cases need a registry on a non-loopback host, which only an in-process fake
(httpx.MockTransport) can be here, since tests bind 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from _tokenserver import TokenServer
from conftest import ALICE, _start

import ocinb
from ocinb import Credentials, HttpCore
from ocinb.errors import OcinbError, RealmRefusedError, UnauthorizedError
from ocinb.testing import LocalRegistry

PASSWORD = "realm-Pa55-never-sent"
BASIC = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()


def _ping(registry: str, realm: str, *, insecure: bool | None = None,
          credentials: Credentials | None = None) -> tuple[list[httpx.Request], BaseException | None]:
    """GET /v2/ on ``registry``, whose challenge names ``realm``; every request sent, and what was raised."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path == "/v2/":
            if request.headers.get("authorization") == "Bearer t0ken":
                return httpx.Response(200, json={})
            return httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="svc"'})
        return httpx.Response(200, json={"token": "t0ken", "expires_in": 300})

    async def go() -> BaseException | None:
        core = HttpCore(registry, credentials=credentials or Credentials("alice", PASSWORD), insecure=insecure,
                        transport=httpx.MockTransport(handler))
        try:
            await core.request("GET", "/v2/")
        except Exception as exc:  # the test inspects it
            return exc
        finally:
            await core.aclose()
        return None

    return sent, asyncio.run(go())


REFUSED = [
    ("registry.example", None, "http://169.254.169.254/latest/api/token", "cloud metadata"),
    ("registry.example", True, "https://169.254.169.254/token", "cloud metadata"),
    ("127.0.0.1:5000", True, "http://169.254.169.254/token", "cloud metadata"),
    ("registry.example", None, "https://169.254.10.20/token", "link-local"),
    ("registry.example", None, "https://[fe80::1]/token", "link-local"),
    ("registry.example", None, "https://[fe80::a:b%25eth0]:8443/token", "link-local"),
    ("registry.example", None, "https://[fd00:ec2::254]/token", "AWS IPv6 metadata"),
    ("registry.example", None, "https://[::ffff:169.254.169.254]/token", "cloud metadata"),
    ("registry.example", None, "http://2852039166/token", "cloud metadata"),  # 169.254.169.254 as one number
    ("registry.example", None, "https://metadata.google.internal/computeMetadata/v1/token", "GCP metadata"),
    ("registry.example", None, "http://127.0.0.1:8080/token", "loopback"),  # accepted before the fix
    ("registry.example", True, "http://localhost/token", "loopback"),
    ("registry.example", None, "https://[::1]/token", "loopback"),
    ("registry.example", None, "https://127.1/token", "loopback"),
    ("registry.example", None, "https://0.0.0.0/token", "loopback"),
    ("registry.example", None, "http://auth.example/token", "not https"),
    ("127.0.0.1:5000", None, "http://auth.example/token", "not https"),
    ("registry.example", None, "ftp://auth.example/token", "not an http(s) URL"),
]

ALLOWED = [
    ("registry.example", None, "https://auth.example/token"),
    ("registry.example", True, "http://auth.example/token"),
    ("registry.example", None, "https://10.1.2.3/token"),  # private networks are where corporate realms live
    ("127.0.0.1:5000", None, "http://127.0.0.1:9999/token"),
    ("localhost:5000", None, "https://[::1]:9999/token"),
    ("127.0.0.1:5000", None, "https://auth.example/token"),
]


@pytest.mark.parametrize(("registry", "insecure", "realm", "why"), REFUSED)
def test_refused(registry: str, insecure: bool | None, realm: str, why: str) -> None:
    sent, exc = _ping(registry, realm, insecure=insecure)
    assert isinstance(exc, RealmRefusedError), exc
    assert isinstance(exc, UnauthorizedError) and isinstance(exc, OcinbError)
    text = str(exc)
    assert why in text and "refusing to send credentials to the token realm" in text, text
    assert PASSWORD not in f"{text} {exc!r}"
    assert [r.url.path for r in sent] == ["/v2/"]  # the challenge only: nothing went to the realm
    assert all(r.url.host == httpx.URL(f"//{registry}").host for r in sent)


@pytest.mark.parametrize(("registry", "insecure", "realm"), ALLOWED)
def test_allowed(registry: str, insecure: bool | None, realm: str) -> None:
    sent, exc = _ping(registry, realm, insecure=insecure)
    assert exc is None, exc
    to_realm = [r for r in sent if r.url.path != "/v2/"]
    assert [str(r.url).split("?")[0] for r in to_realm] == [realm]
    assert to_realm[0].headers["authorization"] == BASIC
    assert sent[-1].url.path == "/v2/" and sent[-1].headers["authorization"] == "Bearer t0ken"


def test_refresh_token_not_posted_to_metadata() -> None:
    """The OAuth2 POST of an identity token is checked the same way, before it is sent."""
    sent, exc = _ping("registry.example", "http://169.254.169.254/token",
                      credentials=Credentials(identity_token="refresh-Secret-42"))
    assert isinstance(exc, RealmRefusedError) and "refresh-Secret-42" not in str(exc)
    assert [r.method for r in sent] == ["GET"]


@pytest.fixture(scope="module")
def metadata_realm_registry(token_server: TokenServer) -> Iterator[LocalRegistry]:
    """The real registry, configured to name the cloud metadata address as its token realm."""
    reg = _start(LocalRegistry(token_auth=dataclasses.replace(token_server.settings(),
                                                              realm="http://169.254.169.254/latest/token")))
    yield reg
    reg.stop()


def test_real_registry_naming_metadata_realm(metadata_realm_registry: LocalRegistry,
                                             token_server: TokenServer) -> None:
    """Refused before any connection: a connect to 169.254.169.254 would fail as a TransportError instead."""
    user, password = ALICE
    before = len(token_server.requests)
    with ocinb.Client(metadata_realm_registry.address, username=user, password=password, docker_config=False,
                      environment=False) as client, pytest.raises(RealmRefusedError) as err:
        client.ping()
    assert "169.254.169.254 is the cloud metadata address" in str(err.value)
    assert password not in str(err.value)
    assert len(token_server.requests) == before
