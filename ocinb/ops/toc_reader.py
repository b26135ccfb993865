"""File tables from a layer's table of contents: eStargz and zstd:chunked, read with HTTP ``Range`` only.

eStargz ends in a 51-byte gzip footer naming the TOC's offset; the TOC is the last tar entry,
``stargz.index.json``, in its own gzip member, and the manifest's ``containerd.io/snapshot/stargz/toc.digest``
is the sha256 of its JSON. zstd:chunked keeps its TOC in a zstd skippable frame that the manifest's
``…manifest-position`` locates and ``…manifest-checksum`` hashes (compressed). Anything that stops a TOC from
being read and verified raises :class:`TocUnavailable`, whose reason the caller reports when it streams instead.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import zlib
from datetime import datetime
from typing import Any

from ..endpoints.repository import RepositoryEndpoints
from ..errors import RegistryError
from ..models import Descriptor
from ..tarfs import FileEntry, LayerFiles, LayerLimits, make_entry

ESTARGZ_TOC_DIGEST = "containerd.io/snapshot/stargz/toc.digest"
ZSTD_CHUNKED_CHECKSUM = "io.github.containers.zstd-chunked.manifest-checksum"
ZSTD_CHUNKED_POSITION = "io.github.containers.zstd-chunked.manifest-position"
ESTARGZ_FOOTER_SIZE = 51
ESTARGZ_TOC_NAME = "stargz.index.json"
SOURCES = {"estargz": "estargz-toc", "zstd-chunked": "zstd-chunked-toc"}
"""The ``source`` of the rows each TOC format gives."""

_TOC_TYPES = {"reg": "0", "dir": "5", "symlink": "2", "hardlink": "1", "char": "3", "block": "4", "fifo": "6"}

zstandard: Any
try:
    import zstandard
except ImportError:  # pragma: no cover - zstandard is a dependency
    zstandard = None


class TocUnavailable(Exception):
    """The layer's TOC cannot be used (Range refused, bad footer, digest mismatch, over the limit, malformed):
    the message says which, and the layer is streamed whole instead."""


def toc_format(desc: Descriptor) -> str | None:
    """``estargz`` or ``zstd-chunked`` from the descriptor's annotations, ``None`` when it announces no TOC;
    :class:`TocUnavailable` for one that announces both (containers/storage rejects those too)."""
    notes = desc.annotations or {}
    estargz = ESTARGZ_TOC_DIGEST in notes
    chunked = ZSTD_CHUNKED_POSITION in notes or ZSTD_CHUNKED_CHECKSUM in notes
    if estargz and chunked:
        raise TocUnavailable("the layer carries both eStargz and zstd:chunked annotations")
    return "estargz" if estargz else "zstd-chunked" if chunked else None


def toc_claim(desc: Descriptor, fmt: str) -> str:
    """A short hash of the annotations a ``fmt`` TOC is verified against: part of its cache key, so a table
    verified for one manifest's claim is never served to a manifest that claims another TOC."""
    notes = desc.annotations or {}
    keys = (ESTARGZ_TOC_DIGEST,) if fmt == "estargz" else (ZSTD_CHUNKED_CHECKSUM, ZSTD_CHUNKED_POSITION)
    return hashlib.sha256("\n".join(notes.get(k, "") for k in keys).encode()).hexdigest()[:32]


async def _ranged(repo: RepositoryEndpoints, desc: Descriptor, start: int, end: int) -> bytes:
    try:
        data = await repo.blobs.read_range(desc.digest, start, end)
    except RegistryError as exc:
        raise TocUnavailable(f"the ranged read of bytes {start}-{end - 1} failed: {exc}") from None
    if data is None:
        raise TocUnavailable("the registry does not serve Range requests on this blob (200 or 416 instead of 206)")
    return data


def _cap(limits: LayerLimits, n: int, what: str) -> None:
    cap = limits.max_toc_bytes
    if cap is not None and n > cap:
        raise TocUnavailable(f"{what} is {n} bytes, more than {cap} (LayerLimits.max_toc_bytes)")


def _expected_sha256(value: str, what: str) -> str:
    algo, _, hexdigest = value.partition(":")
    if algo != "sha256" or len(hexdigest) != 64:
        raise TocUnavailable(f"the {what} annotation {value[:80]!r} is not a sha256 digest")
    return hexdigest.lower()


