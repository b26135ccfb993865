"""A manifest as fetched: the exact bytes, their digest and media type, and a parsed view."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import media_types as mt
from ._display import HtmlRepr
from .digest import Digest
from .errors import ManifestError
from .models import Descriptor, ImageIndex, ImageManifest, load_json_object, parse_manifest


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
        media_type = manifest_media_type(data, media_type)
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


def manifest_media_type(data: bytes, content_type: str | None) -> str:
    """The media type of manifest bytes: the ``Content-Type`` (parameters dropped), else, when that is missing or
    generic (``application/json``), what the JSON says or looks like (schema 1 included), else OCI manifest."""
    media_type = mt.strip_params(content_type or "")
    if media_type in _GENERIC_TYPES:
        media_type = _json_media_type(data) or mt.OCI_MANIFEST
    return media_type


def _json_media_type(data: bytes) -> str | None:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    value = doc.get("mediaType")
    if isinstance(value, str):
        return value
    if "manifests" in doc:
        return mt.OCI_INDEX
    if _is_one(doc.get("schemaVersion")):
        return mt.DOCKER_SCHEMA1_SIGNED if "signatures" in doc else mt.DOCKER_SCHEMA1
    return None


def _is_one(value: object) -> bool:
    return type(value) is int and value == 1


def _b64url(text: object, what: str) -> bytes:
    """Decode JOSE base64url (padding optional), or raise :class:`ManifestError` naming ``what``."""
    if not isinstance(text, str):
        raise ManifestError(f"signed schema 1 manifest: {what} is not a string")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ManifestError(f"signed schema 1 manifest: {what} is not base64url") from None


def schema1_payload(data: bytes) -> bytes:
    """The JWS payload of a signed Docker schema 1 manifest: the bytes its digest is computed over.

    Docker's schema 1 specification defines the digest over the document without its ``signatures``: the
    first ``formatLength`` bytes followed by ``formatTail``, both from each signature's "protected" header.
    The signatures themselves are not checked: the registry signs with its own key (distribution re-signs
    on every GET), so they prove nothing about the content; the digest does. Raises :class:`ManifestError`
    when the document is not a usable signed schema 1 manifest, or when the payload is not the document less
    its ``signatures`` (so bytes outside the digested payload can never change what the document says).
    """
    doc = load_json_object(data, "signed schema 1 manifest")
    declared = doc.get("mediaType")
    if not _is_one(doc.get("schemaVersion")) or (declared is not None and not mt.is_schema1(str(declared))):
        raise ManifestError("signed schema 1 manifest: the document is not schema 1 (it needs schemaVersion 1 "
                            "and no other mediaType)")
    signatures = doc.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise ManifestError("signed schema 1 manifest: no signatures, so no protected header to find the payload")
    formats = set()
    for i, signature in enumerate(signatures):
        protected = signature.get("protected") if isinstance(signature, dict) else None
        header = load_json_object(_b64url(protected, f"signature {i}'s protected header"),
                                  f"signed schema 1 manifest: signature {i}'s protected header")
        length = header.get("formatLength")
        if type(length) is not int or not 0 <= length <= len(data):
            raise ManifestError(f"signed schema 1 manifest: signature {i}'s formatLength is not a length within "
                                f"the {len(data)}-byte document")
        formats.add((length, _b64url(header.get("formatTail"), f"signature {i}'s formatTail")))
    if len(formats) > 1:
        raise ManifestError("signed schema 1 manifest: the signatures disagree on formatLength and formatTail")
    ((length, tail),) = formats
    payload = data[:length] + tail
    content = load_json_object(payload, "signed schema 1 manifest payload")
    if content != {key: value for key, value in doc.items() if key != "signatures"}:
        raise ManifestError("signed schema 1 manifest: the payload its protected header describes is not the "
                            "document without its signatures")
    return payload
