"""Pydantic models of the OCI image-spec (descriptors, manifests, indexes, configs) and registry JSON bodies.

Unknown fields are kept and re-emitted, unknown media types are never an error, and ``to_json_bytes`` writes
the camelCase spelling of the spec.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from . import media_types as mt
from ._display import HtmlRepr
from .digest import Digest
from .errors import InvalidDigestError, ManifestError

_TIMESTAMP = re.compile(
    r"\s*(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?(?:\s+[A-Za-z]{1,5})?\s*"
)


def parse_timestamp(value: Any) -> datetime | None:
    """Parse an RFC 3339-ish timestamp to an aware UTC datetime; odd or unset values (Go's zero time) give None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        result = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, int | float):
        try:
            result = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        m = _TIMESTAMP.fullmatch(value)
        if not m:
            return None
        year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = m.groups()
        try:
            micro = int((frac or "0")[:6].ljust(6, "0"))
            tz: timezone = UTC
            if sign and not zulu:
                offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
                tz = timezone(-offset if sign == "-" else offset)
            result = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                              micro, tzinfo=tz)
        except ValueError:
            return None
    else:
        return None
    try:
        result = result.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    if result.year <= 1:
        return None
    return result


class OCIModel(BaseModel):
    """Base of every model: unknown fields kept, camelCase aliases, JSON out via :meth:`to_json_bytes`.

    Aliases are validation and serialization aliases, so ``Descriptor(media_type=…)`` type-checks and the
    JSON still says ``mediaType``.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the spec's field names, ``None`` fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json_bytes(self) -> bytes:
        """Compact JSON with the spec's field names, ``None`` fields omitted."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class _Timestamped(OCIModel):
    """Keeps the ``created`` string as written so a round trip does not change its precision or zone."""

    created: datetime | None = None
    _created_raw: tuple[str, datetime | None] | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseModel):
            return NotImplemented
        return (type(self) is type(other) and self.__dict__ == other.__dict__
                and self.__pydantic_extra__ == other.__pydantic_extra__)

    __hash__ = None  # type: ignore[assignment]

    @field_validator("created", mode="plain")
    @classmethod
    def _tolerant_created(cls, value: Any) -> datetime | None:
        return parse_timestamp(value)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw_created(cls, data: Any, handler: Any) -> Any:
        model = handler(data)
        raw = data.get("created") if isinstance(data, dict) else None
        if isinstance(raw, str) and isinstance(model, _Timestamped):
            model._created_raw = (raw, model.created)
        return model

    @field_serializer("created")
    def _emit_created(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        raw = self._created_raw
        if raw is not None and raw[1] == value:
            return raw[0]
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Platform(OCIModel):
    """The platform of an image in an index: ``os``/``architecture`` plus optional variant and OS details."""

    architecture: str
    os: str
    os_version: str | None = Field(default=None, validation_alias="os.version", serialization_alias="os.version")
    os_features: list[str] | None = Field(
        default=None, validation_alias="os.features", serialization_alias="os.features")
    variant: str | None = None
    features: list[str] | None = None

    @classmethod
    def parse(cls, s: str) -> Platform:
        """Parse ``os/arch[/variant]``, with an optional OS version as ``os(version)/…`` or a ``:version`` suffix;
        ``ValueError`` for anything else."""
        text = s.strip()
        os_version: str | None = None
        m = re.fullmatch(r"([^/()]+)\(([^()]*)\)(/.*)", text)
        if m:
            text, os_version = m.group(1) + m.group(3), m.group(2) or None
        elif ":" in text:
            text, _, os_version = text.partition(":")
            os_version = os_version or None
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {s!r} must be 'os/architecture[/variant]', e.g. 'linux/arm64/v8'")
        return cls(os=parts[0].lower(), architecture=parts[1].lower(),
                   variant=parts[2].lower() if len(parts) == 3 else None, os_version=os_version)

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out

    @property
    def is_unknown(self) -> bool:
        """True for ``unknown`` OS or architecture (BuildKit attestations, not a runnable platform)."""
        return self.os == "unknown" or self.architecture == "unknown"

    def normalized(self) -> tuple[str, str, str | None]:
        """``(os, architecture, variant)`` with common aliases resolved (aarch64 → arm64, x86_64 → amd64)."""
        os_name = _OS_ALIASES.get(self.os.lower(), self.os.lower())
        arch = self.architecture.lower()
        variant = self.variant.lower() if self.variant else None
        arch, implied = _ARCH_ALIASES.get(arch, (arch, None))
        variant = variant or implied
        if variant and arch in ("arm64", "arm") and variant.isdigit():
            variant = f"v{variant}"
        return os_name, arch, variant

    def matches(self, other: Platform | str) -> bool:
        """True when this platform satisfies ``other``, the requested one.

        A request without a variant accepts any variant; with one, the variant must match, a missing variant
        counting as the architecture's default (``v8`` for arm64, ``v7`` for arm).
        """
        want = Platform.parse(other) if isinstance(other, str) else other
        os_name, arch, variant = self.normalized()
        want_os, want_arch, want_variant = want.normalized()
        if (os_name, arch) != (want_os, want_arch):
            return False
        if want_variant is not None and (variant or _DEFAULT_VARIANT.get(arch)) != want_variant:
            return False
        if want.os_version and self.os_version:
            have, need = self.os_version.split("."), want.os_version.split(".")
            if have[: len(need)] != need:
                return False
        return True


_OS_ALIASES = {"macos": "darwin"}
_ARCH_ALIASES: dict[str, tuple[str, str | None]] = {
    "aarch64": ("arm64", None),
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


class Descriptor(HtmlRepr, OCIModel):
    """A pointer to content: media type, digest and size, with optional platform, annotations and inline data."""

    media_type: str = Field(validation_alias="mediaType", serialization_alias="mediaType")
    digest: str
    size: int = Field(ge=0, le=2**63 - 1, strict=True)
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    data: str | None = None
    platform: Platform | None = None
    artifact_type: str | None = Field(default=None, validation_alias="artifactType", serialization_alias="artifactType")

    @field_validator("digest")
    @classmethod
    def _valid_digest(cls, value: str) -> str:
        try:
            return Digest.parse(value)
        except InvalidDigestError as exc:
            raise ValueError(str(exc)) from None

    @property
    def is_attestation(self) -> bool:
        """True for BuildKit attestation manifests (``unknown/unknown`` or the attestation annotation)."""
        if self.platform is not None and self.platform.is_unknown:
            return True
        return (self.annotations or {}).get(mt.ATTESTATION_ANNOTATION) == mt.ATTESTATION_MANIFEST

class ImageManifest(HtmlRepr, OCIModel):
    """An OCI or Docker v2 image manifest (also used for artifacts)."""

    schema_version: int = Field(default=2, validation_alias="schemaVersion", serialization_alias="schemaVersion")
    media_type: str | None = Field(default=None, validation_alias="mediaType", serialization_alias="mediaType")
    artifact_type: str | None = Field(default=None, validation_alias="artifactType", serialization_alias="artifactType")
    config: Descriptor
    layers: list[Descriptor]
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None

    @property
    def total_size(self) -> int:
        """Config plus layer sizes, in bytes."""
        return self.config.size + sum(layer.size for layer in self.layers)

    @property
    def effective_artifact_type(self) -> str:
        """``artifactType``, or the config media type when it is absent."""
        return self.artifact_type or self.config.media_type

class ImageIndex(HtmlRepr, OCIModel):
    """An OCI image index or Docker manifest list."""

    schema_version: int = Field(default=2, validation_alias="schemaVersion", serialization_alias="schemaVersion")
    media_type: str | None = Field(default=None, validation_alias="mediaType", serialization_alias="mediaType")
    artifact_type: str | None = Field(default=None, validation_alias="artifactType", serialization_alias="artifactType")
    manifests: list[Descriptor]
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None

    def platform_descriptors(self, include_attestations: bool = False) -> list[Descriptor]:
        """Entries that carry a platform, without attestation manifests unless asked for."""
        return [d for d in self.manifests
                if d.platform is not None and (include_attestations or not d.is_attestation)]

    def find(self, platform: Platform | str) -> Descriptor | None:
        """The first runnable entry matching ``platform``, preferring one with exactly the requested variant."""
        want = Platform.parse(platform) if isinstance(platform, str) else platform
        candidates = [(d, d.platform) for d in self.platform_descriptors()
                      if d.platform is not None and d.platform.matches(want)]
        want_variant = want.normalized()[2]
        for d, platform in candidates:
            if platform.normalized()[2] == want_variant:
                return d
        return candidates[0][0] if candidates else None

class ContainerConfig(OCIModel):
    """The execution parameters of an image config (Docker's capitalised keys)."""

    user: str | None = Field(default=None, validation_alias="User", serialization_alias="User")
    exposed_ports: dict[str, Any] | None = Field(
        default=None, validation_alias="ExposedPorts", serialization_alias="ExposedPorts")
    env: list[str] | None = Field(default=None, validation_alias="Env", serialization_alias="Env")
    entrypoint: list[str] | None = Field(default=None, validation_alias="Entrypoint", serialization_alias="Entrypoint")
    cmd: list[str] | None = Field(default=None, validation_alias="Cmd", serialization_alias="Cmd")
    volumes: dict[str, Any] | None = Field(default=None, validation_alias="Volumes", serialization_alias="Volumes")
    working_dir: str | None = Field(default=None, validation_alias="WorkingDir", serialization_alias="WorkingDir")
    labels: dict[str, str] | None = Field(default=None, validation_alias="Labels", serialization_alias="Labels")
    stop_signal: str | None = Field(default=None, validation_alias="StopSignal", serialization_alias="StopSignal")


class RootFS(OCIModel):
    """The uncompressed layer digests (``diff_ids``) of an image."""

    type: str
    diff_ids: list[str]


class History(_Timestamped):
    """One build step; ``empty_layer`` steps (ENV, CMD, …) produced no layer."""

    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    @model_serializer(mode="wrap")
    def _omit_unset_empty_layer(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        out = handler(self)
        if isinstance(out, dict) and "empty_layer" not in self.model_fields_set and not self.empty_layer:
            out.pop("empty_layer", None)
        return out


class ImageConfig(HtmlRepr, _Timestamped):
    """An image configuration blob (OCI or Docker); tolerant of odd timestamps and missing fields."""

    author: str | None = None
    architecture: str | None = None
    os: str | None = None
    os_version: str | None = Field(default=None, validation_alias="os.version", serialization_alias="os.version")
    os_features: list[str] | None = Field(
        default=None, validation_alias="os.features", serialization_alias="os.features")
    variant: str | None = None
    config: ContainerConfig | None = None
    rootfs: RootFS | None = None
    history: list[History] | None = None

    @property
    def platform(self) -> Platform | None:
        """The platform the config declares, if it names both OS and architecture."""
        if not self.os or not self.architecture:
            return None
        return Platform(os=self.os, architecture=self.architecture, variant=self.variant, os_version=self.os_version)

    def layer_history(self) -> list[History | None]:
        """History entries aligned to the layers (``empty_layer`` steps skipped), padded with None."""
        steps = [h for h in self.history or [] if not h.empty_layer]
        count = len(self.rootfs.diff_ids) if self.rootfs is not None else len(steps)
        aligned: list[History | None] = list(steps[:count])
        aligned.extend([None] * (count - len(aligned)))
        return aligned

def _describe(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def load_json_object(data: bytes | str, what: str) -> dict[str, Any]:
    """Decode JSON that must be an object, raising :class:`ManifestError` with a clear message otherwise."""
    try:
        obj = json.loads(data)
    except RecursionError:
        raise ManifestError(f"{what} is not usable JSON: nested too deeply") from None
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"{what} must be a JSON object, not {type(obj).__name__}")
    return obj


def parse_manifest(data: bytes, media_type: str | None = None) -> ImageManifest | ImageIndex:
    """Parse manifest bytes into an :class:`ImageManifest` or :class:`ImageIndex`.

    The kind comes from the JSON ``mediaType``, else ``media_type`` (the Content-Type), else the fields present.
    """
    obj = load_json_object(data, "manifest")
    declared = obj.get("mediaType")
    kind = mt.strip_params(declared) if isinstance(declared, str) and declared else mt.strip_params(media_type)
    if mt.is_schema1(kind) or obj.get("schemaVersion") == 1:
        raise ManifestError("Docker schema 1 manifests are deprecated and not supported; "
                            "push the image again with a current client to get a schema 2 or OCI manifest")
    model: type[ImageManifest] | type[ImageIndex]
    if mt.is_index(kind):
        model = ImageIndex
    elif mt.is_manifest(kind):
        model = ImageManifest
    elif "manifests" in obj:
        model = ImageIndex
    elif "config" in obj or "layers" in obj:
        model = ImageManifest
    else:
        shown = f" (media type {kind!r})" if kind else ""
        raise ManifestError(f"manifest{shown} is neither an image manifest nor an index: "
                            "it has no 'manifests', 'config' or 'layers' field")
    label = "image index" if model is ImageIndex else "image manifest"
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise ManifestError(f"invalid {label}: {_describe(exc)}") from None
    except RecursionError:
        raise ManifestError(f"invalid {label}: nested too deeply") from None


def parse_config(data: bytes) -> ImageConfig:
    """Parse an image config blob, raising :class:`ManifestError` when it is not a JSON object of the right shape."""
    obj = load_json_object(data, "image config")
    try:
        return ImageConfig.model_validate(obj)
    except ValidationError as exc:
        raise ManifestError(f"invalid image config: {_describe(exc)}") from None
    except RecursionError:
        raise ManifestError("invalid image config: nested too deeply") from None
