"""Proxies and CAs from the environment: the pure decision (as curl and requests document it), then Debian's
tinyproxy (with BasicAuth) in front of the real registry, plain HTTP and CONNECT, checked in its own log."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from _tinyproxy import TinyProxy
from _tokenserver import TokenServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import ocinb
from ocinb._http.proxy import ProxyRules, no_proxy_matches, parse_proxy, proxy_for
from ocinb._http.transport import _ssl_context
from ocinb.cache import ContentCache
from ocinb.errors import OcinbError
from ocinb.testing import LocalRegistry

SECRET = "pr0xy-Secret-77"
AUTH = ("squid", SECRET)


# The decision, pure ------------------------------------------------------------------------------------

def test_scheme_variables_and_all_proxy() -> None:
    env = {"HTTPS_PROXY": "http://p-https:3128", "http_proxy": "http://p-http:3128", "ALL_PROXY": "http://p-all:1"}
    assert proxy_for("https://ghcr.io/v2/", env) == "http://p-https:3128"
    assert proxy_for("http://registry.corp/v2/", env) == "http://p-http:3128"
    assert proxy_for("https://ghcr.io/v2/", {"all_proxy": "http://p-all:1"}) == "http://p-all:1"
    assert proxy_for("https://ghcr.io/v2/", {"HTTP_PROXY": "http://p-http:3128"}) is None  # not for https
    assert proxy_for("https://ghcr.io/v2/", {"HTTPS_PROXY": "  "}) is None  # empty is unset
    assert proxy_for("https://ghcr.io/v2/", {}) is None


def test_lowercase_variable_wins_over_uppercase() -> None:
    env = {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1"}
    assert proxy_for("https://ghcr.io/v2/", env) == "http://lower:1"


@pytest.mark.parametrize(("url", "no_proxy", "bypass"), [
    ("https://example.com/v2/", "example.com", True),
    ("https://a.b.example.com/v2/", "example.com", True),
    ("https://badexample.com/v2/", "example.com", False),
    ("https://a.example.com/v2/", ".example.com", True),
    ("https://example.com/v2/", ".example.com", True),
    ("https://a.example.com/v2/", "*.example.com", True),
    ("https://EXAMPLE.com./v2/", "example.COM", True),
    ("https://ghcr.io/v2/", "*", True),
    ("https://ghcr.io/v2/", "corp.local, ghcr.io", True),
    ("https://ghcr.io/v2/", "corp.local ghcr.io", True),
    ("https://10.1.2.3/v2/", "10.0.0.0/8", True),
    ("https://11.0.0.1/v2/", "10.0.0.0/8", False),
    ("https://10.1.2.3/v2/", "10.1.2.3", True),
    ("https://registry.corp/v2/", "10.0.0.0/8", False),  # names are not resolved
    ("https://[2001:db8::7]/v2/", "2001:db8::/32", True),
    ("https://[2001:db8::7]/v2/", "2001:db8::7", True),
    ("https://[2001:db8::7]:5000/v2/", "[2001:db8::7]:5000", True),
    ("https://[2001:db8::7]:5001/v2/", "[2001:db8::7]:5000", False),
    ("https://registry.corp:5000/v2/", "registry.corp:5000", True),
    ("https://registry.corp:5001/v2/", "registry.corp:5000", False),
    ("https://registry.corp/v2/", "registry.corp:443", True),  # the default port counts
    ("http://registry.corp/v2/", "registry.corp:443", False),
    ("https://ghcr.io/v2/", "", False),
    ("https://ghcr.io/v2/", "not/a/cidr, , ,", False),
])
def test_no_proxy_rules(url: str, no_proxy: str, bypass: bool) -> None:
    assert no_proxy_matches(url, no_proxy) is bypass
    assert (proxy_for(url, {"https_proxy": "http://p:1", "http_proxy": "http://p:1", "no_proxy": no_proxy})
            is None) is bypass


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "localhost:5000", "[::1]:5000", "127.9.9.9", "a.localhost"])
def test_loopback_never_proxied_from_the_environment(host: str) -> None:
    env = {"HTTPS_PROXY": "http://p:1", "HTTP_PROXY": "http://p:1", "ALL_PROXY": "http://p:1"}
    assert proxy_for(f"http://{host}/v2/", env) is None
    assert proxy_for(f"https://{host}/v2/", env) is None
    assert proxy_for(f"http://{host}/v2/", env, proxy="http://asked:1") == "http://asked:1"


def test_explicit_proxy_overrides_environment_and_obeys_no_proxy() -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "internal.corp"}
    assert proxy_for("https://ghcr.io/v2/", env, proxy="http://mine:8080") == "http://mine:8080"
    assert proxy_for("https://ghcr.io/v2/", env, proxy="") is None  # "" = no proxy at all
    assert proxy_for("https://x.internal.corp/v2/", env, proxy="http://mine:8080") is None


def test_parse_proxy() -> None:
    p = parse_proxy("user:p%40ss@proxy.corp")
    assert (p.url, p.username, p.password) == ("http://proxy.corp:1080", "user", "p@ss")  # curl's defaults
    assert parse_proxy("https://proxy.corp").url == "https://proxy.corp:443"
    assert parse_proxy("http://[::1]:3128").url == "http://[::1]:3128"
    assert "p@ss" not in repr(p) and "user" not in repr(p) and "***@proxy.corp" in repr(p)
    with pytest.raises(ValueError, match="only http:// and https://") as err:
        parse_proxy("socks5://user:hunter2@proxy.corp:1080")
    assert "hunter2" not in str(err.value)


def test_bad_explicit_proxy_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="socks5"):
        ocinb.AsyncClient("ghcr.io", proxy="socks5://127.0.0.1:1080", docker_config=False, environment=False)


def test_proxy_rules_read_the_environment_when_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://squid:{SECRET}@proxy.corp:3128")
    rules = ProxyRules()
    monkeypatch.delenv("HTTPS_PROXY")
    chosen = rules.proxy_for("https://ghcr.io/v2/")
    assert chosen is not None and chosen.url == "http://proxy.corp:3128" and chosen.password == SECRET
    assert SECRET not in repr(rules) and SECRET not in repr(chosen)


# CAs from the environment ------------------------------------------------------------------------------

def _ca_and_server(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA (PEM file) and a server certificate for 127.0.0.1 it signed (cert, key PEM files)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocinb test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_ssl_cert_file_and_dir_are_read_without_verify(tmp_path: Path) -> None:
    ca, _, _ = _ca_and_server(tmp_path)
    ctx = _ssl_context(True, {"SSL_CERT_FILE": str(ca)})
    assert isinstance(ctx, ssl.SSLContext)
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "ocinb test CA"),),)]
    with pytest.raises(ValueError, match="SSL_CERT_FILE"):
        _ssl_context(True, {"SSL_CERT_FILE": str(tmp_path / "missing.pem")})
    with pytest.raises(ValueError, match="SSL_CERT_DIR"):
        _ssl_context(True, {"SSL_CERT_DIR": str(tmp_path / "missing")})
    assert _ssl_context(False, {"SSL_CERT_FILE": str(ca)}) is False


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRegistry, Path]]:
    """The real registry serving HTTPS with a certificate of a CA of our own (returned with the CA file)."""
    tmp = tmp_path_factory.mktemp("tls")
    ca, cert, key = _ca_and_server(tmp)
    reg = LocalRegistry(tls=(cert, key))
    reg.start()
    yield reg, ca
    reg.stop()


def _client(address: str, tmp: Path, **kw: object) -> ocinb.AsyncClient:
    return ocinb.AsyncClient(address, cache=ContentCache(tmp / "cache"), docker_config=False, environment=False,
                             **kw)  # type: ignore[arg-type]


def test_https_registry_trusted_through_ssl_cert_file(tls_registry: tuple[LocalRegistry, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    reg, ca = tls_registry

    async def ping() -> int:
        async with _client(reg.address, tmp_path, insecure=False) as c:
            return (await c.ping()).status

    with pytest.raises(OcinbError, match=r"(?i)certificate"):
        asyncio.run(ping())
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    assert asyncio.run(ping()) == 200


# tinyproxy in front of the real registry ---------------------------------------------------------------

@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[TinyProxy]:
    with TinyProxy(tmp_path / "tinyproxy", auth=AUTH) as tp:
        yield tp


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def _push_pull(c: ocinb.AsyncClient, repo: str) -> bytes:
    r = c.repo(repo)
    data = b"through the proxy\n" * 1000
    desc = await r.blobs.upload(data)
    return await r.blobs.get(desc.digest)


def test_plain_http_through_tinyproxy_with_auth(registry: LocalRegistry, tinyproxy: TinyProxy, tmp_path: Path,
                                                repo_name: str, caplog: pytest.LogCaptureFixture) -> None:
    """proxy= given: the loopback registry goes through tinyproxy (absolute-form requests), authenticated."""
    caplog.set_level(logging.DEBUG)

    async def go() -> tuple[bytes, str]:
        async with _client(registry.address, tmp_path, proxy=tinyproxy.url) as c:
            return await _push_pull(c, repo_name), repr(c) + repr(c._core) + repr(c._core.proxies)

    got, reprs = asyncio.run(go())
    assert got == b"through the proxy\n" * 1000
    seen = tinyproxy.requests()
    base = registry.url
    assert all(t.startswith(f"{base}/v2/") for _, t in seen)  # absolute-form: forwarded, not tunnelled
    assert ("POST", f"{base}/v2/{repo_name}/blobs/uploads/") in seen
    assert any(m == "PUT" and t.startswith(f"{base}/v2/{repo_name}/blobs/uploads/") for m, t in seen)
    assert any(m == "GET" and t.startswith(f"{base}/v2/{repo_name}/blobs/sha256:") for m, t in seen)
    assert SECRET not in reprs and SECRET not in caplog.text


def test_wrong_proxy_password_is_a_clear_error_without_it(registry: LocalRegistry, tinyproxy: TinyProxy,
                                                          tmp_path: Path) -> None:
    wrong = tinyproxy.url.replace(SECRET, "not-the-Secret-1")

    async def go() -> None:
        async with _client(registry.address, tmp_path, proxy=wrong) as c:
            await c.ping()

    with pytest.raises(OcinbError) as err:
        asyncio.run(go())
    # tinyproxy answers a forwarded request with bad credentials 401 (its own page), a CONNECT 407.
    assert "tinyproxy" in str(err.value.body) and getattr(err.value, "status", None) in (401, 407)
    assert "not-the-Secret-1" not in str(err.value) and "not-the-Secret-1" not in repr(err.value)


def test_no_proxy_sends_requests_around_it(registry: LocalRegistry, tinyproxy: TinyProxy, tmp_path: Path,
                                           repo_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", f"example.com,127.0.0.1:{registry.port}")

    async def go() -> bytes:
        async with _client(registry.address, tmp_path, proxy=tinyproxy.url) as c:
            return await _push_pull(c, repo_name)

    assert asyncio.run(go()) == b"through the proxy\n" * 1000
    assert tinyproxy.requests() == []
    assert registry.request_count("GET", "/v2/") >= 1


def test_environment_proxy_skips_loopback_registry(registry: LocalRegistry, tinyproxy: TinyProxy,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.setenv("ALL_PROXY", tinyproxy.url)

    async def go() -> int:
        async with _client(registry.address, tmp_path) as c:
            return (await c.ping()).status

    assert asyncio.run(go()) == 200
    assert tinyproxy.requests() == []


def test_environment_https_proxy_tunnels_remote_registry(tinyproxy: TinyProxy, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY (with credentials) is used for a remote registry: tinyproxy is asked to CONNECT to it.

    ``registry.invalid`` does not resolve (RFC 6761), so the tunnel fails at the proxy: what is checked is that
    the request reached it, and that the failure names neither the proxy's password nor hangs.
    """
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)

    async def go() -> None:
        async with _client("registry.invalid", tmp_path, retry=ocinb.RetryPolicy(retries=0)) as c:
            await c.ping()

    with pytest.raises(OcinbError) as err:
        asyncio.run(go())
    assert ("CONNECT", "registry.invalid:443") in tinyproxy.requests()
    assert SECRET not in str(err.value)


