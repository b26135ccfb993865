"""What every endpoint needs: the HTTP core, the repository name, its scopes and paths, and what ocinb has
learned about the registry."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .._http.auth import repository_scope
from .._http.transport import HttpCore
from ..errors import ErrorDetail, RegistryError, UnsupportedError
from ..reference import validate_repository

MAX_MANIFEST_SIZE = 4 * 1024 * 1024


@dataclass
class RegistryState:
    """What ocinb has learned about one registry, shared by every repository a client opens on it.

    Probed once and remembered, as oras-go keeps its referrers capability: ``None`` means not known yet.
    """

    referrers_api: bool | None = None
    """Whether ``/v2/<name>/referrers/<digest>`` is served (end-12)."""
    single_post: bool | None = None
    """Whether a POST with ``?digest=`` and a body completes an upload (end-4b); False once answered 202."""
    api_version: str | None = None
    """The ``Docker-Distribution-API-Version`` that ``GET /v2/`` answered (``registry/2.0``); ``""`` when absent."""
    head_digest: bool | None = None
    """Whether a manifest HEAD carries ``Docker-Content-Digest`` (else a GET is needed to learn the digest)."""
    tags_n_honoured: bool | None = None
    """Whether ``tags/list?n=`` limits the page (distribution 2.8 ignores ``n`` and answers every tag)."""
    tags_link: bool | None = None
    """Whether a short tags page comes with a ``Link rel="next"`` header."""
    tags_max_page: int | None = None
    """The most tags one ``tags/list`` page was seen to hold."""
    catalog: bool | None = None
    """Whether ``/v2/_catalog`` is served to this client."""
    referrers_filtering: bool | None = None
    """Whether the referrers API filters by ``artifactType`` itself (``OCI-Filters-Applied``)."""
    blob_range: bool | None = None
    """Whether a blob GET with ``Range`` answers 206 (so a broken download resumes instead of restarting)."""
    blob_redirect: str | None = None
    """Where blob GETs are sent: ``""`` when the registry serves them itself, else the storage's scheme and host."""
    chunked_upload: bool | None = None
    """Whether PATCH chunked uploads complete (end-5)."""
    chunk_min_length: int | None = None
    """The ``OCI-Chunk-Min-Length`` the registry announces; 0 when it announces none."""
    mount: bool | None = None
    """Whether a cross-repository mount (end-11) answers 201 rather than opening an upload."""
    delete_by_tag: bool | None = None
    """Whether ``DELETE /v2/<name>/manifests/<tag>`` is accepted (distribution 2.8 answers 400)."""
    manifest_delete: bool | None = None
    """Whether a manifest can be deleted by digest (end-9)."""
    oci_subject: bool | None = None
    """Whether a manifest PUT with a ``subject`` is answered with ``OCI-Subject`` (the registry indexes referrers)."""
    uploads_in_flight: dict[tuple[str, str], asyncio.Future[Any]] = field(default_factory=dict, repr=False)
    """Blob uploads under way, by (repository, digest), so the same blob is never sent twice at once."""
    locks: dict[str, asyncio.Lock] = field(default_factory=dict, repr=False)

    def lock(self, key: str) -> asyncio.Lock:
        """A named lock for read-modify-write sequences on this registry (the referrers fallback tag)."""
        return self.locks.setdefault(key, asyncio.Lock())


@dataclass(frozen=True)
class RepoContext:
    """A validated repository on one registry, with that registry's core and learned state."""

    core: HttpCore
    name: str
    max_manifest_size: int = MAX_MANIFEST_SIZE
    state: RegistryState = field(default_factory=RegistryState)

    def __post_init__(self) -> None:
        validate_repository(self.name)

    def path(self, suffix: str) -> str:
        return f"/v2/{self.name}/{suffix}"

    @property
    def pull_scopes(self) -> tuple[str]:
        return (repository_scope(self.name, "pull"),)

    @property
    def push_scopes(self) -> tuple[str]:
        return (repository_scope(self.name, "pull", "push"),)

    @property
    def delete_scopes(self) -> tuple[str]:
        return (repository_scope(self.name, "delete"),)

    async def delete(self, suffix: str, hint: str) -> None:
        """DELETE ``/v2/<name>/<suffix>`` (202); 400/405 become :class:`UnsupportedError` carrying ``hint``
        after the server's own codes (deletes disabled, or distribution's DIGEST_INVALID for a tag)."""
        try:
            await self.core.request("DELETE", self.path(suffix), scopes=self.delete_scopes, expect=(202, 200, 204))
        except RegistryError as exc:
            if exc.status not in (400, 405) or isinstance(exc, UnsupportedError):
                raise
            raise UnsupportedError(exc.status, exc.method, exc.url, [*exc.errors, ErrorDetail("UNSUPPORTED", hint)],
                                   exc.body, exc.headers) from None


class Endpoint:
    """Base of the endpoint namespaces (``repo.tags``, ``repo.manifests``, …): each holds one repository's context."""

    def __init__(self, ctx: RepoContext) -> None:
        self.ctx = ctx