def parse_estargz_footer(footer: bytes) -> int:
    """The TOC offset from an eStargz footer: an empty gzip member whose Extra field is ``SG``, LEN 22,
    ``%016xSTARGZ``; :class:`TocUnavailable` for anything else."""
    if (len(footer) != ESTARGZ_FOOTER_SIZE or footer[:3] != b"\x1f\x8b\x08" or not footer[3] & 0x04
            or footer[10:12] != (26).to_bytes(2, "little") or footer[12:14] != b"SG"
            or footer[14:16] != (22).to_bytes(2, "little") or footer[32:38] != b"STARGZ"):
        raise TocUnavailable("the last 51 bytes are not an eStargz footer")
    try:
        offset = int(footer[16:32].decode("ascii"), 16)
        d = zlib.decompressobj(31)
        empty = d.decompress(footer) == b"" and d.eof and not d.unused_data
    except (UnicodeDecodeError, ValueError, zlib.error):
        raise TocUnavailable("the eStargz footer is malformed") from None
    if not empty:
        raise TocUnavailable("the eStargz footer is not an empty gzip member")
    return offset


def _mtime(value: Any) -> float:
    if not value:
        return 0.0
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise TocUnavailable(f"a TOC modtime {str(value)[:40]!r} is not RFC 3339") from None


def _xattrs(value: Any) -> dict[str, str] | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise TocUnavailable("a TOC entry's xattrs is not an object")
    try:
        return {str(k): base64.b64decode(v, validate=True).decode("utf-8", "surrogateescape")
                for k, v in value.items()}
    except (ValueError, TypeError):
        raise TocUnavailable("a TOC entry's xattrs are not base64") from None


def toc_entries(doc: Any, source: str, limits: LayerLimits) -> list[FileEntry]:
    """The rows of a TOC JSON document (``chunk`` entries, which continue a file, are not rows)."""
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("entries"), list):
        raise TocUnavailable("the TOC is not a version 1 table of contents with an entries list")
    entries: list[FileEntry] = []
    for raw in doc["entries"]:
        if not isinstance(raw, dict):
            raise TocUnavailable("a TOC entry is not an object")
        kind = raw.get("type")
        if kind == "chunk":
            continue
        if kind not in _TOC_TYPES:
            raise TocUnavailable(f"a TOC entry has the unknown type {str(kind)[:20]!r}")
        if limits.max_entries is not None and len(entries) >= limits.max_entries:
            raise TocUnavailable(f"the TOC has more than {limits.max_entries} entries (LayerLimits.max_entries)")
        try:
            name = raw["name"]
            values = [raw.get(k, 0) or 0 for k in ("size", "mode", "uid", "gid")]
            if not isinstance(name, str) or not name or not all(isinstance(v, int) and v >= 0 for v in values):
                raise TypeError
            size, mode, uid, gid = values
            tar_type = _TOC_TYPES[kind]
            link = raw.get("linkName") or None
            dev = tar_type in ("3", "4")
            entries.append(make_entry(
                name=name.rstrip("/") or name if tar_type == "5" else name, tar_type=tar_type,
                size=size if tar_type == "0" else 0, mode=mode, uid=uid, gid=gid,
                uname=str(raw.get("userName") or raw.get("uname") or ""),
                gname=str(raw.get("groupName") or raw.get("gname") or ""), mtime=_mtime(raw.get("modtime")),
                linkname=str(link) if link is not None and tar_type in ("1", "2") else None,
                devmajor=int(raw.get("devMajor") or 0) if dev else None,
                devminor=int(raw.get("devMinor") or 0) if dev else None,
                xattrs=_xattrs(raw.get("xattrs")), entry_index=len(entries), source=source))
        except (KeyError, TypeError, ValueError):
            raise TocUnavailable(f"TOC entry {len(entries)} is malformed") from None
    return entries


