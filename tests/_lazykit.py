"""Build eStargz and zstd:chunked layers in the tests, following their published formats, independently of ocinb.

eStargz (stargz-snapshotter ``docs/estargz.md``): a stream of gzip members in which every non-empty regular
file's payload starts a new member, then the TOC ``stargz.index.json`` as the last tar entry in its own member
(with the tar end-of-archive), then the 51-byte footer: an empty gzip member whose Extra field is ``SG``, LEN 22,
``%016xSTARGZ`` with the TOC offset. ``containerd.io/snapshot/stargz/toc.digest`` is the sha256 of the TOC JSON.

zstd:chunked (containers/storage ``pkg/chunked/internal/compression.go``): a plain tar+zstd stream in which each
non-empty file's payload is its own frame, followed by the TOC compressed with zstd inside a skippable frame
(magic ``50 2a 4d 18``, LE length) and a footer skippable frame. ``…manifest-position`` is
``offset:length:uncompressed:1`` (the offset is past the skippable frame's 8-byte header) and
``…manifest-checksum`` the sha256 of the compressed TOC. The tar-split frame, which no listing reads, is left out.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import zstandard

ESTARGZ_TOC_DIGEST = "containerd.io/snapshot/stargz/toc.digest"
ESTARGZ_UNCOMPRESSED = "io.containers.estargz.uncompressed-size"
ZSTD_CHECKSUM = "io.github.containers.zstd-chunked.manifest-checksum"
ZSTD_POSITION = "io.github.containers.zstd-chunked.manifest-position"
_TYPES = {tarfile.REGTYPE: "reg", tarfile.AREGTYPE: "reg", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink",
          tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


@dataclass
class LazyLayer:
    """A built layer: the blob, its annotations, the uncompressed tar (for the config's diff_id and GNU tar)."""

    blob: bytes
    annotations: dict[str, str]
    tar: bytes
    toc: dict[str, Any] = field(default_factory=dict)
    toc_offset: int = 0

    @property
    def diff_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.tar).hexdigest()


def _members(tar: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        out = []
        for info in tf.getmembers():
            handle = tf.extractfile(info) if info.isreg() else None
            out.append((info, handle.read() if handle is not None else b""))
        return out


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % tarfile.BLOCKSIZE)


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _toc_entry(info: tarfile.TarInfo, data: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": info.name + ("/" if info.isdir() else ""), "type": _TYPES[info.type], "mode": info.mode,
        "uid": info.uid, "gid": info.gid, "userName": info.uname, "groupName": info.gname,
        "modtime": datetime.fromtimestamp(info.mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if info.isreg():
        entry["size"] = info.size
        if data:
            entry["digest"] = "sha256:" + hashlib.sha256(data).hexdigest()
    if info.issym() or info.islnk():
        entry["linkName"] = info.linkname
    if info.ischr() or info.isblk():
        entry["devMajor"], entry["devMinor"] = info.devmajor, info.devminor
    xattrs = {k[13:]: v for k, v in info.pax_headers.items() if k.startswith("SCHILY.xattr.")}
    if xattrs:
        entry["xattrs"] = {k: base64.b64encode(v.encode("utf-8", "surrogateescape")).decode() for k, v in
                           xattrs.items()}
    return entry


def _gzip_member(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def estargz_footer(toc_offset: int) -> bytes:
    """The 51-byte eStargz footer exactly as ``docs/estargz.md`` lays it out."""
    extra = b"SG" + struct.pack("<H", 22) + f"{toc_offset:016x}STARGZ".encode()
    header = b"\x1f\x8b\x08\x04" + bytes(4) + b"\x00\xff" + struct.pack("<H", len(extra)) + extra
    return header + b"\x01\x00\x00\xff\xff" + bytes(8)


def estargz(tar: bytes, *, landmark: bool = True) -> LazyLayer:
    """An eStargz blob of ``tar``'s members (with the ``.no.prefetch.landmark`` first, as the writer does)."""
    members = _members(tar)
    if landmark:
        mark = tarfile.TarInfo(".no.prefetch.landmark")
        mark.size, mark.mode = 1, 0o644
        members.insert(0, (mark, b"\x0f"))
    out = bytearray()
    pending = bytearray()
    entries = []
    for info, data in members:
        pending += _header(info)
        entry = _toc_entry(info, data)
        if info.isreg() and data:
            out += _gzip_member(bytes(pending)) if pending else b""
            pending.clear()
            entry["offset"] = len(out)
            entry["chunkDigest"] = entry["digest"]
            pending += _pad(data)
        entries.append(entry)
    if pending:
        out += _gzip_member(bytes(pending))
    toc = {"version": 1, "entries": entries}
    toc_json = json.dumps(toc).encode()
    toc_offset = len(out)
    info = tarfile.TarInfo("stargz.index.json")
    info.size, info.mode = len(toc_json), 0o644
    out += _gzip_member(_header(info) + _pad(toc_json) + bytes(2 * tarfile.BLOCKSIZE))
    out += estargz_footer(toc_offset)
    blob = bytes(out)
    expanded = gzip.decompress(blob)
    notes = {ESTARGZ_TOC_DIGEST: "sha256:" + hashlib.sha256(toc_json).hexdigest(),
             ESTARGZ_UNCOMPRESSED: str(len(expanded))}
    return LazyLayer(blob, notes, expanded, toc, toc_offset)


def _skippable(payload: bytes, nibble: int = 0) -> bytes:
    return struct.pack("<II", 0x184D2A50 + nibble, len(payload)) + payload


def zstd_chunked(tar: bytes, *, declared_size: int | None = None) -> LazyLayer:
    """A zstd:chunked blob of ``tar``'s members; ``declared_size`` overrides the TOC's uncompressed length in
    ``manifest-position`` (a hostile annotation)."""
    members = _members(tar)
    cctx = zstandard.ZstdCompressor()
    out = bytearray()
    pending = bytearray()
    entries = []
    for info, data in members:
        pending += _header(info)
        entry = _toc_entry(info, data)
        if info.isreg() and data:
            out += cctx.compress(bytes(pending)) if pending else b""
            pending = bytearray(_pad(data))
            entry["offset"] = len(out)
            out += cctx.compress(bytes(pending))
            entry["endOffset"] = len(out)
            pending.clear()
        entries.append(entry)
    out += cctx.compress(bytes(pending) + bytes(2 * tarfile.BLOCKSIZE))
    toc = {"version": 1, "entries": entries, "tarSplitDigest": ""}
    toc_json = json.dumps(toc).encode()
    compressed = cctx.compress(toc_json)
    offset = len(out) + 8
    out += _skippable(compressed)
    out += _skippable(struct.pack("<QQQQQQ", offset, len(compressed), len(toc_json), 1, 0, 0) + b"GNUlInUx")
    blob = bytes(out)
    notes = {ZSTD_CHECKSUM: "sha256:" + hashlib.sha256(compressed).hexdigest(),
             ZSTD_POSITION: f"{offset}:{len(compressed)}:{declared_size or len(toc_json)}:1"}
    expanded = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True).read()
    return LazyLayer(blob, notes, expanded, toc, offset)
