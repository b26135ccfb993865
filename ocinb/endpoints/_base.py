"""What every endpoint needs: the HTTP core, the repository name, its scopes and paths."""

from __future__ import annotations

from dataclasses import dataclass

from .._http.auth import repository_scope
from .._http.transport import HttpCore
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
    def delete(self) -> tuple[str]:
        return (repository_scope(self.name, "delete"),)
