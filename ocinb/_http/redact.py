"""Masking of signed query values in what httpx and httpcore log (redirects to blob storage carry them).

The keys are the types layer's :data:`ocinb._redact.SECRET_QUERY_KEYS`, the same list errors use. The
HTTP core calls :func:`install` when it is imported.
"""

from __future__ import annotations

import logging

from .._redact import redact_text

LOGGERS = ("httpx", "httpcore.http11", "httpcore.http2", "httpcore.connection", "httpcore.proxy")
"""The loggers that print request URLs."""


class RedactURLs(logging.Filter):
    """Rewrite a record whose message holds a secret query value, so no handler ever sees the value."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install() -> None:
    """Put one :class:`RedactURLs` on each of :data:`LOGGERS` (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactURLs) for f in logger.filters):
            logger.addFilter(RedactURLs())
