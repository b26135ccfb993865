"""Registry-wide endpoints: end-1 (API version check) and the catalog extension."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from .._http.auth import CATALOG_SCOPE
from .._http.transport import HttpCore
from ._pages import page_params, paginate, string_list


@dataclass(frozen=True)
class Ping:
    """What ``GET /v2/`` told: the API version header and the auth scheme in use."""

    url: str
    api_version: str | None
    auth_scheme: str | None
    status: int


async def ping(core: HttpCore) -> Ping:
    """end-1: ``GET /v2/``; authenticates when the registry asks, raises on any failure."""
    reply = await core.request("GET", "/v2/", expect=(200,))
    auth = core.auth.scheme if core.auth else None
    return Ping(core.base_url, reply.headers.get("docker-distribution-api-version"),
                None if auth == "none" else auth, reply.status)


async def catalog_pages(core: HttpCore, n: int | None = None, last: str | None = None) -> AsyncIterator[list[str]]:
    """``GET /v2/_catalog`` page by page, following ``Link``."""
    async for reply in paginate(core, core.url("/v2/_catalog"), scopes=(CATALOG_SCOPE,), params=page_params(n, last)):
        yield string_list(reply, "catalog", "repositories")


async def catalog(core: HttpCore, n: int | None = None, last: str | None = None) -> list[str]:
    """Every repository of the catalog, across all pages."""
    out: list[str] = []
    async for page in catalog_pages(core, n, last):
        out.extend(page)
    return out
