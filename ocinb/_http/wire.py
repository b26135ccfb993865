"""The default wire under :class:`~ocinb._http.transport.HttpCore`: an httpx transport over aiohttp.

httpx stays ocinb's HTTP API (requests, responses, ``transport=``); aiohttp moves the bytes, because it
costs about half the CPU per request of httpcore's pool (``bench/README.md``, case 1). What ocinb
promises holds on this wire: bodies are passed on undecoded (``auto_decompress=False``; httpx decodes
only where ocinb asks for decoded bytes), URLs go out byte for byte (``yarl.URL(..., encoded=True)``:
signed query strings are never re-quoted), request bodies stream, each request picks its proxy by
:func:`~ocinb._http.proxy.proxy_for`, and aiohttp's errors surface as the httpx errors the retry policy
and error mapping already know.
"""

from __future__ import annotations

import asyncio
import atexit
import ssl
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx
import yarl

from .proxy import ProxyRules

__all__ = ["AiohttpWire"]

_MAX_HEADER = 64 * 1024
"""Longest status line and header field accepted (aiohttp's default 8 KiB is less than httpx's)."""

_TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ServerTimeoutError, TimeoutError)


def _map(exc: BaseException) -> httpx.TransportError:
    """The httpx error that says what an aiohttp error says (the retry policy reads httpx's classes)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(message)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, _TIMEOUT_ERRORS):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionError | OSError):
        return httpx.ReadError(message)
    return httpx.TransportError(message)


_MAPPED = (aiohttp.ClientError, TimeoutError, OSError)


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except _MAPPED as exc:
        raise _map(exc) from exc


class _Body(httpx.AsyncByteStream):
    """A response body as aiohttp delivers it, undecoded; closing it returns or drops the connection."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._resp.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A body read to its end leaves a connection fit for reuse; anything else is dropped.
        if self._resp.content.at_eof():
            self._resp.release()
        else:
            self._resp.close()


_SLICE = 1024 * 1024


async def _slices(data: bytes) -> AsyncIterator[bytes]:
    """Large bytes in 1 MiB views: aiohttp warns on (and writes in one go) a bytes body over 1 MiB."""
    view = memoryview(data)
    for start in range(0, len(view), _SLICE):
        yield view[start:start + _SLICE]  # type: ignore[misc]


async def _stream(body: httpx.AsyncByteStream | httpx.SyncByteStream) -> AsyncIterator[bytes]:
    if not isinstance(body, httpx.AsyncByteStream):
        raise httpx.UnsupportedProtocol("a synchronous request body on an async transport")
    async for chunk in body:
        yield chunk


async def _closed_with_loop(wire: AiohttpWire) -> AsyncIterator[None]:
    """Suspended for the life of a session: a loop ended as ``asyncio.run`` ends one (``shutdown_asyncgens``)
    closes this generator, and with it the session, while the loop can still run the close."""
    try:
        yield
    finally:
        await wire._close_session()


class AiohttpWire(httpx.AsyncBaseTransport):
    """One aiohttp session, made on first use in the running loop and closed by :meth:`aclose`, by the end
    of that loop (``asyncio.run``) or at exit, whichever comes first.

    ``HttpCore`` builds one per event loop it is bound to, so a session never crosses loops.
    """

    def __init__(self, *, verify: ssl.SSLContext | bool, pool: int, proxies: ProxyRules | None = None) -> None:
        self._ssl: ssl.SSLContext | bool = verify
        self._pool = pool
        self._proxies = proxies or ProxyRules()
        self._proxied = self._proxies.any  # no proxy anywhere: skip the per-request decision
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: AsyncIterator[None] | None = None
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"<AiohttpWire pool={self._pool} proxies={self._proxies!r}>"

    async def _ensure(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._loop = asyncio.get_running_loop()
            connector = aiohttp.TCPConnector(limit=self._pool, limit_per_host=0, ssl=self._ssl,
                                             keepalive_timeout=60.0, enable_cleanup_closed=False)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None), trust_env=False, requote_redirect_url=False,
                max_line_size=_MAX_HEADER, max_field_size=_MAX_HEADER,
            )
            self._guard = _closed_with_loop(self)
            await anext(self._guard)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = await self._ensure()
        timeout = request.extensions.get("timeout", {})
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                   if k.lower() != b"transfer-encoding"]  # aiohttp frames an unsized body itself
        sized = isinstance(request.stream, httpx.ByteStream)  # bytes: sent as is; anything else streams
        data: Any = (request.read() or None) if sized else _stream(request.stream)
        if isinstance(data, bytes) and len(data) > _SLICE:
            data = _slices(data)  # Content-Length is in the headers already: still sent unchunked
        url = yarl.URL(str(request.url), encoded=True)
        try:
            proxy = self._proxies.proxy_for(str(request.url)) if self._proxied else None
        except ValueError as exc:  # an unusable proxy in the environment: the same answer every time
            raise httpx.UnsupportedProtocol(str(exc)) from None
        proxy_headers: dict[str, str] | None = None
        if proxy is not None and url.scheme == "http":
            # Forwarded plain HTTP: proxies such as tinyproxy close after each answer without saying so,
            # and a POST sent on that dead connection could not be retried. (CONNECT tunnels stay alive.)
            headers = [(k, v) for k, v in headers if k.lower() != "connection"] + [("Connection", "close")]
            if proxy.authorization:  # the proxy reads it from the request itself
                headers.append(("Proxy-Authorization", proxy.authorization))
        elif proxy is not None and proxy.authorization:  # on the CONNECT only, never inside the tunnel
            proxy_headers = {"Proxy-Authorization": proxy.authorization}
        with _mapped():
            resp = await session.request(
                request.method, url, headers=headers, data=data, allow_redirects=False, compress=None,
                proxy=proxy.url if proxy else None,
                proxy_headers=proxy_headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout.get("connect"),
                                              sock_read=timeout.get("read")),
            )
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if resp.reason:
            extensions["reason_phrase"] = resp.reason.encode("latin-1", "replace")
        return httpx.Response(resp.status, headers=list(resp.raw_headers), stream=_Body(resp), request=request,
                              extensions=extensions)

    async def aclose(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard.aclose()  # type: ignore[attr-defined]  # its finally closes the session
        await self._close_session()

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            # SSL transports finish closing on the next loop turns; let them, so none is reported unclosed.
            await asyncio.sleep(0)


_LIVE: weakref.WeakSet[AiohttpWire] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Close every session still open, on its own loop if that loop still runs (ocinb's loop thread)."""
    for wire in list(_LIVE):
        loop, session = wire._loop, wire._session
        if loop is None or session is None or session.closed or loop.is_closed():
            continue
        try:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(wire.aclose(), loop).result(timeout=5)
            else:
                loop.run_until_complete(wire.aclose())
        except (RuntimeError, TimeoutError, OSError):
            pass  # the loop is going away mid-exit: nothing more can be closed cleanly
