"""Walking the referrers graph: signatures of SBOMs of images, as deep as it goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..models import Descriptor

if TYPE_CHECKING:
    from ..client import AsyncRepository


@dataclass(frozen=True)
class ReferrerNode:
    """One referrer found by :func:`walk`: its descriptor, what it refers to, and its depth (1 = direct)."""

    descriptor: Descriptor
    subject: str
    depth: int


async def walk(repo: AsyncRepository, digest: str, *, max_depth: int = 8,
               artifact_type: str | None = None) -> list[ReferrerNode]:
    """Breadth-first referrers of ``digest`` and of their referrers, each visited once."""
    out: list[ReferrerNode] = []
    seen = {digest}
    frontier = [digest]
    depth = 0
    while frontier and depth < max_depth:
        depth += 1
        nxt: list[str] = []
        for subject in frontier:
            for desc in await repo.referrers.list(subject, artifact_type if depth == 1 else None):
                if desc.digest in seen:
                    continue
                seen.add(desc.digest)
                out.append(ReferrerNode(desc, subject, depth))
                nxt.append(desc.digest)
        frontier = nxt
    return out
