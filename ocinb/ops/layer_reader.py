"""The streamed layer reader: a layer blob → decompressor → tar entries, never on disk nor whole in memory.

The network side (the event loop) hashes the compressed bytes as they pass (``repo.blobs.open`` verifies the
digest at the end) and feeds a bounded queue; a worker thread decompresses (``isal`` for gzip when installed,
else the stdlib; ``zstandard`` for zstd, across frames) and walks the tar headers. Results are returned, and
cached by layer digest, only once the digest has been verified and the stream ended cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import queue
import tarfile
import zlib
from collections.abc import Callable
from typing import Any

from .. import media_types as mt
from ..endpoints.repository import RepositoryEndpoints
from ..errors import LayerError, LayerLimitError, UnsupportedLayerError
from ..models import Descriptor, ImageManifest
from ..tarfs import FORMAT_VERSION, FileEntry, LayerFiles, LayerLimits, dump_layer, load_layer, make_entry

try:
    from isal import igzip as _igzip

    GzipReader: Any = _igzip.GzipFile
except ImportError:  # pragma: no cover - isal is a dependency; the stdlib is the fallback
    GzipReader = gzip.GzipFile

zstandard: Any
try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

FOREIGN_TYPES = frozenset({mt.DOCKER_FOREIGN_LAYER, mt.OCI_LAYER_NONDIST, mt.OCI_LAYER_NONDIST_GZIP,
                           mt.OCI_LAYER_NONDIST_ZSTD})
TAR_LAYER_TYPES = frozenset({mt.OCI_LAYER, mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD, mt.DOCKER_LAYER,
                             mt.DOCKER_LAYER_GZIP, mt.DOCKER_LAYER_ZSTD})
BATCH = 256 * 1024
"""Bytes handed to the worker at a time; with :data:`QUEUE_BATCHES` the most a layer holds in flight (4 MiB)."""
QUEUE_BATCHES = 16
TAR_BUFSIZE = 64 * 1024
"""tarfile's stream buffer: measured faster than 1 MiB (see docs/inside-layers.md)."""
CONTENT_READ = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_HEADER_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                 tarfile.GNUTYPE_LONGLINK)


def layer_kind(desc: Descriptor) -> str:
    """``read`` for a tar layer ocinb streams, ``foreign`` / ``non-distributable`` for one reported without a
    download; :class:`UnsupportedLayerError` naming the type for encrypted or non-layer types."""
    media_type = desc.media_type
    if media_type == mt.DOCKER_FOREIGN_LAYER:
        return "foreign"
    if media_type in FOREIGN_TYPES:
        return "non-distributable"
    if media_type in TAR_LAYER_TYPES:
        return "read"
    if "encrypted" in media_type:
        raise UnsupportedLayerError(media_type, desc.digest, "is encrypted (ocicrypt): ocinb cannot list it")
    raise UnsupportedLayerError(media_type, desc.digest)


def cache_kind(digests: bool) -> str:
    """The cache namespace of file tables (the format version is part of the key)."""
    return f"files-v{FORMAT_VERSION}{'-digests' if digests else ''}"


class _Aborted(Exception):
    """The network side stopped (digest mismatch, broken connection, cancel): the worker drops everything."""


class _Pipe:
    """The worker's end of the bounded queue: a file-like ``read`` over the batches the event loop puts."""

    def __init__(self, q: queue.Queue[bytes | None], taken: Callable[[], None]) -> None:
        self._q = q
        self._taken = taken
        self._buf = memoryview(b"")
        self._eof = False
        self.aborted = False
        self.received = 0

    def _fill(self) -> bool:
        if self._eof:
            return False
        item = self._q.get()
        self._taken()
        if self.aborted:
            raise _Aborted
        if item is None:
            self._eof = True
            return False
        self.received += len(item)
        self._buf = memoryview(item)
        return True

    def read(self, n: int = -1) -> bytes:
        if not self._buf and not self._fill():
            return b""
        if n < 0:
            parts = [bytes(self._buf)]
            self._buf = memoryview(b"")
            while self._fill():
                parts.append(bytes(self._buf))
                self._buf = memoryview(b"")
            return b"".join(parts)
        out = bytes(self._buf[:n])
        self._buf = self._buf[n:]
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def peek(self, n: int) -> bytes:
        """At least ``n`` bytes if the stream has them, without consuming (for sniffing the format)."""
        while len(self._buf) < n:
            rest = bytes(self._buf)
            if not self._fill():
                self._buf = memoryview(rest)
                break
            self._buf = memoryview(rest + bytes(self._buf))
        return bytes(self._buf[:n])


