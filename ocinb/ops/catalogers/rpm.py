"""rpm's SQLite database (``rpmdb.sqlite``, rpm ≥ 4.16's default, also what Debian's rpm writes): table
``Packages(hnum, blob)``, each blob an rpm header parsed here (rpm's file format: the header structure).

A header is big-endian ``il`` (entry count) and ``dl`` (data size), then ``il`` 16-byte index entries (tag, type,
offset, count), then ``dl`` bytes of data; strings are NUL-terminated. The database is copied to a temporary
directory (with its ``-wal`` when the tree has one, so committed transactions are seen) and opened with the
stdlib ``sqlite3``. Berkeley DB (``Packages``) and NDB (``Packages.db``) databases give a warning row.
"""

from __future__ import annotations

import posixpath
import sqlite3
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .base import (
    MAX_PACKAGES,
    MIB,
    CatalogContext,
    Cataloger,
    PackageRow,
    Problems,
    WantedFile,
    purl,
    warning_row,
)

DIRS = ("var/lib/rpm", "usr/lib/sysimage/rpm", "usr/share/rpm")
SQLITE_PATHS = tuple(f"{d}/rpmdb.sqlite" for d in DIRS)
WAL_PATHS = tuple(f"{p}-wal" for p in SQLITE_PATHS)
OTHER_BACKENDS = tuple(f"{d}/{f}" for d in DIRS for f in ("Packages", "Packages.db"))
SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"

NAME, VERSION, RELEASE, EPOCH, SIZE, LICENSE, ARCH, SOURCERPM, LONGSIZE = (
    1000, 1001, 1002, 1003, 1009, 1014, 1022, 1044, 5009)
INT32, INT64, STRING, STRING_ARRAY, I18NSTRING = 4, 5, 6, 8, 9
MAX_ENTRIES = 0xFFFF
"""rpm's own bound on a header's index entries (``hdrchkTags``)."""


class HeaderError(ValueError):
    """An rpm header blob that does not parse."""


def parse_header(blob: bytes) -> dict[int, str | int]:
    """The string and integer tags of one header blob (the lead magic, if present, is skipped)."""
    if blob.startswith(HEADER_MAGIC):
        blob = blob[len(HEADER_MAGIC):]
    if len(blob) < 8:
        raise HeaderError("shorter than a header's 8-byte preamble")
    il, dl = struct.unpack_from(">II", blob, 0)
    store = 8 + 16 * il
    if il > MAX_ENTRIES or store + dl > len(blob):
        raise HeaderError(f"{il} entries and {dl} data bytes do not fit in {len(blob)} bytes")
    data = blob[store:store + dl]
    tags: dict[int, str | int] = {}
    for i in range(il):
        tag, kind, offset, count = struct.unpack_from(">IIII", blob, 8 + 16 * i)
        if offset > dl:
            raise HeaderError(f"tag {tag}: offset {offset} past the {dl}-byte data store")
        if kind in (STRING, STRING_ARRAY, I18NSTRING):
            end = data.find(b"\x00", offset)
            if end < 0:
                raise HeaderError(f"tag {tag}: string without its NUL")
            tags[tag] = data[offset:end].decode("utf-8", "replace")
        elif kind == INT32 and count >= 1 and offset + 4 <= dl:
            tags[tag] = struct.unpack_from(">I", data, offset)[0]
        elif kind == INT64 and count >= 1 and offset + 8 <= dl:
            tags[tag] = struct.unpack_from(">Q", data, offset)[0]
    return tags


def source_name(sourcerpm: str | None) -> str | None:
    """``bash-5.1-2.src.rpm`` → ``bash`` (name-version-release, then the suffix)."""
    if not sourcerpm:
        return None
    stem = sourcerpm.removesuffix(".rpm").rsplit(".", 1)[0]
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else stem


