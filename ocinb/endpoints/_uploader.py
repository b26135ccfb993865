"""How a blob gets pushed: skip if present, single POST, monolithic POST+PUT, or chunked PATCHes,
resuming from the upload status (end-13) after a 416 or a broken connection."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx

from .._http.transport import Body
from ..digest import Digest, Hasher
from ..errors import RegistryError, TransportError
from ..models import Descriptor
from ._base import RepoContext
from .uploads import Uploads, UploadSession

if TYPE_CHECKING:
    from .blobs import Blobs

Source = bytes | bytearray | memoryview | str | os.PathLike[str] | Iterable[bytes] | AsyncIterable[bytes]
"""What can be uploaded: bytes, a file path, or an (async) iterable of byte chunks."""

READ_CHUNK = 1024 * 1024
DEFAULT_CHUNK = 16 * 1024 * 1024
SINGLE_POST_MAX = 256 * 1024


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


class _Tracked(Uploads):
    """The upload endpoints, remembering the session in use, so a failed upload can cancel it."""

    session: UploadSession | None = None

    async def start(self) -> UploadSession:
        self.session = await super().start()
        return self.session

    async def post(self, digest: str, data: bytes) -> Descriptor | UploadSession:
        answer = await super().post(digest, data)
        self.session = answer if isinstance(answer, UploadSession) else None
        return answer

    async def patch(self, session: UploadSession, chunk: Body, *, length: int | None = None) -> UploadSession:
        self.session = await super().patch(session, chunk, length=length)
        return self.session

    async def status(self, session: UploadSession) -> UploadSession:
        self.session = await super().status(session)
        return self.session

    async def finish(self, session: UploadSession, digest: str, data: Body = b"", *,
                     length: int | None = None) -> Descriptor:
        done = await super().finish(session, digest, data, length=length)
        self.session = None
        return done


class _Done(Exception):
    """The registry already holds the finished blob (the failure hid a success)."""


class _Resumer:
    """Counts resumes and finds where the server stands after a failure.

    When the session itself is gone (distribution 2.8 cancels an upload whose PATCH or PUT broke
    mid-body: its status answers 404 ``BLOB_UPLOAD_INVALID``), a replayable source starts over in a
    new session; a one-shot stream cannot.
    """

    def __init__(self, uploads: Uploads, budget: int, blobs: Blobs, digest: str | None,
                 replayable: bool) -> None:
        self.uploads = uploads
        self.budget = budget
        self.blobs = blobs
        self.digest = digest
        self.replayable = replayable
        self.used = 0

    async def recover(self, session: UploadSession, exc: BaseException) -> UploadSession:
        if self.used >= self.budget:
            raise TransportError(f"upload gave up after {self.used} resumes: {exc}") from None
        self.used += 1
        try:
            return await self.uploads.status(session)
        except RegistryError as lost:
            if lost.status not in (400, 404):
                raise
            if self.digest and await self.blobs.exists(self.digest):
                raise _Done() from None
            if not self.replayable:
                raise TransportError(
                    f"upload cannot resume: the registry dropped the upload session ({lost.status}) and the "
                    f"source is a one-shot stream; retry with bytes or a file path") from None
            return await self.uploads.start()


def _is_resumable(exc: BaseException) -> bool:
    """A failure the upload status can explain: a broken connection, a 416, or a session the registry
    dropped meanwhile (distribution cancels an upload whose body broke, sometimes after answering a status)."""
    if isinstance(exc, TransportError | httpx.TransportError):
        return True
    if not isinstance(exc, RegistryError):
        return False
    return exc.status == 416 or (exc.status == 404 and bool({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"}
                                                            & set(exc.codes)))


async def upload_blob(ctx: RepoContext, uploads: Uploads, blobs: Blobs, source: Source, digest: str | None,
                      *, size: int | None, chunk_size: int | None, media_type: str, resumes: int,
                      progress: Callable[[int], Any] | None, session: UploadSession | None = None) -> Descriptor:
    """Push ``source`` and return its descriptor (see :meth:`Blobs.upload`).

    ``session`` is an upload the registry already opened (a mount answered 202): the data goes there.
    """
    path: Path | None = None
    data: bytes | None = None
    stream: Iterable[bytes] | AsyncIterable[bytes] | None = None
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        size = len(data)
        digest = digest or str(Digest.of(data))
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if digest is None:
            digest, size = await asyncio.to_thread(_hash_file, path)
        else:
            size = path.stat().st_size
    elif isinstance(source, Iterable | AsyncIterable):
        stream = cast(Iterable[bytes] | AsyncIterable[bytes], source)
    else:
        raise TypeError(f"cannot upload a {type(source).__name__}: pass bytes, a path or an iterable of bytes")
    if digest is None or session is not None:
        return await _send(uploads, blobs, path, data, stream, digest, size, chunk_size, media_type, resumes,
                           progress, session)
    digest = str(Digest.parse(digest))
    # One upload per blob at a time: concurrent uploads of the same digest race inside the registry
    # (distribution briefly loses the blob while a second commit moves it into place).
    inflight = ctx.state.uploads_in_flight
    key = (ctx.name, digest)
    while (pending := inflight.get(key)) is not None:
        await asyncio.wait([pending])  # then look again: the registry has it now, or it is ours to send
    done: asyncio.Future[Descriptor] = asyncio.get_running_loop().create_future()
    inflight[key] = done
    try:
        if await blobs.exists(digest):
            if size is None:
                size = (await blobs.head(digest)).size
            if progress is not None:
                progress(size)
            result = Descriptor(media_type=media_type, digest=digest, size=size)
        else:
            result = await _send(uploads, blobs, path, data, stream, digest, size, chunk_size, media_type,
                                 resumes, progress, None)
        done.set_result(result)
        return result
    except BaseException as exc:
        done.set_exception(exc)
        done.exception()  # retrieved: waiters re-check the registry rather than inherit this failure
        raise
    finally:
        inflight.pop(key, None)


async def _send(uploads: Uploads, blobs: Blobs, path: Path | None, data: bytes | None,
                stream: Iterable[bytes] | AsyncIterable[bytes] | None, digest: str | None, size: int | None,
                chunk_size: int | None, media_type: str, resumes: int, progress: Callable[[int], Any] | None,
                session: UploadSession | None) -> Descriptor:
    """Upload a blob known not to be there yet (or into ``session``), resuming and cleaning up as needed."""
    ctx = uploads.ctx
    uploads = _Tracked(ctx)  # same endpoints, one upload's session remembered
    uploads.session = session
    resumer = _Resumer(uploads, resumes, blobs, digest, replayable=stream is None)
    try:
        if stream is None and chunk_size is None:
            assert digest is not None and size is not None
            return await _monolithic(ctx, uploads, path, data, digest, size, media_type, resumer, progress,
                                     session)

        if stream is None:
            assert digest is not None and size is not None

            def read(offset: int, length: int) -> Body:
                return file_body(path, offset, length) if path is not None else bytes_body(data or b"", offset, length)

            return await _chunked_seekable(uploads, read, digest, size, chunk_size or DEFAULT_CHUNK, media_type,
                                           resumer, progress, session)
        assert stream is not None
        return await _chunked_stream(uploads, stream, digest, size, chunk_size or DEFAULT_CHUNK, media_type,
                                     resumer, progress, session)
    except _Done:
        assert digest is not None
        return Descriptor(media_type=media_type, digest=digest, size=size if size is not None else 0)
    except BaseException:
        if uploads.session is not None:  # leave no half-written upload behind on the registry
            with contextlib.suppress(Exception):
                await uploads.cancel(uploads.session)
        raise


async def _monolithic(ctx: RepoContext, uploads: Uploads, path: Path | None, data: bytes | None, digest: str,
                      size: int, media_type: str, resumer: _Resumer,
                      progress: Callable[[int], Any] | None, session: UploadSession | None = None) -> Descriptor:
    """Single POST for small blobs where the registry supports it, else POST then PUT."""
    if session is None and data is not None and size <= SINGLE_POST_MAX and ctx.state.single_post is not False:
        answer = await uploads.post(digest, data)
        if isinstance(answer, Descriptor):
            ctx.state.single_post = True
            if progress is not None:
                progress(size)
            return Descriptor(media_type=media_type, digest=digest, size=size)
        ctx.state.single_post = False
        session = answer
    elif session is None:
        session = await uploads.start()

    def body_from(offset: int) -> Body:
        if data is not None:
            return data[offset:]
        assert path is not None
        return file_body(path, offset)

    while True:
        try:
            if session.offset == 0:
                await uploads.finish(session, digest, body_from(0), length=size)
            else:
                session = await uploads.patch(session, body_from(session.offset), length=size - session.offset)
                await uploads.finish(session, digest, b"", length=0)
            break
        except Exception as exc:
            if not _is_resumable(exc):
                raise
            session = await resumer.recover(session, exc)
    if progress is not None:
        progress(size)
    return Descriptor(media_type=media_type, digest=digest, size=size)


async def _chunked_seekable(uploads: Uploads, read: Callable[[int, int], Body], digest: str, size: int,
                            chunk_size: int, media_type: str, resumer: _Resumer,
                            progress: Callable[[int], Any] | None, session: UploadSession | None) -> Descriptor:
    """PATCH a source that can be read at any offset (bytes, a file), resuming wherever the registry stands.

    Nothing is buffered: each chunk streams from the source; the registry checks the digest at the PUT.
    """
    if session is None:
        session = await uploads.start()
    while True:
        step = max(chunk_size, session.min_chunk or 0)
        while session.offset < size:
            length = min(step, size - session.offset)
            try:
                session = await uploads.patch(session, read(session.offset, length), length=length)
            except Exception as exc:
                if not _is_resumable(exc):
                    raise
                session = await resumer.recover(session, exc)
                continue
            if progress is not None:
                progress(length)
        try:
            await uploads.finish(session, digest, b"", length=0)
            return Descriptor(media_type=media_type, digest=digest, size=size)
        except Exception as exc:
            if not _is_resumable(exc):
                raise
            session = await resumer.recover(session, exc)


async def _chunked_stream(uploads: Uploads, stream: Iterable[bytes] | AsyncIterable[bytes], digest: str | None,
                          size: int | None, chunk_size: int, media_type: str, resumer: _Resumer,
                          progress: Callable[[int], Any] | None, session: UploadSession | None) -> Descriptor:
    """PATCH a one-shot stream, hashing as it goes and keeping only the current chunk to resume within."""
    if session is None:
        session = await uploads.start()
    if session.min_chunk and chunk_size < session.min_chunk:
        chunk_size = session.min_chunk
    hasher = Hasher(digest, size, what="upload") if digest else Hasher(None, size, what="upload")
    sent = 0
    async for chunk in _chunks(stream, chunk_size):
        hasher.update(chunk)
        start = sent
        while session.offset < start + len(chunk):
            if session.offset < start:
                raise TransportError(
                    f"upload cannot resume: the registry holds {session.offset} bytes but the source "
                    f"is a stream already past byte {start}")
            skip = session.offset - start
            try:
                session = await uploads.patch(session, bytes_body(chunk, skip), length=len(chunk) - skip)
            except Exception as exc:
                if not _is_resumable(exc):
                    raise
                session = await resumer.recover(session, exc)
        sent += len(chunk)
        if progress is not None:
            progress(len(chunk))
    final = str(hasher.verify() if digest else hasher.digest())
    while True:
        try:
            await uploads.finish(session, final, b"", length=0)
            break
        except Exception as exc:
            if not _is_resumable(exc):
                raise
            session = await resumer.recover(session, exc)
            if session.offset != sent:
                raise TransportError(f"upload lost data: the registry holds {session.offset} of {sent} bytes") from None
    return Descriptor(media_type=media_type, digest=final, size=sent)
