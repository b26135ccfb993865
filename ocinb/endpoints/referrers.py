"""end-12 referrers, merged with the ``<alg>-<hex>`` fallback tag for registries without the API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from .. import media_types as mt
from ..digest import Digest
from ..errors import NotFoundError
from ..models import Descriptor, ImageIndex, parse_manifest
from ..reference import fallback_tag, is_fallback_tag
from ._base import Endpoint, RepoContext
from ._pages import paginate
from .manifests import Manifests

__all__ = ["Referrers", "fallback_tag", "is_fallback_tag"]


def _is_name_unknown(body: bytes) -> bool:
    """Whether an error body is an OCI error whose code is ``NAME_UNKNOWN``."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return False
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return isinstance(errors, list) and any(isinstance(e, dict) and e.get("code") == "NAME_UNKNOWN" for e in errors)


class Referrers(Endpoint):
    """``repo.referrers``: what points at a manifest through ``subject``.

    Whether the registry has the API is probed once and remembered on the registry's core
    (``ctx.state.referrers_api``), like oras-go's referrers capability.
    """

    def __init__(self, ctx: RepoContext, manifests: Manifests) -> None:
        super().__init__(ctx)
        self._manifests = manifests

    @property
    def api_supported(self) -> bool | None:
        """``True``/``False`` once probed, ``None`` before."""
        return self.ctx.state.referrers_api

    async def _native(self, digest: str, artifact_type: str | None) -> AsyncIterator[tuple[list[Descriptor], bool]]:
        params = {"artifactType": artifact_type} if artifact_type else None
        url = self.ctx.core.url(self.ctx.path(f"referrers/{digest}"))
        first = True
        async for reply in paginate(self.ctx.core, url, scopes=self.ctx.pull_scopes, params=params, expect=(200, 404),
                                    headers={"Accept": mt.OCI_INDEX}, max_body=self.ctx.max_manifest_size):
            ctype = mt.strip_params(reply.headers.get("content-type", ""))
            if reply.status == 404 or (first and ctype != mt.OCI_INDEX):
                # An OCI NAME_UNKNOWN is about this repository, not about the API: remember nothing.
                if first and not (reply.status == 404 and _is_name_unknown(reply.content)):
                    self.ctx.state.referrers_api = False
                return
            first = False
            self.ctx.state.referrers_api = True
            index = parse_manifest(reply.content, mt.OCI_INDEX)
            filtered = "artifacttype" in reply.headers.get("oci-filters-applied", "").lower().replace(" ", "")
            if isinstance(index, ImageIndex):
                yield list(index.manifests), filtered

    async def fallback_index(self, digest: str) -> ImageIndex | None:
        """The fallback tag's index, or ``None`` when the tag does not exist."""
        try:
            m = await self._manifests.get(fallback_tag(digest))
        except NotFoundError:
            return None
        parsed = m.parsed
        return parsed if isinstance(parsed, ImageIndex) else None

    async def list(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """Descriptors of the manifests whose ``subject`` is ``digest``, from the API and the fallback tag.

        Filters by ``artifact_type`` client-side when the registry did not (no ``OCI-Filters-Applied``).
        """
        digest = str(Digest.parse(digest))
        found: dict[str, Descriptor] = {}
        if self.api_supported is not False:
            async for page, filtered in self._native(digest, artifact_type):
                for desc in page:
                    if artifact_type and not filtered and desc.artifact_type != artifact_type:
                        continue
                    found.setdefault(desc.digest, desc)
        index = await self.fallback_index(digest)
        if index is not None:
            for desc in index.manifests:
                if artifact_type and desc.artifact_type != artifact_type:
                    continue
                found.setdefault(desc.digest, desc)
        return list(found.values())

