"""A content-addressed on-disk cache for manifests and configs, and the memory of which tags were fetched.

Keyed by digest, verified on every read (a corrupt entry is dropped, never returned), written
through a temporary file and ``os.replace`` so concurrent processes never see a partial entry.
Location: ``OCINB_CACHE_DIR``, else ``$XDG_CACHE_HOME/ocinb``, else ``~/.cache/ocinb``;
``OCINB_CACHE=0`` switches it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from .digest import Digest
from .errors import InvalidDigestError


def _hash(data: bytes, digest: str) -> str | None:
    """``data`` hashed with ``digest``'s algorithm; ``None`` for an algorithm that cannot be hashed."""
    try:
        return str(Digest.of(data, Digest.parse(digest).algorithm))
    except InvalidDigestError:
        return None


def default_cache_dir() -> Path:
    env = os.environ.get("OCINB_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "ocinb"


class ContentCache:
    """Bytes by digest on disk; immutable content only (never tags)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, enabled: bool | None = None,
                 max_entry: int = 16 * 1024 * 1024) -> None:
        if enabled is None:
            enabled = os.environ.get("OCINB_CACHE", "1").lower() not in ("0", "false", "no", "off")
        self.enabled = enabled
        self.root = Path(root) if root is not None else default_cache_dir()
        self.max_entry = max_entry
        self.hits = 0
        self.misses = 0
        self._fetched_tags: set[tuple[str, str, str]] = set()

    def knows_tag(self, registry: str, repository: str, tag: str) -> bool:
        """Whether this tag was fetched once already, so a HEAD can re-resolve it against the cached bodies.

        Tags move, so only the fact is kept, never the digest: each use re-resolves the tag.
        """
        return self.enabled and (registry, repository, tag) in self._fetched_tags

    def remember_tag(self, registry: str, repository: str, tag: str) -> None:
        """Note that ``tag`` was fetched (see :meth:`knows_tag`)."""
        self._fetched_tags.add((registry, repository, tag))

    def __repr__(self) -> str:
        return f"<ContentCache {self.root} enabled={self.enabled}>"

    def _path(self, digest: str) -> Path:
        d = Digest.parse(digest)
        return self.root / "blobs" / d.algorithm / d.encoded[:2] / d.encoded

    def get(self, digest: str) -> bytes | None:
        """The cached bytes of ``digest`` if present and intact."""
        if not self.enabled:
            return None
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        if _hash(data, digest) != digest:  # corrupt: drop it, fetch again
            with contextlib.suppress(OSError):
                path.unlink()
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, digest: str, data: bytes) -> None:
        """Store ``data`` under ``digest`` (verified first; silently skipped when off or too big)."""
        if not self.enabled or len(data) > self.max_entry:
            return
        if _hash(data, digest) != digest:
            return
        path = self._path(digest)
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)

    def _table_path(self, kind: str, digest: str) -> Path:
        d = Digest.parse(digest)
        safe = "".join(c for c in kind if c.isalnum() or c in "-_.")
        return self.root / "tables" / safe / d.algorithm / d.encoded[:2] / d.encoded

    def get_table(self, kind: str, digest: str) -> bytes | None:
        """A table derived from the immutable blob ``digest`` (e.g. a layer's file list), if present and intact.

        Each entry carries the sha256 of its payload on its first line; a damaged one is dropped, never returned.
        """
        if not self.enabled:
            return None
        path = self._table_path(kind, digest)
        try:
            raw = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        check, _, payload = raw.partition(b"\n")
        if hashlib.sha256(payload).hexdigest().encode() != check:
            with contextlib.suppress(OSError):
                path.unlink()
            self.misses += 1
            return None
        self.hits += 1
        return payload

    def put_table(self, kind: str, digest: str, data: bytes, max_size: int = 1024**3) -> None:
        """Store a table derived from the blob ``digest`` (callers store only what they verified)."""
        if not self.enabled or len(data) > max_size:
            return
        path = self._table_path(kind, digest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(hashlib.sha256(data).hexdigest().encode() + b"\n")
                fh.write(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)

    def clear(self) -> None:
        """Remove every entry."""
        import shutil

        shutil.rmtree(self.root / "blobs", ignore_errors=True)
        shutil.rmtree(self.root / "tables", ignore_errors=True)
