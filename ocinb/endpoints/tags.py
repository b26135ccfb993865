"""end-8a/8b: listing tags, following ``Link`` pagination."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .._http.headers import next_link
from ..errors import ErrorDetail, RegistryError
from ._base import RepoContext
from ._pages import json_object


class Tags:
    """``repo.tags``: the tags of one repository."""

    def __init__(self, ctx: RepoContext) -> None:
        self._ctx = ctx

    async def pages(self, n: int | None = None, last: str | None = None) -> AsyncIterator[list[str]]:
        """Each page of ``GET /v2/<name>/tags/list?n=&last=``, following ``Link`` (never guessing from ``n``)."""
        params: dict[str, str | int] = {}
        if n is not None:
            if n < 0:
                raise ValueError(f"n must be >= 0, got {n}")
            params["n"] = n
        if last is not None:
            params["last"] = last
        url: str | None = self._ctx.core.url(self._ctx.path("tags/list"))
        seen: set[str] = set()
        first = True
        while url:
            reply = await self._ctx.core.request("GET", url, scopes=self._ctx.pull,
                                                 params=params if first else None)
            first = False
            doc = json_object(reply, "tags/list")
            tags = doc.get("tags") or []
            if not isinstance(tags, list):
                raise RegistryError(reply.status, "GET", reply.url,
                                    [ErrorDetail("UNKNOWN", "tags/list 'tags' is not a list")])
            yield [str(t) for t in tags]
            seen.add(reply.url)
            url = next_link(reply.headers.get("link"), reply.url)
            if url in seen:
                break

    async def list(self, n: int | None = None, last: str | None = None) -> list[str]:
        """All tags (every page). ``n`` is the page size asked for; ``last`` starts after that tag."""
        out: list[str] = []
        async for page in self.pages(n, last):
            out.extend(page)
        return out