class _Expanded:
    """The decompressed stream as tarfile reads it: hashed (the diff_id), counted and held to the limits."""

    def __init__(self, inner: Any, pipe: _Pipe, limits: LayerLimits, layer: str) -> None:
        self._inner = inner
        self._pipe = pipe
        self._limits = limits
        self._layer = layer
        self.hasher = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self.count += len(data)
        self.hasher.update(data)
        lim = self._limits
        if lim.max_expanded_bytes is not None and self.count > lim.max_expanded_bytes:
            raise LayerLimitError(f"expands past {lim.max_expanded_bytes} bytes (LayerLimits.max_expanded_bytes)",
                                  self._layer)
        if (lim.max_ratio is not None and self.count > lim.ratio_floor
                and self.count > lim.max_ratio * max(self._pipe.received, 1)):
            raise LayerLimitError(
                f"expanded {self.count} bytes from {self._pipe.received} compressed, more than "
                f"{lim.max_ratio:g}× (LayerLimits.max_ratio): a decompression bomb?", self._layer)
        return data


def _limited_tarinfo(limits: LayerLimits, layer: str) -> type[tarfile.TarInfo]:
    """A TarInfo that refuses a PAX or GNU long-name header above the limit before reading it into memory."""

    class LimitedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
            if (self.type in _HEADER_TYPES and limits.max_header_bytes is not None
                    and self.size > limits.max_header_bytes):
                raise LayerLimitError(
                    f"a {self.type!r} header of {self.size} bytes is larger than {limits.max_header_bytes} "
                    "(LayerLimits.max_header_bytes)", layer)
            return super()._proc_member(tarfile)  # type: ignore[misc, no-any-return]

    return LimitedTarInfo


def _xattrs(pax: dict[str, str]) -> dict[str, str] | None:
    found = {k[len("SCHILY.xattr."):]: v for k, v in pax.items() if k.startswith("SCHILY.xattr.")}
    return found or None


def _walk(pipe: _Pipe, desc: Descriptor, digests: bool, limits: LayerLimits) -> LayerFiles:
    """The worker: sniff, decompress, walk the headers (and hash contents with ``digests``), drain to the end."""
    layer = desc.digest
    head = pipe.peek(4)
    if head.startswith(_GZIP_MAGIC):
        fmt, inner = "gzip", GzipReader(fileobj=pipe)
    elif head.startswith(_ZSTD_MAGIC):
        if zstandard is None:  # pragma: no cover
            raise UnsupportedLayerError(desc.media_type, layer, "needs the zstandard package")
        fmt = "zstd"
        inner = zstandard.ZstdDecompressor().stream_reader(pipe, read_across_frames=True, closefd=False)
    else:
        fmt, inner = "tar", pipe
    expanded = _Expanded(inner, pipe, limits, layer)
    entries: list[FileEntry] = []
    try:
        with tarfile.open(fileobj=expanded, mode="r|", bufsize=TAR_BUFSIZE,  # type: ignore[call-overload]
                          tarinfo=_limited_tarinfo(limits, layer)) as tf:
            for index, m in enumerate(tf):
                if limits.max_entries is not None and index >= limits.max_entries:
                    raise LayerLimitError(f"has more than {limits.max_entries} entries (LayerLimits.max_entries)",
                                          layer)
                digest = None
                if digests and m.isreg():
                    fh = tf.extractfile(m)
                    if fh is not None:
                        h = hashlib.sha256()
                        while chunk := fh.read(CONTENT_READ):
                            h.update(chunk)
                        digest = f"sha256:{h.hexdigest()}"
                pax = m.pax_headers
                entries.append(make_entry(
                    name=m.name, tar_type=m.type.decode("latin-1"), size=m.size, mode=m.mode, uid=m.uid, gid=m.gid,
                    uname=m.uname, gname=m.gname, mtime=float(m.mtime),
                    linkname=m.linkname if m.type in (tarfile.LNKTYPE, tarfile.SYMTYPE) else None,
                    devmajor=m.devmajor, devminor=m.devminor, xattrs=_xattrs(pax) if pax else None,
                    entry_index=index, digest=digest))
                tf.members = []
        while expanded.read(CONTENT_READ):
            pass
    except (_Aborted, LayerError):
        raise
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, OSError, ValueError) as exc:
        raise LayerError(_explain(exc, fmt), layer) from None
    except Exception as exc:
        if zstandard is not None and isinstance(exc, zstandard.ZstdError):
            raise LayerError(f"the zstd stream is corrupt ({exc})", layer) from None
        raise
    return LayerFiles(digest=layer, media_type=desc.media_type, compressed_size=pipe.received, entries=entries,
                      format=fmt, diff_id=f"sha256:{expanded.hasher.hexdigest()}", expanded_size=expanded.count,
                      digests=digests)


