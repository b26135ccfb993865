"""Blob endpoints: end-2 (GET/HEAD), end-10 (DELETE), end-11 (mount), and streamed upload/download.

Downloads stream through a :class:`~ocinb.digest.Hasher`, resume with ``Range`` after a dropped
connection, and write to a temporary file renamed only once verified. Uploads never read a whole
source into memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from .._http.auth import repository_scope
from ..digest import Digest, Hasher
from ..errors import ErrorDetail, RegistryError, TransportError, redact_url
from ..models import Descriptor
from ..reference import validate_repository
from ._base import Endpoint, RepoContext
from ._uploader import Source, UploadPlan, upload_blob
from .uploads import OCTET, Uploads, UploadSession

DEFAULT_RESUMES = 5


class BlobStream:
    """An open, verified, resumable blob download: ``async for chunk in stream``.

    The digest (and the size, when known) is checked as the last chunk arrives; a mismatch raises
    :class:`~ocinb.errors.DigestMismatchError`. A dropped connection resumes with ``Range: bytes=N-``
    up to ``resumes`` times. Chunks come as the network delivers them unless ``chunk_size`` is set
    (re-chunking buffers, and a cut loses the buffered part, which is then fetched again).
    """

    def __init__(self, ctx: RepoContext, digest: str, *, size: int | None = None,
                 resumes: int = DEFAULT_RESUMES, chunk_size: int | None = None) -> None:
        self.ctx = ctx
        self.digest = str(Digest.parse(digest))
        self.size = size
        self.resumes = resumes
        self.resumed = 0
        self._chunk_size = chunk_size
        self._received = 0
        self._hasher = Hasher(self.digest, size, what=f"blob {ctx.name}@{self.digest}")

    @property
    def received(self) -> int:
        return self._received

    async def _network(self) -> AsyncIterator[bytes]:
        """The body as the network delivers it, resuming with ``Range`` after a dropped connection."""
        path = self.ctx.path(f"blobs/{self.digest}")
        while True:
            offset = self._received
            # identity: no intermediary may compress; and what comes is hashed raw, whatever its
            # Content-Encoding says (a gzip layer served as "Content-Encoding: gzip" is still the layer).
            headers = {"Accept-Encoding": "identity"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            try:
                async with self.ctx.core.stream("GET", path, scopes=self.ctx.pull_scopes, headers=headers,
                                                 expect=(200, 206)) as resp:
                    if offset and resp.status_code != 206:
                        raise RegistryError(resp.status_code, "GET", redact_url(str(resp.request.url)), [
                            ErrorDetail("RANGE_INVALID", f"cannot resume at byte {offset}: the server "
                                        f"answered {resp.status_code} instead of 206")])
                    if self.size is None and not offset:
                        length = resp.headers.get("content-length")
                        if length and length.isdigit():
                            self.size = int(length)
                            self._hasher = Hasher(self.digest, self.size, what=self._hasher.what)
                    async for chunk in resp.aiter_raw(self._chunk_size):
                        self._received += len(chunk)
                        yield chunk
                return
            except (httpx.TransportError, TransportError) as exc:
                if self.resumed >= self.resumes:
                    raise TransportError(
                        f"download of {self.digest} broke at byte {self._received} after "
                        f"{self.resumed} resumes: {type(exc).__name__}") from None
                self.resumed += 1

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._network():
            self._hasher.update(chunk)
            yield chunk
        self._hasher.verify()

    async def pump(self, sink: Callable[[bytes], Any], batch: int = 1024 * 1024) -> None:
        """Feed the verified body to ``sink`` (e.g. a file's ``write``) on a worker thread.

        Hashing and ``sink`` run in batches of about ``batch`` bytes while the next batch is read from
        the network, so a download uses two cores; the digest is checked after the last batch.
        """
        def consume(data: bytes) -> None:
            self._hasher.update(data)  # read at call time: the first answer may have replaced it
            sink(data)

        pending: asyncio.Future[None] | None = None
        buf: list[bytes] = []
        held = 0
        try:
            async for chunk in self._network():
                buf.append(chunk)
                held += len(chunk)
                if held >= batch:
                    data = b"".join(buf)
                    buf, held = [], 0
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(asyncio.to_thread(consume, data))
            if pending is not None:
                await pending
                pending = None
            if buf:
                await asyncio.to_thread(consume, b"".join(buf))
        finally:
            if pending is not None and not pending.done():
                with contextlib.suppress(Exception):
                    await pending
        self._hasher.verify()


class Blobs(Endpoint):
    """``repo.blobs``: read, check, delete, download, upload and mount blobs."""

    def __init__(self, ctx: RepoContext, uploads: Uploads) -> None:
        super().__init__(ctx)
        self._uploads = uploads

    async def get(self, digest: str, *, size: int | None = None, max_size: int | None = None) -> bytes:
        """end-2 GET the whole blob into memory, verified: ``size`` (a descriptor's) as the bytes arrive, then
        the digest (use :meth:`open`/:meth:`download` for big blobs)."""
        stream = self.open(digest, size=size)
        out = bytearray()
        async for chunk in stream:
            out += chunk
            if max_size is not None and len(out) > max_size:
                raise RegistryError(200, "GET", self.ctx.path(f"blobs/{digest}"), [
                    ErrorDetail("SIZE_INVALID", f"blob larger than the {max_size} bytes allowed")])
        return bytes(out)

    def open(self, digest: str, *, size: int | None = None, resumes: int = DEFAULT_RESUMES,
             chunk_size: int | None = None) -> BlobStream:
        """A streaming, verified, resumable reader of the blob (``async for chunk in repo.blobs.open(d)``)."""
        return BlobStream(self.ctx, digest, size=size, resumes=resumes, chunk_size=chunk_size)

    async def read_range(self, digest: str, start: int, end: int) -> bytes | None:
        """end-2 GET of bytes ``[start, end)`` with ``Range: bytes=start-(end-1)``: the 206 body, its
        ``Content-Range`` and length checked; ``None`` when the registry will not serve a range (200 with the
        whole body, which is not read, or 416), since Range is only a SHOULD in the distribution spec."""
        digest = str(Digest.parse(digest))
        if not 0 <= start < end:
            raise ValueError(f"an empty or negative byte range [{start}, {end})")
        want = end - start
        path = self.ctx.path(f"blobs/{digest}")
        async with self.ctx.core.stream("GET", path, scopes=self.ctx.pull_scopes,
                                        headers={"Range": f"bytes={start}-{end - 1}"},
                                        expect=(200, 206, 416)) as resp:
            if resp.status_code != 206:
                return None
            content_range = resp.headers.get("content-range", "")
            if not content_range.startswith(f"bytes {start}-{end - 1}/"):
                raise RegistryError(206, "GET", path, [ErrorDetail(
                    "RANGE_INVALID", f"asked for bytes {start}-{end - 1}, the registry sent {content_range[:80]!r}")])
            out = bytearray()
            async for chunk in resp.aiter_bytes():
                out += chunk
                if len(out) > want:
                    break
        if len(out) != want:
            raise RegistryError(206, "GET", path, [ErrorDetail(
                "SIZE_INVALID", f"asked for {want} bytes of {digest}, the registry sent {len(out)}")])
        return bytes(out)

    async def head(self, digest: str) -> Descriptor:
        """end-2 HEAD: the blob's size (``Content-Length``); :class:`NotFoundError` when absent."""
        digest = str(Digest.parse(digest))
        reply = await self.ctx.core.request("HEAD", self.ctx.path(f"blobs/{digest}"), scopes=self.ctx.pull_scopes)
        length = reply.headers.get("content-length", "")
        if not length.isdigit():
            raise RegistryError(reply.status, "HEAD", reply.url, [
                ErrorDetail("SIZE_INVALID", "the registry answered the blob HEAD without a Content-Length")])
        return Descriptor(media_type=OCTET, digest=digest, size=int(length))

    async def exists(self, digest: str) -> bool:
        """Whether the blob is present (HEAD; 404 → False)."""
        digest = str(Digest.parse(digest))
        reply = await self.ctx.core.request("HEAD", self.ctx.path(f"blobs/{digest}"), scopes=self.ctx.pull_scopes,
                                             expect=(200, 404))
        return reply.status == 200

    async def delete(self, digest: str) -> None:
        """end-10 DELETE → 202 (405 when the registry has deletes disabled)."""
        digest = str(Digest.parse(digest))
        await self.ctx.delete(f"blobs/{digest}", "this registry does not allow deleting blobs")

    async def download(self, digest: str, path: str | os.PathLike[str], *, size: int | None = None,
                       resumes: int = DEFAULT_RESUMES, progress: Callable[[int], Any] | None = None) -> Path:
        """Stream the blob to ``path`` through a temporary file renamed only when verified.

        On any failure (mismatch, broken connection past the resume budget) nothing is left behind.
        ``progress`` is called (from a worker thread) with the byte count of each batch written.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:

                def write(data: bytes) -> None:
                    fh.write(data)
                    if progress is not None:
                        progress(len(data))

                await self.open(digest, size=size, resumes=resumes).pump(write)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return target

    async def mount(self, digest: str, from_repo: str, *, size: int | None = None) -> Descriptor | UploadSession:
        """end-11 ``POST ?mount=<digest>&from=<repo>``: 201 → mounted; 202 → an upload session to use.

        Without ``size`` a mounted blob is HEADed once to report its size.
        """
        digest = str(Digest.parse(digest))
        validate_repository(from_repo)
        scopes = (*self.ctx.push_scopes, repository_scope(from_repo, "pull"))
        reply = await self.ctx.core.request(
            "POST", self.ctx.path("blobs/uploads/"), scopes=scopes, expect=(201, 202),
            params={"mount": digest, "from": from_repo}, headers={"Content-Length": "0"},
        )
        if reply.status == 202:
            return UploadSession.from_reply(reply, self.ctx.name)
        if size is None:
            return await self.head(digest)
        return Descriptor(media_type=OCTET, digest=digest, size=size)

    async def upload(self, source: Source, digest: str | None = None, *, size: int | None = None,
                     chunk_size: int | None = None, media_type: str = OCTET, resumes: int = DEFAULT_RESUMES,
                     progress: Callable[[int], Any] | None = None,
                     session: UploadSession | None = None) -> Descriptor:
        """Push a blob monolithically (POST then PUT), streaming the source; skip it if already present.

        Files and bytes have their digest computed first when not given (a streamed pass, memory
        flat); an iterable, or any source with ``chunk_size``, is pushed in chunks (PATCH) while
        hashing. A broken connection or a 416 resumes from the upload's status (end-13). ``session``
        uploads into a session the registry already opened (a mount answered 202) instead of a new one.
        """
        plan = UploadPlan(digest=digest, size=size, chunk_size=chunk_size, media_type=media_type,
                          resumes=resumes, progress=progress, session=session)
        return await upload_blob(self, self._uploads, await plan.reading(source))

