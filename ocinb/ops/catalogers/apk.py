"""Alpine's apk database, ``lib/apk/db/installed``: one record per package, ``X:value`` lines, blank lines
between records (the "Installed Database" section of Alpine's apk spec): ``P`` name, ``V`` version, ``A`` arch,
``o`` origin (the source package), ``L`` license, ``I`` installed size in bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import MIB, CatalogContext, Cataloger, PackageRow, WantedFile, purl, to_int, warning_row

INSTALLED = "lib/apk/db/installed"


def records(text: str, problems: list[str]) -> list[dict[str, str]]:
    """The records of the database, first value of each key (``R:``/``F:`` repeat per file; not needed)."""
    found: list[dict[str, str]] = []
    record: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if record:
                found.append(record)
            record = {}
        elif len(line) >= 2 and line[1] == ":":
            record.setdefault(line[0], line[2:])
        else:
            problems.append(f"line {number}: not an 'X:value' line: {line[:80]!r}")
    if record:
        found.append(record)
    return found


def parse(files: Sequence[WantedFile], context: CatalogContext) -> list[PackageRow]:
    """One row per package record; a warning row for lines that are not ``X:value`` or records without ``P``."""
    rows: list[PackageRow] = []
    os = context.os
    for wanted in files:
        problems: list[str] = []
        for record in records(wanted.data.decode("utf-8", "replace"), problems):
            name = record.get("P")
            if not name:
                problems.append("a record without a P: (name) line")
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
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            rows.append(warning_row("apk", wanted.path, wanted.layer, f"malformed apk database: {shown}"))
    return rows


CATALOGER = Cataloger(name="apk", parse=parse, paths=(INSTALLED,), max_size=32 * MIB)
