"""The one HTTP core: owns the ``httpx.AsyncClient`` and sends every request ocinb makes.

Endpoints call :meth:`HttpCore.request` (body read) or :meth:`HttpCore.stream` (body streamed) with
the scopes the request needs; nothing else in ocinb builds an HTTP request. A request goes through
named steps, outermost first: retries (:meth:`HttpCore._send`, obeying :class:`RetryPolicy`), auth
(:meth:`HttpCore._send_handling_auth`), redirects (:meth:`HttpCore._send_handling_redirects`), and one
exchange on the wire (:meth:`HttpCore._send_single_request`). Error mapping is in :mod:`.errors`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

from ..errors import ErrorDetail, RegistryError, TransportError, redact_url
from ..media_types import MANIFEST_ACCEPT
from ..reference import is_local_host
from . import redact
from .auth import Authenticator
from .budget import Budget, RateBudget
from .credentials import Credentials
from .errors import error_from_response, raise_for_status
from .headers import parse_ratelimit, parse_retry_after
from .proxy import ProxyRules
from .retry import RETRYABLE_ERRORS, RetryPolicy

__all__ = [
    "USER_AGENT", "Body", "HttpCore", "RateLimit", "Reply", "RetryPolicy", "Stats", "error_from_response",
    "join_location", "raise_for_status",
]

log = logging.getLogger("ocinb.http")
redact.install()


@functools.lru_cache(maxsize=8)
def _shared_context(cafile: str | None, capath: str | None = None) -> ssl.SSLContext:
    """One verifying TLS context per CA bundle per process: building one costs 10–30 ms."""
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def _ssl_context(verify: bool | str | ssl.SSLContext, env: Mapping[str, str] | None = None) -> bool | ssl.SSLContext:
    """What to verify with: the caller's context, ``False``, a CA bundle, else ``SSL_CERT_FILE``/``SSL_CERT_DIR``
    (as OpenSSL, curl and requests read them), else certifi's bundle. A CA path that does not exist is a
    ``ValueError`` naming the variable, not an OpenSSL errno."""
    if isinstance(verify, ssl.SSLContext) or verify is False:
        return verify
    if verify is not True:
        if not os.path.exists(str(verify)):
            raise ValueError(f"verify={str(verify)!r}: no such CA bundle")
        return _shared_context(str(verify))
    env = os.environ if env is None else env
    cafile = env.get("SSL_CERT_FILE") or None
    capath = env.get("SSL_CERT_DIR") or None
    for name, value in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath)):
        if value is not None and not os.path.exists(value):
            raise ValueError(f"{name}={value!r}: no such file or directory")
    return _shared_context(cafile, capath)


USER_AGENT = "ocinb/0.1 (+https://github.com/ocinb/ocinb)"
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 10
_OBSERVED = frozenset({b"warning", b"ratelimit-limit", b"ratelimit-remaining"})
_BODY_HEADERS = frozenset({"content-length", "content-type", "content-range", "content-encoding",
                           "transfer-encoding"})

Body = bytes | Callable[[], AsyncIterator[bytes]] | None
"""A request body: bytes (replayable), a factory of async chunk iterators (replayable), or None."""


@dataclass
class RateLimit:
    """Docker Hub's ``ratelimit-limit``/``ratelimit-remaining`` as last seen."""

    limit: int | None = None
    remaining: int | None = None
    window_seconds: int | None = None
    source: str | None = None


@dataclass
class Stats:
    """Counters of what the core sent, for audits and benchmarks."""

    requests: int = 0
    retries: int = 0
    redirects: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    def count(self, method: str) -> None:
        self.requests += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1


@dataclass(frozen=True)
class Reply:
    """A finished exchange: status, headers, the whole body, and the final URL after redirects."""

    status: int
    headers: httpx.Headers
    content: bytes = field(repr=False)
    url: str
    method: str


class _Bound(NamedTuple):
    """What the core builds on first use, bound to the event loop it was built on."""

    client: httpx.AsyncClient
    auth: Authenticator
    limit: asyncio.Semaphore
    transport: httpx.AsyncBaseTransport
    headers: dict[str, str]
    extensions: dict[str, Any]


def _redirect_method(status: int, method: str) -> str:
    """The method of the request that follows a redirect ``status`` answered to ``method``.

    RFC 9110 §15.4.4: a 303 is followed with GET, except that a HEAD stays a HEAD. §15.4.2/§15.4.3: a POST
    answered 301 or 302 is followed with GET, as every browser and curl do. 307 and 308 keep the method.
    """
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


