"""Helpers for the fault/secret suites: a quiet retry policy, and grepping produced text for secrets."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable

from ocinb import RetryPolicy

FAST_RETRY = RetryPolicy(retries=4, backoff=0.01, backoff_max=0.05)
"""Retries that do not slow the suite down."""


def secret_forms(*secrets: str) -> list[str]:
    """Each secret plus the encodings it could leak in (``user:password`` in base64 for Basic auth)."""
    forms = [s for s in secrets if s]
    for s in secrets:
        if s:
            forms.append(base64.b64encode(s.encode()).decode())
    return forms


def basic_forms(username: str, password: str) -> list[str]:
    """The password and the Basic ``Authorization`` value built from it."""
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return [password, raw]


def render_records(records: Iterable[logging.LogRecord]) -> list[str]:
    """Every log record as formatted text, with its raw message, args and exception text."""
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    out: list[str] = []
    for rec in records:
        out.append(fmt.format(rec))
        out.append(repr(rec.msg))
        out.append(repr(rec.args))
    return out


def leaks(texts: Iterable[str], secrets: Iterable[str]) -> list[tuple[str, str]]:
    """(secret, excerpt) for each secret found in any of ``texts``."""
    found: list[tuple[str, str]] = []
    wanted = [s for s in secrets if s]
    for text in texts:
        for secret in wanted:
            i = text.find(secret)
            if i >= 0:
                found.append((secret, text[max(0, i - 80) : i + len(secret) + 20]))
    return found


def debug_logging(caplog: object) -> None:
    """Capture DEBUG records from ocinb and httpx (and httpcore) in ``caplog``."""
    for name in ("ocinb", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)  # type: ignore[attr-defined]
