"""Python distributions: ``*.dist-info/METADATA`` (wheels, PEP 427/566), ``*.egg-info/PKG-INFO`` and the
single-file ``*.egg-info`` of old distutils installs, all RFC 822 headers (the core metadata spec). The size is
the sum of the sizes in ``RECORD`` beside ``METADATA`` (what pip would remove).
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Sequence

from .base import (
    MIB,
    CatalogContext,
    Cataloger,
    PackageRow,
    WantedFile,
    first_line,
    parse_rfc822,
    purl,
    rfc822_all,
    to_int,
    warning_row,
)

GLOBS = ("**/*.dist-info/METADATA", "**/*.egg-info/PKG-INFO", "**/*.egg-info")
RECORD = "**/*.dist-info/RECORD"


def normalize(name: str) -> str:
    """The purl spec's PyPI name: lowercased, ``_`` replaced by ``-``."""
    return name.lower().replace("_", "-")


def license_of(fields: dict[str, str], classifiers: list[str]) -> str | None:
    """``License-Expression`` (PEP 639), else a one-line ``License``, else the ``License ::`` classifiers."""
    if fields.get("license-expression"):
        return first_line(fields["license-expression"])
    text = fields.get("license", "").strip()
    if text and text.upper() != "UNKNOWN" and len(text.splitlines()) == 1:
        return first_line(text)
    names = [c.split("::")[-1].strip() for c in classifiers if c.startswith("License ::")]
    if names:
        return " AND ".join(dict.fromkeys(names))
    return first_line(text) if text and text.upper() != "UNKNOWN" else None


def record_size(data: bytes) -> int | None:
    """The sum of the size column of a ``RECORD`` (CSV: path, hash, size); ``None`` if it has no sizes."""
    total, seen = 0, False
    try:
        for fields in csv.reader(io.StringIO(data.decode("utf-8", "replace"))):
            size = to_int(fields[2]) if len(fields) >= 3 else None
            if size is not None:
                total += size
                seen = True
    except csv.Error:  # a field over csv's size limit, a NUL: not a RECORD pip wrote
        return None
    return total if seen else None


def parse(files: Sequence[WantedFile], context: CatalogContext) -> list[PackageRow]:
    """One row per distribution's metadata file; a warning row (naming it when it can) for one that lacks
    ``Name`` or ``Version``."""
    records = {posixpath.dirname(f.path): f.data for f in files if f.path.endswith(".dist-info/RECORD")}
    rows: list[PackageRow] = []
    for wanted in files:
        if wanted.path.endswith(".dist-info/RECORD") or not wanted.data.strip():
            continue  # an empty *.egg-info is a directory entry or nothing at all
        try:
            fields, classifiers = parse_rfc822(wanted.data), rfc822_all(wanted.data, "Classifier")
        except Exception as error:  # email's parser is lenient; anything it still raises is a bad file
            rows.append(warning_row("pypi", wanted.path, wanted.layer, f"unreadable Python metadata: {error}"))
            continue
        name, version = fields.get("name", "").strip() or None, fields.get("version", "").strip() or None
        if name is None or version is None:
            missing = " and ".join(k for k, v in (("Name", name), ("Version", version)) if v is None)
            rows.append(PackageRow(ecosystem="pypi", name=name, version=version, path=wanted.path,
                                   layer=wanted.layer, warning=f"Python metadata without {missing}"))
            continue
        record = records.get(posixpath.dirname(wanted.path))
        rows.append(PackageRow(
            ecosystem="pypi", name=name, version=version, source_name=name,
            size=record_size(record) if record is not None else None,
            license=license_of(fields, classifiers), path=wanted.path, layer=wanted.layer,
            purl=purl("pypi", None, normalize(name), version),
        ))
    return rows


CATALOGER = Cataloger(name="python", parse=parse, globs=(*GLOBS, RECORD), max_size=8 * MIB)
