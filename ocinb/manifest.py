"""A manifest as fetched: the exact bytes, their digest and media type, and a parsed view."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import media_types as mt
from ._display import HtmlRepr
from .digest import Digest
from .errors import ManifestError
from .models import Descriptor, ImageIndex, ImageManifest, parse_manifest


@dataclass(frozen=True)
class Manifest(HtmlRepr):
    """Raw manifest bytes (never re-serialised), verified digest, media type and parsed model.

    ``reference`` is what was asked for (a tag or a digest) and ``repository`` where it lives.
    """

    data: bytes = field(repr=False)
    media_type: str
    digest: Digest
    repository: str | None = None
    reference: str | None = None

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str | None = None, *, digest: Digest | None = None,
                   repository: str | None = None, reference: str | None = None) -> Manifest:
        """Wrap bytes; the media type comes from the JSON when the caller's is missing or generic
        (``application/json``), and ``digest``, when given, is one the caller already computed."""
        media_type = mt.strip_params(media_type or "")
        if media_type in _GENERIC_TYPES:
            media_type = _json_media_type(data) or mt.OCI_MANIFEST
        return cls(data, media_type, digest or Digest.of(data), repository, reference)

    @classmethod
    def of(cls, manifest: Manifest | ImageManifest | ImageIndex | bytes, media_type: str | None = None) -> Manifest:
        """Any manifest form as a :class:`Manifest`: models are serialised once, bytes kept as given."""
        if isinstance(manifest, Manifest):
            if media_type is None or mt.strip_params(media_type) == manifest.media_type:
                return manifest
            return cls(manifest.data, mt.strip_params(media_type), manifest.digest, manifest.repository,
                       manifest.reference)
        if isinstance(manifest, ImageManifest | ImageIndex):
            default = mt.OCI_INDEX if isinstance(manifest, ImageIndex) else mt.OCI_MANIFEST
            return cls.from_bytes(manifest.to_json_bytes(), media_type or manifest.media_type or default)
        if isinstance(manifest, bytes | bytearray | memoryview):
            return cls.from_bytes(bytes(manifest), media_type)
        raise TypeError(f"cannot use a {type(manifest).__name__} as a manifest")

    @property
    def subject(self) -> str | None:
        """The digest this manifest refers to through ``subject``, if it parses and has one."""
        try:
            subject = self.parsed.subject
        except ManifestError:
            return None
        return subject.digest if subject is not None else None

    def referrer_descriptor(self) -> Descriptor:
        """The descriptor a referrers index lists for this manifest: ``artifactType`` (else the config's media
        type) and the manifest's annotations."""
        parsed = self.parsed
        artifact = parsed.effective_artifact_type if isinstance(parsed, ImageManifest) else parsed.artifact_type
        return self.descriptor(artifact_type=artifact, annotations=parsed.annotations or None)

    def __bytes__(self) -> bytes:
        """The raw bytes, exactly as the registry served them (what the digest is of)."""
        return self.data

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def parsed(self) -> ImageManifest | ImageIndex:
        """The parsed model; raises :class:`ManifestError` for unparseable content."""
        return parse_manifest(self.data, self.media_type)

    @property
    def is_index(self) -> bool:
        return isinstance(self.parsed, ImageIndex)

    def as_index(self) -> ImageIndex:
        """The index view; :class:`ManifestError` if this is an image manifest."""
        parsed = self.parsed
        if not isinstance(parsed, ImageIndex):
            raise ManifestError(f"{self.digest} is an image manifest ({self.media_type}), not an index")
        return parsed

    def as_manifest(self) -> ImageManifest:
        """The image-manifest view; :class:`ManifestError` if this is an index."""
        parsed = self.parsed
        if not isinstance(parsed, ImageManifest):
            raise ManifestError(f"{self.digest} is an index ({self.media_type}), not an image manifest")
        return parsed

    def descriptor(self, **extra: Any) -> Descriptor:
        """A descriptor pointing at this manifest (with ``artifactType`` and annotations for referrers)."""
        fields: dict[str, Any] = {"media_type": self.media_type, "digest": str(self.digest), "size": self.size}
        fields.update(extra)
        return Descriptor(**fields)

    def json(self) -> Any:
        """The decoded JSON document."""
        return json.loads(self.data)

_GENERIC_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})


def _json_media_type(data: bytes) -> str | None:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    value = doc.get("mediaType") if isinstance(doc, dict) else None
    if isinstance(value, str):
        return value
    if isinstance(doc, dict) and "manifests" in doc:
        return mt.OCI_INDEX
    return None
