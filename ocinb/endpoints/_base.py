"""What every endpoint needs: the HTTP core, the repository name, its scopes and paths."""

from __future__ import annotations

from dataclasses import dataclass

from .._http.auth import repository_scope
from .._http.transport import HttpCore
from ..errors import ErrorDetail, RegistryError, UnsupportedError
from ..reference import validate_repository

MAX_MANIFEST_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class RepoContext:
    """A validated repository on one registry."""

    core: HttpCore
    name: str
    max_manifest_size: int = MAX_MANIFEST_SIZE

    def __post_init__(self) -> None:
        validate_repository(self.name)

    def path(self, suffix: str) -> str:
        return f"/v2/{self.name}/{suffix}"

    @property
    def pull(self) -> tuple[str]:
        return (repository_scope(self.name, "pull"),)

    @property
    def push(self) -> tuple[str]:
        return (repository_scope(self.name, "pull", "push"),)

    @property
    def delete_scope(self) -> tuple[str]:
        return (repository_scope(self.name, "delete"),)

    async def delete(self, suffix: str, hint: str) -> None:
        """DELETE ``/v2/<name>/<suffix>`` (202); 400/405 become :class:`UnsupportedError` carrying ``hint``
        after the server's own codes (deletes disabled, or distribution's DIGEST_INVALID for a tag)."""
        try:
            await self.core.request("DELETE", self.path(suffix), scopes=self.delete_scope, expect=(202, 200, 204))
        except RegistryError as exc:
            if exc.status not in (400, 405) or isinstance(exc, UnsupportedError):
                raise
            raise UnsupportedError(exc.status, exc.method, exc.url, [*exc.errors, ErrorDetail("UNSUPPORTED", hint)],
                                   exc.body, exc.headers) from None
