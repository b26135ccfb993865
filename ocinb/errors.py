"""The exception hierarchy of ocinb.

Every error ocinb raises on purpose is an :class:`OcinbError`. Errors carry what a user needs to act
(HTTP status, OCI error codes, method, URL) and never credentials: URLs are stripped of userinfo and
of query parameters that look like secrets before they are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._redact import redact_url


class OcinbError(Exception):
    """Base class of every error ocinb raises on purpose."""


class InvalidReferenceError(OcinbError, ValueError):
    """A reference, repository name, tag or digest is malformed; raised before any network call."""


class InvalidDigestError(InvalidReferenceError):
    """A digest string is malformed (``algorithm:encoded``)."""


class VerificationError(OcinbError):
    """Content did not match what was expected of it; nothing was written."""


@dataclass(eq=False)
class DigestMismatchError(VerificationError):
    """Content hashed to another digest than the one expected."""

    expected: str
    actual: str
    what: str = "content"

    def __post_init__(self) -> None:
        super().__init__(f"digest mismatch for {self.what}: expected {self.expected}, got {self.actual}")

    def __str__(self) -> str:
        return f"digest mismatch for {self.what}: expected {self.expected}, got {self.actual}"


@dataclass(eq=False)
class SizeMismatchError(VerificationError):
    """Content had another size than the one its descriptor declares."""

    expected: int
    actual: int
    what: str = "content"

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"size mismatch for {self.what}: expected {self.expected} bytes, got {self.actual}"


class ManifestError(OcinbError, ValueError):
    """A manifest could not be parsed or is not of the expected kind."""


class PlatformNotFoundError(OcinbError, LookupError):
    """The image has no manifest for the requested platform; ``offered`` lists the ones it has."""

    def __init__(self, platform: str, offered: list[str], reference: str | None = None) -> None:
        self.platform = platform
        self.offered = offered
        self.reference = reference
        where = f" in {reference}" if reference else ""
        super().__init__(f"no manifest for platform {platform}{where} (offered: {', '.join(offered) or 'none'})")


class TransportError(OcinbError):
    """The connection failed (refused, reset, timed out) after the retry budget was spent."""


class LayerError(OcinbError, ValueError):
    """A layer's bytes are not the tar (or gzip / zstd tar) they claim to be: truncated, corrupt, trailing garbage,
    or not a tar at all. ``layer`` is the layer's digest; nothing read from it is kept."""

    def __init__(self, message: str, layer: str | None = None) -> None:
        self.layer = layer
        super().__init__(f"layer {layer}: {message}" if layer else message)


class LayerLimitError(LayerError):
    """A layer went past a documented reader limit (expanded bytes, expansion ratio, entries, header size); the
    limits are :class:`ocinb.LayerLimits` and can be raised for a layer you trust."""


class WasteCheckError(OcinbError, AssertionError):
    """An image failed the waste rules of :func:`ocinb.check_waste` (dive's CI rules); ``failed`` lists them."""

    def __init__(self, reference: str, failed: list[str]) -> None:
        self.reference = reference
        self.failed = failed
        super().__init__(f"{reference} fails the waste check: " + "; ".join(failed))


class UnsupportedLayerError(OcinbError, ValueError):
    """A layer's media type cannot be read (encrypted, or not a tar type); ``media_type`` names it."""

    def __init__(self, media_type: str, layer: str | None = None,
                 reason: str = "is not a layer type ocinb reads") -> None:
        self.media_type = media_type
        self.layer = layer
        where = f" (layer {layer})" if layer else ""
        super().__init__(f"media type {media_type!r}{where} {reason}")


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of an OCI error body: ``{"code", "message", "detail"}``."""

    code: str
    message: str = ""
    detail: Any = None


@dataclass(eq=False)
class RegistryError(OcinbError):
    """The registry answered with an error status.

    ``errors`` holds the OCI error entries (possibly empty when the body was not OCI JSON, in which
    case ``body`` keeps the start of the raw text). ``url`` is redacted.
    """

    status: int
    method: str
    url: str
    errors: list[ErrorDetail] = field(default_factory=list)
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.url = redact_url(self.url)
        super().__init__(str(self))

    @property
    def codes(self) -> list[str]:
        """The OCI error codes, e.g. ``["MANIFEST_UNKNOWN"]``."""
        return [e.code for e in self.errors]

    @property
    def code(self) -> str | None:
        """The first OCI error code, or ``None``."""
        return self.errors[0].code if self.errors else None

    @property
    def message(self) -> str:
        """The first OCI error message, or the start of the raw body."""
        if self.errors:
            return self.errors[0].message
        return self.body

    def __str__(self) -> str:
        head = f"{self.method} {self.url}: HTTP {self.status}"
        if self.errors:
            parts = []
            for e in self.errors[:5]:
                text = f"{e.code}: {e.message}" if e.message else e.code
                if e.detail not in (None, "", {}, []):
                    detail = str(e.detail)
                    text += f" ({detail[:200]}{'…' if len(detail) > 200 else ''})"
                parts.append(text)
            return f"{head} {'; '.join(parts)}"
        if self.body:
            snippet = " ".join(self.body.split())[:200]
            return f"{head} {snippet}"
        return head


class NotFoundError(RegistryError):
    """404: unknown manifest, blob, repository or upload."""


class UnauthorizedError(RegistryError):
    """401: credentials are missing or were refused."""


class RealmRefusedError(UnauthorizedError):
    """The registry named a token realm ocinb will not send credentials to (plain HTTP, link-local,
    cloud metadata, or loopback from a registry that is not); nothing was sent there."""


class DeniedError(RegistryError):
    """403: the credentials are valid but lack the permission (or the scope)."""


class TooManyRequestsError(RegistryError):
    """429: rate limited, after honouring ``Retry-After`` within the retry budget."""


class UnsupportedError(RegistryError):
    """400/405 answered to an operation the registry does not support (e.g. deletes disabled)."""


class ServerError(RegistryError):
    """5xx after the retry budget was spent."""


def error_class_for(status: int) -> type[RegistryError]:
    """Map an HTTP status to the most specific :class:`RegistryError` subclass."""
    if status == 404:
        return NotFoundError
    if status == 401:
        return UnauthorizedError
    if status == 403:
        return DeniedError
    if status == 429:
        return TooManyRequestsError
    if status == 405:
        return UnsupportedError
    if status >= 500:
        return ServerError
    return RegistryError


class RateBudgetExceededError(OcinbError):
    """Bulk work stopped before spending the rate-limit reserve (or exceeding the budget) it was given.

    ``done`` carries what was finished before the stop (a list of results, or a crawl's report), so nothing
    fetched is lost; ``remaining`` is the quota the registry last reported, ``reserve`` the part kept back.
    """

    def __init__(self, host: str, *, remaining: int | None, reserve: int | None, done: Any = None) -> None:
        self.host = host
        self.remaining = remaining
        self.reserve = reserve
        self.done = done
        super().__init__(str(self))

    def __str__(self) -> str:
        return (f"rate-limit budget of {self.host} reached: {self.remaining} requests remain and {self.reserve} "
                "are kept in reserve; stopped with what was done so far (RateBudget(wait=True) waits instead)")

    def with_done(self, done: Any) -> RateBudgetExceededError:
        """The same stop, carrying ``done`` (what the caller finished) instead."""
        return RateBudgetExceededError(self.host, remaining=self.remaining, reserve=self.reserve, done=done)
