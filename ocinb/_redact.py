"""The one list of secret query keys, and the two ways ocinb masks them (types layer: imports nothing).

Signed storage URLs (S3, GCS, Azure) and token endpoints carry secrets in the query; :func:`redact_url`
masks them in URLs that errors keep, :func:`redact_text` in free text such as httpx's log lines.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_QUERY_KEYS: frozenset[str] = frozenset(
    {"token", "access_token", "refresh_token", "password", "secret", "signature", "x-amz-signature",
     "x-amz-credential", "x-amz-security-token", "sig", "se", "sv", "x-goog-signature", "x-goog-credential"}
)
"""Query parameters whose values are secrets (compared case-insensitively)."""

SECRET_PARAM = re.compile(
    r"([?&](?:" + "|".join(re.escape(k) for k in sorted(SECRET_QUERY_KEYS, key=len, reverse=True))
    + r")=)[^&\s'\"]+",
    re.IGNORECASE,
)
"""A secret ``key=value`` inside a URL in free text; group 1 is everything up to the value."""


def redact_url(url: str) -> str:
    """Return ``url`` without userinfo and with secret-looking query values replaced by ``***``."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*:/"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with the value of every secret query parameter of the URLs in it replaced by ``***``."""
    return SECRET_PARAM.sub(r"\1***", text)
