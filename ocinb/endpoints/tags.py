"""end-8a/8b: listing tags, following ``Link`` pagination."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ._base import Endpoint
from ._pages import page_params, paginate, string_list


class Tags(Endpoint):
    """``repo.tags``: the tags of one repository."""

    async def pages(self, n: int | None = None, last: str | None = None) -> AsyncIterator[list[str]]:
        """Each page of ``GET /v2/<name>/tags/list?n=&last=``, following ``Link`` (never guessing from ``n``)."""
        url = self.ctx.core.url(self.ctx.path("tags/list"))
        async for reply in paginate(self.ctx.core, url, scopes=self.ctx.pull_scopes, params=page_params(n, last)):
            yield string_list(reply, "tags/list", "tags")

    async def list(self, n: int | None = None, last: str | None = None) -> list[str]:
        """All tags (every page). ``n`` is the page size asked for; ``last`` starts after that tag."""
        out: list[str] = []
        async for page in self.pages(n, last):
            out.extend(page)
        return out
