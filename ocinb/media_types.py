"""Media types of OCI and Docker manifests, configs and layers, and well-known annotation keys."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_DESCRIPTOR = "application/vnd.oci.descriptor.v1+json"
OCI_LAYOUT = "application/vnd.oci.layout.header.v1+json"

EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_SIZE = 2
EMPTY_DATA = b"{}"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES = frozenset({
    OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD,
    DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_LAYER_ZSTD, DOCKER_FOREIGN_LAYER,
})

MANIFEST_ACCEPT: tuple[str, ...] = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
"""The ``Accept`` header values for manifest requests, most preferred first."""

ATTESTATION_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_DIGEST_ANNOTATION = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_SOURCE = "org.opencontainers.image.source"
ANNOTATION_REVISION = "org.opencontainers.image.revision"
ANNOTATION_VERSION = "org.opencontainers.image.version"
ANNOTATION_DESCRIPTION = "org.opencontainers.image.description"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

_SHORT_NAMES = {
    OCI_MANIFEST: "oci-manifest",
    OCI_INDEX: "oci-index",
    OCI_CONFIG: "oci-config",
    OCI_LAYER: "layer",
    OCI_LAYER_GZIP: "layer+gzip",
    OCI_LAYER_ZSTD: "layer+zstd",
    OCI_LAYER_NONDIST: "nondist-layer",
    OCI_LAYER_NONDIST_GZIP: "nondist-layer+gzip",
    OCI_LAYER_NONDIST_ZSTD: "nondist-layer+zstd",
    OCI_EMPTY: "empty",
    OCI_DESCRIPTOR: "descriptor",
    DOCKER_MANIFEST: "docker-manifest",
    DOCKER_MANIFEST_LIST: "docker-manifest-list",
    DOCKER_CONFIG: "docker-config",
    DOCKER_LAYER: "docker-layer",
    DOCKER_LAYER_GZIP: "docker-layer+gzip",
    DOCKER_LAYER_ZSTD: "docker-layer+zstd",
    DOCKER_FOREIGN_LAYER: "foreign-layer+gzip",
    DOCKER_SCHEMA1: "docker-schema1",
    DOCKER_SCHEMA1_SIGNED: "docker-schema1-signed",
}


def strip_params(content_type: str | None) -> str:
    """The bare media type of a ``Content-Type`` value: parameters dropped, lowercased, trimmed."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def is_index(media_type: str | None) -> bool:
    """True for OCI image indexes and Docker manifest lists."""
    return strip_params(media_type) in INDEX_TYPES


def is_manifest(media_type: str | None) -> bool:
    """True for OCI and Docker v2 image manifests (not indexes)."""
    return strip_params(media_type) in MANIFEST_TYPES


def is_schema1(media_type: str | None) -> bool:
    """True for deprecated Docker schema 1 manifests."""
    return strip_params(media_type) in SCHEMA1_TYPES


def short_name(media_type: str) -> str:
    """A short human label for a media type (``oci-index``, ``layer+gzip``); unknown types are returned as is."""
    return _SHORT_NAMES.get(strip_params(media_type), media_type)
