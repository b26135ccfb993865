"""What every cataloger shares: the row it produces, the OS it reads, the paths it asks for, and package URLs.

Pure code (no network, no pandas): a cataloger turns the bytes of the files it wanted into :class:`PackageRow` s;
a database it cannot read becomes a row with ``warning`` set, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from email.policy import compat32
from functools import lru_cache
from urllib.parse import quote

KIB = 1024
MIB = 1024 * 1024
MAX_PACKAGES = 100_000
"""Packages listed from one database at most (real ones hold thousands): a hostile file of tiny records under
its size cap would otherwise become millions of rows."""


@dataclass(frozen=True)
class OsRelease:
    """The distribution an image says it is, from ``os-release`` (``ID``, ``VERSION_ID``, …), for the purls."""

    id: str | None = None
    version_id: str | None = None
    version_codename: str | None = None
    id_like: tuple[str, ...] = ()
    pretty_name: str | None = None
    name: str | None = None
    path: str | None = None
    layer: int | None = None

    @property
    def distro(self) -> str | None:
        """The purl ``distro`` qualifier: ``ID-VERSION_ID`` (``debian-12``), else the ID or the codename."""
        if self.id and self.version_id:
            return f"{self.id}-{self.version_id}"
        return self.id or self.version_codename


@dataclass(frozen=True)
class PackageRow:
    """One installed package (or, with ``warning`` set, one thing a cataloger could not read)."""

    ecosystem: str
    name: str | None
    version: str | None
    path: str
    layer: int | None = None
    arch: str | None = None
    source_name: str | None = None
    size: int | None = None
    license: str | None = None
    purl: str | None = None
    warning: str | None = None


def warning_row(ecosystem: str, path: str, layer: int | None, message: str) -> PackageRow:
    """A row that says why ``path`` gave no packages (unknown format, malformed, over its size cap)."""
    return PackageRow(ecosystem=ecosystem, name=None, version=None, path=path, layer=layer, warning=message)


@dataclass(frozen=True)
class WantedFile:
    """A file a cataloger read: its squashed-tree path, the layer its content came from, and the bytes."""

    path: str
    layer: int | None
    data: bytes


@dataclass
class CatalogContext:
    """What a cataloger may consult besides its own files: the OS, the layer of paths it asked to see, and the
    tree's symlinks."""

    os: OsRelease | None = None
    layers: Mapping[str, int] = field(default_factory=dict)
    """Layer index of each path matched by a cataloger's ``layer_globs`` (seen in the tree, never read)."""
    links: Mapping[str, str] = field(default_factory=dict)
    """Symlink path → target, as in the tree (directory links too: ``usr/share/doc/libfoo-dev`` → ``libfoo1``)."""


@dataclass(frozen=True)
class Cataloger:
    """One ecosystem: which paths it reads (exact paths, globs), the most bytes it reads of one, and its parser.

    ``globs`` use ``*`` within one path segment and ``**/`` for any number of leading directories; paths are
    relative to the image root, without a leading ``/``. ``executables`` asks for every executable regular file
    (the Go cataloger). ``layer_globs`` are paths whose layer (not content) the parser wants to know; ``exclude``
    globs are never read. ``extract(path, data)``, when set, keeps only what the parser needs of a file (``None``:
    nothing) as soon as it is read, so a tree's executables or copyright files are not all held at once; it is
    idempotent, since it is applied again to bytes given directly.
    """

    name: str
    parse: Callable[[Sequence[WantedFile], CatalogContext], list[PackageRow]]
    paths: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    max_size: int = 64 * MIB
    executables: bool = False
    layer_globs: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extract: Callable[[str, bytes], bytes | None] | None = None


    def wants(self, path: str, mode: int | None = None) -> bool:
        """Whether this cataloger reads ``path`` (``mode``: the entry's permission bits, when known)."""
        path = normalize_path(path)
        if self.exclude and globs_regex(self.exclude).fullmatch(path):
            return False
        if path in self.paths or (self.globs and globs_regex(self.globs).fullmatch(path)):
            return True
        return self.executables and is_executable_candidate(path, mode)

    def wants_layer_of(self, path: str) -> bool:
        """Whether the parser wants to know which layer ``path`` came from (without reading it)."""
        return globs_regex(self.layer_globs).fullmatch(normalize_path(path))