def test_connect_tunnel_to_https_registry(tls_registry: tuple[LocalRegistry, Path], tinyproxy: TinyProxy,
                                          tmp_path: Path, repo_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTPS registry through the proxy: one CONNECT per connection, TLS inside, the CA from SSL_CERT_FILE."""
    reg, ca = tls_registry
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))

    async def go() -> bytes:
        async with _client(reg.address, tmp_path, insecure=False, proxy=tinyproxy.url) as c:
            return await _push_pull(c, repo_name)

    assert asyncio.run(go()) == b"through the proxy\n" * 1000
    seen = tinyproxy.requests()
    assert seen and all(s == ("CONNECT", reg.address) for s in seen)
    assert reg.request_count("PUT") >= 1


def test_token_realm_goes_through_the_same_proxy(token_registry: LocalRegistry, token_server: TokenServer,
                                                 basic_credentials: tuple[str, str], tinyproxy: TinyProxy,
                                                 tmp_path: Path, repo_name: str) -> None:
    user, password = basic_credentials

    async def go() -> bytes:
        async with _client(token_registry.address, tmp_path, proxy=tinyproxy.url, username=user,
                           password=password) as c:
            return await _push_pull(c, repo_name)

    assert asyncio.run(go()) == b"through the proxy\n" * 1000
    seen = tinyproxy.requests()
    assert any(m == "GET" and t.startswith(f"{token_server.realm}?") for m, t in seen)
    assert any(t.startswith(token_registry.url) for _, t in seen)
