"""``Link`` pagination and defensive decoding of JSON answers, shared by every listing endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from .._http.headers import next_link
from .._http.transport import HttpCore, Reply
from ..errors import ErrorDetail, RegistryError


def json_object(reply: Reply, what: str) -> dict[str, Any]:
    """The reply's body as a JSON object, or a :class:`RegistryError` saying what was wrong."""
    try:
        doc = json.loads(reply.content)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        raise RegistryError(reply.status, reply.method, reply.url,
                            [ErrorDetail("UNKNOWN", f"the {what} answer is not a JSON object")])
    return doc


def page_params(n: int | None, last: str | None) -> dict[str, str | int]:
    """The ``n``/``last`` query of a listing (``n`` is a page size, ``last`` exclusive)."""
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    params: dict[str, str | int] = {}
    if n is not None:
        params["n"] = n
    if last is not None:
        params["last"] = last
    return params


async def paginate(core: HttpCore, url: str, *, scopes: Iterable[str], params: dict[str, Any] | None = None,
                   **request: Any) -> AsyncIterator[Reply]:
    """Every page of a listing: ``params`` on the first request, then the ``Link rel="next"`` URLs as given
    (resolved against the page that sent them), stopping at the last page or at a URL already seen."""
    seen: set[str] = set()
    next_url: str | None = url
    first = True
    while next_url and next_url not in seen:
        seen.add(next_url)
        reply = await core.request("GET", next_url, scopes=scopes, params=params if first else None, **request)
        first = False
        yield reply
        next_url = next_link(reply.headers.get("link"), reply.url)


def string_list(reply: Reply, what: str, field: str) -> list[str]:
    """``field`` of a JSON listing as strings (absent or null means empty)."""
    values = json_object(reply, what).get(field) or []
    if not isinstance(values, list):
        raise RegistryError(reply.status, reply.method, reply.url,
                            [ErrorDetail("UNKNOWN", f"{what} {field!r} is not a list")])
    return [str(v) for v in values]