class HttpCore:
    """One registry host: its base URL, its ``httpx.AsyncClient``, its authenticator and its limit."""

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool | None = None,
        verify: bool | str | ssl.SSLContext = True,
        timeout: float | httpx.Timeout = 60.0,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = USER_AGENT,
        rate_budget: RateBudget | None = None,
        proxy: str | None = None,
    ) -> None:
        """``transport`` replaces the default wire (:class:`~ocinb._http.wire.AiohttpWire`), proxies and all;
        ``proxy`` overrides the environment's proxies (``""``: none), see :mod:`ocinb._http.proxy`."""
        self.host = host
        plain = insecure if insecure is not None else is_local_host(host)
        self.insecure = bool(insecure)
        self.base_url = f"{'http' if plain else 'https'}://{host}"
        self._prefix = self.base_url + "/"
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self.rate_limit = RateLimit()
        self.stats = Stats()
        self.budget = Budget(rate_budget, host)
        self.warnings: list[str] = []
        self._credentials = credentials
        self._verify = verify
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=15.0)
        self._transport = transport
        self.proxies = ProxyRules(proxy)
        self._user_agent = user_agent
        self._bound: _Bound | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<HttpCore {self.base_url} credentials={self._credentials!r}>"

    @property
    def anonymous(self) -> bool:
        """Whether the core holds no credentials at all."""
        c = self._credentials
        return c is None or not (c.has_basic or c.identity_token)

    def _ensure(self) -> _Bound:
        """The client, authenticator and limit of this core, built on first use in the running loop."""
        loop = asyncio.get_running_loop()
        if self._loop is None or self._bound is None:
            self._loop = loop
            # Every connection may stay alive: closing idle surplus only to reopen it costs more.
            pool = max(self.max_concurrency * 2, 16)
            limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
            verify = _ssl_context(self._verify)
            from .wire import AiohttpWire  # here, not at import: aiohttp costs ~60 ms that `import ocinb` need not pay

            transport = self._transport or AiohttpWire(verify=verify, pool=pool, proxies=self.proxies)
            client = httpx.AsyncClient(
                verify=verify, timeout=self._timeout, limits=limits, follow_redirects=False,
                transport=transport, headers={"User-Agent": self._user_agent}, trust_env=False,
            )
            headers = {"User-Agent": self._user_agent, "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
            self._bound = _Bound(client, Authenticator(self.host, self._credentials, client,
                                                       allow_http_realm=self.insecure),
                                 asyncio.Semaphore(self.max_concurrency), transport, headers,
                                 {"timeout": self._timeout.as_dict()})
        elif self._loop is not loop:
            raise RuntimeError(
                "this ocinb.AsyncClient is bound to the event loop it was first used on; "
                "create one per loop, or use ocinb.Client from synchronous code"
            )
        return self._bound

    @property
    def auth(self) -> Authenticator | None:
        """The authenticator, once the core has been used."""
        return self._bound.auth if self._bound is not None else None

    @property
    def limit(self) -> asyncio.Semaphore:
        """The per-registry concurrency limit every bulk operation shares."""
        return self._ensure().limit

    async def aclose(self) -> None:
        """Close the connections; the core may be used again (it builds a new client then)."""
        if self._bound is not None:
            await self._bound.client.aclose()
        self._bound = None
        self._loop = None

    def url(self, path: str) -> str:
        """An absolute URL for a path on the registry (``/v2/...``)."""
        return self.base_url + path

    def _target(self, path_or_url: str) -> str:
        """The URL to send to: a path (``/v2/...``) is on the registry; an absolute http(s) URL is used as given.

        Endpoints pass paths they build and URLs the registry handed out (upload ``Location``, ``Link``).
        """
        if path_or_url.startswith("/"):
            return self.url(path_or_url)
        scheme = urlsplit(path_or_url).scheme.lower()
        if scheme in ("http", "https"):
            return path_or_url
        raise ValueError(f"not a registry path (/v2/...) nor an http(s) URL: {redact_url(path_or_url)[:200]!r}")

    def _same_host(self, url: str) -> bool:
        """Whether ``url`` is on the registry itself (same scheme, host and port): only there goes ``Authorization``."""
        if url.startswith(self._prefix):  # the common case, without parsing: "<base_url>/..."
            return True
        parts = urlsplit(url)
        return parts.netloc.rsplit("@", 1)[-1].lower() == self.host.lower() and (
            parts.scheme == urlsplit(self.base_url).scheme
        )

    def _observe(self, resp: httpx.Response) -> None:
        """Note the registry's ``Warning: 299`` texts (logged once each) and its rate-limit headers.

        One pass over the raw headers: this runs for every response.
        """
        found: dict[bytes, list[bytes]] = {}
        for key, raw_value in resp.headers.raw:
            k = key.lower()
            if k in _OBSERVED:
                found.setdefault(k, []).append(raw_value)
        if not found:
            return
        encoding = resp.headers.encoding
        for item in found.get(b"warning", ()):
            value = item.decode(encoding, "replace")
            if value.startswith("299") and value not in self.warnings:
                self.warnings.append(value)
                log.warning("registry warning: %s", value)
        lim = parse_ratelimit(resp.headers.get("ratelimit-limit")) if b"ratelimit-limit" in found else None
        rem = parse_ratelimit(resp.headers.get("ratelimit-remaining")) if b"ratelimit-remaining" in found else None
        if lim or rem:
            self.rate_limit = RateLimit(
                lim[0] if lim else None, rem[0] if rem else None,
                (lim or rem or (None, None))[1], resp.headers.get("docker-ratelimit-source"),
            )

    async def _ensure_auth_known(self, scopes: tuple[str, ...]) -> None:
        """Learn the registry's challenge before sending a body that cannot be replayed."""
        if self._ensure().auth.known:
            return
        resp = await self._send_handling_auth("GET", self.url("/v2/"), {}, None, None, scopes)
        await resp.aclose()

    async def _send(self, method: str, url: str, *, scopes: tuple[str, ...], headers: Mapping[str, str],
                    body: Body, params: Any) -> httpx.Response:
        """The retry step: send, and send again for as long and as often as :attr:`retry` says.

        The response is returned unread (``stream``-mode) whatever its status. The caller holds the
        concurrency limit (:meth:`request` and :meth:`stream` do).
        """
        if callable(body) or (body is not None and not isinstance(body, bytes)):
            await self._ensure_auth_known(scopes)
        replayable = body is None or isinstance(body, bytes)
        attempt = 0
        while True:
            try:
                resp = await self._send_handling_auth(method, url, headers, body, params, scopes)
            except RETRYABLE_ERRORS as exc:
                wait = self.retry.wait(attempt, method, replayable=replayable, exc=exc)
                if wait is None:
                    raise TransportError(
                        f"{method} {redact_url(url)}: {type(exc).__name__}: {_short(exc)}"
                    ) from None
            else:
                wait = self.retry.wait(attempt, method, replayable=replayable, status=resp.status_code,
                                       retry_after=parse_retry_after(resp.headers.get("retry-after")))
                if wait is None:
                    return resp
                await resp.aclose()
            await asyncio.sleep(wait)
            attempt += 1
            self.stats.retries += 1

    async def _send_handling_auth(self, method: str, url: str, headers: Mapping[str, str], body: Body,
                                  params: Any, scopes: tuple[str, ...]) -> httpx.Response:
        """The auth step: send with the registry's ``Authorization`` and answer at most two 401 challenges.

        A challenge (or a refused token) is learnt by the :class:`Authenticator`, which says which scopes
        to try again with; the whole request, redirects included, is then sent again.
        """
        auth = self._ensure().auth
        current = scopes
        rounds = 0
        while True:
            authorization = await auth.authorization(current) if self._same_host(url) else None
            resp = await self._send_handling_redirects(method, url, headers, body, params, authorization)
            if resp.status_code != 401 or rounds == 2 or not self._same_host(str(resp.request.url)):
                return resp
            retry_scopes = auth.on_unauthorized(resp, current, authorization)
            if retry_scopes is None:
                return resp
            await resp.aclose()
            current = retry_scopes
            rounds += 1

    async def _send_handling_redirects(self, method: str, url: str, headers: Mapping[str, str], body: Body,
                                       params: Any, authorization: str | None) -> httpx.Response:
        """The redirect step: follow up to ten redirects, ``Location`` sent as given (signed URLs intact).

        ``authorization`` goes only to the registry itself, never to the storage a blob redirects to.
        """
        for _ in range(_MAX_REDIRECTS):
            resp = await self._send_single_request(method, url, headers, body, params,
                                                   authorization if self._same_host(url) else None)
            if resp.status_code not in _REDIRECTS or "location" not in resp.headers:
                return resp
            location = join_location(str(resp.request.url), resp.headers["location"],
                                     status=resp.status_code, method=method)
            await resp.aclose()
            self.stats.redirects += 1
            next_method = _redirect_method(resp.status_code, method)
            if next_method != method:  # the body is not resent, nor the headers that describe it
                body = None
                headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
            method, url, params = next_method, location, None
        return await self._send_single_request(method, url, headers, body, params,
                                               authorization if self._same_host(url) else None)

    async def _send_single_request(self, method: str, url: str, headers: Mapping[str, str], body: Body,
                                   params: Any, authorization: str | None) -> httpx.Response:
        """One exchange on the wire, its body unread; counted, and its warnings and rate limit noted.

        The request goes to the transport itself: auth, redirects and retries are the steps above, so
        httpx's client-side loop (cookies, its own auth and redirect flow, hooks) would only cost CPU.
        """
        bound = self._ensure()
        req_headers = httpx.Headers(bound.headers)
        req_headers.update(headers)  # case-insensitively: a caller's "accept" replaces the default
        if authorization:
            req_headers["Authorization"] = authorization
        content: Any = body() if callable(body) else body
        request = httpx.Request(method, url, headers=req_headers, content=content, params=params,
                                extensions=bound.extensions)
        async with self.budget.turn(method, url, functools.partial(self._probe_quota, url, authorization)) as turn:
            self.stats.count(method)
            try:
                resp = await bound.transport.handle_async_request(request)
            except httpx.HTTPError:
                if callable(body) and hasattr(content, "aclose"):
                    await content.aclose()
                raise
            resp.request = request
            turn.reply(resp.status_code, resp.headers)
        self._observe(resp)
        if resp.status_code < 400 and authorization is None and self._same_host(url):
            bound.auth.learn_anonymous()
        return resp

    async def _probe_quota(self, url: str, authorization: str | None) -> tuple[int, httpx.Headers]:
        """A HEAD of ``url`` (free on Docker Hub) for the rate budget to learn the quota while it waits."""
        headers = {"Accept": ", ".join(MANIFEST_ACCEPT)}
        if authorization:
            headers["Authorization"] = authorization
        self.stats.count("HEAD")
        resp = await self._ensure().client.head(url, headers=headers)
        self._observe(resp)
        return resp.status_code, resp.headers

    async def request(self, method: str, path_or_url: str, *, scopes: Iterable[str] = (),
                      expect: Iterable[int] = (200,), headers: Mapping[str, str] | None = None,
                      body: Body = None, params: Any = None, max_body: int | None = None) -> Reply:
        """Send and read the body; raise the mapped :class:`RegistryError` unless the status is expected.

        ``max_body`` bounds how much of a success body is read (a larger one raises ``SIZE_INVALID``).
        """
        async with self._ensure().limit:  # held until the body is read, so the connection goes back warm
            resp = await self._send(method, self._target(path_or_url), scopes=tuple(scopes), headers=headers or {},
                                    body=body, params=params)
            if resp.status_code not in tuple(expect):
                await raise_for_status(resp, anonymous=self.anonymous)
            url = str(resp.request.url)
            chunks: list[bytes] = []
            total = 0
            # Undecoded unless the answer says it is encoded (a gzipped error or manifest is decoded); a
            # response read already (a MockTransport's) yields its content through aiter_bytes.
            raw = not resp.is_stream_consumed and "content-encoding" not in resp.headers
            pieces = resp.aiter_raw() if raw else resp.aiter_bytes()
            try:
                async for chunk in pieces:
                    total += len(chunk)
                    if max_body is not None and total > max_body:
                        raise RegistryError(resp.status_code, method, url, [ErrorDetail(
                            "SIZE_INVALID", f"response larger than the {max_body} bytes allowed")])
                    chunks.append(chunk)
            except httpx.HTTPError as exc:
                raise TransportError(f"{method} {redact_url(url)}: {type(exc).__name__}: {_short(exc)}") from None
            finally:
                await resp.aclose()
        return Reply(resp.status_code, resp.headers, b"".join(chunks), url, method)

    @asynccontextmanager
    async def stream(self, method: str, path_or_url: str, *, scopes: Iterable[str] = (),
                     expect: Iterable[int] = (200,), headers: Mapping[str, str] | None = None,
                     params: Any = None) -> AsyncIterator[httpx.Response]:
        """Send and yield the response with its body unread; errors are raised before yielding.

        The concurrency limit covers the exchange up to the headers only: a long body read must not hold
        a slot that a request of the same registry (a copy's upload, say) may be waiting for.
        """
        async with self._ensure().limit:
            resp = await self._send(method, self._target(path_or_url), scopes=tuple(scopes), headers=headers or {},
                                    body=None, params=params)
        try:
            if resp.status_code not in tuple(expect):
                await raise_for_status(resp, anonymous=self.anonymous)
            yield resp
        finally:
            await resp.aclose()


def join_location(base: str, location: str, *, status: int = 0, method: str = "") -> str:
    """``Location`` resolved against the URL that returned it (relative or absolute, query kept).

    A malformed value is the registry's error, raised as :class:`RegistryError`, never httpx's.
    """
    try:
        return str(httpx.URL(base).join(location))
    except (httpx.InvalidURL, ValueError):
        raise RegistryError(status, method, base, [ErrorDetail(
            "BLOB_UPLOAD_INVALID", f"the registry answered an unusable Location: {location[:200]!r}")]) from None


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return redact_url(text) if "://" in text else text[:300]


