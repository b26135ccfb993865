"""npm packages: the ``package.json`` at each package's root under ``node_modules`` (``node_modules/<name>/``
or ``node_modules/@scope/<name>/``), JSON per npm's package.json docs: ``name``, ``version``, ``license`` (an SPDX
expression; older packages give ``{"type": …}`` or a ``licenses`` list). Other ``package.json`` files inside a
package (``esm/package.json`` with only ``"type"``) are not packages and are not read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .base import MIB, CatalogContext, Cataloger, PackageRow, WantedFile, first_line, purl, warning_row

GLOBS = ("**/node_modules/*/package.json", "**/node_modules/@*/*/package.json")


def license_of(manifest: dict[str, Any]) -> str | None:
    """The ``license`` string, or the ``type`` of the legacy object/list forms."""
    value = manifest.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str):
        return first_line(value)
    legacy = manifest.get("licenses")
    if isinstance(legacy, list):
        names = [str(item.get("type")) if isinstance(item, dict) else str(item) for item in legacy]
        return " OR ".join(n for n in names if n and n != "None") or None
    return None


def parse(files: Sequence[WantedFile], context: CatalogContext) -> list[PackageRow]:
    """One row per package root; a warning row for a ``package.json`` that is not a JSON object or lacks
    ``name``/``version``."""
    rows: list[PackageRow] = []
    for wanted in files:
        try:
            manifest = json.loads(wanted.data)
        except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
            rows.append(warning_row("npm", wanted.path, wanted.layer, f"package.json is not JSON: {error}"))
            continue
        if not isinstance(manifest, dict):
            rows.append(warning_row("npm", wanted.path, wanted.layer, "package.json is not a JSON object"))
            continue
        name, version = manifest.get("name"), manifest.get("version")
        if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
            rows.append(PackageRow(
                ecosystem="npm", name=name if isinstance(name, str) else None,
                version=version if isinstance(version, str) else None, path=wanted.path, layer=wanted.layer,
                warning="package.json without a name or version string",
            ))
            continue
        namespace, _, short = name.rpartition("/") if name.startswith("@") else ("", "", name)
        rows.append(PackageRow(
            ecosystem="npm", name=name, version=version, source_name=name, license=license_of(manifest),
            path=wanted.path, layer=wanted.layer, purl=purl("npm", namespace or None, short, version),
        ))
    return rows


CATALOGER = Cataloger(name="npm", parse=parse, globs=GLOBS, max_size=4 * MIB)
