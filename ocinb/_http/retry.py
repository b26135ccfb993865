"""The retry policy: whether to try a request again and how long to wait first, decided in one place.

:class:`HttpCore` asks :meth:`RetryPolicy.wait` after every failed attempt and obeys the answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
"""Methods that may be sent twice with the effect of once (RFC 9110 §9.2.2)."""

REFUSED_STATUSES = frozenset({429, 503})
"""Statuses by which a server says it did not act on the request, so even a POST or PATCH may be replayed."""

CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before a byte of the request left: safe to retry for any method and body."""

RETRYABLE_ERRORS = (httpx.TransportError, httpx.DecodingError)
"""Transport errors a retry may cure (connections dropped, reset, timed out; a body cut short)."""

_DETERMINISTIC_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
"""Transport errors the same request raises every time (a URL scheme httpx lacks, a malformed request)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: retries on 429/5xx and dropped connections, with backoff and ``Retry-After``."""

    retries: int = 4
    backoff: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 120.0
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry number ``attempt + 1``: ``retry_after`` if given, else jittered backoff."""
        if retry_after is not None:
            return retry_after
        base = min(self.backoff_max, self.backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def wait(self, attempt: int, method: str, *, replayable: bool, status: int | None = None,
             exc: BaseException | None = None, retry_after: float | None = None) -> float | None:
        """Seconds to wait before trying again after ``attempt`` failed (0-based), or ``None``: do not retry.

        ``exc`` is the transport error the attempt raised, or ``status`` the answer it got (with its
        ``Retry-After`` in seconds). ``replayable``: the body can be sent again as it was (none, or bytes).
        """
        if attempt >= self.retries:
            return None
        if exc is not None:
            if isinstance(exc, _DETERMINISTIC_ERRORS):
                return None
            if isinstance(exc, CONNECT_ERRORS):
                return self.delay(attempt, None)
            # The request may have reached the server: replay only what cannot act twice, as it was.
            if isinstance(exc, RETRYABLE_ERRORS) and method.upper() in IDEMPOTENT and replayable:
                return self.delay(attempt, None)
            return None
        if status is None or status not in self.statuses:
            return None
        if method.upper() not in IDEMPOTENT and status not in REFUSED_STATUSES:
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None  # the caller learns the wait from the error instead of hanging for it
        return self.delay(attempt, retry_after)
