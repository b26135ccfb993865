"""From a failed HTTP exchange to the :class:`~ocinb.errors.RegistryError` a user catches.

OCI error bodies (``{"errors": [...]}``) and the ``{"error", "message"}`` bodies token servers send are
parsed; a 401 with ``error="insufficient_scope"`` is a permission problem when credentials were sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from ..errors import DeniedError, ErrorDetail, RegistryError, error_class_for
from .auth import normalize_scopes
from .headers import parse_www_authenticate

ERROR_BODY_LIMIT = 64 * 1024
"""How much of an error body is read: enough for any OCI error list, bounded against a hostile one."""

_KEPT_HEADERS = ("retry-after", "www-authenticate", "docker-distribution-api-version", "ratelimit-limit",
                 "ratelimit-remaining", "content-type")


async def raise_for_status(resp: httpx.Response, *, anonymous: bool = False) -> None:
    """Read (a bounded part of) an error response and raise the matching :class:`RegistryError`."""
    raw = b""
    try:
        async for chunk in resp.aiter_bytes():  # decoded: a gzipped error body keeps its codes
            raw += chunk
            if len(raw) > ERROR_BODY_LIMIT:
                raw = raw[:ERROR_BODY_LIMIT]
                break
    except httpx.HTTPError:
        pass
    finally:
        await resp.aclose()
    raise error_from_response(resp.status_code, resp.request.method, str(resp.request.url), raw,
                              dict(resp.headers), anonymous=anonymous)


def error_from_response(status: int, method: str, url: str, raw: bytes,
                        headers: Mapping[str, str], *, anonymous: bool = False) -> RegistryError:
    """Build the error for a failed exchange, parsing an OCI error body when there is one.

    A 401 with ``error="insufficient_scope"`` becomes a :class:`DeniedError` unless ``anonymous``.
    """
    text = raw.decode("utf-8", "replace")
    errors = _error_details(text)
    cls = error_class_for(status)
    if status == 401:
        cls = _insufficient_scope(headers, errors, anonymous=anonymous) or cls
    # A 416 to an upload chunk says where the upload stands (spec: Range and Location); it is kept for
    # the resume, never shown (``headers`` is in neither ``str`` nor ``repr``).
    wanted = {*_KEPT_HEADERS, *(("range", "location") if status == 416 else ())}
    keep = {k.lower(): v for k, v in headers.items() if k.lower() in wanted}
    body = "" if errors else " ".join(text.split())[:500]
    return cls(status, method, url, errors, body, keep)


def _error_details(text: str) -> list[ErrorDetail]:
    """The entries of an OCI error body (at most 20, fields bounded), or the one of a token server's."""
    errors: list[ErrorDetail] = []
    try:
        data = json.loads(text) if text.strip().startswith(("{", "[")) else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        for item in data["errors"][:20]:
            if isinstance(item, dict):
                code = str(item.get("code") or "UNKNOWN")[:100]
                message = str(item.get("message") or "")[:1000]
                errors.append(ErrorDetail(code, message, item.get("detail")))
    elif isinstance(data, dict) and ("error" in data or "message" in data):
        errors.append(ErrorDetail(str(data.get("code") or data.get("error") or "UNKNOWN")[:100],
                                  str(data.get("message") or data.get("error_description") or "")[:1000]))
    return errors


def _insufficient_scope(headers: Mapping[str, str], errors: list[ErrorDetail], *,
                        anonymous: bool) -> type[RegistryError] | None:
    """The insufficient_scope rule for a 401: put its explanation first in ``errors``; the class it makes.

    A token was sent and the registry wants more than it grants: with credentials that is a permission
    problem (DeniedError); without, the credentials are missing (UnauthorizedError, the class kept).
    """
    refused = [c for c in parse_www_authenticate(str(headers.get("www-authenticate") or headers.get(
        "WWW-Authenticate") or "")) if c.error == "insufficient_scope"]
    if not refused:
        return None
    needed = " ".join(normalize_scopes(refused[0].scopes)) or "a wider scope"
    if anonymous:
        errors.insert(0, ErrorDetail("UNAUTHORIZED", f"insufficient_scope: anonymous access is not granted "
                                     f"{needed}; pass credentials"))
        return None
    errors.insert(0, ErrorDetail("DENIED", f"insufficient_scope: the credentials are not granted {needed}"))
    return DeniedError
