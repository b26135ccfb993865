"""Where credentials come from: explicit arguments, the environment, Docker's config.json and helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from _tokenserver import TokenServer

import ocinb
from ocinb import HttpCore
from ocinb._http.credentials import (
    DOCKER_HUB_CONFIG_KEY,
    Credentials,
    from_docker_config,
    from_environment,
    resolve_credentials,
)
from ocinb.cache import ContentCache
from ocinb.errors import UnauthorizedError
from ocinb.testing import LocalRegistry

SECRET = "wonderland-Secret-42"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ambient credentials: an empty DOCKER_CONFIG dir, no OCINB_* variables, cache in tmp."""
    for name in ("OCINB_USERNAME", "OCINB_PASSWORD", "OCINB_TOKEN", "OCINB_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path / "cache"))
    return config_dir


def write_config(config_dir: Path, doc: dict[str, Any]) -> None:
    (config_dir / "config.json").write_text(json.dumps(doc))


def b64(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``docker-credential-test`` on PATH: answers alice's credentials, logs the server asked for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "helper.log"
    script = bin_dir / "docker-credential-test"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 1\n'
        f"read server\n"
        f'echo "$server" >> {log}\n'
        f"printf '%s' '{{\"ServerURL\":\"x\",\"Username\":\"alice\",\"Secret\":\"{SECRET}\"}}'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


def pull_tags(address: str, tmp_path: Path, **kwargs: Any) -> list[str]:
    """List tags of a missing repo: NAME_UNKNOWN proves we got past auth; return [] in that case."""
    client = ocinb.Client(address, cache=ContentCache(tmp_path / "cache"), **kwargs)
    try:
        return client.repo("creds/none").tags.list()
    except ocinb.errors.NotFoundError:
        return []
    finally:
        client.close()


def test_config_auths_base64(clean_env: Path, basic_registry: LocalRegistry, tmp_path: Path) -> None:
    write_config(clean_env, {"auths": {basic_registry.address: {"auth": b64("alice", SECRET)}}})
    creds = from_docker_config(basic_registry.address)
    assert creds == Credentials("alice", SECRET, source="config.json")
    assert pull_tags(basic_registry.address, tmp_path) == []
    with pytest.raises(UnauthorizedError):
        pull_tags(basic_registry.address, tmp_path, docker_config=False)


def test_config_auths_url_key_and_username_fields(clean_env: Path) -> None:
    write_config(clean_env, {"auths": {"https://reg.example.com": {"username": "bob", "password": "pw"}}})
    assert from_docker_config("reg.example.com") == Credentials("bob", "pw", source="config.json")
    assert from_docker_config("other.example.com") is None


def test_config_docker_hub_key(clean_env: Path) -> None:
    write_config(clean_env, {"auths": {DOCKER_HUB_CONFIG_KEY: {"auth": b64("hubuser", "hubpw")}}})
    assert from_docker_config("docker.io") == Credentials("hubuser", "hubpw", source="config.json")
    client = ocinb.AsyncClient("docker.io")
    assert client._core._credentials == Credentials("hubuser", "hubpw", source="config.json")
    assert "hubpw" not in repr(client._core)


def test_config_identitytoken(clean_env: Path, token_registry: LocalRegistry, token_server: TokenServer,
                              tmp_path: Path) -> None:
    refresh = token_server.new_refresh_token("alice")
    write_config(clean_env, {"auths": {token_registry.address: {
        "auth": b64("alice", ""), "identitytoken": refresh}}})
    creds = from_docker_config(token_registry.address)
    assert creds is not None and creds.identity_token == refresh and creds.username == "alice"
    token_server.clear()
    assert pull_tags(token_registry.address, tmp_path) == []
    assert [(r.method, r.grant_type, r.status) for r in token_server.requests] == [("POST", "refresh_token", 200)]
    assert refresh not in repr(creds) and refresh not in str(creds)


def test_cred_helpers(clean_env: Path, basic_registry: LocalRegistry, helper: Path, tmp_path: Path) -> None:
    write_config(clean_env, {"credHelpers": {basic_registry.address: "test"},
                             "auths": {basic_registry.address: {"auth": b64("alice", "stale")}}})
    creds = from_docker_config(basic_registry.address)
    assert creds == Credentials("alice", SECRET, source="docker-credential-test")
    assert pull_tags(basic_registry.address, tmp_path) == []
    assert helper.read_text().split()[0] == basic_registry.address


def test_creds_store(clean_env: Path, basic_registry: LocalRegistry, helper: Path, tmp_path: Path) -> None:
    write_config(clean_env, {"credsStore": "test"})
    assert pull_tags(basic_registry.address, tmp_path) == []
    assert basic_registry.address in helper.read_text().split()


def test_missing_helper_is_not_fatal(clean_env: Path, basic_registry: LocalRegistry, tmp_path: Path) -> None:
    write_config(clean_env, {"credsStore": "does-not-exist-anywhere"})
    assert from_docker_config(basic_registry.address) is None
    with pytest.raises(UnauthorizedError):
        pull_tags(basic_registry.address, tmp_path)


def test_environment(monkeypatch: pytest.MonkeyPatch, basic_registry: LocalRegistry, tmp_path: Path) -> None:
    monkeypatch.setenv("OCINB_USERNAME", "alice")
    monkeypatch.setenv("OCINB_PASSWORD", SECRET)
    assert from_environment(basic_registry.address) == Credentials("alice", SECRET, source="environment")
    assert pull_tags(basic_registry.address, tmp_path) == []
    with pytest.raises(UnauthorizedError):
        pull_tags(basic_registry.address, tmp_path, environment=False)
    monkeypatch.setenv("OCINB_REGISTRY", "elsewhere.example.com")
    assert from_environment(basic_registry.address) is None


def test_explicit_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch, basic_registry: LocalRegistry,
                       tmp_path: Path) -> None:
    write_config(clean_env, {"auths": {basic_registry.address: {"auth": b64("alice", "from-config")}}})
    monkeypatch.setenv("OCINB_USERNAME", "alice")
    monkeypatch.setenv("OCINB_PASSWORD", "from-env")
    assert resolve_credentials(basic_registry.address).password == "from-env"  # type: ignore[union-attr]
    assert resolve_credentials(basic_registry.address, use_environment=False).password == "from-config"  # type: ignore[union-attr]
    explicit = resolve_credentials(basic_registry.address, username="alice", password=SECRET)
    assert explicit == Credentials("alice", SECRET, source="explicit")
    assert pull_tags(basic_registry.address, tmp_path, username="alice", password=SECRET) == []
    with pytest.raises(UnauthorizedError):
        pull_tags(basic_registry.address, tmp_path)  # env wins over config, and env is wrong


def test_reprs_hide_secrets(clean_env: Path) -> None:
    token = "identity-TOKEN-secret-77"
    creds = Credentials("alice", SECRET, token)
    for text in (repr(creds), str(creds), f"{creds}"):
        assert SECRET not in text and token not in text and "alice" in text
    core = HttpCore("127.0.0.1:5000", credentials=creds)
    assert SECRET not in repr(core) and token not in repr(core)
    client = ocinb.Client("127.0.0.1:5000", username="alice", password=SECRET, token=token)
    aclient = client.aio
    for text in (repr(client), repr(aclient), str(client), repr(aclient._core), repr(client.repo("a/b"))):
        assert SECRET not in text and token not in text
    client.close()
