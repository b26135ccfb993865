"""Content digests (``algorithm:encoded``): parsing, hashing and streaming verification.

Sizes are checked before digests, and the raw bytes are hashed as received (never re-serialised).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .errors import DigestMismatchError, InvalidDigestError, SizeMismatchError

_ALGORITHM = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")
_ENCODED = re.compile(r"[a-zA-Z0-9=_-]+")

ALGORITHMS: dict[str, re.Pattern[str]] = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}
"""Registered algorithms and the exact form of their encoded part."""

_RULES = {"sha256": "64 lowercase hex characters", "sha512": "128 lowercase hex characters"}


def _fail(s: str, why: str) -> InvalidDigestError:
    return InvalidDigestError(f"digest {s!r}: {why}")


class Digest(str):
    """A validated digest string; compares and hashes like the plain string it is."""

    __slots__ = ()

    @classmethod
    def parse(cls, s: Any) -> Digest:
        """Validate ``s`` against the descriptor grammar (and registered algorithms' exact form)."""
        if isinstance(s, Digest):
            return s
        if not isinstance(s, str):
            raise InvalidDigestError(f"digest must be a string, not {type(s).__name__}")
        if not s:
            raise _fail(s, "empty")
        algorithm, sep, encoded = s.partition(":")
        if not sep:
            raise _fail(s, "expected 'algorithm:encoded' (e.g. 'sha256:<64 hex>')")
        if not _ALGORITHM.fullmatch(algorithm):
            raise _fail(s, f"algorithm {algorithm!r} must match [a-z0-9]+([+._-][a-z0-9]+)*")
        rule = ALGORITHMS.get(algorithm)
        if rule is not None:
            if not rule.fullmatch(encoded):
                raise _fail(s, f"{algorithm} needs {_RULES[algorithm]}")
        elif not _ENCODED.fullmatch(encoded):
            raise _fail(s, f"encoded part {encoded!r} must match [a-zA-Z0-9=_-]+")
        return cls(s)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """Hash ``data`` with a registered algorithm."""
        return cls(f"{algorithm}:{_hash_bytes(algorithm, data)}")

    @property
    def algorithm(self) -> str:
        """The part before the colon, e.g. ``sha256``."""
        return self.partition(":")[0]

    @property
    def encoded(self) -> str:
        """The part after the colon (the hex hash for sha256/sha512)."""
        return self.partition(":")[2]

    @property
    def short(self) -> str:
        """``algorithm:`` plus the first 12 encoded characters, for display."""
        return f"{self.algorithm}:{self.encoded[:12]}"

    def __repr__(self) -> str:
        return f"Digest({str(self)!r})"


def is_digest(s: Any) -> bool:
    """True when ``s`` parses as a digest."""
    try:
        Digest.parse(s)
    except InvalidDigestError:
        return False
    return True


def _new_hash(algorithm: str) -> Any:
    if algorithm not in ALGORITHMS:
        raise InvalidDigestError(f"cannot compute {algorithm!r} digests: supported are {', '.join(ALGORITHMS)}")
    return hashlib.new(algorithm)


def _hash_bytes(algorithm: str, data: bytes) -> str:
    h = _new_hash(algorithm)
    h.update(data)
    return h.hexdigest()


class Hasher:
    """Incremental hash of a stream that fails as soon as it grows past ``size`` and checks ``expected``."""

    __slots__ = ("_hash", "algorithm", "expected", "expected_size", "size", "what")

    def __init__(self, expected: str | None = None, size: int | None = None, algorithm: str | None = None,
                 what: str = "content") -> None:
        self.expected: Digest | None = Digest.parse(expected) if expected is not None else None
        if algorithm is None:
            algorithm = self.expected.algorithm if self.expected is not None else "sha256"
        elif self.expected is not None and self.expected.algorithm != algorithm:
            raise InvalidDigestError(f"digest {self.expected!r}: cannot be verified with {algorithm}")
        if size is not None and size < 0:
            raise ValueError(f"size must be >= 0, not {size}")
        self._hash = _new_hash(algorithm)
        self.algorithm = algorithm
        self.expected_size = size
        self.size = 0
        self.what = what

    def update(self, chunk: bytes) -> None:
        """Feed a chunk; raises :class:`SizeMismatchError` as soon as more than ``size`` bytes arrived."""
        self.size += len(chunk)
        if self.expected_size is not None and self.size > self.expected_size:
            raise SizeMismatchError(self.expected_size, self.size, self.what)
        self._hash.update(chunk)

    def digest(self) -> Digest:
        """The digest of what was fed so far."""
        return Digest(f"{self.algorithm}:{self._hash.hexdigest()}")

    def verify(self) -> Digest:
        """Check the final size, then the digest; returns the digest."""
        if self.expected_size is not None and self.size != self.expected_size:
            raise SizeMismatchError(self.expected_size, self.size, self.what)
        actual = self.digest()
        if self.expected is not None and actual != self.expected:
            raise DigestMismatchError(str(self.expected), str(actual), self.what)
        return actual


def verify_bytes(data: bytes, expected: str, size: int | None = None, what: str = "content") -> Digest:
    """Check ``data`` against a size (first) and digest; returns the digest."""
    hasher = Hasher(expected, size, what=what)
    if size is not None and len(data) != size:
        raise SizeMismatchError(size, len(data), what)
    hasher.update(data)
    return hasher.verify()