EXECUTABLE_DIRS = ("bin/", "sbin/", "usr/bin/", "usr/sbin/", "usr/local/bin/", "usr/local/sbin/", "ko-app/")
"""Where an executable is looked for when the tree gives no permission bits."""


def is_executable_candidate(path: str, mode: int | None) -> bool:
    """An executable bit in ``mode``, or (mode unknown) a file directly in a usual ``bin`` directory."""
    if mode is not None:
        return bool(mode & 0o111)
    return any(path.startswith(d) and "/" not in path[len(d):] for d in EXECUTABLE_DIRS)


def normalize_path(path: str) -> str:
    """A tar or tree path as catalogers compare it: no leading ``./`` or ``/``, no trailing ``/``."""
    if not path.startswith(("./", "/")) and not path.endswith("/"):
        return path
    while path.startswith("./"):
        path = path[2:]
    return path.strip("/")


class GlobSet:
    """Matches a path against several globs: first the last segment (or, for ``dir/*``, the parent's name)
    against one short regex, then the whole path only for the few that pass; most paths of an image fail the
    first test, which costs a fraction of a full match."""

    def __init__(self, globs: tuple[str, ...]) -> None:
        self.full = re.compile("|".join(f"(?:{glob_regex(g).pattern})" for g in globs)) if globs else None
        bases = [g.rsplit("/", 1)[-1] for g in globs if g.rsplit("/", 1)[-1] != "*"]
        parents = [g.split("/")[-2] for g in globs if g.rsplit("/", 1)[-1] == "*" and g.count("/") >= 1]
        self.base = re.compile("|".join(f"(?:{glob_regex(b).pattern})" for b in bases)) if bases else None
        self.parent = re.compile("|".join(f"(?:{glob_regex(b).pattern})" for b in parents)) if parents else None
        self.prefilter = len(bases) + len(parents) == len(globs) and not any("*" in p for p in parents)

    def fullmatch(self, path: str) -> bool:
        """Whether ``path`` (normalised) matches one of the globs."""
        if self.full is None:
            return False
        if not self.prefilter:
            return self.full.fullmatch(path) is not None
        head, _, base = path.rpartition("/")
        if not (self.base is not None and self.base.fullmatch(base)) and not (
                self.parent is not None and self.parent.fullmatch(head.rpartition("/")[2])):
            return False
        return self.full.fullmatch(path) is not None


@lru_cache(maxsize=64)
def globs_regex(globs: tuple[str, ...]) -> GlobSet:
    """One matcher for any of ``globs`` (see :func:`glob_regex`), built once per set of globs."""
    return GlobSet(globs)


@lru_cache(maxsize=256)
def glob_regex(glob: str) -> re.Pattern[str]:
    """``glob`` as a regex: ``**/`` is zero or more directories, ``*`` and ``?`` stay within one segment."""
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


def parse_rfc822(data: bytes) -> dict[str, str]:
    """The header fields of an RFC 822 style block (Python ``METADATA``, UTF-8 per the core metadata spec), first
    value of each, names lowercased."""
    message = HeaderParser(policy=compat32).parsestr(data.decode("utf-8", "replace"))
    fields: dict[str, str] = {}
    for key, value in message.items():
        fields.setdefault(key.lower(), str(value))
    return fields


def rfc822_all(data: bytes, name: str) -> list[str]:
    """Every value of the repeatable header ``name`` (``Classifier``, ``Requires-Dist``)."""
    message = HeaderParser(policy=compat32).parsestr(data.decode("utf-8", "replace"))
    return [str(v) for v in message.get_all(name, [])]


