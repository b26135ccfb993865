"""Registry authentication: challenges, Basic, and Bearer tokens with a per-scope cache.

The :class:`Authenticator` learns each host's challenge from a 401, fetches tokens (GET with one
``scope`` parameter per scope, or the OAuth2 POST form when it holds a refresh token), caches them
per (realm, service, scopes) until shortly before they expire, and widens the scope set once when
the registry answers ``insufficient_scope``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import unquote, urlsplit

import httpx

from ..errors import (
    ErrorDetail,
    RealmRefusedError,
    RegistryError,
    TransportError,
    UnauthorizedError,
    error_class_for,
    redact_url,
)
from ..reference import is_local_host
from .credentials import Credentials
from .headers import Challenge, parse_www_authenticate

log = logging.getLogger("ocinb.auth")

DEFAULT_EXPIRES_IN = 60
CLIENT_ID = "ocinb"


def repository_scope(name: str, *actions: str) -> str:
    """``repository:NAME:a,b`` (NAME may contain ``host:port``; never split on ``:``)."""
    return f"repository:{name}:{','.join(actions)}"


CATALOG_SCOPE = "registry:catalog:*"


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Merge scopes naming the same resource, union their actions, and sort, for use as a cache key."""
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        for item in scope.split():
            rtype, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if not name:
                name, actions = rest, ""
            merged.setdefault((rtype, name), set()).update(a for a in actions.split(",") if a)
    return tuple(
        f"{rtype}:{name}:{','.join(sorted(actions))}" for (rtype, name), actions in sorted(merged.items())
    )


_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"): "the cloud metadata address (AWS, GCP, Azure, ...)",
    ipaddress.ip_address("fd00:ec2::254"): "the AWS IPv6 metadata address",
}
_METADATA_NAMES = {"metadata.google.internal": "the GCP metadata host name"}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(host: str) -> IPAddress | None:
    """The IP address a realm host spells, in any form the resolver takes (``[::1]``, ``2852039166``,
    ``0x7f.1``, ``::ffff:127.0.0.1`` are all addresses), or ``None`` for a host name."""
    name = unquote(host).strip("[]").rstrip(".")
    try:
        address: IPAddress = ipaddress.ip_address(name)
    except ValueError:
        if ":" in name:
            return None
        try:  # inet_aton reads what getaddrinfo reads: decimal, octal, hex, fewer than four parts
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def refused_realm_kind(host: str) -> str | None:
    """What makes ``host`` a place no token request may go, whoever asks: link-local or cloud metadata."""
    if host.lower().rstrip(".") in _METADATA_NAMES:
        return _METADATA_NAMES[host.lower().rstrip(".")]
    address = _address(host)
    if address is None:
        return None
    if address in _METADATA_ADDRESSES:
        return _METADATA_ADDRESSES[address]
    if any(address in net for net in _LINK_LOCAL):
        return "a link-local address"
    return None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (no port) is this machine: ``localhost``, 127.0.0.0/8, ``::1``, or 0.0.0.0/``::``."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _address(name)
    return address is not None and (address.is_loopback or address.is_unspecified)


@dataclass
class _Token:
    value: str = field(repr=False)
    expires_at: float
    lifetime: float

    def fresh(self, now: float) -> bool:
        return now < self.expires_at - min(10.0, self.lifetime * 0.1)


