"""Where credentials come from: explicit arguments, the environment, Docker's ``config.json``.

A :class:`Credentials` never shows its secret in ``repr``/``str``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("ocinb.auth")

DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_NAMES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)


@dataclass(frozen=True)
class Credentials:
    """A username and password, or an identity (refresh) token. The secrets never print."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    source: str = "explicit"

    def __repr__(self) -> str:
        secret = "***" if (self.password or self.identity_token) else None
        return f"Credentials(username={self.username!r}, secret={secret!r}, source={self.source!r})"

    __str__ = __repr__

    @property
    def has_basic(self) -> bool:
        return bool(self.username) and self.password is not None


def _config_keys(registry: str) -> list[str]:
    """The keys Docker may have stored a registry's credentials under."""
    if registry in _DOCKER_HUB_NAMES:
        return [DOCKER_HUB_CONFIG_KEY, "docker.io", "index.docker.io", "registry-1.docker.io"]
    return [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/",
            f"https://{registry}/v2/"]


def _decode_auth(value: str) -> tuple[str, str] | None:
    try:
        raw = base64.b64decode(value, validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = raw.partition(":")
    return (user, password) if sep else None


def _run_helper(name: str, server: str, timeout: float = 20.0) -> Credentials | None:
    """Ask ``docker-credential-NAME get`` for ``server``; ``None`` when it knows nothing."""
    try:
        proc = subprocess.run(
            [f"docker-credential-{name}", "get"],
            input=server.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("credential helper docker-credential-%s failed: %s", name, type(exc).__name__)
        return None
    if proc.returncode != 0:
        return None
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return None
    user = data.get("Username") or None
    secret = data.get("Secret")
    if not secret:
        return None
    if user == "<token>":
        return Credentials(identity_token=secret, source=f"docker-credential-{name}")
    return Credentials(user, secret, source=f"docker-credential-{name}")


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def from_docker_config(registry: str, config: Mapping[str, object] | None = None,
                       path: Path | None = None) -> Credentials | None:
    """Credentials for ``registry`` from a Docker ``config.json`` (auths, credHelpers, credsStore)."""
    if config is None:
        path = path or docker_config_path()
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError):
            return None
    if not isinstance(config, Mapping):
        return None
    keys = _config_keys(registry)
    helpers = config.get("credHelpers")
    if isinstance(helpers, Mapping):
        for key in keys:
            helper = helpers.get(key)
            if isinstance(helper, str) and helper:
                return _run_helper(helper, key)
    auths = config.get("auths")
    if isinstance(auths, Mapping):
        for key in keys:
            entry = auths.get(key)
            if not isinstance(entry, Mapping):
                continue
            if entry.get("identitytoken"):
                user = None
                if isinstance(entry.get("auth"), str):
                    pair = _decode_auth(entry["auth"])
                    user = pair[0] if pair else None
                return Credentials(user, identity_token=str(entry["identitytoken"]), source="config.json")
            if isinstance(entry.get("auth"), str) and entry["auth"]:
                pair = _decode_auth(entry["auth"])
                if pair:
                    return Credentials(pair[0], pair[1], source="config.json")
            if entry.get("username") and entry.get("password") is not None:
                return Credentials(str(entry["username"]), str(entry["password"]), source="config.json")
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        for key in keys[:1] if registry in _DOCKER_HUB_NAMES else keys[:2]:
            creds = _run_helper(store, key)
            if creds:
                return creds
    return None


def from_environment(registry: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """``OCINB_USERNAME``/``OCINB_PASSWORD`` (or ``OCINB_TOKEN`` as identity token) from the environment.

    ``OCINB_REGISTRY``, when set, limits them to that registry.
    """
    env = os.environ if env is None else env
    only = env.get("OCINB_REGISTRY")
    if only and only != registry:
        return None
    if env.get("OCINB_USERNAME") and env.get("OCINB_PASSWORD") is not None:
        return Credentials(env["OCINB_USERNAME"], env["OCINB_PASSWORD"], source="environment")
    if env.get("OCINB_TOKEN"):
        return Credentials(env.get("OCINB_USERNAME"), identity_token=env["OCINB_TOKEN"], source="environment")
    return None


def resolve_credentials(
    registry: str,
    *,
    username: str | None = None,
    password: str | None = None,
    identity_token: str | None = None,
    use_environment: bool = True,
    use_docker_config: bool = True,
) -> Credentials | None:
    """Explicit arguments win, then the environment, then Docker's configuration."""
    if username is not None or password is not None or identity_token is not None:
        return Credentials(username, password, identity_token, source="explicit")
    if use_environment:
        creds = from_environment(registry)
        if creds:
            return creds
    if use_docker_config:
        return from_docker_config(registry)
    return None
