"""The upload endpoints: end-4a/4b (POST), end-5 (PATCH), end-6 (PUT), end-13 (status) and cancel."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .._http.headers import parse_range_end
from .._http.transport import Body, Reply, join_location
from ..digest import Digest
from ..errors import ErrorDetail, RegistryError
from ..models import Descriptor
from ._base import Endpoint, RepoContext

OCTET = "application/octet-stream"


@dataclass(frozen=True)
class UploadSession:
    """An open upload: the newest ``Location`` (absolute, query kept) and how much the server holds."""

    repository: str
    location: str
    offset: int = 0
    min_chunk: int | None = None

    def with_reply(self, reply: Reply) -> UploadSession:
        """The session as a 202/204 answer describes it (new ``Location``, ``Range``)."""
        location = reply.headers.get("location")
        new_location = (join_location(reply.url, location, status=reply.status, method=reply.method)
                        if location else self.location)
        end = parse_range_end(reply.headers.get("range"))
        offset = end + 1 if end is not None else self.offset
        min_chunk = _min_chunk(reply) or self.min_chunk
        return UploadSession(self.repository, new_location, offset, min_chunk)

    @classmethod
    def from_reply(cls, reply: Reply, repository: str) -> UploadSession:
        """The new session a 202 opening an upload describes (end-4a/4b POST, or a mount the registry declined).

        A reply without ``Location`` breaks the protocol and raises ``BLOB_UPLOAD_INVALID``.
        """
        if not reply.headers.get("location"):
            raise RegistryError(reply.status, reply.method, reply.url, [
                ErrorDetail("BLOB_UPLOAD_INVALID", "the registry opened an upload without a Location")])
        session = cls(repository, "").with_reply(reply)
        # A new session holds nothing, whatever its Range says (distribution answers "0-0" for empty).
        return cls(repository, session.location, 0, session.min_chunk)


def _min_chunk(reply: Reply) -> int | None:
    value = reply.headers.get("oci-chunk-min-length")
    return int(value) if value and value.isdigit() else None


def _with_digest(location: str, digest: str) -> str:
    """``Location`` plus ``digest=`` without dropping its existing query (``_state`` and friends)."""
    return str(httpx.URL(location).copy_merge_params({"digest": digest}))


def _chunk_length(chunk: Body, length: int | None) -> int:
    """The byte count a PATCH announces: checked against bytes, required for a stream (nothing is sent on error)."""
    if callable(chunk):
        if length is None:
            raise TypeError("uploads.patch: a streamed chunk needs length= (its Content-Length and Content-Range "
                            "go before the body)")
        if length < 0:
            raise ValueError(f"uploads.patch: length must be >= 0, not {length}")
        return length
    size = len(chunk) if chunk is not None else 0
    if length is not None and length != size:
        raise ValueError(f"uploads.patch: length={length} but the chunk holds {size} bytes")
    return size


def _held(session: UploadSession, value: str | None) -> int:
    """The offset to continue at from an upload ``Range: 0-N`` answer (a status, or a 416's)."""
    end = parse_range_end(value)
    if end is None:
        return 0
    if end == 0:
        # Distribution answers "0-0" both for an empty upload and for one holding a single byte:
        # trust what this session knew (nothing sent → 0, at least one byte acknowledged → 1).
        return min(session.offset, 1)
    return end + 1


class Uploads(Endpoint):
    """``repo.uploads``: the low-level upload protocol, one method per spec row."""

    def __init__(self, ctx: RepoContext) -> None:
        super().__init__(ctx)
        # Where a 416 said each session stands (spec: its Range and Location), for the next status().
        self._told_by_416: dict[str, UploadSession] = {}

    async def start(self) -> UploadSession:
        """end-4a: ``POST /v2/<name>/blobs/uploads/`` → 202 + ``Location`` (+ ``OCI-Chunk-Min-Length``)."""
        reply = await self.ctx.core.request(
            "POST", self.ctx.path("blobs/uploads/"), scopes=self.ctx.push_scopes, expect=(202,),
            headers={"Content-Length": "0"},
        )
        return UploadSession.from_reply(reply, self.ctx.name)

    async def post(self, digest: str, data: bytes) -> Descriptor | UploadSession:
        """end-4b single POST with ``?digest=``: 201 → done; 202 → continue in the returned session.

        (Distribution 2.8 answers 202 and drops the body; the caller then PUTs into the session.)
        """
        digest = str(Digest.parse(digest))
        reply = await self.ctx.core.request(
            "POST", self.ctx.path("blobs/uploads/"), scopes=self.ctx.push_scopes, expect=(201, 202),
            params={"digest": digest}, body=data, headers={"Content-Type": OCTET},
        )
        if reply.status == 201:
            return Descriptor(media_type=OCTET, digest=digest, size=len(data))
        return UploadSession.from_reply(reply, self.ctx.name)

    async def patch(self, session: UploadSession, chunk: Body, *, length: int | None = None) -> UploadSession:
        """end-5 PATCH one chunk at ``session.offset`` with ``Content-Range: start-end`` → 202.

        ``length`` is the chunk's size: bytes give it themselves; a streamed chunk (a factory of async
        iterators) must state it, since the headers go before the body.
        """
        length = _chunk_length(chunk, length)
        headers = {"Content-Type": OCTET, "Content-Length": str(length)}
        if length:
            headers["Content-Range"] = f"{session.offset}-{session.offset + length - 1}"
        try:
            reply = await self.ctx.core.request(
                "PATCH", session.location, scopes=self.ctx.push_scopes, expect=(202,), headers=headers, body=chunk,
            )
        except RegistryError as exc:
            range_value = exc.headers.get("range")
            if exc.status == 416 and range_value:
                location = exc.headers.get("location")
                self._told_by_416[session.location] = UploadSession(
                    session.repository,
                    join_location(session.location, location, status=416, method="PATCH") if location
                    else session.location,
                    _held(session, range_value), session.min_chunk)
            raise
        updated = session.with_reply(reply)
        if reply.headers.get("range") is None:
            updated = UploadSession(updated.repository, updated.location, session.offset + length, updated.min_chunk)
        return updated

    async def finish(self, session: UploadSession, digest: str, data: Body = b"", *,
                     length: int | None = None) -> Descriptor:
        """end-6 PUT ``Location?digest=`` (optionally carrying the last chunk) → 201."""
        digest = str(Digest.parse(digest))
        size = length if length is not None else (len(data) if isinstance(data, bytes) else None)
        headers = {"Content-Type": OCTET}
        if size is not None:
            headers["Content-Length"] = str(size)
        await self.ctx.core.request(
            "PUT", _with_digest(session.location, digest), scopes=self.ctx.push_scopes, expect=(201, 204),
            headers=headers, body=data,
        )
        return Descriptor(media_type=OCTET, digest=digest, size=session.offset + (size or 0))

    async def status(self, session: UploadSession) -> UploadSession:
        """end-13 GET the upload's ``Location`` → 204 + ``Range: 0-N``: where to resume.

        When a PATCH of this session was just refused with a 416 carrying ``Range`` (and ``Location``), as
        the spec has it for an out-of-order chunk, that answer is the status: no request is made.
        """
        told = self._told_by_416.pop(session.location, None)
        if told is not None:
            return told
        reply = await self.ctx.core.request("GET", session.location, scopes=self.ctx.push_scopes, expect=(204, 200))
        updated = session.with_reply(reply)
        return UploadSession(updated.repository, updated.location, _held(session, reply.headers.get("range")),
                             updated.min_chunk)

    async def cancel(self, session: UploadSession) -> None:
        """DELETE the upload session (404 is fine: it is gone already)."""
        await self.ctx.core.request("DELETE", session.location, scopes=self.ctx.push_scopes,
                                    expect=(204, 202, 200, 404))
