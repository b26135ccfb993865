"""Alpine's apk database, ``lib/apk/db/installed``: one record per package, ``X:value`` lines, blank lines
between records (the "Installed Database" section of Alpine's apk spec): ``P`` name, ``V`` version, ``A`` arch,
``o`` origin (the source package), ``L`` license, ``I`` installed size in bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .base import (
    MAX_PACKAGES,
    MIB,
    CatalogContext,
    Cataloger,
    PackageRow,
    Problems,
    WantedFile,
    iter_lines,
    iter_paragraphs,
    purl,
    to_int,
    warning_row,
)

INSTALLED = "lib/apk/db/installed"


def records(text: str, problems: Problems) -> Iterator[dict[str, str]]:
    """The records of the database, first value of each key (``R:``/``F:`` repeat per file; not needed)."""
    for number, paragraph in enumerate(iter_paragraphs(text), 1):
        record: dict[str, str] = {}
        for line in iter_lines(paragraph):
            if len(line) >= 2 and line[1] == ":":
                record.setdefault(line[0], line[2:])
            elif line.strip():
                problems.add(f"record {number}: not an 'X:value' line: {line[:80]!r}")
        if record:
            yield record


def parse(files: Sequence[WantedFile], context: CatalogContext) -> list[PackageRow]:
    """One row per package record; a warning row for lines that are not ``X:value`` or records without ``P``."""
    rows: list[PackageRow] = []
    os = context.os
    for wanted in files:
        problems = Problems()
        count = 0
        for record in records(wanted.data.decode("utf-8", "replace"), problems):
            if count >= MAX_PACKAGES:
                problems.add(f"more than {MAX_PACKAGES} packages; the rest are not listed", first=True)
                break
            count += 1
            name = record.get("P")
            if not name:
                problems.add(f"record {count}: no P: (name) line")
                continue
            version, arch, origin = record.get("V") or None, record.get("A") or None, record.get("o") or None
            size = to_int(record.get("I"))
            rows.append(PackageRow(
                ecosystem="apk", name=name, version=version, arch=arch, source_name=origin or name, size=size,
                license=record.get("L") or None, path=wanted.path, layer=wanted.layer,
                purl=purl("apk", os.id if os else None, name, version, {
                    "arch": arch, "distro": os.distro if os else None,
                    "upstream": origin if origin and origin != name else None,
                }),
            ))
        if problems:
            rows.append(warning_row("apk", wanted.path, wanted.layer,
                                    f"malformed apk database: {problems.summary()}"))
    return rows


CATALOGER = Cataloger(name="apk", parse=parse, paths=(INSTALLED,), max_size=32 * MIB)
