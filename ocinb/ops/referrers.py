"""Walking the referrers graph: signatures of SBOMs of images, as deep as it goes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..endpoints.repository import RepositoryEndpoints
from ..models import Descriptor

MAX_REFERRER_DEPTH = 8
"""How deep a recursive referrers walk goes (signatures of SBOMs of images, and a margin)."""


@dataclass(frozen=True)
class ReferrerNode:
    """One referrer found by :func:`walk`: its descriptor, what it refers to, and its depth (1 = direct)."""

    descriptor: Descriptor
    subject: str
    depth: int


async def walk(repo: RepositoryEndpoints, digest: str, *, max_depth: int = MAX_REFERRER_DEPTH,
               artifact_type: str | None = None) -> list[ReferrerNode]:
    """Breadth-first referrers of ``digest`` and of their referrers, each visited once (a level at a time,
    concurrently)."""
    out: list[ReferrerNode] = []
    seen = {digest}
    frontier = [digest]
    depth = 0
    while frontier and depth < max_depth:
        depth += 1
        kind = artifact_type if depth == 1 else None
        found = await asyncio.gather(*(repo.referrers.list(subject, kind) for subject in frontier))
        nxt: list[str] = []
        for subject, descs in zip(frontier, found, strict=True):
            for desc in descs:
                if desc.digest in seen:
                    continue
                seen.add(desc.digest)
                out.append(ReferrerNode(desc, subject, depth))
                nxt.append(desc.digest)
        frontier = nxt
    return out
