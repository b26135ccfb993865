"""The wire under HttpCore (aiohttp by default, httpx's own on request): raw blob bytes, URLs byte for byte,
one session per loop closed without warnings.

Blob storage here is a small stdlib server in this process because the CNCF registry (filesystem storage,
redirects off) never redirects a blob to a signed URL nor serves one with ``Content-Encoding: gzip``; what
is checked is what went over the socket (the request line as the server read it, the raw body bytes).
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import hashlib
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import ocinb
from ocinb._http.transport import HttpCore
from ocinb._http.wire import AiohttpWire
from ocinb.cache import ContentCache
from ocinb.testing import LocalRegistry

LAYER = gzip.compress(b"a gzip layer, served with Content-Encoding: gzip by careless storage\n" * 100)
DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()
SIGNED = "/storage/obj%2Fkey?X-Amz-Signature=a%2Fb+c%3D%3D&X-Amz-Credential=k%2F20260101&x=1=2&e=%7e"
"""A signed storage URL: ``%2F``, ``+``, ``=`` and ``%7e`` must reach the server exactly like this."""


class _Storage(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, str | None]]


class _Handler(BaseHTTPRequestHandler):
    server: _Storage

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Accept-Encoding")))
        if self.path == "/v2/":
            self._send(200, b"{}", [("Content-Type", "application/json")])
        elif self.path == f"/v2/r/blobs/{DIGEST}":
            self._send(307, b"", [("Location", f"http://{self.headers['Host']}{SIGNED}")])
        elif self.path == SIGNED:
            self._send(200, LAYER, [("Content-Type", "application/octet-stream"), ("Content-Encoding", "gzip")])
        else:
            self._send(404, b"", [])

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def storage() -> Iterator[_Storage]:
    server = _Storage(("127.0.0.1", 0), _Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


WIRES = {"aiohttp (default)": None, "httpx": httpx.AsyncHTTPTransport}


@pytest.mark.parametrize("wire", list(WIRES))
def test_gzip_blob_is_hashed_raw_and_signed_url_sent_as_given(storage: _Storage, tmp_path: Path, wire: str) -> None:
    """The digest is of the bytes as stored (the gzip layer), not of their decompression; the redirect's
    signed query reaches storage byte for byte; the blob request asks for no content coding."""
    host = f"127.0.0.1:{storage.server_address[1]}"
    make = WIRES[wire]

    async def go() -> tuple[bytes, Path]:
        async with ocinb.AsyncClient(host, cache=ContentCache(tmp_path / "c"), docker_config=False,
                                     environment=False, transport=make() if make else None) as c:
            got = await c.repo("r").blobs.get(DIGEST)
            path = tmp_path / "layer.gz"
            await c.repo("r").blobs.download(DIGEST, path)
            return got, path

    got, path = asyncio.run(go())
    assert got == LAYER and path.read_bytes() == LAYER
    signed = [s for s in storage.seen if s[0].startswith("/storage/")]
    assert signed == [(SIGNED, "identity")] * 2


def test_default_wire_is_aiohttp_and_one_session_per_loop(registry: LocalRegistry) -> None:
    """HttpCore's default transport is the aiohttp wire, one per event loop, closed by aclose()."""
    core = HttpCore(registry.address)

    async def use() -> AiohttpWire:
        reply = await core.request("GET", "/v2/")
        assert reply.status == 200
        bound = core._ensure()
        wire = bound.client._transport
        assert isinstance(wire, AiohttpWire)
        session = wire._session
        assert session is not None and not session.closed
        await core.aclose()
        assert session.closed
        return wire

    first = asyncio.run(use())
    second = asyncio.run(use())  # a new loop: a new wire and session, the old one stays closed
    assert first is not second


def test_no_unclosed_session_warning_after_aclose(registry: LocalRegistry, tmp_path: Path) -> None:
    """Closing the client closes aiohttp's session and connector: nothing is reported unclosed."""
    async def go() -> None:
        async with ocinb.AsyncClient(registry.address, cache=ContentCache(tmp_path / "c"), docker_config=False,
                                     environment=False) as c:
            await c.ping()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(go())
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_sync_client_closes_its_session(registry: LocalRegistry, tmp_path: Path) -> None:
    """The sync facade's close() closes the session on ocinb's loop thread; nothing is left unclosed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = ocinb.Client(registry.address, cache=ContentCache(tmp_path / "c"), docker_config=False,
                         environment=False)
        c.ping()
        c.close()
        del c
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_session_closed_when_its_loop_ends_unclosed(registry: LocalRegistry, tmp_path: Path) -> None:
    """A client never closed, on a loop ``asyncio.run`` ends: the loop's end closes the session (no warning)."""
    client = ocinb.AsyncClient(registry.address, cache=ContentCache(tmp_path / "c"), docker_config=False,
                               environment=False)

    async def go() -> AiohttpWire:
        await client.ping()
        wire = client._core._ensure().client._transport
        assert isinstance(wire, AiohttpWire)
        return wire

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wire = asyncio.run(go())
        gc.collect()
    assert wire._session is None
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