def _basic(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class Authenticator:
    """Produces the ``Authorization`` header for a request to the registry host, learning as it goes."""

    def __init__(self, host: str, credentials: Credentials | None, http: httpx.AsyncClient,
                 *, allow_http_realm: bool = False) -> None:
        self.host = host
        self._credentials = credentials
        self._http = http
        self._allow_http_realm = allow_http_realm
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str, tuple[str, ...]], _Token] = {}
        self._locks: dict[tuple[str, str, tuple[str, ...]], asyncio.Lock] = {}
        self._refresh_token: str | None = credentials.identity_token if credentials else None
        self._no_post: set[str] = set()
        # Refresh-token grants one at a time: a server that rotates refresh tokens retires the one sent,
        # so each grant must carry the token the previous answer returned.
        self._refresh_lock = asyncio.Lock()
        self.token_requests = 0
        self.token_lifetime: float | None = None
        """Seconds the last token was issued for (``expires_in``, else the spec's default of 60)."""
        self.token_lifetime_stated: bool | None = None
        """Whether the token server stated ``expires_in`` for the last token."""

    def __repr__(self) -> str:
        scheme = self._challenge.scheme if self._challenge else None
        return f"<Authenticator host={self.host!r} scheme={scheme!r} credentials={self._credentials!r}>"

    @property
    def scheme(self) -> str | None:
        """The scheme learnt from the registry's challenge (``basic``/``bearer``), or ``None`` yet."""
        return self._challenge.scheme if self._challenge else None

    @property
    def challenge(self) -> Challenge | None:
        """The challenge learnt from the registry (scheme, realm, service), ``None`` before the first 401."""
        return self._challenge

    @property
    def known(self) -> bool:
        """Whether the registry's challenge (or its absence) has been learnt."""
        return self._challenge is not None

    def learn_anonymous(self) -> None:
        """Remember that the registry asked for no authentication."""
        if self._challenge is None:
            self._challenge = Challenge("none", {})

    async def authorization(self, scopes: Iterable[str]) -> str | None:
        """The ``Authorization`` value for a request needing ``scopes``, or ``None`` if none is needed."""
        challenge = self._challenge
        if challenge is None or challenge.scheme == "none":
            return None
        if challenge.scheme == "basic":
            creds = self._credentials
            if creds and creds.has_basic:
                return _basic(creds.username or "", creds.password or "")
            return None
        if challenge.scheme == "bearer":
            token = await self._token(challenge, normalize_scopes(scopes))
            return f"Bearer {token}" if token else None
        return None

    def on_unauthorized(self, response: httpx.Response, scopes: Iterable[str],
                        sent: str | None) -> tuple[str, ...] | None:
        """Learn from a 401; return the scopes to retry with, or ``None`` when a retry cannot help."""
        challenges = parse_www_authenticate(response.headers.get("www-authenticate", ""))
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or next(
            (c for c in challenges if c.scheme == "basic"), None
        )
        if chosen is None:
            return None
        previous = self._challenge
        self._challenge = chosen
        used = normalize_scopes(scopes)
        if chosen.scheme == "basic":
            creds = self._credentials
            return used if sent is None and creds and creds.has_basic else None
        if sent is None or previous is None or previous.scheme != "bearer":
            return used
        # A token was sent and refused: forget it; widen once to what the registry asked for.
        self._tokens.pop((chosen.realm or "", chosen.service or "", used), None)
        if chosen.error == "insufficient_scope":
            widened = normalize_scopes([*used, *chosen.scopes])
            return widened if widened != used else None
        return used

    async def _token(self, challenge: Challenge, scopes: tuple[str, ...]) -> str | None:
        realm = challenge.realm
        if not realm:
            raise UnauthorizedError(401, "GET", f"https://{self.host}/v2/",
                                    [ErrorDetail("UNAUTHORIZED", "Bearer challenge without a realm")])
        key = (realm, challenge.service or "", scopes)
        now = time.monotonic()
        tok = self._tokens.get(key)
        if tok and tok.fresh(now):
            return tok.value
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            tok = self._tokens.get(key)
            if tok and tok.fresh(time.monotonic()):
                return tok.value
            tok = await self._fetch(realm, challenge.service, scopes)
            self._tokens[key] = tok
            return tok.value

    def _check_realm(self, realm: str) -> None:
        """Refuse a realm credentials must not go to, before anything is sent there (ggcr checks likewise).

        Never a link-local or cloud-metadata address; loopback only from a registry on loopback; plain
        HTTP only on loopback from a registry on loopback, or anywhere with ``insecure=True``.
        """
        try:
            parts = urlsplit(realm)
            host = parts.hostname or ""
        except ValueError:
            parts, host = None, ""
        if parts is None or parts.scheme not in ("http", "https") or not host:
            self._refuse(realm, "the realm is not an http(s) URL")
        kind = refused_realm_kind(host)
        if kind:
            self._refuse(realm, f"{host} is {kind}")
        local_registry = is_local_host(self.host)
        if is_loopback_host(host) and not local_registry:
            self._refuse(realm, f"{host} is a loopback address, and the registry {self.host} is not on this machine")
        if parts.scheme == "http" and not (self._allow_http_realm or (local_registry and is_loopback_host(host))):
            self._refuse(realm, "the realm is not https (pass insecure=True to allow plain HTTP)")

    def _refuse(self, realm: str, why: str) -> NoReturn:
        raise RealmRefusedError(401, "GET", realm, [ErrorDetail(
            "UNAUTHORIZED", f"refusing to send credentials to the token realm the registry named: {why}")])

    async def _fetch(self, realm: str, service: str | None, scopes: tuple[str, ...]) -> _Token:
        self._check_realm(realm)
        creds = self._credentials
        if self._refresh_token and realm not in self._no_post:
            async with self._refresh_lock:
                resp = await self._post(realm, service, scopes, {
                    "grant_type": "refresh_token", "refresh_token": self._refresh_token})
                if resp.status_code not in (404, 405):
                    return self._parse(resp, realm)
                self._no_post.add(realm)
        params: list[tuple[str, str | int | float | bool | None]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in scopes)
        headers = {}
        if creds and creds.has_basic:
            headers["Authorization"] = _basic(creds.username or "", creds.password or "")
        self.token_requests += 1
        try:
            resp = await self._http.get(realm, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(f"token request to {redact_url(realm)} failed: {type(exc).__name__}") from None
        return self._parse(resp, realm)

    async def _post(self, realm: str, service: str | None, scopes: tuple[str, ...],
                    form: dict[str, str]) -> httpx.Response:
        data = {**form, "client_id": CLIENT_ID, "scope": " ".join(scopes)}
        if service:
            data["service"] = service
        self.token_requests += 1
        try:
            return await self._http.post(realm, data=data)
        except httpx.HTTPError as exc:
            raise TransportError(f"token request to {redact_url(realm)} failed: {type(exc).__name__}") from None

    def _parse(self, resp: httpx.Response, realm: str) -> _Token:
        method = resp.request.method if resp.request else "GET"
        if resp.status_code != 200:
            cls = error_class_for(resp.status_code)
            if resp.status_code in (400, 401, 403):
                cls = UnauthorizedError
            raise cls(resp.status_code, method, realm, [ErrorDetail(
                "UNAUTHORIZED", "the token server refused the request"
                + (" (check the credentials)" if self._credentials else " (no credentials were given)"))])
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RegistryError(resp.status_code, method, realm, [ErrorDetail(
                "UNAUTHORIZED", "the token server answered something that is not a JSON object")])
        value = body.get("token") or body.get("access_token")
        if not isinstance(value, str) or not value:
            raise RegistryError(resp.status_code, method, realm, [ErrorDetail(
                "UNAUTHORIZED", "the token server's answer holds no token")])
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else float(
            DEFAULT_EXPIRES_IN)
        self.token_lifetime, self.token_lifetime_stated = lifetime, isinstance(expires_in, int | float)
        refresh = body.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self._refresh_token = refresh
        return _Token(value, time.monotonic() + lifetime, lifetime)
