"""``RepositoryEndpoints``: the five endpoint namespaces of one repository, what the operations layer takes."""

from __future__ import annotations

from .._http.transport import HttpCore
from ..cache import ContentCache
from ._base import MAX_MANIFEST_SIZE, RegistryState, RepoContext
from .blobs import Blobs
from .manifests import Manifests
from .referrers import Referrers
from .tags import Tags
from .uploads import Uploads


class RepositoryEndpoints:
    """One repository of one registry: ``tags``, ``manifests``, ``blobs``, ``uploads``, ``referrers``.

    ``registry`` is the registry's name as references spell it (``docker.io``); ``state`` is what has been
    learned about that registry and ``cache`` the content cache, both shared by every repository of a client.
    """

    def __init__(self, core: HttpCore, name: str, *, registry: str | None = None, state: RegistryState | None = None,
                 cache: ContentCache | None = None, max_manifest_size: int = MAX_MANIFEST_SIZE) -> None:
        self.ctx = RepoContext(core, name, max_manifest_size, state if state is not None else RegistryState())
        self.name = name
        self.registry = registry if registry is not None else core.host
        self.cache = cache if cache is not None else ContentCache(enabled=False)
        self.tags = Tags(self.ctx)
        self.manifests = Manifests(self.ctx)
        self.uploads = Uploads(self.ctx)
        self.blobs = Blobs(self.ctx, self.uploads)
        self.referrers = Referrers(self.ctx, self.manifests)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.registry}/{self.name}>"

    def same_registry(self, other: RepositoryEndpoints) -> bool:
        """Whether ``other`` lives on the same registry (so blobs can be mounted rather than streamed)."""
        return self.ctx.core is other.ctx.core or self.ctx.core.base_url == other.ctx.core.base_url
