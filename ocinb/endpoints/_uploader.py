"""How a blob gets pushed: skip if present, single POST, monolithic POST+PUT, or chunked PATCHes,
resuming from the upload status (end-13) after a 416 or a broken connection."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from .._http.transport import Body
from ..digest import Digest, Hasher
from ..errors import RegistryError, TransportError
from ..models import Descriptor
from .uploads import Uploads, UploadSession

if TYPE_CHECKING:
    from .blobs import Blobs

Source = bytes | bytearray | memoryview | str | os.PathLike[str] | Iterable[bytes] | AsyncIterable[bytes]
"""What can be uploaded: bytes, a file path, or an (async) iterable of byte chunks."""

READ_CHUNK = 1024 * 1024
DEFAULT_CHUNK = 16 * 1024 * 1024
SINGLE_POST_MAX = 256 * 1024

T = TypeVar("T")


def file_body(path: Path, start: int = 0, length: int | None = None, chunk: int = READ_CHUNK) -> Body:
    """A replayable streamed body reading ``length`` bytes of ``path`` from ``start``."""

    async def gen() -> AsyncIterator[bytes]:
        with open(path, "rb") as fh:
            fh.seek(start)
            remaining = length
            while remaining is None or remaining > 0:
                data = fh.read(chunk if remaining is None else min(chunk, remaining))
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    return gen


def bytes_body(data: bytes, start: int = 0, length: int | None = None, chunk: int = READ_CHUNK) -> Body:
    """A replayable streamed body over ``data[start:start+length]`` in small slices.

    Sent this way, no request keeps a reference to a whole chunk once its generator is exhausted, so
    memory stays flat even while finished requests wait for the cycle collector.
    """
    end = len(data) if length is None else start + length

    async def gen() -> AsyncIterator[bytes]:
        view = memoryview(data)
        for i in range(start, end, chunk):
            yield bytes(view[i:min(i + chunk, end)])

    return gen


def _hash_file(path: Path, algorithm: str = "sha256") -> tuple[str, int]:
    h = hashlib.new(algorithm)
    size = 0
    with open(path, "rb") as fh:
        while data := fh.read(READ_CHUNK):
            h.update(data)
            size += len(data)
    return f"{algorithm}:{h.hexdigest()}", size


async def _chunks(source: Iterable[bytes] | AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """Re-cut an (async) iterable into pieces of exactly ``size`` bytes (the last may be shorter)."""
    buf = bytearray()
    if isinstance(source, AsyncIterable):
        async for part in source:
            buf += part
            while len(buf) >= size:
                yield bytes(buf[:size])
                del buf[:size]
    else:
        for part in source:
            buf += part
            while len(buf) >= size:
                yield bytes(buf[:size])
                del buf[:size]
    if buf:
        yield bytes(buf)


@dataclass(frozen=True, kw_only=True)
class UploadPlan:
    """One blob to push: its source (exactly one of ``path``, ``data``, ``stream``), what is known of it, how
    to send it, and the session to send it into when the registry already opened one (a mount answered 202)."""

    media_type: str
    chunk_size: int | None
    """PATCH in pieces of this size; None sends bytes and files whole (a stream always goes in chunks)."""
    resumes: int
    progress: Callable[[int], Any] | None
    digest: str | None = None
    size: int | None = None
    session: UploadSession | None = None
    path: Path | None = None
    data: bytes | None = None
    stream: Iterable[bytes] | AsyncIterable[bytes] | None = None

    async def reading(self, source: Source) -> UploadPlan:
        """This plan for ``source``, with the digest and size of bytes or a file worked out (a file is hashed
        in one streamed pass off the event loop; a stream is hashed as it is sent)."""
        digest = str(Digest.parse(self.digest)) if self.digest is not None else None
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            return replace(self, data=data, size=len(data), digest=digest or str(Digest.of(data)))
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if digest is None:
                digest, size = await asyncio.to_thread(_hash_file, path)
            else:
                size = path.stat().st_size
            return replace(self, path=path, digest=digest, size=size)
        if isinstance(source, Iterable | AsyncIterable):
            return replace(self, stream=cast(Iterable[bytes] | AsyncIterable[bytes], source), digest=digest)
        raise TypeError(f"cannot upload a {type(source).__name__}: pass bytes, a path or an iterable of bytes")

    @property
    def replayable(self) -> bool:
        """Whether the source can be read again from any offset (bytes, a file), unlike a one-shot stream."""
        return self.stream is None

    def body(self, offset: int, length: int | None = None) -> Body:
        """``length`` bytes of a bytes or file source from ``offset`` (the rest without ``length``).

        A chunk streams in small slices, so no finished request keeps it alive; the rest of a bytes source
        goes as bytes, which the HTTP core can replay after a dropped connection.
        """
        if self.path is not None:
            return file_body(self.path, offset, length)
        assert self.data is not None
        return self.data[offset:] if length is None else bytes_body(self.data, offset, length)

    def report(self, sent: int) -> None:
        if self.progress is not None:
            self.progress(sent)

    def descriptor(self, digest: str, size: int) -> Descriptor:
        return Descriptor(media_type=self.media_type, digest=digest, size=size)


class _Done(Exception):
    """The registry already holds the finished blob (the failure hid a success)."""


class _Resumer:
    """One upload's session, kept current, and recovery after the failures its status (end-13) explains.

    Resumes are counted against the plan's budget. When the session itself is gone (distribution 2.8
    cancels an upload whose PATCH or PUT broke mid-body: its status answers 404 ``BLOB_UPLOAD_INVALID``),
    a replayable source starts over in a new session; a one-shot stream cannot.
    """

    def __init__(self, uploads: Uploads, blobs: Blobs, plan: UploadPlan) -> None:
        self.uploads = uploads
        self.blobs = blobs
        self.plan = plan
        self.session: UploadSession | None = plan.session
        """The open session, newest ``Location`` and offset; None before it opens and once finished."""
        self.used = 0

    @property
    def offset(self) -> int:
        """How many bytes the registry holds in the open session."""
        assert self.session is not None
        return self.session.offset

    async def open(self) -> None:
        """Start a session (end-4a) unless one is open already."""
        if self.session is None:
            self.session = await self.uploads.start()

    async def attempt(self, step: Callable[[UploadSession], Awaitable[T]]) -> T | None:
        """Send one request on the open session and keep the session it answers.

        After a failure the upload status explains, recover (or start over) and return None: the caller
        looks again at where the registry stands and decides what to send.
        """
        assert self.session is not None
        try:
            result = await step(self.session)
        except Exception as exc:
            if not _is_resumable(exc):
                raise
            await self._recover(self.session, exc)
            return None
        if isinstance(result, UploadSession):
            self.session = result
        elif isinstance(result, Descriptor):
            self.session = None  # finished: nothing left to cancel
        return result

    async def _recover(self, session: UploadSession, exc: BaseException) -> None:
        if self.used >= self.plan.resumes:
            raise TransportError(f"upload gave up after {self.used} resumes: {exc}") from None
        self.used += 1
        try:
            self.session = await self.uploads.status(session)
        except RegistryError as lost:
            if lost.status not in (400, 404):
                raise
            if self.plan.digest and await self.blobs.exists(self.plan.digest):
                raise _Done() from None
            if not self.plan.replayable:
                raise TransportError(
                    f"upload cannot resume: the registry dropped the upload session ({lost.status}) and the "
                    f"source is a one-shot stream; retry with bytes or a file path") from None
            self.session = await self.uploads.start()

    async def cancel(self) -> None:
        """Leave no half-written upload behind on the registry (best effort)."""
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.uploads.cancel(self.session)


def _is_resumable(exc: BaseException) -> bool:
    """A failure the upload status can explain: a broken connection, a 416, or a session the registry
    dropped meanwhile (distribution cancels an upload whose body broke, sometimes after answering a status)."""
    if isinstance(exc, TransportError | httpx.TransportError):
        return True
    if not isinstance(exc, RegistryError):
        return False
    return exc.status == 416 or (exc.status == 404 and bool({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"}
                                                            & set(exc.codes)))


async def upload_blob(blobs: Blobs, uploads: Uploads, plan: UploadPlan) -> Descriptor:
    """Push the blob ``plan`` describes and return its descriptor (see :meth:`Blobs.upload`).

    A blob the registry has is not sent again, and one blob is never sent twice at once.
    """
    digest = plan.digest
    if digest is None or plan.session is not None:
        return await _send(blobs, uploads, plan)
    # One upload per blob at a time: concurrent uploads of the same digest race inside the registry
    # (distribution briefly loses the blob while a second commit moves it into place).
    inflight = uploads.ctx.state.uploads_in_flight
    key = (uploads.ctx.name, digest)
    while (pending := inflight.get(key)) is not None:
        await asyncio.wait([pending])  # then look again: the registry has it now, or it is ours to send
    done: asyncio.Future[Descriptor] = asyncio.get_running_loop().create_future()
    inflight[key] = done
    try:
        if await blobs.exists(digest):
            size = plan.size if plan.size is not None else (await blobs.head(digest)).size
            plan.report(size)
            result = plan.descriptor(digest, size)
        else:
            result = await _send(blobs, uploads, plan)
        done.set_result(result)
        return result
    except BaseException as exc:
        done.set_exception(exc)
        done.exception()  # retrieved: waiters re-check the registry rather than inherit this failure
        raise
    finally:
        inflight.pop(key, None)


async def _send(blobs: Blobs, uploads: Uploads, plan: UploadPlan) -> Descriptor:
    """Upload a blob known not to be there yet (or into ``plan.session``), resuming and cleaning up as needed."""
    resumer = _Resumer(uploads, blobs, plan)
    try:
        if plan.stream is not None:
            return await _chunked_stream(plan, plan.stream, resumer)
        return await _seekable(plan, resumer)
    except _Done:
        assert plan.digest is not None
        return plan.descriptor(plan.digest, plan.size if plan.size is not None else 0)
    except BaseException:
        await resumer.cancel()
        raise


async def _seekable(plan: UploadPlan, resumer: _Resumer) -> Descriptor:
    """Bytes or a file: a single POST for small blobs where the registry supports it, else POST then one PUT
    (monolithic) or PATCHes of ``chunk_size``, resuming wherever the registry stands.

    Nothing is buffered: each request streams from the source; the registry checks the digest at the PUT.
    """
    digest, size, chunk_size = plan.digest, plan.size, plan.chunk_size
    assert digest is not None and size is not None
    uploads, state = resumer.uploads, resumer.uploads.ctx.state
    if (chunk_size is None and resumer.session is None and plan.data is not None and size <= SINGLE_POST_MAX
            and state.single_post is not False):
        try:
            answer: Descriptor | UploadSession | None = await uploads.post(digest, plan.data)
        except TransportError:
            # Distribution 2.8 answers 202 without reading the body; behind a proxy that closes after each
            # answer (tinyproxy) the rest of the body then meets a reset. A new session and a PUT follow.
            answer = None
        state.single_post = isinstance(answer, Descriptor)
        if isinstance(answer, Descriptor):
            plan.report(size)
            return plan.descriptor(digest, size)
        resumer.session = answer
    await resumer.open()

    async def step(session: UploadSession) -> UploadSession | Descriptor:
        """The next request, from where the registry stands: the whole body, the next chunk, or the PUT."""
        rest = size - session.offset
        if rest <= 0:
            return await uploads.finish(session, digest)
        if chunk_size is None:
            if session.offset == 0:
                return await uploads.finish(session, digest, plan.body(0), length=size)
            return await uploads.patch(session, plan.body(session.offset), length=rest)
        length = min(max(chunk_size, session.min_chunk or 0), rest)
        session = await uploads.patch(session, plan.body(session.offset, length), length=length)
        plan.report(length)
        return session

    while not isinstance(await resumer.attempt(step), Descriptor):
        pass
    if chunk_size is None:
        plan.report(size)
    return plan.descriptor(digest, size)


async def _chunked_stream(plan: UploadPlan, stream: Iterable[bytes] | AsyncIterable[bytes],
                          resumer: _Resumer) -> Descriptor:
    """PATCH a one-shot stream, hashing as it goes and keeping only the current chunk to resume within."""
    uploads = resumer.uploads
    await resumer.open()
    assert resumer.session is not None
    chunk_size = max(plan.chunk_size or DEFAULT_CHUNK, resumer.session.min_chunk or 0)
    hasher = Hasher(plan.digest, plan.size, what="upload")
    sent = 0
    async for chunk in _chunks(stream, chunk_size):
        hasher.update(chunk)
        await _send_chunk(resumer, chunk, sent)
        sent += len(chunk)
        plan.report(len(chunk))
    final = str(hasher.verify())
    while await resumer.attempt(lambda session: uploads.finish(session, final)) is None:
        if resumer.offset != sent:
            raise TransportError(f"upload lost data: the registry holds {resumer.offset} of {sent} bytes")
    return plan.descriptor(final, sent)


async def _send_chunk(resumer: _Resumer, chunk: bytes, start: int) -> None:
    """PATCH ``chunk``, bytes ``start`` onwards of a stream, resuming within it wherever the registry stands."""
    end = start + len(chunk)
    while resumer.offset < end:
        if resumer.offset < start:
            raise TransportError(
                f"upload cannot resume: the registry holds {resumer.offset} bytes but the source "
                f"is a stream already past byte {start}")
        await resumer.attempt(lambda session: resumer.uploads.patch(
            session, bytes_body(chunk, session.offset - start), length=end - session.offset))
