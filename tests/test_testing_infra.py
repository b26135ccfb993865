"""Prove the test infrastructure (LocalRegistry, token server, fixtures) with plain httpx."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _tokenserver import TokenServer, libtrust_key_id, parse_scope

from ocinb.testing import LocalRegistry, find_registry_binary, parse_access_log_line


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """Plain httpx client that ignores proxy settings from the environment."""
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_blob(http: httpx.Client, base: str, name: str, data: bytes, headers: dict[str, str] | None = None) -> str:
    """Monolithic upload via POST + PUT; return the digest."""
    headers = headers or {}
    resp = http.post(f"{base}/v2/{name}/blobs/uploads/", headers=headers)
    assert resp.status_code == 202, resp.text
    location = httpx.URL(base).join(resp.headers["Location"])
    digest = _digest(data)
    resp = http.put(
        location.copy_merge_params({"digest": digest}),
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["Docker-Content-Digest"] == digest
    return digest


def _challenge(header: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def _token(http: httpx.Client, server: TokenServer, scopes: list[str], auth: tuple[str, str] | None) -> str:
    params = [("service", server.service)] + [("scope", s) for s in scopes]
    resp = http.get(server.realm, params=params, auth=auth)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token"] == body["access_token"]
    return body["token"]


def _jwt_part(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_binary_found() -> None:
    assert find_registry_binary()


def test_anonymous_registry_blob_round_trip(registry: LocalRegistry, http: httpx.Client, repo_name: str) -> None:
    assert registry.url == f"http://{registry.address}"
    assert registry.address.startswith("127.0.0.1:")
    assert registry.pid and registry.running
    resp = http.get(f"{registry.url}/v2/")
    assert resp.status_code == 200
    assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    data = b"hello ocinb " * 100
    digest = _push_blob(http, registry.url, repo_name, data)
    resp = http.get(f"{registry.url}/v2/{repo_name}/blobs/{digest}")
    assert resp.status_code == 200
    assert resp.content == data
    resp = http.delete(f"{registry.url}/v2/{repo_name}/blobs/{digest}")
    assert resp.status_code == 202
    assert http.head(f"{registry.url}/v2/{repo_name}/blobs/{digest}").status_code == 404


def test_repo_name_is_valid(repo_name: str) -> None:
    grammar = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
    assert re.fullmatch(grammar, repo_name), repo_name
    assert repo_name.startswith("t/test-repo-name-is-valid-")


def test_basic_registry(basic_registry: LocalRegistry, basic_credentials: tuple[str, str], http: httpx.Client) -> None:
    resp = http.get(f"{basic_registry.url}/v2/")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert http.get(f"{basic_registry.url}/v2/", auth=basic_credentials).status_code == 200
    assert http.get(f"{basic_registry.url}/v2/", auth=(basic_credentials[0], "wrong")).status_code == 401
    _push_blob(http, basic_registry.url, "t/basic", b"basic", {"Authorization": _basic_header(basic_credentials)})


def _basic_header(creds: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()


def test_token_registry_challenge_and_push_pull(
    token_registry: LocalRegistry,
    token_server: TokenServer,
    basic_credentials: tuple[str, str],
    http: httpx.Client,
    repo_name: str,
) -> None:
    resp = http.get(f"{token_registry.url}/v2/{repo_name}/tags/list")
    assert resp.status_code == 401
    scheme, _, params = resp.headers["WWW-Authenticate"].partition(" ")
    assert scheme == "Bearer"
    challenge = _challenge(params)
    assert challenge["realm"] == token_server.realm
    assert challenge["service"] == token_server.service
    assert challenge["scope"] == f"repository:{repo_name}:pull"

    token_server.clear()
    scopes = [f"repository:{repo_name}:pull,push", "registry:catalog:*"]
    token = _token(http, token_server, scopes, basic_credentials)
    rec = token_server.requests[-1]
    assert rec.method == "GET" and rec.basic_auth and rec.username == basic_credentials[0]
    assert rec.scopes == scopes
    assert [v for k, v in rec.query if k == "scope"] == scopes
    claims = _jwt_part(token, 1)
    assert claims["aud"] == token_server.service and claims["iss"] == token_server.issuer
    assert claims["access"][0]["actions"] == ["pull", "push"]
    assert _jwt_part(token, 0)["kid"] == token_server.key_id

    auth = {"Authorization": f"Bearer {token}"}
    data = b"token-authenticated blob"
    digest = _push_blob(http, token_registry.url, repo_name, data, auth)
    resp = http.get(f"{token_registry.url}/v2/{repo_name}/blobs/{digest}", headers=auth)
    assert resp.status_code == 200 and resp.content == data
    assert http.get(f"{token_registry.url}/v2/_catalog", headers=auth).status_code == 200


def test_token_space_separated_scopes_and_anonymous(token_server: TokenServer, http: httpx.Client) -> None:
    resp = http.get(token_server.realm, params={"service": "s", "scope": "repository:a/b:pull repository:c:push"})
    assert resp.status_code == 200
    access = _jwt_part(resp.json()["token"], 1)["access"]
    assert access == [
        {"type": "repository", "name": "a/b", "actions": []},
        {"type": "repository", "name": "c", "actions": []},
    ]
    resp = http.get(token_server.realm, params={"service": "s"}, auth=("alice", "nope"))
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_grant"


def test_reader_gets_insufficient_scope(
    token_registry: LocalRegistry, token_server: TokenServer, http: httpx.Client, repo_name: str
) -> None:
    reader = ("reader", token_server.users["reader"])
    token = _token(http, token_server, [f"repository:{repo_name}:pull,push"], reader)
    assert _jwt_part(token, 1)["access"][0]["actions"] == ["pull"]
    resp = http.post(
        f"{token_registry.url}/v2/{repo_name}/blobs/uploads/", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 401
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]


def test_expired_token_rejected(token_server: TokenServer, http: httpx.Client, repo_name: str) -> None:
    ts = TokenServer(users=dict(token_server.users), expires_in=1)
    with ts, LocalRegistry(token_auth=ts.settings()) as reg:
        creds = ("alice", ts.users["alice"])
        url = f"{reg.url}/v2/{repo_name}/blobs/uploads/"
        token = _token(http, ts, [f"repository:{repo_name}:pull,push"], creds)
        time.sleep(2)
        # distribution allows 60 s of clock leeway, so a token 1 s past `exp` still works...
        assert http.post(url, headers={"Authorization": f"Bearer {token}"}).status_code == 202
        # ...and only one expired for longer than the leeway is rejected.
        ts.clock_skew = -120
        token = _token(http, ts, [f"repository:{repo_name}:pull,push"], creds)
        resp = http.post(url, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_oauth2_post_and_refresh_token(
    token_registry: LocalRegistry, token_server: TokenServer, basic_credentials: tuple[str, str], http: httpx.Client
) -> None:
    token_server.clear()
    user, password = basic_credentials
    form = {
        "grant_type": "password",
        "username": user,
        "password": password,
        "service": token_server.service,
        "client_id": "ocinb-tests",
        "access_type": "offline",
        "scope": "repository:t/oauth:pull,push registry:catalog:*",
    }
    resp = http.post(token_server.realm, data=form)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["expires_in"] == 300 and body["issued_at"].endswith("Z")
    refresh = body["refresh_token"]
    rec = token_server.requests[-1]
    assert rec.grant_type == "password" and rec.scopes == ["repository:t/oauth:pull,push", "registry:catalog:*"]
    assert rec.form["password"] == "***"

    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "service": token_server.service,
        "client_id": "ocinb-tests",
        "scope": "repository:t/oauth:pull,push",
    }
    resp = http.post(token_server.realm, data=form)
    assert resp.status_code == 200, resp.text
    token = resp.json()["access_token"]
    assert resp.json()["refresh_token"] == refresh
    assert _jwt_part(token, 1)["sub"] == user
    _push_blob(http, token_registry.url, "t/oauth", b"oauth", {"Authorization": f"Bearer {token}"})

    bad = http.post(token_server.realm, data={**form, "refresh_token": "bogus"})
    assert bad.status_code == 401
    bad = http.post(token_server.realm, data={**form, "grant_type": "password", "username": user, "password": "x"})
    assert bad.status_code == 401


def test_token_server_options(http: httpx.Client) -> None:
    with TokenServer(users={"u": "p"}, post_supported=False, token_field="token", anonymous_pull=True) as ts:
        assert http.post(ts.realm, data={"grant_type": "password", "username": "u", "password": "p"}).status_code == 404
        body = http.get(ts.realm, params={"service": "s", "scope": "repository:x:pull,push"}).json()
        assert "access_token" not in body and "refresh_token" not in body
        assert _jwt_part(body["token"], 1)["access"][0]["actions"] == ["pull"]
        body = http.get(ts.realm, params={"service": "s", "offline_token": "true"}, auth=("u", "p")).json()
        assert body["refresh_token"]
    with TokenServer(token_field="access_token") as ts:
        body = http.get(ts.realm, params={"service": "s"}).json()
        assert "token" not in body and body["access_token"]


@pytest.mark.parametrize("key_mode", ["x5c", "jwk"])
def test_other_key_modes_trusted(key_mode: str, http: httpx.Client) -> None:
    with TokenServer(users={"u": "p"}, key_mode=key_mode) as ts, LocalRegistry(token_auth=ts.settings()) as reg:  # type: ignore[arg-type]
        token = _token(http, ts, ["repository:k/m:pull,push"], ("u", "p"))
        assert key_mode in _jwt_part(token, 0)
        _push_blob(http, reg.url, "k/m", b"key mode", {"Authorization": f"Bearer {token}"})


def test_request_count(registry: LocalRegistry, http: httpx.Client, repo_name: str) -> None:
    registry.reset_request_count()
    assert registry.request_count() == 0
    http.get(f"{registry.url}/v2/")
    http.head(f"{registry.url}/v2/{repo_name}/manifests/latest")
    http.get(f"{registry.url}/v2/{repo_name}/tags/list")
    _push_blob(http, registry.url, repo_name, b"count me")
    assert registry.request_count() == 5
    assert registry.request_count("get") == 2
    assert registry.request_count("HEAD", path_contains="/manifests/") == 1
    assert registry.request_count(path_contains=f"/v2/{repo_name}/blobs/uploads/") == 2
    assert registry.request_count("PUT") == 1


def test_access_log_flushes_with_a_sentinel_it_leaves_out(
    basic_registry: LocalRegistry, http: httpx.Client, repo_name: str
) -> None:
    """Each call sends a sentinel GET and waits for its line: the requests answered before it are all
    counted at once (401s of an auth registry too), and the sentinels themselves never are."""
    basic_registry.reset_request_count()
    for _ in range(7):
        assert http.head(f"{basic_registry.url}/v2/{repo_name}/manifests/latest").status_code == 401
    assert basic_registry.request_count("HEAD") == 7
    before = basic_registry.access_log()
    assert basic_registry.access_log() == before  # the second call's sentinel is not an entry
    assert not [e for e in before if "log-sentinel" in e.path]
    raw = basic_registry.log_path.read_text() if basic_registry.log_path else ""
    assert raw.count("log-sentinel") >= 3  # the sentinels were sent and logged, just not returned


def test_access_log_without_lines_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import ocinb.testing as testing

    monkeypatch.setattr(testing, "_SENTINEL_DEADLINE", 1.0)
    with LocalRegistry(extra_config={"log": {"accesslog": {"disabled": True}}}) as reg:
        with pytest.raises(RuntimeError, match="no line for the sentinel GET"):
            reg.access_log()
        assert reg.access_log(flush=False) == []


def test_access_log_line_format() -> None:
    line = (
        '127.0.0.1 - - [27/Nov/2026:07:34:20 +0000] "HEAD /v2/a/b/manifests/x HTTP/1.1" 404 91 "" "python-httpx/0.28.1"'
    )
    entry = parse_access_log_line(line)
    assert entry is not None
    assert (entry.method, entry.path, entry.status, entry.size) == ("HEAD", "/v2/a/b/manifests/x", 404, 91)
    assert entry.user_agent == "python-httpx/0.28.1"
    assert parse_access_log_line('time="2026-11-27T07:34:20Z" level=info msg="response completed"') is None


def test_two_registries_at_once(registry: LocalRegistry, registry2: LocalRegistry, http: httpx.Client) -> None:
    assert registry.port != registry2.port and registry.pid != registry2.pid
    digest = _push_blob(http, registry.url, "t/only-in-one", b"only in the first")
    assert http.head(f"{registry.url}/v2/t/only-in-one/blobs/{digest}").status_code == 200
    assert http.head(f"{registry2.url}/v2/t/only-in-one/blobs/{digest}").status_code == 404


def test_local_registry_lifecycle_and_fixed_port(tmp_path) -> None:
    storage = tmp_path / "storage"
    reg = LocalRegistry(storage_dir=storage, delete_enabled=False, extra_config={"log": {"fields": {"t": "x"}}})
    with reg:
        pid = reg.pid
        port = reg.port
        log_path = reg.log_path
        assert log_path is not None and log_path.exists()
        assert reg.storage_dir == storage
    assert reg.pid is None and not reg.running
    assert not log_path.exists()
    assert storage.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # A port held by another registry makes a fixed-port start fail with the log tail.
    with LocalRegistry() as first:
        busy = LocalRegistry(port=first.port)
        with pytest.raises(RuntimeError, match="address already in use"):
            busy.start()
        assert busy.pid is None
    assert port > 0


def test_missing_binary_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCINB_REGISTRY_BIN", "/nonexistent/registry")
    with pytest.raises(RuntimeError, match="apt-get install docker-registry"):
        find_registry_binary()


def test_missing_binary_names_the_install_script_and_installs_nothing(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    """With no binary on PATH the error says how to install it; the library never runs apt-get itself."""
    monkeypatch.delenv("OCINB_REGISTRY_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError) as info:
        LocalRegistry().start()
    assert "scripts/system-deps.sh registry" in str(info.value)
    assert "apt-get install docker-registry" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError):
        LocalRegistry(install=True)  # type: ignore[call-arg]


def test_helpers() -> None:
    assert parse_scope("repository:localhost:5000/a/b:pull,push") == (
        "repository",
        "localhost:5000/a/b",
        ["pull", "push"],
    )
    assert parse_scope("registry:catalog:*") == ("registry", "catalog", ["*"])
    assert parse_scope("bogus") is None
    with TokenServer() as ts:
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509 import load_pem_x509_certificate

        cert = load_pem_x509_certificate(ts.cert_path.read_bytes())
        key = cert.public_key()
        assert libtrust_key_id(key) == ts.key_id  # type: ignore[arg-type]
        assert len(ts.key_id.split(":")) == 12
        assert key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_port_race_retries_with_new_port(registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    import ocinb.testing as testing

    real_free_port = testing._free_port
    ports = iter([registry.port])
    monkeypatch.setattr(testing, "_free_port", lambda host: next(ports, None) or real_free_port(host))
    with LocalRegistry() as reg:
        assert reg.port != registry.port
        assert "address already in use" in reg.log_path.read_text()  # type: ignore[union-attr]
