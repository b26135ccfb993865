"""``Client``: the same names as :class:`~ocinb.client.AsyncClient`, blocking, safe inside Jupyter."""

from __future__ import annotations

from typing import Any

from ._sync import Facade, register_namespace, register_wrapper, run_sync
from .client import AsyncClient, AsyncRepository
from .endpoints._base import Endpoint


class Repository(Facade):
    """Sync view of :class:`~ocinb.client.AsyncRepository`: ``tags``, ``manifests``, ``blobs``, ``uploads``,
    ``referrers`` with blocking methods; async iterators become plain iterators."""

    def __init__(self, repo: AsyncRepository) -> None:
        super().__init__(repo)
        for name in ("tags", "manifests", "blobs", "uploads", "referrers"):
            object.__setattr__(self, name, Facade(getattr(repo, name)))
        object.__setattr__(self, "name", repo.name)

    def __repr__(self) -> str:
        return f"<Repository {self._async.client.registry}/{self.name}>"


class Client(Facade):
    """A blocking client of one registry; accepts the same arguments as :class:`AsyncClient`.

    Every call runs on ocinb's background event-loop thread, so it also works where an event loop
    is already running (Jupyter). ``client.aio`` is the underlying :class:`AsyncClient`.
    """

    def __init__(self, registry: str, **kwargs: Any) -> None:
        super().__init__(AsyncClient(registry, **kwargs))

    @property
    def aio(self) -> AsyncClient:
        return self._async

    def repo(self, name: str) -> Repository:
        """The repository ``name`` (validated now, before any request)."""
        return Repository(self._async.repo(name))

    def close(self) -> None:
        run_sync(self._async.aclose())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self._async.base_url}>"


register_wrapper(AsyncRepository, Repository)
register_namespace(Endpoint)


def as_async(client: Client | AsyncClient) -> AsyncClient:
    """The :class:`AsyncClient` behind ``client``: itself, or a :class:`Client`'s ``aio`` (for code serving both)."""
    if isinstance(client, Client):
        return client.aio
    if isinstance(client, AsyncClient):
        return client
    raise TypeError(f"expected an ocinb Client or AsyncClient, got {type(client).__name__}")
