"""The redirect step: which method and body follow each redirect status, and paths vs URLs.

An in-process fake (httpx.MockTransport) answers here because the CNCF registry never sends 301, 302 or
303, nor redirects a HEAD or a POST; the expected methods are RFC 9110 §15.4's, not ocinb's table.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest

from ocinb._http.transport import HttpCore, RetryPolicy


@dataclass
class Seen:
    method: str
    url: str
    content: bytes
    headers: httpx.Headers


def _run(status: int, method: str, body: bytes | None, headers: dict[str, str] | None = None) -> list[Seen]:
    """Send ``method`` to /v2/start, which answers ``status`` to /v2/next; return what the server saw."""
    seen: list[Seen] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(Seen(request.method, str(request.url), request.read(), request.headers))
        if request.url.path == "/v2/start":
            return httpx.Response(status, headers={"Location": "/v2/next?x=1"})
        return httpx.Response(200, content=b"" if request.method == "HEAD" else b"done")

    async def go() -> None:
        core = HttpCore("registry.test", transport=httpx.MockTransport(handler), retry=RetryPolicy(retries=0))
        try:
            reply = await core.request(method, "/v2/start", body=body, headers=headers)
            assert reply.status == 200 and reply.url == "https://registry.test/v2/next?x=1"
            assert core.stats.redirects == 1
        finally:
            await core.aclose()

    asyncio.run(go())
    assert [s.url for s in seen] == ["https://registry.test/v2/start", "https://registry.test/v2/next?x=1"]
    return seen


def test_head_answered_303_stays_head() -> None:
    """RFC 9110 §15.4.4: the 303 target is retrieved with GET, "except a HEAD", which stays a HEAD."""
    first, second = _run(303, "HEAD", None, {"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert (first.method, second.method) == ("HEAD", "HEAD")
    assert second.headers["accept"] == "application/vnd.oci.image.manifest.v1+json"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_head_keeps_head(status: int) -> None:
    assert [s.method for s in _run(status, "HEAD", None)] == ["HEAD", "HEAD"]


@pytest.mark.parametrize("status", [301, 302, 303])
def test_post_becomes_get_without_its_body(status: int) -> None:
    """§15.4.2/§15.4.3 (POST → GET on 301/302, as user agents do) and §15.4.4 (303 → GET)."""
    first, second = _run(status, "POST", b"0123456789", {"Content-Type": "application/octet-stream"})
    assert (first.method, first.content) == ("POST", b"0123456789")
    assert (second.method, second.content) == ("GET", b"")
    assert "content-type" not in second.headers and second.headers.get("content-length") in (None, "0")


def test_put_answered_303_becomes_get_without_its_length() -> None:
    """A PUT's Content-Length must not go with the GET that follows a 303, or the server waits for a body."""
    first, second = _run(303, "PUT", b"abc", {"Content-Length": "3", "Content-Range": "0-2"})
    assert (first.method, first.content) == ("PUT", b"abc")
    assert (second.method, second.content) == ("GET", b"")
    assert second.headers.get("content-length") in (None, "0") and "content-range" not in second.headers


@pytest.mark.parametrize(("status", "method"), [(307, "POST"), (308, "POST"), (307, "PUT"), (308, "PATCH"),
                                                (301, "PUT"), (302, "PATCH")])
def test_method_and_body_kept(status: int, method: str) -> None:
    """307/308 never change the method (§15.4.8, §15.4.9); 301/302 change only a POST."""
    first, second = _run(status, method, b"payload")
    assert (second.method, second.content) == (method, b"payload") == (first.method, first.content)


def test_path_and_url_chosen_explicitly() -> None:
    """A path is on the registry even when its query holds a URL; something neither is refused unsent."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=b"{}")

    async def go() -> None:
        core = HttpCore("registry.test", transport=httpx.MockTransport(handler))
        try:
            await core.request("GET", "/v2/r/tags/list?last=https://elsewhere.example/x")
            await core.request("GET", "https://storage.test/blob?sig=1")
            for bad in ("v2/r/tags/list", "elsewhere.example/v2/", "ftp://registry.test/v2/"):
                with pytest.raises(ValueError, match="not a registry path"):
                    await core.request("GET", bad)
        finally:
            await core.aclose()

    asyncio.run(go())
    assert seen == ["https://registry.test/v2/r/tags/list?last=https://elsewhere.example/x",
                    "https://storage.test/blob?sig=1"]
