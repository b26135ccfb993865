"""``os-release`` (freedesktop.org's format): which distribution the image is, for the deb/apk/rpm purls.

Read first and cheapest: ``etc/os-release`` wins over ``usr/lib/os-release`` (the file the first usually links
to; the caller resolves the link). Shell-style ``KEY=value`` lines, values optionally quoted.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from .base import KIB, CatalogContext, Cataloger, OsRelease, PackageRow, WantedFile, warning_row

PATHS = ("etc/os-release", "usr/lib/os-release")
"""In order of precedence (os-release(5))."""


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` pairs; quotes and backslash escapes are undone as a shell would, comments skipped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw, posix=True)
            value = " ".join(words)
        except ValueError:
            value = raw.strip("\"'")
        fields[key.strip()] = value
    return fields


def identify(files: Sequence[WantedFile]) -> OsRelease | None:
    """The OS of the first readable file among ``PATHS`` present in ``files``; ``None`` if there is none."""
    by_path = {f.path: f for f in files}
    for path in PATHS:
        found = by_path.get(path)
        if found is None:
            continue
        fields = parse_os_release(found.data.decode("utf-8", "replace"))
        if not fields.get("ID") and not fields.get("NAME"):
            continue
        return OsRelease(
            id=fields.get("ID", "").lower() or None,
            version_id=fields.get("VERSION_ID") or None,
            version_codename=fields.get("VERSION_CODENAME") or None,
            id_like=tuple(fields.get("ID_LIKE", "").lower().split()),
            pretty_name=fields.get("PRETTY_NAME") or None,
            name=fields.get("NAME") or None,
            path=path,
            layer=found.layer,
        )
    return None


def parse(files: Sequence[WantedFile], context: CatalogContext) -> list[PackageRow]:
    """No packages: a warning when an os-release file is there but names no distribution."""
    if files and identify(files) is None:
        return [warning_row("os", files[0].path, files[0].layer, "os-release has no ID or NAME; purls carry no distro")]
    return []


CATALOGER = Cataloger(name="os-release", parse=parse, paths=PATHS, max_size=64 * KIB)
