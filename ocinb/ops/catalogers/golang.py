"""Go binaries' build info (Go ≥ 1.18, as ``debug/buildinfo`` reads it): a 32-byte header at a 16-byte aligned
offset starting ``\\xff Go buildinf:`` (byte 14 the pointer size, byte 15 flags); with flag 2 two
uvarint-length-prefixed strings follow, the Go version and the module info, whose lines are ``path``, ``mod``,
``dep``, ``=>`` (replaces the line before) and ``build`` (key=value settings).

The raw file is scanned (ELF, Mach-O and PE keep the section's file offset aligned like its address), so every
executable is read under the size cap. Rows: the main module, each dependency (named as required, at the version
built; a replacement's path is the ``source_name``) and the Go standard library (``stdlib`` at the toolchain's
version).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .base import MIB, CatalogContext, Cataloger, PackageRow, WantedFile, purl, warning_row

MAGIC = b"\xff Go buildinf:"
HEADER = 32
SENTINEL = 16
EXECUTABLE_MAGICS = (b"\x7fELF", b"MZ", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                     b"\xcf\xfa\xed\xfe")


@dataclass(frozen=True)
class Module:
    """A ``mod`` or ``dep`` line: the module path as required, the version built (the ``=>`` line's when it is
    replaced), its go.sum hash, and the replacement's path (a module path or a local directory)."""

    path: str
    version: str | None
    sum: str | None = None
    replacement: str | None = None


@dataclass
class BuildInfo:
    """What a binary says about how it was built."""

    go_version: str
    path: str | None = None
    main: Module | None = None
    deps: list[Module] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


class BuildInfoError(ValueError):
    """Build info that is there but cannot be read (pre-1.18 layout, truncated strings)."""


def uvarint(data: bytes, at: int) -> tuple[int, int]:
    """An unsigned LEB128 varint at ``at``: (value, offset after it)."""
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
    raise BuildInfoError("truncated varint")


def headers(data: bytes) -> Iterator[int]:
    """The offsets of every 16-byte aligned magic (the first may be the magic as a string in a binary that
    reads build info itself; the real header is then a later one)."""
    at = data.find(MAGIC)
    while at >= 0:
        if at % 16 == 0:
            yield at
        at = data.find(MAGIC, at + 1)


def find_header(data: bytes) -> int | None:
    """The offset of the header that parses (else the first aligned magic), or ``None``."""
    first = None
    for at in headers(data):
        first = at if first is None else first
        try:
            read_at(data, at)
        except BuildInfoError:
            continue
        return at
    return first


def extract(path: str, data: bytes) -> bytes | None:
    """The build info region of an executable (from the magic to past its two strings, or what there is of
    it), ``None`` for a file that is not a Go executable; idempotent."""
    if not data.startswith((*EXECUTABLE_MAGICS, MAGIC)):
        return None
    at = find_header(data)
    if at is None:
        return None
    end = at + HEADER
    try:
        for _ in range(2):
            length, end = uvarint(data, end)
            end += length
    except BuildInfoError:
        end = len(data)
    return data[at:min(end, len(data))]


def read_buildinfo(data: bytes) -> BuildInfo | None:
    """The build info of a Go binary, ``None`` for anything else; :class:`BuildInfoError` if unreadable."""
    at = find_header(data)
    return None if at is None else read_at(data, at)


def read_at(data: bytes, at: int) -> BuildInfo:
    """The build info whose header starts at ``at``."""
    if len(data) < at + HEADER:
        raise BuildInfoError("truncated build info header")
    flags = data[at + 15]
    if not flags & 2:
        raise BuildInfoError("build info of Go before 1.18 (pointer form) is not read")
    cursor = at + HEADER
    strings = []
    for _ in range(2):
        length, cursor = uvarint(data, cursor)
        if cursor + length > len(data):
            raise BuildInfoError("a build info string runs past the end of the file")
        strings.append(data[cursor:cursor + length].decode("utf-8", "replace"))
        cursor += length
    version, modinfo = strings
    if len(modinfo) >= 2 * SENTINEL + 1 and modinfo[-SENTINEL - 1] == "\n":
        modinfo = modinfo[SENTINEL:-SENTINEL]
    return parse_modinfo(version, modinfo)


def parse_modinfo(go_version: str, modinfo: str) -> BuildInfo:
    """The lines of ``runtime/debug.BuildInfo.String()``: tab-separated, as ``go version -m`` prints them."""
    info = BuildInfo(go_version=go_version)
    last: str | None = None
    for line in modinfo.splitlines():
        word, _, rest = line.partition("\t")
        parts = rest.split("\t")
        if word == "path":
            info.path = rest
        elif word in ("mod", "dep") and parts[0]:
            module = Module(parts[0], parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)
            if word == "mod":
                info.main = module
            else:
                info.deps.append(module)
            last = word
        elif word == "=>" and parts[0] and last is not None:
            current = info.main if last == "mod" else info.deps[-1]
            assert current is not None
            replaced = Module(current.path, parts[1] if len(parts) > 1 else None,
                              parts[2] if len(parts) > 2 else None, replacement=parts[0])
            if last == "mod":
                info.main = replaced
            else:
                info.deps[-1] = replaced
        elif word == "build":
            key, _, value = rest.partition("=")
            info.settings[key] = value
    return info


def golang_purl(module_path: str, version: str | None) -> str:
    """``pkg:golang/github.com/x/y@v1.2.3``: the module path's last segment is the name, the rest the namespace."""
    namespace, _, name = module_path.rpartition("/")
    return purl("golang", namespace or None, name, version if version and version != "(devel)" else None)


def parse(files: Sequence[WantedFile], context: CatalogContext) -> list[PackageRow]:
    """Rows for each Go binary among the executables; other executables give nothing."""
    rows: list[PackageRow] = []
    for wanted in files:
        if not wanted.data.startswith((*EXECUTABLE_MAGICS, MAGIC)):
            continue
        try:
            info = read_buildinfo(wanted.data)
        except BuildInfoError as error:
            rows.append(warning_row("golang", wanted.path, wanted.layer, f"Go build info: {error}"))
            continue
        if info is None:
            continue
        arch = info.settings.get("GOARCH")
        modules = ([info.main] if info.main else []) + info.deps
        for module in modules:
            rows.append(PackageRow(
                ecosystem="golang", name=module.path, version=module.version, arch=arch,
                source_name=module.replacement, path=wanted.path, layer=wanted.layer,
                purl=golang_purl(module.path, module.version),
            ))
        stdlib = info.go_version.removeprefix("go").split(" ")[0] or None
        rows.append(PackageRow(
            ecosystem="golang", name="stdlib", version=info.go_version, arch=arch, path=wanted.path,
            layer=wanted.layer, purl=purl("golang", None, "stdlib", stdlib),
        ))
    return rows


CATALOGER = Cataloger(name="golang", parse=parse, executables=True, max_size=256 * MIB, extract=extract)