def read_blobs(data: bytes, wal: bytes | None) -> list[tuple[int, bytes]]:
    """``(hnum, blob)`` of every row of ``Packages``, through a temporary copy of the database."""
    with tempfile.TemporaryDirectory(prefix="ocinb-rpmdb-") as tmp:
        path = Path(tmp) / "rpmdb.sqlite"
        path.write_bytes(data)
        if wal:
            (Path(tmp) / "rpmdb.sqlite-wal").write_bytes(wal)
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA trusted_schema = OFF")
            kind = connection.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
            if kind is None or kind[0] != "table":
                raise sqlite3.DatabaseError("no Packages table")
            return [(h if isinstance(h, int) else -1, b if isinstance(b, bytes) else b"")
                    for h, b in connection.execute("SELECT hnum, blob FROM Packages")]
        finally:
            connection.close()


def parse(files: Sequence[WantedFile], context: CatalogContext) -> list[PackageRow]:
    """One row per package header (``gpg-pubkey`` pseudo-packages left out); warning rows for a database that is
    not SQLite, has no ``Packages`` table, or holds headers that do not parse, and for BDB/NDB databases."""
    rows: list[PackageRow] = []
    wals = {f.path.removesuffix("-wal"): f.data for f in files if f.path.endswith("-wal")}
    for wanted in files:
        if wanted.path.endswith("-wal"):
            continue
        rows += parse_database(wanted, wals.get(wanted.path), context)
    for other in OTHER_BACKENDS:
        if other in context.layers:
            kind = "Berkeley DB" if other.endswith("Packages") else "NDB"
            rows.append(warning_row("rpm", other, context.layers[other],
                                    f"rpm {kind} database ({posixpath.basename(other)}) is not read; only "
                                    "rpmdb.sqlite is"))
    return rows


def parse_database(wanted: WantedFile, wal: bytes | None, context: CatalogContext) -> list[PackageRow]:
    """The packages of one ``rpmdb.sqlite``."""
    if not wanted.data.startswith(SQLITE_MAGIC):
        return [warning_row("rpm", wanted.path, wanted.layer, "rpmdb.sqlite is not an SQLite database")]
    try:
        blobs = read_blobs(wanted.data, wal)
    except sqlite3.Error as error:
        return [warning_row("rpm", wanted.path, wanted.layer, f"rpmdb.sqlite cannot be read: {error}")]
    rows: list[PackageRow] = []
    bad = Problems()
    os = context.os
    for hnum, blob in blobs:
        if len(rows) >= MAX_PACKAGES:
            bad.add(f"more than {MAX_PACKAGES} packages; the rest are not listed", first=True)
            break
        try:
            tags = parse_header(blob)
        except HeaderError as error:
            bad.add(f"header {hnum}: {error}")
            continue
        name = tags.get(NAME)
        if not isinstance(name, str) or name == "gpg-pubkey":
            if not isinstance(name, str):
                bad.add(f"header {hnum}: no NAME tag")
            continue
        version, release, epoch = tags.get(VERSION), tags.get(RELEASE), tags.get(EPOCH)
        arch = str(tags[ARCH]) if ARCH in tags else None
        vr = "-".join(str(p) for p in (version, release) if p is not None) or None
        evr = f"{epoch}:{vr}" if epoch is not None and vr else vr
        size = tags.get(LONGSIZE, tags.get(SIZE))
        sourcerpm = tags.get(SOURCERPM)
        src = source_name(sourcerpm if isinstance(sourcerpm, str) else None)
        rows.append(PackageRow(
            ecosystem="rpm", name=name, version=evr, arch=arch, source_name=src,
            size=size if isinstance(size, int) else None,
            license=str(tags[LICENSE]) if LICENSE in tags else None, path=wanted.path, layer=wanted.layer,
            purl=purl("rpm", os.id if os else None, name, vr, {
                "arch": arch, "epoch": None if epoch is None else str(epoch),
                "distro": os.distro if os else None,
                "upstream": sourcerpm if isinstance(sourcerpm, str) else None,
            }),
        ))
    if bad:
        rows.append(warning_row("rpm", wanted.path, wanted.layer, f"malformed rpm headers: {bad.summary()}"))
    return rows


CATALOGER = Cataloger(
    name="rpm", parse=parse, paths=SQLITE_PATHS + WAL_PATHS, max_size=256 * MIB, layer_globs=OTHER_BACKENDS,
)
