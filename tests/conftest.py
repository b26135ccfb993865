"""Shared fixtures: real CNCF registries (anonymous, htpasswd, token auth) and a token server."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from _tokenserver import TokenServer

import ocinb
from ocinb.cache import ContentCache
from ocinb.testing import LocalRegistry, find_registry_binary

ALICE = ("alice", "wonderland-Secret-42")
READER = ("reader", "reader-Secret-42")

_repo_counter = itertools.count(1)


def _start(registry: LocalRegistry) -> LocalRegistry:
    """Start `registry`, failing (never skipping) the test when the binary is missing or broken."""
    error = None
    try:
        find_registry_binary()
        registry.start()
    except RuntimeError as exc:
        error = str(exc)
    if error is not None:
        registry.stop()
        pytest.fail(f"cannot run the local registry: {error}", pytrace=False)
    return registry


@pytest.fixture(scope="session")
def registry() -> Iterator[LocalRegistry]:
    """Anonymous registry with deletes enabled."""
    reg = _start(LocalRegistry())
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def registry2() -> Iterator[LocalRegistry]:
    """A second anonymous registry on another port (copy tests)."""
    reg = _start(LocalRegistry())
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def basic_credentials() -> tuple[str, str]:
    """(username, password) accepted by `basic_registry` and the token server."""
    return ALICE


@pytest.fixture(scope="session")
def basic_registry(basic_credentials: tuple[str, str]) -> Iterator[LocalRegistry]:
    """Registry protected by htpasswd Basic auth."""
    user, password = basic_credentials
    reg = _start(LocalRegistry(htpasswd={user: password}))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def token_server() -> Iterator[TokenServer]:
    """Token server: alice gets everything she asks for, reader only pull, anonymous nothing."""
    server = TokenServer(users=dict([ALICE, READER]), restrictions={READER[0]: ["pull"]})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(token_server: TokenServer) -> Iterator[LocalRegistry]:
    """Registry using Docker token auth backed by `token_server`."""
    reg = _start(LocalRegistry(token_auth=token_server.settings()))
    yield reg
    reg.stop()


@pytest.fixture
def repo_name(request: pytest.FixtureRequest) -> str:
    """A unique repository name valid under the OCI grammar, e.g. `t/test-push-pull-3`."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60].strip("-") or "repo"
    return f"t/{slug}-{next(_repo_counter)}"


@pytest.fixture
def isolated_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every cache, default clients' included, in the test's tmp dir; default clients forgotten after."""
    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path / "cache"))
    ocinb.configure(docker_config=False, environment=False)
    yield
    ocinb.configure()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ContentCache:
    """A content cache in the test's temp dir (also what ``OCINB_CACHE_DIR`` points default clients at)."""
    monkeypatch.setenv("OCINB_CACHE_DIR", str(tmp_path / "cache"))
    return ContentCache(tmp_path / "cache")