async def _estargz(repo: RepositoryEndpoints, desc: Descriptor, limits: LayerLimits) -> list[FileEntry]:
    expected = _expected_sha256((desc.annotations or {})[ESTARGZ_TOC_DIGEST], "toc.digest")
    size = desc.size
    if size <= ESTARGZ_FOOTER_SIZE:
        raise TocUnavailable(f"the blob ({size} bytes) is too small for an eStargz footer")
    end = size - ESTARGZ_FOOTER_SIZE
    offset = parse_estargz_footer(await _ranged(repo, desc, end, size))
    if offset >= end:
        raise TocUnavailable(f"the eStargz footer points at byte {offset}, past the TOC area that ends at {end}")
    _cap(limits, end - offset, "the compressed eStargz TOC")
    member = await _ranged(repo, desc, offset, end)
    cap = limits.max_toc_bytes
    d = zlib.decompressobj(31)
    try:
        raw = d.decompress(member, (cap + 64 * 1024) if cap is not None else 0)
    except zlib.error as exc:
        raise TocUnavailable(f"the eStargz TOC member is not gzip ({exc})") from None
    if d.unconsumed_tail:
        raise TocUnavailable(f"the eStargz TOC expands past {cap} bytes (LayerLimits.max_toc_bytes)")
    if not d.eof or d.unused_data:
        raise TocUnavailable("the eStargz TOC is not one whole gzip member ending at the footer")
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
            info = tf.next()
            if info is None or info.name != ESTARGZ_TOC_NAME or not info.isreg():
                raise TocUnavailable(f"the entry at the TOC offset is not {ESTARGZ_TOC_NAME}")
            _cap(limits, info.size, f"the {ESTARGZ_TOC_NAME} its tar header declares")
            handle = tf.extractfile(info)
            data = handle.read() if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise TocUnavailable(f"the eStargz TOC member is not a tar entry ({exc})") from None
    if len(data) != info.size:
        raise TocUnavailable(f"{ESTARGZ_TOC_NAME} declares {info.size} bytes, the member holds {len(data)}")
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise TocUnavailable(f"the TOC's sha256:{got} is not the toc.digest annotation sha256:{expected}")
    entries = toc_entries(_json(data), SOURCES["estargz"], limits)
    entries.append(make_entry(  # the TOC is itself the layer's last tar entry; its header came with it
        name=info.name, tar_type="0", size=info.size, mode=info.mode, uid=info.uid, gid=info.gid,
        uname=info.uname, gname=info.gname, mtime=float(info.mtime), linkname=None, devmajor=None, devminor=None,
        xattrs=None, entry_index=len(entries), source=SOURCES["estargz"]))
    return entries


async def _zstd_chunked(repo: RepositoryEndpoints, desc: Descriptor, limits: LayerLimits) -> list[FileEntry]:
    notes = desc.annotations or {}
    if ZSTD_CHUNKED_POSITION not in notes or ZSTD_CHUNKED_CHECKSUM not in notes:
        raise TocUnavailable("the zstd:chunked annotations need both manifest-position and manifest-checksum")
    expected = _expected_sha256(notes[ZSTD_CHUNKED_CHECKSUM], "manifest-checksum")
    parts = notes[ZSTD_CHUNKED_POSITION].split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise TocUnavailable(f"manifest-position {notes[ZSTD_CHUNKED_POSITION][:80]!r} is not offset:length:size:type")
    offset, length, expanded, kind = (int(p) for p in parts)
    if kind != 1:
        raise TocUnavailable(f"manifest-position names TOC type {kind}; only type 1 (JSON) is known")
    if length <= 0 or offset + length > desc.size:
        raise TocUnavailable(f"manifest-position {offset}:{length} lies outside the {desc.size}-byte blob")
    _cap(limits, length, "the compressed zstd:chunked TOC")
    _cap(limits, expanded, "the zstd:chunked TOC manifest-position declares it")
    data = await _ranged(repo, desc, offset, offset + length)
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise TocUnavailable(f"the TOC's sha256:{got} is not the manifest-checksum annotation sha256:{expected}")
    if zstandard is None:  # pragma: no cover
        raise TocUnavailable("reading a zstd:chunked TOC needs the zstandard package")
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
        text = reader.read(expanded + 1)
    except zstandard.ZstdError as exc:
        raise TocUnavailable(f"the zstd:chunked TOC is not zstd ({exc})") from None
    if len(text) != expanded:
        raise TocUnavailable(f"the zstd:chunked TOC expands to {len(text)} bytes, manifest-position says {expanded}")
    return toc_entries(_json(text), SOURCES["zstd-chunked"], limits)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise TocUnavailable("the TOC is not JSON") from None


async def read_toc(repo: RepositoryEndpoints, desc: Descriptor, fmt: str, limits: LayerLimits) -> LayerFiles:
    """The file table of ``desc`` from its ``fmt`` TOC (``estargz`` / ``zstd-chunked``), fetched with Range
    requests and verified against the manifest's annotation; :class:`TocUnavailable` when it cannot be."""
    reader = _estargz if fmt == "estargz" else _zstd_chunked
    entries = await reader(repo, desc, limits)
    return LayerFiles(digest=desc.digest, media_type=desc.media_type, compressed_size=desc.size, entries=entries,
                      format="gzip" if fmt == "estargz" else "zstd", source=SOURCES[fmt])