def _explain(exc: BaseException, fmt: str) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError):
        return f"the {fmt} stream is truncated ({text})"
    if isinstance(exc, gzip.BadGzipFile) or "gzip" in text.lower() or "Not a gzipped" in text:
        return f"the gzip stream is corrupt or has trailing garbage ({text})"
    if isinstance(exc, tarfile.TarError):
        return f"not a valid tar archive ({text})"
    return f"the {fmt} stream is corrupt ({type(exc).__name__}: {text})"


async def read_layer(repo: RepositoryEndpoints, desc: Descriptor, *, digests: bool = False,
                     limits: LayerLimits | None = None, progress: Callable[[int], Any] | None = None,
                     use_cache: bool = True) -> LayerFiles:
    """The file table of one layer, streamed and verified (or from the content cache, by layer digest).

    Foreign and non-distributable layers come back with ``status`` saying so and no entries, without a
    download. ``progress`` is called on the event loop with each compressed byte count as it arrives.
    """
    kind = layer_kind(desc)
    if kind != "read":
        return LayerFiles(digest=desc.digest, media_type=desc.media_type, compressed_size=desc.size, status=kind,
                          urls=tuple(desc.urls or ()))
    if use_cache:
        for flavour in ((True,) if digests else (False, True)):
            data = repo.cache.get_table(cache_kind(flavour), desc.digest)
            found = load_layer(data) if data is not None else None
            if found is not None:
                return found
    limits = limits or LayerLimits()
    loop = asyncio.get_running_loop()
    q: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_BATCHES)
    space = asyncio.Event()

    def taken() -> None:
        loop.call_soon_threadsafe(space.set)

    pipe = _Pipe(q, taken)
    worker = loop.run_in_executor(None, _walk, pipe, desc, digests, limits)
    worker.add_done_callback(lambda _: space.set())

    async def put(item: bytes | None) -> bool:
        while True:
            space.clear()
            try:
                q.put_nowait(item)
                return True
            except queue.Full:
                if worker.done():
                    return False
                await space.wait()

    def abort() -> None:
        pipe.aborted = True
        with contextlib.suppress(queue.Empty):
            while True:
                q.get_nowait()
        with contextlib.suppress(queue.Full):
            q.put_nowait(None)

    try:
        buf: list[bytes] = []
        held = 0
        async for chunk in repo.blobs.open(desc.digest, size=desc.size):
            if progress is not None:
                progress(len(chunk))
            buf.append(chunk)
            held += len(chunk)
            if held >= BATCH:
                if not await put(b"".join(buf)):
                    break
                buf, held = [], 0
        else:
            if not buf or await put(b"".join(buf)):
                await put(None)
    except BaseException:
        abort()
        with contextlib.suppress(BaseException):
            await worker
        raise
    try:
        result = await worker
    except _Aborted:  # pragma: no cover - only after an abort, which re-raised above
        raise LayerError("the layer stream was abandoned", desc.digest) from None
    if result.compressed_size != desc.size:
        raise LayerError(f"read {result.compressed_size} bytes, the descriptor says {desc.size}", desc.digest)
    if use_cache:
        repo.cache.put_table(cache_kind(digests), desc.digest, dump_layer(result))
    return result


def pick_layers(image: ImageManifest, layer: int | str | None) -> list[int]:
    """The indexes of ``image``'s layers that ``layer`` names: all for ``None``, one by index (negative from the
    top) or by digest (a unique prefix of the hex will do)."""
    count = len(image.layers)
    if layer is None:
        return list(range(count))
    if isinstance(layer, int):
        index = layer + count if layer < 0 else layer
        if not 0 <= index < count:
            raise IndexError(f"layer {layer} out of range: the image has {count} layers")
        return [index]
    matches = [i for i, d in enumerate(image.layers) if d.digest == layer or d.digest.split(":")[-1].startswith(layer)]
    if len(matches) != 1:
        raise LookupError(f"{'no' if not matches else 'more than one'} layer matches {layer!r}")
    return matches


async def read_layers(repo: RepositoryEndpoints, descs: list[Descriptor], *, digests: bool = False,
                      limits: LayerLimits | None = None, progress: bool | None = None) -> list[LayerFiles]:
    """The file tables of ``descs`` in order; a ``tqdm.auto`` bar counts compressed bytes while layers stream
    (shown above 32 MiB of layers to stream unless ``progress`` says)."""
    total = sum(d.size for d in descs)
    bar: Any = None
    if progress or (progress is None and total > 32 * 1024 * 1024):
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc="layers", leave=False)
    try:
        return [await read_layer(repo, d, digests=digests, limits=limits,
                                 progress=bar.update if bar is not None else None) for d in descs]
    finally:
        if bar is not None:
            bar.close()