class Problems:
    """What was wrong in one file: the first few descriptions and a count, so a file of a million bad lines
    costs three strings and an integer."""

    SHOWN = 3

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.count = 0

    def add(self, text: str, *, first: bool = False) -> None:
        """Note one problem (``first``: one the summary must show, such as a cap that cut the listing)."""
        self.count += 1
        if first:
            self.shown = [text, *self.shown][: self.SHOWN]
        elif len(self.shown) < self.SHOWN:
            self.shown.append(text)

    def __bool__(self) -> bool:
        return self.count > 0

    def summary(self) -> str:
        """The shown problems, and how many more there were."""
        more = self.count - len(self.shown)
        return "; ".join(self.shown) + (f"; and {more} more" if more > 0 else "")


BLANK_RUN = re.compile(r"\n[ \t\r\n]*\n")
"""A run of blank lines between paragraphs, matched in one step however long it is (one character class, so
the regex engine keeps no stack per line)."""


def iter_paragraphs(text: str) -> Iterator[str]:
    """The non-blank paragraphs of ``text``, one at a time, blank runs skipped without a loop per line."""
    start = 0
    for match in BLANK_RUN.finditer(text):
        chunk = text[start:match.start()]
        if chunk.strip():
            yield chunk
        start = match.end()
    if text[start:].strip():
        yield text[start:]


def iter_lines(text: str) -> Iterator[str]:
    """The lines of ``text`` one at a time (``\n`` or ``\r\n`` endings dropped), without the list
    ``splitlines`` would build."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        if stop < 0:
            stop = end
        yield text[start:stop].rstrip("\r")
        start = stop + 1


def parse_stanzas(text: str, problems: Problems | None = None) -> Iterator[dict[str, str]]:
    """Debian control paragraphs (``Field: value``, continuation lines start with a space, blank lines between).

    Field names are case-insensitive (Debian Policy 5.1), so they are lowercased; continuation lines are joined
    with a newline. A line that is neither is skipped and noted in ``problems`` (so the caller can warn
    without losing the paragraphs around it).
    """
    for number, paragraph in enumerate(iter_paragraphs(text), 1):
        parts: dict[str, list[str]] = {}  # joined at the end: += on a long value would copy it every line
        key: str | None = None
        for line in iter_lines(paragraph):
            if not line.strip():
                continue
            if line[0] in " \t":
                if key is None:
                    if problems is not None:
                        problems.add(f"paragraph {number}: a continuation line with no field before it")
                    continue
                parts[key].append(line.strip())
            elif ":" in line:
                name, _, value = line.partition(":")
                key = name.strip().lower()
                parts[key] = [value.strip()]
            elif not line.startswith("#") and problems is not None:
                problems.add(f"paragraph {number}: not a 'Field: value' line: {line[:80]!r}")
        if parts:
            yield {k: "\n".join(v) for k, v in parts.items()}


def purl(kind: str, namespace: str | None, name: str, version: str | None,
         qualifiers: Mapping[str, str | None] | None = None) -> str:
    """A package URL (the purl spec): ``pkg:type/namespace/name@version?key=value``, each part percent-encoded,
    qualifiers sorted by key and empty ones left out."""
    out = f"pkg:{kind}/"
    if namespace:
        out += "/".join(_encode(segment) for segment in namespace.split("/") if segment) + "/"
    out += _encode(name)
    if version:
        out += "@" + _encode(version)
    pairs = sorted((k, v) for k, v in (qualifiers or {}).items() if v)
    if pairs:
        out += "?" + "&".join(f"{k}={_encode(v)}" for k, v in pairs)
    return out


def _encode(part: str) -> str:
    """Percent-encode one purl component; ``:`` stays as it is (the spec allows it unencoded)."""
    return quote(part, safe=":")


def to_int(value: str | None) -> int | None:
    """A size field as an int: plain ASCII digits, at most 18 of them (no ``²``, no 5,000-digit number that
    ``int`` would refuse); ``None`` otherwise."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if 0 < len(value) <= 18 and value.isascii() and value.isdigit() else None


def first_line(value: str | None, limit: int = 200) -> str | None:
    """A one-line value (the first non-empty line, at most ``limit`` characters), for license fields."""
    if value is None:
        return None
    for line in value.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return None
