"""Decoding JSON answers defensively."""

from __future__ import annotations

import json
from typing import Any

from .._http.transport import Reply
from ..errors import ErrorDetail, RegistryError


def json_object(reply: Reply, what: str) -> dict[str, Any]:
    """The reply's body as a JSON object, or a :class:`RegistryError` saying what was wrong."""
    try:
        doc = json.loads(reply.content)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        raise RegistryError(reply.status, reply.method, reply.url,
                            [ErrorDetail("UNKNOWN", f"the {what} answer is not a JSON object")])
    return doc
