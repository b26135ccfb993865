"""dpkg's database: ``var/lib/dpkg/status`` and distroless images' ``var/lib/dpkg/status.d/*`` (one file per
package, ``*.md5sums`` beside them), Debian control paragraphs (Debian Policy §5, dpkg-query(1)).

A package counts as installed unless its ``Status`` state is ``not-installed`` or ``config-files`` (removed, its
configuration kept), which is what ``dpkg-query -W`` lists once those two states are left out. ``Installed-Size``
is in KiB. The layer of a package is the layer of its ``var/lib/dpkg/info/<name>[:<arch>].list`` when the tree
has one (the layer that unpacked it), else the layer of the database file. The license comes from
``usr/share/doc/<name>/copyright`` when it is machine-readable (DEP-5, "copyright-format 1.0"): the short names
of its header and ``Files`` paragraphs, each once, joined with `` AND ``; the doc directory may be a symlink.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Sequence

from .base import (
    KIB,
    MAX_PACKAGES,
    MIB,
    CatalogContext,
    Cataloger,
    PackageRow,
    Problems,
    WantedFile,
    parse_stanzas,
    purl,
    to_int,
    warning_row,
)

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/*"
INFO_LISTS = "var/lib/dpkg/info/*.list"
COPYRIGHT = "usr/share/doc/*/copyright"
DOC = "usr/share/doc"
NOT_INSTALLED = frozenset({"not-installed", "config-files"})
SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]*)\))?$")


def copyright_licenses(data: bytes) -> list[str]:
    """The license short names of a machine-readable copyright file (header, then ``Files`` paragraphs, each
    name once, in order); empty for a file without the DEP-5 ``Format`` header."""
    stanzas = iter(parse_stanzas(data.decode("utf-8", "replace")))
    header = next(stanzas, {})
    if "format" not in header:
        return []
    names = [header.get("license", "")] + [s.get("license", "") for s in stanzas if "files" in s]
    return list(dict.fromkeys(n.split("\n", 1)[0].strip() for n in names if n.split("\n", 1)[0].strip()))


def extract(path: str, data: bytes) -> bytes | None:
    """A copyright file reduced to a DEP-5 document naming only its licenses (which :func:`copyright_licenses`
    reads back the same, so this is idempotent), ``None`` if it names none; database files are kept whole."""
    if not path.startswith(DOC + "/"):
        return data
    names = copyright_licenses(data)
    if not names:
        return None
    return "".join(["Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n",
                    *(f"\nFiles: *\nLicense: {n}\n" for n in names)]).encode()


def parse(files: Sequence[WantedFile], context: CatalogContext) -> list[PackageRow]:
    """One row per installed package in each database file; warning rows for what cannot be read."""
    copyrights = {f.path: f.data for f in files if f.path.startswith(DOC + "/")}
    rows: list[PackageRow] = []
    for wanted in files:
        if wanted.path.startswith(DOC + "/"):
            continue
        rows += [license_added(r, copyrights, context) for r in parse_file(wanted, context)]
    return rows


def license_added(row: PackageRow, copyrights: dict[str, bytes], context: CatalogContext) -> PackageRow:
    """``row`` with the licenses of its package's copyright file, found through a doc directory symlink."""
    if row.warning is not None or row.name is None:
        return row
    doc = f"{DOC}/{row.name}"
    for _ in range(8):
        target = context.links.get(doc)
        if target is None:
            break
        doc = posixpath.normpath(posixpath.join("/", posixpath.dirname(doc), target)).lstrip("/")
    data = copyrights.get(f"{doc}/copyright")
    if data is None:
        return row
    names = copyright_licenses(data)
    return dataclasses.replace(row, license=" AND ".join(names)) if names else row


def parse_file(wanted: WantedFile, context: CatalogContext) -> list[PackageRow]:
    """The packages of one status file (or one ``status.d`` entry)."""
    try:
        text = wanted.data.decode("utf-8")
    except UnicodeDecodeError:
        text = wanted.data.decode("latin-1")
    problems = Problems()
    rows: list[PackageRow] = []
    unnamed = 0
    for stanza in parse_stanzas(text, problems):
        if len(rows) >= MAX_PACKAGES:
            problems.add(f"more than {MAX_PACKAGES} packages; the rest are not listed", first=True)
            break
        name = stanza.get("package")
        if not name:
            unnamed += 1
            continue
        state = stanza.get("status", "install ok installed").split()
        if len(state) == 3 and state[2] in NOT_INSTALLED:
            continue
        rows.append(row(stanza, name, wanted, context))
    if unnamed:
        problems.add(f"{unnamed} paragraph(s) without a Package field")
    if problems:
        rows.append(warning_row("deb", wanted.path, wanted.layer, f"malformed dpkg database: {problems.summary()}"))
    return rows


def row(stanza: dict[str, str], name: str, wanted: WantedFile, context: CatalogContext) -> PackageRow:
    """A package's row: source from ``Source`` (``name (version)``, default the package), size from KiB."""
    version = stanza.get("version") or None
    arch = stanza.get("architecture") or None
    source_name = name
    source_version = version
    match = SOURCE.match(stanza.get("source", ""))
    if match:
        source_name = match["name"]
        source_version = match["version"] or version
    kib = to_int(stanza.get("installed-size"))
    size = None if kib is None else kib * KIB
    layer = wanted.layer
    if wanted.path == STATUS:
        for info in (f"var/lib/dpkg/info/{name}:{arch}.list", f"var/lib/dpkg/info/{name}.list"):
            if info in context.layers:
                layer = context.layers[info]
                break
    upstream = None
    if source_name != name or source_version != version:
        upstream = source_name if source_version == version else f"{source_name}@{source_version}"
    os = context.os
    return PackageRow(
        ecosystem="deb", name=name, version=version, arch=arch, source_name=source_name, size=size,
        path=wanted.path, layer=layer,
        purl=purl("deb", os.id if os else None, name, version,
                  {"arch": arch, "distro": os.distro if os else None, "upstream": upstream}),
    )


CATALOGER = Cataloger(
    name="dpkg", parse=parse, paths=(STATUS,), globs=(STATUS_D, COPYRIGHT),
    exclude=("var/lib/dpkg/status.d/*.md5sums",), max_size=32 * MIB, layer_globs=(INFO_LISTS,), extract=extract,
)
