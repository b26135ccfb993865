"""The one HTTP core: owns the ``httpx.AsyncClient`` and does auth, redirects, retries and errors.

Endpoints call :meth:`HttpCore.request` (body read) or :meth:`HttpCore.stream` (body streamed) with
the scopes the request needs; nothing else in ocinb builds an HTTP request.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import DeniedError, ErrorDetail, RegistryError, TransportError, error_class_for, redact_url
from ..reference import is_local_host
from .auth import Authenticator, normalize_scopes
from .credentials import Credentials
from .headers import parse_ratelimit, parse_retry_after, parse_www_authenticate

log = logging.getLogger("ocinb.http")


_SECRET_PARAM = re.compile(
    r"([?&](?:sig|signature|token|access_token|refresh_token|password|secret|se|sv|x-amz-signature|"
    r"x-amz-credential|x-amz-security-token|x-goog-signature)=)[^&\s'\"]+",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=8)
def _shared_context(cafile: str | None) -> ssl.SSLContext:
    """One verifying TLS context per CA bundle per process: building one costs 10–30 ms."""
    if cafile is None:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile)


def _ssl_context(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    """What to hand httpx for ``verify``: the caller's context, ``False``, or a shared context."""
    if isinstance(verify, ssl.SSLContext) or verify is False:
        return verify
    return _shared_context(None if verify is True else str(verify))


class _RedactURLs(logging.Filter):
    """Mask signed query values in what httpx and httpcore log (redirect targets to storage carry them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_PARAM.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


for _name in ("httpx", "httpcore.http11", "httpcore.http2", "httpcore.connection", "httpcore.proxy"):
    logging.getLogger(_name).addFilter(_RedactURLs())

USER_AGENT = "ocinb/0.1 (+https://github.com/ocinb/ocinb)"
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 10
_ERROR_BODY_LIMIT = 64 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

Body = bytes | Callable[[], AsyncIterator[bytes]] | None
"""A request body: bytes (replayable), a factory of async chunk iterators (replayable), or None."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: retries on 429/5xx and dropped connections, with backoff and ``Retry-After``."""

    retries: int = 4
    backoff: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 120.0
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        base = min(self.backoff_max, self.backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)


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
    ) -> None:
        self.host = host
        plain = insecure if insecure is not None else is_local_host(host)
        self.insecure = bool(insecure)
        self.base_url = f"{'http' if plain else 'https'}://{host}"
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self.rate_limit = RateLimit()
        self.stats = Stats()
        self.warnings: list[str] = []
        self._credentials = credentials
        self._verify = verify
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=15.0)
        self._transport = transport
        self._user_agent = user_agent
        self._client: httpx.AsyncClient | None = None
        self._auth: Authenticator | None = None
        self._limit: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<HttpCore {self.base_url} credentials={self._credentials!r}>"

    @property
    def anonymous(self) -> bool:
        """Whether the core holds no credentials at all."""
        c = self._credentials
        return c is None or not (c.has_basic or c.identity_token)

    def _ensure(self) -> tuple[httpx.AsyncClient, Authenticator, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is None or self._client is None:
            self._loop = loop
            # Every connection may stay alive: closing idle surplus only to reopen it costs more.
            pool = max(self.max_concurrency * 2, 16)
            limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
            self._client = httpx.AsyncClient(
                verify=_ssl_context(self._verify), timeout=self._timeout, limits=limits, follow_redirects=False,
                transport=self._transport, headers={"User-Agent": self._user_agent}, trust_env=False,
            )
            self._auth = Authenticator(self.host, self._credentials, self._client,
                                       allow_http_realm=self.insecure)
            self._limit = asyncio.Semaphore(self.max_concurrency)
        elif self._loop is not loop:
            raise RuntimeError(
                "this ocinb.AsyncClient is bound to the event loop it was first used on; "
                "create one per loop, or use ocinb.Client from synchronous code"
            )
        assert self._auth is not None and self._limit is not None
        return self._client, self._auth, self._limit

    @property
    def auth(self) -> Authenticator | None:
        """The authenticator, once the core has been used."""
        return self._auth

    @property
    def limit(self) -> asyncio.Semaphore:
        """The per-registry concurrency limit every bulk operation shares."""
        return self._ensure()[2]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client = None
        self._loop = None

    def url(self, path: str) -> str:
        """An absolute URL for a path on the registry (``/v2/...``)."""
        return self.base_url + path

    def _same_host(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.netloc.rsplit("@", 1)[-1].lower() == self.host.lower() and (
            parts.scheme == urlsplit(self.base_url).scheme
        )

    def _observe(self, resp: httpx.Response) -> None:
        for value in resp.headers.get_list("warning"):
            if value.startswith("299") and value not in self.warnings:
                self.warnings.append(value)
                log.warning("registry warning: %s", value)
        lim = parse_ratelimit(resp.headers.get("ratelimit-limit"))
        rem = parse_ratelimit(resp.headers.get("ratelimit-remaining"))
        if lim or rem:
            self.rate_limit = RateLimit(
                lim[0] if lim else None, rem[0] if rem else None,
                (lim or rem or (None, None))[1], resp.headers.get("docker-ratelimit-source"),
            )

    async def _ensure_auth_known(self, scopes: tuple[str, ...]) -> None:
        """Learn the registry's challenge before sending a body that cannot be replayed."""
        _, auth, _ = self._ensure()
        if auth.known:
            return
        resp = await self._send_once("GET", self.url("/v2/"), {}, None, None, scopes)
        await resp.aclose()

    async def _send_once(self, method: str, url: str, headers: Mapping[str, str], body: Body,
                         params: Any, scopes: tuple[str, ...]) -> httpx.Response:
        """Send one request, following redirects and answering auth challenges (bounded)."""
        client, auth, _ = self._ensure()
        auth_rounds = 0
        redirects = 0
        current_scopes = scopes
        while True:
            req_headers = dict(headers)
            sent_auth: str | None = None
            if self._same_host(url):
                sent_auth = await auth.authorization(current_scopes)
                if sent_auth:
                    req_headers["Authorization"] = sent_auth
            content: Any = body() if callable(body) else body
            request = client.build_request(method, url, headers=req_headers, content=content, params=params)
            self.stats.count(method)
            try:
                resp = await client.send(request, stream=True)
            except httpx.HTTPError:
                if callable(body) and hasattr(content, "aclose"):
                    await content.aclose()
                raise
            self._observe(resp)
            if resp.status_code == 401 and self._same_host(url) and auth_rounds < 2:
                retry_scopes = auth.on_unauthorized(resp, current_scopes, sent_auth)
                if retry_scopes is not None:
                    await resp.aclose()
                    auth_rounds += 1
                    current_scopes = retry_scopes
                    continue
            elif resp.status_code < 400 and sent_auth is None and self._same_host(url):
                auth.learn_anonymous()
            if resp.status_code in _REDIRECTS and "location" in resp.headers and redirects < _MAX_REDIRECTS:
                location = join_location(str(resp.request.url), resp.headers["location"],
                                         status=resp.status_code, method=method)
                await resp.aclose()
                redirects += 1
                self.stats.redirects += 1
                if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                    method, body = "GET", None
                url, params = location, None
                continue
            return resp

    async def send(self, method: str, path_or_url: str, *, scopes: Iterable[str] = (),
                   headers: Mapping[str, str] | None = None, body: Body = None,
                   params: Any = None) -> httpx.Response:
        """Send with retries; the response is returned unread (``stream``-mode) whatever its status.

        The caller holds the concurrency limit (:meth:`request` and :meth:`stream` do).
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        scope_t = tuple(scopes)
        if callable(body) or (body is not None and not isinstance(body, bytes)):
            await self._ensure_auth_known(scope_t)
        attempt = 0
        while True:
            try:
                resp = await self._send_once(method, url, headers or {}, body, params, scope_t)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                connect_only = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                replayable = body is None or isinstance(body, bytes)
                if attempt < self.retry.retries and (connect_only or (method in _IDEMPOTENT and replayable)):
                    await asyncio.sleep(self.retry.delay(attempt, None))
                    attempt += 1
                    self.stats.retries += 1
                    continue
                raise TransportError(
                    f"{method} {redact_url(url)}: {type(exc).__name__}: {_short(exc)}"
                ) from None
            # A status retry replays the request: only where that cannot apply it twice.
            safe = method in _IDEMPOTENT or resp.status_code in (429, 503)
            if resp.status_code in self.retry.statuses and safe and attempt < self.retry.retries:
                wait = parse_retry_after(resp.headers.get("retry-after"))
                if wait is None or wait <= self.retry.max_retry_after:
                    await resp.aclose()
                    await asyncio.sleep(self.retry.delay(attempt, wait))
                    attempt += 1
                    self.stats.retries += 1
                    continue
            return resp

    async def request(self, method: str, path_or_url: str, *, scopes: Iterable[str] = (),
                      expect: Iterable[int] = (200,), headers: Mapping[str, str] | None = None,
                      body: Body = None, params: Any = None, max_body: int | None = None) -> Reply:
        """Send and read the body; raise the mapped :class:`RegistryError` unless the status is expected.

        ``max_body`` bounds how much of a success body is read (a larger one raises ``SIZE_INVALID``).
        """
        async with self._ensure()[2]:  # held until the body is read, so the connection goes back warm
            resp = await self.send(method, path_or_url, scopes=scopes, headers=headers, body=body, params=params)
            if resp.status_code not in tuple(expect):
                await raise_for_status(resp, anonymous=self.anonymous)
            url = str(resp.request.url)
            chunks: list[bytes] = []
            total = 0
            try:
                async for chunk in resp.aiter_bytes():
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
        async with self._ensure()[2]:
            resp = await self.send(method, path_or_url, scopes=scopes, headers=headers, params=params)
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


async def raise_for_status(resp: httpx.Response, *, anonymous: bool = False) -> None:
    """Read (a bounded part of) an error response and raise the matching :class:`RegistryError`."""
    raw = b""
    try:
        async for chunk in resp.aiter_bytes():  # decoded: a gzipped error body keeps its codes
            raw += chunk
            if len(raw) > _ERROR_BODY_LIMIT:
                raw = raw[:_ERROR_BODY_LIMIT]
                break
    except httpx.HTTPError:
        pass
    finally:
        await resp.aclose()
    raise error_from_response(resp.status_code, resp.request.method, str(resp.request.url), raw,
                              dict(resp.headers), anonymous=anonymous)


def error_from_response(status: int, method: str, url: str, raw: bytes,
                        headers: Mapping[str, str], *, anonymous: bool = False) -> RegistryError:
    """Build the error for a failed exchange, parsing an OCI error body when there is one.

    A 401 with ``error="insufficient_scope"`` becomes a :class:`DeniedError` unless ``anonymous``.
    """
    errors: list[ErrorDetail] = []
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text) if text.strip().startswith(("{", "[")) else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        for item in data["errors"][:20]:
            if isinstance(item, dict):
                code = str(item.get("code") or "UNKNOWN")[:100]
                message = str(item.get("message") or "")[:1000]
                errors.append(ErrorDetail(code, message, item.get("detail")))
    elif isinstance(data, dict) and ("error" in data or "message" in data):
        errors.append(ErrorDetail(str(data.get("code") or data.get("error") or "UNKNOWN")[:100],
                                  str(data.get("message") or data.get("error_description") or "")[:1000]))
    cls = error_class_for(status)
    if status == 401:
        refused = [c for c in parse_www_authenticate(str(headers.get("www-authenticate") or headers.get(
            "WWW-Authenticate") or "")) if c.error == "insufficient_scope"]
        if refused:
            # A token was sent and the registry wants more than it grants: with credentials that is a
            # permission problem (DeniedError); without, the credentials are missing (UnauthorizedError).
            needed = " ".join(normalize_scopes(refused[0].scopes)) or "a wider scope"
            if anonymous:
                errors.insert(0, ErrorDetail("UNAUTHORIZED", f"insufficient_scope: anonymous access is not granted "
                                             f"{needed}; pass credentials"))
            else:
                cls = DeniedError
                errors.insert(0, ErrorDetail("DENIED", f"insufficient_scope: the credentials are not granted {needed}"))
    # A 416 to an upload chunk says where the upload stands (spec: Range and Location); it is kept for
    # the resume, never shown (``headers`` is in neither ``str`` nor ``repr``).
    wanted = {"retry-after", "www-authenticate", "docker-distribution-api-version", "ratelimit-limit",
              "ratelimit-remaining", "content-type", *(("range", "location") if status == 416 else ())}
    keep = {k.lower(): v for k, v in headers.items() if k.lower() in wanted}
    body = "" if errors else " ".join(text.split())[:500]
    return cls(status, method, url, errors, body, keep)
